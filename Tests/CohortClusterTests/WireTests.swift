@testable import CohortCluster
@testable import CohortTensor
import CohortTraining
import Foundation
import Testing
@testable import ZeroMQ

/// Sends frames over a real PAIR of sockets and returns what arrives, so messages are decoded
/// from genuine ZMQ frames.
func roundTrip(_ frames: [OutgoingFrame]) throws -> [ZMQFrame] {
    let context = try ZMQContext()
    let a = try ZMQSocket(context, .pair), b = try ZMQSocket(context, .pair)
    let endpoint = "inproc://wire-\(UUID().uuidString)"
    try b.bind(endpoint)
    try a.connect(endpoint)
    try a.send(frames)
    let received = try #require(try b.receive(timeout: 5))
    a.close(); b.close()
    return received
}

@Suite struct WireTests {
    @Test func messagesRoundTrip() throws {
        let hello = Hello(threads: 3, host: "node-7", pid: 4242, fingerprints: ["abc", "def"])
        let frames = try roundTrip(Message.frames(kind: .hello, runID: 9, step: 0, body: hello.encode()))
        let message = try Message.parse(frames[...])
        #expect(message.header.kind == .hello && message.header.runID == 9 && message.header.version == Wire.version)
        #expect(try Hello.decode(message) == hello)

        let task = TaskMessage(taskID: 5, weightsVersion: 2, leafCount: 8, first: 4, leaves: [[1, 2], [3], [9, 8, 7], [0]],
                               sampleShapes: [])
        let decoded = try TaskMessage.decode(Message.parse(try roundTrip(Message.frames(kind: .task, runID: 1, step: 2, body: task.encode()))[...]))
        #expect(decoded.leaves == task.leaves && decoded.range == 4..<8 && decoded.leafCount == 8 && decoded.nextLeaves.isEmpty)
        // With the same leaves' next samples; cut short, it is refused.
        var ahead = task
        ahead.nextLeaves = [[11], [12, 13], [14], [15, 16, 17]]
        let aheadBody = ahead.encode()
        #expect(try TaskMessage.decode(Message(header: Header(kind: .task, runID: 1, step: 2), body: aheadBody, tensors: [])).nextLeaves
                == ahead.nextLeaves)
        #expect(throws: ProtocolError.self) {
            try TaskMessage.decode(Message(header: Header(kind: .task, runID: 1, step: 2), body: Array(aheadBody.dropLast(4)), tensors: []))
        }

        let weights = [Tensor([[1, 2], [3, 4]]), Tensor([5, 6, 7])]
        let packed = PackedTensors(weights)
        let wire = try roundTrip(Message.frames(kind: .weights, runID: 1, step: 3, body: WeightsMessage(version: 3).encode(),
                                                tensors: [.zeroCopy(packed.bytes, owner: packed)]))
        let m = try Message.parse(wire[...])
        #expect(try WeightsMessage.decode(m).version == 3)
        #expect(try PackedTensors.unpack(m.tensors[0], shapes: packed.shapes) == weights)
    }

    @Test func everyLengthIsChecked() throws {
        let body = Hello(threads: 1, host: "h", pid: 1, fingerprints: []).encode()
        var header = Header(kind: .hello, runID: 1, step: 0, bodyLength: UInt32(body.count), tensorFrames: 0)
        // Body shorter or longer than the header says.
        header.bodyLength += 1
        #expect(throws: ProtocolError.self) { try Message.parse(try roundTrip([.bytes(header.encode()), .bytes(body)])[...]) }
        // A tensor frame the header does not announce.
        header.bodyLength -= 1
        #expect(throws: ProtocolError.self) { try Message.parse(try roundTrip([.bytes(header.encode()), .bytes(body), .bytes([0, 0, 0, 0])])[...]) }
        // Bad magic, short header, unknown kind.
        var bad = header.encode(); bad[0] = 0x58
        #expect(throws: ProtocolError.self) { try Message.parse(try roundTrip([.bytes(bad), .bytes(body)])[...]) }
        #expect(throws: ProtocolError.self) { try Message.parse(try roundTrip([.bytes(Array(header.encode().prefix(20))), .bytes(body)])[...]) }
        var kind = header.encode(); kind[6] = 99
        #expect(throws: ProtocolError.self) { try Message.parse(try roundTrip([.bytes(kind), .bytes(body)])[...]) }
        // A body whose inner lengths overrun it: a string claiming 1,000 bytes.
        var w = WireWriter(); w.int(1); w.u32(1000); w.bytes += [65, 66]
        let lying = Message(header: Header(kind: .hello, runID: 1, step: 0, bodyLength: UInt32(w.bytes.count)), body: w.bytes, tensors: [])
        #expect(throws: ProtocolError.self) { try Hello.decode(lying) }
        // Trailing garbage after a valid body.
        let trailing = Message(header: Header(kind: .hello, runID: 1, step: 0), body: body + [1], tensors: [])
        #expect(throws: ProtocolError.self) { try Hello.decode(trailing) }
        // A tensor frame whose size does not match the shapes.
        let frame = try roundTrip([.bytes([0, 0, 128, 63, 0, 0])])[0]
        #expect(throws: ProtocolError.self) { try PackedTensors.unpack(frame, shapes: [[2]]) }
        // A task whose leaves lie outside its tree.
        let task = TaskMessage(taskID: 1, weightsVersion: 0, leafCount: 2, first: 1, leaves: [[0], [1]], sampleShapes: [])
        #expect(throws: ProtocolError.self) { try TaskMessage.decode(Message(header: Header(kind: .task, runID: 1, step: 0), body: task.encode(), tensors: [])) }
    }

    /// Chunk messages: they round-trip, and a chunk of another layout, out of range, or of the
    /// wrong size is refused before anything is copied.
    @Test func chunkMessagesAreChecked() throws {
        // The first parameter travels last: chunks of 4096, 4096 and 1808 + 7 floats.
        let layout = StreamLayout(shapes: [[7], [10_000]], chunkFloats: Tensor.normBlock)
        func message(_ kind: MessageKind, _ body: [UInt8], floats: Int, width: Int = 4) throws -> Message {
            try Message.parse(try roundTrip(Message.frames(kind: kind, runID: 1, step: 4, body: body,
                                                           tensors: [.bytes([UInt8](repeating: 0, count: width * floats))]))[...])
        }
        let gradient = GradientChunkMessage(taskID: 8, block: 1, chunk: 2, chunkCount: 3)
        let decoded = try GradientChunkMessage.decode(try message(.gradientChunk, gradient.encode(), floats: 1815), layout: layout)
        #expect(decoded.taskID == 8 && decoded.block == 1 && decoded.chunk == 2)
        #expect(try WeightsChunkMessage.decode(try message(.weightsChunk, WeightsChunkMessage(version: 5, chunk: 0, chunkCount: 3).encode(),
                                                           floats: 4096), layout: layout).version == 5)
        // The wrong size for its chunk, a chunk past the end, another layout's count.
        #expect(throws: ProtocolError.self) { try GradientChunkMessage.decode(try message(.gradientChunk, gradient.encode(), floats: 4096), layout: layout) }
        let past = GradientChunkMessage(taskID: 8, block: 0, chunk: 3, chunkCount: 3).encode()
        #expect(throws: ProtocolError.self) { try GradientChunkMessage.decode(try message(.gradientChunk, past, floats: 1815), layout: layout) }
        let other = WeightsChunkMessage(version: 5, chunk: 0, chunkCount: 4).encode()
        #expect(throws: ProtocolError.self) { try WeightsChunkMessage.decode(try message(.weightsChunk, other, floats: 4096), layout: layout) }
        // With wire_dtype bf16 a chunk is two bytes a value: the fp32 size is refused, and a
        // chunk goes out rounded and comes back as those very floats.
        let half = StreamLayout(shapes: [[7], [10_000]], chunkFloats: Tensor.normBlock, dtype: .bf16)
        #expect(try GradientChunkMessage.decode(try message(.gradientChunk, gradient.encode(), floats: 1815, width: 2), layout: half).chunk == 2)
        #expect(throws: ProtocolError.self) { try GradientChunkMessage.decode(try message(.gradientChunk, gradient.encode(), floats: 1815), layout: half) }
        let values = Tensor(shape: [10_000], (0..<10_000).map { Float($0) / 7 }), tail = Tensor(shape: [7], (0..<7).map { Float($0) / 3 })
        let bytes = half.bytes(ofChunk: 2, of: [tail, values])
        #expect(bytes.count == 2 * 1815)
        let back = [Tensor(shape: [7], repeating: 0), Tensor(shape: [10_000], repeating: 0)]
        bytes.withUnsafeBytes { half.scatter(2, from: $0, into: back) }
        #expect(Array(back[1].scalars[8192...]) == values.scalars[8192...].map(BFloat16.round) && back[0].scalars == tail.scalars.map(BFloat16.round))
        // A streamed result carries no frames of its own.
        let result = ResultMessage(taskID: 1, blocks: [.init(range: 0..<2, lossSum: 1, samples: 4, correct: 2)], computeSeconds: 0.1, streamed: true)
        #expect(throws: ProtocolError.self) { try ResultMessage.decode(try message(.result, result.encode(), floats: 4)) }
        var relayed = result
        relayed.relayed = [(7, 0.25, 90 << 20), (9, 0.5, 91 << 20)]
        relayed.peakResidentBytes = 92 << 20
        let bare = try Message.parse(try roundTrip(Message.frames(kind: .result, runID: 1, step: 4, body: relayed.encode()))[...])
        let decodedResult = try ResultMessage.decode(bare)
        #expect(decodedResult.streamed && decodedResult.relayed.map(\.taskID) == [7, 9] && decodedResult.relayed.map(\.seconds) == [0.25, 0.5])
        #expect(decodedResult.relayed.map(\.peakResidentBytes) == [90 << 20, 91 << 20] && decodedResult.peakResidentBytes == 92 << 20)
        // A body cut short of its peak memory is refused.
        let short = Array(relayed.encode().dropLast(3))
        #expect(throws: (any Error).self) { try ResultMessage.decode(try Message.parse(try roundTrip(Message.frames(kind: .result, runID: 1, step: 4, body: short))[...])) }
    }

    @Test func oversizedFramesAreRefusedBeforeAllocation() throws {
        let context = try ZMQContext()
        let server = try ZMQSocket(context, .router), client = try ZMQSocket(context, .dealer)
        try server.setMaximumMessageSize(1024)
        try server.bind("tcp://127.0.0.1:*")
        try client.connect(try server.lastEndpoint)
        try client.send([.bytes(Array(repeating: 7, count: 4096))])
        #expect(try server.receive(timeout: 0.5) == nil, "a 4 KiB frame passed a 1 KiB limit")
        let fresh = try ZMQSocket(context, .dealer)
        try fresh.connect(try server.lastEndpoint)
        try fresh.send([.bytes([1, 2, 3])])
        let ok = try #require(try server.receive(timeout: 5))
        #expect(ok.last?.bytes == [1, 2, 3])
    }

    @Test func socketsCloseOnceAndReportErrno() throws {
        let context = try ZMQContext()
        let socket = try ZMQSocket(context, .dealer)
        socket.close()
        socket.close()
        #expect(throws: ZMQError.self) { try socket.connect("tcp://127.0.0.1:1") }
        let other = try ZMQSocket(context, .router)
        do { try other.bind("nonsense://x"); Issue.record("bound a nonsense endpoint") } catch {
            #expect(error.code != 0 && error.description.contains("zmq_bind"))
        }
    }
}
