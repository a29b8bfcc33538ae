import CohortNN
import CohortTensor

/// The fixed binary tree over the K micro-batches of a step.
///
/// Floating-point addition is not associative, so the order in which micro-batch gradients are
/// added decides the last bits of the result. Cohort always adds them along this one tree: node
/// [lo, hi) splits at lo + (the largest power of two below hi − lo). Every node is then an aligned
/// block, and any contiguous range of leaves is a union of O(log K) whole nodes. A worker that
/// ran leaves [a, b) sends the sums of those nodes; the coordinator adds the rest of the tree.
/// Whoever computed what, the additions are the same, so the weights are bit for bit the same.
///
/// With `precision` bf16 (`cluster.wire_dtype`), every node's sum, leaves and root included, is
/// rounded to bfloat16 as soon as it is made, wherever that is: a node sent over the wire in
/// bfloat16 then carries exactly the value a node summed in place has.
package struct GradientTree: Sendable {
    package let leafCount: Int
    package let precision: WireDType

    package init(leafCount: Int, precision: WireDType = .fp32) {
        precondition(leafCount > 0, "a tree needs at least one leaf")
        self.leafCount = leafCount
        self.precision = precision
    }

    package var root: Range<Int> { 0..<leafCount }

    /// The two children of an inner node.
    package static func children(of node: Range<Int>) -> (Range<Int>, Range<Int>) {
        let n = node.count
        precondition(n > 1, "leaf \(node) has no children")
        var half = 1
        while half * 2 < n { half *= 2 }
        let mid = node.lowerBound + half
        return (node.lowerBound..<mid, mid..<node.upperBound)
    }

    /// The maximal tree nodes that lie inside `range`, left to right.
    package func blocks(covering range: Range<Int>) -> [Range<Int>] {
        precondition(range.lowerBound >= 0 && range.upperBound <= leafCount, "\(range) outside 0..<\(leafCount)")
        var result: [Range<Int>] = []
        func visit(_ node: Range<Int>) {
            if node.lowerBound >= range.upperBound || node.upperBound <= range.lowerBound || range.isEmpty { return }
            if node.lowerBound >= range.lowerBound && node.upperBound <= range.upperBound {
                result.append(node)
                return
            }
            let (left, right) = Self.children(of: node)
            visit(left); visit(right)
        }
        visit(root)
        return result
    }

    /// True when `node` is a node of this tree.
    package func isNode(_ node: Range<Int>) -> Bool {
        var current = root
        while true {
            if current == node { return true }
            guard current.count > 1, current.lowerBound <= node.lowerBound, node.upperBound <= current.upperBound else {
                return false
            }
            let (left, right) = Self.children(of: current)
            current = node.lowerBound < left.upperBound ? left : right
        }
    }

    /// `range` cut into `count` contiguous parts as even as can be (the first ones the smaller):
    /// how leaves are dealt to workers or threads. Empty parts are left out.
    package static func parts(of range: Range<Int>, count: Int) -> [Range<Int>] {
        guard !range.isEmpty else { return [] }
        let n = max(1, min(count, range.count))
        return (0..<n).map { p in
            (range.lowerBound + p * range.count / n)..<(range.lowerBound + (p + 1) * range.count / n)
        }
    }

    /// `node` cut into at most `count` parts that are tree nodes, for workers that add each
    /// other's sums where the tree adds them (see `Dealing.tree`). A node's workers go to its
    /// children in proportion to their leaves, rounded down on the left: the left child's
    /// holder receives the right child's sum, so a lighter left side keeps any one worker from
    /// receiving many sums.
    package static func nodeParts(of node: Range<Int>, count: Int) -> [Range<Int>] {
        guard count > 1, node.count > 1 else { return node.isEmpty ? [] : [node] }
        let (left, right) = children(of: node)
        let toLeft = max(1, min(count - 1, count * left.count / node.count))
        return nodeParts(of: left, count: toLeft) + nodeParts(of: right, count: count - toLeft)
    }

    /// Sums `node` along the tree. `known` supplies sums already computed for some nodes (from
    /// workers); `leaf` computes a missing leaf. Children are always added left + right.
    package func sum<Value: TreeSummable>(
        _ node: Range<Int>, known: [Range<Int>: Value] = [:], leaf: (Int) throws -> Value
    ) rethrows -> Value {
        var taken = known
        return try sum(node, taking: &taken, leaf: leaf)
    }

    /// The same, taking the known sums out of `known` as they are used: a sum held nowhere else
    /// is added into in place instead of being copied first (copy-on-write).
    package func sum<Value: TreeSummable>(
        _ node: Range<Int>, taking known: inout [Range<Int>: Value], leaf: (Int) throws -> Value
    ) rethrows -> Value {
        var (value, unrounded) = try unroundedSum(node, taking: &known, leaf: leaf, fusingPairs: false) { _, _ in }
        if unrounded { value.round(to: precision) }
        return value
    }

    /// `sum` of a node whose leaves are all computed here, where `addingLeaf(k, &left)` computes
    /// leaf k and adds it into its left sibling itself, with the very bits of
    /// `left.accumulate(leaf(k))` (`LeafDestination.add`). It is used for the float32 nodes of two
    /// leaves; a bfloat16 tree rounds both operands, so it adds them apart.
    package func sum<Value: TreeSummable>(
        _ node: Range<Int>, leaf: (Int) throws -> Value, addingLeaf: (Int, inout Value) throws -> Void
    ) rethrows -> Value {
        var none: [Range<Int>: Value] = [:]
        var (value, unrounded) = try unroundedSum(node, taking: &none, leaf: leaf, fusingPairs: precision == .fp32,
                                                  addingLeaf: addingLeaf)
        if unrounded { value.round(to: precision) }
        return value
    }

    /// `sum`, except that a leaf computed here comes back not yet rounded (true): a leaf that is
    /// added to its sibling is rounded in the addition's own pass (`accumulate(_:precision:)`
    /// rounds both operands), which saves a pass over memory per leaf.
    func unroundedSum<Value: TreeSummable>(
        _ node: Range<Int>, taking known: inout [Range<Int>: Value], leaf: (Int) throws -> Value,
        fusingPairs: Bool, addingLeaf: (Int, inout Value) throws -> Void
    ) rethrows -> (Value, unrounded: Bool) {
        if let value = known.removeValue(forKey: node) { return (value, false) }
        if node.count == 1 { return (try leaf(node.lowerBound), true) }
        let (l, r) = Self.children(of: node)
        if fusingPairs && node.count == 2 && known[l] == nil && known[r] == nil {
            var left = try leaf(l.lowerBound)
            try addingLeaf(r.lowerBound, &left)
            return (left, false)
        }
        var left = try unroundedSum(l, taking: &known, leaf: leaf, fusingPairs: fusingPairs, addingLeaf: addingLeaf).0
        let right = try unroundedSum(r, taking: &known, leaf: leaf, fusingPairs: fusingPairs, addingLeaf: addingLeaf).0
        left.accumulate(right, precision: precision)
        return (left, false)
    }
}

