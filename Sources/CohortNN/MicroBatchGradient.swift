import CohortTensor

/// The worker's half of a training step: forward, loss and backward on one micro-batch, giving
/// the sum (not the mean) of the per-sample gradients. The coordinator adds these along the
/// gradient tree and divides once by the global batch size.
public struct MicroBatchGradient: Sendable {
    public let model: Sequential
    public let loss: Loss
    public let reduction: Reduction

    public init(model: Sequential, loss: Loss, reduction: Reduction) {
        self.model = model; self.loss = loss; self.reduction = reduction
    }

    /// What one forward/backward pass gives, with the tape kept for inspection (the trace).
    public struct Pass {
        public let tape: Tape
        public let parameters: [Variable]
        public let outputs: [Variable]
        public let prediction: Variable
        public let loss: Variable
    }

    /// Runs forward and backward and keeps everything (used by the lecture trace and tests).
    public func pass(parameters: [Tensor], inputs: Tensor, targets: Tensor, context: ForwardContext,
                     retainIntermediateGradients: Bool = false) -> Pass {
        let tape = Tape()
        tape.retainsIntermediateGradients = retainIntermediateGradients
        let x = tape.constant(inputs)
        let p = parameters.map { tape.leaf($0) }
        var outputs: [Variable] = []
        let prediction = model(x, parameters: p, context: context) { _, h in outputs.append(h) }
        let lossValue = loss.sampleSum(prediction, targets, reduction: reduction)
        tape.backward(from: lossValue)
        return Pass(tape: tape, parameters: p, outputs: outputs, prediction: prediction, loss: lossValue)
    }

    /// The gradient sum of one micro-batch.
    public func callAsFunction(parameters: [Tensor], inputs: Tensor, targets: Tensor,
                               context: ForwardContext) -> GradientSum {
        let pass = pass(parameters: parameters, inputs: inputs, targets: targets, context: context)
        // A parameter no gradient reached (e.g. behind a layer cut off from the loss) gets zeros.
        let gradients = zip(pass.parameters, parameters).map { v, p in pass.tape.takeGradient(of: v) ?? .zeros(p.shape) }
        return GradientSum(
            gradients: gradients, lossSum: Double(pass.loss.value.scalar),
            samples: inputs.shape.first ?? 0,
            correct: loss.correctCount(predicted: pass.prediction.value, expected: targets) ?? 0)
    }
}

extension Loss {
    /// Whether this loss describes a classification whose accuracy means something.
    public var isClassification: Bool { self != .meanSquaredError && self != .halfSquaredError }

    /// How many samples are classified right, or nil for regression losses.
    /// Multi-class: argmax equals the label. Binary: the output is on the label's side of the
    /// threshold (0.5 for probabilities, 0 for logits and hinge). Multi-label: every label right.
    public func correctCount(predicted z: Tensor, expected t: Tensor) -> Int? {
        let (rows, columns) = z.matrixShape
        switch self {
        case .meanSquaredError, .halfSquaredError:
            return nil
        case .softmaxCrossEntropy:
            let predictedClass = z.argmax()
            if t.count == rows { return (0..<rows).filter { predictedClass[$0] == Int(t[flat: $0]) }.count }
            let expectedClass = t.reshaped([rows, columns]).argmax()
            return (0..<rows).filter { predictedClass[$0] == expectedClass[$0] }.count
        case .binaryCrossEntropy, .binaryCrossEntropyWithLogits, .multiLabelBinaryCrossEntropy, .hinge:
            let threshold: Float = self == .binaryCrossEntropy ? 0.5 : 0
            return (0..<rows).filter { r in
                (0..<columns).allSatisfy { c in
                    (z[flat: r * columns + c] > threshold) == (t[flat: r * columns + c] > (self == .hinge ? 0 : 0.5))
                }
            }.count
        }
    }
}
