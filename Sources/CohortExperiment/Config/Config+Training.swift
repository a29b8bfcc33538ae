import CohortNN
import CohortTensor
import CohortTraining

/// `training:` — the loss, the batches, clipping and the penalties, how long to train.
package struct TrainingConfig: Sendable {
    package var loss: Loss
    package var reduction: Reduction
    package var epochs: Int
    /// Stop after this many steps (overrides epochs when set).
    package var steps: Int?
    package var batchSize: Int
    package var microBatches: Int
    package var clipNorm: Float?
    package var clipValue: Float?
    package var regularization: Regularization
    package var shuffle: Bool
    package var dropLast: Bool
    var logEvery: Int
    /// What a step whose loss or gradient is not finite does (`on_nonfinite`, `max_nonfinite_skips`).
    package var onNonFinite: NonFinitePolicy
    /// Where batch_size was set, for errors that need the dataset size to detect.
    var batchSizeLocation: ConfigError
}

extension ExperimentConfig {
    static func readTraining(_ node: ConfigNode) throws(ConfigError) -> TrainingConfig {
        let loss = try node.required("loss").choice(Loss.self)
        let reduction = try node.optional("reduction")?.choice(Reduction.self) ?? .mean
        let epochs = try node.optional("epochs")?.int(min: 1) ?? 1
        // 0 steps writes the initial weights (to export or inspect them).
        let steps = try node.optional("steps")?.int(min: 0)
        let batchNode = try node.required("batch_size")
        let batchSize = try batchNode.int(min: 1)
        let microNode = try node.optional("micro_batches")
        let microBatches = try microNode?.int(min: 1) ?? 1
        if let microNode, microBatches > batchSize {
            throw microNode.error("cannot cut a batch of \(batchSize) into \(microBatches) micro-batches")
        }
        let clip = try node.optional("clip_norm")?.double(min: 0, exclusiveMin: true)
        let clipValue = try node.optional("clip_value")?.double(min: 0, exclusiveMin: true)
        var regularization = Regularization()
        if let r = try node.optional("regularization") {
            regularization.l1 = Float(try r.optional("l1")?.double(min: 0) ?? 0)
            regularization.l2 = Float(try r.optional("l2")?.double(min: 0) ?? 0)
            regularization.includeBiases = try r.optional("include_biases")?.bool() ?? false
        }
        let shuffle = try node.optional("shuffle")?.bool() ?? true
        let dropLast = try node.optional("drop_last")?.bool() ?? false
        let logEvery = try node.optional("log_every")?.int(min: 1) ?? 10
        let onNonFinite = try readNonFinitePolicy(node)
        return TrainingConfig(loss: loss, reduction: reduction, epochs: epochs, steps: steps, batchSize: batchSize,
                              microBatches: microBatches, clipNorm: clip.map(Float.init), clipValue: clipValue.map(Float.init),
                              regularization: regularization, shuffle: shuffle,
                              dropLast: dropLast, logEvery: logEvery, onNonFinite: onNonFinite, batchSizeLocation: batchNode.error(""))
    }

    /// `on_nonfinite: stop` (the default) or `skip`, with `max_nonfinite_skips` (10) in a row.
    static func readNonFinitePolicy(_ node: ConfigNode) throws(ConfigError) -> NonFinitePolicy {
        let policy = try node.optional("on_nonfinite")?.string() ?? "stop"
        let skips = try node.optional("max_nonfinite_skips")?.int(min: 1) ?? 10
        switch policy {
        case "stop": return .stop
        case "skip": return .skip(maxInARow: skips)
        default: throw try node.required("on_nonfinite").error("unknown value '\(policy)' (choose from stop, skip)")
        }
    }
}
