/// Memory a parameter's gradient may be delivered into, instead of a fresh tensor.
///
/// The gradient tree adds two micro-batches' gradients as fl(left + right). A weight gradient
/// that is one matrix product can be added into the left one's memory by the product itself
/// (sgemm with beta = 1), which saves a buffer, its memset and a pass over both (see
/// `BLAS.addsProductExactly`). The owner of the memory keeps it alive and lets nobody else read
/// or write it until the backward pass is over.
public struct GradientTarget {
    /// Nil for a target that takes the product's factors instead (`deferred`).
    public let pointer: UnsafeMutablePointer<Float>?
    public let count: Int
    /// True: the gradient is added to what the memory holds, fl(old + gradient), element by
    /// element. False: it overwrites the memory.
    public let adds: Bool
    /// Where a linear layer leaves the factors of this weight's gradient, uncomputed.
    public let deferred: DeferredProduct?

    public init(pointer: UnsafeMutablePointer<Float>, count: Int, adds: Bool) {
        self.pointer = pointer; self.count = count; self.adds = adds; deferred = nil
    }

    /// A target for a linear layer's weight of `count` elements: its gradient W̄ = Ȳᵀ·X is not
    /// computed, its factors go to `sink` (see `DeferredProduct`).
    public init(deferringTo sink: DeferredProduct, count: Int) {
        pointer = nil; self.count = count; adds = false; deferred = sink
    }
}

/// A linear layer's weight gradient W̄ = Ȳᵀ·X, left as its factors: the caller computes it
/// later, in row ranges (W̄'s rows r are Ȳ's columns r), so that a worker can send the first
/// rows while it computes the next ones. When no linear layer took it (the weight had another
/// reader), `whole` holds the gradient the tape computed instead.
public final class DeferredProduct: @unchecked Sendable {
    /// Ȳ, [rows, out].
    public internal(set) var outputGradient: Tensor?
    /// X, [rows, in].
    public internal(set) var input: Tensor?
    public var whole: Tensor?

    public init() {}

    /// Rows `rows` of W̄ into `c` (row-major, `ldc` floats a row): Ȳ[:, rows]ᵀ·X, or a copy of
    /// the whole gradient's rows.
    public func rows(_ rows: Range<Int>, into c: UnsafeMutablePointer<Float>, ldc: Int) {
        if let g = outputGradient, let x = input {
            let (out, k, n) = (g.shape[1], g.shape[0], x.shape[1])
            withExtendedLifetime((g, x)) {
                BLAS.gemm(transA: true, transB: false, m: rows.count, n: n, k: k, a: g.pointer + rows.lowerBound, lda: out,
                          b: x.pointer, ldb: n, beta: 0, c: c, ldc: ldc)
            }
        } else {
            guard let whole else { preconditionFailure("a deferred weight gradient that no pass filled") }
            let n = whole.shape[1]
            withExtendedLifetime(whole) {
                for r in rows { (c + (r - rows.lowerBound) * ldc).update(from: whole.pointer + r * n, count: n) }
            }
        }
    }
}

extension Tape {
    /// Where an op may put leaf `id`'s gradient, computed as the product of `shape`, and the sgemm
    /// beta that does it (1 to add, 0 to overwrite). Nil unless the leaf has a target of that size,
    /// this op is the leaf's only reader (so no other term joins the sum), and, to add, the
    /// product adds exactly. The leaf is then marked delivered: the op returns no gradient for it.
    func productTarget(forLeaf id: Int, _ shape: BLAS.ProductShape) -> (pointer: UnsafeMutablePointer<Float>, beta: Float)? {
        guard let target = target(forLeaf: id, count: shape.m * shape.n), let pointer = target.pointer,
              !target.adds || BLAS.addsProductExactly(shape) else { return nil }
        claim(id)
        return (pointer, target.adds ? 1 : 0)
    }

    /// Leaf `id`'s target, if it has one of `count` elements and one op is its only reader (so no
    /// other term joins its gradient).
    private func target(forLeaf id: Int, count: Int) -> GradientTarget? {
        guard id >= 0, let target = targets[id], consumerCounts[id] == 1, gradients[id] == nil, target.count == count else { return nil }
        return target
    }

    /// The op delivers leaf `id`'s gradient to its target: it returns none for it.
    private func claim(_ id: Int) {
        targets[id] = nil
        delivered.insert(id)
    }

    /// True when an op put `v`'s gradient straight into its target (`gradient(of:)` is then nil).
    public func wasDelivered(_ v: Variable) -> Bool { v.id >= 0 && delivered.contains(v.id) }
}

extension Tape {
    /// A linear layer's W̄ = Ȳᵀ·X: into the weight's target when it has one (then nil), else a
    /// fresh tensor.
    func weightGradient(_ g: Tensor, _ x: Tensor, leaf id: Int) -> Tensor? {
        let shape = BLAS.ProductShape(transA: true, transB: false, m: g.shape[1], n: x.shape[1], k: g.shape[0])
        if let sink = target(forLeaf: id, count: shape.m * shape.n)?.deferred {
            claim(id)
            sink.outputGradient = g
            sink.input = x
            return nil
        }
        guard let (c, beta) = productTarget(forLeaf: id, shape) else { return g.matmul(x, transposeSelf: true) }
        withExtendedLifetime((g, x)) {
            BLAS.gemm(transA: true, transB: false, m: shape.m, n: shape.n, k: shape.k,
                      a: g.pointer, lda: shape.m, b: x.pointer, ldb: shape.n, beta: beta, c: c, ldc: shape.n)
        }
        return nil
    }
}
