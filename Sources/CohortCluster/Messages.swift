import CohortTensor
import Foundation
import ZeroMQ

/// The Cohort wire protocol. Every message is frames: a 32-byte header, a body, then raw tensor
/// frames. Header: magic "CHRT", protocol version (u16), kind (u8), flags (u8), run id (u64),
/// step (u64), body length (u32), number of tensor frames (u32); all little-endian.
public enum Wire {
    public static let magic: [UInt8] = Array("CHRT".utf8)
    public static let version: UInt16 = 2
    static let headerSize = 32
}

public enum MessageKind: UInt8, Sendable, CaseIterable {
    case hello = 1, welcome, task, result, weights, shutdown, heartbeat
}

public struct Header: Sendable, Equatable {
    public var version: UInt16 = Wire.version
    public var kind: MessageKind
    public var runID: UInt64
    public var step: UInt64
    public var bodyLength: UInt32 = 0
    public var tensorFrames: UInt32 = 0

    func encode() -> [UInt8] {
        var w = WireWriter()
        w.bytes = Wire.magic
        w.u16(version); w.u8(kind.rawValue); w.u8(0)
        w.u64(runID); w.u64(step); w.u32(bodyLength); w.u32(tensorFrames)
        return w.bytes
    }

    /// Decodes and checks a header frame. A version mismatch is reported separately so the peer
    /// can be told why it is refused.
    static func decode(_ raw: UnsafeRawBufferPointer) throws -> Header {
        guard raw.count == Wire.headerSize else { throw ProtocolError("header frame has \(raw.count) bytes, expected \(Wire.headerSize)") }
        var r = WireReader(raw)
        guard Array(try r.take(4)) == Wire.magic else { throw ProtocolError("bad magic: not a Cohort message") }
        let version = try r.u16()
        let kindByte = try r.u8()
        _ = try r.u8()
        guard let kind = MessageKind(rawValue: kindByte) else { throw ProtocolError("unknown message kind \(kindByte)") }
        return Header(version: version, kind: kind, runID: try r.u64(), step: try r.u64(), bodyLength: try r.u32(), tensorFrames: try r.u32())
    }
}

/// A decoded message: header, body bytes (copied out) and the tensor frames (still owned by zmq).
public struct Message {
    public var header: Header
    public var body: [UInt8]
    public var tensors: [ZMQFrame]

    /// Parses frames [header, body, tensors...], checking every declared length.
    public static func parse(_ frames: ArraySlice<ZMQFrame>) throws -> Message {
        guard frames.count >= 2 else { throw ProtocolError("message has \(frames.count) frames, needs header and body") }
        let header = try frames[frames.startIndex].withUnsafeBytes { raw in try Header.decode(raw) }
        let body = frames[frames.startIndex + 1]
        guard body.count == Int(header.bodyLength) else {
            throw ProtocolError("body has \(body.count) bytes, the header says \(header.bodyLength)")
        }
        guard frames.count - 2 == Int(header.tensorFrames) else {
            throw ProtocolError("\(frames.count - 2) tensor frames, the header says \(header.tensorFrames)")
        }
        return Message(header: header, body: body.bytes, tensors: Array(frames.dropFirst(2)))
    }

    /// Frames for sending.
    public static func frames(kind: MessageKind, runID: UInt64, step: UInt64, body: [UInt8],
                              tensors: [OutgoingFrame] = []) -> [OutgoingFrame] {
        let header = Header(kind: kind, runID: runID, step: step, bodyLength: UInt32(body.count), tensorFrames: UInt32(tensors.count))
        return [.bytes(header.encode()), .bytes(body)] + tensors
    }

    func read<T>(_ body: (inout WireReader) throws -> T) throws -> T {
        try self.body.withUnsafeBytes { raw in
            var reader = WireReader(raw)
            let value = try body(&reader)
            try reader.finish()
            return value
        }
    }
}

// MARK: message bodies

/// HELLO, worker → coordinator: who it is and which datasets it holds.
public struct Hello: Sendable, Equatable {
    public var threads: Int
    public var host: String
    public var pid: Int
    public var fingerprints: [String]
    /// Host and boot id: equal to the coordinator's when both can share /dev/shm.
    public var machineID: String = ""

