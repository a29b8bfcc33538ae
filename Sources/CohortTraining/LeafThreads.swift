import CohortData
import CohortNN
import CohortTensor
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

    /// A micro-batch's samples, assembled on `thread` with its own assembler: the inputs, the
    /// targets, and each row's index in the dataset (which keys its random numbers).
    package typealias Samples = @Sendable (_ thread: Int, _ leaf: Int, _ assembler: inout BatchAssembler)
        -> (inputs: Tensor, targets: Tensor, indices: [Int])

    /// What every leaf of a step computes: `gradient` on `parameters`, at `step` of the run
    /// seeded `seed`. `beforeLeaf(thread)` runs before each leaf (a worker's heartbeat).
    package struct Work: Sendable {
        package let gradient: MicroBatchGradient
        package let parameters: [Tensor]
        package let seed: UInt64
        package let step: Int
        package let beforeLeaf: (@Sendable (Int) -> Void)?
        /// When set, each leaf leaves its first weight's gradient uncomputed, to its sink here
        /// (`FirstWeightRows`), and its sums hold an empty tensor in that place.
        package let deferredFirstWeights: FirstWeightRows?
        /// Per leaf, its first layer's output, computed already (`FirstLayerAhead`).
        package let firstLayerOutputs: [Int: Tensor]

        package init(gradient: MicroBatchGradient, parameters: [Tensor], seed: UInt64, step: Int,
                     deferredFirstWeights: FirstWeightRows? = nil, firstLayerOutputs: [Int: Tensor] = [:],
                     beforeLeaf: (@Sendable (Int) -> Void)? = nil) {
            self.gradient = gradient; self.parameters = parameters; self.seed = seed; self.step = step
            self.deferredFirstWeights = deferredFirstWeights; self.firstLayerOutputs = firstLayerOutputs
            self.beforeLeaf = beforeLeaf
        }
    }

    /// The tree blocks of each thread's part of `range`. With `halves`, a block of several
    /// leaves comes as its two halves instead, for a caller that adds them where it wants the
    /// sum (a worker's shared-memory slot). A block of one or two leaves found in `slots` is
    /// computed straight into the slot's tensors instead (float32 trees only; the caller then
    /// finds the whole block, already there).
    package func blocks(of range: Range<Int>, in tree: GradientTree, halves: Bool = false,
                        slots: [Range<Int>: [Tensor]] = [:], work: Work, samples: @escaping Samples) -> [Range<Int>: GradientSum] {
        precondition(slots.isEmpty || tree.precision == .fp32, "slots hold float32 sums")
        let parts = GradientTree.parts(of: range, count: count)
        @Sendable func nodes(_ part: Range<Int>) -> [Range<Int>] {
            tree.blocks(covering: part).flatMap { block in
                guard halves, block.count > 1, slots[block] == nil else { return [block] }
                let (left, right) = GradientTree.children(of: block)
                return [left, right]
            }
        }
        @Sendable func compute(_ node: Range<Int>, thread p: Int) -> GradientSum {
            var leaves = NodeLeaves(node, thread: p, work: work, samples: samples)
            return Self.sum(node, in: tree, slot: slots[node]) { k, destination in
                work.beforeLeaf?(p)
                return leaves.gradient(k, destination: destination, assembler: &assemblers[p])
            }
        }
        if parts.count == 1 {
            return Dictionary(uniqueKeysWithValues: nodes(range).map { node in (node, compute(node, thread: 0)) })
        }
        DispatchQueue.concurrentPerform(iterations: parts.count) { p in
            var found: [Range<Int>: GradientSum] = [:]
            for node in nodes(parts[p]) { found[node] = compute(node, thread: p) }
            sums[p] = found
        }
        var all: [Range<Int>: GradientSum] = [:]
        for p in parts.indices {
            all.merge(sums[p]) { a, _ in a }
            sums[p] = [:]
        }
        return all
    }

    /// One node's sum along the tree, its float32 pairs of leaves added by the right leaf's own
    /// products (`LeafDestination.add`); with a slot, the node's one or two leaves go into it.
    static func sum(_ node: Range<Int>, in tree: GradientTree, slot: [Tensor]?,
                    leaf: (Int, LeafDestination) -> GradientSum) -> GradientSum {
        if let slot {
            precondition(node.count <= 2, "a slot takes a block of one or two leaves")
            let left = leaf(node.lowerBound, .write(slot))
            guard node.count == 2 else { return left }
            return left.addingCounts(of: leaf(node.lowerBound + 1, .add(to: left.gradients)))
        }
        return tree.sum(node, leaf: { k in leaf(k, .fresh) }, addingLeaf: { k, left in
            left.ownMemory()
            left = left.addingCounts(of: leaf(k, .add(to: left.gradients)))
        })
    }
}
