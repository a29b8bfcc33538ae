import CohortTensor
import Foundation

/// How a batch of per-element losses becomes one number (PyTorch's `reduction`).
public enum Reduction: String, Sendable, CaseIterable, Codable {
    /// Mean over every element (for softmax cross-entropy: over samples).
    case mean
    /// Sum over every element.
    case sum
}

/// The losses of the lecture notes. Each is one fused op on the tape, so its gradient is the
/// simple closed form (σ(z) − t for BCE on logits, softmax(z) − t for cross-entropy) rather than
/// a chain of divisions that loses precision.
public enum Loss: String, Sendable, CaseIterable, Codable {
    /// −[t log p + (1 − t) log(1 − p)] on probabilities p (after a sigmoid). Lecture 000 §1.4.
    case binaryCrossEntropy = "bce"
    /// The same on logits z, computed as max(z, 0) − z·t + log(1 + e^−|z|) so it never overflows.
    case binaryCrossEntropyWithLogits = "bce_with_logits"
    /// ½(y − t)², the perceptron objective of lecture 002.
    case halfSquaredError = "half_squared_error"
    /// (y − t)².
    case meanSquaredError = "mse"
    /// −log softmax(z)_t for one class out of C (multi-class). Targets: class indices or one-hot rows.
    case softmaxCrossEntropy = "cross_entropy"
    /// Sigmoid BCE on logits with a multi-hot target (multi-label, lecture 000 §1.2).
    case multiLabelBinaryCrossEntropy = "multilabel_bce"
    /// max(0, 1 − t·z) with t ∈ {−1, +1}; 0/1 labels are read as −1/+1 (the SVM cost of lecture 002).
    case hinge

    /// The loss of a batch with PyTorch's reduction semantics.
    public func callAsFunction(_ predicted: Variable, _ expected: Tensor, reduction: Reduction = .mean) -> Variable {
        let total = sampleSum(predicted, expected, reduction: reduction)
        guard reduction == .mean else { return total }
        return total * (1 / Float(predicted.value.shape.first ?? 1))
    }

    /// Σ over the samples of each sample's loss, scaled so that dividing by the global batch size
    /// gives `reduction` over the whole batch. Micro-batches add these sums, and the coordinator
    /// divides once by B: that keeps the result independent of how the batch was cut.
    public func sampleSum(_ predicted: Variable, _ expected: Tensor, reduction: Reduction) -> Variable {
        let z = predicted.value
        let perSample = z.count / max(z.shape.first ?? 1, 1)
        switch self {
        case .softmaxCrossEntropy:
            return softmaxCrossEntropySum(predicted, expected)
        default:
            precondition(expected.count == z.count,
                         "\(rawValue): target of \(expected.shape) does not match prediction \(z.shape)")
            let scale: Float = reduction == .mean ? 1 / Float(perSample) : 1
            return elementwise(predicted, expected, scale: scale)
        }
    }

    /// Loss and gradient of one element, for prediction z and target t.
    func element(_ z: Float, _ t: Float) -> (loss: Double, gradient: Float) {
        switch self {
        case .binaryCrossEntropy:
            // PyTorch clamps the logs at −100 so a saturated sigmoid gives a large finite loss.
            let logP = max(Foundation.log(Double(z)), -100)
            let log1mP = max(Foundation.log(1 - Double(z)), -100)
            let grad = (z - t) / max(z * (1 - z), 1e-12)
            return (-(Double(t) * logP + (1 - Double(t)) * log1mP), grad)
        case .binaryCrossEntropyWithLogits, .multiLabelBinaryCrossEntropy:
            let zd = Double(z), td = Double(t)
            let loss = max(zd, 0) - zd * td + Foundation.log1p(Foundation.exp(-Swift.abs(zd)))
            return (loss, Sigmoid.value(z) - t)
        case .halfSquaredError:
            let d = z - t
            return (0.5 * Double(d) * Double(d), d)
        case .meanSquaredError:
            let d = z - t
            return (Double(d) * Double(d), 2 * d)
        case .hinge:
            let sign: Float = t > 0 ? 1 : -1
            let margin = 1 - sign * z
            return margin > 0 ? (Double(margin), -sign) : (0, 0)
        case .softmaxCrossEntropy:
            fatalError("cross_entropy is not elementwise")
        }
    }

    func elementwise(_ predicted: Variable, _ expected: Tensor, scale: Float) -> Variable {
        let z = predicted.value
        var total = 0.0
        var gradient = Tensor(uninitializedShape: z.shape)
        z.withUnsafeBufferPointer { pz in expected.withUnsafeBufferPointer { pt in
            gradient.withUnsafeMutableBufferPointer { pg in
                for i in 0..<pz.count {
                    let (l, g) = element(pz[i], pt[i])
                    total += l
                    pg[i] = g * scale
                }
            }
        } }
        return predicted.tape.record(Tensor(Float(total * Double(scale))), inputs: [predicted]) { g, _ in
            [gradient * g.scalar]
        }
    }

    /// Σ_samples [logsumexp(z) − Σ_c t_c z_c]; gradient softmax(z) − t.
    func softmaxCrossEntropySum(_ predicted: Variable, _ expected: Tensor) -> Variable {
        let z = predicted.value
        let (rows, classes) = z.matrixShape
        let indexTargets = expected.count == rows && !(classes == 1 && expected.shape == z.shape)
        precondition(indexTargets || expected.count == z.count,
                     "cross_entropy: target \(expected.shape) is neither class indices nor one row per sample of \(z.shape)")
        var total = 0.0
        var gradient = Tensor(uninitializedShape: z.shape)
        z.withUnsafeBufferPointer { pz in expected.withUnsafeBufferPointer { pt in
            gradient.withUnsafeMutableBufferPointer { pg in
                for r in 0..<rows {
                    let row = r * classes
                    var largest = -Float.infinity
                    for c in 0..<classes { largest = max(largest, pz[row + c]) }
                    var sumExp = 0.0
                    for c in 0..<classes {
                        let e = Foundation.exp(pz[row + c] - largest)
                        pg[row + c] = e
                        sumExp += Double(e)
                    }
                    let logSumExp = Double(largest) + Foundation.log(sumExp)
                    let inverse = Float(1 / sumExp)
                    for c in 0..<classes { pg[row + c] *= inverse }
                    if indexTargets {
                        let target = Int(pt[r])
                        precondition(target >= 0 && target < classes, "class \(target) outside 0..<\(classes)")
                        total += logSumExp - Double(pz[row + target])
                        pg[row + target] -= 1
                    } else {
                        for c in 0..<classes {
                            let t = pt[row + c]
                            total += Double(t) * (logSumExp - Double(pz[row + c]))
                            pg[row + c] -= t
                        }
                    }
                }
            }
        } }
        return predicted.tape.record(Tensor(Float(total)), inputs: [predicted]) { g, _ in [gradient * g.scalar] }
    }
}
