import CBLAS

/// OpenBLAS process settings. Every matrix product in Cohort goes through `gemm` below.
public enum BLAS {
    /// Sets the number of OpenBLAS threads for this process. Workers sharing the cores use one.
    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }

    public static var threads: Int { Int(openblas_get_num_threads()) }

    public static var coreName: String { String(cString: openblas_get_corename()) }

    /// Keeps large per-step buffers on the heap instead of fresh mmaps (see CBLAS/shim.h).
    package static func tuneAllocator() { cohort_tune_malloc() }

    /// C ← alpha · op(A) · op(B) + beta · C on raw row-major buffers.
    /// op(A) is m×k, op(B) is k×n, C is m×n; lda/ldb are the row lengths of A and B as stored.
    @inlinable
    package static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        guard k > 0 else {
            // BLAS leaves C untouched for k == 0 only when beta == 1; make the empty sum explicit.
            if beta != 1 { for i in 0..<m { for j in 0..<n { c[i * ldc + j] *= beta } } }
            return
        }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

extension Tensor {
    /// op(self) · op(other) for rank-2 tensors, one cblas_sgemm.
    public func matmul(_ other: Tensor, transposeSelf: Bool = false, transposeOther: Bool = false) -> Tensor {
        precondition(rank == 2 && other.rank == 2, "matmul needs matrices, got \(shape) and \(other.shape)")
        let (m, k) = transposeSelf ? (shape[1], shape[0]) : (shape[0], shape[1])
        let (k2, n) = transposeOther ? (other.shape[1], other.shape[0]) : (other.shape[0], other.shape[1])
        precondition(k == k2, "matmul inner dimensions differ: \(shape)\(transposeSelf ? "ᵀ" : "") · \(other.shape)\(transposeOther ? "ᵀ" : "")")
        var out = Tensor(uninitializedShape: [m, n])
        out.matmulAccumulate(self, other, transposeA: transposeSelf, transposeB: transposeOther, beta: 0)
        return out
    }

    /// self ← alpha · op(a) · op(b) + beta · self. With beta = 1 a gradient accumulates in place.
    public mutating func matmulAccumulate(
        _ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false,
        alpha: Float = 1, beta: Float = 1
    ) {
        let (m, k) = transposeA ? (a.shape[1], a.shape[0]) : (a.shape[0], a.shape[1])
        let n = transposeB ? b.shape[0] : b.shape[1]
        precondition(rank == 2 && shape[0] == m && shape[1] == n, "matmul output \(shape) is not \(m)×\(n)")
        let lda = a.shape[1], ldb = b.shape[1]
        withUnsafeMutableBufferPointer { c in
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    BLAS.gemm(transA: transposeA, transB: transposeB, m: m, n: n, k: k, alpha: alpha,
                              a: pa.baseAddress!, lda: lda, b: pb.baseAddress!, ldb: ldb,
                              beta: beta, c: c.baseAddress!, ldc: n)
                }
            }
        }
    }
}
