import CohortTensor

/// Max or average pooling over square windows (torch.nn.MaxPool2d / AvgPool2d, no padding).
public struct Pool2D: Layer {
    public enum Kind: String, Sendable, Codable { case max, average }
    public var kind: Kind
    public var kernel, stride: Int

    public init(_ kind: Kind, kernel: Int, stride: Int? = nil) {
        self.kind = kind; self.kernel = kernel; self.stride = stride ?? kernel
    }

    public func outputShape(for input: [Int]) -> Result<[Int], LayerShapeError> {
        guard input.count == 3, input[1] >= kernel, input[2] >= kernel else {
            return .failure(LayerShapeError("\(description) needs [channels, height, width] of at least \(kernel)×\(kernel), got \(input)"))
        }
        return .success([input[0], (input[1] - kernel) / stride + 1, (input[2] - kernel) / stride + 1])
    }

    public func callAsFunction(_ x: Variable, parameters: [Variable], context: ForwardContext) -> Variable {
        kind == .max ? x.maxPool2d(kernel: kernel, stride: stride) : x.avgPool2d(kernel: kernel, stride: stride)
    }

    public var description: String {
        "\(kind == .max ? "MaxPool2d" : "AvgPool2d")(kernel_size=\(kernel), stride=\(stride))"
    }
}
