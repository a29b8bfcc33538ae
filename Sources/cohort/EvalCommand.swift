import ArgumentParser
import CohortExperiment
import CohortTensor
import CohortTraining
import Foundation

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Loss, accuracy and the confusion matrix of trained weights.",
        discussion: """
        Examples:
          cohort eval runs/mnist-mlp/final.safetensors --config configs/mnist-mlp.yaml
          cohort eval runs/mnist-lenet/final.safetensors \\
              --config configs/mnist-lenet.yaml --split train
        """
    )

    @Argument(help: "A safetensors file written by cohort train.")
    var checkpoint: String

    @Option(help: "The config that describes the model and the data.")
    var config: String

    @Option(help: "test (the held-out set: test set or validation split) or train.")
    var split = "test"

    func run() throws {
        let config = try ExperimentConfig.load(path: config)
        let experiment = try Experiment(config: config)
        guard ["test", "train"].contains(split) else { throw ValidationError("--split is test or train") }
        guard let dataset = split == "train" ? experiment.dataset : experiment.evaluation else {
            throw ValidationError("the config's data has no held-out set: use --split train or set data.validation")
        }
        let parameters: [Tensor]
        do { parameters = try Experiment.loadWeights(checkpoint, for: experiment.model) } catch {
            stderrLine("cohort eval: \(error)")
            throw ExitCode(ExitStatus.usage)
        }
        BLAS.setThreads(ProcessInfo.processInfo.activeProcessorCount)
        let report = Evaluation.run(model: experiment.model, parameters: parameters, loss: config.training.loss,
                                    reduction: config.training.reduction, on: dataset)
        print(report.text)
    }
}
