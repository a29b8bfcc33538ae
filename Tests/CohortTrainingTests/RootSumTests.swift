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
}
