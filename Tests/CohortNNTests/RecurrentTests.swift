@testable import CohortNN
@testable import CohortTensor
import CohortTestSupport
import Foundation
import Testing

func sig(_ x: Double) -> Double { 1 / (1 + exp(-x)) }

/// Runs one recurrent layer without recording; returns [B, T, H].
func runRecurrent(_ cell: RecurrentCell, x: Tensor, _ p: [Tensor]) -> Tensor {
    let tape = Tape.noGradient()
    return tape.constant(x).recurrent(cell, weightIH: tape.constant(p[0]), weightHH: tape.constant(p[1]),
                                      biasIH: tape.constant(p[2]), biasHH: tape.constant(p[3])).value
}

func parameters(_ cell: RecurrentCell, input: Int, hidden: Int, seed: UInt64) -> [Tensor] {
    let g = cell.gates * hidden
    return [[g, input], [g, hidden], [g], [g]].enumerated().map { smoothRandom($0.element, seed: seed + UInt64($0.offset), low: -0.8, high: 0.8) }
}

@Suite struct RecurrentTests {
    let x = smoothRandom([2, 1, 3], seed: 40)
    let h = 2

    /// Two steps, so the second depends on h₁ and C₁ through the hidden weights.
    func twoSteps() -> Tensor { smoothRandom([1, 2, 3], seed: 41) }

