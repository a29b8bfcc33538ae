@testable import CohortTraining
import CohortNN
@testable import CohortTensor
import Testing

/// Micro-batch gradients computed straight into given memory, against the tree's own additions
/// of gradients computed apart: the same bits for every kind of layer, whether or not a layer's
/// gradient could be delivered by its product.
@Suite struct LeafDestinationTests {
    static func models() throws -> [(String, Sequential, [Int])] {
        [
            ("mlp", try Sequential(inputShape: [784], layers: [
                Linear(inFeatures: 784, outFeatures: 96), Activation.relu, Linear(inFeatures: 96, outFeatures: 10),
            ]), [784]),
            ("lenet", try Sequential(inputShape: [1, 12, 12], layers: [
                Conv2D(inChannels: 1, outChannels: 4, kernel: 5, padding: 2), Activation.relu, Pool2D(.max, kernel: 2),
                Flatten(), Linear(inFeatures: 144, outFeatures: 40), Activation.relu, Linear(inFeatures: 40, outFeatures: 10),
            ]), [1, 12, 12]),
            ("lstm", try Sequential(inputShape: [7, 12], layers: [
                Recurrent(.lstm, inputSize: 12, hiddenSize: 16), Linear(inFeatures: 16, outFeatures: 10),
            ]), [7, 12]),
        ]
    }

    static func leaf(_ k: Int, shape: [Int]) -> (Tensor, Tensor) {
        let x = Tensor.normal([32] + shape, std: 1, seed: UInt64(k + 1), stream: .init(purpose: 12))
        return (x, Tensor(shape: [32], (0..<32).map { Float(($0 * 7 + k) % 10) }))
    }

    /// Leaves computed into memory given for them, and the tree's nodes computed by
    /// `LeafThreads` (pairs fused, an MLP's first layer stacked over a node's leaves), give the
    /// bits of each leaf computed alone and added by the tree.
    @Test func destinationsGiveTheTreesBits() throws {
        for (name, model, shape) in try Self.models() {
            let parameters = model.initialParameters(.pytorch, seed: 1)
            let gradient = MicroBatchGradient(model: model, loss: .softmaxCrossEntropy, reduction: .mean)
            @Sendable func compute(_ k: Int, _ destination: LeafDestination = .fresh) -> GradientSum {
                let (x, y) = Self.leaf(k, shape: shape)
                return gradient(parameters: parameters, inputs: x, targets: y, context: .init(training: true),
                                destination: destination)
            }
            var expected = compute(0)
            expected.accumulate(compute(1))
            let memory = parameters.map { Tensor(shape: $0.shape, repeating: .nan) }
            let left = compute(0, .write(memory))
            let pair = left.addingCounts(of: compute(1, .add(to: left.gradients)))
            for (i, (got, want)) in zip(pair.gradients, expected.gradients).enumerated() {
                #expect(got.bitwiseEqual(want), "\(name) parameter \(i)")
                #expect(got.pointer == memory[i].pointer, "\(name) parameter \(i) is in the memory given")
            }
            #expect(pair.lossSum == expected.lossSum && pair.samples == 64 && pair.correct == expected.correct)

            // The tree's pairs, fused by `LeafThreads`, on one thread and split over three.
            let tree = GradientTree(leafCount: 5)
            let reference = tree.sum(tree.root) { compute($0) }
            let work = LeafThreads.Work(gradient: gradient, parameters: parameters, seed: 0, step: 0)
            for threads in [1, 3] {
                let blocks = LeafThreads(count: threads).blocks(of: tree.root, in: tree, work: work) { _, k, _ in
                    let (x, y) = Self.leaf(k, shape: shape)
                    return (x, y, [])
                }
                let total = tree.sum(tree.root, known: blocks) { _ in fatalError("every leaf is computed") }
                #expect(zip(total.gradients, reference.gradients).allSatisfy { $0.bitwiseEqual($1) }, "\(name), \(threads) threads")
            }
        }
    }

    /// An MLP's first layer over five micro-batches stacked: each gets the bits it gets alone,
    /// and the pass really uses what it is given (zeros instead change the loss).
    @Test func stackedFirstLayerIsEachLeafsOwn() throws {
        let (_, model, shape) = try Self.models()[0]
        let parameters = model.initialParameters(.pytorch, seed: 2)
        let gradient = MicroBatchGradient(model: model, loss: .softmaxCrossEntropy, reduction: .mean)
        let inputs = (0..<5).map { Self.leaf($0, shape: shape).0 }
        let outputs = try #require(gradient.firstLayerOutputs(parameters: parameters, inputs: inputs),
                                   "this machine's OpenBLAS stacks the rows of a 784 → 96 layer exactly")
        for (x, y) in zip(inputs, outputs) {
            #expect(y.bitwiseEqual(Tensor.linearForward(x, weight: parameters[0], bias: parameters[1])))
        }
        let (x, y) = Self.leaf(0, shape: shape)
        let plain = gradient(parameters: parameters, inputs: x, targets: y, context: .init(training: true))
        let zeros = gradient(parameters: parameters, inputs: x, targets: y, context: .init(training: true),
                             firstLayerOutput: .zeros(outputs[0].shape))
        #expect(plain.lossSum != zeros.lossSum)
        #expect(gradient.firstLayerOutputs(parameters: parameters, inputs: [inputs[0]]) == nil, "one leaf has nothing to share")
    }

    /// A node of more rows than one stacked product takes (`NodeLeaves.groupRows`) is stacked
    /// group by group, and still gives each leaf's own bits.
    @Test func largeNodesStackGroupByGroup() throws {
        let (_, model, shape) = try Self.models()[0]
        let parameters = model.initialParameters(.pytorch, seed: 3)
        let gradient = MicroBatchGradient(model: model, loss: .softmaxCrossEntropy, reduction: .mean)
        let leaves = NodeLeaves.groupRows / 32 + 5
        let tree = GradientTree(leafCount: leaves)
        let reference = tree.sum(tree.root) { k in
            let (x, y) = Self.leaf(k, shape: shape)
            return gradient(parameters: parameters, inputs: x, targets: y, context: .init(training: true))
        }
        let work = LeafThreads.Work(gradient: gradient, parameters: parameters, seed: 0, step: 0)
        let blocks = LeafThreads(count: 1).blocks(of: tree.root, in: tree, work: work) { _, k, _ in
            let (x, y) = Self.leaf(k, shape: shape)
            return (x, y, [])
        }
        let total = try #require(blocks[tree.root])
        #expect(zip(total.gradients, reference.gradients).allSatisfy { $0.bitwiseEqual($1) })
        #expect(total.lossSum == reference.lossSum && total.samples == 32 * leaves)
    }
}
