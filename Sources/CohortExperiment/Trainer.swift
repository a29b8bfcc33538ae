import CohortData
import CohortNN
import CohortTensor
import Foundation

/// One step's work for the workers: the samples of each micro-batch, in micro-batch order.
public struct StepTask: Sendable {
    public var step: Int
    public var epoch: Int
    public var microBatches: [[Int]]
    public var parameters: [Tensor]
}

/// Computes gradient sums for a step's micro-batches. The in-process executor below runs them
/// all here; the distributed one hands ranges of them to worker processes. Either way it returns
/// sums of whole nodes of the gradient tree, which the coordinator completes.
public protocol GradientExecutor {
    mutating func compute(_ task: StepTask, tree: GradientTree) throws -> [Range<Int>: GradientSum]
    /// Called after `compute`, before the update: let go of the task's weights (a reference
    /// kept would make the update copy them first). The executor may also move `parameters`
    /// into memory of its own with the same values (the coordinator's shared weights file), so
    /// the update writes the next weights where the workers read them.
    mutating func prepareUpdate(of parameters: inout [Tensor])
    /// Metrics of the last step for metrics.jsonl (worker compute times, bytes, broadcast time).
    mutating func stepMetrics() -> [(String, JSON)]
    /// Run totals for summary.json.
    mutating func summaryMetrics(wallSeconds: Double) -> [(String, JSON)]
}

extension GradientExecutor {
    public mutating func stepMetrics() -> [(String, JSON)] { [] }
    public mutating func summaryMetrics(wallSeconds: Double) -> [(String, JSON)] { [] }
    public mutating func prepareUpdate(of parameters: inout [Tensor]) {}
}

/// Runs every micro-batch in this process, along the gradient tree. With `threads` > 1 the
/// leaves are cut into that many contiguous parts, as the coordinator cuts them for workers, and
/// each part's tree blocks are computed on a thread of its own (set BLAS to one thread then):
/// the sums are the same, bit for bit, as on one thread or on any number of worker processes.
public struct LocalExecutor: GradientExecutor, Sendable {
    let dataset: Dataset
    let gradient: MicroBatchGradient
    let seed: UInt64
    public let threads: Int
    /// Each thread's batch assembler (buffers reused from step to step) and results.
    let slots: PartResults

    public init(experiment: Experiment, threads: Int = 1) {
        dataset = experiment.dataset; gradient = experiment.gradient; seed = experiment.config.seed
        self.threads = max(1, threads)
        slots = PartResults(count: self.threads)
    }

