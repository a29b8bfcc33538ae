import CohortData
import CohortNN
import CohortTensor
import Foundation
import Logging

/// A whole `cohort train`: the trainer, its executor and its run directory.
public struct TrainingRun {
    /// Metadata key of the periodic step lines.
    public static let progressMetadataKey = "progress"
    /// How often curves.svg is rewritten during a run.
    public static let curveRefreshSeconds = 3.0

    public struct Result: Sendable {
        public var parameters: [Tensor]
        public var steps: Int
        public var finalLoss: Double
        public var trainLoss: Double
        public var trainAccuracy: Double?
        public var seconds: Double
        public var runDirectory: String
    }

    /// Trains to the end, writing metrics as it goes and the weights and summary at the end.
    /// `updateThreads`: threads for the optimizer update (the coordinator's workers are idle
    /// then). `logger` receives one human-readable line every `training.log_every` steps, marked with
    /// `progressMetadataKey`, and the run's other news.
    public static func run<E: GradientExecutor>(
        _ experiment: Experiment, executor: inout E, runDirectory: RunDirectory,
        resumeFrom: Checkpoint? = nil, beforeEvaluation: () -> Void = {},
        onStep: ((StepRecord, _ total: Int) -> Void)? = nil, updateThreads: Int = 1, logger: Logger
    ) throws -> Result {
        var trainer = Trainer(experiment: experiment)
        trainer.updateThreads = updateThreads
        if let resumeFrom {
            trainer.restore(resumeFrom)
            logger.info("resuming at step \(resumeFrom.step)")
        }
        let checkpoints = CheckpointDirectory(runDirectory: runDirectory.path)
        let total = experiment.totalSteps
        let logEvery = experiment.config.training.logEvery
        let start = DispatchTime.now()
        var samples = 0
        var last: StepRecord?
        // The training loss and accuracy reported at the end: the mean over the last epoch's steps
        // (a full pass over the training set would cost as much as an epoch of forward passes).
        var recent: [StepRecord] = []
        var history: [StepRecord] = []
        var evaluations: [(step: Int, loss: Double, accuracy: Double?)] = []
        // curves.svg is refreshed every few seconds during the run, and at the end.
        var lastCurves = start
        let window = min(experiment.plan.stepsPerEpoch, total)
        let text = "training \(experiment.config.name): \(experiment.model.parameterNames.count) parameter tensors, " +
            "\(experiment.dataset.count) samples, \(total) steps, batch \(experiment.plan.batchSize) in \(experiment.plan.microBatches) micro-batches"
        logger.info("\(text)")
        while !trainer.isFinished {
            let record = try trainer.runStep(with: &executor)
            runDirectory.appendMetrics(record.json)
            samples += record.samples
            last = record
            onStep?(record, total)
            recent.append(record)
            if recent.count > window { recent.removeFirst() }
            history.append(record)
            if let every = experiment.config.evaluation.everySteps, record.step % every == 0, record.step < total,
               let evaluation = experiment.evaluation {
                let (loss, accuracy) = trainer.evaluate(on: evaluation)
                evaluations.append((record.step, loss, accuracy))
                runDirectory.appendMetrics(.object([("step", .int(record.step)), ("eval_set", .string(evaluation.name)),
                                                    ("eval_loss", .number(loss))] + (accuracy.map { [("eval_accuracy", JSON.number($0))] } ?? [])))
                let text = "step \(record.step): \(evaluation.name) loss \(String(format: "%.6f", loss))" +
                    (accuracy.map { " accuracy \(String(format: "%.4f", $0))" } ?? "")
                logger.info("\(text)")
            }
            if let every = experiment.config.checkpoint.everySteps, record.step % every == 0 || record.step == total {
                try checkpoints.save(trainer.checkpoint, model: experiment.model, optimizer: trainer.optimizer,
                                     config: experiment.config, keepLast: experiment.config.checkpoint.keepLast)
            }
            if seconds(since: lastCurves) >= Self.curveRefreshSeconds {
                lastCurves = DispatchTime.now()
                try? runDirectory.writeCurves(title: experiment.config.name, steps: history, evaluations: evaluations, durable: false)
            }
            if record.step % logEvery == 0 || record.step == total || record.step == 1 {
                let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
                var line = "step \(record.step)/\(total) epoch \(record.epoch + 1) loss \(String(format: "%.6f", record.loss))"
                if let accuracy = record.accuracy { line += " acc \(String(format: "%.4f", accuracy))" }
                line += " |g| \(String(format: "%.4g", record.gradientNorm)) \(String(format: "%.0f", Double(samples) / max(elapsed, 1e-9))) samples/s"
                // Marked, so a progress bar that already shows the steps can leave these out.
                logger.info("\(line)", metadata: [TrainingRun.progressMetadataKey: "step"])
            }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        beforeEvaluation()
        let recentSamples = Double(max(recent.reduce(0) { $0 + $1.samples }, 1))
        let trainLoss = recent.reduce(0.0) { $0 + $1.loss * Double($1.samples) } / recentSamples
        let trainAccuracy = experiment.config.training.loss.isClassification
            ? recent.reduce(0.0) { $0 + ($1.accuracy ?? 0) * Double($1.samples) } / recentSamples : nil
        let metadata = ["format": "pt", "producer": "cohort", "step": "\(trainer.step)", "config": experiment.config.name]
        try runDirectory.writeWeights(experiment.model, trainer.parameters, metadata: metadata)
        var summary: [(String, JSON)] = [
            ("name", .string(experiment.config.name)), ("steps", .int(trainer.step)),
            ("final_step_loss", .number(last?.loss ?? .nan)),
            ("train_loss", .number(trainLoss)),
        ]
        if let trainAccuracy { summary.append(("train_accuracy", .number(trainAccuracy))) }
        var evaluationLine = ""
        if let evaluation = experiment.evaluation, experiment.config.evaluation.atEnd {
            let (loss, accuracy) = trainer.evaluate(on: evaluation)
            summary.append(("eval_set", .string(evaluation.name)))
            summary.append(("eval_loss", .number(loss)))
            if let accuracy { summary.append(("eval_accuracy", .number(accuracy))) }
            evaluations.append((trainer.step, loss, accuracy))
            runDirectory.appendMetrics(.object([("step", .int(trainer.step)), ("eval_set", .string(evaluation.name)),
                                                ("eval_loss", .number(loss))] + (accuracy.map { [("eval_accuracy", JSON.number($0))] } ?? [])))
            evaluationLine = "; \(evaluation.name) loss \(String(format: "%.6f", loss))" +
                (accuracy.map { " accuracy \(String(format: "%.4f", $0))" } ?? "")
        }
        summary += [
            ("wall_time_s", .number(seconds)), ("samples", .int(samples)),
            ("samples_per_s", .number(Double(samples) / max(seconds, 1e-9))),
            ("parameters", .int(trainer.parameters.reduce(0) { $0 + $1.count })),
        ]
        summary += executor.summaryMetrics(wallSeconds: seconds)
        try runDirectory.writeSummary(.object(summary))
        try runDirectory.writeCurves(title: experiment.config.name, steps: history, evaluations: evaluations)
        let closing = "training loss over the last \(recent.count) steps \(String(format: "%.6f", trainLoss))" +
            (trainAccuracy.map { " accuracy \(String(format: "%.4f", $0))" } ?? "") + evaluationLine + "; results in \(runDirectory.path)"
        logger.info("\(closing)")
        return Result(parameters: trainer.parameters, steps: trainer.step, finalLoss: last?.loss ?? .nan,
                      trainLoss: trainLoss, trainAccuracy: trainAccuracy, seconds: seconds, runDirectory: runDirectory.path)
    }
}
