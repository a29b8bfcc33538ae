@testable import CohortTensor
import CohortTestSupport
import Foundation
import Testing

@Suite("Finite-difference gradient checks for every op")
struct AutodiffTests {
    let a = smoothRandom([3, 4], seed: 1)
    let b = smoothRandom([3, 4], seed: 2)

    @Test func addSubtractMultiply() {
        #expect(gradientMismatches([a, b]) { $0[0] + $0[1] } == [])
        #expect(gradientMismatches([a, b]) { $0[0] - $0[1] } == [])
        #expect(gradientMismatches([a, b]) { $0[0] * $0[1] } == [])
        #expect(gradientMismatches([a]) { $0[0] * 2.5 + 1 } == [])
        #expect(gradientMismatches([a]) { -$0[0] } == [])
    }

    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func matmulWithTransposes(ta: Bool, tb: Bool) {
        let x = smoothRandom(ta ? [4, 3] : [3, 4], seed: 3)
        let w = smoothRandom(tb ? [5, 4] : [4, 5], seed: 4)
        #expect(gradientMismatches([x, w]) { $0[0].matmul($0[1], transposeSelf: ta, transposeOther: tb) } == [])
    }

    @Test func linearAndBias() {
        let x = smoothRandom([5, 3], seed: 5), w = smoothRandom([4, 3], seed: 6), bias = smoothRandom([4], seed: 7)
        #expect(gradientMismatches([x, w, bias]) { $0[0].linear(weight: $0[1], bias: $0[2]) } == [])
        #expect(gradientMismatches([x, w]) { $0[0].linear(weight: $0[1], bias: nil) } == [])
        #expect(gradientMismatches([x, smoothRandom([3], seed: 8)]) { $0[0].addingRow($0[1]) } == [])
    }

    @Test func reductionsAndShapes() {
        #expect(gradientMismatches([a]) { $0[0].sum() } == [])
        #expect(gradientMismatches([a]) { $0[0].mean() } == [])
        #expect(gradientMismatches([a]) { $0[0].sum(axis: 0) } == [])
        #expect(gradientMismatches([a]) { $0[0].sum(axis: 1) } == [])
        #expect(gradientMismatches([smoothRandom([2, 3, 4], seed: 9)]) { $0[0].sum(axis: 1) } == [])
        #expect(gradientMismatches([a]) { $0[0].reshaped([4, 3]) * $0[0].reshaped([4, 3]) } == [])
    }

    @Test func elementwiseFunctions() {
        let positive = smoothRandom([3, 4], seed: 10, low: 0.5, high: 3)
        #expect(gradientMismatches([a]) { $0[0].exp() } == [])
        #expect(gradientMismatches([positive]) { $0[0].log() } == [])
        #expect(gradientMismatches([a]) { $0[0].squared() } == [])
        #expect(gradientMismatches([a]) { $0[0].abs() } == [])
        #expect(gradientMismatches([a]) { $0[0].sigmoid() } == [])
        #expect(gradientMismatches([a]) { $0[0].tanh() } == [])
        #expect(gradientMismatches([a]) { $0[0].relu() } == [])
        #expect(gradientMismatches([a]) { $0[0].softplus() } == [])
    }

    @Test func straightThroughGradients() {
        // step and sign have derivative 0 almost everywhere; the perceptron rule passes the
        // upstream gradient straight through instead (lecture 002).
        let tape = Tape()
        let x = tape.leaf(Tensor([-1.5, -0.2, 0, 0.3, 2]))
        let step = x.hardThreshold()
        #expect(step.value.scalars == [0, 0, 0, 1, 1])
        let sign = x.sign()
        #expect(sign.value.scalars == [-1, -1, -1, 1, 1])
        tape.backward(from: (step + sign).sum())
        #expect(x.gradient!.scalars == [2, 2, 2, 2, 2])
    }

    @Test func valueUsedTwiceAccumulates() {
        // d/dx (x·x + x) = 2x + 1: two paths into x, the gradients add.
        let tape = Tape()
        let x = tape.leaf(Tensor([3]))
        tape.backward(from: (x * x + x).sum())
        #expect(x.gradient!.scalars == [7])
        #expect(gradientMismatches([a]) { v in (v[0] * v[0] + v[0]).sigmoid() * v[0] } == [])
    }

    @Test func lectureMultivariateChainRule() {
        // Lecture 002: f = h2 + e^{h1·h2}, h1 = cos x, h2 = x²;
        // df/dx = h2·e^{h1 h2}·(−sin x) + (1 + h1·e^{h1 h2})·2x. At x = 0.7, computed in Double:
        let x0 = 0.7
        let h1 = cos(x0), h2 = x0 * x0
        let e: Double = exp(h1 * h2)
        let expected: Double = h2 * e * -sin(x0) + (1 + h1 * e) * 2 * x0
        // cos is not an op, so feed h1 = cos x through its own leaf and chain by hand: the tape
        // must give ∂f/∂h1 and ∂f/∂h2, which the chain rule combines.
        let tape = Tape()
        let v1 = tape.leaf(Tensor([Float(h1)])), v2 = tape.leaf(Tensor([Float(h2)]))
        let f = v2 + (v1 * v2).exp()
        tape.backward(from: f.sum())
        let dfdh1 = Double(v1.gradient!.scalar), dfdh2 = Double(v2.gradient!.scalar)
        let dfdx: Double = dfdh1 * -sin(x0) + dfdh2 * 2 * x0
        #expect(abs(dfdx - expected) < 1e-5)
    }

    @Test func tapeIsFreedAfterUse() {
        // Pullbacks must not hold variables (which hold the tape): that cycle leaked every step.
        weak var weakTape: Tape?
        do {
            let tape = Tape()
            weakTape = tape
            let x = tape.leaf(a), w = tape.leaf(b.transposed()), bias = tape.leaf(Tensor([1, 2, 3]))
            let y = (x.matmul(w) * x.matmul(w)).addingRow(bias).linear(weight: w, bias: nil).sigmoid().sum()
            tape.backward(from: y)
            #expect(w.gradient != nil)
        }
        #expect(weakTape == nil)
    }

    @Test func noGradientModeRecordsNothing() {
        let tape = Tape.noGradient()
        let x = tape.constant(a)
        let y = x.sigmoid().matmul(tape.constant(b), transposeOther: true)
        #expect(!y.requiresGradient)
        #expect(tape.nodeCount == 0)
    }

    @Test func constantsGetNoGradient() {
        let tape = Tape()
        let x = tape.constant(a), w = tape.leaf(b)
        let y = (x * w).sum()
        tape.backward(from: y)
        #expect(x.gradient == nil)
        #expect(w.gradient! == a)
    }
}
