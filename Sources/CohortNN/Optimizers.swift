import CohortTensor
import Foundation

/// Adam (Kingma & Ba, 2015) as torch.optim.Adam: m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g²,
/// θ ← θ − (η / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε). With `decoupledWeightDecay` λ it is
/// AdamW (Loshchilov & Hutter, 2019): θ ← θ(1 − ηλ) first.
public struct Adam: OptimizerRule {
    public var beta1: Float, beta2: Float, epsilon: Float
    public var decoupledWeightDecay: Float

    public init(beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, decoupledWeightDecay: Float = 0) {
        self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon; self.decoupledWeightDecay = decoupledWeightDecay
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
        let (b1, b2, eps) = (beta1, beta2, epsilon)
        for i in 0..<n {
            let gi = scale * g[i]
            if decoupledWeightDecay != 0 { p[i] *= decay }
            m[i] = b1 * m[i] + (1 - b1) * gi
            v[i] = b2 * v[i] + (1 - b2) * gi * gi
            p[i] -= stepSize * m[i] / (v[i].squareRoot() / root2 + eps)
        }
    }
}

/// RMSProp (Tieleman & Hinton, 2012) as torch.optim.RMSprop: v ← αv + (1 − α)g², θ ← θ − η·g/(√v + ε).
public struct RMSProp: OptimizerRule {
    public var alpha: Float, epsilon: Float

    public init(alpha: Float = 0.99, epsilon: Float = 1e-8) { self.alpha = alpha; self.epsilon = epsilon }

    public var stateNames: [String] { ["square_avg"] }

    public func update(_ parameter: inout Tensor, gradient: Tensor, scale: Float, state: inout [Tensor], step: Int, lr: Float) {
        let n = parameter.count
        let p = parameter.mutablePointer, g = gradient.pointer, v = state[0].mutablePointer
        for i in 0..<n {
            let gi = scale * g[i]
            v[i] = alpha * v[i] + (1 - alpha) * gi * gi
            p[i] -= lr * gi / (v[i].squareRoot() + epsilon)
        }
    }
}

/// How the learning rate moves with the step (t counts updates from 0).
public struct LearningRateSchedule: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable { case constant, step, cosine }
    public var kind: Kind = .constant
    /// `step`: multiply by `gamma` every `stepSize` steps.
    public var stepSize = 1
    public var gamma: Float = 0.1
    /// `cosine`: from the base rate down to `minimum` over the steps after warm-up.
    public var minimum: Float = 0
    /// Linear warm-up from base/warmup to base over the first `warmupSteps` steps.
    public var warmupSteps = 0

    public init() {}

    public func rate(base: Float, step t: Int, totalSteps: Int) -> Float {
        if t < warmupSteps { return base * Float(t + 1) / Float(warmupSteps) }
        let u = t - warmupSteps
        switch kind {
        case .constant: return base
        case .step: return base * Float(pow(Double(gamma), Double(u / max(stepSize, 1))))
        case .cosine:
            let span = max(totalSteps - warmupSteps, 1)
            let progress = Double(min(u, span)) / Double(span)
            return minimum + (base - minimum) * Float((1 + cos(Double.pi * progress)) / 2)
        }
    }
}

/// L1 and L2 penalties of lecture 001 §2.1: cost + λ₁Σ|w| + λ₂Σw², by default on weights only.
public struct Regularization: Sendable, Equatable {
    public var l1: Float = 0
    public var l2: Float = 0
    public var includeBiases = false

    public init(l1: Float = 0, l2: Float = 0, includeBiases: Bool = false) {
        self.l1 = l1; self.l2 = l2; self.includeBiases = includeBiases
    }

    public var isActive: Bool { l1 != 0 || l2 != 0 }

    /// λ₁Σ|w| + λ₂Σw² over the parameters it applies to.
    public func penalty(_ parameters: [Tensor], isBias: [Bool]) -> Double {
        zip(parameters, isBias).reduce(0.0) { total, pair in
            guard includeBiases || !pair.1 else { return total }
            var abs = 0.0
            pair.0.withUnsafeBufferPointer { for v in $0 { abs += Double(Swift.abs(v)) } }
            return total + Double(l1) * abs + Double(l2) * pair.0.squaredNorm()
        }
    }
}
