import CohortTraining
import Foundation

extension Evaluation {
    /// A table a person can read: loss, accuracy, then the confusion matrix with per-class recall.
    package var text: String {
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
