import CohortTensor
import Foundation
import ZeroMQ

/// The Cohort wire protocol. Every message is frames: a 32-byte header, a body, then raw tensor
/// frames. Header: magic "CHRT", protocol version (u16), kind (u8), flags (u8), run id (u64),
/// step (u64), body length (u32), number of tensor frames (u32); all little-endian.
package enum Wire {
    package static let magic: [UInt8] = Array("CHRT".utf8)
    package static let version: UInt16 = 8
    static let headerSize = 32
}

package enum MessageKind: UInt8, Sendable, CaseIterable {
    case hello = 1, welcome, task, result, weights, shutdown, heartbeat, failure, weightsChunk, gradientChunk, relayUnreachable
}

package struct Header: Sendable, Equatable {
    package var version: UInt16 = Wire.version
    package var kind: MessageKind
    var runID: UInt64
    package var step: UInt64
    var bodyLength: UInt32 = 0
    var tensorFrames: UInt32 = 0

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
package struct Message {
    package var header: Header
    package var body: [UInt8]
    package var tensors: [ZMQFrame]

    /// Parses frames [header, body, tensors...], checking every declared length.
    package static func parse(_ frames: ArraySlice<ZMQFrame>) throws -> Message {
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
    package static func frames(kind: MessageKind, runID: UInt64, step: UInt64, body: [UInt8],
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
