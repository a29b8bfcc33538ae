@testable import CohortExperiment
import CohortTestSupport
import Foundation
import Testing

/// Reads a TFRecord file, checking every length and masked CRC32C, and decodes the Events'
/// scalars with a small independent protobuf reader.
func readEvents(_ data: [UInt8]) throws -> [(step: Int, scalars: [String: Float], version: String?)] {
    struct Bad: Error { let why: String }
    func u64(_ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(data[at + $1]) << (8 * UInt64($1)) } }
    func u32(_ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(data[at + $1]) << (8 * UInt32($1)) } }
    var events: [(Int, [String: Float], String?)] = []
    var at = 0
    while at < data.count {
        guard at + 12 <= data.count else { throw Bad(why: "truncated header") }
        let length = Int(u64(at))
        guard CRC32C.masked(Array(data[at..<(at + 8)])) == u32(at + 8) else { throw Bad(why: "length CRC") }
        let body = Array(data[(at + 12)..<(at + 12 + length)])
        guard CRC32C.masked(body) == u32(at + 12 + length) else { throw Bad(why: "data CRC") }
        at += 12 + length + 4
        // Protobuf: fields of Event.
        func fields(_ b: [UInt8]) throws -> [(Int, Int, [UInt8], UInt64)] {
            var out: [(Int, Int, [UInt8], UInt64)] = []
            var i = 0
            func varint() -> UInt64 { var v: UInt64 = 0, s: UInt64 = 0; while true { let c = b[i]; i += 1; v |= UInt64(c & 0x7F) << s; s += 7; if c < 0x80 { return v } } }
            while i < b.count {
                let key = varint(), field = Int(key >> 3), type = Int(key & 7)
                switch type {
                case 0: out.append((field, 0, [], varint()))
                case 1: out.append((field, 1, Array(b[i..<(i + 8)]), 0)); i += 8
                case 5: out.append((field, 5, Array(b[i..<(i + 4)]), 0)); i += 4
                case 2: let n = Int(varint()); out.append((field, 2, Array(b[i..<(i + n)]), 0)); i += n
                default: throw Bad(why: "wire type \(type)")
                }
            }
            return out
        }
        var step = 0, version: String?, scalars: [String: Float] = [:]
        for (field, _, bytes, value) in try fields(body) {
            if field == 2 { step = Int(value) }
            if field == 3 { version = String(decoding: bytes, as: UTF8.self) }
            if field == 5 {
                for (f, _, valueBytes, _) in try fields(bytes) where f == 1 {
                    var tag = "", number: Float = .nan
                    for (vf, _, vb, _) in try fields(valueBytes) {
                        if vf == 1 { tag = String(decoding: vb, as: UTF8.self) }
                        if vf == 2 { number = Float(bitPattern: vb.enumerated().reduce(0) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }) }
                    }
                    scalars[tag] = number
                }
            }
        }
        events.append((step, scalars, version))
    }
    return events
}

@Suite struct TensorBoardTests {
    @Test func crc32cKnownAnswer() {
        // The standard check value of CRC-32C.
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    }

    @Test func eventFilesFollowTheRecordFormat() throws {
        let dir = temporaryDirectory().appendingPathComponent("run")
        let result = try runCohort(["train", "configs/xor.yaml", "--run-dir", dir.path, "--quiet", "--workers", "1", "--set", "training.steps=25"])
        #expect(result.status == 0, "\(result.stderr)")
        let file = try #require(try FileManager.default.contentsOfDirectory(atPath: dir.path).first { $0.hasPrefix("events.out.tfevents.") })
        let events = try readEvents(Array(try Data(contentsOf: dir.appendingPathComponent(file))))
        #expect(events.first?.version == "brain.Event:2")
        let steps = events.dropFirst()
        #expect(steps.map(\.step) == Array(1...25))
        let metrics = try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
        let first = try JSONSerialization.jsonObject(with: Data(metrics[0].utf8)) as? [String: Any]
        #expect(steps.first?.scalars["train/loss"] == Float(first?["loss"] as? Double ?? .nan))
        #expect(steps.allSatisfy { $0.scalars["train/grad_norm"] != nil && $0.scalars["train/lr"] == 0.5 })
    }
}
