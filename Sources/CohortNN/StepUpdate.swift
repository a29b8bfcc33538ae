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
    public func apply(_ sum: consuming GradientSum, batchSize: Int, parameters: inout [Tensor],
                      optimizer: inout Optimizer) -> Report {
        let lossSum = sum.lossSum
        // Take the gradients out of the sum so they are scaled in place, not copied.
        var gradients: [Tensor] = []
        swap(&gradients, &sum.gradients)
        let scale: Float = reduction == .mean ? 1 / Float(batchSize) : 1
        if scale != 1 { for i in gradients.indices { gradients[i].scale(by: scale) } }
        let norm = Self.globalNorm(gradients)
        var clipped = false
        if let clipNorm, norm > Double(clipNorm) {
            // g ← τ/‖g‖ · g when ‖g‖ > τ: the direction is kept, the step is bounded.
            let factor = Float(Double(clipNorm) / norm)
            for i in gradients.indices { gradients[i].scale(by: factor) }
            clipped = true
        }
        optimizer.apply(to: &parameters, gradients: gradients)
        let loss = reduction == .mean ? lossSum / Double(batchSize) : lossSum
        return Report(loss: loss, gradientNorm: norm, clipped: clipped)
    }

    /// ‖g‖₂ over all parameters together.
    public static func globalNorm(_ gradients: [Tensor]) -> Double {
        gradients.reduce(0) { $0 + $1.squaredNorm() }.squareRoot()
    }
}
