@testable import CohortCluster
@testable import CohortTraining
import Foundation
import ZeroMQ

/// A worker of the tests' own making that speaks the real protocol and misbehaves on purpose:
/// it says HELLO, keeps its heartbeats, and answers each task as its `mode` says.
final class FakeWorker: @unchecked Sendable {
    enum Mode: Sendable {
        /// Blocks of the right ranges whose gradients are NaN (the loss finite).
        case nan
        /// Never answers a task (but keeps sending heartbeats).
        case silent
        /// Answers with one block of a range it was not given.
        case wrongRange
    }

    let endpoint: String
    let mode: Mode
    private let done = DispatchSemaphore(value: 0)
    private(set) var tasksSeen = 0
    private(set) var refusal: String?

    init(endpoint: String, mode: Mode) { self.endpoint = endpoint; self.mode = mode }

    /// Runs on a thread of its own until SHUTDOWN, or `seconds`.
    func start(seconds: Double = 60) {
        Thread.detachNewThread { [self] in
            try? run(until: Date().addingTimeInterval(seconds))
            done.signal()
        }
    }

    func wait(seconds: Double = 60) { _ = done.wait(timeout: .now() + seconds) }

    private func run(until deadline: Date) throws {
        let context = try ZMQContext()
        let socket = try ZMQSocket(context, .dealer)
        defer { socket.close() }
        try socket.connect(endpoint)
        let blas = BLASMachine.current
        let hello = Hello(threads: 1, host: "fake", pid: Int(getpid()), fingerprints: [], blasLoaded: blas.loaded, blasRunnable: blas.runnable)
        try socket.send(Message.frames(kind: .hello, runID: 0, step: 0, body: hello.encode()))
        var runID: UInt64 = 0, shapes: [[Int]] = []
        var lastBeat = Date()
        while Date() < deadline {
            if runID != 0, Date().timeIntervalSince(lastBeat) > 0.2 {
                try socket.send(Message.frames(kind: .heartbeat, runID: runID, step: 0, body: []))
                lastBeat = Date()
            }
            guard let frames = try socket.receive(timeout: 0.1), let message = try? Message.parse(frames[...]) else { continue }
            switch message.header.kind {
            case .welcome:
                runID = message.header.runID
                shapes = try Welcome.decode(message).shapes
            case .task:
                tasksSeen += 1
                guard mode != .silent else { continue }
                let task = try TaskMessage.decode(message)
                try answer(task, step: message.header.step, runID: runID, shapes: shapes, socket: socket)
            case .shutdown:
                let shutdown = try? ShutdownMessage.decode(message)
                if shutdown?.refused == true { refusal = shutdown?.reason }
                return
            default: continue
            }
        }
    }

    private func answer(_ task: TaskMessage, step: UInt64, runID: UInt64, shapes: [[Int]], socket: ZMQSocket) throws {
        let tree = GradientTree(leafCount: task.leafCount)
        var ranges = tree.blocks(covering: task.range)
        if mode == .wrongRange { ranges = [0..<1] }
        var frames: [OutgoingFrame] = []
        for _ in ranges {
            for shape in shapes {
                let count = shape.reduce(1, *)
                frames.append(.bytes(Array(repeating: Float.nan, count: count).withUnsafeBytes { Array($0) }))
            }
        }
        let blocks = ranges.map { ResultMessage.Block(range: $0, lossSum: 1, samples: $0.count, correct: 0) }
        let result = ResultMessage(taskID: task.taskID, blocks: blocks, computeSeconds: 0.001)
        try socket.send(Message.frames(kind: .result, runID: runID, step: step, body: result.encode(), tensors: frames))
    }
}
