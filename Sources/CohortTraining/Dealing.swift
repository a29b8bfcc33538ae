/// How a streamed step's micro-batches are dealt to its workers, when workers across the
/// network relay for each other (`cluster.dealing`). Every dealing adds along the same tree, so
/// the weights are the same bits whichever is used; only where the bytes and the work go
/// changes.
package enum Dealing: String, Sendable, CaseIterable {
    /// Measure `even` and `tree` on the run's first steps, alternating, and keep the faster
    /// (again whenever the workers change).
    case auto
    /// Every worker gets the same number of micro-batches (contiguous, the first ones fewer).
    case even
    /// Along the tree: the workers on the coordinator's machine take the root's left child, and
    /// the workers across the network take the right child in parts that are tree nodes
    /// (`GradientTree.nodeParts`), which they add up among themselves. The coordinator's link
    /// then carries one gradient sum in per step (the right child's) and one copy of the
    /// weights out, however many workers there are; the price is uneven work, as the machine
    /// of the coordinator computes half of every batch.
    case tree

    /// The parts of the root for `local` workers (on the coordinator's machine, listed first)
    /// and `remote` ones across the network, in pool order; nil with fewer than two remote
    /// workers (nothing to add up across the network: the dealing is `even`'s).
    package static func treeParts(root: Range<Int>, local: Int, remote: Int) -> [Range<Int>]? {
        guard remote >= 2, root.count >= 2 else { return nil }
        if local == 0 { return GradientTree.nodeParts(of: root, count: remote) }
        let (left, right) = GradientTree.children(of: root)
        return GradientTree.parts(of: left, count: local) + GradientTree.nodeParts(of: right, count: remote)
    }
}
