import CohortTraining
import ZeroMQ

/// GRADIENT CHUNK, worker → coordinator: chunk `chunk` (of the run's `StreamLayout`) of block
/// `block` of a streamed RESULT, as one frame of little-endian floats (bfloat16s with
/// `wire_dtype: bf16`).
struct GradientChunkMessage: Sendable {
    var taskID: UInt64
    var block: Int
    var chunk: Int
    var chunkCount: Int
    /// The run's relay secret, when it goes to another worker (0 to the coordinator).
    var secret: UInt64 = 0

    func encode() -> [UInt8] {
        var w = WireWriter()
        w.u64(taskID); w.u32(UInt32(block)); w.u32(UInt32(chunk)); w.u32(UInt32(chunkCount)); w.u64(secret)
        return w.bytes
    }

    static func decode(_ m: Message, layout: StreamLayout) throws -> GradientChunkMessage {
        let message = try m.read { r in
            GradientChunkMessage(taskID: try r.u64(), block: Int(try r.u32()), chunk: Int(try r.u32()), chunkCount: Int(try r.u32()),
                                 secret: try r.u64())
        }
        try checkChunk(message.chunk, of: message.chunkCount, frames: m.tensors, layout: layout)
        return message
    }
}

/// WEIGHTS CHUNK, coordinator → worker: chunk `chunk` of the weights of `version`, streamed as
/// the update makes them. A worker uses them once it has every chunk and a task asks for them.
struct WeightsChunkMessage: Sendable {
    var version: UInt64
    var chunk: Int
    var chunkCount: Int
    /// The run's relay secret: a worker forwards the chunk as it came.
    var secret: UInt64 = 0
    /// Chunks of a later generation of the same version replace those before (the coordinator
    /// updated them again: the step was clipped after all, see `StreamedUpdate`).
    var generation: UInt32 = 0

    func encode() -> [UInt8] {
        var w = WireWriter()
        w.u64(version); w.u32(UInt32(chunk)); w.u32(UInt32(chunkCount)); w.u64(secret); w.u32(generation)
        return w.bytes
    }

    static func decode(_ m: Message, layout: StreamLayout) throws -> WeightsChunkMessage {
        let message = try m.read { r in
            WeightsChunkMessage(version: try r.u64(), chunk: Int(try r.u32()), chunkCount: Int(try r.u32()), secret: try r.u64(),
                                generation: try r.u32())
        }
        try checkChunk(message.chunk, of: message.chunkCount, frames: m.tensors, layout: layout)
        return message
    }
}

/// RELAY UNREACHABLE, worker → coordinator: this worker could not connect to another's relay
/// socket in time (a firewall, links only to the coordinator). The coordinator stops relaying.
struct RelayUnreachableMessage: Sendable {
    var endpoint: String

    func encode() -> [UInt8] { var w = WireWriter(); w.string(endpoint); return w.bytes }

    static func decode(_ m: Message) throws -> RelayUnreachableMessage {
        try m.read { r in RelayUnreachableMessage(endpoint: try r.string(limit: 512)) }
    }
}

/// A chunk message must name a chunk of this run's layout and carry exactly its floats.
func checkChunk(_ chunk: Int, of count: Int, frames: [ZMQFrame], layout: StreamLayout) throws {
    guard count == layout.chunkCount else { throw ProtocolError("\(count) chunks, the model has \(layout.chunkCount)") }
    guard chunk < count else { throw ProtocolError("chunk \(chunk) of \(count)") }
    guard frames.count == 1, frames[0].count == layout.byteCount(ofChunk: chunk) else {
        throw ProtocolError("chunk \(chunk) needs one frame of \(layout.byteCount(ofChunk: chunk)) bytes")
    }
}
