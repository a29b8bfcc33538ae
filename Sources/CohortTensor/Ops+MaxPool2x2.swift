/// LeNet's pooling, 2 × 2 windows at stride 2, four windows of an output row at a time.
///
/// The rule is the general loop's: the first maximum of the window in row order (strict >,
/// from −∞), and index 0 of the tensor when no value beats −∞ (a window of NaN only). Rows have
/// at least four windows (`pool2d` sends narrower ones to the general loop) and go in groups of
/// four, the last one overlapping (`Lanes.overlappingGroups`).
extension Variable {
    static func maxPool2x2(_ src: UnsafePointer<Float>, planes: Int, height h: Int, width w: Int,
                           into dst: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>) {
        let (oh, ow) = (h / 2, w / 2)
        for p in 0..<planes { for oy in 0..<oh {
            let top = (p * h + 2 * oy) * w, out = (p * oh + oy) * ow
            Lanes.overlappingGroups(ow, width: 4) { at, _ in
                let a = top + 2 * at
                let upper = UnsafeRawPointer(src + a).loadUnaligned(as: SIMD8<Float>.self)
                let lower = UnsafeRawPointer(src + a + w).loadUnaligned(as: SIMD8<Float>.self)
                let first = SIMD4<Int32>(repeating: Int32(a)) &+ SIMD4(0, 2, 4, 6)
                var best = SIMD4<Float>(repeating: -.infinity), index = SIMD4<Int32>(repeating: 0)
                take(upper.evenHalf, at: first, into: &best, &index)
                take(upper.oddHalf, at: first &+ 1, into: &best, &index)
                take(lower.evenHalf, at: first &+ Int32(w), into: &best, &index)
                take(lower.oddHalf, at: first &+ Int32(w + 1), into: &best, &index)
                UnsafeMutableRawPointer(dst + out + at).storeBytes(of: best, as: SIMD4<Float>.self)
                UnsafeMutableRawPointer(argmax + out + at).storeBytes(of: index, as: SIMD4<Int32>.self)
            }
        } }
    }

    /// Keeps the candidates that beat the best so far (strict >), and where they are.
    @inline(__always)
    static func take(_ candidate: SIMD4<Float>, at position: SIMD4<Int32>, into best: inout SIMD4<Float>, _ index: inout SIMD4<Int32>) {
        let larger = candidate .> best
        best.replace(with: candidate, where: larger)
        index.replace(with: position, where: larger)
    }

    /// The input gradient: each window's output gradient goes to its maximum, and its other three
    /// entries (and a last row or column that no window covers) get +0, so nothing is zeroed
    /// first. The gradient is stored as 0 + g, the general loop's sum, so −0 becomes +0 there too.
    /// A window whose maximum lies outside it (index 0, for a window of NaN only) adds its
    /// gradient afterwards, in window order; index 0 belongs to the first window, so its terms
    /// still arrive in the general loop's order.
    static func maxPool2x2Gradient(_ g: UnsafePointer<Float>, argmax: UnsafePointer<Int32>, planes: Int, height h: Int, width w: Int,
                                   into d: UnsafeMutablePointer<Float>) {
        let (oh, ow) = (h / 2, w / 2)
        var strays: [Int] = []
        for p in 0..<planes {
            for oy in 0..<oh {
                let top = (p * h + 2 * oy) * w, out = (p * oh + oy) * ow
                spreadRow(g, argmax: argmax, out: out, windows: ow, top: top, width: w, into: d, strays: &strays)
                if w % 2 == 1 { d[top + w - 1] = 0; d[top + 2 * w - 1] = 0 }
            }
            if h % 2 == 1 { (d + (p * h + h - 1) * w).update(repeating: 0, count: w) }
        }
        for k in strays { d[Int(argmax[k])] += g[k] }
    }

    @inline(__always)
    static func keep(_ share: SIMD4<Float>, where hit: SIMDMask<SIMD4<Int32>>) -> SIMD4<Float> {
        SIMD4(repeating: 0).replacing(with: share, where: hit)
    }

    /// One output row of windows (at least four, from output `out`), four at a time.
    @inline(__always)
    static func spreadRow(_ g: UnsafePointer<Float>, argmax: UnsafePointer<Int32>, out: Int, windows ow: Int, top: Int, width w: Int,
                          into d: UnsafeMutablePointer<Float>, strays: inout [Int]) {
        Lanes.overlappingGroups(ow, width: 4) { at, fresh in
            let a = top + 2 * at
            let share = SIMD4<Float>(repeating: 0) + UnsafeRawPointer(g + out + at).loadUnaligned(as: SIMD4<Float>.self)
            let index = UnsafeRawPointer(argmax + out + at).loadUnaligned(as: SIMD4<Int32>.self)
            // Where in the window each maximum is: 0, 1, w or w + 1 (anything else is a stray).
            let offset = index &- (SIMD4<Int32>(repeating: Int32(a)) &+ SIMD4(0, 2, 4, 6))
            var upper = SIMD8<Float>(), lower = SIMD8<Float>()
            upper.evenHalf = keep(share, where: offset .== 0); upper.oddHalf = keep(share, where: offset .== 1)
            lower.evenHalf = keep(share, where: offset .== Int32(w)); lower.oddHalf = keep(share, where: offset .== Int32(w + 1))
            UnsafeMutableRawPointer(d + a).storeBytes(of: upper, as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(d + a + w).storeBytes(of: lower, as: SIMD8<Float>.self)
            // A stray's maximum is index 0, before its window (the first window holds index 0).
            // An overlapping last group skips the windows an earlier group saw.
            if offset.min() < 0 {
                for lane in 0..<4 where offset[lane] < 0 && at + lane >= fresh { strays.append(out + at + lane) }
            }
        }
    }
}
