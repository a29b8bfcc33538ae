import CohortTensor
import Foundation

/// MNIST and Fashion-MNIST: the same four IDX files, gzip-compressed or raw.
package enum MNIST {
    package enum Split: String, Sendable { case train, test }

    static func fileStem(_ split: Split) -> (images: String, labels: String) {
        split == .train ? ("train-images-idx3-ubyte", "train-labels-idx1-ubyte") : ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    }

    /// The path of a file in `directory`, preferring the .gz form.
    static func locate(_ stem: String, in directory: String) throws(DataError) -> String {
        for candidate in ["\(directory)/\(stem).gz", "\(directory)/\(stem)"] where FileManager.default.fileExists(atPath: candidate) {
            return candidate
        }
        throw DataError(file: "\(directory)/\(stem).gz", "no such file (nor \(stem) uncompressed); see README.md, section MNIST")
    }

    /// Images as [N, 1, 28, 28] Float32 in [0, 255] (scale them in the pipeline) and labels [N].
    package static func load(directory: String, split: Split, name: String = "mnist") throws(DataError) -> Dataset {
        let stem = fileStem(split)
        let imagesPath = try locate(stem.images, in: directory)
        let labelsPath = try locate(stem.labels, in: directory)
        let images = try IDX.read(path: imagesPath, expectedDimensions: 3)
        let labels = try IDX.read(path: labelsPath, expectedDimensions: 1)
        guard images.dimensions[0] == labels.dimensions[0] else {
            throw DataError(file: labelsPath, "has \(labels.dimensions[0]) labels for \(images.dimensions[0]) images in \(imagesPath)")
        }
        if let bad = labels.values.first(where: { $0 > 9 }) {
            throw DataError(file: labelsPath, "label \(bad) is outside 0...9")
        }
        let n = images.dimensions[0], h = images.dimensions[1], w = images.dimensions[2]
        var x = Tensor(uninitializedShape: [n, 1, h, w])
        x.withUnsafeMutableBufferPointer { dst in
            images.values.withUnsafeBytes { src in
                let bytes = src.bindMemory(to: UInt8.self)
                for i in 0..<bytes.count { dst[i] = Float(bytes[i]) }
            }
        }
        var y = Tensor(uninitializedShape: [n])
        y.withUnsafeMutableBufferPointer { dst in
            labels.values.withUnsafeBytes { src in for i in 0..<n { dst[i] = Float(src[i]) } }
        }
        var fingerprint = SHA256()
        fingerprint.update(images.values)
        fingerprint.update(labels.values)
        return Dataset(name: "\(name)-\(split.rawValue)", inputs: x, targets: y, classes: 10,
                       fingerprint: fingerprint.hexDigest())
    }
}
