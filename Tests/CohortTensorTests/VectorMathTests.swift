@testable import CohortTensor
import CVectorMath
import Foundation
import Testing

/// The eight-lane exp, σ and tanh of the recurrent gates against libm in Double.
@Suite struct VectorMathTests {
    /// A dense sweep of the range that matters, the clamp edges, and values between the
    /// points where x·log₂e rounds to the next integer (where a range reduction slips first).
    static let inputs: [Float] = stride(from: -90, through: 90, by: 0.0137).map { Float($0) }
        + [0, -0.0, 1e-8, -1e-8, 87.3, -87.3, 88.37, 88.38, 88.72, 0.3465736, -0.3465736, 0.3465737, 1.0397208, 44.014, -44.014]

    func applied(_ f: (UnsafeMutablePointer<Float>, Int) -> Void, to values: [Float]) -> [Float] {
        var out = values
        out.withUnsafeMutableBufferPointer { f($0.baseAddress!, $0.count) }
        return out
    }

    @Test func expIsWithinTwoUlpWhereFloatHoldsIt() {
        for x in Self.inputs where x >= -87.3 && x <= 88.37 {
            let e = VectorMath.exp(SIMD8(repeating: x))[0]
            let exact = Foundation.exp(Double(x))
            // 2 ulp of the exact value, and no worse than 2·10⁻³⁸ absolute where floats go subnormal.
            let ulp = Double(Float(exact).ulp)
            #expect(abs(Double(e) - exact) <= max(2 * ulp, 2e-38), "exp(\(x)) = \(e), libm \(exact)")
        }
    }

    /// Past the range e^x saturates to a finite, positive value; it never becomes ∞ or 0.
    @Test func expSaturatesOutsideTheRange() {
        let e = VectorMath.exp(SIMD8(88.38, 88.72, 100, .infinity, -87.4, -100, -.infinity, .nan))
        for k in 0..<4 { #expect(e[k].isFinite && e[k] > 2.3e38, "lane \(k): \(e[k])") }
        for k in 4..<7 { #expect(e[k] > 0 && e[k] < 1.3e-38, "lane \(k): \(e[k])") }
        #expect(e[7].isNaN)
    }

    @Test func sigmoidAndTanhSaturateAndStayAccurate() {
        let s = applied(VectorMath.sigmoid, to: Self.inputs), t = applied(VectorMath.tanh, to: Self.inputs)
        for (k, x) in Self.inputs.enumerated() {
            let exactS = 1 / (1 + Foundation.exp(-Double(x))), exactT = Foundation.tanh(Double(x))
            #expect(abs(Double(s[k]) - exactS) <= 3e-7, "σ(\(x)) = \(s[k]), libm \(exactS)")
            #expect(abs(Double(t[k]) - exactT) <= 3e-7, "tanh(\(x)) = \(t[k]), libm \(exactT)")
            #expect(s[k] >= 0 && s[k] <= 1 && t[k] >= -1 && t[k] <= 1)
        }
        let ends = applied(VectorMath.sigmoid, to: [-200, 200, -.infinity, .infinity])
        #expect(ends == [0, 1, 0, 1])
        #expect(applied(VectorMath.tanh, to: [-200, 200, -.infinity, .infinity]) == [-1, 1, -1, 1])
        #expect(applied(VectorMath.tanh, to: [.nan])[0].isNaN && applied(VectorMath.sigmoid, to: [.nan])[0].isNaN)
    }

    /// A value's result does not depend on where in a row it sits (the tail goes through the same
    /// lanes as the full groups), so a sample gives the same gates in any batch.
    @Test func resultDoesNotDependOnThePosition() {
        let row: [Float] = (0..<13).map { Float($0) * 0.37 - 2.1 }
        let whole = applied(VectorMath.sigmoid, to: row)
        for k in row.indices {
            #expect(applied(VectorMath.sigmoid, to: [row[k]])[0] == whole[k])
            #expect(applied(VectorMath.sigmoid, to: Array(row[k...]))[0] == whole[k])
        }
    }

    /// The AVX2 kernels give the baseline's bits: a machine with AVX2 and one without compute
    /// the same gates. Every 2¹²th float (both signs, all exponents), the sweep above, NaN and
    /// ±∞, in a length that leaves a partial last group.
    @Test(.enabled(if: cohort_has_avx2() != 0, "this CPU has no AVX2: nothing to compare"))
    func avx2KernelsGiveTheBaselineBits() {
        var values = Self.inputs + [.nan, .infinity, -.infinity, .leastNonzeroMagnitude, -.greatestFiniteMagnitude]
        values += stride(from: UInt32(0), to: UInt32.max - 4096, by: 4096).map { Float(bitPattern: $0) }
        values.append(0.5)   // not a multiple of eight
        func same(_ a: [Float], _ b: [Float]) -> Int {
            zip(a, b).filter { $0.bitPattern != $1.bitPattern && !($0.isNaN && $1.isNaN) }.count
        }
        let sigmoid = applied({ cohort_sigmoid_avx2($0, $1) }, to: values)
        #expect(same(sigmoid, applied(VectorMath.baselineSigmoid, to: values)) == 0)
        let tanh = applied({ cohort_tanh_avx2($0, $1) }, to: values)
        #expect(same(tanh, applied(VectorMath.baselineTanh, to: values)) == 0)
    }
}
