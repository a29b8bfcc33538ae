/// FAILURE, worker → coordinator: this worker cannot go on, and why (a sample its model cannot
/// take). The failure would repeat on any worker, so the coordinator stops the run with it.
struct FailureMessage: Sendable {
    var reason: String

    func encode() -> [UInt8] { var w = WireWriter(); w.string(reason); return w.bytes }

    static func decode(_ m: Message) throws -> FailureMessage {
        try m.read { r in FailureMessage(reason: try r.string(limit: 4096)) }
    }
}

/// A worker's FAILURE, or a local worker that crashed: the run stops with the reason.
package struct WorkerFailure: Error, CustomStringConvertible {
    package var worker: String
    package var reason: String
    package var description: String { "\(worker) failed: \(reason)" }
}
