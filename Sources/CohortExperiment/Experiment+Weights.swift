import CohortNN
import CohortTensor

extension Experiment {
    /// Weights from a safetensors file, checked against the model's names and shapes.
    package static func loadWeights(_ path: String, for model: Sequential) throws -> [Tensor] {
        let file = try Safetensors.read(path: path).entries
        let byName = Dictionary(file.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
        return try model.parameterSpecs.map { entry in
            guard let tensor = byName[entry.name] else {
                throw Safetensors.MismatchError(path: path, problem: "has no tensor '\(entry.name)' for this config's model (it has \(byName.keys.sorted().joined(separator: ", "))); is it the config these weights were trained with?")
            }
            guard tensor.shape == entry.spec.shape else {
                throw Safetensors.MismatchError(path: path, problem: "'\(entry.name)' has shape \(tensor.shape), but this config's model needs \(entry.spec.shape); is it the config these weights were trained with?")
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
                // Weights of a run that diverged would only make this one diverge at once.
                guard tensor.withUnsafeBufferPointer({ $0.allSatisfy(\.isFinite) }) else {
                    throw ConfigError(file: config.sourcePath, line: nil, column: nil, keyPath: "model.init_from",
                                      message: "'\(entry.name)' in \(path) holds NaN or infinite values; start from finite weights")
                }
                parameters[index] = tensor
            }
        }
        return parameters
    }
}
