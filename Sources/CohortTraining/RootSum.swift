import CohortTensor
import Dispatch

/// The step's last addition and the gradient's global norm, in one pass on several threads.
///
/// After the workers' blocks are in, the coordinator adds the root of the tree (left + right)
/// and then needs ‖g‖² before it may update (a non-finite norm stops the update; clipping needs
/// its value). Done apart, that is one pass that writes the sum and another that reads it back,
/// both on one core while the workers wait. Here each block of `Tensor.normBlock` elements is
/// added and squared while it is still in the cache, and the blocks are shared among `lanes`
/// threads. The norm is `Tensor.squaredNorm`'s, block for block, added in the same order, and the
/// sum is the same addition: the bits do not change, for any number of lanes.
extension GradientTree {
    /// The root's sum, as `sum(root, taking:)` gives it, and its squared L2 norm over all
    /// parameters (Σ over tensors of `squaredNorm()`).
    package func rootSum(taking known: inout [Range<Int>: GradientSum], lanes: Int,
                         leaf: (Int) throws -> GradientSum) rethrows -> (sum: GradientSum, squaredNorm: Double) {
        if let whole = known.removeValue(forKey: root) {
            return (whole, Self.squaredNorm(whole.gradients, plus: nil, lanes: lanes))
        }
        guard root.count > 1 else {
            var only = try leaf(0)
            only.round(to: precision)
            return (only, Self.squaredNorm(only.gradients, plus: nil, lanes: lanes))
        }
        let (l, r) = Self.children(of: root)
        var left = try sum(l, taking: &known, leaf: leaf)
        let right = try sum(r, taking: &known, leaf: leaf)
        // Written in place: make each of left's tensors its own (copy-on-write) first.
        for i in left.gradients.indices { _ = left.gradients[i].mutablePointer }
        let squaredNorm = Self.squaredNorm(left.gradients, plus: right.gradients, lanes: lanes, precision: precision)
        left.lossSum += right.lossSum
        left.samples += right.samples
        left.correct += right.correct
        return (left, squaredNorm)
    }

    /// Σ over tensors of ‖a + b‖² (‖a‖² when `b` is nil), writing a + b into `a` as it goes.
    static func squaredNorm(_ a: [Tensor], plus b: [Tensor]?, lanes: Int, precision: WireDType = .fp32) -> Double {
        // The jobs: every block of every tensor, in order.
        var found: [(tensor: Int, start: Int, end: Int)] = []
        for (t, tensor) in a.enumerated() {
            precondition(b == nil || b![t].count == tensor.count, "gradient sizes differ")
            for start in stride(from: 0, to: tensor.count, by: Tensor.normBlock) {
                found.append((t, start, Swift.min(start + Tensor.normBlock, tensor.count)))
            }
        }
        let jobs = found  // the lanes share it, read only
        let blockNorms = UnsafeMutableBufferPointer<Double>.allocate(capacity: jobs.count)
        defer { blockNorms.deallocate() }
        // Addresses as integers: the lanes below are @Sendable, and each writes only its blocks.
        let targets = a.map { Int(bitPattern: UnsafeMutableRawPointer(mutating: $0.pointer)) }
        let sources = b?.map { Int(bitPattern: UnsafeRawPointer($0.pointer)) }
        let results = Int(bitPattern: blockNorms.baseAddress!)
        // Waking a thread costs about as much as adding 100k floats: small models stay on one.
        let lanes = Swift.max(1, Swift.min(lanes, jobs.count / 32))
        withExtendedLifetime((a, b)) {
            let work: @Sendable (Int) -> Void = { lane in
                let out = UnsafeMutablePointer<Double>(bitPattern: results)!
                for j in (lane * jobs.count / lanes)..<((lane + 1) * jobs.count / lanes) {
                    let job = jobs[j]
                    let d = UnsafeMutablePointer<Float>(bitPattern: targets[job.tensor])! + job.start
                    let count = job.end - job.start
                    if let sources {
                        let s = UnsafePointer<Float>(bitPattern: sources[job.tensor])! + job.start
                        precision.add(count, into: d, d, s)
                    }
                    out[j] = Tensor.blockSquaredNorm(d, count: count)
                }
            }
            if lanes == 1 { work(0) } else { DispatchQueue.concurrentPerform(iterations: lanes, execute: work) }
        }
        // Added as squaredNorm adds them: within a tensor, then tensor after tensor.
        var total = 0.0, j = 0
        for tensor in a {
            var tensorTotal = 0.0
            for _ in stride(from: 0, to: tensor.count, by: Tensor.normBlock) { tensorTotal += blockNorms[j]; j += 1 }
            total += tensorTotal
        }
        return total
    }
}
