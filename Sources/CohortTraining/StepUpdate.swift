import CohortNN
import CohortTensor

/// The coordinator's half of a training step: from the tree-summed gradient to new weights.
/// Average over the global batch, clip by global norm, then the optimizer update.
package struct StepUpdate: Sendable {
    package var reduction: Reduction
    /// Clip the averaged gradient to this global L2 norm (lecture 001 §2.2); nil for no clipping.
    package var clipNorm: Float?
    /// Clamp every averaged gradient element to [−c, c] (after norm clipping).
    package var clipValue: Float?
    package var regularization: Regularization
    /// Which parameters are biases (spared by the regularization unless it says otherwise).
    package var isBias: [Bool]

    package init(reduction: Reduction, clipNorm: Float?, clipValue: Float? = nil,
                regularization: Regularization = Regularization(), isBias: [Bool] = []) {
        self.reduction = reduction; self.clipNorm = clipNorm; self.clipValue = clipValue
        self.regularization = regularization; self.isBias = isBias
    }

    package struct Report: Sendable {
        /// Loss of the step, reduced like the loss's `reduction`.
        package var loss: Double
        /// Global L2 norm of the averaged gradient before clipping.
        package var gradientNorm: Double
        package var clipped: Bool
    }

    /// The step's loss and the global norm of its averaged gradient, before anything changes:
    /// a non-finite one means the step must not be applied (see `Trainer`).
    /// `squaredNorm` is Σ‖g‖² of the summed gradients when already known (`GradientTree.rootSum`).
    package func measure(_ sum: GradientSum, batchSize: Int, squaredNorm: Double? = nil) -> (loss: Double, norm: Double) {
        let mean = reduction == .mean ? 1 / Double(batchSize) : 1
        let norm = squaredNorm.map { $0.squareRoot() } ?? Self.globalNorm(sum.gradients)
        return (reduction == .mean ? sum.lossSum / Double(batchSize) : sum.lossSum, norm * mean)
    }

    /// Turns the step's gradient sum into an update of `parameters`. `batchSize` is B, the number
    /// of samples in the global batch; `norm` the gradient norm `measure` found (passed on, so
    /// the gradients are read once for it).
    package func apply(_ sum: consuming GradientSum, batchSize: Int, norm measured: Double? = nil, parameters: inout [Tensor],
                      optimizer: inout Optimizer) -> Report {
        let norm = measured ?? Self.globalNorm(sum.gradients) * (reduction == .mean ? 1 / Double(batchSize) : 1)
        let (factor, clipped) = scale(batchSize: batchSize, norm: norm)
        let loss = reduction == .mean ? sum.lossSum / Double(batchSize) : sum.lossSum
        guard adjustsGradient else {
            optimizer.apply(to: &parameters, gradients: sum.gradients, scale: factor)
            return Report(loss: loss, gradientNorm: norm, clipped: clipped)
        }
        // Clamping and the penalty's gradient need the gradient itself: one pass in place.
        var gradients: [Tensor] = []
        swap(&gradients, &sum.gradients)  // own them, so the pass below writes in place
        for k in gradients.indices {
            let g = gradients[k].mutablePointer
            adjust(g, into: g, weights: parameters[k].pointer, count: gradients[k].count, factor: factor, parameter: k)
        }
        optimizer.apply(to: &parameters, gradients: gradients, scale: 1)
        return Report(loss: loss, gradientNorm: norm, clipped: clipped)
    }

    /// The one factor on the summed gradient: g = sum ÷ B (for the mean), then g ← τ/‖g‖ · g when
    /// ‖g‖ > τ. It is applied as the optimizer reads the gradient. `norm` is ‖sum‖ ÷ B.
    package func scale(batchSize: Int, norm: Double) -> (factor: Float, clipped: Bool) {
        var factor = reduction == .mean ? 1 / Double(batchSize) : 1
        guard let clipNorm, norm > Double(clipNorm) else { return (Float(factor), false) }
        factor *= Double(clipNorm) / norm
        return (Float(factor), true)
    }

    /// Whether the gradient itself must be rewritten before the optimizer reads it (clamping, a penalty).
    package var adjustsGradient: Bool { clipValue != nil || regularization.isActive }

    /// The scaled gradient, clamped to [−c, c] and with the penalty's gradient added, for
    /// `count` elements of parameter `parameter` (whose weights are `w`): written to `out`,
    /// which may be `g` itself.
    package func adjust(_ g: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, weights w: UnsafePointer<Float>,
                        count: Int, factor f: Float, parameter: Int) {
        let c = clipValue ?? .infinity
        let (l1, l2) = (regularization.l1, regularization.l2)
        let penalized = regularization.includeBiases || !(parameter < isBias.count && isBias[parameter])
        for i in 0..<count {
            var v = Swift.min(Swift.max(f * g[i], -c), c)
            if penalized {
                // d/dw λ₁|w| = λ₁ sign(w) (0 at 0), d/dw λ₂w² = 2λ₂w.
                v += l1 * (w[i] > 0 ? 1 : (w[i] < 0 ? -1 : 0)) + 2 * l2 * w[i]
            }
            out[i] = v
        }
    }

    /// ‖g‖₂ over all parameters together.
    static func globalNorm(_ gradients: [Tensor]) -> Double {
        gradients.reduce(0) { $0 + $1.squaredNorm() }.squareRoot()
    }
}
