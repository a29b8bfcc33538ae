import CohortData
import CohortNN
import CohortTensor
import Foundation

/// Loss, accuracy and the confusion matrix of given weights on a dataset (`cohort eval`).
public struct EvaluationReport: Sendable {
    public var dataset: String
    public var samples: Int
    public var loss: Double
    public var accuracy: Double?
    /// confusion[true class][predicted class], for class-index targets.
    public var confusion: [[Int]]?

    public static func run(model: Sequential, parameters: [Tensor], loss: Loss, reduction: Reduction,
                           on dataset: Dataset, batchSize: Int = 256) -> EvaluationReport {
        var lossSum = 0.0, correct = 0
        let classes = dataset.classes ?? 0
        let countsClasses = loss == .softmaxCrossEntropy && dataset.targets.rank == 1 && classes > 0
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: classes), count: countsClasses ? classes : 0)
        var start = 0
        while start < dataset.count {
            let indices = Array(start..<min(start + batchSize, dataset.count))
            let (x, y) = dataset.batch(indices)
            let tape = Tape.noGradient()
            let z = model(tape.constant(x), parameters: parameters.map(tape.constant), context: .evaluation)
            lossSum += Double(loss.sampleSum(z, y, reduction: reduction).value.scalar)
            correct += loss.correctCount(predicted: z.value, expected: y) ?? 0
            if countsClasses {
                for (row, predicted) in z.value.argmax().enumerated() {
                    let truth = Int(y[flat: row])
                    if truth >= 0 && truth < classes && predicted < classes { confusion[truth][predicted] += 1 }
                }
            }
            start += batchSize
        }
        let n = Double(max(dataset.count, 1))
        return EvaluationReport(dataset: dataset.name, samples: dataset.count, loss: reduction == .mean ? lossSum / n : lossSum,
                                accuracy: loss.isClassification ? Double(correct) / n : nil, confusion: countsClasses ? confusion : nil)
    }

    /// A table a person can read: loss, accuracy, then the confusion matrix with per-class recall.
    public var text: String {
        var lines = ["\(dataset): \(samples) samples, loss \(String(format: "%.6f", loss))" +
                     (accuracy.map { ", accuracy \(String(format: "%.4f", $0))" } ?? "")]
        if let confusion {
            let width = max(5, String(confusion.flatMap { $0 }.max() ?? 0).count + 1)
            func cell(_ s: String) -> String { String(repeating: " ", count: max(0, width - s.count)) + s }
            lines.append("confusion matrix (rows: true class, columns: predicted):")
            lines.append(cell("") + confusion.indices.map { cell(String($0)) }.joined() + "  recall")
            for (c, row) in confusion.enumerated() {
                let total = row.reduce(0, +)
                lines.append(cell(String(c)) + row.map { cell(String($0)) }.joined() +
                             String(format: "  %.4f", total > 0 ? Double(row[c]) / Double(total) : 0))
            }
        }
        return lines.joined(separator: "\n")
    }
}