/// Something the gradient tree can add: left.accumulate(right) means left ← left + right.
package protocol TreeSummable {
    mutating func accumulate(_ right: Self)
    /// left ← round(round(left) + round(right)) in `precision`: the operands may be leaves not
    /// rounded yet (rounding is idempotent, so a rounded one is unchanged).
    mutating func accumulate(_ right: Self, precision: WireDType)
    /// Rounds the node's values to the tree's precision (nothing to do for fp32).
    mutating func round(to precision: WireDType)
}

extension TreeSummable {
    package mutating func round(to precision: WireDType) {}

    /// For values with nothing to round (counts): the plain addition.
    package mutating func accumulate(_ right: Self, precision: WireDType) { accumulate(right) }
}

/// The sums a micro-batch (or a block of them) contributes to a step.
package struct GradientSum: TreeSummable, Sendable {
    /// Σ over samples of ∂loss/∂θ, one tensor per parameter.
    package var gradients: [Tensor]
    /// Σ over samples of the loss (already scaled as the loss's reduction requires).
    package var lossSum: Double
    package var samples: Int
    /// Samples whose prediction was right (classification), for accuracy.
    package var correct: Int

    package init(gradients: [Tensor], lossSum: Double, samples: Int, correct: Int) {
        self.gradients = gradients; self.lossSum = lossSum; self.samples = samples; self.correct = correct
    }

    /// left + right written into `destination` (tensors of the same shapes, e.g. a shared-memory
    /// slot): the same values as `left.accumulate(right)`, without writing `left` first and
    /// copying it after.
    package static func sum(_ left: GradientSum, _ right: GradientSum, into destination: [Tensor],
                            precision: WireDType = .fp32) -> GradientSum {
        precondition(left.gradients.count == right.gradients.count && left.gradients.count == destination.count,
                     "gradient lists differ in length")
        for i in destination.indices {
            let n = destination[i].count
            precondition(left.gradients[i].count == n && right.gradients[i].count == n, "gradient sizes differ")
            // Written through the destination's own memory, never a copy-on-write copy of it:
            // writing there is the point (its caller hands over tensors nobody else reads now).
            let d = UnsafeMutablePointer(mutating: destination[i].pointer)
            let a = left.gradients[i].pointer, b = right.gradients[i].pointer
            withExtendedLifetime((left, right, destination)) {
                precision.add(n, into: d, a, b)
            }
        }
        return GradientSum(gradients: destination, lossSum: left.lossSum + right.lossSum, samples: left.samples + right.samples,
                           correct: left.correct + right.correct)
    }

    /// Whether the loss and every gradient value are finite numbers.
    package var isFinite: Bool {
        lossSum.isFinite && gradients.allSatisfy { g in g.withUnsafeBufferPointer { $0.allSatisfy(\.isFinite) } }
    }

    package mutating func round(to precision: WireDType) {
        guard precision == .bf16 else { return }
        for i in gradients.indices { gradients[i].roundToBFloat16() }
    }

    /// The addition and every rounding in one pass (a pass over a model's gradient is a trip to
    /// memory; the rounding's arithmetic is nearly free beside it).
    package mutating func accumulate(_ right: GradientSum, precision: WireDType) {
        guard precision == .bf16 else { return accumulate(right) }
        precondition(gradients.count == right.gradients.count, "gradient lists differ in length")
        for i in gradients.indices {
            let n = gradients[i].count
            precondition(right.gradients[i].count == n, "gradient sizes differ")
            let a = gradients[i].mutablePointer
            withExtendedLifetime(right) { precision.add(n, into: a, a, right.gradients[i].pointer) }
        }
        lossSum += right.lossSum
        samples += right.samples
        correct += right.correct
    }

    package mutating func accumulate(_ right: GradientSum) {
        precondition(gradients.count == right.gradients.count, "gradient lists differ in length")
        for i in gradients.indices { gradients[i].add(right.gradients[i]) }
        lossSum += right.lossSum
        samples += right.samples
        correct += right.correct
    }
}
