@testable import CohortTensor
import Testing

/// A weight gradient delivered by the product itself into memory given for it, against the same
/// gradient computed apart: the same bits, or no delivery at all.
@Suite struct GradientTargetTests {
    static func values(_ shape: [Int], seed: UInt64) -> Tensor {
        Tensor.normal(shape, std: 1, seed: seed, stream: .init(purpose: 11))
    }

    /// The probe says yes only for products whose beta = 1 result is fl(C + product) in every
    /// bit, and no for an inner dimension long enough that OpenBLAS adds it to C in blocks.
    @Test func theProbeAcceptsOnlyExactAccumulation() {
        let short = BLAS.ProductShape(transA: true, transB: false, m: 96, n: 200, k: 32)
        let long = BLAS.ProductShape(transA: true, transB: false, m: 96, n: 200, k: 8192)
        #expect(!BLAS.addsProductExactly(long), "an inner dimension of 8192 is split into K blocks by every kernel")
        for shape in [short, long] where BLAS.addsProductExactly(shape) {
            let g = Self.values([shape.k, shape.m], seed: 1), x = Self.values([shape.k, shape.n], seed: 2)
            let old = Self.values([shape.m, shape.n], seed: 3)
            var fused = old
            fused.matmulAccumulate(g, x, transposeA: true, beta: 1)
            var apart = old
            apart.add(g.matmul(x, transposeSelf: true))
            #expect(fused.bitwiseEqual(apart))
        }
    }

    /// A linear layer's weight gradient goes into the target, overwriting or adding; the bias's,
    /// which is no product, comes back as usual.
    @Test(arguments: [false, true])
    func linearDeliversItsWeightGradient(adds: Bool) {
        let x = Self.values([32, 200], seed: 4), w = Self.values([96, 200], seed: 5), b = Self.values([96], seed: 6)
        func gradients(target: GradientTarget?) -> (Tape, Variable, Variable) {
            let tape = Tape()
            let (wv, bv) = (tape.leaf(w, target: target), tape.leaf(b))
            tape.backward(from: (tape.constant(x).linear(weight: wv, bias: bv) * tape.constant(Self.values([32, 96], seed: 7))).sum())
            return (tape, wv, bv)
        }
        let (plain, pw, pb) = gradients(target: nil)
        let old = Self.values([96, 200], seed: 8)
        var memory = old
        let (tape, tw, tb) = gradients(target: GradientTarget(pointer: memory.mutablePointer, count: memory.count, adds: adds))
        let exact = !adds || BLAS.addsProductExactly(.init(transA: true, transB: false, m: 96, n: 200, k: 32))
        #expect(tape.wasDelivered(tw) == exact && !tape.wasDelivered(tb))
        #expect(tape.gradient(of: tb)!.bitwiseEqual(plain.gradient(of: pb)!))
        guard exact else { return #expect(tape.gradient(of: tw)!.bitwiseEqual(plain.gradient(of: pw)!)) }
        var expected = plain.gradient(of: pw)!
        if adds { expected = old; expected.add(plain.gradient(of: pw)!) }
        #expect(tape.gradient(of: tw) == nil && memory.bitwiseEqual(expected))
    }

    /// A weight read by two ops gets the sum of two terms: never delivered by either one alone.
    @Test func aWeightReadTwiceIsNotDelivered() {
        let x = Self.values([32, 20], seed: 9), w = Self.values([20, 20], seed: 10)
        var memory = Tensor.zeros([20, 20])
        let tape = Tape()
        let wv = tape.leaf(w, target: GradientTarget(pointer: memory.mutablePointer, count: memory.count, adds: false))
        let h = tape.constant(x).linear(weight: wv, bias: nil)
        tape.backward(from: h.linear(weight: wv, bias: nil).sum())
        #expect(!tape.wasDelivered(wv) && tape.gradient(of: wv) != nil)
        #expect(memory.scalars.allSatisfy { $0 == 0 })
    }
}