    public mutating func compute(_ task: StepTask, tree: GradientTree) -> [Range<Int>: GradientSum] {
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

/// What one step did, for metrics and progress.
public struct StepRecord: Sendable {
    public var step: Int
    public var epoch: Int
    public var loss: Double
    public var accuracy: Double?
    public var learningRate: Float
    public var gradientNorm: Double
    public var clipped: Bool
    public var samples: Int
    public var seconds: Double
    /// Coordinator time in the fixed-tree sum and in clip + optimizer update.
    public var reduceSeconds: Double = 0
    public var updateSeconds: Double = 0
    /// What the executor reports (per-worker compute, bytes, broadcast).
    public var executor: [(String, JSON)] = []
}

func seconds(since start: DispatchTime) -> Double {
    Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
}

/// The coordinator's training loop: plan the batch, get the micro-batch gradient sums, complete
/// the fixed tree, average, clip, update. `cohort train` runs this; so does `cohort trace`.
public struct Trainer {
    public let experiment: Experiment
    public private(set) var parameters: [Tensor]
    public private(set) var optimizer: Optimizer
    public private(set) var step = 0
    let update: StepUpdate
    private var permutation: (epoch: Int, order: [Int])?

    public init(experiment: Experiment) {
        self.experiment = experiment
        parameters = experiment.initialParameters
        optimizer = experiment.config.optimizer.make(parameters: parameters)
        let training = experiment.config.training
        update = StepUpdate(reduction: training.reduction, clipNorm: training.clipNorm, clipValue: training.clipValue,
                            regularization: training.regularization,
                            isBias: experiment.model.parameterSpecs.map(\.spec.isBias))
    }

    public var isFinished: Bool { step >= experiment.totalSteps }

    /// Threads for the optimizer update (see `Optimizer.lanes`); never changes a result.
    public var updateThreads: Int {
        get { optimizer.lanes }
        set { optimizer.lanes = max(1, newValue) }
    }

    /// The state to save: continuing from it reproduces the run bit for bit.
    public var checkpoint: Checkpoint {
        Checkpoint(step: step, optimizerStep: optimizer.step, parameters: parameters, optimizerState: optimizer.state,
                   configHash: Checkpoint.configHash(experiment.config))
    }

    /// Continues from a checkpoint of the same experiment.
    public mutating func restore(_ checkpoint: Checkpoint) {
        parameters = checkpoint.parameters
        optimizer.state = checkpoint.optimizerState
        optimizer.step = checkpoint.optimizerStep
        step = checkpoint.step
        permutation = nil
    }

    /// The micro-batches of the current step.
    public mutating func nextTask() -> StepTask {
        let plan = experiment.plan
        let epoch = step / plan.stepsPerEpoch
        if permutation?.epoch != epoch { permutation = (epoch, plan.permutation(epoch: epoch)) }
        let batch = plan.batch(step: step % plan.stepsPerEpoch, of: permutation!.order)
        let ranges = BatchPlan.microBatchRanges(batchCount: batch.count, microBatches: plan.microBatches)
        let micro = ranges.map { Array(batch[(batch.startIndex + $0.lowerBound)..<(batch.startIndex + $0.upperBound)]) }
        return StepTask(step: step, epoch: epoch, microBatches: micro, parameters: parameters)
    }

    /// Runs one step through `executor`.
    public mutating func runStep<E: GradientExecutor>(with executor: inout E) throws -> StepRecord {
        let start = DispatchTime.now()
        var task = nextTask()
        let tree = GradientTree(leafCount: task.microBatches.count)
        var blocks = try executor.compute(task, tree: tree)
        // The update below writes the weights in place only if nothing else holds them.
        task.parameters = []
        executor.prepareUpdate(of: &parameters)
        let reduceStart = DispatchTime.now()
        let sum = try tree.sum(tree.root, taking: &blocks) { k throws(MissingBlock) in throw MissingBlock(leaf: k) }
        let reduceSeconds = seconds(since: reduceStart)
        let batchSize = task.microBatches.reduce(0) { $0 + $1.count }
        let correct = sum.correct
        let optimizerConfig = experiment.config.optimizer
        optimizer.learningRate = optimizerConfig.schedule.rate(base: optimizerConfig.lr, step: step, totalSteps: experiment.totalSteps)
        let updateStart = DispatchTime.now()
        let report = update.apply(sum, batchSize: batchSize, parameters: &parameters, optimizer: &optimizer)
        let updateSeconds = seconds(since: updateStart)
        step += 1
        let accuracy = experiment.config.training.loss.isClassification ? Double(correct) / Double(max(batchSize, 1)) : nil
        return StepRecord(step: step, epoch: task.epoch, loss: report.loss, accuracy: accuracy,
                          learningRate: optimizer.learningRate, gradientNorm: report.gradientNorm,
                          clipped: report.clipped, samples: batchSize, seconds: seconds(since: start),
                          reduceSeconds: reduceSeconds, updateSeconds: updateSeconds, executor: executor.stepMetrics())
    }

    /// Loss and accuracy of the current weights on a whole dataset, without recording a graph.
    public func evaluate(on dataset: Dataset, batchSize: Int = 256) -> (loss: Double, accuracy: Double?) {
        let loss = experiment.config.training.loss
        let reduction = experiment.config.training.reduction
        var lossSum = 0.0, correct = 0
        var start = 0
        while start < dataset.count {
            let indices = Array(start..<min(start + batchSize, dataset.count))
            let (x, y) = dataset.batch(indices)
            let tape = Tape.noGradient()
            let z = experiment.model(tape.constant(x), parameters: parameters.map(tape.constant), context: .evaluation)
            lossSum += Double(loss.sampleSum(z, y, reduction: reduction).value.scalar)
            correct += loss.correctCount(predicted: z.value, expected: y) ?? 0
            start += batchSize
        }
        let n = Double(max(dataset.count, 1))
        return (reduction == .mean ? lossSum / n : lossSum, loss.isClassification ? Double(correct) / n : nil)
    }
}

/// The executor returned sums that do not cover every micro-batch.
public struct MissingBlock: Error, CustomStringConvertible {
    public var leaf: Int
    public var description: String { "no gradient arrived for micro-batch \(leaf)" }
}
