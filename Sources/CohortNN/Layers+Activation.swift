import CohortTensor

/// The activation functions of the lecture notes, as parameter-free layers.
public enum Activation: String, Layer, CaseIterable, Codable {
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
