/// Elementwise loops over float arrays, eight elements at a time: the optimizers' rules and the
/// gradient tree's additions.
///
/// Cohort builds for baseline x86-64, and LLVM leaves a loop scalar when the arrays it writes
/// may overlap the ones it reads (an optimizer writes θ and its state while reading g), so these
/// loops load and store `SIMD8<Float>` themselves. Every lane does the scalar arithmetic exactly
/// (IEEE single precision, no fused multiply-add), and the last partial group goes through the
/// same lanes, so the results are the very bits a scalar loop gives: the weights do not change.
public enum Lanes {
    public typealias Vector = SIMD8<Float>

    @inlinable @inline(__always)
    static func load(_ p: UnsafePointer<Float>, _ i: Int, _ count: Int) -> Vector {
        guard count < 8 else { return UnsafeRawPointer(p + i).loadUnaligned(as: Vector.self) }
        var v = Vector()
        for l in 0..<count { v[l] = p[i + l] }
        return v
    }

    @inlinable @inline(__always)
    static func store(_ v: Vector, _ p: UnsafeMutablePointer<Float>, _ i: Int, _ count: Int) {
        guard count < 8 else { return UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: Vector.self) }
        for l in 0..<count { p[i + l] = v[l] }
    }

    /// Groups of `width` over 0..<count (count ≥ width) for loops without a scalar tail: the last
    /// group ends at `count` and overlaps the one before it, so it computes and writes some
    /// values a second time, the same values. `body` gets each group's start and the first index
    /// no earlier group covered.
    @inlinable @inline(__always)
    public static func overlappingGroups(_ count: Int, width: Int, _ body: (_ start: Int, _ fresh: Int) -> Void) {
        var next = 0
        while true {
            let start = Swift.min(next, count - width)
            body(start, next)
            if start == count - width { return }
            next += width
        }
    }

    /// d[i] = body(x[i]); d may be x (in place: each group is read before it is written).
    @inlinable @inline(__always)
    public static func map(_ count: Int, into d: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
                           _ body: (Vector) -> Vector) {
        var i = 0
        while i < count {
            let n = Swift.min(8, count - i)
            store(body(load(x, i, n)), d, i, n)
            i += 8
        }
    }

    /// d[i] = body(x[i], y[i]).
    @inlinable @inline(__always)
    public static func map(_ count: Int, into d: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>,
                           _ body: (Vector, Vector) -> Vector) {
        var i = 0
        while i < count {
            let n = Swift.min(8, count - i)
            store(body(load(x, i, n), load(y, i, n)), d, i, n)
            i += 8
        }
    }

    /// a[i] ← body(a[i], x[i]).
    @inlinable @inline(__always)
    public static func update(_ count: Int, _ a: UnsafeMutablePointer<Float>, reading x: UnsafePointer<Float>,
                              _ body: (inout Vector, Vector) -> Void) {
        var i = 0
        while i < count {
            let n = Swift.min(8, count - i)
            var va = load(a, i, n)
            body(&va, load(x, i, n))
            store(va, a, i, n)
            i += 8
        }
    }

    /// (a[i], b[i]) ← body(a[i], b[i], x[i]).
    @inlinable @inline(__always)
    public static func update(_ count: Int, _ a: UnsafeMutablePointer<Float>, _ b: UnsafeMutablePointer<Float>,
                              reading x: UnsafePointer<Float>, _ body: (inout Vector, inout Vector, Vector) -> Void) {
        var i = 0
        while i < count {
            let n = Swift.min(8, count - i)
            var va = load(a, i, n), vb = load(b, i, n)
            body(&va, &vb, load(x, i, n))
            store(va, a, i, n); store(vb, b, i, n)
            i += 8
        }
    }

    /// (a[i], b[i], c[i]) ← body(a[i], b[i], c[i], x[i]).
    @inlinable @inline(__always)
    public static func update(_ count: Int, _ a: UnsafeMutablePointer<Float>, _ b: UnsafeMutablePointer<Float>,
                              _ c: UnsafeMutablePointer<Float>, reading x: UnsafePointer<Float>,
                              _ body: (inout Vector, inout Vector, inout Vector, Vector) -> Void) {
        var i = 0
        while i < count {
            let n = Swift.min(8, count - i)
            var va = load(a, i, n), vb = load(b, i, n), vc = load(c, i, n)
            body(&va, &vb, &vc, load(x, i, n))
            store(va, a, i, n); store(vb, b, i, n); store(vc, c, i, n)
            i += 8
        }
    }
}
