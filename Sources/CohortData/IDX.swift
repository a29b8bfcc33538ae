import CohortTensor
import Foundation

/// The IDX format of MNIST and Fashion-MNIST (LeCun et al.): a magic number 0x0000TTDD (TT the
/// element type, DD the number of dimensions), DD big-endian u32 sizes, then the elements.
enum IDX {
    /// An IDX file of unsigned bytes: its dimensions and raw elements.
    struct Bytes: Sendable {
        var dimensions: [Int]
        var values: Data
    }

    static func read(path: String, expectedDimensions: Int) throws(DataError) -> Bytes {
        try parse(Gzip.readMaybeCompressed(path), file: path, expectedDimensions: expectedDimensions)
    }

    static func parse(_ data: Data, file: String, expectedDimensions: Int) throws(DataError) -> Bytes {
        let bytes = [UInt8](data.prefix(4 + 4 * 4))
        guard bytes.count >= 4 else { throw DataError(file: file, "too short for an IDX header (\(data.count) bytes)") }
        guard bytes[0] == 0, bytes[1] == 0 else {
            throw DataError(file: file, "wrong magic number 0x\(bytes.prefix(4).map { String(format: "%02x", $0) }.joined()): not an IDX file")
        }
        guard bytes[2] == 0x08 else {
            throw DataError(file: file, "element type 0x\(String(format: "%02x", bytes[2])) is not unsigned byte (0x08)")
        }
        let rank = Int(bytes[3])
        guard rank == expectedDimensions else {
            throw DataError(file: file, "has \(rank) dimensions, expected \(expectedDimensions) (magic 0x0000080\(rank))")
        }
        let headerLength = 4 + 4 * rank
        guard data.count >= headerLength else { throw DataError(file: file, "truncated header") }
        let all = data.withUnsafeBytes { Array($0.prefix(headerLength)) }
        let dims = (0..<rank).map { d in (0..<4).reduce(0) { $0 << 8 | Int(all[4 + 4 * d + $1]) } }
        // The sizes come from the file: checked arithmetic, so a crafted header is an error
        // message and never an overflow trap.
        guard let count = checkedElementCount(dims) else {
            throw DataError(file: file, "header sizes \(dims.map(String.init).joined(separator: "×")) overflow")
        }
        guard data.count - headerLength == count else {
            throw DataError(file: file, "header promises \(dims.map(String.init).joined(separator: "×")) = \(count) bytes of data, the file has \(data.count - headerLength)\(data.count - headerLength < count ? " (truncated)" : "")")
        }
        return Bytes(dimensions: dims, values: data.subdata(in: (data.startIndex + headerLength)..<data.endIndex))
    }
}
