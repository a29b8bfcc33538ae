import CohortTensor

/// Layers applied in order, named like torch.nn.Sequential: parameter `k.weight` belongs to the
/// layer at index k, counting parameter-free layers too (`0.weight`, `0.bias`, `2.weight`, ...).
public struct Sequential: Sendable, CustomStringConvertible {
    public let layers: [any Layer]
    /// Shape of one input sample (batch axis excluded).
    public let inputShape: [Int]

    /// Builds the model, checking that every layer accepts the shape the previous one produces.
    public init(inputShape: [Int], layers: [any Layer]) throws(LayerShapeError) {
        _ = try Self.outputShape(of: layers, for: inputShape, naming: "layer")
        self.inputShape = inputShape
        self.layers = layers
    }

    /// The shape after `layers` in order; the error names the first layer that does not fit.
    public static func outputShape(of layers: [any Layer], for input: [Int], naming: String) throws(LayerShapeError) -> [Int] {
        var shape = input
        for (index, layer) in layers.enumerated() {
            switch layer.outputShape(for: shape) {
            case .success(let next): shape = next
            case .failure(let error): throw LayerShapeError("\(naming) \(index): \(error.description)")
            }
        }
        return shape
    }

    /// Per-sample output shape.
    public var outputShape: [Int] {
        layers.reduce(inputShape) { shape, layer in (try? layer.outputShape(for: shape).get()) ?? shape }
    }

    /// Every parameter in state_dict order: its PyTorch name, its layer index and its spec.
    public var parameterSpecs: [(name: String, layer: Int, spec: ParameterSpec)] {
        layers.enumerated().flatMap { index, layer in
            layer.parameterSpecs.map { (name: "\(index).\($0.name)", layer: index, spec: $0) }
        }
    }

    public var parameterNames: [String] { parameterSpecs.map(\.name) }

    /// Runs the layers on a batch. `parameters` holds one variable per entry of `parameterSpecs`.
    /// `observe` sees each layer's output (the lecture trace prints them). Without it, a
    /// convolution followed by a ReLU runs as one fused step (`Conv2D.withReLU`): the same bits,
    /// one pass fewer over the activations each way.
    public func callAsFunction(
        _ x: Variable, parameters: [Variable], context: ForwardContext,
        observe: ((Int, Variable) -> Void)? = nil
    ) -> Variable {
        precondition(parameters.count == parameterSpecs.count,
                     "model has \(parameterSpecs.count) parameters, got \(parameters.count)")
        // Samples may arrive in their file's shape (MNIST: 1×28×28) for a model that reads them
        // flat (input 784): the element counts were checked when the config was validated.
        var h = Array(x.shape.dropFirst()) == inputShape ? x : x.reshaped([x.shape.first ?? 1] + inputShape)
        var context = context
        context.layerPath = 0
        var offset = 0, index = 0
        while index < layers.count {
            let layer = layers[index], n = layer.parameterSpecs.count
            var layerContext = context.nested(index)
            if index == 0 { layerContext.precomputedOutput = context.precomputedOutput }
            let layerParameters = Array(parameters[offset..<offset + n])
            offset += n
            if observe == nil, let convolution = layer as? Conv2D, index + 1 < layers.count,
               layers[index + 1] as? Activation == .relu {
                h = convolution.withReLU(h, parameters: layerParameters)
                index += 2
                continue
            }
            h = layer(h, parameters: layerParameters, context: layerContext)
            observe?(index, h)
            index += 1
        }
        return h
    }

    /// Evaluation: no graph is recorded.
    public func predict(_ x: Tensor, parameters: [Tensor]) -> Tensor {
        let tape = Tape.noGradient()
        return self(tape.constant(x), parameters: parameters.map(tape.constant), context: .evaluation).value
    }

    public var description: String {
        "Sequential(\n" + layers.enumerated().map { "  (\($0.offset)): \($0.element)" }.joined(separator: "\n") + "\n)"
    }
}
