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
          cohort eval runs/mnist-mlp/final.safetensors     # reads runs/mnist-mlp/config.yaml
          cohort eval runs/mnist-lenet/checkpoints/step-400.safetensors --split train
          cohort eval weights.safetensors --config configs/mnist-mlp.yaml \\
              --set data.path=~/data/mnist
        """
    )

    @OptionGroup var trained: TrainedWeightsOptions

    @Option(help: "test (the held-out set: test set or validation split) or train.")
    var split = "test"

    func run() throws {
        guard ["test", "train"].contains(split) else { throw ValidationError("--split is test or train") }
        let (experiment, parameters) = try trained.load(command: "cohort eval")
        guard let dataset = split == "train" ? experiment.dataset : experiment.evaluation else {
            throw UsageError("the config's data has no held-out set: use --split train or set data.validation")
        }
        BLAS.setThreads(ProcessInfo.processInfo.activeProcessorCount)
        let training = experiment.config.training
        let report = Evaluation.run(model: experiment.model, parameters: parameters, loss: training.loss,
                                    reduction: training.reduction, on: dataset)
        print(report.text)
    }
}
