import CohortTensor
import Dispatch

/// The per-parameter rule of an optimizer. `Optimizer` below does the bookkeeping (state per
/// parameter, step count), so a rule is only its update formula.
public protocol OptimizerRule: Sendable {
    /// Names of the state tensors kept per parameter (saved in checkpoints, PyTorch's names).
    var stateNames: [String] { get }
    /// Updates one parameter in place from its gradient, which is `scale · gradient`: the
    /// coordinator folds the ÷ B of the mean and the clipping factor into `scale`, so the
    /// gradient is read once instead of being rescaled in passes of its own.
    /// `step` counts from 1 (the first update), as PyTorch's Adam does.
    func update(_ parameter: inout Tensor, gradient: Tensor, scale: Float, state: inout [Tensor], step: Int, lr: Float)
}

/// An optimizer over a model's parameters: the rule plus its state and the step count.
public struct Optimizer: Sendable {
    public var rule: any OptimizerRule
    public var learningRate: Float
    /// One array of state tensors per parameter, in parameter order.
    public var state: [[Tensor]]
    /// Number of updates applied so far.
    public var step: Int = 0

    public init(rule: any OptimizerRule, learningRate: Float, parameters: [Tensor]) {
        self.rule = rule
        self.learningRate = learningRate
        self.state = parameters.map { p in rule.stateNames.map { _ in Tensor.zeros(p.shape) } }
    }

    /// Threads for the update of a large parameter. The coordinator, whose workers are idle while
    /// it updates, uses every core; elsewhere one. Every rule is elementwise, so cutting a tensor
    /// into contiguous pieces changes no result.
    package var lanes = 1

    /// Applies one update to every parameter, with gradient `scale · gradients[i]`.
    public mutating func apply(to parameters: inout [Tensor], gradients: [Tensor], scale: Float = 1) {
        precondition(parameters.count == gradients.count, "\(parameters.count) parameters, \(gradients.count) gradients")
        step += 1
        for i in parameters.indices {
            let n = parameters[i].count
            guard lanes > 1, n >= Self.parallelMinimum else {
                rule.update(&parameters[i], gradient: gradients[i], scale: scale, state: &state[i], step: step, lr: learningRate)
                continue
            }
            // Views of contiguous pieces (whole cache lines each); each lane updates its own.
            // Addresses as integers: the closure below is @Sendable, and each lane touches only its piece.
            let p = Int(bitPattern: parameters[i].mutablePointer)
            let g = Int(bitPattern: gradients[i].pointer)
            let states = state[i].indices.map { Int(bitPattern: state[i][$0].mutablePointer) }
            let (rule, step, lr, lanes) = (rule, step, learningRate, lanes)
            let keepAlive = KeepAlive()
            let piece = (n / lanes + 15) / 16 * 16
            withExtendedLifetime((parameters[i], gradients[i], state[i])) {
                DispatchQueue.concurrentPerform(iterations: lanes) { lane in
                    let lo = lane * piece, hi = Swift.min(n, lo + piece)
                    guard lo < hi else { return }
                    func view(_ address: Int) -> Tensor {
                        Tensor(borrowing: UnsafeMutableRawPointer(bitPattern: address + 4 * lo)!, shape: [hi - lo], owner: keepAlive)
                    }
                    var parameter = view(p)
                    var viewState = states.map(view)
                    rule.update(&parameter, gradient: view(g), scale: scale, state: &viewState, step: step, lr: lr)
                }
            }
        }
    }

    /// Below this many elements a parameter is updated on one thread.
    static let parallelMinimum = 1 << 16

    /// The owner of the views above: the memory belongs to tensors kept alive around the loop.
    final class KeepAlive: Sendable {}
}
