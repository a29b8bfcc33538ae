import CohortTensor

/// The coordinator's half of a training step: from the tree-summed gradient to new weights.
/// Average over the global batch, clip by global norm, then the optimizer update.
public struct StepUpdate: Sendable {
    public var reduction: Reduction
    /// Clip the averaged gradient to this global L2 norm (lecture 001 §2.2); nil for no clipping.
    public var clipNorm: Float?

    public init(reduction: Reduction, clipNorm: Float?) {
        self.reduction = reduction; self.clipNorm = clipNorm
    }

    public struct Report: Sendable {
        /// Loss of the step, reduced like the loss's `reduction`.
        public var loss: Double
        /// Global L2 norm of the averaged gradient before clipping.
        public var gradientNorm: Double
        public var clipped: Bool
    }

    /// Turns the step's gradient sum into an update of `parameters`. `batchSize` is B, the number
    /// of samples in the global batch.
    public func apply(_ sum: GradientSum, batchSize: Int, parameters: inout [Tensor],
                      optimizer: inout Optimizer) -> Report {
        // g = sum ÷ B (for the mean), then g ← τ/‖g‖ · g when ‖g‖ > τ. Both are one factor on the
        // sum, applied as the optimizer reads it.
        let mean = reduction == .mean ? 1 / Double(batchSize) : 1
        let norm = Self.globalNorm(sum.gradients) * mean
        var factor = mean
        var clipped = false
        if let clipNorm, norm > Double(clipNorm) {
            factor *= Double(clipNorm) / norm
            clipped = true
        }
        optimizer.apply(to: &parameters, gradients: sum.gradients, scale: Float(factor))
        let loss = reduction == .mean ? sum.lossSum / Double(batchSize) : sum.lossSum
        return Report(loss: loss, gradientNorm: norm, clipped: clipped)
    }

    /// ‖g‖₂ over all parameters together.
    public static func globalNorm(_ gradients: [Tensor]) -> Double {
        gradients.reduce(0) { $0 + $1.squaredNorm() }.squareRoot()
    }
}
