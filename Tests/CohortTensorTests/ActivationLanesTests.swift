@testable import CohortTensor
import Testing

/// Activations run eight lanes at a time; each lane must give the scalar formula's bits, at the
/// edges too (±∞, NaN, −0, saturation), and in the last partial group.
@Suite struct ActivationLanesTests {
    /// 19 values: two whole groups of eight and a tail of three.
    static let inputs: [Float] = [-.infinity, -100, -88.5, -3, -1, -0.5, -0.0, 0, 1e-30, 0.25,
                                  0.5, 1, 2.5, 20, 88.5, .infinity, .nan, -7, 3.5]

    /// Bits, except that any NaN matches any NaN (its sign and payload are not arithmetic).
    static func same(_ a: [Float], _ b: [Float]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }
    }

    static func check<F: ElementwiseFunction>(_: F.Type, _ activation: (Variable) -> Variable) {
        let n = inputs.count
        let tape = Tape()
        let x = tape.leaf(Tensor(shape: [n], inputs))
        let upstream = (0..<n).map { Float($0) - 9.25 }
        let y = activation(x)
        #expect(same(y.value.scalars, inputs.map(F.value)), "\(F.self) values")
        tape.backward(from: (y * tape.leaf(Tensor(shape: [n], upstream))).sum())
        let expected = (0..<n).map { i in upstream[i] * F.derivative(x: inputs[i], y: F.value(inputs[i])) }
        #expect(same(x.gradient!.scalars, expected), "\(F.self) gradients")
    }

    @Test func everyActivationMatchesItsScalarFormula() {
        Self.check(ReLU.self) { $0.relu() }
        Self.check(Sigmoid.self) { $0.sigmoid() }
        Self.check(Tanh.self) { $0.tanh() }
        Self.check(Softplus.self) { $0.softplus() }
        Self.check(HardThreshold.self) { $0.hardThreshold() }
        Self.check(Sign.self) { $0.sign() }
    }
}
