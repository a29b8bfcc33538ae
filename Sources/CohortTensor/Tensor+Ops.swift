/// Plain (non-differentiable) tensor arithmetic. The autodiff ops are built from these.
extension Tensor {
    /// A new tensor with `f` applied to every element.
    @inlinable
    public func map(_ f: (Float) -> Float) -> Tensor {
        var out = Tensor(uninitializedShape: shape)
        let n = count
        let src = storage.pointer
        out.withUnsafeMutableBufferPointer { dst in
            for i in 0..<n { dst[i] = f(src[i]) }
        }
        return out
    }

    /// A new tensor combining two same-shaped tensors element by element.
    @inlinable
    public func zipMap(_ other: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        precondition(count == other.count, "elementwise op on \(shape) and \(other.shape)")
        var out = Tensor(uninitializedShape: shape)
        let n = count
        let a = storage.pointer, b = other.storage.pointer
        out.withUnsafeMutableBufferPointer { dst in
            for i in 0..<n { dst[i] = f(a[i], b[i]) }
        }
        return out
    }

    /// self += alpha · other, in place (the gradient accumulation of the backward pass).
    @inlinable
    public mutating func add(_ other: Tensor, scaledBy alpha: Float = 1) {
        precondition(count == other.count, "accumulating \(other.shape) into \(shape)")
        let n = count
        let b = other.storage.pointer
        withUnsafeMutableBufferPointer { a in
            if alpha == 1 {
                if let base = a.baseAddress { Lanes.update(n, base, reading: b) { a, b in a += b } }
            } else {
                for i in 0..<n { a[i] += alpha * b[i] }
            }
        }
    }

    /// self *= alpha, in place.
    @inlinable
    public mutating func scale(by alpha: Float) {
        let n = count
        withUnsafeMutableBufferPointer { a in for i in 0..<n { a[i] *= alpha } }
    }

    public static func + (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.zipMap(rhs, +) }
    public static func - (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.zipMap(rhs, -) }
    public static func * (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.zipMap(rhs, *) }
    public static func / (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.zipMap(rhs, /) }
    public static func * (lhs: Tensor, rhs: Float) -> Tensor { lhs.map { $0 * rhs } }
    public static func + (lhs: Tensor, rhs: Float) -> Tensor { lhs.map { $0 + rhs } }
    public static prefix func - (x: Tensor) -> Tensor { x.map { -$0 } }

    /// A [rows, row.count] matrix whose every row is `row` (a bias preloaded for an sgemm).
    public init(repeatingRow row: Tensor, rows: Int) {
        self.init(uninitializedShape: [rows, row.count])
        let n = row.count
        let r = row.storage.pointer
        withUnsafeMutableBufferPointer { dst in
            guard let base = dst.baseAddress, n > 0 else { return }
            for i in 0..<rows { (base + i * n).update(from: r, count: n) }
        }
        withExtendedLifetime(row) {}
    }

    /// Adds a row vector to every row of a matrix (or of any tensor viewed as rows × last axis).
    public func addingRow(_ row: Tensor) -> Tensor {
        let (rows, columns) = matrixShape
        precondition(row.count == columns, "row of \(row.shape) does not broadcast over \(shape)")
        var out = Tensor(uninitializedShape: shape)
        let src = storage.pointer, r = row.storage.pointer
        out.withUnsafeMutableBufferPointer { dst in
            for i in 0..<rows {
                let base = i * columns
                for j in 0..<columns { dst[base + j] = src[base + j] + r[j] }
            }
        }
        return out
    }

    /// Sum over one axis, which is removed from the shape.
    public func sum(axis: Int) -> Tensor {
        let axis = axis < 0 ? axis + rank : axis
        precondition(axis >= 0 && axis < rank, "axis \(axis) for shape \(shape)")
        let outer = shape[..<axis].reduce(1, *)
        let n = shape[axis]
        let inner = shape[(axis + 1)...].reduce(1, *)
        var outShape = shape
        outShape.remove(at: axis)
        var out = Tensor.zeros(outShape)
        let src = storage.pointer
        if inner == 1 {
            // Sums of contiguous rows: eight lanes, then the lanes added up.
            out.withUnsafeMutableBufferPointer { dst in
                let raw = UnsafeRawPointer(src)
                for o in 0..<outer {
                    var lanes = SIMD8<Float>(repeating: 0)
                    var k = 0
                    while k + 8 <= n { lanes += raw.loadUnaligned(fromByteOffset: 4 * (o * n + k), as: SIMD8<Float>.self); k += 8 }
                    var total = lanes.sum()
                    while k < n { total += src[o * n + k]; k += 1 }
                    dst[o] = total
                }
            }
            return out
        }
        // Row after row added into the output, eight lanes at a time: each output element still
        // sums its inputs in order k = 0, 1, …, so the result is that of the plain loop.
        out.withUnsafeMutableBufferPointer { dst in
            for o in 0..<outer {
                let d = UnsafeMutableRawPointer(dst.baseAddress! + o * inner)
                for k in 0..<n {
                    let row = UnsafeRawPointer(src + (o * n + k) * inner)
                    var i = 0
                    while i + 8 <= inner {
                        let sum = d.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
                            + row.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
                        d.storeBytes(of: sum, toByteOffset: 4 * i, as: SIMD8<Float>.self)
                        i += 8
                    }
                    while i < inner {
                        let at = 4 * i
                        d.storeBytes(of: d.load(fromByteOffset: at, as: Float.self) + row.load(fromByteOffset: at, as: Float.self),
                                     toByteOffset: at, as: Float.self)
                        i += 1
                    }
                }
            }
        }
        return out
    }

