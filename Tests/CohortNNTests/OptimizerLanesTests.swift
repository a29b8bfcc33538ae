@testable import CohortNN
import CohortTensor
import Foundation
import Testing

/// The optimizers' rules run eight lanes at a time (`Lanes`); here they are held against the
/// scalar formulas of torch.optim, element by element, bit for bit, on lengths that leave a
/// partial group at the end.
@Suite struct OptimizerLanesTests {
    static func values(_ n: Int, seed: Int) -> [Float] {
        (0..<n).map { i in Float(sin(Double(i * 7 + seed * 131)) * pow(10, Double((i + seed) % 5) - 2)) }
    }

    /// Scalar references: the loops the rules ran before they were vectorized.
    static func sgd(_ p: inout [Float], _ v: inout [Float], _ g: [Float], scale: Float, lr: Float, mu: Float, nesterov: Bool,
                    wd: Float, step: Int) {
        let decay: Float = step == 1 ? 0 : mu
        for i in p.indices {
            let gi = wd == 0 ? scale * g[i] : scale * g[i] + wd * p[i]
            if mu == 0 { p[i] -= lr * gi; continue }
            v[i] = decay * v[i] + gi
            p[i] -= nesterov ? lr * (gi + mu * v[i]) : lr * v[i]
        }
    }

    static func adam(_ p: inout [Float], _ m: inout [Float], _ v: inout [Float], _ g: [Float], scale: Float, lr: Float,
                     rule: Adam, step: Int) {
        let stepSize = lr / (1 - Float(pow(Double(rule.beta1), Double(step))))
        let root2 = (1 - Float(pow(Double(rule.beta2), Double(step)))).squareRoot()
        for i in p.indices {
            let gi = rule.weightDecay == 0 ? scale * g[i] : scale * g[i] + rule.weightDecay * p[i]
            if rule.decoupledWeightDecay != 0 { p[i] *= 1 - lr * rule.decoupledWeightDecay }
            m[i] = rule.beta1 * m[i] + (1 - rule.beta1) * gi
            v[i] = rule.beta2 * v[i] + (1 - rule.beta2) * gi * gi
            p[i] -= stepSize * m[i] / (v[i].squareRoot() / root2 + rule.epsilon)
        }
    }

    static func rmsprop(_ p: inout [Float], _ v: inout [Float], _ g: [Float], scale: Float, lr: Float, rule: RMSProp) {
        for i in p.indices {
            let gi = rule.weightDecay == 0 ? scale * g[i] : scale * g[i] + rule.weightDecay * p[i]
            v[i] = rule.alpha * v[i] + (1 - rule.alpha) * gi * gi
            p[i] -= lr * gi / (v[i].squareRoot() + rule.epsilon)
        }
    }

    /// Three steps of `rule` on a tensor of `n` elements, against `reference` on arrays.
    static func check(_ rule: any OptimizerRule, n: Int,
                      reference: (_ p: inout [Float], _ state: inout [[Float]], _ g: [Float], _ step: Int) -> Void) {
        var parameter = Tensor(shape: [n], values(n, seed: 1))
        var state = rule.stateNames.map { _ in Tensor.zeros([n]) }
        var p = parameter.scalars, s = state.map(\.scalars)
        for step in 1...3 {
            let g = values(n, seed: step + 1)
            rule.update(&parameter, gradient: Tensor(shape: [n], g), scale: 0.25, state: &state, step: step, lr: 0.01)
            reference(&p, &s, g, step)
        }
        func differing(_ a: [Float], _ b: [Float]) -> Int { zip(a, b).filter { $0.bitPattern != $1.bitPattern }.count }
        #expect(differing(parameter.scalars, p) == 0, "\(rule): weights differ from the scalar formula on \(n) elements")
        for (k, tensor) in state.enumerated() {
            #expect(differing(tensor.scalars, s[k]) == 0, "\(rule): state \(k) differs from the scalar formula on \(n) elements")
        }
    }

    @Test(arguments: [1, 7, 8, 9, 100, 4099])
    func rulesMatchTheScalarFormulas(n: Int) {
        for (mu, nesterov, wd) in [(Float(0), false, Float(0)), (0, false, 0.01), (0.9, false, 0), (0.9, false, 0.01),
                                   (0.9, true, 0), (0.9, true, 0.01)] {
            Self.check(SGD(momentum: mu, nesterov: nesterov, weightDecay: wd), n: n) { p, s, g, step in
                var v = s.first ?? Array(repeating: 0, count: p.count)
                Self.sgd(&p, &v, g, scale: 0.25, lr: 0.01, mu: mu, nesterov: nesterov, wd: wd, step: step)
                if !s.isEmpty { s[0] = v }
            }
        }
        for rule in [Adam(), Adam(weightDecay: 0.01), Adam(decoupledWeightDecay: 0.01)] {
            Self.check(rule, n: n) { p, s, g, step in
                var (m, v) = (s[0], s[1])
                Self.adam(&p, &m, &v, g, scale: 0.25, lr: 0.01, rule: rule, step: step)
                s = [m, v]
            }
        }
        for rule in [RMSProp(), RMSProp(weightDecay: 0.01)] {
            Self.check(rule, n: n) { p, s, g, _ in Self.rmsprop(&p, &s[0], g, scale: 0.25, lr: 0.01, rule: rule) }
        }
    }
}
