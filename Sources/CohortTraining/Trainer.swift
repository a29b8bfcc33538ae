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
    package internal(set) var parameters: [Tensor]
    package internal(set) var optimizer: Optimizer
    package internal(set) var step = 0
    /// Steps skipped in a row for a loss or gradient that was not finite.
    var nonFiniteInARow = 0
    /// Whether the last step was clipped: the streamed step then waits for the norm instead of
    /// betting that it is not (`StreamedUpdate.bets`).
    var lastStepClipped = false
    /// The data order of the current epoch, and of the next one once a step has looked ahead.
    private var permutations: [Int: [Int]] = [:]

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
        permutations = [:]
    }

    /// The micro-batches of the current step.
    package mutating func nextTask() -> StepTask {
        // The forward and backward passes run on the working weights (rounded with bf16).
        StepTask(step: step, epoch: step / setup.plan.stepsPerEpoch, microBatches: microBatches(ofStep: step),
                 parameters: setup.spec.wireDType.working(parameters))
    }

    /// The micro-batches of step `step` (of the current epoch or a later one).
    mutating func microBatches(ofStep step: Int) -> [[Int]] {
        let plan = setup.plan
        let epoch = step / plan.stepsPerEpoch
        if permutations[epoch] == nil {
            permutations = permutations.filter { $0.key >= self.step / plan.stepsPerEpoch }
            permutations[epoch] = plan.permutation(epoch: epoch)
        }
        let batch = plan.batch(step: step % plan.stepsPerEpoch, of: permutations[epoch]!)
        let ranges = BatchPlan.microBatchRanges(batchCount: batch.count, microBatches: plan.microBatches)
        return ranges.map { Array(batch[(batch.startIndex + $0.lowerBound)..<(batch.startIndex + $0.upperBound)]) }
    }

    /// Runs one step through `executor`. A step whose loss or gradient is not finite is computed
    /// again on the careful path (`GradientExecutor.recompute`: a worker may have sent bad
    /// numbers, and every block is deterministic, so the same bits come back from an honest
    /// one); if it is still not finite the run has diverged, and `setup.onNonFinite` says what
    /// to do.
    package mutating func runStep<E: GradientExecutor>(with executor: inout E) throws -> StepRecord {
        let start = DispatchTime.now()
        var task = nextTask()
        let tree = GradientTree(leafCount: task.microBatches.count, precision: setup.spec.wireDType)
        let batchSize = task.microBatches.reduce(0) { $0 + $1.count }
        var first: (GradientSum, Double, Double)
        if executor.streamsUpdates() {
            if step + 1 < setup.totalSteps { task.nextMicroBatches = microBatches(ofStep: step + 1) }
            switch try streamedStep(task, tree: tree, batchSize: batchSize, executor: &executor, start: start) {
            case .done(let record): return record
            case .notApplied(let sum, let squaredNorm, let seconds): first = (sum, squaredNorm, seconds)
            }
        } else {
            first = try gradientSum(task, tree: tree, executor: &executor, careful: false)
        }
        var (sum, squaredNorm, reduceSeconds) = first
        var (loss, norm) = setup.update.measure(sum, batchSize: batchSize, squaredNorm: squaredNorm)
        if !loss.isFinite || !norm.isFinite {
            (sum, squaredNorm, reduceSeconds) = try gradientSum(task, tree: tree, executor: &executor, careful: true)
            (loss, norm) = setup.update.measure(sum, batchSize: batchSize, squaredNorm: squaredNorm)
        }
        // The update below writes the weights in place only if nothing else holds them.
        task.parameters = []
        guard loss.isFinite && norm.isFinite else {
            return try skipNonFinite(sum, loss: loss, norm: norm, task: task, start: start, executor: &executor)
        }
        nonFiniteInARow = 0
        // With bf16 the workers hold a rounded copy, not these weights: nothing to move.
        if setup.spec.wireDType == .fp32 { executor.prepareUpdate(of: &parameters) }
        let correct = sum.correct
        optimizer.learningRate = setup.optimizer.schedule.rate(base: setup.optimizer.learningRate, step: step,
                                                               totalSteps: setup.totalSteps)
        let updateStart = DispatchTime.now()
        let report = setup.update.apply(sum, batchSize: batchSize, norm: norm, parameters: &parameters, optimizer: &optimizer)
        let updateSeconds = seconds(since: updateStart)
        lastStepClipped = report.clipped
        step += 1
        let accuracy = setup.loss.isClassification ? Double(correct) / Double(max(batchSize, 1)) : nil
        return StepRecord(step: step, epoch: task.epoch, loss: report.loss, accuracy: accuracy,
                          learningRate: optimizer.learningRate, gradientNorm: report.gradientNorm,
                          clipped: report.clipped, samples: batchSize, seconds: seconds(since: start),
                          reduceSeconds: reduceSeconds, updateSeconds: updateSeconds, exchange: executor.exchangeMetrics())
    }

    /// The step's gradient sum along the tree, from the executor's blocks, with its squared norm
    /// (found as the last addition is made, on the update's threads), and the seconds the
    /// coordinator spent on them.
    mutating func gradientSum<E: GradientExecutor>(_ task: StepTask, tree: GradientTree, executor: inout E,
                                                   careful: Bool) throws -> (GradientSum, Double, Double) {
        var blocks = careful ? try executor.recompute(task, tree: tree) : try executor.compute(task, tree: tree)
        let reduceStart = DispatchTime.now()
        let (sum, squaredNorm) = try tree.rootSum(taking: &blocks, lanes: updateThreads) { k throws(MissingBlock) in
            throw MissingBlock(leaf: k)
        }
        return (sum, squaredNorm, seconds(since: reduceStart))
    }

    /// A diverged step: `stop` ends the run naming the step and the first tensor that is not
    /// finite; `skip` leaves the weights as they were and goes on, as a loss scaler does, until
    /// too many steps in a row were skipped.
    mutating func skipNonFinite<E: GradientExecutor>(_ sum: GradientSum, loss: Double, norm: Double, task: StepTask,
                                                     start: DispatchTime, executor: inout E) throws -> StepRecord {
        nonFiniteInARow += 1
        let tensor = zip(setup.model.parameterNames, sum.gradients).first { _, g in
            !g.withUnsafeBufferPointer { $0.allSatisfy(\.isFinite) }
        }?.0
        let divergence = NonFiniteStep(step: step + 1, loss: loss, gradientNorm: norm, tensor: tensor, inARow: nonFiniteInARow)
        guard case .skip(let maximum) = setup.onNonFinite, nonFiniteInARow <= maximum else { throw divergence }
        step += 1
        var record = StepRecord(step: step, epoch: task.epoch, loss: loss, accuracy: nil, learningRate: optimizer.learningRate,
                                gradientNorm: norm, clipped: false, samples: sum.samples, seconds: seconds(since: start),
                                exchange: executor.exchangeMetrics())
        record.skipped = true
        return record
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

/// A step whose loss or gradient was not finite even when computed again: the run diverged.
package struct NonFiniteStep: Error, CustomStringConvertible {
    package var step: Int
    package var loss: Double
    package var gradientNorm: Double
    /// The first parameter whose gradient holds NaN or ±∞ (nil when only the loss does).
    package var tensor: String?
    package var inARow: Int

    package var description: String {
        let which = tensor.map { "; the first gradient that is not finite is \($0)'s" } ?? ""
        let repeated = inARow > 1 ? " (\(inARow) steps in a row)" : ""
        return "training diverged at step \(step)\(repeated): loss \(loss), gradient norm \(gradientNorm)\(which)"
    }
}
