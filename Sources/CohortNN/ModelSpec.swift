import CohortTensor

/// A layer described by its settings alone, without weights: what a config builds and what the
/// coordinator sends to a worker (WELCOME) so both build the same layer.
///
/// It is `Codable`, so the wire encodes it with a maintained binary format and no code of ours;
/// a new layer adds a case here and to `makeLayer`.
public indirect enum LayerSpec: Sendable, Equatable, Codable {
    case linear(inFeatures: Int, outFeatures: Int, bias: Bool)
    case conv2d(inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int, bias: Bool)
    case pool2d(Pool2D.Kind, kernel: Int, stride: Int)
    case flatten
    case activation(Activation)
    case dropout(rate: Float)
    case recurrent(RecurrentCell, inputSize: Int, hiddenSize: Int, layers: Int, returnSequences: Bool)
    case embedding(count: Int, dimension: Int)
    /// The block's layers; the shortcut follows from the shapes (see `Residual`).
    case residual(block: [LayerSpec])

    /// The largest size a spec may name: far above any model this trainer can hold, and far
    /// enough below Int's range that products of sizes cannot overflow.
    static let sizeLimit = 1 << 24

    /// The layer, for samples of shape `inputShape` arriving at it. Every size is checked first,
    /// so a spec from the network cannot make a layer that traps.
    public func makeLayer(inputShape: [Int]) throws(LayerShapeError) -> any Layer {
        try checkSizes()
        switch self {
        case let .linear(inFeatures, outFeatures, bias):
            return Linear(inFeatures: inFeatures, outFeatures: outFeatures, bias: bias)
        case let .conv2d(inChannels, outChannels, kernel, stride, padding, bias):
            return Conv2D(inChannels: inChannels, outChannels: outChannels, kernel: kernel, stride: stride,
                          padding: padding, bias: bias)
        case let .pool2d(kind, kernel, stride):
            return Pool2D(kind, kernel: kernel, stride: stride)
        case .flatten:
            return Flatten()
        case .activation(let activation):
            return activation
        case .dropout(let rate):
            return Dropout(rate: rate)
        case let .recurrent(cell, inputSize, hiddenSize, layers, returnSequences):
            return Recurrent(cell, inputSize: inputSize, hiddenSize: hiddenSize, layers: layers, returnSequences: returnSequences)
        case let .embedding(count, dimension):
            return Embedding(count: count, dimension: dimension)
        case .residual(let block):
            var shape = inputShape
            var layers: [any Layer] = []
            for spec in block {
                let layer = try spec.makeLayer(inputShape: shape)
                shape = try layer.outputShape(for: shape).get()
                layers.append(layer)
            }
            return try Residual(inputShape: inputShape, block: layers)
        }
    }

    /// Sizes at least 1 (padding at least 0), at most `sizeLimit`; a drop rate in [0, 1).
    func checkSizes() throws(LayerShapeError) {
        let sizes: [Int]
        switch self {
        case let .linear(inFeatures, outFeatures, _): sizes = [inFeatures, outFeatures]
        case let .conv2d(inChannels, outChannels, kernel, stride, padding, _):
            sizes = [inChannels, outChannels, kernel, stride, padding + 1]
        case let .pool2d(_, kernel, stride): sizes = [kernel, stride]
        case let .recurrent(_, inputSize, hiddenSize, layers, _): sizes = [inputSize, hiddenSize, layers]
        case let .embedding(count, dimension): sizes = [count, dimension]
        case .dropout(let rate):
            guard rate >= 0 && rate < 1 else { throw LayerShapeError("dropout rate \(rate) outside [0, 1)") }
            sizes = []
        case .flatten, .activation, .residual: sizes = []
        }
        if let bad = sizes.first(where: { $0 < 1 || $0 > Self.sizeLimit }) {
            throw LayerShapeError("\(self) has a size of \(bad), outside 1...\(Self.sizeLimit)")
        }
    }
}

/// A whole model without weights: the shape of one input sample and the layers in order.
public struct ModelSpec: Sendable, Equatable, Codable {
    public var inputShape: [Int]
    public var layers: [LayerSpec]

    public init(inputShape: [Int], layers: [LayerSpec]) {
        self.inputShape = inputShape; self.layers = layers
    }

    /// The model, with every layer checked against the shape the previous one produces.
    public func makeModel() throws(LayerShapeError) -> Sequential {
        guard !inputShape.isEmpty, inputShape.count <= 8,
              inputShape.allSatisfy({ $0 >= 1 && $0 <= LayerSpec.sizeLimit }) else {
            throw LayerShapeError("input shape \(inputShape) is not 1 to 8 sizes of at least 1")
        }
        var shape = inputShape
        var built: [any Layer] = []
        for (index, spec) in layers.enumerated() {
            let layer: any Layer
            do { layer = try spec.makeLayer(inputShape: shape) } catch {
                throw LayerShapeError("layer \(index): \(error.description)")
            }
            switch layer.outputShape(for: shape) {
            case .success(let next): shape = next
            case .failure(let error): throw LayerShapeError("layer \(index): \(error.description)")
            }
            built.append(layer)
        }
        return try Sequential(inputShape: inputShape, layers: built)
    }
}
