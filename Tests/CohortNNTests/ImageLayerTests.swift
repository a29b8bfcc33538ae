@testable import CohortNN
@testable import CohortTensor
import CohortTestSupport
import Foundation
import Testing

func conv(_ input: [[Float]], _ kernel: [[Float]], stride: Int = 1, padding: Int = 0) -> Tensor {
    let tape = Tape.noGradient()
    let x = Tensor(shape: [1, 1, input.count, input[0].count], input.flatMap { $0 })
    let w = Tensor(shape: [1, 1, kernel.count, kernel[0].count], kernel.flatMap { $0 })
    let y = tape.constant(x).conv2d(weight: tape.constant(w), bias: nil, stride: stride, padding: padding).value
    return y.reshaped([y.shape[2], y.shape[3]])
}

@Suite struct ImageLayerTests {
    @Test func lectureConvolutionExamples() {
        // Lecture 000: vertical edge detector on rows [1, 5, 5, 5].
        let m1: [[Float]] = Array(repeating: [1, 5, 5, 5], count: 4)
        #expect(conv(m1, [[1, -1], [1, -1]]) == Tensor([[-8, 0, 0], [-8, 0, 0], [-8, 0, 0]]))
        // Lecture 001 (ERRATA.md): f ⋆ g with g = [1, 0, −1] in each row.
        let f: [[Float]] = [[1, 20, 20, 20, 1], [20, 1, 1, 1, 20], [20, 1, 1, 1, 20], [1, 20, 1, 20, 1], [1, 1, 20, 1, 1]]
        #expect(conv(f, Array(repeating: [1, 0, -1], count: 3)) == Tensor([[19, 0, -19], [38, 0, -38], [0, 0, 0]]))
    }

    @Test func outputSizeRule() {
        // (n − f + 2p)/s + 1: 5×5 with 3×3 stride 2 → 2×2; 7×7 with 3×3 → 5×5; 32×32, 5×5, p = 2 → 32×32.
        let five = [[Float]](repeating: [Float](repeating: 1, count: 5), count: 5)
        #expect(conv(five, [[Float]](repeating: [1, 1, 1], count: 3), stride: 2).shape == [2, 2])
        #expect(conv([[Float]](repeating: [Float](repeating: 1, count: 7), count: 7), [[Float]](repeating: [1, 1, 1], count: 3)).shape == [5, 5])
        let big = conv([[Float]](repeating: [Float](repeating: 1, count: 32), count: 32),
                       [[Float]](repeating: [Float](repeating: 1, count: 5), count: 5), padding: 2)
        #expect(big.shape == [32, 32] && big[0, 0] == 9 && big[16, 16] == 25)
        #expect(ConvGeometry.outputSize(28, kernel: 5, stride: 1, padding: 2) == 28)
    }

    @Test func maxPoolingStrideTwoAndOne() {
        let x = Tensor(shape: [1, 1, 4, 4], [1, 3, 2, 4,
                                             5, 6, 1, 2,
                                             7, 2, 9, 0,
                                             1, 8, 3, 4])
        let tape = Tape.noGradient()
        #expect(tape.constant(x).maxPool2d(kernel: 2, stride: 2).value.scalars == [6, 4, 8, 9])
        #expect(tape.constant(x).maxPool2d(kernel: 2, stride: 1).value.scalars == [6, 6, 4, 7, 9, 9, 8, 9, 9])
        #expect(tape.constant(x).avgPool2d(kernel: 2, stride: 2).value.scalars == [3.75, 2.25, 4.5, 4])
    }