    public func mean(axis: Int) -> Tensor {
        let axis = axis < 0 ? axis + rank : axis
        var s = sum(axis: axis)
        s.scale(by: 1 / Float(shape[axis]))
        return s
    }

    /// Sum of all elements, accumulated in Double so long sums stay exact enough to compare.
    public func sum() -> Float {
        var total = 0.0
        withUnsafeBufferPointer { for v in $0 { total += Double(v) } }
        return Float(total)
    }

    /// Squared L2 norm: eight Float lanes over blocks of `normBlock` elements, each block added
    /// in Double. The order is fixed, so the result is the same on every run and machine.
    public func squaredNorm() -> Double {
        withUnsafeBufferPointer { p in
            guard let base = p.baseAddress else { return 0 }
            var total = 0.0
            for start in stride(from: 0, to: p.count, by: Self.normBlock) {
                total += Self.blockSquaredNorm(base + start, count: Swift.min(Self.normBlock, p.count - start))
            }
            return total
        }
    }

    /// Elements per block of `squaredNorm` (16 KB: a block stays in the L1 cache).
    public static let normBlock = 4096

    /// One block of `squaredNorm`: Σ x² over eight Float lanes, the lanes then the tail added in Double.
    @inlinable
    public static func blockSquaredNorm(_ p: UnsafePointer<Float>, count: Int) -> Double {
        let raw = UnsafeRawPointer(p)
        var lanes = SIMD8<Float>(repeating: 0)
        var i = 0
        while i + 8 <= count {
            let v = raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
            lanes += v * v
            i += 8
        }
        var block = Double(lanes.sum())
        while i < count { block += Double(p[i] * p[i]); i += 1 }
        return block
    }

    /// Index of the largest element along the last axis, one per row (first one on ties).
    public func argmax() -> [Int] {
        let (rows, columns) = matrixShape
        precondition(columns > 0, "argmax over an empty axis")
        let src = storage.pointer
        return (0..<rows).map { i in
            var best = 0
            var bestValue = src[i * columns]
            for j in 1..<columns where src[i * columns + j] > bestValue {
                best = j; bestValue = src[i * columns + j]
            }
            return best
        }
    }

    /// The transpose of a matrix.
    public func transposed() -> Tensor {
        precondition(rank == 2, "transpose of rank-\(rank) tensor")
        let (r, c) = (shape[0], shape[1])
        var out = Tensor(uninitializedShape: [c, r])
        let src = storage.pointer
        out.withUnsafeMutableBufferPointer { dst in
            for i in 0..<r { for j in 0..<c { dst[j * r + i] = src[i * c + j] } }
        }
        return out
    }

    /// Rows (along the first axis) picked by index, in the given order, into a new tensor.
    public func gatherRows(_ indices: [Int]) -> Tensor {
        var out = Tensor(uninitializedShape: [indices.count] + shape.dropFirst())
        gatherRows(indices, into: &out)
        return out
    }

    /// Rows picked by index into an existing tensor, so a batch buffer is reused step after step.
    public func gatherRows(_ indices: [Int], into out: inout Tensor) {
        let rowSize = shape.dropFirst().reduce(1, *)
        precondition(out.count == indices.count * rowSize, "gather into \(out.shape) of \(indices.count) rows")
        let src = storage.pointer
        let rows = shape.first ?? 0
        out.withUnsafeMutableBufferPointer { dst in
            for (k, i) in indices.enumerated() {
                precondition(i >= 0 && i < rows, "row \(i) out of range 0..<\(rows)")
                (dst.baseAddress! + k * rowSize).update(from: src + i * rowSize, count: rowSize)
            }
        }
    }

    /// Consecutive rows [start, end) along the first axis.
    public func rows(_ range: Range<Int>) -> Tensor {
        let rowSize = shape.dropFirst().reduce(1, *)
        var out = Tensor(uninitializedShape: [range.count] + shape.dropFirst())
        let src = storage.pointer + range.lowerBound * rowSize
        out.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: src, count: range.count * rowSize) }
        return out
    }

    public var maxAbs: Float { withUnsafeBufferPointer { $0.reduce(0) { max($0, abs($1)) } } }
}
