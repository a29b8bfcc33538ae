import CohortTensor

/// Gradient descent: θ ← θ − η·g (lecture 003 §3.1). Whether it is full-batch GD, single-example
/// SGD or mini-batch GD is only the batch size. With momentum μ it keeps v ← μv + g and steps
/// θ ← θ − η·v (Nesterov: θ ← θ − η·(g + μv)), as torch.optim.SGD. `weightDecay` λ is
/// PyTorch's (coupled) L2 term: g ← g + λθ before anything else.
public struct SGD: OptimizerRule {
    public var momentum: Float
    public var nesterov: Bool
    public var weightDecay: Float

    public init(momentum: Float = 0, nesterov: Bool = false, weightDecay: Float = 0) {
        self.momentum = momentum; self.nesterov = nesterov; self.weightDecay = weightDecay
    }

    public var stateNames: [String] { momentum == 0 ? [] : ["momentum_buffer"] }

    public func update(_ parameter: inout Tensor, gradient: Tensor, scale: Float, state: inout [Tensor], step: Int, lr: Float) {
        let n = parameter.count
        let mu = momentum
        // PyTorch starts the momentum buffer at the first gradient: v₁ = g₁.
        let decay: Float = step == 1 ? 0 : mu
        let wd = weightDecay
        gradient.withUnsafeBufferPointer { g in
            parameter.withUnsafeMutableBufferPointer { p in
                // Without weight decay the gradient is used as it is (adding 0·θ could turn an
                // infinite weight into NaN, and would cost the loop a read).
                guard mu != 0 else {
                    for i in 0..<n { p[i] -= lr * (wd == 0 ? scale * g[i] : scale * g[i] + wd * p[i]) }
                    return
                }
                state[0].withUnsafeMutableBufferPointer { v in
                    if nesterov {
                        for i in 0..<n {
                            let gi = wd == 0 ? scale * g[i] : scale * g[i] + wd * p[i]
                            v[i] = decay * v[i] + gi
                            p[i] -= lr * (gi + mu * v[i])
                        }
                    } else {
                        for i in 0..<n {
                            v[i] = decay * v[i] + (wd == 0 ? scale * g[i] : scale * g[i] + wd * p[i])
                            p[i] -= lr * v[i]
                        }
                    }
                }
            }
        }
    }
}