    /// A batch of 23 samples through LeNet's second convolution (and a strided, padded variant)
    /// gives what each sample gives alone: outputs, input gradients, and weight and bias
    /// gradients summed over the samples. (Batched im2col puts the samples side by side in one
    /// column matrix; an offset slip there would show up here.)
    @Test func batchedConvolutionMatchesSampleBySample() {
        for (stride, padding) in [(1, 2), (2, 1)] {
            let batch = 23
            let x = smoothRandom([batch, 20, 14, 14], seed: 31)
            let w = smoothRandom([6, 20, 5, 5], seed: 32, low: -0.2, high: 0.2)
            let b = smoothRandom([6], seed: 33)
            let perSample = x.count / batch
            // Outputs weighted differently everywhere (offset: the first sample's index), so
            // every gradient path is exercised.
            func run(_ input: Tensor, first: Int) -> (y: [Float], dx: [Float], dw: Tensor, db: Tensor) {
                let tape = Tape()
                let (vx, vw, vb) = (tape.leaf(input), tape.leaf(w), tape.leaf(b))
                let y = vx.conv2d(weight: vw, bias: vb, stride: stride, padding: padding)
                let perOutput = y.value.count / input.shape[0]
                let weights = Tensor(shape: y.value.shape, (0..<y.value.count).map { Float(($0 + first * perOutput) % 7) - 3 })
                tape.backward(from: (y * tape.constant(weights)).sum())
                return (y.value.scalars, vx.gradient!.scalars, vw.gradient!, vb.gradient!)
            }
            let whole = run(x, first: 0)
            let perOutput = whole.y.count / batch
            var dw = Tensor.zeros(w.shape), db = Tensor.zeros(b.shape)
            var worst: Float = 0
            func compare(_ a: ArraySlice<Float>, _ b: [Float]) {
                for (u, v) in zip(a, b) { worst = max(worst, abs(u - v) / max(1, abs(v))) }
            }
            for s in 0..<batch {
                let one = run(Tensor(shape: [1, 20, 14, 14], Array(x.scalars[(s * perSample)..<((s + 1) * perSample)])), first: s)
                compare(whole.y[(s * perOutput)..<((s + 1) * perOutput)], one.y)
                compare(whole.dx[(s * perSample)..<((s + 1) * perSample)], one.dx)
                dw.add(one.dw); db.add(one.db)
            }
            compare(whole.dw.scalars[...], dw.scalars)
            compare(whole.db.scalars[...], db.scalars)
            // Float sums in another order: about 1e-4 apart; an offset slip is off by O(1).
            #expect(worst < 1e-3, "stride \(stride), padding \(padding): relative difference \(worst)")
            #expect(whole.dw.squaredNorm() > 0 && whole.dx.contains { $0 != 0 })
        }
    }

    /// Convolution and its three gradients against the definition, summed in Double by direct
    /// loops, for "same" geometries (LeNet's, which take the block-copy im2col), valid and strided
    /// ones, and batches that run in several chunks with a shorter last one.
    @Test func convolutionMatchesDirectLoops() {
        // (batch, channels, height, width, outputs, kernel, stride, padding)
        let cases = [(5, 20, 14, 14, 6, 5, 1, 2), (14, 1, 28, 28, 4, 5, 1, 2), (3, 3, 7, 6, 4, 3, 1, 1),
                     (2, 2, 9, 9, 3, 3, 2, 1), (2, 3, 5, 8, 2, 3, 1, 0), (2, 2, 6, 6, 3, 5, 1, 1), (1, 2, 3, 3, 2, 5, 1, 2)]
        for (batch, c, h, w, o, k, s, p) in cases {
            let tag = "\(batch)×\(c)×\(h)×\(w) → \(o), k \(k), s \(s), p \(p)"
            let (oh, ow) = (ConvGeometry.outputSize(h, kernel: k, stride: s, padding: p),
                            ConvGeometry.outputSize(w, kernel: k, stride: s, padding: p))
            let x = smoothRandom([batch, c, h, w], seed: 41), wt = smoothRandom([o, c, k, k], seed: 42, low: -0.3, high: 0.3)
            let b = smoothRandom([o], seed: 43), r = smoothRandom([batch, o, oh, ow], seed: 44)
            let tape = Tape()
            let (vx, vw, vb) = (tape.leaf(x), tape.leaf(wt), tape.leaf(b))
            let y = vx.conv2d(weight: vw, bias: vb, stride: s, padding: p)
            tape.backward(from: y, seed: r)
            var ry = [Double](repeating: 0, count: batch * o * oh * ow)
            var rdx = [Double](repeating: 0, count: x.count), rdw = [Double](repeating: 0, count: wt.count)
            var rdb = [Double](repeating: 0, count: o)
            for n in 0..<batch { for q in 0..<o { for yy in 0..<oh { for xx in 0..<ow {
                let out = ((n * o + q) * oh + yy) * ow + xx
                var total = Double(b[flat: q])
                let up = Double(r[flat: out])
                rdb[q] += up
                for ch in 0..<c { for i in 0..<k { for j in 0..<k {
                    let (sy, sx) = (yy * s + i - p, xx * s + j - p)
                    guard sy >= 0 && sy < h && sx >= 0 && sx < w else { continue }
                    let (xi, wi) = (((n * c + ch) * h + sy) * w + sx, ((q * c + ch) * k + i) * k + j)
                    total += Double(wt[flat: wi]) * Double(x[flat: xi])
                    rdx[xi] += up * Double(wt[flat: wi])
                    rdw[wi] += up * Double(x[flat: xi])
                } } }
                ry[out] = total
            } } } }
            func worst(_ got: Tensor?, _ want: [Double]) -> Double {
                guard let got, got.count == want.count else { return .infinity }
                return zip(got.scalars, want).map { abs(Double($0) - $1) / max(1, abs($1)) }.max() ?? 0
            }
            #expect(y.value.shape == [batch, o, oh, ow], "\(tag)")
            #expect(worst(y.value, ry) < 1e-4, "\(tag): output")
            #expect(worst(vx.gradient, rdx) < 1e-4, "\(tag): input gradient")
            #expect(worst(vw.gradient, rdw) < 1e-4, "\(tag): weight gradient")
            #expect(worst(vb.gradient, rdb) < 1e-4, "\(tag): bias gradient")
        }
    }

