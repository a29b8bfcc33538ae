@testable import CohortNN
@testable import CohortTensor
import CohortTestSupport
import Testing

/// The fast paths of convolution and pooling against the general loops, bit for bit: they only
/// reorder memory traffic, never the arithmetic, so the weights stay what they were.
@Suite struct ConvolutionPathsTests {
    /// Stride-1 geometries: LeNet's two layers, a 3×3 "same" one on odd sizes, a valid one, a
    /// padding wider than the kernel needs, a kernel taller than wide is not needed (square only).
    static let strideOne = [
        ConvGeometry(channels: 1, height: 28, width: 28, kernelHeight: 5, kernelWidth: 5, stride: 1, padding: 2),
        ConvGeometry(channels: 20, height: 14, width: 14, kernelHeight: 5, kernelWidth: 5, stride: 1, padding: 2),
        ConvGeometry(channels: 3, height: 9, width: 11, kernelHeight: 3, kernelWidth: 3, stride: 1, padding: 1),
        ConvGeometry(channels: 2, height: 12, width: 12, kernelHeight: 3, kernelWidth: 3, stride: 1, padding: 0),
        ConvGeometry(channels: 2, height: 8, width: 9, kernelHeight: 3, kernelWidth: 3, stride: 1, padding: 3),
    ]

    /// Values with −0, +0, ±∞ and NaN among ordinary ones, so that a path adding a term the
    /// general loop skips (or the other way round) shows in the bits.
    static func awkward(_ count: Int, seed: UInt64) -> [Float] {
        let specials: [Float] = [-0.0, 0, .infinity, -.infinity, .nan, -0.0, -0.0]
        let plain = smoothRandom([count], seed: seed).scalars
        return plain.indices.map { $0 % 13 < specials.count && $0 % 3 == 0 ? specials[$0 % 13] : plain[$0] }
    }

    /// The dispatched im2col ("same" rows: the block copy) and the padded-plane copy, which any
    /// of these geometries can take, against the general loop.
    /// Where two float arrays first differ in their bits (nil when they agree): a short message
    /// instead of a dump of both arrays.
    static func firstDifference(_ a: [Float], _ b: [Float]) -> Int? {
        guard a.count == b.count else { return min(a.count, b.count) }
        return a.indices.first { a[$0].bitPattern != b[$0].bitPattern }
    }

    @Test func im2colMatchesTheGeneralLoop() {
        for g in Self.strideOne {
            let batch = 3, n = g.patchSize * batch * g.outputPixels
            let input = Self.awkward(batch * g.channels * g.height * g.width, seed: 5)
            var dispatched = [Float](repeating: 5, count: n), padded = [Float](repeating: 7, count: n)
            var general = [Float](repeating: 9, count: n)
            input.withUnsafeBufferPointer { x in
                dispatched.withUnsafeMutableBufferPointer { g.im2col(x.baseAddress!, batch: batch, into: $0.baseAddress!) }
                padded.withUnsafeMutableBufferPointer { g.im2colStrideOne(x.baseAddress!, batch: batch, into: $0.baseAddress!) }
                general.withUnsafeMutableBufferPointer { g.im2colGeneral(x.baseAddress!, batch: batch, into: $0.baseAddress!) }
            }
            #expect(Self.firstDifference(dispatched, general) == nil, "\(g)")
            #expect(Self.firstDifference(padded, general) == nil, "\(g)")
        }
        #expect(Self.strideOne.filter(\.takesStrideOneIm2col).count == 2)
    }

    @Test func col2imMatchesTheGeneralLoop() {
        for g in Self.strideOne where g.takesStrideOneCol2im {
            let batch = 3, n = g.patchSize * batch * g.outputPixels, slack = g.columnSlack
            // NaN in the slack: a masked lane that leaked would turn the sums into NaN.
            var cols = [Float](repeating: .nan, count: slack) + Self.awkward(n, seed: 6) + [Float](repeating: .nan, count: slack)
            let pixels = batch * g.channels * g.height * g.width
            var fast = [Float](repeating: 7, count: pixels), general = [Float](repeating: 0, count: pixels)
            cols.withUnsafeMutableBufferPointer { c in
                let columns = UnsafePointer(c.baseAddress! + slack)
                fast.withUnsafeMutableBufferPointer { g.col2imStrideOne(columns, batch: batch, into: $0.baseAddress!, using: Col2imGather(g)) }
                general.withUnsafeMutableBufferPointer { g.col2imGeneral(columns, batch: batch, into: $0.baseAddress!) }
            }
            #expect(Self.firstDifference(fast, general) == nil, "\(g)")
        }
        #expect(Self.strideOne.filter(\.takesStrideOneCol2im).count == 3)
    }

