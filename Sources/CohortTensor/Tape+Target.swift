/// Memory a parameter's gradient may be delivered into, instead of a fresh tensor.
///
/// The gradient tree adds two micro-batches' gradients as fl(left + right). A weight gradient
/// that is one matrix product can be added into the left one's memory by the product itself
/// (sgemm with beta = 1), which saves a buffer, its memset and a pass over both (see
/// `BLAS.addsProductExactly`). The owner of the memory keeps it alive and lets nobody else read
/// or write it until the backward pass is over.
public struct GradientTarget {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int
    /// True: the gradient is added to what the memory holds, fl(old + gradient), element by
    /// element. False: it overwrites the memory.
    public let adds: Bool

    public init(pointer: UnsafeMutablePointer<Float>, count: Int, adds: Bool) {
        self.pointer = pointer; self.count = count; self.adds = adds
    }
}

extension Tape {
    /// Where an op may put leaf `id`'s gradient, computed as the product of `shape`, and the sgemm
    /// beta that does it (1 to add, 0 to overwrite). Nil unless the leaf has a target of that size,
    /// this op is the leaf's only reader (so no other term joins the sum), and, to add, the
    /// product adds exactly. The leaf is then marked delivered: the op returns no gradient for it.
    func productTarget(forLeaf id: Int, _ shape: BLAS.ProductShape) -> (pointer: UnsafeMutablePointer<Float>, beta: Float)? {
        guard id >= 0, let target = targets[id], consumerCounts[id] == 1, gradients[id] == nil,
              target.count == shape.m * shape.n else { return nil }
        guard !target.adds || BLAS.addsProductExactly(shape) else { return nil }
        targets[id] = nil
        delivered.insert(id)
        return (target.pointer, target.adds ? 1 : 0)
    }

    /// True when an op put `v`'s gradient straight into its target (`gradient(of:)` is then nil).
    public func wasDelivered(_ v: Variable) -> Bool { v.id >= 0 && delivered.contains(v.id) }
}

extension Tape {
    /// A linear layer's W̄ = Ȳᵀ·X: into the weight's target when it has one (then nil), else a
    /// fresh tensor.
    func weightGradient(_ g: Tensor, _ x: Tensor, leaf id: Int) -> Tensor? {
        let shape = BLAS.ProductShape(transA: true, transB: false, m: g.shape[1], n: x.shape[1], k: g.shape[0])
        guard let (c, beta) = productTarget(forLeaf: id, shape) else { return g.matmul(x, transposeSelf: true) }
        withExtendedLifetime((g, x)) {
            BLAS.gemm(transA: true, transB: false, m: shape.m, n: shape.n, k: shape.k,
                      a: g.pointer, lda: shape.m, b: x.pointer, ldb: shape.n, beta: beta, c: c, ldc: shape.n)
        }
        return nil
    }
}
