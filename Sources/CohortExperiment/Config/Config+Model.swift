import CohortNN
import CohortTensor
import Foundation

/// `model:` — the input shape, the layers in order, and how the weights start.
package struct ModelConfig: Sendable {
    package var inputShape: [Int]
    package var layers: [LayerConfig]
    package var initializer: Initializer
    var initFrom: String?

    /// The model without its weights (what a worker rebuilds).
    package var spec: ModelSpec { ModelSpec(inputShape: inputShape, layers: layers.map(\.spec)) }
}

/// One entry of `model.layers`.
package struct LayerConfig: Sendable {
    package var spec: LayerSpec
    /// Explicit initial values by local parameter name ("weight", "bias").
    package var values: [String: Tensor]
}

extension ExperimentConfig {
    static func readModel(_ node: ConfigNode) throws(ConfigError) -> ModelConfig {
        let inputNode = try node.required("input")
        let inputShape = inputNode.isSequence ? try inputNode.elements().map { e throws(ConfigError) in try e.int(min: 1) }
                                              : [try inputNode.int(min: 1)]
        let initializer = try node.optional("init")?.choice(Initializer.self) ?? .pytorch
        var initFrom: String?
        if let fromNode = try node.optional("init_from") {
            initFrom = try fromNode.string()
            guard FileManager.default.fileExists(atPath: initFrom!) else { throw fromNode.error("no such file: \(initFrom!)") }
        }
        let layersNode = try node.required("layers")
        let layers = try readLayers(layersNode, inputShape: inputShape).layers
        guard !layers.isEmpty else { throw layersNode.error("needs at least one layer") }
        return ModelConfig(inputShape: inputShape, layers: layers, initializer: initializer, initFrom: initFrom)
    }

    /// The layers of a list, each checked against the shape the previous one produces (an error
    /// names the entry that does not fit), and the shape after the last.
    static func readLayers(_ list: ConfigNode, inputShape: [Int]) throws(ConfigError) -> (layers: [LayerConfig], outputShape: [Int]) {
        var shape = inputShape
        var layers: [LayerConfig] = []
        for entry in try list.elements() {
            let layer = try readLayer(entry, inputShape: shape)
            shape = try build(layer.spec, inputShape: shape, at: entry).outputShape
            layers.append(layer)
        }
        return (layers, shape)
    }

    /// The layer a spec makes, and its output shape, or an error at `entry`.
    static func build(_ spec: LayerSpec, inputShape: [Int], at entry: ConfigNode) throws(ConfigError) -> (layer: any Layer, outputShape: [Int]) {
        let layer: any Layer
        do { layer = try spec.makeLayer(inputShape: inputShape) } catch { throw entry.error(error.description) }
        switch layer.outputShape(for: inputShape) {
        case .success(let next): return (layer, next)
        case .failure(let error): throw entry.error(error.description)
        }
    }

    static let layerNames = ["linear", "conv2d", "maxpool2d", "avgpool2d", "flatten", "dropout", "residual",
                             "rnn", "lstm", "gru", "gru_pytorch", "embedding"] + Activation.allCases.map(\.rawValue)

    /// A layer entry is either a bare name (`relu`, `flatten`) or a one-key mapping with settings
    /// (`linear: {out: 10}`). `inputShape` is the per-sample shape arriving at the layer.
    static func readLayer(_ entry: ConfigNode, inputShape: [Int]) throws(ConfigError) -> LayerConfig {
        if entry.node.scalar != nil {
            let name = try entry.string()
            if name == "flatten" { return LayerConfig(spec: .flatten, values: [:]) }
            if let activation = Activation(rawValue: name) { return LayerConfig(spec: .activation(activation), values: [:]) }
            if layerNames.contains(name) { throw entry.error("\(name) needs its settings, e.g. '\(name): {…}' (see configs/README.md)") }
            throw unknownLayer(name, at: entry)
        }
        guard entry.isMapping, entry.keys.count == 1, let kind = entry.keys.first else {
            throw entry.error("a layer is a name (relu) or one key with settings (linear: {out: 10})")
        }
        let settings = try entry.required(kind)
        let spec: LayerSpec
        switch kind {
        case "linear": spec = try readLinear(settings, inputShape: inputShape)
        case "conv2d": spec = try readConv2D(settings, inputShape: inputShape, at: entry)
        case "maxpool2d", "avgpool2d":
            let k = try settings.required("kernel").int(min: 1)
            spec = .pool2d(kind == "maxpool2d" ? .max : .average, kernel: k, stride: try settings.optional("stride")?.int(min: 1) ?? k)
        case "dropout":
            let rate = settings.isMapping ? try settings.required("p").double(min: 0, max: 0.99) : try settings.double(min: 0, max: 0.99)
            spec = .dropout(rate: Float(rate))
        case "rnn", "lstm", "gru", "gru_pytorch": spec = try readRecurrent(kind, settings, inputShape: inputShape, at: entry)
        case "embedding":
            spec = .embedding(count: try settings.required("count").int(min: 1), dimension: try settings.required("dim").int(min: 1))
        case "residual": return LayerConfig(spec: try readResidual(settings, inputShape: inputShape), values: [:])
        default: throw unknownLayer(kind, at: entry)
        }
        // Layers with weights may give their initial values (`init:`); others have no such key.
        let layer = try build(spec, inputShape: inputShape, at: entry).layer
        guard !layer.parameterSpecs.isEmpty else { return LayerConfig(spec: spec, values: [:]) }
        return LayerConfig(spec: spec, values: try explicitValues(settings, layer: layer))
    }