    /// Sequential fuses a convolution and the ReLU after it when nobody watches the layers: the
    /// output and every gradient are the unfused bits, including at outputs exactly 0 (a zero
    /// image and a zero bias), where ReLU's derivative is 0. The layers cover chunks of several
    /// samples, LeNet's second layer (one sample a chunk) and a strided convolution.
    @Test func fusedConvolutionAndReLUKeepTheBits() throws {
        let models = [
            try Sequential(inputShape: [2, 14, 14], layers: [
                Conv2D(inChannels: 2, outChannels: 6, kernel: 5, padding: 2), Activation.relu, Pool2D(.max, kernel: 2, stride: 2),
                Conv2D(inChannels: 6, outChannels: 4, kernel: 3, padding: 1, bias: false), Activation.relu, Flatten(),
            ]),
            try Sequential(inputShape: [20, 14, 14], layers: [
                Conv2D(inChannels: 20, outChannels: 50, kernel: 5, padding: 2), Activation.relu, Pool2D(.max, kernel: 2, stride: 2),
                Conv2D(inChannels: 50, outChannels: 6, kernel: 3, stride: 2, padding: 1), Activation.relu, Flatten(),
            ]),
        ]
        for (index, model) in models.enumerated() {
            let batch = 3, sample = model.inputShape.reduce(1, *)
            var input = smoothRandom([batch] + model.inputShape, seed: 11).scalars
            for i in stride(from: 0, to: input.count, by: 17) { input[i] = 0 }
            for i in 0..<sample { input[i] = 0 }
            let parameters = model.parameterSpecs.enumerated().map { i, p in
                p.spec.isBias && i == 1 ? Tensor.zeros(p.spec.shape) : smoothRandom(p.spec.shape, seed: 20 + UInt64(i), low: -0.3, high: 0.3)
            }
            let seed = smoothRandom([batch] + model.outputShape, seed: 12)
            func run(fused: Bool) -> [[Float]] {
                let tape = Tape()
                let p = parameters.map { tape.leaf($0) }
                let x = tape.leaf(Tensor(shape: [batch] + model.inputShape, input))
                let y = fused ? model(x, parameters: p, context: .evaluation)
                              : model(x, parameters: p, context: .evaluation) { _, _ in }
                tape.backward(from: y, seed: seed)
                return [y.value.scalars, x.gradient!.scalars] + p.map { $0.gradient!.scalars }
            }
            let (fused, unfused) = (run(fused: true), run(fused: false))
            for (tensor, (a, b)) in zip(fused, unfused).enumerated() {
                // 0: the output, 1: the input gradient, then the parameters' gradients.
                #expect(Self.firstDifference(a, b) == nil, "model \(index), tensor \(tensor)")
            }
            #expect(fused[0].contains(0) && fused[1].contains { $0 != 0 }, "model \(index)")
        }
    }

    /// 2×2 max pooling in groups of four windows, the last group overlapping, and narrower rows
    /// through the general loop, against the plain rule: ties, −∞, NaN-only windows (whose gradient goes
    /// to index 0) in the first and a later group, odd sizes (an uncovered row and column get 0),
    /// and gradients of −0 (0 + (−0) is +0).
    @Test func maxPoolingGroupsKeepTheRule() {
        for (planes, h, w) in [(2, 4, 20), (2, 5, 15), (1, 6, 8), (2, 4, 6), (1, 3, 3)] {
            var values = (0..<(planes * h * w)).map { Float(($0 * 7919) % 5) }   // many ties
            values[1] = -.infinity
            for k in [0, 1, w, w + 1] { values[k] = .nan }                       // the first window
            if w >= 14 { for k in [12, 13, w + 12, w + 13] { values[k] = -.infinity } }   // a later one
            let (oh, ow) = (h / 2, w / 2)
            let upstream = (0..<(planes * oh * ow)).map { $0 % 4 == 1 ? -0.0 : Float($0 % 7) - 3 }
            let tape = Tape()
            let input = tape.leaf(Tensor(shape: [1, planes, h, w], values))
            let y = input.maxPool2d(kernel: 2, stride: 2)
            var expected: [Float] = [], gradient = [Float](repeating: 0, count: values.count)
            for p in 0..<planes { for oy in 0..<oh { for ox in 0..<ow {
                var best = -Float.infinity, at = 0
                for k in [0, 1, w, w + 1] {
                    let i = (p * h + 2 * oy) * w + 2 * ox + k
                    if values[i] > best { best = values[i]; at = i }
                }
                expected.append(best)
                gradient[at] += upstream[expected.count - 1]
            } } }
            #expect(Self.firstDifference(y.value.scalars, expected) == nil, "\(planes)×\(h)×\(w)")
            tape.backward(from: y, seed: Tensor(shape: y.value.shape, upstream))
            #expect(Self.firstDifference(input.gradient?.scalars ?? [], gradient) == nil, "\(planes)×\(h)×\(w)")
        }
    }
}
