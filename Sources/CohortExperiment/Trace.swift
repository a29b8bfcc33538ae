import CohortNN
import CohortTensor
import CohortTraining
import Foundation

/// The lecture trace: for each iteration, the forward values of every layer, the loss, the
/// gradient of the loss with respect to every layer output and every parameter, and the updated
/// parameters, laid out like the worked example of lecture 003 so a student can check each line.
package enum LectureTrace {
    /// Tensors of more than this many values are summarized (shape, norm, the first values)
    /// unless `full` is set: one MNIST step would otherwise print megabytes.
    package static let summaryThreshold = 64

    package static func run(_ experiment: Experiment, steps: Int? = nil, decimals: Int = 4, full: Bool = false,
                            print emit: (String) -> Void) throws {
        var trainer = Trainer(experiment: experiment)
        var executor = LocalExecutor(experiment: experiment)
        let model = experiment.model
        let names = model.parameterNames
        let reduction = experiment.config.training.reduction
        func show(_ t: Tensor) -> String { full ? t.format(decimals: decimals) : summary(t, decimals: decimals) }
        emit("Model: \(model)")
        emit("Loss: \(experiment.config.training.loss.rawValue) (reduction: \(reduction.rawValue)), " +
             "optimizer: \(experiment.config.optimizer.name.rawValue), η = \(experiment.config.optimizer.lr)")
        emit("Initial parameters:")
        for (name, p) in zip(names, trainer.parameters) { emit("  \(name) = \(show(p))") }
        for _ in 0..<(steps ?? experiment.totalSteps) {
            let task = trainer.nextTask()
            let indices = task.microBatches.flatMap { $0 }
            let (x, y) = experiment.dataset.batch(indices)
            // The same forward/backward the workers run, on the whole batch, keeping every value.
            let pass = experiment.gradient.pass(parameters: trainer.parameters, inputs: x, targets: y,
                                                context: .init(training: true, seed: experiment.config.seed,
                                                               step: task.step, sampleIndices: indices),
                                                retainIntermediateGradients: true)
            let scale: Float = reduction == .mean ? 1 / Float(indices.count) : 1
            emit("")
            emit("Iteration \(task.step + 1)")
            emit("  Forward pass")
            emit("    x = \(show(x))")
            for (i, h) in pass.outputs.enumerated() {
                emit("    (\(i)) \(model.layers[i]) → \(show(h.value))")
            }
            emit("    target = \(show(y))")
            emit("  Loss")
            emit("    L = \(String(format: "%.\(decimals)f", pass.loss.value.scalar * scale))")
            emit("  Backward pass")
            for (i, h) in pass.outputs.enumerated().reversed() {
                if let g = h.gradient { emit("    ∂L/∂(output of \(i)) = \(show(g * scale))") }
            }
            for (name, v) in zip(names, pass.parameters) {
                if let g = v.gradient { emit("    ∂L/∂\(name) = \(show(g * scale))") }
            }
            let record = try trainer.runStep(with: &executor)
            emit("  Parameter updates (η = \(trainer.optimizer.learningRate), gradient norm \(String(format: "%.\(decimals + 2)f", record.gradientNorm))\(record.clipped ? ", clipped" : ""))")
            for (name, p) in zip(names, trainer.parameters) { emit("    \(name) ← \(show(p))") }
        }
    }

    /// A small tensor in full; a large one as its shape, L2 norm, range and first values.
    static func summary(_ t: Tensor, decimals: Int) -> String {
        guard t.count > summaryThreshold else { return t.format(decimals: decimals) }
        let values = t.scalars
        let first = values.prefix(4).map { String(format: "%.\(decimals)f", Double($0)) }.joined(separator: ", ")
        return "tensor \(t.shape), ‖·‖ \(String(format: "%.\(decimals)f", t.squaredNorm().squareRoot())), " +
            "min \(String(format: "%.\(decimals)f", Double(values.min() ?? 0))), max \(String(format: "%.\(decimals)f", Double(values.max() ?? 0))), " +
            "first [\(first), …] (--full prints all \(t.count))"
    }
}
