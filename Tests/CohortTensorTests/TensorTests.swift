@testable import CohortTensor
import Testing

@Suite struct TensorTests {
    @Test func creationAndShape() {
        let t = Tensor([[1, 2, 3], [4, 5, 6]])
        #expect(t.shape == [2, 3])
        #expect(t[1, 2] == 6)
        #expect(Tensor.zeros([2, 2]).scalars == [0, 0, 0, 0])
        #expect(Tensor.ones([3]).scalars == [1, 1, 1])
        #expect(t.reshaped([3, -1]).shape == [3, 2])
        #expect(t.transposed() == Tensor([[1, 4], [2, 5], [3, 6]]))
    }

    @Test func valueSemanticsCopyOnWrite() {
        let a = Tensor([1, 2, 3])
        var b = a
        b[flat: 0] = 10
        #expect(a.scalars == [1, 2, 3])
        #expect(b.scalars == [10, 2, 3])
        var c = a.reshaped([3, 1])
        c[0, 0] = 7
        #expect(a[0] == 1)
    }

    @Test func broadcastingReductionsArgmax() {
        let t = Tensor([[1, 2, 3], [4, 5, 6]])
        #expect(t.addingRow(Tensor([10, 20, 30])) == Tensor([[11, 22, 33], [14, 25, 36]]))
        #expect(t.sum(axis: 0).scalars == [5, 7, 9])
        #expect(t.sum(axis: 1).scalars == [6, 15])
        #expect(t.mean(axis: 1).scalars == [2, 5])
        #expect(t.sum() == 21)
        #expect(Tensor([[0.1, 0.7, 0.2], [3, -1, 3]]).argmax() == [1, 0])
    }

    /// Sums over a leading or middle axis (eight lanes plus a tail) against the plain loop, in
    /// the same order, so exactly equal.
    @Test func sumOverAnAxisMatchesThePlainLoop() {
        for shape in [[5, 13], [3, 4, 11], [2, 7, 8], [6, 3]] {
            let n = shape.reduce(1, *)
            let t = Tensor(shape: shape, (0..<n).map { Float(($0 * 7919) % 1009) / 97 - 5 })
            for axis in 0..<(shape.count - 1) {
                let outer = shape[..<axis].reduce(1, *), count = shape[axis], inner = shape[(axis + 1)...].reduce(1, *)
                var expected = [Float](repeating: 0, count: outer * inner)
                for o in 0..<outer { for k in 0..<count { for i in 0..<inner {
                    expected[o * inner + i] += t.scalars[(o * count + k) * inner + i]
                } } }
                #expect(t.sum(axis: axis).scalars == expected, "\(shape) axis \(axis)")
            }
        }
    }

    @Test func gatherRows() {
        let t = Tensor([[1, 2], [3, 4], [5, 6]])
        #expect(t.gatherRows([2, 0, 2]) == Tensor([[5, 6], [1, 2], [5, 6]]))
        var buffer = Tensor.zeros([2, 2])
        t.gatherRows([1, 0], into: &buffer)
        #expect(buffer == Tensor([[3, 4], [1, 2]]))
        #expect(t.rows(1..<3) == Tensor([[3, 4], [5, 6]]))
    }

    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func matmulMatchesDefinition(ta: Bool, tb: Bool) {
        let a = Tensor.uniform(ta ? [7, 5] : [5, 7], low: -1, high: 1, seed: 1, stream: .init(purpose: 9))
        let b = Tensor.uniform(tb ? [3, 7] : [7, 3], low: -1, high: 1, seed: 2, stream: .init(purpose: 9))
        let c = a.matmul(b, transposeSelf: ta, transposeOther: tb)
        let opA = ta ? a.transposed() : a, opB = tb ? b.transposed() : b
        for i in 0..<5 { for j in 0..<3 {
            var s = 0.0
            for k in 0..<7 { s += Double(opA[i, k]) * Double(opB[k, j]) }
            #expect(abs(Double(c[i, j]) - s) < 1e-5)
        } }
    }

    @Test func matmulAccumulatesWithBeta() {
        var c = Tensor([[1, 1], [1, 1]])
        c.matmulAccumulate(Tensor([[1, 2], [3, 4]]), Tensor([[1, 0], [0, 1]]), beta: 1)
        #expect(c == Tensor([[2, 3], [4, 5]]))
    }
}

@Suite struct PhiloxTests {
    /// Known-answer vectors of Philox4x32-10 from the Random123 distribution (kat_vectors).
    @Test func knownAnswers() {
        let zero = Philox(seed: 0).block(0, 0, 0, 0)
        #expect([zero.0, zero.1, zero.2, zero.3] == [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8])
        let ones = Philox(seed: 0xffff_ffff_ffff_ffff).block(0xffff_ffff, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff)
        #expect([ones.0, ones.1, ones.2, ones.3] == [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd])
        let pi = Philox(seed: 0x299f_31d0 << 32 | 0xa409_3822).block(0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344)
        #expect([pi.0, pi.1, pi.2, pi.3] == [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1])
    }

    @Test func distributions() {
        let u = Tensor.uniform([20000], low: -1, high: 3, seed: 5, stream: .init(purpose: 1))
        #expect(u.scalars.allSatisfy { $0 >= -1 && $0 < 3 })
        #expect(abs(u.sum() / 20000 - 1) < 0.03)
        let n = Tensor.normal([20000], mean: 2, std: 0.5, seed: 5, stream: .init(purpose: 1))
        let mean = n.sum() / 20000
        let variance = n.map { ($0 - mean) * ($0 - mean) }.sum() / 20000
        #expect(abs(mean - 2) < 0.02)
        #expect(abs(variance.squareRoot() - 0.5) < 0.02)
        // Same seed and stream, same numbers; another stream, other numbers.
        #expect(Tensor.normal([8], seed: 5, stream: .init(purpose: 1)).bitwiseEqual(Tensor.normal([8], seed: 5, stream: .init(purpose: 1))))
        #expect(!Tensor.normal([8], seed: 5, stream: .init(purpose: 1, a: 1)).bitwiseEqual(Tensor.normal([8], seed: 5, stream: .init(purpose: 1))))
    }

    @Test func permutationIsAPermutation() {
        let p = seededPermutation(1000, seed: 3, stream: .init(purpose: 3))
        #expect(p.sorted() == Array(0..<1000))
        #expect(p != Array(0..<1000))
        #expect(p == seededPermutation(1000, seed: 3, stream: .init(purpose: 3)))
    }
}
