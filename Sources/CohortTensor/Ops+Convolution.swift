/// Convolution and pooling on NCHW tensors.
///
/// Convolution is cross-correlation, as in the lecture notes' examples and every deep-learning
/// library: out[o, y, x] = b[o] + Σ_{c,i,j} w[o, c, i, j] · in[c, y·s + i − p, x·s + j − p].
/// It runs as im2col + one sgemm per chunk of samples: the patches of the chunk's samples become
/// the columns of one matrix, large enough for BLAS to run at full speed and small enough to stay
/// in cache (`ConvGeometry.samplesPerChunk`).
package struct ConvGeometry: Sendable, Equatable {
    package let channels, height, width: Int
    package let kernelHeight, kernelWidth: Int
    package let stride, padding: Int

    package init(channels: Int, height: Int, width: Int, kernelHeight: Int, kernelWidth: Int, stride: Int, padding: Int) {
        self.channels = channels; self.height = height; self.width = width
        self.kernelHeight = kernelHeight; self.kernelWidth = kernelWidth; self.stride = stride; self.padding = padding
    }

    /// ⌊(n − f + 2p)/s⌋ + 1 (lecture 001).
    package static func outputSize(_ n: Int, kernel f: Int, stride s: Int, padding p: Int) -> Int {
        (n - f + 2 * p) / s + 1
    }

    package var outputHeight: Int { Self.outputSize(height, kernel: kernelHeight, stride: stride, padding: padding) }
    package var outputWidth: Int { Self.outputSize(width, kernel: kernelWidth, stride: stride, padding: padding) }
    /// Rows of the column matrix: one per (channel, kernel row, kernel column).
    package var patchSize: Int { channels * kernelHeight * kernelWidth }
    package var outputPixels: Int { outputHeight * outputWidth }

    /// Column matrix [patchSize, batch · outputPixels]; column (b, y, x) holds sample b's patch.
    package func im2col(_ input: UnsafePointer<Float>, batch: Int, into cols: UnsafeMutablePointer<Float>) {
        if stride == 1 && outputWidth == width {
            im2colSameWidth(input, batch: batch, into: cols)
        } else if takesStrideOneIm2col {
            im2colStrideOne(input, batch: batch, into: cols)
        } else {
            im2colGeneral(input, batch: batch, into: cols)
        }
    }

    /// im2col for any stride, row by row of the output.
    package func im2colGeneral(_ input: UnsafePointer<Float>, batch: Int, into cols: UnsafeMutablePointer<Float>) {
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

    /// The adjoint of im2col: writes into `input` the sum of the column entries that came from each
    /// pixel. A channel's pixels only receive from that channel's rows, in a fixed order, so the
    /// sums do not depend on the threads. With `gather` (`takesStrideOneCol2im` geometries), the
    /// stride-1 gather runs, and it needs `columnSlack` readable floats on either side of `cols`.
    package func col2im(_ cols: UnsafePointer<Float>, batch: Int, into input: UnsafeMutablePointer<Float>, gather: Col2imGather?) {
        if let gather { return col2imStrideOne(cols, batch: batch, into: input, using: gather) }
        input.update(repeating: 0, count: batch * channels * height * width)
        col2imGeneral(cols, batch: batch, into: input)
    }

    /// col2im for any stride: adds each column entry onto its pixel, row after row of the matrix.
    package func col2imGeneral(_ cols: UnsafePointer<Float>, batch: Int, into input: UnsafeMutablePointer<Float>) {
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
                        Lanes.update(x1 - x0, dst + x0, reading: from + x0) { d, s in d += s }
                    } else {
                        for x in x0..<x1 { dst[x * stride] += from[x] }
                    }
                }
            }
        } } }
    }
}

/// Σ row[0..<count], eight lanes at a time in a fixed order.
@inline(__always)
func rowSum(_ row: UnsafePointer<Float>, count: Int) -> Float {
    var lanes = SIMD8<Float>()
    var p = 0
    while p + 8 <= count {
        lanes += UnsafeRawPointer(row + p).loadUnaligned(as: SIMD8<Float>.self)
        p += 8
    }
    var total = lanes.sum()
    while p < count { total += row[p]; p += 1 }
    return total
}

extension ConvGeometry {
    /// Column-matrix entries per chunk: 256 KiB of floats, so a chunk's columns stay in the core's
    /// L2 cache between im2col, the product and (backward) col2im, instead of a whole batch's
    /// columns (12.5 MB for LeNet's second layer at 32 samples) streaming through memory four
    /// times. (LeNet's second layer then runs sample by sample, its first in chunks of 3; 1 MiB
    /// chunks measured 3-8 % slower on two threads.)
    static let chunkBudget = 1 << 16

