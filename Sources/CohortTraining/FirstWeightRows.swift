import CohortNN
import CohortTensor
import Dispatch

/// A worker's first weight gradient, computed row range by row range after its passes, so that
/// the gradient's first chunks are on the wire while it computes the next rows.
///
/// A model that starts with a `Linear` has most of its parameters there (the MNIST MLP: 401k of
/// 407k), and that weight's gradient W̄ = Ȳᵀ·X is the last thing backward computes. Sent whole,
/// the link waits for every leaf's product and the tree's additions over the whole matrix.
/// Instead each leaf leaves its Ȳ and X (`DeferredProduct`), and the worker computes, for the
/// rows each stream chunk needs, every leaf's rows and their tree sum. An element's bits are
/// those of the whole product (`BLAS.splitsRowsExactly`, tried once per shape) added along the
/// same tree, element by element, so the weights do not change.
package final class FirstWeightRows: @unchecked Sendable {
    package let leaves: Range<Int>
    /// The weight's shape: W is [out, in].
    package let out: Int, columns: Int
    /// Per stream chunk, the rows that must be summed before it can go (empty when earlier
    /// chunks' rows cover it): consecutive ranges that together cover [0, out).
    package let rowsBeforeChunk: [Range<Int>]
    private let sinks: [DeferredProduct]

    /// The threads that compute the leaves' rows (the worker's, each with one BLAS thread).
    let threads: Int

    /// Nil unless the model starts with a `Linear` whose weight is the first parameter, the
    /// stream has several chunks, and computing the rows apart changes no bit for any leaf's size.
    package init?(model: Sequential, layout: StreamLayout, leaves: Range<Int>, leafRows: [Int], threads: Int = 1) {
        guard let first = model.layers.first as? Linear, layout.chunkCount > 1,
              layout.shapes.first == [first.outFeatures, first.inFeatures], leafRows.count == leaves.count,
              leafRows.allSatisfy({ $0 > 0 }) else { return nil }
        out = first.outFeatures
        columns = first.inFeatures
        // The first range is the first chunk's rows alone, so that the link starts right after
        // the passes. Each product packs X anew, so the later ranges take at least a quarter of
        // the rows: the packing is paid five times, not once a chunk.
        let least = (first.outFeatures + 3) / 4
        var covered = 0
        rowsBeforeChunk = layout.chunks.map { chunk in
            let end = chunk.map { layout.pieces[$0] }.filter { $0.tensor == 0 }.map(\.end).max() ?? 0
            let needed = (end + first.inFeatures - 1) / first.inFeatures
            guard needed > covered else { return covered..<covered }
            let before = covered
            covered = min(first.outFeatures, max(needed, covered + (before == 0 ? 0 : least)))
            return before..<covered
        }
        let ranges = rowsBeforeChunk.filter { !$0.isEmpty }
        guard covered == out, Set(leafRows).allSatisfy({ k in
            BLAS.splitsRowsExactly(m: first.outFeatures, n: first.inFeatures, k: k, rows: ranges)
        }) else { return nil }
        self.leaves = leaves
        self.threads = max(1, threads)
        sinks = leaves.map { _ in DeferredProduct() }
    }

    /// Where leaf `k` leaves its first weight's factors.
    package func sink(forLeaf k: Int) -> DeferredProduct? { leaves.contains(k) ? sinks[k - leaves.lowerBound] : nil }

    /// Writes rows `rows` of each block's first weight gradient into `targets` (one [out, in]
    /// tensor per block, which the caller owns): every leaf's rows, added along `tree`.
    package func fill(_ rows: Range<Int>, of blocks: [Range<Int>], tree: GradientTree, into targets: [Tensor]) {
        guard !rows.isEmpty else { return }
        let n = rows.count * columns
        if scratchCapacity < leaves.count * n {
            scratch.deallocate()
            scratchCapacity = leaves.count * n
            scratch = .allocate(capacity: scratchCapacity)
        }
        // Every leaf's rows first, on the worker's threads (each product is one leaf's alone),
        // then the tree's additions, which are cheap beside them.
        let leafCount = leaves.count, threads = min(threads, leafCount)
        DispatchQueue.concurrentPerform(iterations: threads) { [self] t in
            for i in stride(from: t, to: leafCount, by: threads) {
                sinks[i].rows(rows, into: scratch + i * n, ldc: columns)
            }
        }
        for (block, target) in zip(blocks, targets) {
            precondition(target.count == out * columns, "a first weight gradient of \(target.shape)")
            // The tree's own sum, over the scratch rows in place: the same additions and roundings.
            let sum = tree.sum(block) { k in ScratchRows(pointer: scratch + (k - leaves.lowerBound) * n, count: n) }
            let destination = UnsafeMutablePointer(mutating: target.pointer) + rows.lowerBound * columns
            destination.update(from: sum.pointer, count: n)
        }
    }

    /// Rows of every leaf's product, leaf after leaf, reused from range to range.
    private var scratch = UnsafeMutablePointer<Float>.allocate(capacity: 1)
    private var scratchCapacity = 1

    deinit { scratch.deallocate() }
}

/// One node's rows in a leaf's scratch, summed by the tree in place: a node's sum is kept in its
/// first leaf's rows, as `GradientSum` keeps it in its left child's tensors.
private struct ScratchRows: TreeSummable {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int

    mutating func accumulate(_ right: ScratchRows) { accumulate(right, precision: .fp32) }
    mutating func accumulate(_ right: ScratchRows, precision: WireDType) { precision.add(count, into: pointer, pointer, right.pointer) }
    mutating func round(to precision: WireDType) { if precision == .bf16 { BFloat16.round(pointer, count: count) } }
}
