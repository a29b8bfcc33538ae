import Foundation

/// How the learning rate moves with the step (t counts updates from 0).
public struct LearningRateSchedule: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable { case constant, step, cosine }
    public var kind: Kind = .constant
    /// `step`: multiply by `gamma` every `stepSize` steps.
    public var stepSize = 1
    public var gamma: Float = 0.1
    /// `cosine`: from the base rate down to `minimum` over the steps after warm-up.
    public var minimum: Float = 0
    /// Linear warm-up from base/warmup to base over the first `warmupSteps` steps.
    public var warmupSteps = 0

    public init() {}

    public func rate(base: Float, step t: Int, totalSteps: Int) -> Float {
        if t < warmupSteps { return base * Float(t + 1) / Float(warmupSteps) }
        let u = t - warmupSteps
        switch kind {
        case .constant: return base
        case .step: return base * Float(pow(Double(gamma), Double(u / max(stepSize, 1))))
        case .cosine:
            let span = max(totalSteps - warmupSteps, 1)
            let progress = Double(min(u, span)) / Double(span)
            return minimum + (base - minimum) * Float((1 + cos(Double.pi * progress)) / 2)
        }
    }
}