    /// Samples per chunk. It depends on the geometry only, never on threads or workers, so the
    /// sums (and the weight gradient accumulated chunk by chunk) are the same everywhere.
    func samplesPerChunk(batch: Int) -> Int {
        max(1, min(batch, Self.chunkBudget / max(1, patchSize * outputPixels)))
    }
}

extension Variable {
    /// 2-D convolution (cross-correlation) of x [B, C, H, W] with weight [O, C, kh, kw] and bias [O].
    ///
    /// The batch runs in chunks of samples (`samplesPerChunk`): im2col of the chunk, one sgemm
    /// W [O, K] · cols [K, s·P], and the product reordered into NCHW with the bias. The backward
    /// pass rebuilds each chunk's columns (cheaper than keeping a whole batch's columns in memory)
    /// for ∂W += Ȳ · colsᵀ, and turns Wᵀ · Ȳ back into ∂x with col2im while it is still in cache.
    ///
    /// `relu: true` also applies max(0, ·), in the same passes over the output and its gradient:
    /// the bits of a ReLU after the convolution, without writing and reading the activations a
    /// second time (LeNet's activations are several MB a micro-batch, larger than the L2 cache).
    public func conv2d(weight w: Variable, bias b: Variable?, stride: Int = 1, padding: Int = 0, relu: Bool = false) -> Variable {
        let x = value, wv = w.value
        precondition(x.rank == 4 && wv.rank == 4 && x.shape[1] == wv.shape[1],
                     "conv2d: input \(x.shape) does not fit weight \(wv.shape)")
        let g = ConvGeometry(channels: x.shape[1], height: x.shape[2], width: x.shape[3],
                             kernelHeight: wv.shape[2], kernelWidth: wv.shape[3], stride: stride, padding: padding)
        let y = g.forward(x, weight: wv, bias: b?.value, relu: relu)
        let inputs = b.map { [self, w, $0] } ?? [self, w]
        let hasBias = b != nil
        return tape.record(y, inputs: inputs) { dy, needs in
            let (dx, dw, db) = g.backward(dy, input: x, weight: wv, needs: (needs[0], needs[1], hasBias && needs[2]),
                                          activated: relu ? y : nil)
            return hasBias ? [dx, dw, db] : [dx, dw]
        }
    }
}

extension ConvGeometry {
    /// y = W ⋆ x + b, chunk by chunk of samples (see `conv2d`); with `relu`, max(0, y), taken
    /// while the chunk's outputs are still in cache.
    func forward(_ x: Tensor, weight wv: Tensor, bias: Tensor?, relu: Bool = false) -> Tensor {
        let batch = x.shape[0], outChannels = wv.shape[0]
        let (k, pixels) = (patchSize, outputPixels)
        let chunk = samplesPerChunk(batch: batch)
        let inputSize = channels * height * width, outputSize = outChannels * pixels
        var y = Tensor(uninitializedShape: [batch, outChannels, outputHeight, outputWidth])
        let cols = UnsafeMutablePointer<Float>.allocate(capacity: k * chunk * pixels)
        let product = UnsafeMutablePointer<Float>.allocate(capacity: outChannels * chunk * pixels)
        defer { cols.deallocate(); product.deallocate() }
        x.withUnsafeBufferPointer { px in wv.withUnsafeBufferPointer { pw in y.withUnsafeMutableBufferPointer { py in
            for first in Swift.stride(from: 0, to: batch, by: chunk) {
                let count = min(chunk, batch - first), n = count * pixels
                im2col(px.baseAddress! + first * inputSize, batch: count, into: cols)
                // [O, K] · [K, s·P] → [O, s·P], then to [s, O, P] with the bias added. One
                // sample's product is already its [O, P] output.
                let sample = py.baseAddress! + first * outputSize
                BLAS.gemm(transA: false, transB: false, m: outChannels, n: n, k: k,
                          a: pw.baseAddress!, lda: k, b: cols, ldb: n, beta: 0, c: count == 1 ? sample : product, ldc: n)
                if count == 1 {
                    if let bias { for o in 0..<outChannels { let add = bias[flat: o], to = sample + o * pixels; for p in 0..<pixels { to[p] += add } } }
                } else {
                    for o in 0..<outChannels {
                        let add = bias?[flat: o] ?? 0
                        for s in 0..<count {
                            let from = product + o * n + s * pixels
                            let to = py.baseAddress! + (first + s) * outputSize + o * pixels
                            for p in 0..<pixels { to[p] = from[p] + add }
                        }
                    }
                }
                if relu { Lanes.map(count * outputSize, into: sample, sample) { ReLU.value($0) } }
            }
        } } }
        return y
    }