    func encode() -> [UInt8] {
        var w = WireWriter()
        w.int(threads); w.string(host); w.int(pid); w.u32(UInt32(fingerprints.count))
        for f in fingerprints { w.string(f) }
        w.string(machineID)
        return w.bytes
    }

    static func decode(_ m: Message) throws -> Hello {
        try m.read { r in
            let threads = try r.int(), host = try r.string(limit: 256), pid = try r.int()
            let n = Int(try r.u32())
            guard n <= 64 else { throw ProtocolError("\(n) fingerprints") }
            var prints: [String] = []
            for _ in 0..<n { prints.append(try r.string(limit: 128)) }
            return Hello(threads: threads, host: host, pid: pid, fingerprints: prints, machineID: try r.string(limit: 512))
        }
    }
}

/// WELCOME, coordinator → worker: the model, how the data will come, and the current weights.
public struct Welcome: Sendable {
    public var workerID: UInt32
    /// The `model` section and loss of the config, as YAML (see ExperimentConfig.workerSpec).
    public var modelSpec: String
    public var seed: UInt64
    public var datasetFingerprint: String
    /// True when the worker's data differs from the coordinator's: tasks then carry samples.
    public var sendsSamples: Bool
    public var weightsVersion: UInt64
    public var shapes: [[Int]]
    /// Shared-memory files for a worker on the coordinator's machine ("" when not offered):
    /// the weights of every step, and `resultSlots` gradient blocks written by this worker.
    public var sharedWeights: String = ""
    public var sharedResults: String = ""
    public var resultSlots: Int = 0

    func encode() -> [UInt8] {
        var w = WireWriter()
        w.u32(workerID); w.string(modelSpec); w.u64(seed); w.string(datasetFingerprint); w.bool(sendsSamples)
        w.u64(weightsVersion); w.u32(UInt32(shapes.count)); for s in shapes { w.shape(s) }
        w.string(sharedWeights); w.string(sharedResults); w.u32(UInt32(resultSlots))
        return w.bytes
    }

    static func decode(_ m: Message) throws -> Welcome {
        try m.read { r in
            let id = try r.u32(), spec = try r.string(), seed = try r.u64(), print = try r.string(limit: 128)
            let samples = try r.bool(), version = try r.u64()
            let n = Int(try r.u32())
            guard n <= 4096 else { throw ProtocolError("\(n) parameters") }
            var shapes: [[Int]] = []
            for _ in 0..<n { shapes.append(try r.shape()) }
            var welcome = Welcome(workerID: id, modelSpec: spec, seed: seed, datasetFingerprint: print, sendsSamples: samples,
                                  weightsVersion: version, shapes: shapes)
            welcome.sharedWeights = try r.string(limit: 4096)
            welcome.sharedResults = try r.string(limit: 4096)
            welcome.resultSlots = Int(try r.u32())
            return welcome
        }
    }
}

/// TASK, coordinator → worker: compute leaves [first, last) of a tree of `leafCount` micro-batches.
/// Each leaf lists its sample indices; with `hasSamples` two tensor frames per leaf follow
/// (inputs, targets) whose shapes are in the body.
public struct TaskMessage: Sendable {
    public var taskID: UInt64
    public var weightsVersion: UInt64
    public var leafCount: Int
    public var first: Int
    public var leaves: [[Int]]
    public var sampleShapes: [(inputs: [Int], targets: [Int])]
    /// The first shared-memory slot for this task's blocks, or −1 to send them as frames. Tasks
    /// of one step get distinct slots, so a result is never overwritten before it is summed.
    public var sharedSlot: Int = -1

    public var range: Range<Int> { first..<(first + leaves.count) }

    func encode() -> [UInt8] {
        var w = WireWriter()
        w.u64(taskID); w.u64(weightsVersion); w.int(sharedSlot)
        w.u32(UInt32(leafCount)); w.u32(UInt32(first)); w.u32(UInt32(leaves.count))
        for leaf in leaves { w.u32(UInt32(leaf.count)); for i in leaf { w.u32(UInt32(i)) } }
        w.u32(UInt32(sampleShapes.count))
        for s in sampleShapes { w.shape(s.inputs); w.shape(s.targets) }
        return w.bytes
    }

