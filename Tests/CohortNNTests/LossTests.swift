@testable import CohortNN
@testable import CohortTensor
import Foundation
import CohortTestSupport
import Testing

@Suite struct LossTests {
    func value(_ loss: Loss, _ z: Tensor, _ t: Tensor, _ reduction: Reduction = .mean) -> Double {
        let tape = Tape.noGradient()
        return Double(loss(tape.constant(z), t, reduction: reduction).value.scalar)
    }

    @Test func binaryCrossEntropyMatchesTheLecture() {
        // Lecture 003, iteration 1: ŷ = 0.8933, y = 1 ⇒ L = −ln 0.8933 ≈ 0.1129 (ERRATA).
        #expect(abs(value(.binaryCrossEntropy, Tensor([[0.8933]]), Tensor([[1]])) - 0.1129) < 1e-4)
        // ∂L/∂ŷ = −y/ŷ + (1 − y)/(1 − ŷ) = −1.1194.
        let tape = Tape()
        let p = tape.leaf(Tensor([[0.8933]]))
        tape.backward(from: Loss.binaryCrossEntropy(p, Tensor([[1]])))
        #expect(abs(p.gradient!.scalar + 1 / 0.8933) < 1e-4)
    }

    @Test func closedForms() {
        let z = Tensor([[0.5, -1.0, 2.0], [1.5, 0.0, -0.5]])
        let onehot = Tensor([[0, 0, 1], [1, 0, 0]])
        func lse(_ row: [Double]) -> Double { log(row.map(exp).reduce(0, +)) }
        let ce = ((lse([0.5, -1, 2]) - 2) + (lse([1.5, 0, -0.5]) - 1.5)) / 2
        #expect(abs(value(.softmaxCrossEntropy, z, Tensor([2, 0])) - ce) < 1e-6)
        #expect(abs(value(.softmaxCrossEntropy, z, onehot) - ce) < 1e-6)
        #expect(abs(value(.softmaxCrossEntropy, z, Tensor([2, 0]), .sum) - 2 * ce) < 1e-5)

        let t = Tensor([[1, 0, 1], [0, 0, 1]])
        let zs = z.scalars.map(Double.init), ts = t.scalars.map(Double.init)
        let bce = zip(zs, ts).map { z, t in -(t * log(1 / (1 + exp(-z))) + (1 - t) * log(1 - 1 / (1 + exp(-z)))) }
        #expect(abs(value(.binaryCrossEntropyWithLogits, z, t) - bce.reduce(0, +) / 6) < 1e-6)
        #expect(abs(value(.multiLabelBinaryCrossEntropy, z, t, .sum) - bce.reduce(0, +)) < 1e-5)
        let probabilities = z.map { 1 / (1 + exp(-$0)) }
        #expect(abs(value(.binaryCrossEntropy, probabilities, t) - bce.reduce(0, +) / 6) < 1e-6)

        let sq = zip(zs, ts).map { ($0 - $1) * ($0 - $1) }
        #expect(abs(value(.meanSquaredError, z, t) - sq.reduce(0, +) / 6) < 1e-6)
        #expect(abs(value(.halfSquaredError, z, t, .sum) - sq.reduce(0, +) / 2) < 1e-6)

        // Hinge: max(0, 1 − y·z) with 0/1 labels read as −1/+1.
        let hinge = zip(zs, ts).map { z, t in max(0, 1 - (t > 0 ? 1 : -1) * z) }
        #expect(abs(value(.hinge, z, t) - hinge.reduce(0, +) / 6) < 1e-6)
    }

    @Test func withLogitsIsStableForLargeLogits() {
        let v = value(.binaryCrossEntropyWithLogits, Tensor([[100, -100]]), Tensor([[0, 1]]))
        #expect(abs(v - 100) < 1e-3)
        let ce = value(.softmaxCrossEntropy, Tensor([[1000, 0]]), Tensor([1]))
        #expect(abs(ce - 1000) < 1e-2)
    }

    @Test(arguments: Loss.allCases)
    func gradientCheck(loss: Loss) {
        let z = smoothRandom([4, 3], seed: 21)
        let target: Tensor
        var input = z
        switch loss {
        case .softmaxCrossEntropy: target = Tensor([0, 2, 1, 2])
        case .binaryCrossEntropy:
            input = z.map { 1 / (1 + exp(-$0)) }
            target = Tensor(shape: [4, 3], [1, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1, 0])
        default: target = Tensor(shape: [4, 3], [1, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1, 0])
        }
        for reduction in Reduction.allCases {
            #expect(gradientMismatches([input]) { loss($0[0], target, reduction: reduction) } == [])
        }
    }

    @Test func sampleSumDividedByBatchIsTheMean() {
        let z = smoothRandom([6, 3], seed: 4)
        let t = Tensor(shape: [6, 3], (0..<18).map { Float($0 % 2) })
        let tape = Tape.noGradient()
        for loss in [Loss.meanSquaredError, .binaryCrossEntropyWithLogits, .hinge] {
            let sum = Double(loss.sampleSum(tape.constant(z), t, reduction: .mean).value.scalar)
            #expect(abs(sum / 6 - value(loss, z, t)) < 1e-6)
        }
    }
}
