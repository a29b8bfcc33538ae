import CohortData
import CohortNN
import CohortTensor
import Foundation

/// What a model and its loss can take, checked on the data before any step: otherwise a label
/// outside the classes or a target of the wrong width reaches a precondition deep in the loss
/// (or an embedding lookup) and the worker traps. The coordinator checks the whole training set
/// when the config loads; a worker checks the samples it is sent and its own copy of the data.
package struct SampleCheck: Sendable {
    /// Values per sample the model puts out (the classes, for cross_entropy).
    package let outputs: Int
    package let loss: Loss
    /// With an embedding first, its inputs are token ids below this count.
    package let embeddingCount: Int?

    package init(model: Sequential, loss: Loss) {
        outputs = model.outputShape.reduce(1, *)
        self.loss = loss
        embeddingCount = (model.layers.first as? Embedding)?.count
    }

    /// The first sample this model and loss cannot take, and why; nil when all are fine.
    /// `indices` name the samples (their place in the dataset) in the message.
    package func firstProblem(inputs: Tensor, targets: Tensor, indices: [Int]? = nil) -> (sample: Int, problem: String)? {
        let samples = targets.shape.first ?? 0
        func name(_ row: Int) -> Int { indices.map { $0[row] } ?? row }
        for (tensor, what) in [(inputs, "input"), (targets, "target")] {
            let perSample = max(tensor.count / max(samples, 1), 1)
            if let bad = tensor.withUnsafeBufferPointer({ $0.firstIndex { !$0.isFinite } }) {
                return (name(bad / perSample), "\(what) value \(tensor[flat: bad]) is not a finite number")
            }
        }
        if let problem = targetProblem(targets, samples: samples, name: name) { return problem }
        if let count = embeddingCount {
            let perSample = inputs.count / max(samples, 1)
            let bad = inputs.withUnsafeBufferPointer { $0.firstIndex { !($0 >= 0 && $0 < Float(count) && $0 == $0.rounded()) } }
            if let bad {
                return (name(bad / max(perSample, 1)), "token id \(inputs[flat: bad]) is not an index below the embedding's count \(count)")
            }
        }
        return nil
    }

    func targetProblem(_ targets: Tensor, samples: Int, name: (Int) -> Int) -> (sample: Int, problem: String)? {
        let perSample = targets.count / max(samples, 1)
        if loss == .softmaxCrossEntropy && perSample == 1 && !(outputs == 1 && targets.rank > 1) {
            let bad = targets.withUnsafeBufferPointer { $0.firstIndex { !($0 >= 0 && $0 < Float(outputs) && $0 == $0.rounded()) } }
            guard let bad else { return nil }
            return (name(bad), "label \(String(format: "%g", Double(targets[flat: bad]))) is not a class of the model's \(outputs) outputs (cross_entropy over classes 0..<\(outputs))")
        }
        guard perSample == outputs else {
            let what = loss == .softmaxCrossEntropy ? "a class index or a one-hot row of \(outputs)" : "\(outputs) target value(s), one per output"
            return (name(0), "has \(perSample) target value(s) but \(loss.rawValue) on a model with \(outputs) output(s) needs \(what)")
        }
        return nil
    }
}
