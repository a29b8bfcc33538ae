import CohortTensor

/// Weight initialisation schemes. Random draws come from the counter-based generator keyed by
/// (seed, layer, parameter), so a model's initial weights do not depend on anything else.
public enum Initializer: String, Sendable, CaseIterable {
    /// torch.nn.Linear / Conv default: weight and bias ~ U(−1/√fan_in, 1/√fan_in).
    /// (PyTorch writes it as kaiming_uniform with a = √5, which reduces to this bound.)
    case pytorch
    /// Glorot & Bengio (2010): weight ~ U(−a, a), a = √(6/(fan_in + fan_out)); bias 0.
    case xavier
    /// He et al. (2015): weight ~ N(0, 2/fan_in), for ReLU networks; bias 0.
    case he
    /// All zeros (only sensible for tests and for the lecture's explicit values).
    case zeros

    public func tensor(for spec: ParameterSpec, seed: UInt64, layer: Int, parameter: Int) -> Tensor {
        let stream = RandomStream(purpose: RandomStream.initialization, a: UInt32(layer), b: UInt32(parameter))
        let fanIn = Float(max(spec.fanIn, 1)), fanOut = Float(max(spec.fanOut, 1))
        switch self {
        case .pytorch:
            let bound = 1 / fanIn.squareRoot()
            return .uniform(spec.shape, low: -bound, high: bound, seed: seed, stream: stream)
        case .xavier:
            if spec.isBias { return .zeros(spec.shape) }
            let bound = (6 / (fanIn + fanOut)).squareRoot()
            return .uniform(spec.shape, low: -bound, high: bound, seed: seed, stream: stream)
        case .he:
            if spec.isBias { return .zeros(spec.shape) }
            return .normal(spec.shape, std: (2 / fanIn).squareRoot(), seed: seed, stream: stream)
        case .zeros:
            return .zeros(spec.shape)
        }
    }
}

extension Sequential {
    /// Fresh parameters in state_dict order.
    public func initialParameters(_ initializer: Initializer, seed: UInt64) -> [Tensor] {
        var perLayerIndex: [Int: Int] = [:]
        return parameterSpecs.map { entry in
            let k = perLayerIndex[entry.layer, default: 0]
            perLayerIndex[entry.layer] = k + 1
            return initializer.tensor(for: entry.spec, seed: seed, layer: entry.layer, parameter: k)
        }
    }
}
