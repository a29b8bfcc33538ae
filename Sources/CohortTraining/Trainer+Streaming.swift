import CohortNN
import CohortTensor
import Dispatch

/// A step whose gradient is summed and applied chunk by chunk while it arrives (`StreamedUpdate`),
/// for an executor whose workers are across a network. The arithmetic is the plain step's, so
/// the weights are the same bits; a step that is not finite is rolled back and goes the plain
/// way (computed again carefully, then stopped or skipped).
extension Trainer {
    enum StreamedOutcome {
        case done(StepRecord)
        /// Not updated (rolled back): the plain path goes on from this sum.
        case notApplied(GradientSum, squaredNorm: Double, seconds: Double)
    }

    mutating func streamedStep<E: GradientExecutor>(_ task: StepTask, tree: GradientTree, batchSize: Int, executor: inout E,
                                                    start: DispatchTime) throws -> StreamedOutcome {
        let learningRate = optimizer.learningRate
        var streaming = optimizer
        streaming.learningRate = setup.optimizer.schedule.rate(base: setup.optimizer.learningRate, step: step, totalSteps: setup.totalSteps)
        // The stream writes the optimizer's state in place: it must hold the only reference.
        optimizer.state = []
        let stream = StreamedUpdate(update: setup.update, layout: StreamLayout(shapes: parameters.map(\.shape), dtype: setup.spec.wireDType),
                                    weights: parameters, optimizer: streaming, batchSize: batchSize)
        stream.bets = !lastStepClipped
        func takeBack() {
            if stream.applied > 0 { stream.rollBack() }
            optimizer = stream.unchangedOptimizer()
            optimizer.learningRate = learningRate
        }
        let blocks: [Range<Int>: GradientSum]
        do { blocks = try executor.compute(task, tree: tree, streaming: stream) } catch {
            takeBack()
            throw error
        }
        let reduceStart = DispatchTime.now()
        // What the executor did not sum (it could not stream this step) comes from the blocks.
        while let c = stream.nextToSum {
            guard stream.sum(chunk: c, tree: tree, source: { blocks[$0]?.gradients }) else {
                takeBack()
                throw MissingBlock(leaf: tree.blocks(covering: tree.root).first { blocks[$0] == nil }?.lowerBound ?? 0)
            }
        }
        let tally: Tally
        do { tally = try tree.sum(tree.root, known: blocks.mapValues(Tally.init)) { k throws(MissingBlock) in throw MissingBlock(leaf: k) } } catch {
            takeBack()
            throw error
        }
        let sum = GradientSum(gradients: stream.root, lossSum: tally.lossSum, samples: tally.samples, correct: tally.correct)
        let squaredNorm = stream.squaredNorm
        let (loss, norm) = setup.update.measure(sum, batchSize: batchSize, squaredNorm: squaredNorm)
        guard loss.isFinite && norm.isFinite && !stream.stopped else {
            takeBack()
            return .notApplied(sum, squaredNorm: squaredNorm, seconds: seconds(since: reduceStart) + stream.sumSeconds)
        }
        _ = stream.applyReady()  // what the executor left (nothing, when it streamed the whole step)
        let finished = stream.finish()
        parameters = finished.weights
        optimizer = finished.optimizer
        lastStepClipped = finished.clipped
        nonFiniteInARow = 0
        step += 1
        let accuracy = setup.loss.isClassification ? Double(sum.correct) / Double(max(batchSize, 1)) : nil
        let reportedLoss = setup.update.reduction == .mean ? sum.lossSum / Double(batchSize) : sum.lossSum
        return .done(StepRecord(step: step, epoch: task.epoch, loss: reportedLoss, accuracy: accuracy,
                                learningRate: optimizer.learningRate, gradientNorm: norm, clipped: finished.clipped,
                                samples: batchSize, seconds: seconds(since: start),
                                reduceSeconds: stream.sumSeconds, updateSeconds: stream.applySeconds,
                                exchange: executor.exchangeMetrics()))
    }
}

/// The counts of a gradient block, added along the tree as `GradientSum.accumulate` adds them.
package struct Tally: TreeSummable, Sendable {
    package var lossSum: Double
    package var samples: Int
    package var correct: Int

    package init(_ sum: GradientSum) { lossSum = sum.lossSum; samples = sum.samples; correct = sum.correct }
    package init(lossSum: Double, samples: Int, correct: Int) { self.lossSum = lossSum; self.samples = samples; self.correct = correct }

    package mutating func accumulate(_ right: Tally) {
        lossSum += right.lossSum
        samples += right.samples
        correct += right.correct
    }
}
