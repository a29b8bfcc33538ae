/// Reverse-mode automatic differentiation on a recorded computational graph.
///
/// Every differentiable op appends one node: the ids of its inputs and a pullback that maps the
/// gradient of its output to gradients of its inputs. Nodes are appended in the order they are
/// computed, which is a topological order (parents before children), so `backward` just walks the
/// nodes in reverse: v̄ᵢ = Σ_{j ∈ children(i)} v̄ⱼ · ∂vⱼ/∂vᵢ (lecture 002, "Back propagation").
/// Gradients accumulate with +=, so a value used twice just works.
public final class Tape {
    /// Maps the output gradient to one gradient per input; `needs[i]` is false for inputs that
    /// need no gradient, whose entry may then be nil (and should not be computed).
    public typealias Pullback = (_ upstream: Tensor, _ needs: [Bool]) -> [Tensor?]

    struct Node {
        let parents: [Int]
        let pullback: Pullback?
    }

    var nodes: [Node] = []
    var gradients: [Tensor?] = []
    /// How many recorded ops read each node: a leaf read once gets its whole gradient from one op.
    var consumerCounts: [Int] = []
    /// Memory given for some leaves' gradients (`leaf(_:target:)`), until an op delivers there.
    var targets: [Int: GradientTarget] = [:]
    /// Leaves whose gradient an op put straight into their target.
    var delivered: Set<Int> = []

    /// False in evaluation: ops then compute values only and record nothing.
    public let isRecording: Bool
    /// Keep the gradients of intermediate values after backward (for the lecture trace).
    public var retainsIntermediateGradients = false

    public init(recording: Bool = true) { isRecording = recording }

    /// A tape that records nothing, for evaluation.
    public static func noGradient() -> Tape { Tape(recording: false) }

    /// A leaf of the graph: an input or a parameter.
    /// With a `target`, an op that computes the leaf's whole gradient as one matrix product may
    /// put it straight there (`Tape+Target.swift`); `wasDelivered` then says so.
    public func leaf(_ value: Tensor, requiresGradient: Bool = true, target: GradientTarget? = nil) -> Variable {
        guard isRecording && requiresGradient else { return Variable(value, id: -1, tape: self) }
        nodes.append(Node(parents: [], pullback: nil))
        gradients.append(nil)
        consumerCounts.append(0)
        if let target { targets[nodes.count - 1] = target }
        return Variable(value, id: nodes.count - 1, tape: self)
    }

    /// A constant: never differentiated.
    public func constant(_ value: Tensor) -> Variable { Variable(value, id: -1, tape: self) }

    /// Records the result of an op. When no input needs a gradient the result is a constant.
    public func record(_ value: Tensor, inputs: [Variable], pullback: @escaping Pullback) -> Variable {
        guard isRecording, inputs.contains(where: { $0.id >= 0 }) else {
            return Variable(value, id: -1, tape: self)
        }
        nodes.append(Node(parents: inputs.map(\.id), pullback: pullback))
        gradients.append(nil)
        consumerCounts.append(0)
        for input in inputs where input.id >= 0 { consumerCounts[input.id] += 1 }
        return Variable(value, id: nodes.count - 1, tape: self)
    }

    /// Backpropagates from `output`, seeded with `seed` (ones when nil, i.e. d output / d output).
    public func backward(from output: Variable, seed: Tensor? = nil) {
        precondition(isRecording, "backward on a tape that records nothing")
        guard output.id >= 0 else { return }
        accumulate(seed ?? Tensor(shape: output.value.shape, repeating: 1), into: output.id)
        for i in stride(from: output.id, through: 0, by: -1) {
            let node = nodes[i]
            guard let pullback = node.pullback, let upstream = gradients[i] else { continue }
            if !retainsIntermediateGradients { gradients[i] = nil }
            let needs = node.parents.map { $0 >= 0 }
            let inputGradients = pullback(upstream, needs)
            for (parent, gradient) in zip(node.parents, inputGradients) where parent >= 0 {
                if let gradient { accumulate(gradient, into: parent) }
            }
        }
    }

    func accumulate(_ gradient: Tensor, into id: Int) {
        if gradients[id] == nil {
            gradients[id] = gradient
        } else {
            gradients[id]!.add(gradient)
        }
    }

    /// The gradient of the last backward output with respect to `v`, or nil if none flowed to it.
    public func gradient(of v: Variable) -> Tensor? {
        v.id >= 0 ? gradients[v.id] : nil
    }

    /// Takes the gradient out of the tape without copying.
    public func takeGradient(of v: Variable) -> Tensor? {
        guard v.id >= 0 else { return nil }
        defer { gradients[v.id] = nil }
        return gradients[v.id]
    }

    public var nodeCount: Int { nodes.count }
}

/// A value on a tape. Ops on variables compute the value now and record how to differentiate it.
public struct Variable {
    public let value: Tensor
    /// Node id on the tape, or -1 for a constant.
    public let id: Int
    public let tape: Tape

    init(_ value: Tensor, id: Int, tape: Tape) {
        self.value = value; self.id = id; self.tape = tape
    }

    public var shape: [Int] { value.shape }
    public var requiresGradient: Bool { id >= 0 }

    /// The gradient that flowed here in the last backward pass.
    public var gradient: Tensor? { tape.gradient(of: self) }
}
