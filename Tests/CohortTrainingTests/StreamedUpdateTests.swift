@testable import CohortNN
@testable import CohortTraining
@testable import CohortTensor
import Testing

/// The step summed and updated chunk by chunk, in any order of arrival and from any cover of
/// the tree, against the plain step (`GradientTree.rootSum` then `StepUpdate.apply`): the same
/// weights, optimizer state and norm, bit for bit.
@Suite struct StreamedUpdateTests {
    /// Tensors that span several norm blocks, end inside one, and are shorter than a lane group.
    static let shapes = [[3, 3000], [2 * Tensor.normBlock + 5], [7], [Tensor.normBlock]]
    static let leafCount = 5

    static func leaf(_ k: Int) -> GradientSum {
        RootSumTests.gradient(shapes.map { $0.reduce(1, *) }, seed: UInt64(k + 1))
    }

    static func weights() -> [Tensor] {
        RootSumTests.gradient(shapes.map { $0.reduce(1, *) }, seed: 99).gradients.enumerated().map { Tensor(shape: shapes[$0], $1.scalars) }
    }

    static func blocks(_ cover: [Range<Int>]) -> [Range<Int>: GradientSum] {
        let tree = GradientTree(leafCount: leafCount)
        var known: [Range<Int>: GradientSum] = [:]
        for node in cover { known[node] = tree.sum(node, leaf: leaf) }
        return known
    }

    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var update: StepUpdate
        var rule: any OptimizerRule
        var testDescription: String { name }
    }

    static let cases = [
        Case(name: "SGD, Nesterov momentum", update: StepUpdate(reduction: .mean, clipNorm: nil), rule: SGD(momentum: 0.9, nesterov: true)),
        Case(name: "Adam, clip_norm", update: StepUpdate(reduction: .mean, clipNorm: 0.01), rule: Adam(weightDecay: 0.01)),
        Case(name: "SGD, clip_value and L1/L2", update: StepUpdate(reduction: .sum, clipNorm: nil, clipValue: 0.05,
             regularization: Regularization(l1: 1e-3, l2: 1e-2), isBias: [false, true, true, false]), rule: SGD(momentum: 0.5)),
    ]

    /// Two steps, so that the optimizer's state (momentum, Adam's moments) is read as well as written.
    @Test(arguments: cases)
    func chunksGiveThePlainStepsBits(_ c: Case) {
        let tree = GradientTree(leafCount: Self.leafCount)
        var plainWeights = Self.weights(), plain = Optimizer(rule: c.rule, learningRate: 0.1, parameters: plainWeights)
        var streamedWeights = plainWeights, streamed = plain
        for step in 0..<2 {
            var known = Self.blocks([0..<4, 4..<5])
            let (sum, squaredNorm) = tree.rootSum(taking: &known, lanes: 1) { _ in fatalError("no leaf is missing") }
            let (_, norm) = c.update.measure(sum, batchSize: 40, squaredNorm: squaredNorm)
            let report = c.update.apply(sum, batchSize: 40, norm: norm, parameters: &plainWeights, optimizer: &plain)

            let layout = StreamLayout(shapes: Self.shapes, chunkFloats: Tensor.normBlock)
            let stream = StreamedUpdate(update: c.update, layout: layout, weights: streamedWeights, optimizer: streamed, batchSize: 40)
            streamed.state = []
            // Another cover of the tree, and the chunks arriving last first.
            let cover = Self.blocks([0..<2, 2..<3, 3..<4, 4..<5])
            for chunk in (0..<layout.chunkCount).reversed() {
                #expect(stream.sum(chunk: chunk, tree: tree) { cover[$0]?.gradients })
                let ready = stream.applyReady()
                // Only chunk 0 can go first: chunks are updated in order.
                #expect(ready.isEmpty == (chunk != 0), "step \(step), chunk \(chunk): \(ready)")
            }
            #expect(stream.squaredNorm.bitPattern == squaredNorm.bitPattern)
            // Chunk 0 came last, so nothing was updated before the norm was known: a clipped
            // step needs no new generation (`theClippingBetIsUndoneWhenLost` loses a bet).
            #expect(stream.generation == 0)
            let finished = stream.finish()
            streamedWeights = finished.weights
            streamed = finished.optimizer
            #expect(finished.clipped == report.clipped)
            #expect(streamedWeights.map(\.scalars) == plainWeights.map(\.scalars), "step \(step)")
            #expect(streamed.state.map { $0.map(\.scalars) } == plain.state.map { $0.map(\.scalars) }, "step \(step)")
            #expect(streamed.step == plain.step)
        }
        #expect(c.update.clipNorm == nil || plainWeights[0].scalars != Self.weights()[0].scalars)
    }

    /// With clip_norm, chunks are updated as they come, before the norm is known; when the
    /// step turns out clipped, all of them are updated again from the restored state, and the
    /// result is the plain step's. One step clipped (limit 0.01), one not (limit 1e9). Without
    /// the bet, nothing is updated before the last chunk, and nothing twice.
    @Test(arguments: [Float(0.01), 1e9], [true, false])
    func theClippingBetIsUndoneWhenLost(_ limit: Float, bets: Bool) {
        let tree = GradientTree(leafCount: Self.leafCount)
        let update = StepUpdate(reduction: .mean, clipNorm: limit)
        var plainWeights = Self.weights(), plain = Optimizer(rule: Adam(), learningRate: 0.01, parameters: plainWeights)
        var streamed = plain
        var known = Self.blocks([0..<4, 4..<5])
        let (sum, squaredNorm) = tree.rootSum(taking: &known, lanes: 1) { _ in fatalError("no leaf is missing") }
        let report = update.apply(sum, batchSize: 40, norm: update.measure(sum, batchSize: 40, squaredNorm: squaredNorm).norm,
                                  parameters: &plainWeights, optimizer: &plain)
        #expect(report.clipped == (limit < 1))
        let layout = StreamLayout(shapes: Self.shapes, chunkFloats: Tensor.normBlock)
        let stream = StreamedUpdate(update: update, layout: layout, weights: Self.weights(), optimizer: streamed, batchSize: 40)
        stream.bets = bets
        streamed.state = []
        let cover = Self.blocks([0..<4, 4..<5])
        var sent: [Range<Int>] = []
        for chunk in 0..<layout.chunkCount {
            #expect(stream.sum(chunk: chunk, tree: tree) { cover[$0]?.gradients })
            sent.append(stream.applyReady())
        }
        let last = layout.chunkCount - 1
        if bets {
            // Each chunk went out as it came; a lost bet sends them all again with the last one.
            #expect(sent.dropLast().map(\.count) == Array(repeating: 1, count: last))
            #expect(sent.last == (report.clipped ? 0..<layout.chunkCount : last..<layout.chunkCount))
        } else {
            #expect(sent.dropLast().allSatisfy(\.isEmpty) && sent.last == 0..<layout.chunkCount)
        }
        let finished = stream.finish()
        #expect(finished.clipped == report.clipped && stream.generation == (report.clipped && bets ? 1 : 0))
        #expect(finished.weights.map(\.scalars) == plainWeights.map(\.scalars))
        #expect(finished.optimizer.state.map { $0.map(\.scalars) } == plain.state.map { $0.map(\.scalars) })
    }

    /// A chunk that is not finite stops the update; rolling back gives the optimizer back as it
    /// was, tells whoever sent chunks on, and the weights the step ran on were never written.
    @Test func aChunkThatIsNotFiniteStopsTheUpdateAndRollingBackUndoesIt() {
        let tree = GradientTree(leafCount: Self.leafCount)
        let weights = Self.weights()
        let optimizer = Optimizer(rule: SGD(momentum: 0.9), learningRate: 0.1, parameters: weights)
        var momentum = optimizer
        momentum.state = optimizer.state.map { $0.map { Tensor(shape: $0.shape, repeating: 0.25) } }
        let original = momentum.state.map { $0.map(\.scalars) }
        let layout = StreamLayout(shapes: Self.shapes, chunkFloats: Tensor.normBlock)
        let stream = StreamedUpdate(update: StepUpdate(reduction: .mean, clipNorm: nil), layout: layout, weights: weights,
                                    optimizer: momentum, batchSize: 40)
        momentum.state = []
        var told = false
        stream.onRollBack = { told = true }
        var cover = Self.blocks([0..<4, 4..<5])
        // A NaN at the end of the first tensor, which travels last (`StreamLayout.wireOrder`).
        let last = layout.chunkCount - 1
        UnsafeMutablePointer(mutating: cover[4..<5]!.gradients[0].pointer)[8999] = .nan
        for chunk in 0..<last {
            #expect(stream.sum(chunk: chunk, tree: tree) { cover[$0]?.gradients })
            #expect(stream.applyReady() == chunk..<(chunk + 1))
        }
        #expect(stream.sum(chunk: last, tree: tree) { cover[$0]?.gradients })
        #expect(stream.stopped && stream.applyReady().isEmpty && !stream.allApplied)
        #expect(stream.squaredNorm.isNaN)
        stream.rollBack()
        #expect(told)
        #expect(stream.unchangedOptimizer().state.map { $0.map(\.scalars) } == original)
        #expect(weights.map(\.scalars) == Self.weights().map(\.scalars))
        cover.removeAll()
    }

    /// Until every block of the tree has sent a chunk, it is not summed, and nothing is written.
    @Test func aChunkWaitsForACoverOfTheTree() {
        let layout = StreamLayout(shapes: Self.shapes, chunkFloats: Tensor.normBlock)
        let stream = StreamedUpdate(update: StepUpdate(reduction: .mean, clipNorm: nil), layout: layout, weights: Self.weights(),
                                    optimizer: Optimizer(rule: SGD(), learningRate: 0.1, parameters: Self.weights()), batchSize: 40)
        let partial = Self.blocks([0..<4, 2..<3])   // 4..<5 is missing; 2..<3 alone does not help
        #expect(!stream.sum(chunk: 0, tree: GradientTree(leafCount: Self.leafCount)) { partial[$0]?.gradients })
        #expect(stream.nextToSum == 0 && stream.applyReady().isEmpty)
    }

    /// Chunks are whole norm blocks, at most the chunk size (one block at least), in wire order:
    /// the first parameter last.
    @Test func layoutCutsWholeNormBlocks() {
        let layout = StreamLayout(shapes: [[10_000], [3], [5000]], chunkFloats: Tensor.normBlock + 2000)
        #expect(layout.pieces.map(\.tensor) == [1, 2, 2, 0, 0, 0])
        #expect(layout.pieces.map(\.count) == [3, 4096, 904, 4096, 4096, 1808])
        #expect(layout.chunks == [0..<3, 3..<4, 4..<6])
        #expect(layout.totalFloats == 15_003 && layout.floats(inChunk: 0) == 5003)
        let tensors = [Tensor(shape: [10_000], (0..<10_000).map(Float.init)), Tensor([1, 2, 3]),
                       Tensor(shape: [5000], (0..<5000).map { -Float($0) })]
        let copies = [[10_000], [3], [5000]].map { Tensor.zeros($0) }
        for c in 0..<layout.chunkCount {
            layout.bytes(ofChunk: c, of: tensors).withUnsafeBytes { layout.scatter(c, from: $0, into: copies) }
        }
        #expect(copies.map(\.scalars) == tensors.map(\.scalars))
    }
}
