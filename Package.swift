// swift-tools-version:6.0
import PackageDescription

// Release builds carry the numeric code; tests run in release with -enable-testing (see Makefile).
let package = Package(
    name: "Cohort",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "cohort", targets: ["cohort"]),
        .library(name: "CohortTensor", targets: ["CohortTensor"]),
        .library(name: "CohortNN", targets: ["CohortNN"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/yaslab/CSV.swift", from: "2.5.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .systemLibrary(name: "CZeroMQ", pkgConfig: "libzmq", providers: [.apt(["libzmq3-dev"])]),
        // A thin Swift wrapper of libzmq: ownership, multipart messages, timeouts, zero-copy sends.
        .target(name: "ZeroMQ", dependencies: ["CZeroMQ"]),
        // Futex doorbells for the shared-memory mailboxes of workers on the coordinator's machine.
        .target(name: "CFutex"),
        // σ and tanh on AVX2 when the CPU has it, with VectorMath's bits.
        .target(name: "CVectorMath"),
        .target(name: "CohortTensor", dependencies: ["CBLAS", "CVectorMath"]),
        .target(name: "CohortNN", dependencies: ["CohortTensor"]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "CohortData", dependencies: ["CohortTensor", "CZlib", .product(name: "CSV", package: "CSV.swift"),
                                                  .product(name: "Logging", package: "swift-log"), .product(name: "Crypto", package: "swift-crypto")]),
        // The training step: tasks, executors, the gradient tree, ÷ B, clipping and the update.
        .target(name: "CohortTraining", dependencies: ["CohortTensor", "CohortNN", "CohortData"]),
        // Configs (YAML), run directories, checkpoints, plots, TensorBoard: the run around the step.
        .target(
            name: "CohortExperiment",
            dependencies: ["CohortTensor", "CohortNN", "CohortData", "CohortTraining",
                           .product(name: "Yams", package: "Yams"), .product(name: "Logging", package: "swift-log")]
        ),
        // The coordinator, the workers and their wire protocol. It builds on the training step and
        // never on CohortExperiment: a worker never reads a config.
        .target(name: "CohortCluster", dependencies: ["ZeroMQ", "CFutex", "CohortTraining", "CohortNN", "CohortTensor", "CohortData",
                                                      .product(name: "Logging", package: "swift-log")]),
        .executableTarget(
            name: "cohort",
            dependencies: [
                "CohortCluster", "CohortExperiment", "CohortTraining", "CohortNN", "CohortTensor", "CohortData", "ZeroMQ",
                .product(name: "ArgumentParser", package: "swift-argument-parser"), .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ],
            plugins: ["BuildStamp"]
        ),
        // The git commit a build comes from, for cohort --version.
        .plugin(name: "BuildStamp", capability: .buildTool()),
        .executableTarget(name: "cohort-bench", dependencies: ["CBLAS", "CohortTensor", "CohortNN", "CohortData", "CohortTraining", "CohortExperiment", "CohortCluster"]),
        // Helpers shared by the test targets (finite-difference checks, paths to data).
        .target(name: "CohortTestSupport", dependencies: ["CohortTensor"], path: "Tests/CohortTestSupport"),
        .testTarget(name: "CohortTensorTests", dependencies: ["CohortTensor", "CVectorMath", "CohortTestSupport"]),
        .testTarget(name: "CohortClusterTests", dependencies: ["CohortCluster", "CohortExperiment", "CohortTraining", "ZeroMQ", "CohortTensor", "CohortTestSupport", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "CohortDataTests", dependencies: ["CohortData", "CohortTensor", "CohortTestSupport"]),
        .testTarget(name: "CohortNNTests", dependencies: ["CohortNN", "CohortTensor", "CohortTestSupport"]),
        // The limits docs/ARCHITECTURE.md sets on the sources themselves.
        .testTarget(name: "SourceLimitsTests"),
        .testTarget(name: "CohortTrainingTests", dependencies: ["CohortTraining", "CohortNN", "CohortTensor", "CohortTestSupport"]),
        .testTarget(
            name: "CohortExperimentTests",
            dependencies: ["CohortExperiment", "CohortTraining", "CohortNN", "CohortTensor", "CohortData", "CohortTestSupport"]
        ),
    ]
)
