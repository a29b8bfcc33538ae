extension Variable {
    /// Max pooling over kernel × kernel windows with the given stride (stride 1 overlaps them).
    /// The gradient goes to the first maximum of each window.
    public func maxPool2d(kernel: Int, stride: Int) -> Variable {
        pool2d(kernel: kernel, stride: stride, average: false)
    }

    /// Average pooling over kernel × kernel windows.
    public func avgPool2d(kernel: Int, stride: Int) -> Variable {
        pool2d(kernel: kernel, stride: stride, average: true)
    }

    func pool2d(kernel: Int, stride: Int, average: Bool) -> Variable {
        let x = value
        precondition(x.rank == 4, "pooling needs [B, C, H, W], got \(x.shape)")
        let (planes, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
        let oh = (h - kernel) / stride + 1, ow = (w - kernel) / stride + 1
        var y = Tensor(uninitializedShape: [x.shape[0], x.shape[1], oh, ow])
        var argmax = [Int32](repeating: 0, count: average ? 0 : y.count)
        let scale = 1 / Float(kernel * kernel)
        x.withUnsafeBufferPointer { src in y.withUnsafeMutableBufferPointer { dst in
            if !average && kernel == 2 && stride == 2 {
                // LeNet's pooling, unrolled: the same first-maximum rule as the general loop.
                argmax.withUnsafeMutableBufferPointer { arg in
                    for p in 0..<planes { for oy in 0..<oh {
                        let top = (p * h + 2 * oy) * w
                        let vectorized = Self.maxPool2x2Row(src.baseAddress!, top: top, width: w, outputs: ow,
                                                            into: dst.baseAddress! + (p * oh + oy) * ow,
                                                            argmax: arg.baseAddress! + (p * oh + oy) * ow)
                        for ox in vectorized..<ow {
                            let a = top + 2 * ox
                            var best = -Float.infinity, where_ = 0
                            if src[a] > best { best = src[a]; where_ = a }
                            if src[a + 1] > best { best = src[a + 1]; where_ = a + 1 }
                            if src[a + w] > best { best = src[a + w]; where_ = a + w }
                            if src[a + w + 1] > best { best = src[a + w + 1]; where_ = a + w + 1 }
                            let out = (p * oh + oy) * ow + ox
                            dst[out] = best
                            arg[out] = Int32(where_)
                        }
                    } }
                }
                return
            }
            for p in 0..<planes { for oy in 0..<oh { for ox in 0..<ow {
                let out = (p * oh + oy) * ow + ox
                var best = -Float.infinity, where_ = 0, total: Float = 0
                for i in 0..<kernel { for j in 0..<kernel {
                    let at = (p * h + oy * stride + i) * w + ox * stride + j
                    let v = src[at]
                    total += v
                    if v > best { best = v; where_ = at }
                } }
                if average { dst[out] = total * scale } else { dst[out] = best; argmax[out] = Int32(where_) }
            } } }
        } }
        return tape.record(y, inputs: [self]) { dy, _ in
            var dx = Tensor.zeros(x.shape)
            dy.withUnsafeBufferPointer { g in dx.withUnsafeMutableBufferPointer { d in
                if !average {
                    for k in 0..<g.count { d[Int(argmax[k])] += g[k] }
                    return
                }
                for p in 0..<planes { for oy in 0..<oh { for ox in 0..<ow {
                    let share = g[(p * oh + oy) * ow + ox] * scale
                    for i in 0..<kernel { for j in 0..<kernel { d[(p * h + oy * stride + i) * w + ox * stride + j] += share } }
                } } }
            } }
            return [dx]
        }
    }

    /// Eight 2 × 2 windows of one output row at a time: the two input rows' 16 columns are split
    /// into even and odd columns, and the four candidates are taken in the scalar loop's order
    /// with its strict >, so the maxima and the first-maximum indices are the same. Returns how
    /// many outputs it wrote (a multiple of eight; the scalar loop does the rest).
    @inline(__always)
    static func maxPool2x2Row(_ src: UnsafePointer<Float>, top: Int, width w: Int, outputs ow: Int,
                              into dst: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>) -> Int {
        let raw = UnsafeRawPointer(src)
        let lanes = SIMD8<Int32>(0, 2, 4, 6, 8, 10, 12, 14)
        var ox = 0
        while ox + 8 <= ow {
            let a = top + 2 * ox
            let upper = raw.loadUnaligned(fromByteOffset: 4 * a, as: SIMD16<Float>.self)
            let lower = raw.loadUnaligned(fromByteOffset: 4 * (a + w), as: SIMD16<Float>.self)
            let base = SIMD8<Int32>(repeating: Int32(a)) &+ lanes
            var best = SIMD8<Float>(repeating: -.infinity), at = SIMD8<Int32>(repeating: 0)
            func take(_ candidate: SIMD8<Float>, at offset: Int) {
                let larger = candidate .> best
                best.replace(with: candidate, where: larger)
                at.replace(with: base &+ Int32(offset), where: larger)
            }
            take(upper.evenHalf, at: 0); take(upper.oddHalf, at: 1); take(lower.evenHalf, at: w); take(lower.oddHalf, at: w + 1)
            UnsafeMutableRawPointer(dst + ox).storeBytes(of: best, as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(argmax + ox).storeBytes(of: at, as: SIMD8<Int32>.self)
            ox += 8
        }
        return ox
    }
}