    static func decode(_ m: Message) throws -> TaskMessage {
        try m.read { r in
            let id = try r.u64(), version = try r.u64(), slot = try r.int()
            let leafCount = Int(try r.u32()), first = Int(try r.u32()), n = Int(try r.u32())
            guard leafCount > 0, leafCount <= 1 << 16, first + n <= leafCount, n > 0 else {
                throw ProtocolError("leaves \(first)..<\(first + n) of \(leafCount)")
            }
            var leaves: [[Int]] = []
            for _ in 0..<n {
                let count = Int(try r.u32())
                guard count <= r.remaining / 4 else { throw ProtocolError("leaf of \(count) samples exceeds the body") }
                var leaf: [Int] = []
                leaf.reserveCapacity(count)
                for _ in 0..<count { leaf.append(Int(try r.u32())) }
                leaves.append(leaf)
            }
            let shapeCount = Int(try r.u32())
            guard shapeCount == 0 || shapeCount == n else { throw ProtocolError("\(shapeCount) sample shapes for \(n) leaves") }
            var shapes: [(inputs: [Int], targets: [Int])] = []
            for _ in 0..<shapeCount { shapes.append((try r.shape(), try r.shape())) }
            return TaskMessage(taskID: id, weightsVersion: version, leafCount: leafCount, first: first, leaves: leaves,
                               sampleShapes: shapes, sharedSlot: slot)
        }
    }
}

/// RESULT, worker → coordinator: sums of whole tree nodes; each block is followed by one tensor
/// frame per parameter, in parameter order.
public struct ResultMessage: Sendable {
    public struct Block: Sendable {
        public var range: Range<Int>
        public var lossSum: Double
        public var samples: Int
        public var correct: Int
    }
    public var taskID: UInt64
    public var blocks: [Block]
    public var computeSeconds: Double
    /// The gradients are in the worker's shared-memory slots 0, 1, … instead of frames.
    public var shared: Bool = false

    func encode() -> [UInt8] {
        var w = WireWriter()
        w.u64(taskID); w.f64(computeSeconds); w.bool(shared); w.u32(UInt32(blocks.count))
        for b in blocks {
            w.u32(UInt32(b.range.lowerBound)); w.u32(UInt32(b.range.upperBound)); w.f64(b.lossSum)
            w.u32(UInt32(b.samples)); w.u32(UInt32(b.correct))
        }
        return w.bytes
    }

    static func decode(_ m: Message) throws -> ResultMessage {
        try m.read { r in
            let id = try r.u64(), seconds = try r.f64(), shared = try r.bool(), n = Int(try r.u32())
            guard n > 0, n <= 64, shared ? m.tensors.isEmpty : m.tensors.count % n == 0 else {
                throw ProtocolError("\(n) blocks with \(m.tensors.count) tensor frames")
            }
            var blocks: [Block] = []
            for _ in 0..<n {
                let lo = Int(try r.u32()), hi = Int(try r.u32())
                guard lo < hi else { throw ProtocolError("empty block \(lo)..<\(hi)") }
                blocks.append(Block(range: lo..<hi, lossSum: try r.f64(), samples: Int(try r.u32()), correct: Int(try r.u32())))
            }
            return ResultMessage(taskID: id, blocks: blocks, computeSeconds: seconds, shared: shared)
        }
    }
}

/// WEIGHTS, coordinator → workers: the new weights as one packed frame, or (for workers on the
/// coordinator's machine) a note that they are in the shared weights file.
public struct WeightsMessage: Sendable {
    public var version: UInt64
    public var shared: Bool = false

    func encode() -> [UInt8] { var w = WireWriter(); w.u64(version); w.bool(shared); return w.bytes }

    static func decode(_ m: Message) throws -> WeightsMessage {
        let message = try m.read { r in WeightsMessage(version: try r.u64(), shared: try r.bool()) }
        guard m.tensors.count == (message.shared ? 0 : 1) else { throw ProtocolError("weights with \(m.tensors.count) tensor frames") }
        return message
    }
}

/// SHUTDOWN, coordinator → worker: stop, and why (the end of training, or a refusal).
public struct ShutdownMessage: Sendable {
    public var reason: String
    public var refused: Bool

    func encode() -> [UInt8] { var w = WireWriter(); w.bool(refused); w.string(reason); return w.bytes }

    static func decode(_ m: Message) throws -> ShutdownMessage {
        try m.read { r in
            let refused = try r.bool()
            return ShutdownMessage(reason: try r.string(limit: 4096), refused: refused)
        }
    }
}
