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
        let p = parameter.mutablePointer, g = gradient.pointer
        // Without weight decay the gradient is used as it is (adding 0·θ could turn an infinite
        // weight into NaN). The branches are outside the loops, which then vectorize.
        guard mu != 0 else {
            if wd == 0 {
                Lanes.update(n, p, reading: g) { p, g in p -= lr * (scale * g) }
            } else {
                Lanes.update(n, p, reading: g) { p, g in p -= lr * (scale * g + wd * p) }
            }
            return
        }
        let v = state[0].mutablePointer
        switch (nesterov, wd == 0) {
        case (true, true):
            Lanes.update(n, p, v, reading: g) { p, v, g in
                let gi = scale * g
                v = decay * v + gi
                p -= lr * (gi + mu * v)
            }
        case (true, false):
            Lanes.update(n, p, v, reading: g) { p, v, g in
                let gi = scale * g + wd * p
                v = decay * v + gi
                p -= lr * (gi + mu * v)
            }
        case (false, true):
            Lanes.update(n, p, v, reading: g) { p, v, g in
                v = decay * v + scale * g
                p -= lr * v
            }
        case (false, false):
            Lanes.update(n, p, v, reading: g) { p, v, g in
                v = decay * v + (scale * g + wd * p)
                p -= lr * v
            }
        }
    }
}
