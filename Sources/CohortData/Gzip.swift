import CZlib
import Foundation

/// gzip decompression through zlib.
enum Gzip {
    static func isCompressed(_ data: Data) -> Bool { data.count >= 2 && data[data.startIndex] == 0x1f && data[data.startIndex + 1] == 0x8b }

    /// Inflates a whole gzip stream. `file` names the source in errors.
    static func decompress(_ data: Data, file: String) throws(DataError) -> Data {
        var out: UnsafeMutablePointer<UInt8>?
        var length = 0
        var message = [CChar](repeating: 0, count: 128)
        let status = data.withUnsafeBytes { raw in
            cohort_gunzip(raw.bindMemory(to: UInt8.self).baseAddress, raw.count, &out, &length, &message)
        }
        guard status == Z_OK, let out else {
            let text = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw DataError(file: file, "corrupt gzip data: \(text)")
        }
        return Data(bytesNoCopy: out, count: length, deallocator: .free)
    }

    /// Reads a file, inflating it when it starts with the gzip magic.
    static func readMaybeCompressed(_ path: String) throws(DataError) -> Data {
        guard FileManager.default.fileExists(atPath: path) else { throw DataError(file: path, "no such file") }
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError(file: path, "cannot read the file") }
        return isCompressed(data) ? try decompress(data, file: path) : data
    }
}
