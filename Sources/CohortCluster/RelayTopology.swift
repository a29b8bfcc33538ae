import CohortTraining

/// Which workers across the network relay for which, for one step's parts of the tree.
///
/// Gradients: two workers whose results are exactly the two children of a tree node merge,
/// the right one sending its sum to the left one, which adds them (the node's own addition, so
/// the bits are the tree's) and then holds the node; bottom up, so a relay may merge again one
/// level higher. What cannot merge (a part that is not a tree node, or whose sibling is held by
/// a worker on the coordinator's machine) goes to the coordinator, as without relays.
///
/// Weights: the workers across the network form a chain in leaf order; the coordinator sends
/// the next weights' chunks to the first one only, and each forwards them to the next as they
/// arrive. The coordinator's link then carries one copy of the weights instead of one per worker.
struct RelayTopology: Equatable {
    struct Part: Equatable {
        /// The leaves whose sum this part sends: its own, then its children's.
        var merged: Range<Int>
        /// Parts whose sums it adds to its own, left to right.
        var children: [Int] = []
        /// The part it sends to (nil: the coordinator).
        var upstream: Int?
        /// The part it forwards weights chunks to (nil: none).
        var forwardTo: Int?
    }

    var parts: [Part]
    /// The first part of the weights chain (nil: no chain).
    var chainHead: Int?

    /// `relays[i]`: whether part i's worker can relay (across the network, with a relay socket).
    init(tree: GradientTree, parts ranges: [Range<Int>], relays: [Bool]) {
        parts = ranges.map { Part(merged: $0) }
        var holder: [Range<Int>: Int] = [:]
        for (i, range) in ranges.enumerated() where relays[i] && tree.isNode(range) { holder[range] = i }
        func visit(_ node: Range<Int>) {
            guard node.count > 1 else { return }
            let (l, r) = GradientTree.children(of: node)
            visit(l); visit(r)
            guard let a = holder[l], let b = holder[r] else { return }
            parts[b].upstream = a
            parts[a].children.append(b)
            parts[a].merged = node
            holder[l] = nil; holder[r] = nil
            holder[node] = a
        }
        visit(tree.root)
        let chain = ranges.indices.filter { relays[$0] }.sorted { ranges[$0].lowerBound < ranges[$1].lowerBound }
        chainHead = chain.count >= 2 ? chain.first : nil
        if chain.count >= 2 {
            for (i, next) in zip(chain, chain.dropFirst()) { parts[i].forwardTo = next }
        }
    }

    /// The part whose result reaches the coordinator for part `i` (itself, or its last relay).
    func root(of i: Int) -> Int {
        var at = i
        while let up = parts[at].upstream { at = up }
        return at
    }

    /// The parts in the weights chain, in order.
    var chain: [Int] {
        var order: [Int] = [], at = chainHead
        while let i = at { order.append(i); at = parts[i].forwardTo }
        return order
    }
}
