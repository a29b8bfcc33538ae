import Foundation

/// The package root, found from this file's path, so tests can reach configs/ and the built CLI.
public let packageRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// MNIST for tests and benchmarks: $COHORT_DATA, else ../shared/data/mnist beside the checkout.
public var mnistDirectory: URL {
    if let dir = ProcessInfo.processInfo.environment["COHORT_DATA"] { return URL(fileURLWithPath: dir) }
    return packageRoot.deletingLastPathComponent().appendingPathComponent("shared/data/mnist")
}
