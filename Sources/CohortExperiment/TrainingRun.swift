import CohortData
import CohortNN
import CohortTensor
import CohortTraining
import Dispatch
import Foundation
import Logging

/// A whole `cohort train` around the trainer: metrics.jsonl and TensorBoard as it goes,
/// evaluations and checkpoints when due, the periodic step line, and at the end the weights,
/// summary.json and curves.svg.
package final class TrainingRun {
    /// Metadata key of the periodic step lines.
    package static let progressMetadataKey = "progress"
    /// How often curves.svg is rewritten during a run.
    static let curveRefreshSeconds = 3.0

    /// What the caller (the CLI) wants to hear of, or to say, while the run goes.
    package struct Hooks {
        /// After every step, with the run's total steps (the progress bar).
        package var onStep: ((StepRecord, _ total: Int) -> Void)?
        /// Before the evaluation at the end (the CLI gives BLAS every core then).
        package var beforeEvaluation: () -> Void = {}
        /// During an evaluation: the set's name, samples done, samples in all.
        package var onEvaluation: ((_ set: String, _ done: Int, _ total: Int) -> Void)?
        /// Asked after every step: a signal number stops the run there (see `interrupt`).
        package var stopRequested: () -> Int32? = { nil }
        package init() {}
    }

    package struct Result: Sendable {
        package var parameters: [Tensor]
        package var steps: Int
        var finalLoss: Double
        var trainLoss: Double
        var trainAccuracy: Double?
        package var seconds: Double
        package var runDirectory: String
    }

    let experiment: Experiment
    let runDirectory: RunDirectory
    let logger: Logger
    var trainer: Trainer
    let checkpoints: CheckpointDirectory
    let start = DispatchTime.now()
    var samples = 0
    /// Every step's record (for curves.svg), and the last epoch's (for the final training loss:
    /// a full pass over the training set would cost as much as an epoch of forward passes).
    var history: [StepRecord] = []
    var recent: [StepRecord] = []
    var evaluations: [(step: Int, loss: Double, accuracy: Double?)] = []
    var lastCurves = DispatchTime.now()
    /// When and at which step the last checkpoint was written (time-based checkpoints count
    /// from the start of this attempt).
    var lastCheckpoint = DispatchTime.now()
    var lastCheckpointStep: Int?
    /// The pace of this attempt, for the step lines.
    var pace = StepPace()
    var onEvaluation: ((_ set: String, _ done: Int, _ total: Int) -> Void)?

    init(_ experiment: Experiment, runDirectory: RunDirectory, resumeFrom: Checkpoint?, updateThreads: Int, logger: Logger) {
        self.experiment = experiment
        self.runDirectory = runDirectory
        self.logger = logger
        trainer = Trainer(experiment: experiment)
        // Threads for the optimizer update: the coordinator's workers are idle then.
        trainer.updateThreads = updateThreads
        checkpoints = CheckpointDirectory(runDirectory: runDirectory.path)
        if let resumeFrom {
            trainer.restore(resumeFrom)
            lastCheckpointStep = resumeFrom.step
            (history, evaluations) = runDirectory.recordedSteps()
            recent = Array(history.suffix(min(experiment.plan.stepsPerEpoch, experiment.totalSteps)))
            logger.info("resuming at step \(resumeFrom.step)")
        }
    }

    /// Trains to the end, writing metrics as it goes and the weights and summary at the end.
    /// `updateThreads`: threads for the optimizer update. `logger` receives one human-readable
    /// line every `training.log_every` steps, marked with `progressMetadataKey`, and the run's
    /// other news.
    package static func run<E: GradientExecutor>(
        _ experiment: Experiment, executor: inout E, runDirectory: RunDirectory,
        resumeFrom: Checkpoint? = nil, updateThreads: Int = 1, hooks: Hooks = Hooks(), logger: Logger
    ) throws -> Result {
        let run = TrainingRun(experiment, runDirectory: runDirectory, resumeFrom: resumeFrom, updateThreads: updateThreads, logger: logger)
        run.onEvaluation = hooks.onEvaluation
        run.announce()
        while !run.trainer.isFinished {
            let record: StepRecord
            do { record = try run.trainer.runStep(with: &executor) } catch let divergence as NonFiniteStep {
                try run.diverged(divergence)
            }
            try run.record(record)
            hooks.onStep?(record, experiment.totalSteps)
            if let signal = hooks.stopRequested() {
                try run.interrupt(signal: signal, executorSummary: executor.summary(wallSeconds: run.elapsed))
            }
        }
        if experiment.config.checkpoint.atEnd && run.trainer.step > 0 { try run.saveCheckpoint() }
        let seconds = run.elapsed
        hooks.beforeEvaluation()
        return try run.finish(seconds: seconds, executorSummary: executor.summary(wallSeconds: seconds))
    }

    var elapsed: Double { seconds(since: start) }

    /// Writes the newest checkpoint, unless this step already has one or the weights are not
    /// finite (then the last finite checkpoint stays the newest, and rotation cannot remove it).
    func saveCheckpoint() throws {
        guard lastCheckpointStep != trainer.step else { return }
        guard trainer.parameters.allSatisfy({ p in p.withUnsafeBufferPointer { $0.allSatisfy(\.isFinite) } }) else {
            logger.warning("the weights at step \(trainer.step) are not finite: no checkpoint of them")
            return
        }
        try checkpoints.save(trainer.checkpoint(of: config), model: experiment.model, optimizer: trainer.optimizer,
                             config: config, keepLast: config.checkpoint.keepLast)
        lastCheckpoint = DispatchTime.now()
        lastCheckpointStep = trainer.step
    }

    /// The run diverged (and `on_nonfinite: stop`, or too many skips): summary.json says where,
    /// the plot is written, and the checkpoints (finite ones only) stay for --resume.
    func diverged(_ divergence: NonFiniteStep) throws -> Never {
        let newest = checkpoints.steps().first.map { checkpoints.file(step: $0) }
        let summary: [(String, JSON)] = [("name", .string(config.name)), ("diverged", .bool(true)), ("step", .int(divergence.step)),
                                         ("loss", .number(divergence.loss)), ("message", .string(divergence.description)),
                                         ("newest_checkpoint", newest.map { .string($0) } ?? .null)]
        try runDirectory.writeSummary(.object(summary))
        try runDirectory.writeCurves(title: config.name, steps: history, evaluations: evaluations)
        var message = divergence.description
        message += newest.map { ". The newest checkpoint, of finite weights, is \($0)" } ?? ". No checkpoint was written before"
        message += "; training.on_nonfinite: skip would drop such steps instead"
        throw TrainingFailure(message: message)
    }

    /// Stops at a step boundary for a signal: a checkpoint, summary.json marked interrupted and
    /// the plot, then `TrainingInterrupted` (the CLI exits 128 + the signal).
    func interrupt(signal: Int32, executorSummary: ExecutorSummary?) throws -> Never {
        try saveCheckpoint()
        var summary: [(String, JSON)] = [("name", .string(config.name)), ("interrupted", .bool(true)), ("signal", .int(Int(signal))),
                                         ("steps", .int(trainer.step)), ("total_steps", .int(total)),
                                         ("final_step_loss", .number(history.last?.loss ?? .nan)),
                                         ("wall_time_s", .number(elapsed)), ("samples", .int(samples))]
        summary += executorSummary?.json ?? []
        try runDirectory.writeSummary(.object(summary))
        try runDirectory.writeCurves(title: config.name, steps: history, evaluations: evaluations)
        logger.warning("stopped at step \(trainer.step) of \(total) (signal \(signal)); continue with: cohort train --resume \(runDirectory.path)")
        throw TrainingInterrupted(signal: signal, step: trainer.step)
    }

    var total: Int { experiment.totalSteps }
    var config: ExperimentConfig { experiment.config }

    func announce() {
        let plan = experiment.plan
        let text = "training \(config.name): \(experiment.model.parameterNames.count) parameter tensors, " +
            "\(experiment.dataset.count) samples, \(total) steps, batch \(plan.batchSize) in \(plan.microBatches) micro-batches"
        logger.info("\(text)")
    }

    /// Everything that follows a step: its metrics line, and the evaluation, checkpoint, plot
    /// refresh and log line when they are due.
    func record(_ record: StepRecord) throws {
        try runDirectory.appendMetrics(record.json)
        samples += record.samples
        pace.record(step: record.step, samples: record.samples, at: Double(DispatchTime.now().uptimeNanoseconds) / 1e9)
        recent.append(record)
        if recent.count > min(experiment.plan.stepsPerEpoch, total) { recent.removeFirst() }
        history.append(record)
        if let every = config.evaluation.everySteps, record.step % every == 0, record.step < total,
           let (name, loss, accuracy) = try evaluate() {
            logger.info("\("step \(record.step): \(name) loss \(String(format: "%.6f", loss))" + (accuracy.map { " accuracy \(String(format: "%.4f", $0))" } ?? ""))")
        }
        let minutes = config.checkpoint.everyMinutes
        if let every = config.checkpoint.everySteps, record.step % every == 0 {
            try saveCheckpoint()
        } else if minutes > 0, seconds(since: lastCheckpoint) >= minutes * 60 {
            try saveCheckpoint()
        }
        if seconds(since: lastCurves) >= Self.curveRefreshSeconds {
            lastCurves = DispatchTime.now()
            try? runDirectory.writeCurves(title: config.name, steps: history, evaluations: evaluations, durable: false)
        }
        if record.step % config.training.logEvery == 0 || record.step == total || record.step == 1 {
            logStep(record)
        }
    }

    /// Evaluates the current weights on the held-out set, if there is one: a metrics line, a
    /// point of the plot and a log line.
    @discardableResult
    func evaluate() throws -> (name: String, loss: Double, accuracy: Double?)? {
        guard let evaluation = experiment.evaluation else { return nil }
        logger.info("evaluating on \(evaluation.name) (\(evaluation.count) samples)")
        let report = onEvaluation.map { hook in { done, total in hook(evaluation.name, done, total) } }
        let (loss, accuracy) = trainer.evaluate(on: evaluation, progress: report)
        evaluations.append((trainer.step, loss, accuracy))
        try runDirectory.appendMetrics(.object([("step", .int(trainer.step)), ("eval_set", .string(evaluation.name)),
                                            ("eval_loss", .number(loss))] + (accuracy.map { [("eval_accuracy", JSON.number($0))] } ?? [])))
        return (evaluation.name, loss, accuracy)
    }

    func logStep(_ record: StepRecord) {
        var line = "step \(record.step)/\(total) epoch \(record.epoch + 1) loss \(String(format: "%.6f", record.loss))"
        if let accuracy = record.accuracy { line += " acc \(String(format: "%.4f", accuracy))" }
        line += " |g| \(String(format: "%.4g", record.gradientNorm))"
        if let rate = pace.samplesPerSecond, let remaining = pace.secondsRemaining(until: total) {
            line += " \(String(format: "%.0f", rate)) samples/s, \(String(format: "%.0f", remaining)) s to go"
        }
        // Marked, so a progress bar that already shows the steps can leave these out.
        logger.info("\(line)", metadata: [TrainingRun.progressMetadataKey: "step"])
    }

    /// The final weights, the evaluation at the end, summary.json and curves.svg.
    func finish(seconds: Double, executorSummary: ExecutorSummary?) throws -> Result {
        let recentSamples = Double(max(recent.reduce(0) { $0 + $1.samples }, 1))
        let trainLoss = recent.reduce(0.0) { $0 + $1.loss * Double($1.samples) } / recentSamples
        let trainAccuracy = config.training.loss.isClassification
            ? recent.reduce(0.0) { $0 + ($1.accuracy ?? 0) * Double($1.samples) } / recentSamples : nil
        let metadata = ["format": "pt", "producer": "cohort", "step": "\(trainer.step)", "config": config.name]
        try runDirectory.writeWeights(experiment.model, trainer.parameters, metadata: metadata)
        var summary: [(String, JSON)] = [
            ("name", .string(config.name)), ("steps", .int(trainer.step)),
            ("final_step_loss", .number(history.last?.loss ?? .nan)),
            ("train_loss", .number(trainLoss)),
        ]
        if let trainAccuracy { summary.append(("train_accuracy", .number(trainAccuracy))) }
        var evaluationLine = ""
        if config.evaluation.atEnd, let (name, loss, accuracy) = try evaluate() {
            summary += [("eval_set", .string(name)), ("eval_loss", .number(loss))]
            if let accuracy { summary.append(("eval_accuracy", .number(accuracy))) }
            evaluationLine = "; \(name) loss \(String(format: "%.6f", loss))" + (accuracy.map { " accuracy \(String(format: "%.4f", $0))" } ?? "")
        }
        summary += [
            ("wall_time_s", .number(seconds)), ("samples", .int(samples)),
            ("samples_per_s", .number(Double(samples) / max(seconds, 1e-9))),
            ("parameters", .int(trainer.parameters.reduce(0) { $0 + $1.count })),
        ]
        summary += executorSummary?.json ?? []
        try runDirectory.writeSummary(.object(summary))
        try runDirectory.writeCurves(title: config.name, steps: history, evaluations: evaluations)
        let closing = "training loss over the last \(recent.count) steps \(String(format: "%.6f", trainLoss))" +
            (trainAccuracy.map { " accuracy \(String(format: "%.4f", $0))" } ?? "") + evaluationLine + "; results in \(runDirectory.path)"
        logger.info("\(closing)")
        return Result(parameters: trainer.parameters, steps: trainer.step, finalLoss: history.last?.loss ?? .nan,
                      trainLoss: trainLoss, trainAccuracy: trainAccuracy, seconds: seconds, runDirectory: runDirectory.path)
    }
}

/// A run that cannot go on, said in a sentence (the CLI exits 1 with it).
package struct TrainingFailure: Error, CustomStringConvertible {
    package var message: String
    package var description: String { message }
}

/// A run stopped by a signal at a step boundary, its state saved.
package struct TrainingInterrupted: Error, CustomStringConvertible {
    package var signal: Int32
    package var step: Int
    package var description: String { "interrupted by signal \(signal) after step \(step)" }
}

func seconds(since start: DispatchTime) -> Double {
    Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
}
