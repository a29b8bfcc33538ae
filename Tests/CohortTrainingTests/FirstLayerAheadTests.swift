@testable import CohortTraining
import CohortNN
@testable import CohortTensor
import Testing

/// The first layer's forward pass computed column range by column range as the next weights'
/// chunks arrive (`FirstLayerAhead`), against `Tensor.linearForward` and the whole passes: the
/// same bits, for leaves of several sizes, on one thread and three, with chunk edges inside rows.
@Suite struct FirstLayerAheadTests {
    static let model = FirstWeightRowsTests.mlp(hidden: 256)

    /// Leaves of 48, 64 and 80 rows: each its own product shape.
    static func leaf(_ k: Int) -> (Tensor, Tensor) { FirstWeightRowsTests.leaf(k, rows: 48 + 16 * (k % 3)) }

    /// Where two tensors first differ in their bits (nil when they agree): a short message
    /// instead of a dump of both.
    static func firstDifference(_ a: Tensor, _ b: Tensor) -> Int? {
        let (x, y) = (a.scalars, b.scalars)
        guard a.shape == b.shape else { return min(x.count, y.count) }
        return x.indices.first { x[$0].bitPattern != y[$0].bitPattern }
    }

    /// The bias travels in the first chunk, the weight's rows after it (`StreamLayout.wireOrder`).
    @Test func theBiasComesBeforeTheRows() {
        let layout = StreamLayout(shapes: [[256, 784], [256], [10, 256], [10]], chunkFloats: 5_000)
        #expect(layout.pieces.prefix(3).map(\.tensor) == [1, 2, 3])
        #expect(layout.chunks[0].allSatisfy { layout.pieces[$0].tensor != 0 })
    }

    @Test(arguments: [1, 3])
    func columnsGiveTheWholeOutputsBits(threads: Int) throws {
        let parameters = Self.model.initialParameters(.pytorch, seed: 3)
        // 5,000-float chunks hold one 4,096-value norm block each: 5.2 rows of 784, so most
        // chunk edges fall inside a row.
        let layout = StreamLayout(shapes: parameters.map(\.shape), chunkFloats: 5_000)
        let inputs = (0..<5).map { Self.leaf($0).0 }
        let found = FirstLayerAhead(model: Self.model, layout: layout, inputs: inputs, threads: threads)
        try #require(found != nil, "this machine's OpenBLAS computes a 256 × 784 layer's column blocks exactly")
        let ahead = found!
        // Blocks of 64 rows at most (OpenBLAS's small-matrix path takes narrower products of 48 rows).
        #expect(ahead.ranges.count >= 4 && ahead.ranges.first?.lowerBound == 0 && ahead.ranges.last?.upperBound == 256)
        #expect(zip(ahead.ranges, ahead.ranges.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
        // The chunks arrive one by one; in between, the weights not yet in are garbage.
        let arriving = parameters.map { Tensor(shape: $0.shape, repeating: .nan) }
        for c in 0..<layout.chunkCount {
            layout.bytes(ofChunk: c, of: parameters).withUnsafeBytes { layout.scatter(c, from: $0, into: arriving) }
            ahead.advance(arrived: c + 1, weights: arriving)
            // 5,000-float chunks bring 5.2 rows each: a block is computed once its rows are all in.
            let rowsIn = (c == 0 ? 0 : (c * 4096) / 784)
            #expect(ahead.ranges[..<ahead.rangesDone].allSatisfy { $0.upperBound <= rowsIn } || c == layout.chunkCount - 1)
        }
        #expect(ahead.isComplete)
        for (x, y) in zip(inputs, ahead.outputs) {
            let want = Tensor.linearForward(x, weight: parameters[0], bias: parameters[1])
            #expect(Self.firstDifference(y, want) == nil, "\(x.shape[0]) rows")
        }
        // The passes from those outputs give the leaf's gradient, bit for bit.
        let gradient = MicroBatchGradient(model: Self.model, loss: .softmaxCrossEntropy, reduction: .sum)
        for (k, output) in ahead.outputs.enumerated() {
            let (x, y) = Self.leaf(k)
            let context = ForwardContext(training: true, seed: 0, step: 0, sampleIndices: [])
            let want = gradient(parameters: parameters, inputs: x, targets: y, context: context)
            let got = gradient(parameters: parameters, inputs: x, targets: y, context: context, firstLayerOutput: output)
            for i in want.gradients.indices {
                #expect(Self.firstDifference(got.gradients[i], want.gradients[i]) == nil, "leaf \(k) parameter \(i)")
            }
            #expect(got.lossSum == want.lossSum)
        }
    }

    /// A gap in the chunks stops the columns at the gap; a model without a linear first layer,
    /// or inputs that do not fit it, get none.
    @Test func onlyTheChunksInWithoutAGap() throws {
        let parameters = Self.model.initialParameters(.pytorch, seed: 3)
        let layout = StreamLayout(shapes: parameters.map(\.shape), chunkFloats: 5_000)
        let found = FirstLayerAhead(model: Self.model, layout: layout, inputs: [Self.leaf(0).0])
        try #require(found != nil)
        let ahead = found!
        // 16 chunks hold the bias and 15 × 4,096 floats of the weight: 78 rows.
        ahead.advance(arrived: 16, weights: parameters)
        #expect(ahead.rangesDone > 0 && ahead.ranges[ahead.rangesDone - 1].upperBound <= 78 && !ahead.isComplete)
        #expect(ahead.rangesDone == ahead.ranges.count || ahead.ranges[ahead.rangesDone].upperBound > 78)
        #expect(FirstLayerAhead(model: Self.model, layout: layout, inputs: [Tensor.zeros([4, 783])]) == nil)
        let convolutional = try Sequential(inputShape: [1, 8, 8], layers: [Conv2D(inChannels: 1, outChannels: 2, kernel: 3)])
        #expect(FirstLayerAhead(model: convolutional, layout: StreamLayout(shapes: convolutional.initialParameters(.pytorch, seed: 1).map(\.shape)),
                                inputs: [Tensor.zeros([2, 64])]) == nil)
    }
}
