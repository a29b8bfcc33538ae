@testable import CohortNN
@testable import CohortTraining
@testable import CohortTensor
import Testing

@Suite struct GradientTreeTests {
    @Test func blocksAreTreeNodesCoveringTheRange() {
        for k in 1...13 {
            let tree = GradientTree(leafCount: k)
            for a in 0..<k { for b in (a + 1)...k {
                let blocks = tree.blocks(covering: a..<b)
                #expect(blocks.flatMap { Array($0) } == Array(a..<b))
                #expect(blocks.allSatisfy(tree.isNode))
                #expect(blocks.count <= 2 * (Int.bitWidth - k.leadingZeroBitCount))
            } }
        }
        #expect(GradientTree.children(of: 0..<6) == (0..<4, 4..<6))
        #expect(GradientTree.children(of: 4..<6) == (4..<5, 5..<6))
    }

    /// However the leaves are split among "workers", the tree sum is bitwise the same.
    /// A sum written into given memory (a worker's shared-memory slot) holds exactly what
    /// accumulate computes, in that memory, and leaves the memory's other views seeing it.
    @Test func sumIntoDestinationWritesThere() {
        let left = GradientSum(gradients: [Tensor([0.1, 0.2, 1e-8]), Tensor([3])], lossSum: 1.5, samples: 2, correct: 1)
        let right = GradientSum(gradients: [Tensor([0.7, -0.2, 1]), Tensor([0.25])], lossSum: 0.25, samples: 3, correct: 2)
        var expected = left
        expected.accumulate(right)
        let memory = UnsafeMutablePointer<Float>.allocate(capacity: 4)
        defer { memory.deallocate() }
        final class Owner {}
        let owner = Owner()
        let slot = [Tensor(borrowing: UnsafeMutableRawPointer(memory), shape: [3], owner: owner),
                    Tensor(borrowing: UnsafeMutableRawPointer(memory + 3), shape: [1], owner: owner)]
        let sum = GradientSum.sum(left, right, into: slot)
        #expect(sum.gradients.map(\.scalars) == expected.gradients.map(\.scalars))
        #expect(Array(UnsafeBufferPointer(start: memory, count: 4)) == expected.gradients.flatMap(\.scalars))
        #expect(sum.lossSum == 1.75 && sum.samples == 5 && sum.correct == 3)
    }

    /// How leaves are dealt to workers and threads: contiguous, covering, never empty.
    @Test func partsAreContiguousAndCover() {
        #expect(GradientTree.parts(of: 0..<4, count: 3) == [0..<1, 1..<2, 2..<4])
        #expect(GradientTree.parts(of: 2..<5, count: 8) == [2..<3, 3..<4, 4..<5])
        #expect(GradientTree.parts(of: 0..<6, count: 1) == [0..<6])
        #expect(GradientTree.parts(of: 3..<3, count: 2) == [])
    }

    /// Parts for workers that add each other's sums: every one a node of the tree, covering it
    /// left to right, the lighter side on the left; fewer parts than workers where the leaves run out.
    @Test func nodePartsAreTreeNodes() {
        let tree = GradientTree(leafCount: 8), odd = GradientTree(leafCount: 6)
        #expect(GradientTree.nodeParts(of: tree.root, count: 3) == [0..<4, 4..<6, 6..<8])
        #expect(GradientTree.nodeParts(of: 4..<8, count: 3) == [4..<6, 6..<7, 7..<8])
        #expect(GradientTree.nodeParts(of: tree.root, count: 4) == GradientTree.parts(of: tree.root, count: 4))
        #expect(GradientTree.nodeParts(of: 6..<8, count: 5) == [6..<7, 7..<8])
        #expect(GradientTree.nodeParts(of: odd.root, count: 3) == [0..<2, 2..<4, 4..<6])
        for count in 1...9 {
            for (t, parts) in [(tree, GradientTree.nodeParts(of: tree.root, count: count)), (odd, GradientTree.nodeParts(of: odd.root, count: count))] {
                #expect(parts.allSatisfy(t.isNode) && parts.first?.lowerBound == 0 && parts.last?.upperBound == t.leafCount)
                #expect(zip(parts, parts.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound } && parts.count == min(count, t.leafCount))
            }
        }
        // `cluster.dealing: tree`: this machine's workers take the left child (any cut will do
        // there), the others the right child in tree nodes; nothing to do with fewer than two.
        #expect(Dealing.treeParts(root: tree.root, local: 1, remote: 3) == [0..<4, 4..<6, 6..<7, 7..<8])
        #expect(Dealing.treeParts(root: tree.root, local: 3, remote: 2) == [0..<1, 1..<2, 2..<4, 4..<6, 6..<8])
        #expect(Dealing.treeParts(root: tree.root, local: 0, remote: 3) == [0..<4, 4..<6, 6..<8])
        #expect(Dealing.treeParts(root: tree.root, local: 1, remote: 1) == nil)
    }

