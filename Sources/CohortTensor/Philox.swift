/// Philox4x32-10, the counter-based generator of Salmon et al., "Parallel random numbers:
/// as easy as 1, 2, 3" (SC 2011).
///
/// A counter-based generator turns (key, counter) into random bits with no hidden state, so the
/// random number for (seed, step, sample, layer) is the same whichever process asks for it. That
/// is what keeps dropout masks and initial weights independent of the number of workers.
public struct Philox: Sendable {
    public let key: (UInt32, UInt32)

    public init(seed: UInt64) {
        key = (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32))
    }

    /// Four 32-bit random words for a 128-bit counter.
    @inlinable
    public func block(_ c0: UInt32, _ c1: UInt32, _ c2: UInt32, _ c3: UInt32) -> (UInt32, UInt32, UInt32, UInt32) {
        var c = (c0, c1, c2, c3)
        var k = key
        for _ in 0..<10 {
            let p0 = UInt64(0xD251_1F53) &* UInt64(c.0)
            let p1 = UInt64(0xCD9E_8D57) &* UInt64(c.2)
            c = (UInt32(truncatingIfNeeded: p1 >> 32) ^ c.1 ^ k.0, UInt32(truncatingIfNeeded: p1),
                 UInt32(truncatingIfNeeded: p0 >> 32) ^ c.3 ^ k.1, UInt32(truncatingIfNeeded: p0))
            k = (k.0 &+ 0x9E37_79B9, k.1 &+ 0xBB67_AE85)
        }
        return c
    }

    /// A uniform Float in [0, 1) from 24 random bits.
    @inlinable
    public static func unit(_ bits: UInt32) -> Float { Float(bits >> 8) * (1.0 / 16_777_216.0) }
}

/// Names a stream of random numbers: everything that must not share random numbers gets a
/// different stream. `purpose` separates init from dropout from shuffling, `a` and `b` are free
/// (layer index, step, ...), and the element index runs in the last counter word.
public struct RandomStream: Sendable, Hashable {
    public var purpose: UInt32
    public var a: UInt32
    public var b: UInt32

    public init(purpose: UInt32, a: UInt32 = 0, b: UInt32 = 0) {
        self.purpose = purpose; self.a = a; self.b = b
    }

    public static let initialization: UInt32 = 1
    public static let dropout: UInt32 = 2
    public static let shuffle: UInt32 = 3
    public static let data: UInt32 = 4
}

extension Philox {
    /// The i-th uniform [0, 1) number of a stream.
    @inlinable
    public func uniform(_ stream: RandomStream, _ index: UInt32) -> Float {
        Philox.unit(block(stream.purpose, stream.a, stream.b, index).0)
    }

    /// The i-th standard normal number of a stream (Box–Muller on one block).
    @inlinable
    public func normal(_ stream: RandomStream, _ index: UInt32) -> Float {
        let r = block(stream.purpose, stream.a, stream.b, index)
        let u1 = (Double(r.0) + 1) / 4_294_967_297.0  // (0, 1], so the log is finite
        let u2 = Double(r.1) / 4_294_967_296.0
        return Float((-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2))
    }

    /// A 64-bit random integer, for seeding permutations.
    @inlinable
    public func word64(_ stream: RandomStream, _ index: UInt32) -> UInt64 {
        let r = block(stream.purpose, stream.a, stream.b, index)
        return UInt64(r.0) << 32 | UInt64(r.1)
    }
}

@usableFromInline func _log(_ x: Double) -> Double { Foundation.log(x) }
@usableFromInline func _cos(_ x: Double) -> Double { Foundation.cos(x) }

import Foundation

extension Tensor {
    /// Uniform in [low, high), element i drawn from counter i of the stream.
    public static func uniform(
        _ shape: [Int], low: Float = 0, high: Float = 1, seed: UInt64, stream: RandomStream
    ) -> Tensor {
        var t = Tensor(uninitializedShape: shape)
        let rng = Philox(seed: seed)
        t.withUnsafeMutableBufferPointer { p in
            for i in 0..<p.count { p[i] = low + (high - low) * rng.uniform(stream, UInt32(i)) }
        }
        return t
    }

    /// Normal with the given mean and standard deviation, element i from counter i of the stream.
    public static func normal(
        _ shape: [Int], mean: Float = 0, std: Float = 1, seed: UInt64, stream: RandomStream
    ) -> Tensor {
        var t = Tensor(uninitializedShape: shape)
        let rng = Philox(seed: seed)
        t.withUnsafeMutableBufferPointer { p in
            for i in 0..<p.count { p[i] = mean + std * rng.normal(stream, UInt32(i)) }
        }
        return t
    }
}

/// A seeded permutation of 0..<n (Fisher–Yates driven by Philox), identical on every machine.
public func seededPermutation(_ n: Int, seed: UInt64, stream: RandomStream) -> [Int] {
    var order = Array(0..<n)
    let rng = Philox(seed: seed)
    guard n > 1 else { return order }
    for i in stride(from: n - 1, to: 0, by: -1) {
        let bound = UInt64(i + 1)
        // Multiply-shift maps 64 random bits to [0, bound) with negligible bias for n < 2^32.
        let r = rng.word64(stream, UInt32(truncatingIfNeeded: i))
        let j = Int(r.multipliedFullWidth(by: bound).high)
        order.swapAt(i, j)
    }
    return order
}
