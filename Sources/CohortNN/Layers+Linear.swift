import CohortTensor

/// y = x·Wᵀ + b with W of shape out×in, as torch.nn.Linear.
public struct Linear: Layer {
    public var inFeatures: Int
    public var outFeatures: Int
    public var hasBias: Bool

    public init(inFeatures: Int, outFeatures: Int, bias: Bool = true) {
        self.inFeatures = inFeatures; self.outFeatures = outFeatures; self.hasBias = bias
    }

    public var parameterSpecs: [ParameterSpec] {
        let weight = ParameterSpec(name: "weight", shape: [outFeatures, inFeatures],
                                   fanIn: inFeatures, fanOut: outFeatures, isBias: false)
        guard hasBias else { return [weight] }
        return [weight, ParameterSpec(name: "bias", shape: [outFeatures], fanIn: inFeatures,
                                      fanOut: outFeatures, isBias: true)]
    }

    public func outputShape(for input: [Int]) -> Result<[Int], LayerShapeError> {
        let features = input.reduce(1, *)
        guard input.count == 1, features == inFeatures else {
            return .failure(LayerShapeError("Linear(\(inFeatures)→\(outFeatures)) needs \(inFeatures) input features, got shape \(input)"))
        }
        return .success([outFeatures])
    }

    public func callAsFunction(_ x: Variable, parameters p: [Variable], context: ForwardContext) -> Variable {
        x.linear(weight: p[0], bias: hasBias ? p[1] : nil, precomputed: context.precomputedOutput)
    }

    public var description: String { "Linear(in_features=\(inFeatures), out_features=\(outFeatures), bias=\(hasBias))" }
}