    @Test func sumIsIndependentOfThePartition() {
        let k = 11
        let leaves = (0..<k).map { i in
            GradientSum(gradients: [Tensor.normal([257], std: Float(i + 1) * 10, seed: UInt64(i), stream: .init(purpose: 5))],
                        lossSum: Double(i) / 3, samples: 3, correct: 1)
        }
        let tree = GradientTree(leafCount: k)
        let reference = tree.sum(tree.root) { leaves[$0] }
        for cuts in [[0, 11], [0, 5, 11], [0, 3, 7, 11], [0, 1, 2, 9, 11], [0, 6, 11]] {
            var known: [Range<Int>: GradientSum] = [:]
            for (a, b) in zip(cuts, cuts.dropFirst()) {
                for block in tree.blocks(covering: a..<b) { known[block] = tree.sum(block) { leaves[$0] } }
            }
            let total = tree.sum(tree.root, known: known) { _ in fatalError("every leaf is covered") }
            #expect(total.gradients[0].bitwiseEqual(reference.gradients[0]))
            #expect(total.lossSum == reference.lossSum && total.samples == 33)
        }
        // A left-to-right running sum is not the tree sum in general: the tree matters.
        var running = leaves[0]
        for leaf in leaves.dropFirst() { running.accumulate(leaf) }
        #expect(!running.gradients[0].bitwiseEqual(reference.gradients[0]))
    }
}

@Suite struct UpdateTests {
    @Test func sgdFirstStepsClosedForm() {
        var p = [Tensor([1, -2])]
        var sgd = Optimizer(rule: SGD(), learningRate: 0.1, parameters: p)
        sgd.apply(to: &p, gradients: [Tensor([0.5, -1])])
        #expect(p[0].scalars == [Float(1) - 0.1 * 0.5, Float(-2) + 0.1])
        // Momentum 0.9: v1 = g1, v2 = 0.9·g1 + g2.
        var q = [Tensor([1])]
        var momentum = Optimizer(rule: SGD(momentum: 0.9), learningRate: 0.1, parameters: q)
        momentum.apply(to: &q, gradients: [Tensor([1])])
        #expect(abs(q[0].scalar - 0.9) < 1e-7)
        momentum.apply(to: &q, gradients: [Tensor([2])])
        #expect(abs(q[0].scalar - (0.9 - 0.1 * (0.9 + 2))) < 1e-6)
    }

    @Test func clippingByGlobalNorm() {
        // g = ([3], [4]) summed over B = 1 has ‖g‖ = 5; τ = 1 scales it to ([0.6], [0.8]).
        var p = [Tensor([0]), Tensor([0])]
        var optimizer = Optimizer(rule: SGD(), learningRate: 1, parameters: p)
        let sum = GradientSum(gradients: [Tensor([3]), Tensor([4])], lossSum: 0, samples: 1, correct: 0)
        let report = StepUpdate(reduction: .mean, clipNorm: 1).apply(sum, batchSize: 1, parameters: &p, optimizer: &optimizer)
        #expect(abs(report.gradientNorm - 5) < 1e-9 && report.clipped)
        #expect(abs(p[0].scalar + 0.6) < 1e-6 && abs(p[1].scalar + 0.8) < 1e-6)
        // Under the threshold nothing changes; the mean divides by B first.
        var r = [Tensor([0]), Tensor([0])]
        var o2 = Optimizer(rule: SGD(), learningRate: 1, parameters: r)
        let unclipped = StepUpdate(reduction: .mean, clipNorm: 10).apply(sum, batchSize: 2, parameters: &r, optimizer: &o2)
        #expect(!unclipped.clipped && abs(unclipped.gradientNorm - 2.5) < 1e-9)
        #expect(r[0].scalar == -1.5 && r[1].scalar == -2)
    }

    @Test func regularizationAndValueClipping() {
        // One parameter w = [0.5, −2] (a weight) and a bias b = [3]; gradient sums over B = 2.
        var p = [Tensor([0.5, -2]), Tensor([3])]
        var o = Optimizer(rule: SGD(), learningRate: 1, parameters: p)
        let sum = GradientSum(gradients: [Tensor([2, -8]), Tensor([4])], lossSum: 0, samples: 2, correct: 0)
        let update = StepUpdate(reduction: .mean, clipNorm: nil, clipValue: 3,
                                regularization: Regularization(l1: 0.1, l2: 0.05), isBias: [false, true])
        _ = update.apply(sum, batchSize: 2, parameters: &p, optimizer: &o)
        // g = clamp(sum/2, ±3) + λ₁ sign(w) + 2λ₂w; the bias gets no penalty.
        let gw = [min(1, 3) + 0.1 + 2 * 0.05 * 0.5, max(-4, -3) - 0.1 + 2 * 0.05 * -2]
        #expect(abs(Double(p[0][flat: 0]) - (0.5 - gw[0])) < 1e-6 && abs(Double(p[0][flat: 1]) - (-2 - gw[1])) < 1e-6)
        #expect(p[1].scalars == [1])
        #expect(abs(Regularization(l1: 0.1, l2: 0.05).penalty([Tensor([0.5, -2]), Tensor([3])], isBias: [false, true])
                    - (0.1 * 2.5 + 0.05 * 4.25)) < 1e-6)
    }
}
