import CohortTensor

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
