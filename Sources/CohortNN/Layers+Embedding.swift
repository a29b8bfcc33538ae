import CohortTensor

/// Token ids [T] → vectors [T, D], as torch.nn.Embedding (weight [N, D], initialised N(0, 1)).
public struct Embedding: Layer {
    public var count, dimension: Int

    public init(count: Int, dimension: Int) { self.count = count; self.dimension = dimension }

    public var parameterSpecs: [ParameterSpec] {
        [ParameterSpec(name: "weight", shape: [count, dimension], fanIn: 1, fanOut: dimension, isBias: false)]
    }

    public func outputShape(for input: [Int]) -> Result<[Int], LayerShapeError> { .success(input + [dimension]) }

    public func callAsFunction(_ x: Variable, parameters p: [Variable], context: ForwardContext) -> Variable {
        p[0].embeddingLookup(x.value)
    }

    public var description: String { "Embedding(\(count), \(dimension))" }
}
