import CohortTensor

/// What a layer may need to know besides its input: whether this is training or evaluation, and
/// the keys of counter-based randomness (dropout).
public struct ForwardContext: Sendable {
    public var training: Bool
    public var seed: UInt64
    public var step: Int
    /// Global dataset index of each row of the batch, so random masks follow the sample, not the worker.
    public var sampleIndices: [Int]
    /// Which layer is running (its index, nested layers below it), to key its random numbers.
    public var layerPath: UInt32 = 0

    public init(training: Bool, seed: UInt64 = 0, step: Int = 0, sampleIndices: [Int] = []) {
        self.training = training; self.seed = seed; self.step = step; self.sampleIndices = sampleIndices
    }

    /// The context of the `index`-th layer inside the current one.
    public func nested(_ index: Int) -> ForwardContext {
        var c = self
        c.layerPath = layerPath << 6 | UInt32(index + 1)
        return c
    }

    public static let evaluation = ForwardContext(training: false)
}

/// A named parameter slot of a layer: PyTorch's local name ("weight", "bias") and its shape.
public struct ParameterSpec: Sendable, Equatable {
    public var name: String
    public var shape: [Int]
    /// fan_in and fan_out as PyTorch computes them for initialisation.
    public var fanIn: Int
    public var fanOut: Int
    public var isBias: Bool

    public init(name: String, shape: [Int], fanIn: Int, fanOut: Int, isBias: Bool) {
        self.name = name; self.shape = shape; self.fanIn = fanIn; self.fanOut = fanOut; self.isBias = isBias
    }
}

/// A building block of a Sequential model. Layers are small values: they hold their
/// hyper-parameters, while the model holds the parameter tensors.
public protocol Layer: Sendable, CustomStringConvertible {
    /// The parameters in PyTorch's state_dict order.
    var parameterSpecs: [ParameterSpec] { get }
    /// Output shape for one sample of the given shape (batch axis excluded), or an error message.
    func outputShape(for input: [Int]) -> Result<[Int], LayerShapeError>
    /// The forward pass on a batch; `parameters` are the variables of `parameterSpecs`, in order.
    func callAsFunction(_ x: Variable, parameters: [Variable], context: ForwardContext) -> Variable
}

extension Layer {
    public var parameterSpecs: [ParameterSpec] { [] }
}

public struct LayerShapeError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension ParameterSpec {
    /// The same parameter inside a container: "weight" → "block.0.weight".
    public func prefixed(_ prefix: String) -> ParameterSpec {
        var s = self
        s.name = "\(prefix).\(name)"
        return s
    }
}

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
        x.linear(weight: p[0], bias: hasBias ? p[1] : nil)
    }

    public var description: String { "Linear(in_features=\(inFeatures), out_features=\(outFeatures), bias=\(hasBias))" }
}

/// The activation functions of the lecture notes, as parameter-free layers.
public enum Activation: String, Layer, CaseIterable {
    case identity, sigmoid, tanh, relu, softplus
    case hardThreshold = "step"
    case sign

    public func outputShape(for input: [Int]) -> Result<[Int], LayerShapeError> { .success(input) }

    public func callAsFunction(_ x: Variable, parameters: [Variable], context: ForwardContext) -> Variable {
        switch self {
        case .identity: x
        case .sigmoid: x.sigmoid()
        case .tanh: x.tanh()
        case .relu: x.relu()
        case .softplus: x.softplus()
        case .hardThreshold: x.hardThreshold()
        case .sign: x.sign()
        }
    }

    public var description: String {
        switch self {
        case .identity: "Identity()"
        case .sigmoid: "Sigmoid()"
        case .tanh: "Tanh()"
        case .relu: "ReLU()"
        case .softplus: "Softplus()"
        case .hardThreshold: "Step()"
        case .sign: "Sign()"
        }
    }
}
