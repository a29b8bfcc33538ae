import Foundation

/// The package root, found from this file's path, so tests can reach configs/ and the built CLI.
public let packageRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// MNIST for tests: the full set when $COHORT_DATA points at one, else the 6,000/1,000-image
/// subset shipped in data/mnist-subset.
public var mnistDirectory: URL {
    if let dir = ProcessInfo.processInfo.environment["COHORT_DATA"], !dir.isEmpty { return URL(fileURLWithPath: dir) }
    return packageRoot.appendingPathComponent("data/mnist-subset")
}

/// What the tests may expect of the MNIST they were given: the full set's counts, or the
/// subset's (data/mnist-subset/README.md).
public struct MNISTExpectations: Sendable {
    public var isFull: Bool
    public var trainCount: Int
    public var testCount: Int
    public var trainClassCounts: [Int]

    public static var current: MNISTExpectations {
        let labels = mnistDirectory.appendingPathComponent("train-labels-idx1-ubyte.gz")
        let size = (try? FileManager.default.attributesOfItem(atPath: labels.path)[.size] as? Int) ?? 0
        // The full label file is about 29 KB compressed; the subset's about 3 KB.
        return size > 20_000 ? full : subset
    }

    public static let full = MNISTExpectations(isFull: true, trainCount: 60000, testCount: 10000,
                                                trainClassCounts: [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
    public static let subset = MNISTExpectations(isFull: false, trainCount: 6000, testCount: 1000,
                                                  trainClassCounts: [592, 671, 581, 608, 623, 514, 608, 651, 551, 601])
}

/// The environment of a `cohort` child: this one, with $COHORT_DATA set to the tests' MNIST, so
/// configs with `data.name: mnist` find it on a fresh clone too.
public var childEnvironment: [String: String] {
    var environment = ProcessInfo.processInfo.environment
    environment["COHORT_DATA"] = mnistDirectory.path
    return environment
}

public struct TestSetupError: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

/// A fresh empty directory under the system's temporary directory.
public func temporaryDirectory() -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("cohort-test-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// The built `cohort` executable (make test builds it).
public func cohortExecutable() throws -> URL {
    guard let binary = ["release", "debug"].map({ packageRoot.appendingPathComponent(".build/\($0)/cohort") })
        .first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
        throw TestSetupError(description: "build the cohort executable first (make test does)")
    }
    return binary
}

/// Starts `cohort` with `arguments` in the package root; output goes to the given log file.
/// `environment` is added to the tests' own.
/// `launcher`: a command that runs cohort (its path last), such as `ip netns exec NS PATH`.
public func startCohort(_ arguments: [String], log: URL, environment: [String: String] = [:], launcher: [String] = []) throws -> Process {
    let process = Process()
    if launcher.isEmpty {
        process.executableURL = try cohortExecutable()
        process.arguments = arguments
    } else {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = launcher + arguments
    }
    process.currentDirectoryURL = packageRoot
    process.environment = childEnvironment.merging(environment) { _, new in new }
    _ = FileManager.default.createFile(atPath: log.path, contents: nil)   // FileHandle below throws on failure
    let handle = try FileHandle(forWritingTo: log)
    process.standardOutput = handle
    process.standardError = handle
    try process.run()
    return process
}

/// Runs the built `cohort` executable to completion, as a user would.
public func runCohort(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = try cohortExecutable()
    process.arguments = arguments
    process.currentDirectoryURL = packageRoot
    process.environment = childEnvironment.merging(environment) { _, new in new }
    let out = Pipe()
    // stderr goes to a file so a chatty child can never block on a full pipe.
    let errPath = temporaryDirectory().appendingPathComponent("stderr")
    _ = FileManager.default.createFile(atPath: errPath.path, contents: nil)   // FileHandle below throws on failure
    process.standardOutput = out
    process.standardError = try FileHandle(forWritingTo: errPath)
    try process.run()
    let stdoutData = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let stderrData = (try? Data(contentsOf: errPath)) ?? Data()
    return (process.terminationStatus, String(decoding: stdoutData, as: UTF8.self), String(decoding: stderrData, as: UTF8.self))
}

/// Runs a tool to its end, standard output and error together (for scripts and daemon clients
/// whose messages interleave).
public func runTool(_ tool: URL, _ arguments: [String], environment: [String: String] = childEnvironment) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = tool
    process.arguments = arguments
    process.environment = environment
    process.currentDirectoryURL = packageRoot
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return (process.terminationStatus, text)
}

/// The records of a run's metrics.jsonl, one per line.
public func metricsRecords(_ run: String) throws -> [[String: Any]] {
    try String(contentsOfFile: "\(run)/metrics.jsonl", encoding: .utf8).split(separator: "\n").compactMap {
        try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
    }
}

/// The tensors of a safetensors file as raw bytes by name, for bitwise comparisons.
public func tensorBytes(_ path: String) throws -> [String: Data] {
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    let n = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
    let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + n))) as! [String: Any]
    var out: [String: Data] = [:]
    for (name, value) in header where name != "__metadata__" {
        let offsets = (value as! [String: Any])["data_offsets"] as! [Int]
        out[name] = data.subdata(in: (8 + n + offsets[0])..<(8 + n + offsets[1]))
    }
    return out
}
