import Foundation

// Helpers of the benchmarks that run other programs: tools, the PyTorch reference, JSON lines.

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

@discardableResult
func runTool(_ tool: String, _ arguments: [String], quiet: Bool = false) throws -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: tool)
    process.arguments = arguments
    if quiet { process.standardOutput = FileHandle.nullDevice }
    try process.run()
    process.waitUntilExit()
    return process.terminationStatus
}

func toolOutput(_ tool: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: tool)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw BenchError("\(arguments.joined(separator: " ")) failed") }
    return text
}

/// The last JSON line of `python3 bench/pytorch_reference.py ARGUMENTS`; nil when torch is not
/// installed (the script's exit status 4). A failure names the last lines the script (or its
/// DDP ranks) wrote to stderr, which goes to a file so that a chatty rank cannot block on a pipe.
func pytorchReference(_ arguments: [String]) throws -> [String: Any]? {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "bench/pytorch_reference.py"] + arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    let errorPath = NSTemporaryDirectory() + "cohort-bench-pytorch-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).err"
    guard FileManager.default.createFile(atPath: errorPath, contents: nil) else { throw BenchError("cannot create \(errorPath)") }
    defer { try? FileManager.default.removeItem(atPath: errorPath) }
    let errors = try FileHandle(forWritingTo: URL(fileURLWithPath: errorPath))
    process.standardError = errors
    try process.run()
    let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    try? errors.close()
    if process.terminationStatus == 4 { return nil }
    guard process.terminationStatus == 0, let line = text.split(separator: "\n").last,
          let record = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
    else {
        let said = ((try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? "").split(separator: "\n").suffix(3).joined(separator: " | ")
        throw BenchError("bench/pytorch_reference.py \(arguments.first ?? "") failed (exit \(process.terminationStatus))"
                         + (said.isEmpty ? "" : ": \(said)"))
    }
    return record
}

/// One JSON object of ordered pairs (numbers to four significant digits, non-finite as null).
func emitPairs(_ pairs: [(String, Any)]) {
    let body = pairs.map { key, value -> String in
        switch value {
        case let d as Double: return "\"\(key)\":\(d.isFinite ? String(format: "%.4g", d) : "null")"
        case let i as Int: return "\"\(key)\":\(i)"
        default: return "\"\(key)\":\"\(value)\""
        }
    }
    emitLine("{" + body.joined(separator: ",") + "}")
}

/// One JSON line, unbuffered (the child processes write to the same output).
func emitLine(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
