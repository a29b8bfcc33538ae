import Foundation

/// The package root, found from this file's path, so tests can reach configs/ and the built CLI.
public let packageRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// MNIST for tests and benchmarks: $COHORT_DATA, else ../shared/data/mnist beside the checkout.
public var mnistDirectory: URL {
    if let dir = ProcessInfo.processInfo.environment["COHORT_DATA"] { return URL(fileURLWithPath: dir) }
    return packageRoot.deletingLastPathComponent().appendingPathComponent("shared/data/mnist")
}

public struct TestSetupError: Error, CustomStringConvertible {
    public var description: String
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
public func startCohort(_ arguments: [String], log: URL) throws -> Process {
    let process = Process()
    process.executableURL = try cohortExecutable()
    process.arguments = arguments
    process.currentDirectoryURL = packageRoot
    _ = FileManager.default.createFile(atPath: log.path, contents: nil)   // FileHandle below throws on failure
    let handle = try FileHandle(forWritingTo: log)
    process.standardOutput = handle
    process.standardError = handle
    try process.run()
    return process
}

/// Runs the built `cohort` executable to completion, as a user would.
public func runCohort(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = try cohortExecutable()
    process.arguments = arguments
    process.currentDirectoryURL = packageRoot
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
