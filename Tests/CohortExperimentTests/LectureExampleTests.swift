@testable import CohortExperiment
@testable import CohortTraining
@testable import CohortNN
@testable import CohortTensor
import CohortTestSupport
import Foundation
import Testing

/// The 2-2-1 worked example of lectures 000/003, against the corrected table in ERRATA.md.
@Suite struct LectureExampleTests {
    func experiment() throws -> Experiment {
        try Experiment(config: ExperimentConfig.load(path: packageRoot.appendingPathComponent("configs/lecture-2-2-1.yaml").path))
    }

    func expectClose(_ t: Tensor, _ expected: [Float], _ what: String, tolerance: Float = 1e-4,
                     sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(t.count == expected.count, "\(what)", sourceLocation: sourceLocation)
        for (a, b) in zip(t.scalars, expected) {
            #expect(abs(a - b) <= tolerance, "\(what): \(t) vs \(expected)", sourceLocation: sourceLocation)
        }
    }

    /// ERRATA.md table: ŷ, L and the parameters after each of the three iterations.
    let table: [(yHat: Float, loss: Float, w2: [Float], b2: Float, w1: [Float], b1: [Float])] = [
        (0.8933, 0.1129, [0.7410, 0.8458], 0.9534, [0.1066, 0.4133, 0.2052, 0.5104], [0.3066, 0.6052]),
        (0.9053, 0.0995, [0.7778, 0.8866], 1.0007, [0.1128, 0.4255, 0.2100, 0.5199], [0.3128, 0.6100]),
        (0.9150, 0.0889, [0.8110, 0.9234], 1.0433, [0.1184, 0.4368, 0.2144, 0.5287], [0.3184, 0.6144]),
    ]

    @Test func threeIterationsMatchTheCorrectedTable() throws {
        let experiment = try experiment()
        var trainer = Trainer(experiment: experiment)
        var executor = LocalExecutor(experiment: experiment)
        let x = Tensor([[1, 2]]), y = Tensor([[1]])
        for (iteration, row) in table.enumerated() {
            // Forward values and gradients, then the update, each from the seed's own formulas
            // (000 §1.5–1.8) evaluated in Double on the current weights.
            let p: [[Double]] = trainer.parameters.map { $0.scalars.map(Double.init) }
            func sigmoid(_ z: Double) -> Double { 1 / (1 + exp(-z)) }
            let u: [Double] = [0, 1].map { (j: Int) -> Double in sigmoid(p[0][2 * j] + 2 * p[0][2 * j + 1] + p[1][j]) }
            let yHat: Double = sigmoid(p[2][0] * u[0] + p[2][1] * u[1] + p[3][0])
            let dz = yHat - 1  // (−y/ŷ + (1−y)/(1−ŷ))·ŷ(1−ŷ) = ŷ − y
            let dW2: [Double] = u.map { dz * $0 }
            let delta: [Double] = [0, 1].map { (j: Int) -> Double in dz * p[2][j] * u[j] * (1 - u[j]) }
            let dW1: [Double] = [delta[0], 2 * delta[0], delta[1], 2 * delta[1]]

            let pass = experiment.gradient.pass(parameters: trainer.parameters, inputs: x, targets: y,
                                                context: .init(training: true))
            expectClose(pass.prediction.value, [row.yHat], "ŷ, iteration \(iteration + 1)")
            expectClose(pass.loss.value, [row.loss], "L, iteration \(iteration + 1)")
            expectClose(pass.parameters[0].gradient!, dW1.map(Float.init), "∂L/∂W1", tolerance: 1e-6)
            expectClose(pass.parameters[1].gradient!, delta.map(Float.init), "∂L/∂b1", tolerance: 1e-6)
            expectClose(pass.parameters[2].gradient!, dW2.map(Float.init), "∂L/∂W2", tolerance: 1e-6)
            expectClose(pass.parameters[3].gradient!, [Float(dz)], "∂L/∂b2", tolerance: 1e-6)
            if iteration == 0 {
                // Iteration 1 gradients as printed in ERRATA.md.
                expectClose(pass.parameters[2].gradient!, [-0.08203, -0.09160], "∂L/∂W2 (errata)", tolerance: 1e-5)
                expectClose(pass.parameters[3].gradient!, [-0.1067], "∂L/∂b2 (errata)")
                expectClose(pass.parameters[0].gradient!, [-0.01329, -0.02658, -0.01039, -0.02079], "∂L/∂W1 (errata)", tolerance: 1e-5)
            }

            _ = try trainer.runStep(with: &executor)
            expectClose(trainer.parameters[0], row.w1, "W1 after iteration \(iteration + 1)")
            expectClose(trainer.parameters[1], row.b1, "b1 after iteration \(iteration + 1)")
            expectClose(trainer.parameters[2], row.w2, "W2 after iteration \(iteration + 1)")
            expectClose(trainer.parameters[3], [row.b2], "b2 after iteration \(iteration + 1)")
        }
        #expect(trainer.isFinished)
    }

    @Test func traceShowsTheNumbersOfTheTable() throws {
        var lines: [String] = []
        try LectureTrace.run(try experiment()) { lines.append($0) }
        let text = lines.joined(separator: "\n")
        for number in ["0.8933", "0.1129", "0.9053", "0.0995", "0.9150", "0.0889", "[[0.8110, 0.9234]]", "[1.0433]",
                       "[[0.1184, 0.4368], [0.2144, 0.5287]]", "[0.3184, 0.6144]", "[[-0.0820, -0.0916]]"] {
            #expect(text.contains(number), "trace lacks \(number)")
        }
        #expect(lines.filter { $0.hasPrefix("Iteration") }.count == 3)
    }
}