    @Test func lstmStepsMatchTheLectureEquations() {
        let p = parameters(.lstm, input: 3, hidden: h, seed: 1)
        let xs = twoSteps()
        let y = runRecurrent(.lstm, x: xs, p)
        func d(_ t: Tensor, _ i: Int) -> Double { Double(t[flat: i]) }
        var hPrev = [0.0, 0.0], cPrev = [0.0, 0.0]
        for t in 0..<2 {
            // pre_k = W_ih[k]·x + b_ih[k] + W_hh[k]·h₋ + b_hh[k]; gates in order i, f, g, o.
            func pre(_ k: Int) -> Double {
                var s = d(p[2], k) + d(p[3], k)
                for j in 0..<3 { s += d(p[0], k * 3 + j) * d(xs, t * 3 + j) }
                for j in 0..<h { s += d(p[1], k * h + j) * hPrev[j] }
                return s
            }
            var hNew = [0.0, 0.0], cNew = [0.0, 0.0]
            for u in 0..<h {
                let i = sig(pre(u)), f = sig(pre(h + u)), g = tanh(pre(2 * h + u)), o = sig(pre(3 * h + u))
                cNew[u] = f * cPrev[u] + i * g          // C = f ⊙ C₋ + i ⊙ g
                hNew[u] = o * tanh(cNew[u])               // h = o ⊙ tanh(C)
            }
            for u in 0..<h { #expect(abs(Double(y[0, t, u]) - hNew[u]) < 1e-6) }
            (hPrev, cPrev) = (hNew, cNew)
        }
    }

    @Test func gruStepsMatchTheLectureEquations() {
        let p = parameters(.gru, input: 3, hidden: h, seed: 2)
        let xs = twoSteps()
        let y = runRecurrent(.gru, x: xs, p)
        let yTorch = runRecurrent(.gruPyTorch, x: xs, p)
        func d(_ t: Tensor, _ i: Int) -> Double { Double(t[flat: i]) }
        var hPrev = [0.0, 0.0], hTorch = [0.0, 0.0]
        for t in 0..<2 {
            func wx(_ k: Int) -> Double { (0..<3).reduce(d(p[2], k)) { $0 + d(p[0], k * 3 + $1) * d(xs, t * 3 + $1) } }
            func uh(_ k: Int, _ v: [Double]) -> Double { (0..<h).reduce(d(p[3], k)) { $0 + d(p[1], k * h + $1) * v[$1] } }
            // Lecture 001 §5.3 (gate rows r, z, candidate): z = σ(W_z x + U_z h₋ + b_z), r likewise,
            // h̃ = tanh(W_h x + U_h (r ⊙ h₋) + b_h), h = (1 − z) ⊙ h₋ + z ⊙ h̃.
            let r = (0..<h).map { sig(wx($0) + uh($0, hPrev)) }
            let z = (0..<h).map { sig(wx(h + $0) + uh(h + $0, hPrev)) }
            let rh = (0..<h).map { r[$0] * hPrev[$0] }
            let candidate = (0..<h).map { tanh(wx(2 * h + $0) + uh(2 * h + $0, rh)) }
            let hNew = (0..<h).map { (1 - z[$0]) * hPrev[$0] + z[$0] * candidate[$0] }
            // torch.nn.GRU: n = tanh(W_in x + b_in + r ⊙ (W_hn h₋ + b_hn)), h = (1 − z) ⊙ n + z ⊙ h₋.
            let rt = (0..<h).map { sig(wx($0) + uh($0, hTorch)) }, zt = (0..<h).map { sig(wx(h + $0) + uh(h + $0, hTorch)) }
            let n = (0..<h).map { tanh(wx(2 * h + $0) + rt[$0] * uh(2 * h + $0, hTorch)) }
            let hT = (0..<h).map { (1 - zt[$0]) * n[$0] + zt[$0] * hTorch[$0] }
            for u in 0..<h {
                #expect(abs(Double(y[0, t, u]) - hNew[u]) < 1e-6)
                #expect(abs(Double(yTorch[0, t, u]) - hT[u]) < 1e-6)
            }
            hPrev = hNew; hTorch = hT
        }
    }

    /// Lecture 000's unrolled RNN: ∂L/∂w is the sum over the three paths through S³, S², S¹.
    @Test func rnnThreeStepsMatchTheLectureBPTTSum() {
        let (u, w, b): (Double, Double, Double) = (0.7, -1.1, 0.2)
        let xs: [Double] = [0.5, -1.0, 2.0]
        var s = [0.0]
        for t in 0..<3 { s.append(tanh(u * xs[t] + w * s[t] + b)) }
        // L = S³. ∂S^j/∂S^{j−1} = (1 − (S^j)²)·w; the direct ∂S^k/∂w = (1 − (S^k)²)·S^{k−1}.
        var expected = 0.0
        for k in 1...3 {
            var chain = 1.0
            if k < 3 { for j in (k + 1)...3 { chain *= (1 - s[j] * s[j]) * w } }
            expected += chain * (1 - s[k] * s[k]) * s[k - 1]
        }
        let tape = Tape()
        let x = tape.constant(Tensor(shape: [1, 3, 1], xs.map(Float.init)))
        let wih = tape.leaf(Tensor([[Float(u)]])), whh = tape.leaf(Tensor([[Float(w)]]))
        let bih = tape.leaf(Tensor([Float(b)])), bhh = tape.leaf(Tensor([0]))
        let y = x.recurrent(.rnn, weightIH: wih, weightHH: whh, biasIH: bih, biasHH: bhh)
        #expect(abs(Double(y.value[0, 2, 0]) - s[3]) < 1e-6)
        tape.backward(from: y.lastStep().sum())
        #expect(abs(Double(whh.gradient!.scalar) - expected) < 1e-5)
    }

    @Test(arguments: RecurrentCell.allCases)
    func gradientCheckThroughSeveralSteps(cell: RecurrentCell) {
        let xs = smoothRandom([3, 4, 3], seed: 50)
        let p = parameters(cell, input: 3, hidden: 2, seed: 60)
        #expect(gradientMismatches([xs] + p) { v in
            v[0].recurrent(cell, weightIH: v[1], weightHH: v[2], biasIH: v[3], biasHH: v[4])
        } == [])
        // Two stacked layers and the last step only, as the Recurrent layer runs them.
        let layer = Recurrent(cell, inputSize: 3, hiddenSize: 2, layers: 2)
        let stacked = layer.parameterSpecs.enumerated().map { smoothRandom($0.element.shape, seed: 70 + UInt64($0.offset), low: -0.8, high: 0.8) }
        #expect(gradientMismatches([xs] + stacked) { v in layer(v[0], parameters: Array(v.dropFirst()), context: .evaluation) } == [])
    }

    @Test func pytorchNamesAndGateLayout() throws {
        let lstm = Recurrent(.lstm, inputSize: 28, hiddenSize: 128, layers: 2)
        #expect(lstm.parameterSpecs.map(\.name) == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                                                    "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1"])
        #expect(lstm.parameterSpecs.map(\.shape) == [[512, 28], [512, 128], [512], [512], [512, 128], [512, 128], [512], [512]])
        #expect(Recurrent(.gru, inputSize: 28, hiddenSize: 128).parameterSpecs[0].shape == [384, 28])
        #expect(try Recurrent(.rnn, inputSize: 28, hiddenSize: 64, returnSequences: true).outputShape(for: [28, 28]).get() == [28, 64])
    }
}
