import CohortData
import CohortTraining
import Foundation

/// TensorBoard scalar event files (events.out.tfevents.*), so `tensorboard --logdir runs` shows
/// the curves. Each record is: u64 length, masked CRC32C of the length, the bytes of a protobuf
/// `Event`, masked CRC32C of those bytes (all little-endian). The protobuf is small enough to
/// write by hand: Event { double wall_time = 1; int64 step = 2; string file_version = 3;
/// Summary summary = 5 }, Summary { repeated Value value = 1 }, Value { string tag = 1;
/// float simple_value = 2 }.
final class TensorBoardWriter {
    let path: String
    private let file: AppendFile

    init(directory: String) throws {
        let name = "events.out.tfevents.\(Int(Date().timeIntervalSince1970)).\(ProcessInfo.processInfo.hostName).\(getpid())"
        path = "\(directory)/\(name)"
        file = try AppendFile(path: path)
        var event = Protobuf()
        event.double(1, Date().timeIntervalSince1970)
        event.string(3, "brain.Event:2")
        try write(event.bytes)
    }

    /// One event with scalars for a step.
    func scalars(_ values: [(tag: String, value: Double)], step: Int) throws {
        var summary = Protobuf()
        for (tag, value) in values where value.isFinite {
            var v = Protobuf()
            v.string(1, tag)
            v.float(2, Float(value))
            summary.message(1, v)
        }
        var event = Protobuf()
        event.double(1, Date().timeIntervalSince1970)
        event.varint(2, UInt64(bitPattern: Int64(step)))
        event.message(5, summary)
        try write(event.bytes)
    }

    func write(_ data: [UInt8]) throws {
        try file.append(Self.record(data))
    }

    /// The framing of one record.
    static func record(_ data: [UInt8]) -> [UInt8] {
        var length = withUnsafeBytes(of: UInt64(data.count).littleEndian) { Array($0) }
        let lengthCRC = withUnsafeBytes(of: CRC32C.masked(length).littleEndian) { Array($0) }
        let dataCRC = withUnsafeBytes(of: CRC32C.masked(data).littleEndian) { Array($0) }
        length += lengthCRC
        return length + data + dataCRC
    }
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord frames use it.
enum CRC32C {
    static let table: [UInt32] = (0..<256).map { i in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    /// TFRecord's mask: rotate right by 15, add 0xa282ead8.
    static func masked(_ bytes: [UInt8]) -> UInt32 {
        let c = checksum(bytes)
        return ((c >> 15) | (c << 17)) &+ 0xA282_EAD8
    }
}

/// The few protobuf wire types an Event needs.
struct Protobuf {
    var bytes: [UInt8] = []

    mutating func varintRaw(_ v: UInt64) {
        var v = v
        while v >= 0x80 { bytes.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }
    mutating func key(_ field: Int, _ wireType: UInt64) { varintRaw(UInt64(field) << 3 | wireType) }
    mutating func varint(_ field: Int, _ v: UInt64) { key(field, 0); varintRaw(v) }
    mutating func double(_ field: Int, _ v: Double) { key(field, 1); bytes += withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
    mutating func float(_ field: Int, _ v: Float) { key(field, 5); bytes += withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
    mutating func bytesField(_ field: Int, _ b: [UInt8]) { key(field, 2); varintRaw(UInt64(b.count)); bytes += b }
    mutating func string(_ field: Int, _ s: String) { bytesField(field, Array(s.utf8)) }
    mutating func message(_ field: Int, _ m: Protobuf) { bytesField(field, m.bytes) }
}
