import CohortTensor

/// One piece (`StreamLayout.Piece`) of a tree node's sum, from whatever blocks have that piece.
///
/// Used where a node's sum is built a chunk at a time: the coordinator's streamed update
/// (`StreamedUpdate`) and a relay worker adding its children's blocks to its own. A node is
/// either a block that is here, or the sum of its two children, left + right, as
/// `GradientTree.sum` adds them: the same additions, so the same bits.
extension GradientTree {
    /// Whether the blocks `source` gives cover `node`: a block for it, or covers of both children.
    package static func covers(_ node: Range<Int>, source: (Range<Int>) -> [Tensor]?) -> Bool {
        if source(node) != nil { return true }
        guard node.count > 1 else { return false }
        let (l, r) = children(of: node)
        return covers(l, source: source) && covers(r, source: source)
    }

    /// `piece` of `node`'s sum: the block's own memory when `node` is a block here; else the
    /// left child's, where left + right is written (each piece is summed once, so a block's
    /// memory is free to take it). `node` must be covered (`covers`).
    /// With bf16 precision the sum is rounded, as `sum` rounds it.
    package func pieceSum(_ node: Range<Int>, _ piece: StreamLayout.Piece,
                          source: (Range<Int>) -> [Tensor]?) -> UnsafeMutablePointer<Float> {
        if let tensors = source(node) { return UnsafeMutablePointer(mutating: tensors[piece.tensor].pointer) + piece.start }
        let (l, r) = Self.children(of: node)
        let left = pieceSum(l, piece, source: source), right = pieceSum(r, piece, source: source)
        precision.add(piece.count, into: left, left, right)
        return left
    }
}
