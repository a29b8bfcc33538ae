import Foundation

/// Probes of OpenBLAS's arithmetic, each tried once per process, that let the trainer save work
/// without changing a bit.
///
/// First, whether an sgemm with beta = 1 adds its product to C exactly as a separate addition
/// would. The gradient tree adds two micro-batches' weight gradients as fl(left + right). A weight
/// gradient is one sgemm, so the right leaf's product could be added straight into the left's
/// memory with beta = 1 instead: no second buffer, no memset of it, no separate pass over both.
/// That gives the same bits only when the kernel computes each product element in registers and
/// adds it to C once, fl(C + product). OpenBLAS's x86 kernels do, unless the product's inner
/// dimension is longer than one of its K blocks: it then adds partial products to C block by
/// block, fl(fl(C + p₁) + p₂), which is not fl(C + fl(p₁ + p₂)). The block length depends on the
/// kernel family and the shape, so instead of trusting a table, each shape is tried once in the
/// process on made-up values, with zeros and both signs, and used only if every bit agrees.
///
/// Second, whether a linear layer's forward pass over several micro-batches' rows at once gives
/// each its own bits: OpenBLAS packs the weights anew for every call, which costs a worker with
/// many micro-batches of a wide first layer a pass over that layer's weights per micro-batch.
extension BLAS {
    /// The shape of one product C(m×n) = op(A)(m×k) · op(B)(k×n), row-major and contiguous.
    package struct ProductShape: Hashable, Sendable {
        package let transA: Bool, transB: Bool
        package let m: Int, n: Int, k: Int

        package init(transA: Bool, transB: Bool, m: Int, n: Int, k: Int) {
            self.transA = transA; self.transB = transB; self.m = m; self.n = n; self.k = k
        }
    }

    /// True when `gemm` with beta = 1 on this shape gives fl(C + op(A)·op(B)) for every element,
    /// the very bits of computing the product apart (beta = 0) and adding it. Tried once per shape
    /// and BLAS thread count; the answer is kept for the process.
    package static func addsProductExactly(_ shape: ProductShape) -> Bool {
        answer(.addsProduct(shape)) { probe(shape) }
    }

    /// True when a linear layer's forward pass (`Tensor.linearForward`) over several row blocks
    /// stacked gives each block the bits it gets alone: `rows` blocks, `inFeatures` → `outFeatures`.
    /// The kernels compute each output element from its own row and the weights, adding along the
    /// inner dimension in blocks that depend on that dimension alone; a small-matrix path chosen
    /// by size could differ, so this too is tried once per shape.
    package static func stacksRowsExactly(rows: [Int], inFeatures: Int, outFeatures: Int) -> Bool {
        answer(.stacksRows(rows: rows, inFeatures: inFeatures, outFeatures: outFeatures)) {
            let weight = Tensor(shape: [outFeatures, inFeatures], probeValues(outFeatures * inFeatures, seed: 5))
            let bias = Tensor(shape: [outFeatures], probeValues(outFeatures, seed: 6))
            let blocks = rows.enumerated().map { i, r in Tensor(shape: [r, inFeatures], probeValues(r * inFeatures, seed: 7 + UInt64(i))) }
            let stacked = Tensor.linearForward(Tensor(shape: [rows.reduce(0, +), inFeatures], blocks.flatMap(\.scalars)),
                                               weight: weight, bias: bias)
            let apart = blocks.flatMap { Tensor.linearForward($0, weight: weight, bias: bias).scalars }
            return stacked.count == apart.count && zip(stacked.scalars, apart).allSatisfy { $0.bitPattern == $1.bitPattern }
        }
    }

    /// True when a weight gradient W̄ = Ȳᵀ·X (`m` = Ȳ's columns, `n` = X's, `k` rows each)
    /// computed in the row ranges `rows`, one product each (`DeferredProduct.rows`), gives every
    /// row the bits of the whole product. Each element is still one dot product along k; only
    /// the edge kernels that take the ranges' last rows differ, so this is tried once per shape.
    package static func splitsRowsExactly(m: Int, n: Int, k: Int, rows: [Range<Int>]) -> Bool {
        answer(.splitsRows(m: m, n: n, k: k, rows: rows)) {
            guard m > 0, n > 0, k > 0 else { return true }
            let g = probeValues(k * m, seed: 8), x = probeValues(k * n, seed: 9)
            var whole = [Float](repeating: 0, count: m * n), parts = whole
            g.withUnsafeBufferPointer { pg in
                x.withUnsafeBufferPointer { px in
                    whole.withUnsafeMutableBufferPointer { pw in
                        gemm(transA: true, transB: false, m: m, n: n, k: k, a: pg.baseAddress!, lda: m,
                             b: px.baseAddress!, ldb: n, beta: 0, c: pw.baseAddress!, ldc: n)
                    }
                    parts.withUnsafeMutableBufferPointer { pp in
                        for r in rows where !r.isEmpty {
                            gemm(transA: true, transB: false, m: r.count, n: n, k: k, a: pg.baseAddress! + r.lowerBound, lda: m,
                                 b: px.baseAddress!, ldb: n, beta: 0, c: pp.baseAddress! + r.lowerBound * n, ldc: n)
                        }
                    }
                }
            }
            let covered = rows.reduce(0) { $0 + $1.count } == m
            return covered && zip(whole, parts).allSatisfy { $0.bitPattern == $1.bitPattern }
        }
    }

