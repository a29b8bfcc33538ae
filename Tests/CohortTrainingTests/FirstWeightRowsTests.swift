@testable import CohortTraining
import CohortNN
@testable import CohortTensor
import Testing

/// A worker's first weight gradient left uncomputed by the passes and summed later row range by
/// row range (`FirstWeightRows`), against the same blocks computed whole: the same bits, in
/// float32 and bfloat16 trees, on one thread and three, for chunk edges that cut rows apart.
@Suite struct FirstWeightRowsTests {
    static let model = mlp(hidden: 96)

    /// 784 → `hidden` → 10, the MNIST MLP's shape.
    static func mlp(hidden: Int) -> Sequential {
        try! Sequential(inputShape: [784], layers: [
            Linear(inFeatures: 784, outFeatures: hidden), Activation.relu, Linear(inFeatures: hidden, outFeatures: 10),
        ])
    }

    // Leaves of different sizes: each size is its own product shape.
    static func leaf(_ k: Int) -> (Tensor, Tensor) { leaf(k, rows: 24 + 8 * (k % 3)) }

    static func leaf(_ k: Int, rows: Int) -> (Tensor, Tensor) {
        let x = Tensor.normal([rows, 784], std: 1, seed: UInt64(k + 1), stream: .init(purpose: 12))
        return (x, Tensor(shape: [rows], (0..<rows).map { Float(($0 * 7 + k) % 10) }))
    }

    /// The blocks of leaves 1..<7 in a tree of 8, whole, and with the first weight's rows summed
    /// chunk by chunk afterwards.
    @Test(arguments: [WireDType.fp32, .bf16], [1, 3])
    func rowsGiveTheWholeBlocksBits(precision: WireDType, threads: Int) throws {
        let parameters = Self.model.initialParameters(.pytorch, seed: 3)
        let gradient = MicroBatchGradient(model: Self.model, loss: .softmaxCrossEntropy, reduction: .sum)
        let tree = GradientTree(leafCount: 8, precision: precision)
        let range = 1..<7, blocks = tree.blocks(covering: range)
        // 5,000-float chunks hold one 4,096-value norm block each: 5.2 rows of 784, so most
        // chunk edges fall inside a row.
        let layout = StreamLayout(shapes: parameters.map(\.shape), chunkFloats: 5_000, dtype: precision)
        let rows = try #require(FirstWeightRows(model: Self.model, layout: layout, leaves: range,
                                                leafRows: range.map { Self.leaf($0).0.shape[0] }, threads: threads),
                                "this machine's OpenBLAS computes a 96 × 784 weight gradient's row ranges exactly")
        // The first chunk's rows (its 4,096 values end in row 6), then ranges of at least 24 rows,
        // each summed before the first chunk that needs one of its rows.
        #expect(rows.rowsBeforeChunk.filter { !$0.isEmpty } == [0..<6, 6..<30, 30..<54, 54..<78, 78..<96])
        #expect(rows.rowsBeforeChunk.reduce(0) { $0 + $1.count } == 96)

        func computed(deferring: FirstWeightRows?) -> [Range<Int>: GradientSum] {
            let work = LeafThreads.Work(gradient: gradient, parameters: parameters, seed: 0, step: 0, deferredFirstWeights: deferring)
            var known = LeafThreads(count: threads).blocks(of: range, in: tree, work: work) { _, k, _ in
                let (x, y) = Self.leaf(k)
                return (x, y, [])
            }
            return Dictionary(uniqueKeysWithValues: blocks.map { block in
                (block, tree.sum(block, taking: &known) { _ in fatalError("every leaf is computed") })
            })
        }
        let whole = computed(deferring: nil), deferred = computed(deferring: rows)
        for block in blocks {
            let want = try #require(whole[block]), got = try #require(deferred[block])
            #expect(got.gradients[0].count == 0, "the passes left the first weight to the rows")
            for i in 1..<want.gradients.count { #expect(got.gradients[i].bitwiseEqual(want.gradients[i]), "\(block) parameter \(i)") }
            #expect(got.lossSum == want.lossSum && got.samples == want.samples && got.correct == want.correct)
        }
        let targets = blocks.map { _ in Tensor(shape: [96, 784], repeating: .nan) }
        for chunk in rows.rowsBeforeChunk { rows.fill(chunk, of: blocks, tree: tree, into: targets) }
        for (block, target) in zip(blocks, targets) {
            let want = try #require(whole[block]).gradients[0]
            let differs = (0..<want.count).first { target.scalars[$0].bitPattern != want.scalars[$0].bitPattern }
            #expect(differs == nil, "\(precision) \(block): first difference at \(differs ?? -1)")
        }
    }

    /// Without a linear first layer, or with the stream in one chunk, there is nothing to do.
    @Test func onlyLinearFirstLayersAcrossSeveralChunks() throws {
        let shapes = Self.model.initialParameters(.pytorch, seed: 3).map(\.shape)
        #expect(FirstWeightRows(model: Self.model, layout: StreamLayout(shapes: shapes, chunkFloats: 1 << 20),
                                leaves: 0..<2, leafRows: [32, 32]) == nil)
        let recurrent = try Sequential(inputShape: [7, 12], layers: [
            Recurrent(.lstm, inputSize: 12, hiddenSize: 16), Linear(inFeatures: 16, outFeatures: 10),
        ])
        let recurrentShapes = recurrent.initialParameters(.pytorch, seed: 3).map(\.shape)
        #expect(FirstWeightRows(model: recurrent, layout: StreamLayout(shapes: recurrentShapes, chunkFloats: 64),
                                leaves: 0..<2, leafRows: [32, 32]) == nil)
    }

    /// A weight the linear layer is not the only reader of keeps its whole gradient, and the
    /// rows are copied from it.
    @Test func aWeightReadTwiceIsKeptWhole() throws {
        let tape = Tape()
        let sink = DeferredProduct()
        let w = tape.leaf(Tensor.normal([5, 3], std: 1, seed: 4, stream: .init(purpose: 12)),
                          target: GradientTarget(deferringTo: sink, count: 15))
        let x = tape.constant(Tensor.normal([4, 3], std: 1, seed: 5, stream: .init(purpose: 12)))
        let loss = (x.linear(weight: w, bias: nil).sum() + (w * w).sum())
        tape.backward(from: loss)
        #expect(!tape.wasDelivered(w) && sink.outputGradient == nil)
        sink.whole = tape.takeGradient(of: w)
        var rows = Tensor(shape: [2, 3], repeating: .nan)
        sink.rows(2..<4, into: rows.mutablePointer, ldc: 3)
        #expect(rows.scalars == Array(sink.whole!.scalars[6..<12]))

        let once = Tape(), deferred = DeferredProduct()
        let v = once.leaf(w.value, target: GradientTarget(deferringTo: deferred, count: 15))
        once.backward(from: once.constant(x.value).linear(weight: v, bias: nil).sum())
        #expect(once.wasDelivered(v) && once.takeGradient(of: v) == nil)
        var all = Tensor(shape: [5, 3], repeating: .nan)
        deferred.rows(0..<5, into: all.mutablePointer, ldc: 3)
        let plain = Tape()
        let u = plain.leaf(w.value)
        plain.backward(from: plain.constant(x.value).linear(weight: u, bias: nil).sum())
        #expect(all.scalars == plain.takeGradient(of: u)?.scalars)
    }
}
