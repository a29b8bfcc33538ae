import CohortTensor

/// L1 and L2 penalties of lecture 001 §2.1: cost + λ₁Σ|w| + λ₂Σw², by default on weights only.
public struct Regularization: Sendable, Equatable {
    public var l1: Float = 0
    public var l2: Float = 0
    public var includeBiases = false

    public init(l1: Float = 0, l2: Float = 0, includeBiases: Bool = false) {
        self.l1 = l1; self.l2 = l2; self.includeBiases = includeBiases
    }

    public var isActive: Bool { l1 != 0 || l2 != 0 }

    /// λ₁Σ|w| + λ₂Σw² over the parameters it applies to.
    public func penalty(_ parameters: [Tensor], isBias: [Bool]) -> Double {
        zip(parameters, isBias).reduce(0.0) { total, pair in
            guard includeBiases || !pair.1 else { return total }
            var abs = 0.0
            pair.0.withUnsafeBufferPointer { for v in $0 { abs += Double(Swift.abs(v)) } }
            return total + Double(l1) * abs + Double(l2) * pair.0.squaredNorm()
        }
    }
}
