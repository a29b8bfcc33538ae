import CohortTensor

/// [B, ...] → [B, features], as torch.nn.Flatten.
public struct Flatten: Layer {
    public init() {}

    public func outputShape(for input: [Int]) -> Result<[Int], LayerShapeError> { .success([input.reduce(1, *)]) }

    public func callAsFunction(_ x: Variable, parameters: [Variable], context: ForwardContext) -> Variable {
        x.reshaped([x.shape.first ?? 1, x.value.count / max(x.shape.first ?? 1, 1)])
    }

    public var description: String { "Flatten(start_dim=1, end_dim=-1)" }
}
