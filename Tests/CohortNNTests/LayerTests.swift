@testable import CohortNN
@testable import CohortTensor
import Foundation
import CohortTestSupport
import Testing

@Suite struct LayerTests {
    @Test func sequentialNamesFollowPyTorch() throws {
        let model = try Sequential(inputShape: [784], layers: [
            Linear(inFeatures: 784, outFeatures: 512), Activation.relu, Linear(inFeatures: 512, outFeatures: 10),
        ])
        #expect(model.parameterNames == ["0.weight", "0.bias", "2.weight", "2.bias"])
        #expect(model.parameterSpecs.map(\.spec.shape) == [[512, 784], [512], [10, 512], [10]])
        #expect(model.outputShape == [10])
    }

    @Test func shapeMismatchIsCaught() {
        #expect(throws: LayerShapeError.self) {
            try Sequential(inputShape: [3], layers: [Linear(inFeatures: 4, outFeatures: 2)])
        }
    }

    @Test func linearIsXWTransposePlusB() {
        let tape = Tape.noGradient()
        let x = Tensor([[1, 2]]), w = Tensor([[0.1, 0.4], [0.2, 0.5]]), b = Tensor([0.3, 0.6])
        let y = Linear(inFeatures: 2, outFeatures: 2)(tape.constant(x), parameters: [tape.constant(w), tape.constant(b)],
                                                      context: .evaluation)
        // Lecture 003: a = W1·x + b1 = [1.2, 1.8].
        #expect(abs(y.value[0, 0] - 1.2) < 1e-6 && abs(y.value[0, 1] - 1.8) < 1e-6)
    }

    @Test func activationsMatchTheirDefinitions() {
        let z: [Float] = [-3, -0.5, 0, 0.5, 3]
        let tape = Tape.noGradient()
        func run(_ a: Activation) -> [Float] { a(tape.constant(Tensor(z)), parameters: [], context: .evaluation).value.scalars }
        for (i, v) in z.enumerated() {
            let d = Double(v)
            #expect(abs(Double(run(.sigmoid)[i]) - 1 / (1 + exp(-d))) < 1e-6)
            #expect(abs(Double(run(.tanh)[i]) - (exp(d) - exp(-d)) / (exp(d) + exp(-d))) < 1e-6)
            #expect(run(.relu)[i] == max(0, v))
            #expect(abs(Double(run(.softplus)[i]) - log(1 + exp(d))) < 1e-6)
            #expect(run(.hardThreshold)[i] == (v > 0 ? 1 : 0))
            #expect(run(.sign)[i] == (v > 0 ? 1 : -1))
            #expect(run(.identity)[i] == v)
        }
    }

    @Test func layerGradientCheck() throws {
        let model = try Sequential(inputShape: [3], layers: [
            Linear(inFeatures: 3, outFeatures: 4), Activation.tanh, Linear(inFeatures: 4, outFeatures: 4),
            Activation.softplus, Linear(inFeatures: 4, outFeatures: 2, bias: false), Activation.sigmoid,
        ])
        let parameters = model.initialParameters(.xavier, seed: 3)
        let x = smoothRandom([5, 3], seed: 4)
        #expect(gradientMismatches([x] + parameters) { v in
            model(v[0], parameters: Array(v.dropFirst()), context: .evaluation)
        } == [])
    }

    /// Lecture 002's XOR networks, evaluated exactly on the four inputs.
    @Test func lectureXORNetworks() throws {
        let inputs = Tensor([[0, 0], [0, 1], [1, 0], [1, 1]])
        let xor: [Float] = [0, 1, 1, 0]
        let threshold = try Sequential(inputShape: [2], layers: [
            Linear(inFeatures: 2, outFeatures: 2), Activation.hardThreshold,
            Linear(inFeatures: 2, outFeatures: 1), Activation.hardThreshold,
        ])
        let hard = threshold.predict(inputs, parameters: [
            Tensor([[1, 1], [1, 1]]), Tensor([-0.5, -1.5]), Tensor([[1, -1]]), Tensor([-0.5]),
        ])
        #expect(hard.scalars == xor)

        let relu = try Sequential(inputShape: [2], layers: [
            Linear(inFeatures: 2, outFeatures: 2), Activation.relu,
            Linear(inFeatures: 2, outFeatures: 1), Activation.relu,
        ])
        let soft = relu.predict(inputs, parameters: [
            Tensor([[1, 1], [1, 1]]), Tensor([0, -1]), Tensor([[1, -2]]), Tensor([-0.5]),
        ])
        // y > 0 exactly on the XOR-true inputs: h = relu([x1+x2, x1+x2−1]); y = relu(h1 − 2h2 − 0.5).
        #expect(soft.scalars == [0, 0.5, 0.5, 0])
        #expect(soft.scalars.map { $0 > 0 ? 1 : 0 } == xor)
    }

    @Test func initializers() {
        let spec = ParameterSpec(name: "weight", shape: [256, 400], fanIn: 400, fanOut: 256, isBias: false)
        let torch = Initializer.pytorch.tensor(for: spec, seed: 1, layer: 0, parameter: 0)
        #expect(abs(torch.maxAbs - 1 / 20) < 1e-3 && torch.maxAbs <= 1 / 20)
        let xavier = Initializer.xavier.tensor(for: spec, seed: 1, layer: 0, parameter: 0)
        let bound = Float((6.0 / 656).squareRoot())
        #expect(xavier.maxAbs <= bound && xavier.maxAbs > 0.99 * bound)
        let he = Initializer.he.tensor(for: spec, seed: 1, layer: 0, parameter: 0)
        let std = (he.squaredNorm() / Double(he.count)).squareRoot()
        #expect(abs(std - (2.0 / 400).squareRoot()) < 0.002)
        // Different layers get different draws; the same (seed, layer, parameter) the same.
        #expect(!torch.bitwiseEqual(Initializer.pytorch.tensor(for: spec, seed: 1, layer: 1, parameter: 0)))
        #expect(torch.bitwiseEqual(Initializer.pytorch.tensor(for: spec, seed: 1, layer: 0, parameter: 0)))
        let bias = ParameterSpec(name: "bias", shape: [256], fanIn: 400, fanOut: 256, isBias: true)
        #expect(Initializer.xavier.tensor(for: bias, seed: 1, layer: 0, parameter: 1).maxAbs == 0)
    }
}
