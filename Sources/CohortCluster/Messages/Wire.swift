import CohortTensor
import Foundation
import ZeroMQ

/// A malformed message: it is dropped, counted and logged, never trusted.
struct ProtocolError: Error, CustomStringConvertible, Sendable {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Little-endian binary writer for message bodies.
struct WireWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { append(v.littleEndian) }
    mutating func u32(_ v: UInt32) { append(v.littleEndian) }
    mutating func u64(_ v: UInt64) { append(v.littleEndian) }
    mutating func int(_ v: Int) { u64(UInt64(bitPattern: Int64(v))) }
    mutating func f64(_ v: Double) { u64(v.bitPattern) }
    mutating func bool(_ v: Bool) { u8(v ? 1 : 0) }
    mutating func string(_ s: String) { let utf8 = Array(s.utf8); u32(UInt32(utf8.count)); bytes += utf8 }
    mutating func shape(_ s: [Int]) { u8(UInt8(s.count)); for d in s { u32(UInt32(d)) } }
    mutating func append<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v) { bytes += $0 } }
}

/// Little-endian reader that checks every length against what is left: it never reads past the
/// end of the buffer, whatever the message claims.
struct WireReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var remaining: Int { bytes.count - offset }

    mutating func take(_ n: Int) throws -> UnsafeRawBufferPointer {
        guard n >= 0, n <= remaining else { throw ProtocolError("body truncated: needs \(n) more bytes at offset \(offset), \(remaining) left") }
        defer { offset += n }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + n)])
    }

    mutating func integer<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let raw = try take(MemoryLayout<T>.size)
        return T(littleEndian: raw.loadUnaligned(as: T.self))
    }

    mutating func u8() throws -> UInt8 { try integer(UInt8.self) }
    mutating func u16() throws -> UInt16 { try integer(UInt16.self) }
    mutating func u32() throws -> UInt32 { try integer(UInt32.self) }
    mutating func u64() throws -> UInt64 { try integer(UInt64.self) }
    mutating func int() throws -> Int { Int(Int64(bitPattern: try u64())) }
    mutating func f64() throws -> Double { Double(bitPattern: try u64()) }
    mutating func bool() throws -> Bool { try u8() != 0 }

    mutating func string(limit: Int = 1 << 24) throws -> String {
        let n = Int(try u32())
        guard n <= limit else { throw ProtocolError("string of \(n) bytes exceeds \(limit)") }
        let raw = try take(n)
        guard let s = String(validating: raw, as: UTF8.self) else { throw ProtocolError("string is not UTF-8") }
        return s
    }

    mutating func shape() throws -> [Int] {
        let rank = Int(try u8())
        guard rank <= 8 else { throw ProtocolError("tensor rank \(rank) exceeds 8") }
        var s: [Int] = []
        var elements = 1
        for _ in 0..<rank {
            let d = Int(try u32())
            elements = elements.multipliedReportingOverflow(by: d).partialValue
            guard elements <= 1 << 32 else { throw ProtocolError("tensor of more than 2^32 elements") }
            s.append(d)
        }
        return s
    }

    func finish() throws {
        guard remaining == 0 else { throw ProtocolError("\(remaining) unexpected bytes at the end of the body") }
    }
}

/// Keeps a tensor's memory alive and unchanged while libzmq sends it without a copy.
final class TensorBox {
    let tensor: Tensor
    init(_ tensor: Tensor) { self.tensor = tensor }

    var frame: OutgoingFrame {
        .zeroCopy(tensor.withUnsafeBufferPointer { UnsafeRawBufferPointer($0) }, owner: self)
    }
}

/// Float32 tensors packed into one contiguous little-endian buffer: one frame per message, sent
/// without a copy, and the same buffer for every worker.
final class PackedTensors: @unchecked Sendable {
    let shapes: [[Int]]
    var buffer: Tensor

    init(_ tensors: [Tensor]) {
        shapes = tensors.map(\.shape)
        var flat = Tensor(uninitializedShape: [tensors.reduce(0) { $0 + $1.count }])
        flat.withUnsafeMutableBufferPointer { dst in
            var offset = 0
            for t in tensors {
                t.withUnsafeBufferPointer { src in (dst.baseAddress! + offset).update(from: src.baseAddress!, count: src.count) }
                offset += t.count
            }
        }
        buffer = flat
    }

    var byteCount: Int { buffer.count * 4 }

    /// The bytes for a zero-copy send (valid while this object lives; the send retains it).
    var bytes: UnsafeRawBufferPointer {
        buffer.withUnsafeBufferPointer { UnsafeRawBufferPointer($0) }
    }

    /// Tensors of the given shapes over a received frame, without copying: they keep the frame
    /// alive. The frame's size must match the shapes exactly.
    static func unpack(_ frame: ZMQFrame, shapes: [[Int]]) throws -> [Tensor] {
        let total = shapes.reduce(0) { $0 + $1.reduce(1, *) }
        guard frame.count == total * 4 else { throw ProtocolError("tensor frame has \(frame.count) bytes, the shapes need \(total * 4)") }
        let base = frame.mutableBaseAddress
        guard total == 0 || Int(bitPattern: base) % 4 == 0 else { return try copying(frame, shapes: shapes) }
        var offset = 0
        return shapes.map { shape in
            defer { offset += shape.reduce(1, *) * 4 }
            return Tensor(borrowing: (base ?? UnsafeMutableRawPointer(bitPattern: 64)!) + offset, shape: shape, owner: frame)
        }
    }

    /// Copies out (for frames libzmq did not align, which it does in practice).
    static func copying(_ frame: ZMQFrame, shapes: [[Int]]) throws -> [Tensor] {
        var offset = 0
        return frame.withUnsafeBytes { raw in
            shapes.map { shape in
                var t = Tensor(uninitializedShape: shape)
                let n = t.count
                t.withUnsafeMutableBufferPointer { dst in if n > 0 { memcpy(dst.baseAddress!, raw.baseAddress! + offset, n * 4) } }
                offset += n * 4
                return t
            }
        }
    }
}
