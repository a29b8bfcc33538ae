@testable import CohortData
@testable import CohortExperiment
@testable import CohortTraining
@testable import CohortNN
@testable import CohortTensor
import CohortTestSupport
import Testing

/// Stands in for N workers: leaves are dealt out in contiguous ranges, each "worker" returns the
/// tree blocks of its range. The distributed executor does the same over ZeroMQ.
struct PartitionedExecutor: GradientExecutor {
    var local: LocalExecutor
    let workers: Int
    let experiment: Experiment

    mutating func compute(_ task: StepTask, tree: GradientTree) -> [Range<Int>: GradientSum] {
        var known: [Range<Int>: GradientSum] = [:]
        let k = task.microBatches.count
        for w in 0..<workers {
            let range = (w * k / workers)..<((w + 1) * k / workers)
            for block in tree.blocks(covering: range) {
                known[block] = tree.sum(block) { leaf in
                    let (x, y) = experiment.dataset.batch(task.microBatches[leaf])
                    return experiment.gradient(parameters: task.parameters, inputs: x, targets: y,
                                               context: .init(training: true, seed: experiment.config.seed, step: task.step,
                                                              sampleIndices: task.microBatches[leaf]))
                }
            }
        }
        return known
    }
}

@Suite struct DeterminismTests {
    @Test func weightsAreBitwiseIdenticalForAnyNumberOfWorkers() throws {
        let config = try ExperimentConfig.load(path: packageRoot.appendingPathComponent("configs/quickstart.yaml").path,
                                               overrides: ["training.steps=40", "training.micro_batches=8"])
        let experiment = try Experiment(config: config)
        var results: [[Tensor]] = []
        for workers in [1, 2, 3, 4] {
            var trainer = Trainer(experiment: experiment)
            var executor = PartitionedExecutor(local: LocalExecutor(experiment: experiment), workers: workers, experiment: experiment)
            while !trainer.isFinished { _ = try trainer.runStep(with: &executor) }
            results.append(trainer.parameters)
        }
        for other in results.dropFirst() {
            #expect(zip(results[0], other).allSatisfy { $0.bitwiseEqual($1) })
        }
        // And they did train: the weights moved from their initial values.
        #expect(!results[0][0].bitwiseEqual(experiment.initialParameters[0]))
    }

    /// Convolution, pooling, dropout and an LSTM inside the same guarantee: dropout masks follow
    /// the sample, so regrouping micro-batches over workers changes nothing.
    @Test(arguments: [
        """
        layers:
            - conv2d: {out: 4, kernel: 3, padding: 1}
            - relu
            - maxpool2d: {kernel: 2}
            - dropout: {p: 0.3}
            - flatten
            - linear: {out: 2}
        """,
        """
        layers:
            - lstm: {hidden: 6, sequences: true}
            - dropout: {p: 0.25}
            - gru: {hidden: 5}
            - linear: {out: 2}
        """,
    ])
    func convolutionalAndRecurrentModelsToo(layers: String) throws {
        let image = layers.contains("conv2d")
        let text = """
        seed: 3
        data: {name: sequence, samples: 96, length: 8}
        model:
          input: \(image ? "[1, 4, 4]" : "[8, 2]")
          \(layers)
        training: {loss: cross_entropy, batch_size: 24, micro_batches: 6, steps: 8}
        optimizer: {name: adam, lr: 0.01}
        """
        let experiment = try Experiment(config: try ExperimentConfig.parse(text, file: "inline.yaml"))
        var results: [[Tensor]] = []
        for workers in [1, 2, 4] {
            var trainer = Trainer(experiment: experiment)
            var executor = PartitionedExecutor(local: LocalExecutor(experiment: experiment), workers: workers, experiment: experiment)
            while !trainer.isFinished { _ = try trainer.runStep(with: &executor) }
            results.append(trainer.parameters)
        }
        // The in-process executor on several threads: the same again.
        for threads in [2, 3] {
            var trainer = Trainer(experiment: experiment)
            var executor = LocalExecutor(experiment: experiment, threads: threads)
            while !trainer.isFinished { _ = try trainer.runStep(with: &executor) }
            results.append(trainer.parameters)
        }
        for other in results.dropFirst() { #expect(zip(results[0], other).allSatisfy { $0.bitwiseEqual($1) }) }
        #expect(!results[0][0].bitwiseEqual(experiment.initialParameters[0]))
    }

    @Test func microBatchPlanIsFixed() {
        #expect(BatchPlan.microBatchRanges(batchCount: 10, microBatches: 4) == [0..<2, 2..<5, 5..<7, 7..<10])
        #expect(BatchPlan.microBatchRanges(batchCount: 3, microBatches: 4) == [0..<1, 1..<2, 2..<3])
        let plan = BatchPlan(datasetSize: 10, batchSize: 4, microBatches: 2, shuffle: true, dropLast: false, seed: 3)
        #expect(plan.stepsPerEpoch == 3)
        let order = plan.permutation(epoch: 0)
        #expect((0..<3).flatMap { plan.batch(step: $0, of: order) }.sorted() == Array(0..<10))
        #expect(plan.permutation(epoch: 1) != order)
    }
}
