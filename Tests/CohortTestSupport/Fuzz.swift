import Foundation

/// A small seeded generator, so a failing case can be replayed.
public struct SplitMix: RandomNumberGenerator {
    public var state: UInt64
    public init(state: UInt64) { self.state = state }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Mutations of a valid input: flipped, overwritten, inserted, deleted and repeated bytes,
/// with bias to the values that break parsers (0, 0xff, digits, quotes, brackets).
public func mutate(_ input: [UInt8], using rng: inout SplitMix, focus: Range<Int>? = nil) -> [UInt8] {
    var out = input
    let interesting: [UInt8] = [0, 0xff, 0x7f, 0x80, 0x30, 0x39, 0x2d, 0x22, 0x27, 0x5b, 0x5d, 0x7b, 0x7d, 0x3a, 0x2c, 0x0a, 0x2a, 0x26]
    for _ in 0..<Int.random(in: 1...4, using: &rng) {
        let area = focus.map { $0.clamped(to: 0..<max(out.count, 1)) } ?? 0..<max(out.count, 1)
        guard !out.isEmpty, !area.isEmpty else { out.append(interesting.randomElement(using: &rng)!); continue }
        let at = Int.random(in: area, using: &rng)
        switch Int.random(in: 0..<5, using: &rng) {
        case 0: out[at] ^= UInt8(1 << Int.random(in: 0..<8, using: &rng))
        case 1: out[at] = interesting.randomElement(using: &rng)!
        case 2: out.insert(interesting.randomElement(using: &rng)!, at: at)
        case 3: out.remove(at: at)
        default: out.insert(contentsOf: out[at..<min(out.count, at + Int.random(in: 1...8, using: &rng))], at: at)
        }
    }
    return out
}

