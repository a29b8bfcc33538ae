import CohortTensor

/// Dropout with drop probability p (inverted: identity in evaluation).
public struct Dropout: Layer {
    public var rate: Float

    public init(rate: Float) { self.rate = rate }

    public func outputShape(for input: [Int]) -> Result<[Int], LayerShapeError> { .success(input) }

    public func callAsFunction(_ x: Variable, parameters: [Variable], context: ForwardContext) -> Variable {
        guard context.training, rate > 0 else { return x }
        let indices = context.sampleIndices.count == (x.shape.first ?? 0) ? context.sampleIndices : Array(0..<(x.shape.first ?? 0))
        return x.dropout(rate: rate, seed: context.seed, step: context.step, layer: context.layerPath, sampleIndices: indices)
    }

    public var description: String { "Dropout(p=\(rate))" }
}
