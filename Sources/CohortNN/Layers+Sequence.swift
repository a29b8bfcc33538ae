import CohortTensor

/// RNN, LSTM or GRU over batch-first sequences [B, T, features], one or more stacked layers,
/// with torch.nn.RNN/LSTM/GRU's parameter names (weight_ih_l0, weight_hh_l0, bias_ih_l0, ...).
public struct Recurrent: Layer {
    public var cell: RecurrentCell
    public var inputSize, hiddenSize, layers: Int
    /// Output the last step's hidden state [H] (for classification) or every step's [T, H].
    public var returnSequences: Bool

    public init(_ cell: RecurrentCell, inputSize: Int, hiddenSize: Int, layers: Int = 1, returnSequences: Bool = false) {
        self.cell = cell; self.inputSize = inputSize; self.hiddenSize = hiddenSize
        self.layers = layers; self.returnSequences = returnSequences
    }

    public var parameterSpecs: [ParameterSpec] {
        let g = cell.gates * hiddenSize
        // PyTorch initialises every recurrent weight and bias from U(−1/√H, 1/√H): fan_in = H.
        return (0..<layers).flatMap { l in [
            ParameterSpec(name: "weight_ih_l\(l)", shape: [g, l == 0 ? inputSize : hiddenSize], fanIn: hiddenSize, fanOut: g, isBias: false),
            ParameterSpec(name: "weight_hh_l\(l)", shape: [g, hiddenSize], fanIn: hiddenSize, fanOut: g, isBias: false),
            ParameterSpec(name: "bias_ih_l\(l)", shape: [g], fanIn: hiddenSize, fanOut: g, isBias: true),
            ParameterSpec(name: "bias_hh_l\(l)", shape: [g], fanIn: hiddenSize, fanOut: g, isBias: true),
        ] }
    }

    public func outputShape(for input: [Int]) -> Result<[Int], LayerShapeError> {
        guard input.count == 2, input[1] == inputSize else {
            return .failure(LayerShapeError("\(description) needs input [time, \(inputSize)], got \(input)"))
        }
        return .success(returnSequences ? [input[0], hiddenSize] : [hiddenSize])
    }

    public func callAsFunction(_ x: Variable, parameters p: [Variable], context: ForwardContext) -> Variable {
        var h = x
        for l in 0..<layers {
            h = h.recurrent(cell, weightIH: p[4 * l], weightHH: p[4 * l + 1], biasIH: p[4 * l + 2], biasHH: p[4 * l + 3])
        }
        return returnSequences ? h : h.lastStep()
    }

    public var description: String {
        let name = switch cell { case .rnn: "RNN"; case .lstm: "LSTM"; case .gru: "GRU[lecture]"; case .gruPyTorch: "GRU" }
        return "\(name)(\(inputSize), \(hiddenSize), num_layers=\(layers), batch_first=True)"
    }
}

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

/// y = F(x) + x (lecture 001, ResNet), with a learned linear projection of x when F changes the
/// shape (a Linear for features, a 1×1 convolution for images). Names: `block.k.…`, `shortcut.…`.
public struct Residual: Layer {
    public var block: [any Layer]
    public var shortcut: (any Layer)?

    public init(inputShape: [Int], block: [any Layer]) throws(LayerShapeError) {
        let shape = try Sequential.outputShape(of: block, for: inputShape, naming: "residual block layer")
        self.block = block
        if shape == inputShape {
            shortcut = nil
        } else if inputShape.count == 1 && shape.count == 1 {
            shortcut = Linear(inFeatures: inputShape[0], outFeatures: shape[0], bias: false)
        } else if inputShape.count == 3 && shape.count == 3 {
            let stride = inputShape[1] / max(shape[1], 1)
            shortcut = Conv2D(inChannels: inputShape[0], outChannels: shape[0], kernel: 1, stride: max(stride, 1), bias: false)
        } else {
            throw LayerShapeError("residual block maps \(inputShape) to \(shape); no projection fits")
        }
    }

    public var parameterSpecs: [ParameterSpec] {
        block.enumerated().flatMap { i, layer in layer.parameterSpecs.map { $0.prefixed("block.\(i)") } }
            + (shortcut?.parameterSpecs.map { $0.prefixed("shortcut") } ?? [])
    }

    public func outputShape(for input: [Int]) -> Result<[Int], LayerShapeError> {
        if let shortcut, case .failure(let e) = shortcut.outputShape(for: input) { return .failure(e) }
        return Result { () throws(LayerShapeError) in try Sequential.outputShape(of: block, for: input, naming: "residual block layer") }
    }

    public func callAsFunction(_ x: Variable, parameters p: [Variable], context: ForwardContext) -> Variable {
        var h = x
        var offset = 0
        for (i, layer) in block.enumerated() {
            let n = layer.parameterSpecs.count
            h = layer(h, parameters: Array(p[offset..<offset + n]), context: context.nested(i))
            offset += n
        }
        let skip = shortcut.map { $0(x, parameters: Array(p[offset...]), context: context.nested(block.count)) } ?? x
        return h + skip
    }

    public var description: String {
        "Residual(" + block.map(\.description).joined(separator: ", ") + (shortcut.map { "; shortcut \($0)" } ?? "") + ")"
    }
}
