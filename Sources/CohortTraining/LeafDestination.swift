import CohortTensor

/// Where a micro-batch's gradients go.
///
/// The fixed tree's lowest additions are between two leaves, left + right. Computing the right
/// leaf's weight gradients straight into the left's memory, by the product itself, gives the
/// same bits with one pass over the model instead of three (`BLAS.addsProductExactly`). A
/// worker's first leaf can likewise be written straight into its shared-memory slot.
package enum LeafDestination: Sendable {
    /// New tensors.
    case fresh
    /// Overwrite these tensors (one per parameter, of the parameters' shapes).
    case write([Tensor])
    /// Add to these tensors, fl(old + gradient), which is the tree's addition of two nodes in
    /// float32. Only for float32 trees: a bfloat16 tree rounds both operands first.
    case add(to: [Tensor])

    var tensors: [Tensor] {
        switch self {
        case .fresh: []
        case .write(let tensors), .add(to: let tensors): tensors
        }
    }

    /// The tape's targets: the tensors' memory, written through their own pointers (the caller
    /// hands over tensors nobody else reads or writes during the pass).
    ///
    /// With `deferringFirst`, the first parameter (a linear layer's weight) is not computed at
    /// all: its factors go to the sink, and this destination's first tensor is not touched.
    func gradientTargets(for parameters: [Tensor], deferringFirst sink: DeferredProduct? = nil) -> [GradientTarget?] {
        let deferred = sink.map { GradientTarget(deferringTo: $0, count: parameters[0].count) }
        let tensors = tensors
        guard !tensors.isEmpty else { return deferred.map { [$0] } ?? [] }
        precondition(tensors.count == parameters.count, "a destination needs one tensor per parameter")
        let adds = if case .add = self { true } else { false }
        let written = deferred == nil ? tensors[...] : tensors.dropFirst()
        precondition(Set(written.map(\.pointer)).count == written.count, "destination tensors share memory")
        return zip(tensors, parameters).enumerated().map { i, pair in
            let (t, p) = pair
            if i == 0, let deferred { return deferred }
            precondition(t.count == p.count, "destination \(t.shape) does not fit parameter \(p.shape)")
            return GradientTarget(pointer: UnsafeMutablePointer(mutating: t.pointer), count: t.count, adds: adds)
        }
    }

    /// Puts a gradient the tape computed apart where this destination says, and gives the tensor
    /// that now holds it.
    func place(_ gradient: Tensor, at i: Int) -> Tensor {
        switch self {
        case .fresh:
            return gradient
        case .write(let tensors):
            UnsafeMutablePointer(mutating: tensors[i].pointer).update(from: gradient.pointer, count: gradient.count)
        case .add(to: let tensors):
            let d = UnsafeMutablePointer(mutating: tensors[i].pointer)
            WireDType.fp32.add(gradient.count, into: d, d, gradient.pointer)
        }
        withExtendedLifetime(gradient) {}
        return tensors[i]
    }
}

extension GradientSum {
    /// Gives every gradient memory of its own. A backward pass may hand two parameters one tensor
    /// (an LSTM's two biases get the same gradient); adding into it in place would add twice.
    mutating func ownMemory() {
        for i in gradients.indices { _ = gradients[i].mutablePointer }
    }

    /// This sum (whose gradients already hold `right`'s, added in place) with `right`'s loss and
    /// counts added too: what `accumulate(right)` gives.
    func addingCounts(of right: GradientSum) -> GradientSum {
        GradientSum(gradients: gradients, lossSum: lossSum + right.lossSum, samples: samples + right.samples,
                    correct: correct + right.correct)
    }
}
