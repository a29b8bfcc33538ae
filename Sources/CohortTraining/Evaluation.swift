import CohortData
import CohortNN
import CohortTensor

/// Loss, accuracy and (for class-index targets) the confusion matrix of given weights on a
/// whole dataset, in batches, without recording a graph. The trainer's evaluations during a run
/// and `cohort eval` both come from here.
package struct Evaluation: Sendable {
    package var dataset: String
    package var samples: Int
    package var loss: Double
    package var accuracy: Double?
    /// confusion[true class][predicted class], for class-index targets of cross_entropy.
    package var confusion: [[Int]]?

    /// `progress(done, total)` is told after every batch (a long evaluation shows it).
    package static func run(model: Sequential, parameters: [Tensor], loss: Loss, reduction: Reduction,
                            on dataset: Dataset, batchSize: Int = 256,
                            progress: ((_ done: Int, _ total: Int) -> Void)? = nil) -> Evaluation {
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
            progress?(min(start, dataset.count), dataset.count)
        }
        let n = Double(max(dataset.count, 1))
        return Evaluation(dataset: dataset.name, samples: dataset.count, loss: reduction == .mean ? lossSum / n : lossSum,
                          accuracy: loss.isClassification ? Double(correct) / n : nil, confusion: countsClasses ? confusion : nil)
    }
}
