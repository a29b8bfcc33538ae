import Foundation
import ZeroMQ

/// The coordinator's side of the local mailboxes (`LocalMailbox`): TASKs put in a local worker's
/// box, RESULTs taken from the boxes, and a wait that sleeps on the coordinator's doorbell when
/// every outstanding task is with a local worker.
extension Coordinator {
    /// Sends a TASK through `worker`'s mailbox: false when it has none, or its box is still
    /// full (the worker has not taken the last one), and the task must go by ZeroMQ.
    func postTask(_ body: [UInt8], to worker: WorkerState, step: UInt64) -> Bool {
        guard let mailbox = worker.mailbox,
              mailbox.down.post(Message.frames(kind: .task, runID: runID, step: step, body: body)) else { return false }
        mailbox.workerBell.ring()
        return true
    }

    /// Takes in what the workers sent, from the mailboxes and the socket, waiting at most
    /// `timeout`. With `localOnly` (every outstanding task is with a worker that has a mailbox)
    /// it sleeps on the doorbell, waking every 10 ms for the socket (joins, heartbeats); else it
    /// polls the socket in 1 ms slices, so local results never wait behind remote ones.
    func pumpAll(timeout: Double, localOnly: Bool, results: (ResultFrom) throws -> Void) throws {
        guard let bell else { return try pump(timeout: timeout, results: results) }
        let seen = bell.value
        if try takeFromMailboxes(results) { return try pump(timeout: 0, results: results) }
        if localOnly {
            bell.wait(seen: seen, timeout: min(timeout, 0.01))
            _ = try takeFromMailboxes(results)
            try pump(timeout: 0, results: results)
        } else {
            try pump(timeout: min(timeout, 0.001), results: results)
        }
    }

    /// Handles every message waiting in a mailbox, as if it had come through the socket; true
    /// if there was one. (Dead workers' boxes too: a stalled worker's late answer brings it back.)
    func takeFromMailboxes(_ results: (ResultFrom) throws -> Void) throws -> Bool {
        var found = false
        for worker in workers.values.sorted(by: { $0.id < $1.id }) {
            guard let mailbox = worker.mailbox else { continue }
            while true {
                let frames: [ZMQFrame]?
                do { frames = try mailbox.up.take() } catch {
                    drop("mailbox of worker \(worker.id): \(error)", kind: "malformed message")
                    break
                }
                guard let frames else { break }
                found = true
                let identity = worker.identity.withUnsafeBytes { ZMQFrame(copying: $0) }
                try handle([identity] + frames, counted: false, results: results)
            }
        }
        return found
    }
}
