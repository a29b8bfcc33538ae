@testable import CohortTensor
import CVectorMath
import Testing

/// Rounding to bfloat16 as PyTorch's `tensor.to(torch.bfloat16)` does: to nearest, ties to even.
@Suite struct BFloat16Tests {
    @Test func roundsToNearestTiesToEven() {
        // Well-known bfloat16 values (PyTorch prints torch.tensor(x).bfloat16() as these).
        #expect(BFloat16.round(Float.pi) == 3.140625)
        #expect(BFloat16.round(1 / 3) == 0.333984375)
        #expect(BFloat16.round(0.1) == 0.10009765625)
        // Bfloat16 keeps 8 significant bits: 1 + 2⁻⁸ lies halfway between 1 and 1 + 2⁻⁷ and goes
        // to the even one (1); 1 + 3·2⁻⁸ lies halfway between 1 + 2⁻⁷ and 1 + 2⁻⁶ and goes up.
        #expect(BFloat16.round(1 + 0x1p-8) == 1)
        #expect(BFloat16.round(1 + 3 * 0x1p-8) == 1 + 0x1p-6)
        #expect(BFloat16.round(1 + 0x1p-8 + 0x1p-20) == 1 + 0x1p-7)   // just past halfway: up
        #expect(BFloat16.round(-1 - 0x1p-8 - 0x1p-20) == -1 - 0x1p-7)
        // Beyond the largest bfloat16 (0x1.FEp127) by more than half an ulp: ∞.
        #expect(BFloat16.round(Float.greatestFiniteMagnitude) == .infinity)
        #expect(BFloat16.round(-.infinity) == -.infinity && BFloat16.round(0) == 0)
        #expect(BFloat16.round(-0.0).sign == .minus)
        // A NaN whose payload is only in the low bits stays a NaN (not ∞).
        #expect(BFloat16.round(Float(bitPattern: 0x7F80_0001)).isNaN)
        #expect(BFloat16.round(Float(bitPattern: 0xFF80_0001)).isNaN)
        // Subnormals round like the rest.
        #expect(BFloat16.round(Float(bitPattern: 0x0000_8000)) == 0 && BFloat16.round(Float(bitPattern: 0x0001_8000)) == Float(bitPattern: 0x0002_0000))
    }

    @Test func encodingIsTheRoundedValueAndDecodesExactly() {
        let values: [Float] = [Float.pi, -2.5, 1e-30, 65504, 1 + 0x1p-8, .infinity, 3e38, 7, -0.0, 0.3]
        var bytes = [UInt8](repeating: 0, count: 2 * values.count)
        bytes.withUnsafeMutableBytes { BFloat16.encode(values, count: values.count, into: $0.baseAddress!) }
        #expect(bytes[0] == 0x49 && bytes[1] == 0x40)   // π → 0x4049, little-endian
        var back = [Float](repeating: 0, count: values.count)
        bytes.withUnsafeBytes { BFloat16.decode($0.baseAddress!, count: values.count, into: &back) }
        #expect(back == values.map { BFloat16.round($0) })
        #expect(back.map { $0.bitPattern & 0xFFFF }.allSatisfy { $0 == 0 })
        // The tensor form rounds every element, through the partial last lane group too.
        let t = Tensor(shape: [values.count], values)
        #expect(t.roundedToBFloat16().scalars == back)
    }

    /// The tree's addition with both operands rounded: the AVX2 kernel against the Swift lanes and
    /// the scalar rule, over values of every magnitude, ties, ±∞, NaN payloads, subnormals and a
    /// partial last group. Skipped (with the reason) on a CPU without AVX2.
    @Test func treeAdditionIsTheSameOnEveryPath() {
        var state: UInt32 = 12345
        var a: [Float] = [1 + 0x1p-8, .infinity, -.infinity, Float(bitPattern: 0x7F80_0001), Float(bitPattern: 0x0001_8000), 3e38, -0.0]
        var b: [Float] = [0x1p-9, 1, .infinity, 2, Float(bitPattern: 0x0000_8000), 3e38, 0]
        for _ in 0..<4093 {
            state = state &* 1_664_525 &+ 1_013_904_223; a.append(Float(bitPattern: state))
            state = state &* 1_664_525 &+ 1_013_904_223; b.append(Float(bitPattern: state))
        }
        let rule = zip(a, b).map { BFloat16.round(BFloat16.round($0) + BFloat16.round($1)) }
        var baseline = [Float](repeating: 0, count: a.count)
        BFloat16.addBaseline(a.count, into: &baseline, a, b)
        #expect(zip(baseline, rule).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) })
        guard VectorMath.usesAVX2 else {
            print("skipped the AVX2 half of treeAdditionIsTheSameOnEveryPath: this CPU has no AVX2")
            return
        }
        var fast = [Float](repeating: 0, count: a.count)
        cohort_bf16_add_avx2(a.count, &fast, a, b)
        #expect(zip(fast, baseline).allSatisfy { $0.bitPattern == $1.bitPattern }, "the AVX2 kernel differs from the Swift lanes")
    }

    /// The wire's encoding and decoding: the AVX2 kernels (whole groups, the rest in Swift)
    /// against the Swift loops, over the same values, for counts that end inside a group.
    @Test func wireEncodingIsTheSameOnEveryPath() {
        var state: UInt32 = 777
        var values: [Float] = [1 + 0x1p-8, 1 + 3 * 0x1p-8, .infinity, -.infinity, Float(bitPattern: 0x7F80_0001),
                               Float(bitPattern: 0xFF80_0001), Float(bitPattern: 0x0001_8000), 3e38, -0.0, 0, .pi]
        for _ in 0..<1000 {
            state = state &* 1_664_525 &+ 1_013_904_223
            values.append(Float(bitPattern: state))
        }
        for count in [values.count, 37, 16, 15, 8, 3, 0] {
            var fast = [UInt8](repeating: 0xAB, count: 2 * count), slow = fast
            fast.withUnsafeMutableBytes { BFloat16.encode(values, count: count, into: $0.baseAddress!) }
            slow.withUnsafeMutableBytes { BFloat16.encodeBaseline(values, count: count, into: $0.baseAddress!) }
            let firstByte = fast.indices.first { fast[$0] != slow[$0] }
            #expect(firstByte == nil, "encoding \(count) values: byte \(firstByte ?? -1) differs")
            var back = [Float](repeating: 1, count: count), backSlow = back
            fast.withUnsafeBytes { bytes in
                BFloat16.decode(bytes.baseAddress!, count: count, into: &back)
                BFloat16.decodeBaseline(bytes.baseAddress!, count: count, into: &backSlow)
            }
            let firstValue = back.indices.first { back[$0].bitPattern != backSlow[$0].bitPattern }
            #expect(firstValue == nil, "decoding \(count) values: value \(firstValue ?? -1) differs")
        }
        if !VectorMath.usesAVX2 { print("wireEncodingIsTheSameOnEveryPath compared the Swift path with itself: this CPU has no AVX2") }
    }
}
