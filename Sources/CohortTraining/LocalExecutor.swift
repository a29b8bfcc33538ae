import CohortData
import CohortNN
import CohortTensor
import Dispatch

/// Runs every micro-batch in this process, along the gradient tree. With `threads` > 1 the
/// leaves are cut into that many contiguous parts, as the coordinator cuts them for workers, and
/// each part's tree blocks are computed on a thread of its own (set BLAS to one thread then):
/// the sums are the same, bit for bit, as on one thread or on any number of worker processes.
package struct LocalExecutor: GradientExecutor, Sendable {
    let dataset: Dataset
    let gradient: MicroBatchGradient
    let seed: UInt64
    package let threads: Int
    /// Each thread's batch assembler (buffers reused from step to step) and results.
    let slots: PartResults

    package init(setup: TrainingSetup, threads: Int = 1) {
        dataset = setup.dataset; gradient = setup.gradient; seed = setup.seed
        self.threads = max(1, threads)
        slots = PartResults(count: self.threads)
    }

    package mutating func compute(_ task: StepTask, tree: GradientTree) -> [Range<Int>: GradientSum] {
        let parts = GradientTree.parts(of: tree.root, count: threads)
        if parts.count == 1 {
            let sum = tree.sum(tree.root) { k in leaf(k, task: task, assembler: &slots.assemblers[0]) }
            return [tree.root: sum]
        }
        let results = slots
        let this = self
        DispatchQueue.concurrentPerform(iterations: parts.count) { p in
            var sums: [Range<Int>: GradientSum] = [:]
            for block in tree.blocks(covering: parts[p]) {
                sums[block] = tree.sum(block) { k in this.leaf(k, task: task, assembler: &results.assemblers[p]) }
            }
            results.sums[p] = sums
        }
        var all: [Range<Int>: GradientSum] = [:]
        for p in parts.indices {
            all.merge(results.sums[p]) { a, _ in a }
            results.sums[p] = [:]
        }
        return all
    }

    func leaf(_ k: Int, task: StepTask, assembler: inout BatchAssembler) -> GradientSum {
        let indices = task.microBatches[k]
        let (x, y) = assembler.assemble(indices, from: dataset)
        let context = ForwardContext(training: true, seed: seed, step: task.step, sampleIndices: indices)
        return gradient(parameters: task.parameters, inputs: x, targets: y, context: context)
    }

    /// One slot per thread, in memory of its own: a thread reads and writes only its slot, and
    /// no Swift property is mutated concurrently.
    final class PartResults: @unchecked Sendable {
        let sums: UnsafeMutableBufferPointer<[Range<Int>: GradientSum]>
        let assemblers: UnsafeMutableBufferPointer<BatchAssembler>

        init(count: Int) {
            sums = .allocate(capacity: count)
            sums.initialize(repeating: [:])
            assemblers = .allocate(capacity: count)
            assemblers.initialize(repeating: BatchAssembler())
        }

        deinit {
            sums.deinitialize()
            sums.deallocate()
            assemblers.deinitialize()
            assemblers.deallocate()
        }
    }
}
