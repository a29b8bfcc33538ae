/// Convolution and pooling on NCHW tensors.
///
/// Convolution is cross-correlation, as in the lecture notes' examples and every deep-learning
/// library: out[o, y, x] = b[o] + Σ_{c,i,j} w[o, c, i, j] · in[c, y·s + i − p, x·s + j − p].
/// It runs as im2col + one sgemm for the whole batch: the patches of all samples become the
/// columns of one matrix, so the product is large enough for BLAS to run at full speed.
public struct ConvGeometry: Sendable, Equatable {
    public let channels, height, width: Int
    public let kernelHeight, kernelWidth: Int
    public let stride, padding: Int

    public init(channels: Int, height: Int, width: Int, kernelHeight: Int, kernelWidth: Int, stride: Int, padding: Int) {
        self.channels = channels; self.height = height; self.width = width
        self.kernelHeight = kernelHeight; self.kernelWidth = kernelWidth; self.stride = stride; self.padding = padding
    }

    /// ⌊(n − f + 2p)/s⌋ + 1 (lecture 001).
    public static func outputSize(_ n: Int, kernel f: Int, stride s: Int, padding p: Int) -> Int {
        (n - f + 2 * p) / s + 1
    }

    public var outputHeight: Int { Self.outputSize(height, kernel: kernelHeight, stride: stride, padding: padding) }
    public var outputWidth: Int { Self.outputSize(width, kernel: kernelWidth, stride: stride, padding: padding) }
    /// Rows of the column matrix: one per (channel, kernel row, kernel column).
    public var patchSize: Int { channels * kernelHeight * kernelWidth }
    public var outputPixels: Int { outputHeight * outputWidth }

    /// Column matrix [patchSize, batch · outputPixels]; column (b, y, x) holds sample b's patch.
    /// Channels are spread over the cores (each writes its own rows, so the result is fixed).
    func im2col(_ input: UnsafePointer<Float>, batch: Int, into cols: UnsafeMutablePointer<Float>) {
        let (oh, ow, n) = (outputHeight, outputWidth, batch * outputPixels)
        for c in 0..<channels { for i in 0..<kernelHeight { for j in 0..<kernelWidth {
            let row = cols + ((c * kernelHeight + i) * kernelWidth + j) * n
            // Output columns x whose source column x·s + j − p lies inside the image.
            let (x0, x1) = validRange(offset: j - padding, size: width, outputs: ow)
            for b in 0..<batch {
                let plane = input + (b * channels + c) * height * width
                let out = row + b * outputPixels
                for y in 0..<oh {
                    let sy = y * stride + i - padding
                    let dst = out + y * ow
                    guard sy >= 0 && sy < height, x0 < x1 else { dst.update(repeating: 0, count: ow); continue }
                    let src = plane + sy * width + (j - padding)
                    if x0 > 0 { dst.update(repeating: 0, count: x0) }
                    if stride == 1 {
                        (dst + x0).update(from: src + x0, count: x1 - x0)
                    } else {
                        for x in x0..<x1 { dst[x] = src[x * stride] }
                    }
                    if x1 < ow { (dst + x1).update(repeating: 0, count: ow - x1) }
                }
            }
        } } }
    }

    /// The output columns [x0, x1) whose input column x·stride + offset is inside [0, size).
    func validRange(offset: Int, size: Int, outputs: Int) -> (Int, Int) {
        var x0 = 0
        while x0 < outputs && x0 * stride + offset < 0 { x0 += 1 }
        var x1 = outputs
        while x1 > x0 && (x1 - 1) * stride + offset >= size { x1 -= 1 }
        return (x0, x1)
    }

