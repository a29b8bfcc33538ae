import CohortData
import CohortNN
import CohortTensor
import CohortTraining
import Foundation

/// A config made real: its data loaded, its model built with its first weights, its batches
/// planned. `setup` is what the training step needs; the rest (the config itself, the held-out
/// set) is for the run around it.
package struct Experiment: Sendable {
    package let config: ExperimentConfig
    package let setup: TrainingSetup
    /// The evaluation set: a validation split, or the source's test set, if any.
    package let evaluation: Dataset?

    package init(config: ExperimentConfig) throws {
        self.config = config
        let (train, heldOut) = try config.data.load(seed: config.seed)
        guard train.count > 0 else {
            let why = config.data.validationFraction.map { "after holding out data.validation = \($0) for evaluation" } ?? "at all"
            throw ConfigError(file: config.sourcePath, line: nil, column: nil, keyPath: "data",
                              message: "leaves no training samples \(why) (the data '\(train.name)' has \(train.count + (heldOut?.count ?? 0)) in all)")
        }
        if let heldOut, let limit = config.evaluation.limit, limit < heldOut.count {
            evaluation = heldOut.subset(Array(0..<limit), name: heldOut.name)
        } else {
            evaluation = heldOut
        }
        let model: Sequential
        do { model = try config.model.spec.makeModel() } catch {
            throw ConfigError(file: config.sourcePath, line: nil, column: nil, keyPath: "model.layers", message: error.description)
        }
        // Samples may be read in another shape with the same size (MNIST's 1×28×28 as 784 or 28×28).
        guard train.sampleShape.reduce(1, *) == config.model.inputShape.reduce(1, *) else {
            throw ConfigError(file: config.sourcePath, line: nil, column: nil, keyPath: "model.input",
                              message: "is \(config.model.inputShape) but the data '\(train.name)' has samples of shape \(train.sampleShape)")
        }
        let training = config.training
        if training.dropLast && training.batchSize > train.count {
            var error = training.batchSizeLocation
            error.message = "is \(training.batchSize) but the dataset has only \(train.count) samples and drop_last is set"
            throw error
        }
        try Self.checkSamples(train, heldOut: evaluation, model: model, config: config)
        let plan = BatchPlan(datasetSize: train.count, batchSize: min(training.batchSize, train.count),
                             microBatches: training.microBatches, shuffle: training.shuffle,
                             dropLast: training.dropLast, seed: config.seed)
        let update = StepUpdate(reduction: training.reduction, clipNorm: training.clipNorm, clipValue: training.clipValue,
                                regularization: training.regularization, isBias: model.parameterSpecs.map(\.spec.isBias))
        var setup = TrainingSetup(spec: config.gradientSpec, model: model, dataset: train,
                              initialParameters: try Self.makeParameters(config, model: model), plan: plan,
                              totalSteps: training.steps ?? training.epochs * plan.stepsPerEpoch, seed: config.seed,
                              optimizer: config.optimizer.setup, update: update)
        setup.onNonFinite = training.onNonFinite
        self.setup = setup
    }

    /// Every sample's target (and token ids, for an embedding) must fit the model and its loss,
    /// or the run stops here, naming the file and the first bad sample, before any worker starts.
    static func checkSamples(_ train: Dataset, heldOut: Dataset?, model: Sequential, config: ExperimentConfig) throws {
        let check = SampleCheck(model: model, loss: config.training.loss)
        for set in [train] + (heldOut.map { [$0] } ?? []) {
            if let (sample, problem) = check.firstProblem(inputs: set.inputs, targets: set.targets) {
                let file = config.data.targetsFile(configFile: config.sourcePath)
                throw DataError(file: file, "\(set.name) sample \(sample): \(problem)")
            }
        }
    }

    package var dataset: Dataset { setup.dataset }
    package var model: Sequential { setup.model }
    package var initialParameters: [Tensor] { setup.initialParameters }
    package var plan: BatchPlan { setup.plan }
    /// Steps the run will take: `training.steps` if set, else epochs × steps per epoch.
    package var totalSteps: Int { setup.totalSteps }
    package var gradient: MicroBatchGradient { setup.gradient }
}
