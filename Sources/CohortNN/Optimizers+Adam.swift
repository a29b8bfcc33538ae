import CohortTensor
import Foundation

/// Adam (Kingma & Ba, 2015) as torch.optim.Adam: m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g²,
/// θ ← θ − (η / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε). With `decoupledWeightDecay` λ it is
/// AdamW (Loshchilov & Hutter, 2019): θ ← θ(1 − ηλ) first. `weightDecay` is Adam's own (coupled)
/// L2 term, as torch.optim.Adam's weight_decay: g ← g + λθ before the moments.
public struct Adam: OptimizerRule {
    public var beta1: Float, beta2: Float, epsilon: Float
    public var decoupledWeightDecay: Float
    public var weightDecay: Float

    public init(beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, decoupledWeightDecay: Float = 0, weightDecay: Float = 0) {
        self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon; self.decoupledWeightDecay = decoupledWeightDecay
        self.weightDecay = weightDecay
    }

    public var stateNames: [String] { ["exp_avg", "exp_avg_sq"] }

    public func update(_ parameter: inout Tensor, gradient: Tensor, scale: Float, state: inout [Tensor], step: Int, lr: Float) {
        let n = parameter.count
        let correction1 = 1 - Float(pow(Double(beta1), Double(step)))
        let correction2 = 1 - Float(pow(Double(beta2), Double(step)))
        let stepSize = lr / correction1, root2 = correction2.squareRoot()
        let decay = 1 - lr * decoupledWeightDecay
        let p = parameter.mutablePointer, g = gradient.pointer
        let m = state[0].mutablePointer, v = state[1].mutablePointer
        let (b1, b2, eps, wd) = (beta1, beta2, epsilon, weightDecay)
        let decoupled = decoupledWeightDecay != 0
        Lanes.update(n, p, m, v, reading: g) { p, m, v, g in
            let gi = wd == 0 ? scale * g : scale * g + wd * p
            if decoupled { p *= decay }
            m = b1 * m + (1 - b1) * gi
            v = b2 * v + (1 - b2) * gi * gi
            p -= stepSize * m / (v.squareRoot() / root2 + eps)
        }
    }
}
