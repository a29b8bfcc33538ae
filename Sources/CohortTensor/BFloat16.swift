import CVectorMath

/// The precision gradients and weights travel in between the coordinator and its workers
/// (`cluster.wire_dtype`).
///
/// With `bf16` a value on the wire is a bfloat16: the top 16 bits of a float32, rounded to
/// nearest, ties to even. So that every placement of workers still gives the same bits, the
/// rounding is not left to the wire: it is part of the arithmetic, wherever it runs (see
/// `GradientTree.precision`). Every tree node's gradient sum, the leaves and the root included,
/// is rounded to bfloat16 as soon as it is made, and workers compute on the weights rounded to
/// bfloat16. The coordinator keeps the float32 weights and optimizer state (the master copy the
/// update writes, as mixed-precision training does), so small updates are not lost.
public enum WireDType: String, Sendable, Codable, CaseIterable {
    case fp32
    case bf16

    /// Bytes per value on the wire.
    public var byteWidth: Int { self == .bf16 ? 2 : 4 }

    /// d = a + b for `count` floats, as the gradient tree adds in this precision (with bf16 both
    /// operands and the sum rounded, `BFloat16.add`); d may be a.
    public func add(_ count: Int, into d: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>) {
        if self == .bf16 {
            BFloat16.add(count, into: d, a, b)
        } else {
            Lanes.map(count, into: d, a, b) { x, y in x + y }
        }
    }

    /// The weights workers compute on: these weights, or with bf16 a copy rounded to bfloat16
    /// (the coordinator keeps the float32 ones, the master copy the update writes).
    public func working(_ weights: [Tensor]) -> [Tensor] {
        self == .bf16 ? weights.map { $0.roundedToBFloat16() } : weights
    }
}

/// Round-to-nearest-even conversion between float32 and bfloat16, eight lanes at a time.
public enum BFloat16 {
    /// The C kernels write and read the wire's little-endian halves as the CPU's own.
    static let isLittleEndian = 1.littleEndian == 1

    /// `v` rounded to the nearest bfloat16 (ties to even), as a float32. NaN stays NaN (quiet),
    /// ±∞ stays ±∞, and a finite value beyond bfloat16's range becomes ±∞, as IEEE rounding does.
    @inlinable @inline(__always)
    public static func round(_ v: Lanes.Vector) -> Lanes.Vector {
        let bits = unsafeBitCast(v, to: SIMD8<UInt32>.self)
        let odd = (bits &>> 16) & 1
        let rounded = (bits &+ 0x7FFF &+ odd) & 0xFFFF_0000
        // A NaN whose payload sits in the low half would round to ∞ or carry into the sign: it
        // is kept, made quiet. The lanes that are NaN (|x| above ∞'s bits) as all-ones, from the
        // sign of ∞ − |x|: SIMD masks and `replace(with:where:)` stay scalar, ten times slower.
        let quiet = (bits | 0x0040_0000) & 0xFFFF_0000
        let beyondInfinity = unsafeBitCast(0x7F80_0000 &- (bits & 0x7FFF_FFFF), to: SIMD8<Int32>.self) &>> 31
        let isNaN = unsafeBitCast(beyondInfinity, to: SIMD8<UInt32>.self)
        return unsafeBitCast((rounded & ~isNaN) | (quiet & isNaN), to: Lanes.Vector.self)
    }

    /// One float rounded the same way.
    public static func round(_ x: Float) -> Float { round(Lanes.Vector(repeating: x))[0] }

    /// Rounds `count` floats in place.
    public static func round(_ p: UnsafeMutablePointer<Float>, count: Int) {
        Lanes.map(count, into: p, p) { round($0) }
    }

    /// d[i] = round(round(a[i]) + round(b[i])), d may be a: a tree node's addition, whose
    /// operands may be leaves not rounded yet. A loop of its own, without a closure, so the
    /// rounding stays inline (the addition is bound by memory, not by these few lane operations).
    /// With AVX2 (`VectorMath.usesAVX2`) the C kernel does the same integer operations eight lanes
    /// to an instruction: the same bits (`BFloat16Tests`), about three times as fast here.
    public static func add(_ count: Int, into d: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>) {
        if VectorMath.usesAVX2 { return cohort_bf16_add_avx2(count, d, a, b) }
        addBaseline(count, into: d, a, b)
    }

    /// `add` in Swift lanes, for a CPU without AVX2 (and for the test that compares the two).
    static func addBaseline(_ count: Int, into d: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>) {
        var i = 0
        while i < count {
            let n = Swift.min(8, count - i)
            Lanes.store(round(round(Lanes.load(a, i, n)) + round(Lanes.load(b, i, n))), d, i, n)
            i += 8
        }
    }

    /// The bfloat16 bits of `count` floats, rounded: two bytes each, little-endian. With AVX2 a C
    /// kernel does the whole groups of 16 (the same rounding, `BFloat16Tests`); a chunk's values
    /// are encoded on both ends of every link, so this runs for every byte a step sends.
    public static func encode(_ source: UnsafePointer<Float>, count: Int, into destination: UnsafeMutableRawPointer) {
        var i = 0
        if VectorMath.usesAVX2 && isLittleEndian {
            i = cohort_bf16_encode_avx2(count, source, destination.assumingMemoryBound(to: UInt16.self))
        }
        encodeBaseline(source + i, count: count - i, into: destination + 2 * i)
    }

    /// `encode` in Swift lanes, for a CPU without AVX2, the last values, and the test.
    static func encodeBaseline(_ source: UnsafePointer<Float>, count: Int, into destination: UnsafeMutableRawPointer) {
        var i = 0
        while i < count {
            let n = Swift.min(8, count - i)
            let bits = unsafeBitCast(round(Lanes.load(source, i, n)), to: SIMD8<UInt32>.self) &>> 16
            for l in 0..<n { destination.storeBytes(of: UInt16(truncatingIfNeeded: bits[l]).littleEndian, toByteOffset: 2 * (i + l), as: UInt16.self) }
            i += 8
        }
    }

    /// Floats from `count` little-endian bfloat16 values: exact (the low 16 bits are zero).
    public static func decode(_ source: UnsafeRawPointer, count: Int, into destination: UnsafeMutablePointer<Float>) {
        var first = 0
        if VectorMath.usesAVX2 && isLittleEndian {
            first = cohort_bf16_decode_avx2(count, source.assumingMemoryBound(to: UInt16.self), destination)
        }
        decodeBaseline(source + 2 * first, count: count - first, into: destination + first)
    }

    /// `decode` one value at a time, for a CPU without AVX2, the last values, and the test.
    static func decodeBaseline(_ source: UnsafeRawPointer, count: Int, into destination: UnsafeMutablePointer<Float>) {
        for i in 0..<count {
            let half = UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
            destination[i] = Float(bitPattern: UInt32(half) << 16)
        }
    }
}

extension Tensor {
    /// A copy with every value rounded to bfloat16 (`BFloat16.round`).
    public func roundedToBFloat16() -> Tensor {
        var copy = Tensor(uninitializedShape: shape)
        let n = count
        copy.withUnsafeMutableBufferPointer { d in
            withUnsafeBufferPointer { s in if n > 0 { Lanes.map(n, into: d.baseAddress!, s.baseAddress!) { BFloat16.round($0) } } }
        }
        return copy
    }

    /// Rounds every value to bfloat16 in place (copying first if the storage is shared).
    public mutating func roundToBFloat16() {
        let n = count
        guard n > 0 else { return }
        BFloat16.round(mutablePointer, count: n)
    }
}