    static func readLinear(_ settings: ConfigNode, inputShape: [Int]) throws(ConfigError) -> LayerSpec {
        .linear(inFeatures: try settings.optional("in")?.int(min: 1) ?? inputShape.reduce(1, *),
                outFeatures: try settings.required("out").int(min: 1),
                bias: try settings.optional("bias")?.bool() ?? true)
    }

    static func readConv2D(_ settings: ConfigNode, inputShape: [Int], at entry: ConfigNode) throws(ConfigError) -> LayerSpec {
        guard inputShape.count == 3 else { throw entry.error("conv2d needs [channels, height, width] input, got \(inputShape)") }
        return .conv2d(inChannels: try settings.optional("in")?.int(min: 1) ?? inputShape[0],
                       outChannels: try settings.required("out").int(min: 1),
                       kernel: try settings.required("kernel").int(min: 1),
                       stride: try settings.optional("stride")?.int(min: 1) ?? 1,
                       padding: try settings.optional("padding")?.int(min: 0) ?? 0,
                       bias: try settings.optional("bias")?.bool() ?? true)
    }

    static func readRecurrent(_ kind: String, _ settings: ConfigNode, inputShape: [Int], at entry: ConfigNode) throws(ConfigError) -> LayerSpec {
        guard inputShape.count == 2 else { throw entry.error("\(kind) needs [time, features] input, got \(inputShape)") }
        return .recurrent(RecurrentCell(rawValue: kind)!, inputSize: inputShape[1],
                          hiddenSize: try settings.required("hidden").int(min: 1),
                          layers: try settings.optional("layers")?.int(min: 1, max: 16) ?? 1,
                          returnSequences: try settings.optional("sequences")?.bool() ?? false)
    }

    /// `residual: {layers: […]}`: the block's layers are read like the model's, then the block
    /// as a whole is checked (its shortcut must fit).
    static func readResidual(_ settings: ConfigNode, inputShape: [Int]) throws(ConfigError) -> LayerSpec {
        let block = try readLayers(try settings.required("layers"), inputShape: inputShape).layers.map(\.spec)
        let spec = LayerSpec.residual(block: block)
        do { _ = try spec.makeLayer(inputShape: inputShape) } catch { throw settings.error(error.description) }
        return spec
    }

    static func unknownLayer(_ kind: String, at entry: ConfigNode) -> ConfigError {
        var message = "unknown layer '\(kind)'"
        if let suggestion = closest(to: kind, among: layerNames) { message += "; did you mean '\(suggestion)'?" }
        return entry.error(message + " (known: \(layerNames.joined(separator: ", ")))")
    }

    /// `init: {weight: [[…]], bias: […]}`: explicit initial values in PyTorch's layout.
    static func explicitValues(_ settings: ConfigNode, layer: any Layer) throws(ConfigError) -> [String: Tensor] {
        var values: [String: Tensor] = [:]
        guard let initNode = try settings.optional("init") else { return values }
        for spec in layer.parameterSpecs {
            guard let valueNode = try initNode.optional(spec.name) else { continue }
            let (shape, v) = try valueNode.numbers()
            guard v.count == spec.shape.reduce(1, *), shape.reduce(1, *) == v.count else {
                throw valueNode.error("needs shape \(spec.shape) (PyTorch layout), got \(shape)")
            }
            values[spec.name] = Tensor(shape: spec.shape, v)
        }
        return values
    }
}