    /// ∂x, ∂W and ∂b from Ȳ, chunk by chunk in a fixed order (see `conv2d`). With `activated`
    /// (the output of `forward(relu: true)`), Ȳ is first passed back through the ReLU, as the
    /// ReLU layer would: Ȳ · ReLU′, where the output is positive exactly where the input was.
    func backward(_ dy: Tensor, input x: Tensor, weight wv: Tensor, needs: (input: Bool, weight: Bool, bias: Bool),
                  activated: Tensor? = nil) -> (Tensor?, Tensor?, Tensor?) {
        let batch = x.shape[0], outChannels = wv.shape[0]
        let (k, pixels) = (patchSize, outputPixels)
        let chunk = samplesPerChunk(batch: batch)
        let inputSize = channels * height * width, outputSize = outChannels * pixels
        var dx = needs.input ? Tensor(uninitializedShape: x.shape) : nil
        var dw = needs.weight ? Tensor(uninitializedShape: wv.shape) : nil
        var biasSums = [Float](repeating: 0, count: needs.bias ? outChannels : 0)
        // The column matrix with col2im's slack on either side (its gather reads masked lanes there).
        let slack = columnSlack
        let paddedColumns = UnsafeMutablePointer<Float>.allocate(capacity: k * chunk * pixels + 2 * slack)
        paddedColumns.initialize(repeating: 0, count: slack)
        (paddedColumns + slack + k * chunk * pixels).initialize(repeating: 0, count: slack)
        let cols = paddedColumns + slack
        let gather = needs.input && takesStrideOneCol2im ? Col2imGather(self) : nil
        let copiesGradient = chunk > 1 || activated != nil
        let dyChunk = UnsafeMutablePointer<Float>.allocate(capacity: copiesGradient ? outChannels * chunk * pixels : 0)
        defer { paddedColumns.deallocate(); dyChunk.deallocate() }
        x.withUnsafeBufferPointer { px in wv.withUnsafeBufferPointer { pw in dy.withUnsafeBufferPointer { pdy in
            for first in Swift.stride(from: 0, to: batch, by: chunk) {
                let count = min(chunk, batch - first), n = count * pixels
                // Ȳ of the chunk as [O, s·P], matching the column matrix (one sample's is).
                let dyMatrix: UnsafePointer<Float> = copiesGradient ? UnsafePointer(dyChunk) : pdy.baseAddress! + first * outputSize
                if copiesGradient {
                    gatherGradient(pdy.baseAddress!, activated: activated, samples: first..<(first + count), outChannels: outChannels, into: dyChunk)
                }
                // ∂b: Σ over samples and pixels, sample by sample in order.
                if needs.bias {
                    for s in 0..<count { for o in 0..<outChannels { biasSums[o] += rowSum(dyMatrix + o * n + s * pixels, count: pixels) } }
                }
                if dw != nil {
                    im2col(px.baseAddress! + first * inputSize, batch: count, into: cols)
                    // ∂W (+)= Ȳ · colsᵀ, chunk after chunk in a fixed order.
                    dw!.withUnsafeMutableBufferPointer { pdw in
                        BLAS.gemm(transA: false, transB: true, m: outChannels, n: k, k: n,
                                  a: dyMatrix, lda: n, b: cols, ldb: n,
                                  beta: first == 0 ? 0 : 1, c: pdw.baseAddress!, ldc: k)
                    }
                }
                if dx != nil {
                    // Wᵀ · Ȳ: [K, s·P], added back onto the chunk's pixels.
                    BLAS.gemm(transA: true, transB: false, m: k, n: n, k: outChannels,
                              a: pw.baseAddress!, lda: k, b: dyMatrix, ldb: n, beta: 0, c: cols, ldc: n)
                    dx!.withUnsafeMutableBufferPointer { pdx in
                        col2im(cols, batch: count, into: pdx.baseAddress! + first * inputSize, gather: gather)
                    }
                }
            }
        } } }
        return (dx, dw, needs.bias ? Tensor(shape: [outChannels], biasSums) : nil)
    }

    /// Ȳ of samples `range` as [O, s·P] (sample s's channel o at o·s·P + s·P), passed back
    /// through the ReLU when `activated` is its output.
    func gatherGradient(_ dy: UnsafePointer<Float>, activated: Tensor?, samples range: Range<Int>, outChannels: Int,
                        into matrix: UnsafeMutablePointer<Float>) {
        let pixels = outputPixels, n = range.count * pixels, outputSize = outChannels * pixels
        for (s, sample) in range.enumerated() { for o in 0..<outChannels {
            let row = sample * outputSize + o * pixels, to = matrix + o * n + s * pixels
            guard let activated else { to.update(from: dy + row, count: pixels); continue }
            activated.withUnsafeBufferPointer { y in
                Lanes.map(pixels, into: to, dy + row, y.baseAddress! + row) { g, y in g * ReLU.derivative(x: y, y: y) }
            }
        } }
    }
}
