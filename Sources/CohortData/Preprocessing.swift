import CohortTensor

/// How inputs are brought to a common scale. Statistics always come from the training set and
/// are applied unchanged to validation and test data.
package enum Normalization: String, Sendable, CaseIterable {
    case none
    /// Divide by 255: bytes (images) to [0, 1].
    case scale
    /// Subtract the per-feature training mean, divide by the per-feature standard deviation.
    case standardize
}

/// The fitted statistics of a normalization, applicable to any split.
package struct Normalizer: Sendable {
    package let kind: Normalization
    package let mean: Tensor?
    package let std: Tensor?

    package init(fitting kind: Normalization, to training: Dataset) {
        self.kind = kind
        guard kind == .standardize else { mean = nil; std = nil; return }
        let features = training.sampleShape.reduce(1, *)
        let x = training.inputs.reshaped([training.count, features])
        let m = x.mean(axis: 0)
        let centered = x.zipMap(Tensor(shape: x.shape, repeating: 0).addingRow(m)) { $0 - $1 }
        // Features that never vary (MNIST's corners) keep std 1 instead of dividing by zero.
        let s = (centered * centered).mean(axis: 0).map { $0 > 1e-12 ? $0.squareRoot() : 1 }
        mean = m; std = s
    }

    package func apply(_ dataset: Dataset) -> Dataset {
        var out = dataset
        switch kind {
        case .none: return dataset
        case .scale: out.inputs = dataset.inputs.map { $0 / 255 }
        case .standardize:
            let features = dataset.sampleShape.reduce(1, *)
            let x = dataset.inputs.reshaped([dataset.count, features])
            let inverse = std!.map { 1 / $0 }
            var result = x.addingRow(mean!.map { -$0 })
            result = result.zipMap(Tensor(shape: x.shape, repeating: 0).addingRow(inverse), *)
            out.inputs = result.reshaped(dataset.inputs.shape)
        }
        return out
    }
}

extension Dataset {
    /// A seeded split into (train, validation): `fraction` of the samples go to validation.
    package func split(validationFraction fraction: Double, seed: UInt64) -> (train: Dataset, validation: Dataset) {
        let order = seededPermutation(count, seed: seed, stream: RandomStream(purpose: RandomStream.data, a: 0xfeed))
        let nValidation = Int((Double(count) * fraction).rounded())
        let validation = Array(order.prefix(nValidation)).sorted()
        let train = Array(order.dropFirst(nValidation)).sorted()
        return (subset(train, name: "\(name)-train"), subset(validation, name: "\(name)-validation"))
    }

    /// Class indices as one-hot rows [N, C].
    package func oneHot() -> Dataset {
        guard let classes, targets.rank == 1 else { return self }
        var t = Tensor.zeros([count, classes])
        for i in 0..<count { t[i, Int(targets[flat: i])] = 1 }
        var out = self
        out.targets = t
        return out
    }

    /// Class counts of integer labels.
    func classCounts() -> [Int] {
        var counts = [Int](repeating: 0, count: classes ?? 0)
        for i in 0..<count { let c = Int(targets[flat: i]); if c >= 0 && c < counts.count { counts[c] += 1 } }
        return counts
    }
}
