import CohortTensor

/// 2-D convolution as torch.nn.Conv2d: weight [out, in, kh, kw], bias [out], zero padding.
public struct Conv2D: Layer {
    public var inChannels, outChannels, kernel, stride, padding: Int
    public var hasBias: Bool

    public init(inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0, bias: Bool = true) {
        self.inChannels = inChannels; self.outChannels = outChannels; self.kernel = kernel
        self.stride = stride; self.padding = padding; self.hasBias = bias
    }

    public var parameterSpecs: [ParameterSpec] {
        let fanIn = inChannels * kernel * kernel, fanOut = outChannels * kernel * kernel
        let weight = ParameterSpec(name: "weight", shape: [outChannels, inChannels, kernel, kernel], fanIn: fanIn, fanOut: fanOut, isBias: false)
        return hasBias ? [weight, ParameterSpec(name: "bias", shape: [outChannels], fanIn: fanIn, fanOut: fanOut, isBias: true)] : [weight]
    }

    public func outputShape(for input: [Int]) -> Result<[Int], LayerShapeError> {
        guard input.count == 3, input[0] == inChannels else {
            return .failure(LayerShapeError("\(description) needs input [\(inChannels), height, width], got \(input)"))
        }
        let h = ConvGeometry.outputSize(input[1], kernel: kernel, stride: stride, padding: padding)
        let w = ConvGeometry.outputSize(input[2], kernel: kernel, stride: stride, padding: padding)
        guard h > 0, w > 0 else { return .failure(LayerShapeError("\(description) leaves no output from \(input)")) }
        return .success([outChannels, h, w])
    }

    public func callAsFunction(_ x: Variable, parameters p: [Variable], context: ForwardContext) -> Variable {
        x.conv2d(weight: p[0], bias: hasBias ? p[1] : nil, stride: stride, padding: padding)
    }

    /// This convolution and a ReLU after it, as one step (`Sequential` fuses the pair).
    public func withReLU(_ x: Variable, parameters p: [Variable]) -> Variable {
        x.conv2d(weight: p[0], bias: hasBias ? p[1] : nil, stride: stride, padding: padding, relu: true)
    }

    public var description: String {
        "Conv2d(\(inChannels), \(outChannels), kernel_size=(\(kernel), \(kernel)), stride=(\(stride), \(stride)), padding=(\(padding), \(padding)))"
    }
}
