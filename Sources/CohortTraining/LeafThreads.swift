import CohortData
import Dispatch

/// Runs a range of a step's micro-batches on several threads: the range is cut into contiguous
/// parts, one per thread, as the coordinator cuts a step among workers, and each thread sums the
/// tree blocks of its part. BLAS must run one thread then, so each micro-batch is computed
/// exactly as it would be alone. The blocks come back as found; `GradientTree.sum` completes any
/// node from them with the same additions, so the sums are the same, bit for bit, for any number
/// of threads. The in-process executor and worker processes both compute here.
package final class LeafThreads: @unchecked Sendable {
    package let count: Int
    /// One slot per thread, in memory of its own: a thread reads and writes only its slot, and
    /// no Swift property is mutated concurrently. The assemblers keep their buffers from step
    /// to step.
    let sums: UnsafeMutableBufferPointer<[Range<Int>: GradientSum]>
    let assemblers: UnsafeMutableBufferPointer<BatchAssembler>

    package init(count: Int) {
        self.count = max(1, count)
        sums = .allocate(capacity: self.count)
        sums.initialize(repeating: [:])
        assemblers = .allocate(capacity: self.count)
        assemblers.initialize(repeating: BatchAssembler())
    }

    deinit {
        sums.deinitialize()
        sums.deallocate()
        assemblers.deinitialize()
        assemblers.deallocate()
    }

    /// What a thread computes for one leaf: `leaf(thread, k, &assembler)` gives micro-batch k's
    /// gradient sum, assembling its samples with the thread's own assembler.
    package typealias Leaf = @Sendable (_ thread: Int, _ leaf: Int, _ assembler: inout BatchAssembler) -> GradientSum

    /// The tree blocks of each thread's part of `range`. With `halves`, a block of several
    /// leaves comes as its two halves instead, for a caller that adds them where it wants the
    /// sum (a worker's shared-memory slot).
    package func blocks(of range: Range<Int>, in tree: GradientTree, halves: Bool = false, leaf: Leaf) -> [Range<Int>: GradientSum] {
        let parts = GradientTree.parts(of: range, count: count)
        @Sendable func nodes(_ part: Range<Int>) -> [Range<Int>] {
            tree.blocks(covering: part).flatMap { block in
                guard halves, block.count > 1 else { return [block] }
                let (left, right) = GradientTree.children(of: block)
                return [left, right]
            }
        }
        if parts.count == 1 {
            return Dictionary(uniqueKeysWithValues: nodes(range).map { node in
                (node, tree.sum(node) { k in leaf(0, k, &assemblers[0]) })
            })
        }
        DispatchQueue.concurrentPerform(iterations: parts.count) { p in
            var found: [Range<Int>: GradientSum] = [:]
            for node in nodes(parts[p]) {
                found[node] = tree.sum(node) { k in leaf(p, k, &assemblers[p]) }
            }
            sums[p] = found
        }
        var all: [Range<Int>: GradientSum] = [:]
        for p in parts.indices {
            all.merge(sums[p]) { a, _ in a }
            sums[p] = [:]
        }
        return all
    }
}
