import CohortTensor
import Foundation

/// Samples in memory: inputs of shape [N, ...] and targets of shape [N] (class indices or scalar
/// targets) or [N, C] (one-hot, multi-label or vector targets).
package struct Dataset: Sendable {
    package var name: String
    package var inputs: Tensor
    package var targets: Tensor
    /// Number of classes for classification data, nil for regression.
    package var classes: Int?
    /// SHA-256 of the content, so a worker can prove it holds the same samples.
    package var fingerprint: String

    package init(name: String, inputs: Tensor, targets: Tensor, classes: Int? = nil, fingerprint: String? = nil) {
        precondition(inputs.shape.first == targets.shape.first,
                     "\(name): \(inputs.shape.first ?? 0) inputs but \(targets.shape.first ?? 0) targets")
        self.name = name; self.inputs = inputs; self.targets = targets; self.classes = classes
        self.fingerprint = fingerprint ?? Self.fingerprint(inputs: inputs, targets: targets)
    }

    /// SHA-256 over the shapes and the little-endian Float32 bytes of inputs and targets.
    package static func fingerprint(inputs: Tensor, targets: Tensor) -> String {
        var hash = SHA256()
        for t in [inputs, targets] {
            hash.update(Data("\(t.shape)".utf8))
            t.withUnsafeBufferPointer { hash.update(UnsafeRawBufferPointer($0)) }
        }
        return hash.hexDigest()
    }

    package var count: Int { inputs.shape.first ?? 0 }
    /// Shape of one input sample.
    package var sampleShape: [Int] { Array(inputs.shape.dropFirst()) }
    /// Shape of one target.
    var targetShape: [Int] { Array(targets.shape.dropFirst()) }

    /// The samples at `indices`, in that order, as one contiguous batch.
    package func batch(_ indices: [Int]) -> (inputs: Tensor, targets: Tensor) {
        (inputs.gatherRows(indices), targets.gatherRows(indices))
    }

    /// The samples at `indices` as a new dataset.
    package func subset(_ indices: [Int], name: String) -> Dataset {
        let (x, y) = batch(indices)
        return Dataset(name: name, inputs: x, targets: y, classes: classes)
    }
}

/// Gathers batches into buffers kept from step to step, so assembling a batch allocates nothing
/// once every micro-batch size has been seen.
package struct BatchAssembler: Sendable {
    private var buffers: [Int: (inputs: Tensor, targets: Tensor)] = [:]

    package init() {}

    package mutating func assemble(_ indices: [Int], from dataset: Dataset) -> (inputs: Tensor, targets: Tensor) {
        let n = indices.count
        var pair = buffers.removeValue(forKey: n) ?? (
            Tensor(uninitializedShape: [n] + dataset.sampleShape), Tensor(uninitializedShape: [n] + dataset.targetShape))
        dataset.inputs.gatherRows(indices, into: &pair.inputs)
        dataset.targets.gatherRows(indices, into: &pair.targets)
        buffers[n] = pair
        return pair
    }
}
