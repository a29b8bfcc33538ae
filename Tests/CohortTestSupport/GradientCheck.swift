@testable import CohortTensor

/// Finite-difference gradient check: compares the tape's gradient of L = Σ R ⊙ f(inputs) (R a
/// fixed random tensor, so every output element matters) with central differences.
/// Returns one line per element that disagrees; an empty list means the check passed.
public func gradientMismatches(
    _ inputs: [Tensor], step h: Float = 1e-3, tolerance: Float = 2e-3,
    _ f: ([Variable]) -> Variable
) -> [String] {
    func project(_ y: Tensor, _ r: Tensor) -> Double {
        var total = 0.0
        for i in 0..<y.count { total += Double(y[flat: i]) * Double(r[flat: i]) }
        return total
    }
    let tape = Tape()
    let variables = inputs.map { tape.leaf($0) }
    let y = f(variables)
    let r = Tensor.uniform(y.shape, low: -1, high: 1, seed: 99, stream: RandomStream(purpose: 77))
    tape.backward(from: y, seed: r)
    var mismatches: [String] = []
    for (k, input) in inputs.enumerated() {
        let analytic = variables[k].gradient ?? .zeros(input.shape)
        for i in 0..<input.count {
            var plus = inputs, minus = inputs
            plus[k][flat: i] += h
            minus[k][flat: i] -= h
            let evalTape = Tape.noGradient()
            let fPlus = project(f(plus.map(evalTape.constant)).value, r)
            let fMinus = project(f(minus.map(evalTape.constant)).value, r)
            let numeric = Float((fPlus - fMinus) / Double(2 * h))
            let a = analytic[flat: i]
            if !(abs(numeric - a) <= tolerance * (1 + abs(numeric))) {
                mismatches.append("input \(k) element \(i): analytic \(a), numeric \(numeric)")
            }
        }
    }
    return mismatches
}

/// Random values kept away from the kinks of relu and abs, where central differences are invalid.
public func smoothRandom(_ shape: [Int], seed: UInt64, low: Float = -2, high: Float = 2) -> Tensor {
    Tensor.uniform(shape, low: low, high: high, seed: seed, stream: RandomStream(purpose: 11)).map { v in
        abs(v) < 0.05 ? v + (v < 0 ? -0.1 : 0.1) : v
    }
}
