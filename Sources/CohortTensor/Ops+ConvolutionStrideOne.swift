/// The column matrix at stride 1: LeNet's two convolutions and every "same" convolution take
/// these paths. im2col copies blocks ("same" rows) or windows of zero-padded planes (narrower
/// rows); col2im gathers each pixel's terms in registers. (For LeNet's second layer, one sample,
/// measured alone: col2im 28 µs against 55 µs for the general loop, which adds row after row onto
/// shifted pixels; im2col 21–25 against 50 µs.)
///
/// They produce the very bits of the general loops in `Ops+Convolution.swift`: im2col copies the
/// same values, and col2im adds each pixel's terms in the same (channel, kernel row, kernel column)
/// order, starting from +0. Where the general loop adds nothing, these add +0, which changes no
/// sum: a sum that starts at +0 is never −0, and y + (+0) = y for every other y.
extension ConvGeometry {
    /// Stride 1 with output rows of at least one group of eight (and narrower than the input:
    /// "same" rows take the block copy).
    package var takesStrideOneIm2col: Bool { stride == 1 && outputWidth >= 8 && outputWidth != width }

    /// col2im's gather also needs output rows exactly as wide as the input rows (odd kernel,
    /// "same" padding), so that a pixel's terms lie at one fixed offset from it in every row.
    package var takesStrideOneCol2im: Bool { stride == 1 && outputWidth == width && outputWidth >= 8 && outputPixels >= 8 }

    /// Floats that col2im's gather may read on either side of the column matrix: masked lanes
    /// reach up to a kernel's height of rows (plus a group) beyond a sample's pixels.
    package var columnSlack: Int { (kernelHeight + padding + 1) * outputWidth + kernelWidth + padding + 8 }

    /// im2col at stride 1 with output rows as wide as the input's ("same" padding): output pixel
    /// q of row (c, i, j) reads input pixel q + (i − p)·w + (j − p), so each sample's row is one
    /// block copy (memmove's wide stores); the pixels whose source wrapped into the neighbouring
    /// image row, and the rows outside the image, then become zeros. (On one core this took
    /// LeNet's first layer, three samples, 7 µs against 9.5 µs for the padded-plane copy below,
    /// and its second layer, one sample, about the same.)
    package func im2colSameWidth(_ input: UnsafePointer<Float>, batch: Int, into cols: UnsafeMutablePointer<Float>) {
        let (oh, ow, n, planeSize) = (outputHeight, outputWidth, batch * outputPixels, height * width)
        for c in 0..<channels { for i in 0..<kernelHeight { for j in 0..<kernelWidth {
            let row = cols + ((c * kernelHeight + i) * kernelWidth + j) * n
            let (x0, x1) = validRange(offset: j - padding, size: width, outputs: ow)
            let shift = (i - padding) * width + (j - padding)
            let y0 = max(0, padding - i), y1 = min(oh, height + padding - i)
            for b in 0..<batch {
                let plane = input + (b * channels + c) * planeSize
                let out = row + b * outputPixels
                guard y0 < y1, x0 < x1 else { out.update(repeating: 0, count: outputPixels); continue }
                let first = min(max(y0 * ow, -shift), outputPixels)
                let last = max(min(y1 * ow, planeSize - shift), first)
                if first > 0 { out.update(repeating: 0, count: first) }
                (out + first).update(from: plane + first + shift, count: last - first)
                if last < outputPixels { (out + last).update(repeating: 0, count: outputPixels - last) }
                for y in y0..<y1 {
                    for x in 0..<x0 { out[y * ow + x] = 0 }
                    for x in x1..<ow { out[y * ow + x] = 0 }
                }
            }
        } } }
    }

    /// im2col at stride 1. The chunk's input planes are first copied into zero-padded planes, so
    /// that every column-matrix row is a plain copy of a window of them: for (c, i, j), output row
    /// oy is padded row oy + i, columns j..<j + ow. Each row is copied in groups of eight; the last
    /// group ends at the row's end and overlaps the one before it, writing the same values again.
    package func im2colStrideOne(_ input: UnsafePointer<Float>, batch: Int, into cols: UnsafeMutablePointer<Float>) {
        let (oh, ow, n) = (outputHeight, outputWidth, batch * outputPixels)
        let (paddedHeight, paddedWidth) = (height + 2 * padding, width + 2 * padding)
        let paddedPlane = paddedHeight * paddedWidth, planes = batch * channels
        let padded = UnsafeMutablePointer<Float>.allocate(capacity: planes * paddedPlane)
        defer { padded.deallocate() }
        padded.initialize(repeating: 0, count: planes * paddedPlane)
        for plane in 0..<planes {
            for y in 0..<height {
                (padded + plane * paddedPlane + (y + padding) * paddedWidth + padding)
                    .update(from: input + (plane * height + y) * width, count: width)
            }
        }
        for c in 0..<channels { for i in 0..<kernelHeight { for j in 0..<kernelWidth {
            let row = cols + ((c * kernelHeight + i) * kernelWidth + j) * n
            for b in 0..<batch {
                let window = padded + (b * channels + c) * paddedPlane + i * paddedWidth + j
                let out = row + b * outputPixels
                for oy in 0..<oh { Self.copyRow(window + oy * paddedWidth, to: out + oy * ow, count: ow) }
            }
        } } }
    }

