import CohortData
import CohortNN
import CohortTensor
import Foundation

/// Everything a run needs, built from a validated config: data, model, initial weights, loss.
public struct Experiment: Sendable {
    public let config: ExperimentConfig
    /// The training set.
    public let dataset: Dataset
    /// The evaluation set: a validation split, or the source's test set, if any.
    public let evaluation: Dataset?
    public let model: Sequential
    public let initialParameters: [Tensor]
    public let plan: BatchPlan

    public init(config: ExperimentConfig) throws {
        self.config = config
        let (train, heldOut) = try config.data.load(seed: config.seed)
        dataset = train
        if let heldOut, let limit = config.evaluation.limit, limit < heldOut.count {
            evaluation = heldOut.subset(Array(0..<limit), name: heldOut.name)
        } else {
            evaluation = heldOut
        }
        let layers = config.model.layers.map(\.layer)
        do {
            model = try Sequential(inputShape: config.model.inputShape, layers: layers)
        } catch {
            throw ConfigError(file: config.sourcePath, line: nil, column: nil, keyPath: "model.layers", message: error.description)
        }
        // Samples may be read in another shape with the same size (MNIST's 1×28×28 as 784 or 28×28).
        guard dataset.sampleShape.reduce(1, *) == config.model.inputShape.reduce(1, *) else {
            throw ConfigError(file: config.sourcePath, line: nil, column: nil, keyPath: "model.input",
                              message: "is \(config.model.inputShape) but the data '\(dataset.name)' has samples of shape \(dataset.sampleShape)")
        }
        initialParameters = try Self.makeParameters(config, model: model)
        let training = config.training
        if training.dropLast && training.batchSize > dataset.count {
            var error = training.batchSizeLocation
            error.message = "is \(training.batchSize) but the dataset has only \(dataset.count) samples and drop_last is set"
            throw error
        }
        plan = BatchPlan(datasetSize: dataset.count, batchSize: min(training.batchSize, dataset.count),
                         microBatches: training.microBatches, shuffle: training.shuffle,
                         dropLast: training.dropLast, seed: config.seed)
    }

    /// Steps the run will take: `training.steps` if set, else epochs × steps per epoch.
    public var totalSteps: Int { config.training.steps ?? config.training.epochs * plan.stepsPerEpoch }

    public var gradient: MicroBatchGradient {
        MicroBatchGradient(model: model, loss: config.training.loss, reduction: config.training.reduction)
    }

    /// Weights from a safetensors file, checked against the model's names and shapes.
    public static func loadWeights(_ path: String, for model: Sequential) throws -> [Tensor] {
        let file = try Safetensors.read(path: path).entries
        let byName = Dictionary(file.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
        return try model.parameterSpecs.map { entry in
            guard let tensor = byName[entry.name] else {
                throw Safetensors.FormatError(path: path, problem: "no tensor '\(entry.name)' (it has \(byName.keys.sorted().joined(separator: ", ")))")
            }
            guard tensor.shape == entry.spec.shape else {
                throw Safetensors.FormatError(path: path, problem: "'\(entry.name)' has shape \(tensor.shape), the model needs \(entry.spec.shape)")
            }
            return tensor
        }
    }

    /// Initial weights: the initializer, then explicit values from the config, or a checkpoint.
    static func makeParameters(_ config: ExperimentConfig, model: Sequential) throws -> [Tensor] {
        var parameters = model.initialParameters(config.model.initializer, seed: config.seed)
        for (index, entry) in model.parameterSpecs.enumerated() {
            if let value = config.model.layers[entry.layer].values[entry.spec.name] { parameters[index] = value }
        }
        if let path = config.model.initFrom {
            let file: [Safetensors.Entry]
            do { file = try Safetensors.read(path: path).entries } catch {
                throw ConfigError(file: config.sourcePath, line: nil, column: nil, keyPath: "model.init_from", message: "\(error)")
            }
            let byName = Dictionary(file.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
            for (index, entry) in model.parameterSpecs.enumerated() {
                guard let tensor = byName[entry.name] else {
                    throw ConfigError(file: config.sourcePath, line: nil, column: nil, keyPath: "model.init_from",
                                      message: "\(path) has no tensor '\(entry.name)' (it has \(byName.keys.sorted().joined(separator: ", ")))")
                }
                guard tensor.shape == entry.spec.shape else {
                    throw ConfigError(file: config.sourcePath, line: nil, column: nil, keyPath: "model.init_from",
                                      message: "'\(entry.name)' in \(path) has shape \(tensor.shape), the model needs \(entry.spec.shape)")
                }
                parameters[index] = tensor
            }
        }
        return parameters
    }
}