    /// True when a linear layer's forward pass Y = b + X·Wᵀ (X `m`×`k`, W `n`×`k`), computed in
    /// the column ranges `columns` (W's row ranges, one product each, added with beta = 1 to the
    /// bias already in Y: `FirstLayerAhead`), gives every element the bits of
    /// `Tensor.linearForward`. Each element is still one dot product along k added to its bias;
    /// only the edge kernels that take the ranges' last columns differ, so this is tried once per
    /// shape.
    package static func splitsColumnsExactly(m: Int, k: Int, n: Int, columns: [Range<Int>]) -> Bool {
        answer(.splitsColumns(m: m, k: k, n: n, columns: columns)) {
            guard m > 0, n > 0, k > 0 else { return true }
            let x = Tensor(shape: [m, k], probeValues(m * k, seed: 10)), w = Tensor(shape: [n, k], probeValues(n * k, seed: 11))
            let b = Tensor(shape: [n], probeValues(n, seed: 12))
            let whole = Tensor.linearForward(x, weight: w, bias: b)
            var parts = Tensor(uninitializedShape: [m, n])
            for r in columns { Tensor.linearForward(x, weight: w, bias: b, columns: r, into: parts.mutablePointer) }
            let covered = columns.reduce(0) { $0 + $1.count } == n
            return covered && zip(whole.scalars, parts.scalars).allSatisfy { $0.bitPattern == $1.bitPattern }
        }
    }

    /// The kept answer to `question` under the current BLAS thread count, probing the first time.
    private static func answer(_ question: ProbeQuestion, probe: () -> Bool) -> Bool {
        let key = ProbeKey(question: question, threads: threads)
        if let known = probes.withLock({ $0[key] }) { return known }
        let answer = probe()
        probes.withLock { $0[key] = answer }
        return answer
    }

    private static let probes = ProbeCache()

    /// The made-up product: C = P₁ + P₂ computed apart, against P₁ with P₂ added by beta = 1.
    private static func probe(_ s: ProductShape) -> Bool {
        guard s.m > 0, s.n > 0, s.k > 0 else { return true }
        let a = probeValues(s.m * s.k, seed: 1), b = probeValues(s.k * s.n, seed: 2)
        let a2 = probeValues(s.m * s.k, seed: 3), b2 = probeValues(s.k * s.n, seed: 4)
        var apart = [Float](repeating: 0, count: s.m * s.n), fused = apart, second = apart
        let (lda, ldb) = (s.transA ? s.m : s.k, s.transB ? s.k : s.n)
        func product(_ x: [Float], _ y: [Float], beta: Float, into c: inout [Float]) {
            x.withUnsafeBufferPointer { px in
                y.withUnsafeBufferPointer { py in
                    c.withUnsafeMutableBufferPointer { pc in
                        gemm(transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k,
                             a: px.baseAddress!, lda: lda, b: py.baseAddress!, ldb: ldb,
                             beta: beta, c: pc.baseAddress!, ldc: s.n)
                    }
                }
            }
        }
        product(a, b, beta: 0, into: &apart)
        product(a2, b2, beta: 0, into: &second)
        fused = apart
        product(a2, b2, beta: 1, into: &fused)
        for i in apart.indices {
            let sum = apart[i] + second[i]
            if sum.bitPattern != fused[i].bitPattern { return false }
        }
        return true
    }

    /// Values in (−1, 1) with every eighth one an exact zero (of either sign), from a fixed
    /// linear congruential sequence: a failing shape fails the same way every run.
    private static func probeValues(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15
        return (0..<count).map { i in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let unit = Float(state >> 40) / Float(1 << 24) * 2 - 1
            return i % 8 == 7 ? (state & 1 == 0 ? 0 : -0.0) : unit
        }
    }
}

private enum ProbeQuestion: Hashable {
    case addsProduct(BLAS.ProductShape)
    case stacksRows(rows: [Int], inFeatures: Int, outFeatures: Int)
    case splitsRows(m: Int, n: Int, k: Int, rows: [Range<Int>])
    case splitsColumns(m: Int, k: Int, n: Int, columns: [Range<Int>])
}

private struct ProbeKey: Hashable { let question: ProbeQuestion; let threads: Int }

/// The probe answers, shared by every thread of the process.
private final class ProbeCache: @unchecked Sendable {
    private let lock = NSLock()
    private var answers: [ProbeKey: Bool] = [:]

    func withLock<R>(_ body: (inout [ProbeKey: Bool]) -> R) -> R {
        lock.lock(); defer { lock.unlock() }
        return body(&answers)
    }
}
