import CohortTensor

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
