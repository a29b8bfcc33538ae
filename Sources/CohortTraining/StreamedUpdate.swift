import CohortNN
import CohortTensor
import Dispatch

/// A step's tree sum and update, one chunk at a time (`StreamLayout`), while the rest of the
/// gradient is still on its way.
///
/// On a LAN a remote worker's gradient takes milliseconds to arrive, and the next weights as
/// long to go back. Cut into chunks, chunk c can be summed along the fixed tree as soon as every
/// block of the tree has sent its chunk c, updated at once, and sent down while the later chunks
/// still come up: the two directions of the link then carry the step's bytes at the same time.
///
/// Nothing changes a bit. Every element is summed along the same tree, the norm adds the same
/// per-block squares in the same order (`GradientTree.rootSum`), and the optimizer rules are
/// elementwise (`Optimizer.lanes` cuts tensors the same way). Without `clip_norm` the update's
/// factor (1/B) is known at once. With it, the factor needs the whole gradient's norm: the
/// chunks are updated with 1/B all the same, on the bet that the step is not clipped. When the
/// last chunk gives the norm and it is over the limit, the bet is undone: the optimizer's state
/// is restored and every chunk is updated again with the clipped factor, as a new `generation`
/// of the next weights. A lost bet costs more than waiting would have: the void chunks still
/// fill the link ahead of the new ones. So the stream bets only when told to (`bets`; the
/// trainer bets when the step before was not clipped, as clipping comes in runs: early in
/// training, or after a spike). Either way the factor is `StepUpdate.scale`'s, so the bits are
/// the plain step's.
///
/// The new weights go to `next`: the weights the step ran on stay as they were, for a task that
/// must be computed again (a worker died) and for the workers on this machine. The optimizer's
/// state is written in place, with the old values kept until the step is done, so `rollBack`
/// can undo an update whose step turns out to be not finite.
package final class StreamedUpdate {
    package let layout: StreamLayout
    let update: StepUpdate
    let batchSize: Int
    /// The weights the step ran on; never written.
    let weights: [Tensor]
    /// The new weights, chunk by chunk.
    package private(set) var next: [Tensor]
    /// The optimizer, with its state written in place; the trainer holds no other reference.
    package private(set) var optimizer: Optimizer
    /// The step's summed gradient (the root of the tree), chunk by chunk.
    package let root: [Tensor]
    var pieceNorms: [Double]
    package private(set) var summed: [Bool]
    package private(set) var summedCount = 0
    /// Chunks 0 ..< applied have been updated.
    package private(set) var applied = 0
    /// A chunk whose sum is not finite: the update stops (the trainer takes the careful path).
    package private(set) var stopped = false
    package private(set) var rolledBack = false
    /// Called by `rollBack`: whoever sent the updated chunks on learns they are void.
    package var onRollBack: (() -> Void)?
    /// The old optimizer state, flat, one array per state tensor kind, for `rollBack`.
    let savedState: [UnsafeMutablePointer<Float>]
    /// One piece of adjusted gradient (clamped, penalized), when the step needs it.
    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: Tensor.normBlock)
    var factor: Float
    /// Whether the factor is final (it is not, with `clip_norm`, until the norm is known).
    var factorFinal: Bool
    /// With `clip_norm`: whether chunks are updated before the norm is known, on the bet that
    /// the step is not clipped. Without the bet, nothing is updated until the last chunk is summed.
    package var bets = true
    package private(set) var clipped = false
    /// Bumped when the chunks are updated again with the clipped factor: chunks sent before
    /// are void.
    package private(set) var generation: UInt32 = 0
    /// Seconds spent summing and updating chunks (while the rest of the gradient was arriving).
    package private(set) var sumSeconds = 0.0, applySeconds = 0.0
    let keepAlive = ViewOwner()

    package init(update: StepUpdate, layout: StreamLayout, weights: [Tensor], optimizer: Optimizer, batchSize: Int) {
        self.update = update; self.layout = layout; self.weights = weights; self.batchSize = batchSize
        self.optimizer = optimizer
        next = layout.shapes.map { Tensor(uninitializedShape: $0) }
        root = layout.shapes.map { Tensor(uninitializedShape: $0) }
        pieceNorms = Array(repeating: 0, count: layout.pieces.count)
        summed = Array(repeating: false, count: layout.chunkCount)
        savedState = optimizer.rule.stateNames.map { _ in UnsafeMutablePointer<Float>.allocate(capacity: max(layout.totalFloats, 1)) }
        // Own the state (copy-on-write once, if the caller still shared it): written in place below.
        for i in self.optimizer.state.indices {
            for s in self.optimizer.state[i].indices { _ = self.optimizer.state[i][s].mutablePointer }
        }
        // The mean's factor; with clipping, a bet until the norm is known.
        factor = update.scale(batchSize: batchSize, norm: 0).factor
        factorFinal = update.clipNorm == nil
    }

    deinit {
        scratch.deallocate()
        for saved in savedState { saved.deallocate() }
    }

    package var allSummed: Bool { summedCount == layout.chunkCount }
    package var allApplied: Bool { applied == layout.chunkCount }

    /// The first chunk not yet summed, if any.
    package var nextToSum: Int? { summed.firstIndex(of: false) }

    /// Σ‖g‖² of the summed gradient, as `GradientTree.rootSum` finds it (valid once all are summed).
    package var squaredNorm: Double { layout.squaredNorm(of: pieceNorms) }

    /// Sums chunk `c` along `tree`: `source(node)` gives a block's tensors when that node's
    /// chunk c is here. Returns false (and changes nothing) when the blocks do not cover the tree yet.
    /// Inner additions write into their left block (as `GradientTree.sum` does); the root's into `root`.
    @discardableResult
    package func sum(chunk c: Int, tree: GradientTree, source: (Range<Int>) -> [Tensor]?) -> Bool {
        precondition(!summed[c], "chunk \(c) summed twice")
        guard GradientTree.covers(tree.root, source: source) else { return false }
        let start = DispatchTime.now()
        defer { sumSeconds += seconds(since: start) }
        var finite = true
        for j in layout.chunks[c] {
            let piece = layout.pieces[j]
            let d = UnsafeMutablePointer(mutating: root[piece.tensor].pointer) + piece.start
            if let whole = source(tree.root) {
                d.update(from: whole[piece.tensor].pointer + piece.start, count: piece.count)
            } else {
                let (l, r) = GradientTree.children(of: tree.root)
                let left = tree.pieceSum(l, piece, source: source), right = tree.pieceSum(r, piece, source: source)
                tree.precision.add(piece.count, into: d, left, right)
            }
            pieceNorms[j] = Tensor.blockSquaredNorm(d, count: piece.count)
            finite = finite && pieceNorms[j].isFinite
        }
        summed[c] = true
        summedCount += 1
        if !finite { stopped = true }
        return true
    }

    /// Updates the chunks that can be updated now, in order, and returns them (for sending):
    /// none once a sum was not finite; all of them again when the clipping bet is lost.
    package func applyReady() -> Range<Int> {
        var first = applied
        guard !stopped, !rolledBack else { return first..<first }
        let start = DispatchTime.now()
        defer { applySeconds += seconds(since: start) }
        if !factorFinal && !bets && !allSummed { return first..<first }
        if !factorFinal && allSummed {
            let mean = update.reduction == .mean ? 1 / Double(batchSize) : 1
            let (final, isClipped) = update.scale(batchSize: batchSize, norm: squaredNorm.squareRoot() * mean)
            factorFinal = true
            if isClipped {
                // Chunks updated on the bet are void: a new generation (none were, without it).
                if applied > 0 { generation += 1 }
                restoreState()
                applied = 0
                first = 0
                factor = final
                clipped = true
            }
        }
        while applied < layout.chunkCount && summed[applied] {
            apply(chunk: applied)
            applied += 1
        }
        return first..<applied
    }


    /// Optimizer rule on chunk `c`: old weights copied to `next`, then updated there in place.
    func apply(chunk c: Int) {
        let step = optimizer.step + 1
        for j in layout.chunks[c] {
            let piece = layout.pieces[j], n = piece.count, t = piece.tensor
            let old = weights[t].pointer + piece.start
            let new = UnsafeMutablePointer(mutating: next[t].pointer) + piece.start
            new.update(from: old, count: n)
            var gradient = UnsafeMutablePointer(mutating: root[t].pointer) + piece.start
            var scale = factor
            if update.adjustsGradient {
                update.adjust(gradient, into: scratch, weights: old, count: n, factor: factor, parameter: t)
                gradient = scratch
                scale = 1
            }
            var states: [Tensor] = []
            for s in optimizer.state[t].indices {
                let p = UnsafeMutablePointer(mutating: optimizer.state[t][s].pointer) + piece.start
                (savedState[s] + layout.flatOffsets[j]).update(from: p, count: n)
                states.append(view(p, n))
            }
            var parameter = view(new, n)
            withExtendedLifetime(weights) {
                optimizer.rule.update(&parameter, gradient: view(gradient, n), scale: scale, state: &states, step: step, lr: optimizer.learningRate)
            }
        }
    }

    func view(_ p: UnsafeMutablePointer<Float>, _ n: Int) -> Tensor {
        Tensor(borrowing: UnsafeMutableRawPointer(p), shape: [n], owner: keepAlive)
    }

    /// Undoes the updated chunks' optimizer state (the weights the step ran on were never written).
    package func rollBack() {
        restoreState()
        applied = 0
        rolledBack = true
        onRollBack?()
        onRollBack = nil
    }

    /// The optimizer's state of the updated chunks as it was before the step.
    func restoreState() {
        for c in 0..<applied {
            for j in layout.chunks[c] {
                let piece = layout.pieces[j]
                for s in optimizer.state[piece.tensor].indices {
                    let p = UnsafeMutablePointer(mutating: optimizer.state[piece.tensor][s].pointer) + piece.start
                    p.update(from: savedState[s] + layout.flatOffsets[j], count: piece.count)
                }
            }
        }
    }

    /// Once every chunk is updated: the new weights and the optimizer, one step further.
    package func finish() -> (weights: [Tensor], optimizer: Optimizer, clipped: Bool) {
        precondition(allApplied && !rolledBack, "the streamed update is not complete")
        var optimizer = self.optimizer
        optimizer.step += 1
        return (next, optimizer, clipped)
    }

    /// The optimizer as it was before the step (after `rollBack`, or when nothing was updated).
    package func unchangedOptimizer() -> Optimizer {
        precondition(applied == 0, "chunks were updated: roll back first")
        return optimizer
    }
}

/// Owner of borrowed views: they point into tensors the update keeps alive itself.
final class ViewOwner: @unchecked Sendable {}
