@testable import CohortNN
@testable import CohortTensor
import Foundation
import Testing

/// Each optimizer's first two steps on θ = [1, −2] with gradients g₁ = [0.5, −1], g₂ = [0.2, 0.4],
/// against the closed forms of the papers / torch.optim.
@Suite struct OptimizerTests {
    let g1: [Double] = [0.5, -1], g2: [Double] = [0.2, 0.4], theta: [Double] = [1, -2]

    func run(_ rule: any OptimizerRule, lr: Float) -> [[Float]] {
        var p = [Tensor(theta.map(Float.init))]
        var o = Optimizer(rule: rule, learningRate: lr, parameters: p)
        o.apply(to: &p, gradients: [Tensor(g1.map(Float.init))])
        let first = p[0].scalars
        o.apply(to: &p, gradients: [Tensor(g2.map(Float.init))])
        return [first, p[0].scalars]
    }

    func expectClose(_ a: [Float], _ b: [Double], sourceLocation: SourceLocation = #_sourceLocation) {
        for (x, y) in zip(a, b) { #expect(abs(Double(x) - y) < 1e-6, "\(a) vs \(b)", sourceLocation: sourceLocation) }
    }

    @Test func nesterov() {
        // v₁ = g₁, θ₁ = θ − η(g₁ + μv₁); v₂ = μv₁ + g₂, θ₂ = θ₁ − η(g₂ + μv₂).
        let (lr, mu) = (0.1, 0.9)
        let steps = run(SGD(momentum: Float(mu), nesterov: true), lr: Float(lr))
        let t1 = (0..<2).map { theta[$0] - lr * (g1[$0] + mu * g1[$0]) }
        let v2 = (0..<2).map { mu * g1[$0] + g2[$0] }
        expectClose(steps[0], t1)
        expectClose(steps[1], (0..<2).map { t1[$0] - lr * (g2[$0] + mu * v2[$0]) })
    }

    @Test func adamAndAdamW() {
        let (lr, b1, b2, eps, wd) = (0.01, 0.9, 0.999, 1e-8, 0.1)
        for decay in [0.0, wd] {
            let steps = run(Adam(beta1: Float(b1), beta2: Float(b2), epsilon: Float(eps), decoupledWeightDecay: Float(decay)), lr: Float(lr))
            var m = [0.0, 0.0], v = [0.0, 0.0], p = theta
            for (t, g) in [g1, g2].enumerated() {
                for i in 0..<2 {
                    p[i] *= 1 - lr * decay
                    m[i] = b1 * m[i] + (1 - b1) * g[i]
                    v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
                    let mHat = m[i] / (1 - pow(b1, Double(t + 1))), vHat = v[i] / (1 - pow(b2, Double(t + 1)))
                    p[i] -= lr * mHat / (vHat.squareRoot() + eps)
                }
                expectClose(steps[t], p)
            }
        }
        // Adam's first step is ±η whatever the gradient's size.
        let first = run(Adam(), lr: 0.01)[0]
        expectClose(first, [1 - 0.01, -2 + 0.01])
    }

    @Test func rmsprop() {
        let (lr, alpha, eps) = (0.01, 0.99, 1e-8)
        let steps = run(RMSProp(alpha: Float(alpha), epsilon: Float(eps)), lr: Float(lr))
        var v = [0.0, 0.0], p = theta
        for (t, g) in [g1, g2].enumerated() {
            for i in 0..<2 {
                v[i] = alpha * v[i] + (1 - alpha) * g[i] * g[i]
                p[i] -= lr * g[i] / (v[i].squareRoot() + eps)
            }
            expectClose(steps[t], p)
        }
    }

    /// The update of a large parameter cut into pieces on several threads is bit for bit the
    /// one-thread update, for every rule, over a few steps (state included).
    @Test func threadedUpdateIsBitwiseTheSame() {
        let n = 100_003  // not a multiple of the pieces
        let rules: [any OptimizerRule] = [SGD(momentum: 0.9, nesterov: true), SGD(), Adam(), Adam(decoupledWeightDecay: 0.01), RMSProp()]
        for rule in rules {
            var results: [[Float]] = []
            for lanes in [1, 2, 3] {
                var p = [Tensor((0..<n).map { Float(($0 * 37) % 101) / 50 - 1 }), Tensor([0.5, -0.5])]
                var optimizer = Optimizer(rule: rule, learningRate: 0.01, parameters: p)
                optimizer.lanes = lanes
                for step in 1...3 {
                    let g = [Tensor((0..<n).map { Float(($0 * step * 13) % 97) / 40 - 1.2 }), Tensor([0.1, 0.2])]
                    optimizer.apply(to: &p, gradients: g, scale: 0.5)
                }
                results.append(p[0].scalars + p[1].scalars + optimizer.state.flatMap { $0.flatMap(\.scalars) })
            }
            #expect(results[0] == results[1] && results[0] == results[2], "\(rule)")
            #expect(results[0].first != Float(-1), "the update changed nothing")
        }
    }

    @Test func schedules() {
        var s = LearningRateSchedule()
        #expect(s.rate(base: 0.1, step: 50, totalSteps: 100) == 0.1)
        s.kind = .step; s.stepSize = 10; s.gamma = 0.5
        #expect(abs(s.rate(base: 0.1, step: 25, totalSteps: 100) - 0.025) < 1e-7)
        s = LearningRateSchedule(); s.kind = .cosine; s.warmupSteps = 10; s.minimum = 0.01
        #expect(abs(s.rate(base: 0.1, step: 0, totalSteps: 110) - 0.01) < 1e-7)      // warm-up: 1/10 of the base
        #expect(abs(s.rate(base: 0.1, step: 9, totalSteps: 110) - 0.1) < 1e-7)
        #expect(abs(s.rate(base: 0.1, step: 60, totalSteps: 110) - 0.055) < 1e-6)    // half way down the cosine
        #expect(abs(s.rate(base: 0.1, step: 110, totalSteps: 110) - 0.01) < 1e-7)
    }

    /// torch.optim's weight_decay for SGD, Adam and RMSprop is coupled L2: the rule sees
    /// g + λθ. So a rule with λ must step exactly as the rule without it fed g + λθ.
    @Test(arguments: [SGD(momentum: 0.9, weightDecay: 0.05) as any OptimizerRule, SGD(momentum: 0.9, nesterov: true, weightDecay: 0.05),
                      SGD(weightDecay: 0.05), Adam(weightDecay: 0.05), RMSProp(weightDecay: 0.05)])
    func weightDecayIsCoupledL2(rule: any OptimizerRule) {
        func plain(_ rule: any OptimizerRule) -> any OptimizerRule {
            switch rule {
            case var r as SGD: r.weightDecay = 0; return r
            case var r as Adam: r.weightDecay = 0; return r
            case var r as RMSProp: r.weightDecay = 0; return r
            default: return rule
            }
        }
        var decayed = [Tensor([0.5, -2, 3])], reference = decayed
        var a = Optimizer(rule: rule, learningRate: 0.1, parameters: decayed)
        var b = Optimizer(rule: plain(rule), learningRate: 0.1, parameters: reference)
        for g in [[0.25, 1, -0.5], [0.5, -0.25, 1], [-1, 0.75, 0.125]] as [[Float]] {
            a.apply(to: &decayed, gradients: [Tensor(g)])
            let coupled = zip(g, reference[0].scalars).map { $0 + 0.05 * $1 }
            b.apply(to: &reference, gradients: [Tensor(coupled)])
            #expect(decayed[0].scalars == reference[0].scalars, "\(rule)")
        }
        #expect(decayed[0].scalars != [0.5, -2, 3])
        // One SGD step by hand: θ = 1, g = 0.5, λ = 0.1, η = 0.1 ⇒ θ − η(g + λθ) = 0.94.
        var p = [Tensor([1])]
        var sgd = Optimizer(rule: SGD(weightDecay: 0.1), learningRate: 0.1, parameters: p)
        sgd.apply(to: &p, gradients: [Tensor([0.5])])
        #expect(abs(p[0].scalar - 0.94) < 1e-7)
    }
}
