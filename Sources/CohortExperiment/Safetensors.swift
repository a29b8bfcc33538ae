import CohortTensor
import CohortData
import CohortTraining
import Foundation

/// The safetensors format (Hugging Face): an 8-byte little-endian header length N, N bytes of
/// JSON mapping each tensor name to {dtype, shape, data_offsets} plus an optional string map
/// "__metadata__", then the raw little-endian data. PyTorch loads it with safetensors.torch.
package enum Safetensors {
    package struct Entry: Sendable {
        package var name: String
        package var tensor: Tensor
        package init(_ name: String, _ tensor: Tensor) { self.name = name; self.tensor = tensor }
    }

    struct FormatError: Error, CustomStringConvertible {
        var path: String
        var problem: String
        var description: String { "\(path): not a valid safetensors file: \(problem)" }
    }

    /// A whole file whose tensors do not fit the model it is loaded for.
    package struct MismatchError: Error, CustomStringConvertible {
        var path: String
        var problem: String
        package var description: String { "\(path): \(problem)" }
    }

    /// Metadata key of a tensor's checksum: SHA-256 of its little-endian bytes. Cohort writes one
    /// for every tensor and checks it on reading, so a damaged file is refused rather than used
    /// (PyTorch ignores the metadata).
    static func checksumKey(_ name: String) -> String { "sha256:\(name)" }

    static func checksum(_ tensor: Tensor) -> String {
        var hasher = SHA256()
        tensor.withUnsafeBufferPointer { hasher.update(UnsafeRawBufferPointer($0)) }
        return hasher.hexDigest()
    }

    /// Encodes tensors (in the given order) and metadata, with each tensor's checksum.
    package static func encode(_ entries: [Entry], metadata: [String: String] = [:]) -> Data {
        var header: [String: Any] = [:]
        var offset = 0
        var metadata = metadata
        for entry in entries {
            let bytes = entry.tensor.count * 4
            header[entry.name] = ["dtype": "F32", "shape": entry.tensor.shape, "data_offsets": [offset, offset + bytes]]
            metadata[checksumKey(entry.name)] = checksum(entry.tensor)
            offset += bytes
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = try! JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
        while json.count % 8 != 0 { json.append(0x20) }
        var data = Data(capacity: 8 + json.count + offset)
        var length = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &length) { data.append(contentsOf: $0) }
        data.append(json)
        for entry in entries {
            entry.tensor.withUnsafeBufferPointer { p in
                // Float32 is stored little-endian; on a big-endian host swap first.
                if UInt32(1).littleEndian == 1 {
                    data.append(UnsafeBufferPointer(start: UnsafeRawPointer(p.baseAddress!).assumingMemoryBound(to: UInt8.self), count: p.count * 4))
                } else {
                    for v in p { var bits = v.bitPattern.littleEndian; withUnsafeBytes(of: &bits) { data.append(contentsOf: $0) } }
                }
            }
        }
        return data
    }

    /// Writes atomically (temp file, fsync, rename).
    package static func write(_ entries: [Entry], metadata: [String: String] = [:], to path: String) throws {
        try AtomicFile.write(encode(entries, metadata: metadata), to: path)
    }

    /// Reads every tensor (F32, F64, F16 not supported) and the metadata; checks every length.
    package static func read(path: String) throws -> (entries: [Entry], metadata: [String: String]) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FormatError(path: path, problem: "cannot read the file")
        }
        return try decode(data, path: path)
    }

    package static func decode(_ data: Data, path: String = "<memory>") throws -> (entries: [Entry], metadata: [String: String]) {
        func fail(_ problem: String) -> FormatError { FormatError(path: path, problem: problem) }
        guard data.count >= 8 else { throw fail("shorter than its 8-byte header length") }
        let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard headerLength <= UInt64(data.count - 8) else { throw fail("header length \(headerLength) exceeds the file") }
        let dataStart = 8 + Int(headerLength)
        guard let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<dataStart)) as? [String: Any] else {
            throw fail("header is not a JSON object")
        }
        let metadata = header["__metadata__"] as? [String: String] ?? [:]
        var entries: [(offset: Int, entry: Entry)] = []
        for (name, value) in header where name != "__metadata__" {
            guard let info = value as? [String: Any], let dtype = info["dtype"] as? String,
                  let shape = info["shape"] as? [Int], let offsets = info["data_offsets"] as? [Int], offsets.count == 2
            else { throw fail("entry '\(name)' lacks dtype, shape or data_offsets") }
            guard dtype == "F32" else { throw fail("tensor '\(name)' has dtype \(dtype); Cohort reads F32") }
            // Shapes and offsets come from the file: checked arithmetic, so a crafted header is
            // an error message and never an overflow trap.
            guard shape.count <= 8, shape.allSatisfy({ $0 >= 0 }), offsets[0] >= 0, offsets[1] >= offsets[0],
                  let count = checkedProduct(shape), let bytes = checkedProduct([count, 4]),
                  offsets[1] - offsets[0] == bytes, offsets[1] <= data.count - dataStart
            else { throw fail("tensor '\(name)' has offsets \(offsets) that do not fit shape \(shape) and the file") }
            var tensor = Tensor(uninitializedShape: shape)
            tensor.withUnsafeMutableBufferPointer { dst in
                data.withUnsafeBytes { raw in
                    let src = raw.baseAddress! + dataStart + offsets[0]
                    for i in 0..<count {
                        dst[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                    }
                }
            }
            if let expected = metadata[checksumKey(name)], checksum(tensor) != expected {
                throw fail("tensor '\(name)' does not match its checksum: the file is damaged")
            }
            entries.append((offsets[0], Entry(name, tensor)))
        }
        // The checksums are the file's own business: checked above, not handed on.
        let userMetadata = metadata.filter { !$0.key.hasPrefix("sha256:") }
        return (entries.sorted { $0.offset < $1.offset }.map(\.entry), userMetadata)
    }

    /// The product of sizes, or nil when it overflows.
    static func checkedProduct(_ sizes: [Int]) -> Int? {
        var product = 1
        for size in sizes {
            let (next, overflow) = product.multipliedReportingOverflow(by: size)
            if overflow { return nil }
            product = next
        }
        return product
    }
}