    /// Ties go to the first maximum of the window (row by row), as in the general loop, on two
    /// planes so that the plane offsets are exercised too.
    @Test func maxPoolingTiesGoToTheFirstMaximum() {
        let x = Tensor(shape: [1, 2, 2, 4], [5, 5, 1, 2,
                                             5, 5, 2, 2,
                                             0, 3, 7, 1,
                                             3, 1, 1, 7])
        let tape = Tape()
        let input = tape.leaf(x)
        let y = input.maxPool2d(kernel: 2, stride: 2)
        #expect(y.value.scalars == [5, 2, 3, 7])
        tape.backward(from: y.sum())
        #expect(input.gradient?.scalars == [1, 0, 0, 1,
                                            0, 0, 0, 0,
                                            0, 1, 1, 0,
                                            0, 0, 0, 0])
    }

    /// Rows wide enough for the eight-window path (20 columns: 8 windows, then 2 by the scalar
    /// loop), with ties, −∞ and NaN: the maxima and the first-maximum indices of the plain rule
    /// (strict >, from −∞, index 0 when no value beats it), in values and in the gradient.
    @Test func maxPoolingEightWindowsAtATimeKeepsTheRule() {
        let (planes, h, w) = (3, 4, 20)
        var values = (0..<(planes * h * w)).map { Float(($0 * 7919) % 5) }   // many ties
        values[3] = -.infinity; values[w + 2] = .nan; values[2 * w + 5] = .nan
        for k in [40, 41, 60, 61] { values[k] = .nan }   // a window of NaN only
        let tape = Tape()
        let input = tape.leaf(Tensor(shape: [1, planes, h, w], values))
        let y = input.maxPool2d(kernel: 2, stride: 2)
        var expected: [Float] = [], gradient = [Float](repeating: 0, count: values.count)
        for p in 0..<planes { for oy in 0..<(h / 2) { for ox in 0..<(w / 2) {
            var best = -Float.infinity, at = 0
            for k in [0, 1, w, w + 1] {
                let i = (p * h + 2 * oy) * w + 2 * ox + k
                if values[i] > best { best = values[i]; at = i }
            }
            expected.append(best)
            gradient[at] += 1
        } } }
        #expect(y.value.scalars.map(\.bitPattern) == expected.map(\.bitPattern))
        tape.backward(from: y.sum())
        #expect(input.gradient?.scalars == gradient)
    }

    /// Lecture 001's LeNet table, layer by layer: every output shape and every weight shape.
    @Test func leNetTable() throws {
        let layers: [any Layer] = [
            Conv2D(inChannels: 1, outChannels: 20, kernel: 5, padding: 2), Activation.relu, Pool2D(.max, kernel: 2),
            Conv2D(inChannels: 20, outChannels: 50, kernel: 5, padding: 2), Activation.relu, Pool2D(.max, kernel: 2),
            Flatten(), Linear(inFeatures: 2450, outFeatures: 500), Activation.relu, Linear(inFeatures: 500, outFeatures: 10),
        ]
        let model = try Sequential(inputShape: [1, 28, 28], layers: layers)
        var shape = [1, 28, 28]
        var shapes: [[Int]] = []
        for layer in layers { shape = try layer.outputShape(for: shape).get(); shapes.append(shape) }
        #expect(shapes == [[20, 28, 28], [20, 28, 28], [20, 14, 14], [50, 14, 14], [50, 14, 14], [50, 7, 7], [2450], [500], [500], [10]])
        #expect(model.parameterNames == ["0.weight", "0.bias", "3.weight", "3.bias", "7.weight", "7.bias", "9.weight", "9.bias"])
        #expect(model.parameterSpecs.map(\.spec.shape) == [[20, 1, 5, 5], [20], [50, 20, 5, 5], [50], [500, 2450], [500], [10, 500], [10]])
        // And a real forward pass produces [B, 10].
        let params = model.initialParameters(.pytorch, seed: 1)
        #expect(model.predict(Tensor.uniform([2, 1, 28, 28], seed: 1, stream: .init(purpose: 1)), parameters: params).shape == [2, 10])
    }

    @Test func gradientChecks() {
        let x = smoothRandom([2, 3, 7, 6], seed: 1)
        for (stride, padding) in [(1, 0), (1, 1), (2, 1), (1, 2), (3, 1)] {
            let w = smoothRandom([4, 3, 3, 3], seed: 2, low: -0.5, high: 0.5), b = smoothRandom([4], seed: 3)
            #expect(gradientMismatches([x, w, b]) { $0[0].conv2d(weight: $0[1], bias: $0[2], stride: stride, padding: padding) } == [])
        }
        // Pooling: distinct values so the max is unique in every window.
        let distinct = Tensor(shape: [2, 2, 6, 6], (0..<144).map { Float(($0 * 37) % 144) / 20 })
        #expect(gradientMismatches([distinct], step: 1e-3) { $0[0].maxPool2d(kernel: 2, stride: 2) } == [])
        #expect(gradientMismatches([distinct], step: 1e-3) { $0[0].maxPool2d(kernel: 3, stride: 1) } == [])
        #expect(gradientMismatches([x]) { $0[0].avgPool2d(kernel: 2, stride: 1) } == [])
        #expect(gradientMismatches([x]) { v in Flatten()(v[0], parameters: [], context: .evaluation) } == [])
    }

    @Test func residualBlocksWithAndWithoutProjection() throws {
        let same = try Residual(inputShape: [4], block: [Linear(inFeatures: 4, outFeatures: 4), Activation.tanh])
        #expect(same.shortcut == nil && same.parameterSpecs.map(\.name) == ["block.0.weight", "block.0.bias"])
        let projected = try Residual(inputShape: [4], block: [Linear(inFeatures: 4, outFeatures: 3), Activation.tanh])
        #expect(projected.parameterSpecs.map(\.name) == ["block.0.weight", "block.0.bias", "shortcut.weight"])
        let x = smoothRandom([3, 4], seed: 5)
        for block in [same, projected] {
            let params = block.parameterSpecs.enumerated().map { smoothRandom($0.element.shape, seed: UInt64(10 + $0.offset), low: -1, high: 1) }
            #expect(gradientMismatches([x] + params) { v in block(v[0], parameters: Array(v.dropFirst()), context: .evaluation) } == [])
        }
        // y = F(x) + x exactly when the shapes agree.
        let tape = Tape.noGradient()
        let w = Tensor.zeros([4, 4]), b = Tensor([1, 1, 1, 1])
        let y = try Residual(inputShape: [4], block: [Linear(inFeatures: 4, outFeatures: 4)])(
            tape.constant(x), parameters: [tape.constant(w), tape.constant(b)], context: .evaluation)
        #expect(y.value == x + Tensor(shape: [3, 4], repeating: 1))
        let conv = try Residual(inputShape: [2, 8, 8], block: [Conv2D(inChannels: 2, outChannels: 4, kernel: 3, stride: 2, padding: 1)])
        #expect(try conv.outputShape(for: [2, 8, 8]).get() == [4, 4, 4] && conv.parameterSpecs.last?.shape == [4, 2, 1, 1])
    }

    @Test func dropoutFollowsTheSampleNotTheBatch() {
        let tape = Tape.noGradient()
        let ones = Tensor.ones([3, 2000])
        let a = tape.constant(ones).dropout(rate: 0.3, seed: 7, step: 4, layer: 2, sampleIndices: [10, 11, 12]).value
        let b = tape.constant(ones.rows(0..<2)).dropout(rate: 0.3, seed: 7, step: 4, layer: 2, sampleIndices: [12, 10]).value
        #expect(a.rows(2..<3).scalars == b.rows(0..<1).scalars && a.rows(0..<1).scalars == b.rows(1..<2).scalars)
        let kept = a.scalars.filter { $0 != 0 }
        #expect(kept.allSatisfy { abs($0 - 1 / 0.7) < 1e-6 })
        #expect(abs(Double(kept.count) / 6000 - 0.7) < 0.03)
        let other = tape.constant(ones).dropout(rate: 0.3, seed: 7, step: 5, layer: 2, sampleIndices: [10, 11, 12]).value
        #expect(other != a, "another step, another mask")
        #expect(Dropout(rate: 0.5)(tape.constant(ones), parameters: [], context: .evaluation).value == ones)
        let x = smoothRandom([3, 5], seed: 8)
        #expect(gradientMismatches([x]) { $0[0].dropout(rate: 0.4, seed: 1, step: 0, layer: 1, sampleIndices: [0, 1, 2]) } == [])
    }

    @Test func embedding() {
        let table = smoothRandom([5, 3], seed: 9)
        let ids = Tensor([[0, 4, 4], [2, 1, 0]])
        let tape = Tape.noGradient()
        let y = tape.constant(table).embeddingLookup(ids).value
        #expect(y.shape == [2, 3, 3] && y.rows(0..<1).reshaped([3, 3]).rows(1..<2).scalars == table.rows(4..<5).scalars)
        #expect(gradientMismatches([table]) { $0[0].embeddingLookup(ids) } == [])
    }
}
