import CohortTensor
import Foundation

/// NumPy .npy files (format 1.0–3.0): magic "\x93NUMPY", version, header length, a Python dict
/// literal {'descr': '<f4', 'fortran_order': False, 'shape': (N, ...)}, then the data in C order.
package enum NPY {
    package static func read(path: String) throws(DataError) -> Tensor {
        guard FileManager.default.fileExists(atPath: path) else { throw DataError(file: path, "no such file") }
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError(file: path, "cannot read the file") }
        return try parse(data, file: path)
    }

    package static func parse(_ data: Data, file: String) throws(DataError) -> Tensor {
        let bytes = [UInt8](data.prefix(12))
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1..<6]) == Array("NUMPY".utf8) else {
            throw DataError(file: file, "wrong magic number: not a NumPy .npy file")
        }
        let major = bytes[6]
        let headerLengthSize = major == 1 ? 2 : 4
        guard [1, 2, 3].contains(major), bytes.count >= 8 + headerLengthSize else {
            throw DataError(file: file, "unsupported .npy version \(major)")
        }
        let headerLength = (0..<headerLengthSize).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
        let dataStart = 8 + headerLengthSize + headerLength
        guard data.count >= dataStart, let header = String(data: data.subdata(in: (8 + headerLengthSize)..<dataStart), encoding: .utf8) else {
            throw DataError(file: file, "truncated header")
        }
        guard let descr = field("descr", in: header), let order = field("fortran_order", in: header),
              let shapeText = field("shape", in: header) else {
            throw DataError(file: file, "header lacks descr, fortran_order or shape: \(header)")
        }
        guard order == "False" else { throw DataError(file: file, "Fortran-ordered arrays are not supported; save with np.ascontiguousarray") }
        let parts = shapeText.trimmingCharacters(in: CharacterSet(charactersIn: "()")).split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let shape = parts.compactMap { Int($0) }
        // The shape comes from the file: every size a count, and their product checked.
        guard shape.count == parts.count, shape.count <= 8, let count = checkedElementCount(shape) else {
            throw DataError(file: file, "shape \(shapeText) is not a shape of at most 8 sizes whose product fits")
        }
        let type = descr.trimmingCharacters(in: CharacterSet(charactersIn: "'\""))
        let (size, convert): (Int, (UnsafeRawPointer, Int) -> Float)
        switch type {
        case "<f4": (size, convert) = (4, { Float(bitPattern: UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 4 * $1, as: UInt32.self))) })
        case "<f8": (size, convert) = (8, { Float(Double(bitPattern: UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 8 * $1, as: UInt64.self)))) })
        case "|u1", "<u1": (size, convert) = (1, { Float($0.load(fromByteOffset: $1, as: UInt8.self)) })
        case "<i8": (size, convert) = (8, { Float(Int64(littleEndian: $0.loadUnaligned(fromByteOffset: 8 * $1, as: Int64.self))) })
        case "<i4": (size, convert) = (4, { Float(Int32(littleEndian: $0.loadUnaligned(fromByteOffset: 4 * $1, as: Int32.self))) })
        default: throw DataError(file: file, "dtype \(type) is not supported (float32, float64, uint8, int32, int64)")
        }
        guard let bytes = checkedElementCount([count, size]), data.count - dataStart == bytes else {
            throw DataError(file: file, "shape \(shape) of \(type) does not fit the \(data.count - dataStart) bytes of data in the file")
        }
        var t = Tensor(uninitializedShape: shape)
        t.withUnsafeMutableBufferPointer { dst in
            data.withUnsafeBytes { raw in
                let base = raw.baseAddress! + dataStart
                for i in 0..<count { dst[i] = convert(base, i) }
            }
        }
        return t
    }

    /// The text of a key's value in the header dict: 'descr': '<f4' → '<f4'; 'shape': (2, 3) → (2, 3).
    static func field(_ key: String, in header: String) -> String? {
        guard let keyRange = header.range(of: "'\(key)'") ?? header.range(of: "\"\(key)\"") else { return nil }
        var rest = header[keyRange.upperBound...].drop { $0 == " " || $0 == ":" }
        if rest.first == "(" {
            guard let close = rest.firstIndex(of: ")") else { return nil }
            return String(rest[...close])
        }
        rest = rest.prefix { $0 != "," && $0 != "}" }
        return rest.trimmingCharacters(in: .whitespaces)
    }

    /// Writes a float32 array (for tests and for handing arrays back to Python).
    package static func encode(_ t: Tensor) -> Data {
        let shape = t.shape.count == 1 ? "(\(t.shape[0]),)" : "(" + t.shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shape), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        data.append(contentsOf: [UInt8(header.utf8.count & 0xff), UInt8(header.utf8.count >> 8)])
        data.append(Data(header.utf8))
        t.withUnsafeBufferPointer { p in for v in p { var bits = v.bitPattern.littleEndian; withUnsafeBytes(of: &bits) { data.append(contentsOf: $0) } } }
        return data
    }
}