    /// Copies count ≥ 8 floats in groups of eight, the last group overlapping.
    @inline(__always)
    static func copyRow(_ from: UnsafePointer<Float>, to: UnsafeMutablePointer<Float>, count: Int) {
        Lanes.overlappingGroups(count, width: 8) { at, _ in
            UnsafeMutableRawPointer(to + at).storeBytes(of: UnsafeRawPointer(from + at).loadUnaligned(as: SIMD8<Float>.self),
                                                        as: SIMD8<Float>.self)
        }
    }
}

/// col2im's groups and lane masks for one geometry, found once per backward pass rather than
/// for every chunk (a mask costs eight divisions; LeNet's second layer has 250 of them).
package struct Col2imGather {
    /// Starts of the groups of eight pixels of a plane, the last one overlapping.
    let starts: [Int]
    /// For kernel row i (column j) and group k, at i·groups + k: the lanes whose output row
    /// (column) lies inside the output.
    let rowMasks: [SIMD8<UInt32>], columnMasks: [SIMD8<UInt32>]

    package init(_ g: ConvGeometry) {
        var starts: [Int] = []
        Lanes.overlappingGroups(g.height * g.width, width: 8) { at, _ in starts.append(at) }
        self.starts = starts
        rowMasks = (0..<g.kernelHeight).flatMap { i in
            starts.map { Self.laneMask($0, width: g.width, offset: g.padding - i, limit: g.outputHeight, row: true) }
        }
        columnMasks = (0..<g.kernelWidth).flatMap { j in
            starts.map { Self.laneMask($0, width: g.width, offset: g.padding - j, limit: g.outputWidth, row: false) }
        }
    }

    /// All-ones lanes where pixel q + lane's row (or column) plus offset lies in 0..<limit.
    static func laneMask(_ q: Int, width: Int, offset: Int, limit: Int, row: Bool) -> SIMD8<UInt32> {
        var mask = SIMD8<UInt32>()
        for lane in 0..<8 {
            let position = (row ? (q + lane) / width : (q + lane) % width) + offset
            mask[lane] = position >= 0 && position < limit ? ~0 : 0
        }
        return mask
    }
}

extension ConvGeometry {
    /// col2im at stride 1 with output rows as wide as the input's, as a gather: pixel q of a plane
    /// receives, for each (i, j), the column entry q + (p − i)·w + (p − j) of row (c, i, j) when
    /// that entry's output position lies inside the output. Eight pixels form a group, four groups
    /// are summed at once (independent additions keep the core busy), and each pixel's sum stays
    /// in a register until it is written, so the input gradient needs no zeroing first. Entries
    /// outside the output are masked to +0; `cols` must have `columnSlack` readable floats on
    /// either side, because the masked lanes still load.
    package func col2imStrideOne(_ cols: UnsafePointer<Float>, batch: Int, into input: UnsafeMutablePointer<Float>,
                                 using gather: Col2imGather) {
        let (ow, n, planeSize) = (outputWidth, batch * outputPixels, height * width)
        let starts = gather.starts
        let taps = kernelHeight * kernelWidth
        gather.rowMasks.withUnsafeBufferPointer { rows in gather.columnMasks.withUnsafeBufferPointer { columns in
            for b in 0..<batch { for c in 0..<channels {
                let plane = input + (b * channels + c) * planeSize
                let channelRows = cols + c * taps * n + b * outputPixels
                var group = 0
                while group < starts.count {
                    let g = (group, min(group + 1, starts.count - 1), min(group + 2, starts.count - 1), min(group + 3, starts.count - 1))
                    let q = (starts[g.0], starts[g.1], starts[g.2], starts[g.3])
                    var sums = (SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>())
                    for i in 0..<kernelHeight {
                        let rowMask = i * starts.count
                        for j in 0..<kernelWidth {
                            let columnMask = j * starts.count
                            let tap = channelRows + (i * kernelWidth + j) * n + (padding - i) * ow + (padding - j)
                            sums.0 += Self.maskedLoad(tap + q.0, rows[rowMask + g.0] & columns[columnMask + g.0])
                            sums.1 += Self.maskedLoad(tap + q.1, rows[rowMask + g.1] & columns[columnMask + g.1])
                            sums.2 += Self.maskedLoad(tap + q.2, rows[rowMask + g.2] & columns[columnMask + g.2])
                            sums.3 += Self.maskedLoad(tap + q.3, rows[rowMask + g.3] & columns[columnMask + g.3])
                        }
                    }
                    // Groups past the end repeat the last group: the same sums to the same place.
                    Self.store(sums.0, plane + q.0); Self.store(sums.1, plane + q.1)
                    Self.store(sums.2, plane + q.2); Self.store(sums.3, plane + q.3)
                    group += 4
                }
            } }
        } }
    }

    @inline(__always)
    static func maskedLoad(_ p: UnsafePointer<Float>, _ mask: SIMD8<UInt32>) -> SIMD8<Float> {
        let bits = UnsafeRawPointer(p).loadUnaligned(as: SIMD8<UInt32>.self) & mask
        return unsafeBitCast(bits, to: SIMD8<Float>.self)
    }

    @inline(__always)
    static func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
    }
}
