import CohortData
import CohortNN
import CohortTensor

/// Runs every micro-batch in this process, along the gradient tree, on `threads` threads (see
/// `LeafThreads`; set BLAS to one thread): the sums are the same, bit for bit, as on one thread
/// or on any number of worker processes.
package struct LocalExecutor: GradientExecutor, Sendable {
    let dataset: Dataset
    let gradient: MicroBatchGradient
    let seed: UInt64
    let leafThreads: LeafThreads
    package var threads: Int { leafThreads.count }

    package init(setup: TrainingSetup, threads: Int = 1) {
        dataset = setup.dataset; gradient = setup.gradient; seed = setup.seed
        leafThreads = LeafThreads(count: threads)
    }

    package mutating func compute(_ task: StepTask, tree: GradientTree) -> [Range<Int>: GradientSum] {
        let dataset = dataset
        let work = LeafThreads.Work(gradient: gradient, parameters: task.parameters, seed: seed, step: task.step)
        return leafThreads.blocks(of: tree.root, in: tree, work: work) { _, k, assembler in
            let indices = task.microBatches[k]
            let (x, y) = assembler.assemble(indices, from: dataset)
            return (x, y, indices)
        }
    }
}
