import CohortData
import CohortNN
import CohortTensor
import Dispatch

func seconds(since start: DispatchTime) -> Double {
    Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
}

/// The coordinator's training loop: plan the batch, get the micro-batch gradient sums, complete
/// the fixed tree, average, clip, update. `cohort train` runs this; so does `cohort trace`.
package struct Trainer {
    package let setup: TrainingSetup
    package private(set) var parameters: [Tensor]
    package private(set) var optimizer: Optimizer
    package private(set) var step = 0
    private var permutation: (epoch: Int, order: [Int])?

    package init(setup: TrainingSetup) {
        self.setup = setup
        parameters = setup.initialParameters
        optimizer = setup.optimizer.make(parameters: parameters)
    }

    package var isFinished: Bool { step >= setup.totalSteps }

    /// Threads for the optimizer update (see `Optimizer.lanes`); never changes a result.
    package var updateThreads: Int {
        get { optimizer.lanes }
        set { optimizer.lanes = max(1, newValue) }
    }

    /// Continues from saved state (a checkpoint of the same setup): the weights, the optimizer's
    /// state and update count, and the step, from which the data order follows.
    package mutating func restore(step: Int, parameters: [Tensor], optimizerState: [[Tensor]], optimizerStep: Int) {
        self.parameters = parameters
        optimizer.state = optimizerState
        optimizer.step = optimizerStep
        self.step = step
        permutation = nil
    }

    /// The micro-batches of the current step.
    package mutating func nextTask() -> StepTask {
        let plan = setup.plan
        let epoch = step / plan.stepsPerEpoch
        if permutation?.epoch != epoch { permutation = (epoch, plan.permutation(epoch: epoch)) }
        let batch = plan.batch(step: step % plan.stepsPerEpoch, of: permutation!.order)
        let ranges = BatchPlan.microBatchRanges(batchCount: batch.count, microBatches: plan.microBatches)
        let micro = ranges.map { Array(batch[(batch.startIndex + $0.lowerBound)..<(batch.startIndex + $0.upperBound)]) }
        return StepTask(step: step, epoch: epoch, microBatches: micro, parameters: parameters)
    }

    /// Runs one step through `executor`.
    package mutating func runStep<E: GradientExecutor>(with executor: inout E) throws -> StepRecord {
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
        optimizer.learningRate = setup.optimizer.schedule.rate(base: setup.optimizer.learningRate, step: step,
                                                               totalSteps: setup.totalSteps)
        let updateStart = DispatchTime.now()
        let report = setup.update.apply(sum, batchSize: batchSize, parameters: &parameters, optimizer: &optimizer)
        let updateSeconds = seconds(since: updateStart)
        step += 1
        let accuracy = setup.loss.isClassification ? Double(correct) / Double(max(batchSize, 1)) : nil
        return StepRecord(step: step, epoch: task.epoch, loss: report.loss, accuracy: accuracy,
                          learningRate: optimizer.learningRate, gradientNorm: report.gradientNorm,
                          clipped: report.clipped, samples: batchSize, seconds: seconds(since: start),
                          reduceSeconds: reduceSeconds, updateSeconds: updateSeconds, exchange: executor.exchangeMetrics())
    }

    /// Loss and accuracy of the current weights on a whole dataset, without recording a graph.
    package func evaluate(on dataset: Dataset, batchSize: Int = 256,
                          progress: ((_ done: Int, _ total: Int) -> Void)? = nil) -> (loss: Double, accuracy: Double?) {
        let result = Evaluation.run(model: setup.model, parameters: parameters, loss: setup.loss, reduction: setup.reduction,
                                    on: dataset, batchSize: batchSize, progress: progress)
        return (result.loss, result.accuracy)
    }
}

/// The executor returned sums that do not cover every micro-batch.
struct MissingBlock: Error, CustomStringConvertible {
    var leaf: Int
    var description: String { "no gradient arrived for micro-batch \(leaf)" }
}
