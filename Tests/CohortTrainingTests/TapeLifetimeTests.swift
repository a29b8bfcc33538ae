@testable import CohortTraining
import CohortNN
@testable import CohortTensor
import Testing

/// A micro-batch's tape, with every activation it recorded, is freed when its pass is done. A
/// pullback that holds a Variable holds the tape that holds the pullback: the cycle kept a GRU's
/// tapes alive, and a worker grew by about 450 MB a second.
@Suite struct TapeLifetimeTests {
    static func models() throws -> [(String, Sequential, [Int])] {
        let recurrent = [RecurrentCell.rnn, .lstm, .gru, .gruPyTorch].map { cell in
            ("\(cell), two layers", try! Sequential(inputShape: [5, 6], layers: [
                Recurrent(cell, inputSize: 6, hiddenSize: 8, layers: 2, returnSequences: true), Flatten(),
                Linear(inFeatures: 40, outFeatures: 10),
            ]), [5, 6])
        }
        let activations: [any Layer] = [Activation.sigmoid, Activation.tanh, Activation.relu, Activation.softplus, Activation.identity]
        return recurrent + [
            ("linear, activations, dropout", try Sequential(inputShape: [12], layers: [Linear(inFeatures: 12, outFeatures: 16, bias: false)]
                + activations + [Dropout(rate: 0.3), Linear(inFeatures: 16, outFeatures: 10)]), [12]),
            ("convolution, pooling", try Sequential(inputShape: [1, 8, 8], layers: [
                Conv2D(inChannels: 1, outChannels: 3, kernel: 3, padding: 1), Activation.relu, Pool2D(.max, kernel: 2),
                Conv2D(inChannels: 3, outChannels: 2, kernel: 3, stride: 2, padding: 1, bias: false), Pool2D(.average, kernel: 2),
                Flatten(), Linear(inFeatures: 2, outFeatures: 10),
            ]), [1, 8, 8]),
            ("residual", try Sequential(inputShape: [10], layers: [
                Residual(inputShape: [10], block: [Linear(inFeatures: 10, outFeatures: 10), Activation.relu]),
            ]), [10]),
        ]
    }

    @Test func everyLayersTapeIsFreed() throws {
        for (name, model, shape) in try Self.models() {
            let parameters = model.initialParameters(.pytorch, seed: 1)
            let gradient = MicroBatchGradient(model: model, loss: .softmaxCrossEntropy, reduction: .mean)
            let x = Tensor.normal([4] + shape, std: 1, seed: 3, stream: .init(purpose: 12))
            weak var tape: Tape?
            do {
                let pass = gradient.pass(parameters: parameters, inputs: x, targets: Tensor([1, 4, 7, 9]),
                                         context: .init(training: true, seed: 1, step: 0, sampleIndices: [0, 1, 2, 3]))
                tape = pass.tape
                #expect(tape != nil && pass.tape.gradient(of: pass.parameters[0]) != nil, "\(name)")
            }
            #expect(tape == nil, "\(name): the tape outlives its pass (a pullback holds a Variable)")
        }
    }

    /// An embedding's input is indices, and its tape is freed too.
    @Test func anEmbeddingsTapeIsFreed() throws {
        let model = try Sequential(inputShape: [3], layers: [Embedding(count: 20, dimension: 4), Flatten(), Linear(inFeatures: 12, outFeatures: 10)])
        let gradient = MicroBatchGradient(model: model, loss: .softmaxCrossEntropy, reduction: .sum)
        weak var tape: Tape?
        do {
            let pass = gradient.pass(parameters: model.initialParameters(.pytorch, seed: 2), inputs: Tensor([[1, 5, 19], [0, 2, 2]]),
                                     targets: Tensor([3, 8]), context: .init(training: true))
            tape = pass.tape
        }
        #expect(tape == nil)
    }
}
