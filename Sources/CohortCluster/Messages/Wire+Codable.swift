import Foundation

// Typed values that are not worth a hand-written layout (the model spec) travel as a
// length-prefixed binary property list: a maintained, self-describing binary format from
// Foundation. Decoding checks the length first and then every type, so a bad blob is a
// ProtocolError, never a trap.

extension WireWriter {
    mutating func codable<T: Encodable>(_ value: T) {
        let encoder = PropertyListEncoder()
        encoder.outputFormat = .binary
        // Encoding our own value types cannot fail; an empty blob would be refused on decoding.
        let data = (try? encoder.encode(value)) ?? Data()
        u32(UInt32(data.count))
        bytes += data
    }
}

extension WireReader {
    mutating func codable<T: Decodable>(_: T.Type, limit: Int) throws -> T {
        let n = Int(try u32())
        guard n <= limit else { throw ProtocolError("encoded \(T.self) of \(n) bytes exceeds \(limit)") }
        let data = Data(try take(n))
        do { return try PropertyListDecoder().decode(T.self, from: data) } catch {
            throw ProtocolError("\(T.self) does not decode: \(error)")
        }
    }
}
