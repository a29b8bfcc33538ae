import CohortTensor

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
