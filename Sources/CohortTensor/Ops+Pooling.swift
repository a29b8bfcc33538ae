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
        // LeNet's pooling, four windows at a time (`Ops+MaxPool2x2.swift`); narrower rows take the
        // general loop, which has the same rule.
        let twoByTwo = !average && kernel == 2 && stride == 2 && ow >= 4
        x.withUnsafeBufferPointer { src in y.withUnsafeMutableBufferPointer { dst in
            if twoByTwo {
                argmax.withUnsafeMutableBufferPointer { arg in
                    Self.maxPool2x2(src.baseAddress!, planes: planes, height: h, width: w, into: dst.baseAddress!, argmax: arg.baseAddress!)
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
            if twoByTwo {
                var dx = Tensor(uninitializedShape: x.shape)
                dy.withUnsafeBufferPointer { g in dx.withUnsafeMutableBufferPointer { d in argmax.withUnsafeBufferPointer { arg in
                    Self.maxPool2x2Gradient(g.baseAddress!, argmax: arg.baseAddress!, planes: planes, height: h, width: w, into: d.baseAddress!)
                } } }
                return [dx]
            }
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
}
