@testable import CohortTraining
@testable import CohortTensor
import Testing

/// The root's addition fused with the norm, on several threads, against the plain tree sum and
/// `Tensor.squaredNorm`: the same bits, whatever the number of lanes.
@Suite struct RootSumTests {
    /// Values of many magnitudes, so that any other order of additions shows in the last bits.
    static func gradient(_ counts: [Int], seed: UInt64) -> GradientSum {
        var state = seed
        func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let unit = Float(state >> 40) / Float(1 << 24) - 0.5
            return unit * Float(1 << Int((state >> 20) % 24)) / 4096
        }
        return GradientSum(gradients: counts.map { n in Tensor(shape: [n], (0..<n).map { _ in next() }) },
                           lossSum: Double(seed), samples: Int(seed), correct: 1)
    }

    @Test(arguments: [1, 2, 3, 8])
    func fusedRootSumIsTheTreeSumAndItsNorm(lanes: Int) {
        // Tensors shorter than a lane group, not a multiple of 8, and spanning several norm blocks.
        let counts = [5, 260 * Tensor.normBlock + 13, 16, 1, Tensor.normBlock]   // enough blocks for 8 lanes
        for leaves in [1, 2, 3, 4, 5] {
            let tree = GradientTree(leafCount: leaves)
            let leaf = { (k: Int) in Self.gradient(counts, seed: UInt64(k + 1)) }
            let expected = tree.sum(tree.root, leaf: leaf)
            let expectedNorm = expected.gradients.reduce(0) { $0 + $1.squaredNorm() }
            var known: [Range<Int>: GradientSum] = [:]
            let (sum, squaredNorm) = tree.rootSum(taking: &known, lanes: lanes, leaf: leaf)
            #expect(sum.gradients.map(\.scalars) == expected.gradients.map(\.scalars), "\(leaves) leaves, \(lanes) lanes")
            #expect(squaredNorm.bitPattern == expectedNorm.bitPattern, "\(leaves) leaves, \(lanes) lanes")
            #expect(sum.lossSum == expected.lossSum && sum.samples == expected.samples && sum.correct == expected.correct)
        }
    }

    /// A block held elsewhere (a worker's shared slot, a sum another step still reads) is never
    /// written: the root's addition goes to memory of its own.
    @Test func rootSumLeavesSharedTensorsAlone() {
        let left = Self.gradient([100], seed: 1), right = Self.gradient([100], seed: 2)
        var known = [0..<1: left, 1..<2: right]
        let (sum, _) = GradientTree(leafCount: 2).rootSum(taking: &known, lanes: 2) { _ in fatalError("no leaf is missing") }
        #expect(left.gradients[0].scalars == Self.gradient([100], seed: 1).gradients[0].scalars)
        var expected = left
        expected.accumulate(right)
        #expect(sum.gradients[0].scalars == expected.gradients[0].scalars)
    }

    /// With `wire_dtype: bf16` every node, leaves and root included, is rounded to bfloat16 as
    /// it is made, by every way of summing: the plain tree sum, the fused root sum and norm, and
    /// the piece-by-piece sum of the streamed update and the relays. Checked against the rule
    /// written out in scalars; it fails if any of them skips a rounding.
    @Test func bf16RoundsEveryNodeHoweverItIsSummed() {
        let counts = [5, 3 * Tensor.normBlock + 13, 16]
        func leafValues(_ k: Int) -> [[Float]] { Self.gradient(counts, seed: UInt64(k + 1)).gradients.map(\.scalars) }
        func rule(_ node: Range<Int>) -> [[Float]] {
            guard node.count > 1 else { return leafValues(node.lowerBound).map { $0.map(BFloat16.round) } }
            let (l, r) = GradientTree.children(of: node)
            return zip(rule(l), rule(r)).map { a, b in zip(a, b).map { BFloat16.round($0 + $1) } }
        }
        for leaves in [1, 2, 3, 5] {
            let tree = GradientTree(leafCount: leaves, precision: .bf16)
            let expected = rule(tree.root)
            let leaf = { (k: Int) in Self.gradient(counts, seed: UInt64(k + 1)) }
            #expect(tree.sum(tree.root, leaf: leaf).gradients.map(\.scalars) == expected, "\(leaves) leaves")
            var known: [Range<Int>: GradientSum] = [:]
            let (sum, squaredNorm) = tree.rootSum(taking: &known, lanes: 2, leaf: leaf)
            #expect(sum.gradients.map(\.scalars) == expected, "\(leaves) leaves")
            let expectedNorm = expected.map { Tensor(shape: [$0.count], $0).squaredNorm() }.reduce(0, +)
            #expect(squaredNorm.bitPattern == expectedNorm.bitPattern)
            // Piece by piece from the rounded leaves (as they arrive over the wire).
            let blocks = Dictionary(uniqueKeysWithValues: (0..<leaves).map { k in
                (k..<(k + 1), rule(k..<(k + 1)).map { Tensor(shape: [$0.count], $0) })
            })
            let layout = StreamLayout(shapes: counts.map { [$0] }, chunkFloats: Tensor.normBlock, dtype: .bf16)
            var pieces = expected.map { [Float](repeating: 0, count: $0.count) }
            for piece in layout.pieces {
                let p = tree.pieceSum(tree.root, piece) { blocks[$0] }
                for i in 0..<piece.count { pieces[piece.tensor][piece.start + i] = p[i] }
            }
            #expect(pieces == expected, "\(leaves) leaves, piece by piece")
        }
        // And the fp32 tree does not round: the same leaves give other bits.
        let plain = GradientTree(leafCount: 3).sum(0..<3) { Self.gradient(counts, seed: UInt64($0 + 1)) }
        #expect(plain.gradients.map(\.scalars) != rule(0..<3))
    }
}
