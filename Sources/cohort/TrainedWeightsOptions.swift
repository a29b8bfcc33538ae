import ArgumentParser
import CohortExperiment
import CohortTensor
import Foundation

/// The weights `eval` and `predict` read, and the config that describes their model and data:
/// `--config`, or the config.yaml of the run the weights came from (beside final.safetensors, or
/// one level up from checkpoints/step-N.safetensors).
struct TrainedWeightsOptions: ParsableArguments {
    @Argument(help: ArgumentHelp("A safetensors file written by cohort train (final.safetensors or a checkpoint).", valueName: "weights"),
              completion: .file(extensions: ["safetensors"]))
    var weights: String

    @Option(help: "The config that describes the model and the data (default: the run's config.yaml beside the weights).",
            completion: .file(extensions: ["yaml", "yml"]))
    var config: String?

    @Option(name: .customLong("set"), help: ArgumentHelp("Override a config key, e.g. --set data.path=DIR (repeatable).", valueName: "dotted.key=value"))
    var overrides: [String] = []

    /// The config file to read.
    func configPath() throws -> String {
        if let config { return config }
        let folder = URL(fileURLWithPath: weights).deletingLastPathComponent()
        for candidate in [folder, folder.deletingLastPathComponent()].map({ $0.appendingPathComponent("config.yaml").path })
        where FileManager.default.fileExists(atPath: candidate) {
            return candidate
        }
        throw UsageError("no config.yaml beside \(weights) (nor one level up); say which config describes its model with --config")
    }

    /// The experiment and its trained weights; a file that does not fit the model, or that is
    /// damaged, is a usage error naming the file.
    func load(command: String) throws -> (experiment: Experiment, parameters: [Tensor]) {
        let experiment = try Experiment(config: try ExperimentConfig.load(path: try configPath(), overrides: overrides))
        do { return (experiment, try Experiment.loadWeights(weights, for: experiment.model)) } catch {
            throw UsageError("\(command): \(error)")
        }
    }
}