    /// The adjoint of im2col: adds each column entry back to the input pixel it came from.
    /// Parallel over channels: a channel's pixels only receive from that channel's rows, in a
    /// fixed order, so the sums do not depend on the threads.
    func col2im(_ cols: UnsafePointer<Float>, batch: Int, into input: UnsafeMutablePointer<Float>) {
        let (oh, ow, n) = (outputHeight, outputWidth, batch * outputPixels)
        for c in 0..<channels { for i in 0..<kernelHeight { for j in 0..<kernelWidth {
            let row = cols + ((c * kernelHeight + i) * kernelWidth + j) * n
            let (x0, x1) = validRange(offset: j - padding, size: width, outputs: ow)
            guard x0 < x1 else { continue }
            for b in 0..<batch {
                let plane = input + (b * channels + c) * height * width
                let src = row + b * outputPixels
                for y in 0..<oh {
                    let sy = y * stride + i - padding
                    guard sy >= 0 && sy < height else { continue }
                    let dst = plane + sy * width + (j - padding)
                    let from = src + y * ow
                    if stride == 1 {
                        for x in x0..<x1 { dst[x] += from[x] }
                    } else {
                        for x in x0..<x1 { dst[x * stride] += from[x] }
                    }
                }
            }
        } } }
    }
}

extension Variable {
    /// 2-D convolution (cross-correlation) of x [B, C, H, W] with weight [O, C, kh, kw] and bias [O].
    public func conv2d(weight w: Variable, bias b: Variable?, stride: Int = 1, padding: Int = 0) -> Variable {
        let x = value, wv = w.value
        precondition(x.rank == 4 && wv.rank == 4 && x.shape[1] == wv.shape[1],
                     "conv2d: input \(x.shape) does not fit weight \(wv.shape)")
        let batch = x.shape[0], outChannels = wv.shape[0]
        let g = ConvGeometry(channels: x.shape[1], height: x.shape[2], width: x.shape[3],
                             kernelHeight: wv.shape[2], kernelWidth: wv.shape[3], stride: stride, padding: padding)
        let n = batch * g.outputPixels
        var cols = Tensor(uninitializedShape: [g.patchSize, n])
        x.withUnsafeBufferPointer { px in cols.withUnsafeMutableBufferPointer { g.im2col(px.baseAddress!, batch: batch, into: $0.baseAddress!) } }
        // [O, K] · [K, B·P] → [O, B·P], then reorder to [B, O, P] with the bias added.
        let w2 = wv.reshaped([outChannels, g.patchSize])
        let product = w2.matmul(cols)
        var y = Tensor(uninitializedShape: [batch, outChannels, g.outputHeight, g.outputWidth])
        let bias = b?.value
        product.withUnsafeBufferPointer { src in y.withUnsafeMutableBufferPointer { dst in
            for o in 0..<outChannels {
                let add = bias?[flat: o] ?? 0
                for s in 0..<batch {
                    let from = src.baseAddress! + o * n + s * g.outputPixels
                    let to = dst.baseAddress! + (s * outChannels + o) * g.outputPixels
                    for p in 0..<g.outputPixels { to[p] = from[p] + add }
                }
            }
        } }
        let inputs = b.map { [self, w, $0] } ?? [self, w]
        let hasBias = b != nil
        return tape.record(y, inputs: inputs) { dy, needs in
            // Back to [O, B·P] to match the column matrix.
            var dyMatrix = Tensor(uninitializedShape: [outChannels, n])
            dy.withUnsafeBufferPointer { src in dyMatrix.withUnsafeMutableBufferPointer { dst in
                for s in 0..<batch { for o in 0..<outChannels {
                    (dst.baseAddress! + o * n + s * g.outputPixels)
                        .update(from: src.baseAddress! + (s * outChannels + o) * g.outputPixels, count: g.outputPixels)
                } }
            } }
            var dx: Tensor?
            if needs[0] {
                let dcols = w2.matmul(dyMatrix, transposeSelf: true)  // Wᵀ · Ȳ: [K, B·P]
                var grad = Tensor.zeros(x.shape)
                dcols.withUnsafeBufferPointer { c in grad.withUnsafeMutableBufferPointer { g.col2im(c.baseAddress!, batch: batch, into: $0.baseAddress!) } }
                dx = grad
            }
            let dw = needs[1] ? dyMatrix.matmul(cols, transposeOther: true).reshaped(wv.shape) : nil  // Ȳ · colsᵀ
            var grads: [Tensor?] = [dx, dw]
            if hasBias { grads.append(needs[2] ? dyMatrix.sum(axis: 1) : nil) }
            return grads
        }
    }

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
                        for ox in 0..<ow {
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
}
