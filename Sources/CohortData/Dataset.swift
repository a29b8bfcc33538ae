import CohortTensor

/// Samples in memory: inputs of shape [N, ...] and targets of shape [N] (class indices or scalar
/// targets) or [N, C] (one-hot, multi-label or vector targets).
public struct Dataset: Sendable {
    public var name: String
    public var inputs: Tensor
    public var targets: Tensor
    /// Number of classes for classification data, nil for regression.
    public var classes: Int?

    public init(name: String, inputs: Tensor, targets: Tensor, classes: Int? = nil) {
        precondition(inputs.shape.first == targets.shape.first,
                     "\(name): \(inputs.shape.first ?? 0) inputs but \(targets.shape.first ?? 0) targets")
        self.name = name; self.inputs = inputs; self.targets = targets; self.classes = classes
    }

    public var count: Int { inputs.shape.first ?? 0 }
    /// Shape of one input sample.
    public var sampleShape: [Int] { Array(inputs.shape.dropFirst()) }

    /// The samples at `indices`, in that order, as one contiguous batch.
    public func batch(_ indices: [Int]) -> (inputs: Tensor, targets: Tensor) {
        (inputs.gatherRows(indices), targets.gatherRows(indices))
    }
}
