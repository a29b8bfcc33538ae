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
