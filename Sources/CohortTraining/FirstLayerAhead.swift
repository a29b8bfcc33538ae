import CohortNN
import CohortTensor
import Dispatch

/// The first layer's forward pass of a worker's next micro-batches, computed range of rows by
/// range of rows while the next weights arrive chunk by chunk.
///
/// A worker across the network waits for the whole next weights before its next step, and a
/// model that starts with a `Linear` has most of them there (the MNIST MLP: 401k of 407k floats).
/// That layer's forward pass, Y = b + X·Wᵀ, is most of the passes' work, and each of its output
/// columns needs only the bias and one row of W. The stream sends the bias in its first chunk and
/// W's rows in order (`StreamLayout.wireOrder`), so, knowing the next step's samples, the worker
/// computes Y's columns for each range of W's rows as soon as the chunks holding them are in.
/// The task then starts from Y (`ForwardContext.precomputedOutput`).
///
/// Each range is `Tensor.linearForward`'s own column form (the bias in Y, then the product added
/// to it), and the whole output is that function's case of all columns. Each range is one product
/// with the same inner dimension, but
/// OpenBLAS takes a small product down another path (its small-matrix kernels, which add in
/// another order), so the ranges are aligned blocks of the fewest rows, 32, 64, 128 or 256, that
/// `BLAS.splitsColumnsExactly` finds exact for every leaf's row count; tried once per shape.
package final class FirstLayerAhead: @unchecked Sendable {
    /// The column ranges (the weight's row ranges), computed in order.
    package let ranges: [Range<Int>]
    /// Per stream chunk, the weight rows that are whole once chunks 0...c are in (none before
    /// the bias is whole).
    let rowsIn: [Int]
    /// Per leaf, its inputs [rows, in] and the layer's output [rows, out], filled range by range.
    package let inputs: [Tensor]
    package let outputs: [Tensor]
    /// Ranges 0..<rangesDone are computed.
    package private(set) var rangesDone = 0
    let hasBias: Bool
    let threads: Int

    /// Block sizes tried, smallest first: a block of 32 rows comes with every 25k floats of a
    /// 784-wide weight, under one stream chunk.
    static let blockRows = [32, 64, 128, 256]

    /// Nil unless the model starts with a `Linear` whose weight (and bias) are the first
    /// parameters, every input fits it, and some block size changes no bit for any input's rows.
    package init?(model: Sequential, layout: StreamLayout, inputs: [Tensor], threads: Int = 1) {
        guard let first = model.layers.first as? Linear, !inputs.isEmpty,
              layout.shapes.first == [first.outFeatures, first.inFeatures],
              !first.hasBias || (layout.shapes.count > 1 && layout.shapes[1] == [first.outFeatures]),
              inputs.allSatisfy({ x in (x.shape.first ?? 0) > 0 && x.count == x.shape[0] * first.inFeatures }) else { return nil }
        let (n, k) = (first.outFeatures, first.inFeatures)
        let biasDone = first.hasBias ? (layout.chunks.lastIndex { $0.contains { layout.pieces[$0].tensor == 1 } } ?? 0) : 0
        var floats = 0
        rowsIn = layout.chunks.enumerated().map { c, chunk in
            floats += chunk.map { layout.pieces[$0] }.filter { $0.tensor == 0 }.reduce(0) { $0 + $1.count }
            return c < biasDone ? 0 : floats / k
        }
        let rowCounts = Set(inputs.map { $0.shape[0] })
        let blocks = Self.blockRows.lazy.map { size in
            // Aligned blocks; a short last one joins the block before it.
            stride(from: 0, to: n, by: size).compactMap { start -> Range<Int>? in
                guard start == 0 || n - start >= size else { return nil }
                return start..<(n - start < 2 * size ? n : start + size)
            }
        }
        guard let chosen = blocks.first(where: { ranges in
            rowCounts.allSatisfy { BLAS.splitsColumnsExactly(m: $0, k: k, n: n, columns: ranges) }
        }) else { return nil }
        ranges = chosen
        hasBias = first.hasBias
        self.inputs = inputs
        outputs = inputs.map { Tensor(uninitializedShape: [$0.shape[0], n]) }
        self.threads = max(1, threads)
    }

    package var isComplete: Bool { rangesDone == ranges.count }

    /// Computes the ranges whose rows chunks 0..<`arrived` hold, and that are not computed yet,
    /// from `weights` (shaped as the layout's; chunks 0..<`arrived` are in them).
    package func advance(arrived: Int, weights: [Tensor]) {
        guard arrived > 0 else { return }
        let whole = rowsIn[min(arrived, rowsIn.count) - 1]
        var end = rangesDone
        while end < ranges.count && ranges[end].upperBound <= whole { end += 1 }
        guard end > rangesDone else { return }
        let todo = ranges[rangesDone..<end]
        rangesDone = end
        let leafCount = inputs.count, threads = min(threads, leafCount)
        DispatchQueue.concurrentPerform(iterations: threads) { [self] t in
            for i in stride(from: t, to: leafCount, by: threads) {
                for rows in todo {
                    Tensor.linearForward(inputs[i], weight: weights[0], bias: hasBias ? weights[1] : nil, columns: rows,
                                         into: UnsafeMutablePointer(mutating: outputs[i].pointer))
                }
            }
        }
    }
}
