import CVectorMath
import Foundation

/// e^x, σ and tanh eight lanes at a time, for the gate loops of the recurrent layers.
///
/// glibc's expf is a call per element, which stops the loop around it from vectorising; the gate
/// loops were about a fifth of an LSTM step (perf). These use only adds, multiplies, one divide and
/// integer shifts, which baseline x86-64 has (SSE2, two registers per SIMD8), and cost about a
/// third of the scalar calls. Every element goes through the same lanes, tail included, so a
/// value does not depend on where in a row it sits.
enum VectorMath {
    /// e^x within 2 ulp over [−87.3, 88.37]: x = n·ln 2 + r with |r| ≤ ln 2 / 2, e^r by Cephes'
    /// degree-7 polynomial, 2ⁿ built in the exponent bits. Inputs are clamped to that range first
    /// (n from −126 to 127, so 2ⁿ is a normal float), and e^x saturates to about 1.2·10⁻³⁸ and
    /// 2.4·10³⁸ instead of 0 and ∞. NaN stays NaN.
    @inline(__always)
    static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> {
        // pointwiseMin/Max are calls at baseline x86-64; `replace(with:where:)` inlines.
        var x = x
        let low = SIMD8<Float>(repeating: -87.3), high = SIMD8<Float>(repeating: 88.37)
        x.replace(with: low, where: x .< low)
        x.replace(with: high, where: x .> high)
        // Adding 1.5·2²³ rounds x·log₂e to the nearest integer n, which then sits in the low bits.
        let shifter = SIMD8<Float>(repeating: 12_582_912)
        let shifted = x * 1.442_695_04 + shifter
        let n = shifted - shifter
        // r = x − n·ln 2, with ln 2 split in two so that n·ln2_hi is exact.
        let r = (x - n * 0.693_145_751_953_125) - n * 1.428_606_765_330_187e-6
        var p = SIMD8<Float>(repeating: 1.987_569_150_0e-4)
        p = p * r + 1.398_199_950_7e-3
        p = p * r + 8.333_451_907_3e-3
        p = p * r + 4.166_579_589_4e-2
        p = p * r + 1.666_666_545_9e-1
        p = p * r + 5.000_000_120_1e-1
        p = p * (r * r) + r + 1
        // n as an integer is shifted's bits less the shifter's (0x4B40_0000); 2ⁿ is (n + 127) << 23.
        let exponent = (unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000 &+ 127) &<< 23
        return p * unsafeBitCast(exponent, to: SIMD8<Float>.self)
    }

    /// σ(x) = 1 / (1 + e^−x); exactly 0 below −88.37, where e^−x saturates (1/(1 + 2.4·10³⁸)
    /// would be subnormal, and subnormal operands are slow on x86).
    @inline(__always)
    static func sigmoid(_ x: SIMD8<Float>) -> SIMD8<Float> {
        var s = 1 / (1 + exp(-x))
        s.replace(with: 0, where: x .< -88.37)
        return s
    }

    /// tanh(x) = 1 − 2 / (e^{2x} + 1): one exp, and exactly ±1 at saturation.
    @inline(__always)
    static func tanh(_ x: SIMD8<Float>) -> SIMD8<Float> { 1 - 2 / (exp(x + x) + 1) }

    /// p[k] = f(p[k]) for k in 0..<count; the last partial group goes through the same lanes,
    /// padded with zeros (as the AVX2 kernels pad it).
    @inline(__always)
    static func apply(_ p: UnsafeMutablePointer<Float>, count: Int, _ f: (SIMD8<Float>) -> SIMD8<Float>) {
        Lanes.map(count, into: p, p, f)
    }

    /// Whether σ and tanh run on the AVX2 kernels of CVectorMath: the same operations in the
    /// same order, eight lanes per instruction instead of four, so the same bits
    /// (`VectorMathTests` holds them to these). `COHORT_VECTOR_MATH=baseline` keeps them here.
    static let usesAVX2 = cohort_has_avx2() != 0
        && ProcessInfo.processInfo.environment["COHORT_VECTOR_MATH"] != "baseline"

    /// σ of each of p[0..<count], in place.
    static func sigmoid(_ p: UnsafeMutablePointer<Float>, count: Int) {
        if usesAVX2 { cohort_sigmoid_avx2(p, count) } else { apply(p, count: count, sigmoid) }
    }

    /// tanh of each of p[0..<count], in place.
    static func tanh(_ p: UnsafeMutablePointer<Float>, count: Int) {
        if usesAVX2 { cohort_tanh_avx2(p, count) } else { apply(p, count: count, tanh) }
    }

    /// The baseline forms (SIMD8 in Swift), whatever the CPU: for tests against the AVX2 kernels.
    static func baselineSigmoid(_ p: UnsafeMutablePointer<Float>, count: Int) { apply(p, count: count, sigmoid) }
    static func baselineTanh(_ p: UnsafeMutablePointer<Float>, count: Int) { apply(p, count: count, tanh) }
}
