import CohortTensor

/// RMSProp (Tieleman & Hinton, 2012) as torch.optim.RMSprop: v ← αv + (1 − α)g², θ ← θ − η·g/(√v + ε).
/// `weightDecay` λ is PyTorch's coupled L2 term: g ← g + λθ first.
public struct RMSProp: OptimizerRule {
    public var alpha: Float, epsilon: Float, weightDecay: Float

    public init(alpha: Float = 0.99, epsilon: Float = 1e-8, weightDecay: Float = 0) {
        self.alpha = alpha; self.epsilon = epsilon; self.weightDecay = weightDecay
    }

    public var stateNames: [String] { ["square_avg"] }

    public func update(_ parameter: inout Tensor, gradient: Tensor, scale: Float, state: inout [Tensor], step: Int, lr: Float) {
        let n = parameter.count
        let p = parameter.mutablePointer, g = gradient.pointer, v = state[0].mutablePointer
        let (wd, alpha, epsilon) = (weightDecay, alpha, epsilon)
        Lanes.update(n, p, v, reading: g) { p, v, g in
            let gi = wd == 0 ? scale * g : scale * g + wd * p
            v = alpha * v + (1 - alpha) * gi * gi
            p -= lr * gi / (v.squareRoot() + epsilon)
        }
    }
}
