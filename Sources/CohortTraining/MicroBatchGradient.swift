import CohortNN
import CohortTensor

/// The worker's half of a training step: forward, loss and backward on one micro-batch, giving
/// the sum (not the mean) of the per-sample gradients. The coordinator adds these along the
/// gradient tree and divides once by the global batch size.
package struct MicroBatchGradient: Sendable {
    package let model: Sequential
    package let loss: Loss
    package let reduction: Reduction

    package init(model: Sequential, loss: Loss, reduction: Reduction) {
        self.model = model; self.loss = loss; self.reduction = reduction
    }

    /// What one forward/backward pass gives, with the tape kept for inspection (the trace).
    package struct Pass {
        package let tape: Tape
        package let parameters: [Variable]
        package let outputs: [Variable]
        package let prediction: Variable
        package let loss: Variable
    }

    /// Runs forward and backward and keeps everything (used by the lecture trace and tests).
    package func pass(parameters: [Tensor], inputs: Tensor, targets: Tensor, context: ForwardContext,
                     retainIntermediateGradients: Bool = false, gradientTargets: [GradientTarget?] = [],
                     firstLayerOutput: Tensor? = nil, keepsLayerOutputs: Bool = true) -> Pass {
        let tape = Tape()
        tape.retainsIntermediateGradients = retainIntermediateGradients
        let x = tape.constant(inputs)
        let p = parameters.indices.map { i in
            tape.leaf(parameters[i], target: i < gradientTargets.count ? gradientTargets[i] : nil)
        }
        var outputs: [Variable] = []
        var context = context
        context.precomputedOutput = firstLayerOutput
        // Without an observer the model may fuse layers (a convolution and its ReLU), whose
        // joint output is all a gradient needs.
        let prediction = keepsLayerOutputs ? model(x, parameters: p, context: context) { _, h in outputs.append(h) }
                                           : model(x, parameters: p, context: context)
        let lossValue = loss.sampleSum(prediction, targets, reduction: reduction)
        tape.backward(from: lossValue)
        return Pass(tape: tape, parameters: p, outputs: outputs, prediction: prediction, loss: lossValue)
    }

    /// The gradient sum of one micro-batch, in fresh tensors or in the `destination`'s (see
    /// `LeafDestination`). The loss, sample and correct counts are this micro-batch's alone.
    ///
    /// With `deferringFirstWeight`, the first parameter's gradient is left to the sink
    /// (`DeferredProduct`), and the sum holds an empty tensor in its place.
    package func callAsFunction(parameters: [Tensor], inputs: Tensor, targets: Tensor,
                               context: ForwardContext, destination: LeafDestination = .fresh,
                               firstLayerOutput: Tensor? = nil, deferringFirstWeight sink: DeferredProduct? = nil) -> GradientSum {
        let targetsGiven = destination.gradientTargets(for: parameters, deferringFirst: sink)
        let pass = pass(parameters: parameters, inputs: inputs, targets: targets, context: context,
                        gradientTargets: targetsGiven, firstLayerOutput: firstLayerOutput, keepsLayerOutputs: false)
        let gradients = parameters.indices.map { i in
            let v = pass.parameters[i]
            if i == 0, let sink {
                if !pass.tape.wasDelivered(v) { sink.whole = pass.tape.takeGradient(of: v) ?? .zeros(parameters[0].shape) }
                return Tensor.zeros([0])
            }
            if pass.tape.wasDelivered(v) { return destination.tensors[i] }
            // A parameter no gradient reached (e.g. behind a layer cut off from the loss) gets zeros.
            return destination.place(pass.tape.takeGradient(of: v) ?? .zeros(parameters[i].shape), at: i)
        }
        withExtendedLifetime(destination) {}
        return GradientSum(
            gradients: gradients, lossSum: Double(pass.loss.value.scalar),
            samples: inputs.shape.first ?? 0,
            correct: loss.correctCount(predicted: pass.prediction.value, expected: targets) ?? 0)
    }

    /// The first layer's output for several micro-batches at once, one tensor per input, when
    /// the model starts with a `Linear` and stacking the rows changes no bit
    /// (`BLAS.stacksRowsExactly`); nil otherwise. One product packs the weights once for all of
    /// them, instead of once per micro-batch.
    package func firstLayerOutputs(parameters: [Tensor], inputs: [Tensor]) -> [Tensor]? {
        guard inputs.count > 1, let first = model.layers.first as? Linear else { return nil }
        let rows = inputs.map { $0.shape.first ?? 0 }, width = first.inFeatures
        guard zip(inputs, rows).allSatisfy({ x, r in r > 0 && x.count == r * width }),
              BLAS.stacksRowsExactly(rows: rows, inFeatures: width, outFeatures: first.outFeatures) else { return nil }
        var stacked = Tensor(uninitializedShape: [rows.reduce(0, +), width])
        var offset = 0
        let destination = stacked.mutablePointer
        for x in inputs {
            (destination + offset).update(from: x.pointer, count: x.count)
            offset += x.count
            withExtendedLifetime(x) {}
        }
        let y = Tensor.linearForward(stacked, weight: parameters[0], bias: first.hasBias ? parameters[1] : nil)
        var start = 0
        return withExtendedLifetime(y) {
            rows.map { r in
                var block = Tensor(uninitializedShape: [r, first.outFeatures])
                block.mutablePointer.update(from: y.pointer + start * first.outFeatures, count: block.count)
                start += r
                return block
            }
        }
    }
}
