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
    /// The first layer's output, when it was computed already for this batch's rows together
    /// with other micro-batches' (`MicroBatchGradient.firstLayerOutputs`). Only the model's first
    /// layer, a `Linear`, sees it: `nested` drops it.
    public var precomputedOutput: Tensor?

    public init(training: Bool, seed: UInt64 = 0, step: Int = 0, sampleIndices: [Int] = []) {
        self.training = training; self.seed = seed; self.step = step; self.sampleIndices = sampleIndices
    }

    /// The context of the `index`-th layer inside the current one.
    public func nested(_ index: Int) -> ForwardContext {
        var c = self
        c.layerPath = layerPath << 6 | UInt32(index + 1)
        c.precomputedOutput = nil
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
