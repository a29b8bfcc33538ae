/// Differentiable arithmetic. Each op: its forward value, then its pullback, side by side.
///
/// Pullbacks capture tensors, never `Variable`s: a variable holds its tape, and a tape holding
/// closures that hold the tape would never be freed.
extension Variable {
    public static func + (a: Variable, b: Variable) -> Variable {
        a.tape.record(a.value + b.value, inputs: [a, b]) { g, _ in [g, g] }
    }

    public static func - (a: Variable, b: Variable) -> Variable {
        a.tape.record(a.value - b.value, inputs: [a, b]) { g, needs in [g, needs[1] ? -g : nil] }
    }

    /// Elementwise (Hadamard) product.
    public static func * (a: Variable, b: Variable) -> Variable {
        let (av, bv) = (a.value, b.value)
        return a.tape.record(av * bv, inputs: [a, b]) { g, needs in
            [needs[0] ? g * bv : nil, needs[1] ? g * av : nil]
        }
    }

    public static func * (a: Variable, c: Float) -> Variable {
        a.tape.record(a.value * c, inputs: [a]) { g, _ in [g * c] }
    }

    public static func + (a: Variable, c: Float) -> Variable {
        a.tape.record(a.value + c, inputs: [a]) { g, _ in [g] }
    }

    public static prefix func - (a: Variable) -> Variable { a * -1 }

    /// op(a) · op(b) for matrices: one sgemm forward, one per input backward.
    public func matmul(_ b: Variable, transposeSelf ta: Bool = false, transposeOther tb: Bool = false) -> Variable {
        let (av, bv) = (value, b.value)
        let y = av.matmul(bv, transposeSelf: ta, transposeOther: tb)
        return tape.record(y, inputs: [self, b]) { g, needs in
            // C = A·B ⇒ Ā = C̄·Bᵀ, B̄ = Aᵀ·C̄, with the stored transposes folded into the sgemm flags.
            let da: Tensor? = needs[0]
                ? (ta ? bv.matmul(g, transposeSelf: tb, transposeOther: true)
                      : g.matmul(bv, transposeOther: !tb))
                : nil
            let db: Tensor? = needs[1]
                ? (tb ? g.matmul(av, transposeSelf: true, transposeOther: ta)
                      : av.matmul(g, transposeSelf: !ta))
                : nil
            return [da, db]
        }
    }

    /// Adds a row vector (shape [n]) to every row (the bias of an affine map).
    public func addingRow(_ row: Variable) -> Variable {
        let rowShape = row.value.shape
        return tape.record(value.addingRow(row.value), inputs: [self, row]) { g, needs in
            [g, needs[1] ? g.sum(axis: 0).reshaped(rowShape) : nil]
        }
    }

    /// x · Wᵀ + b with PyTorch's layout (W is out×in): the affine map of a Linear layer.
    /// Forward is one sgemm with the bias preloaded into C; backward is one sgemm per input.
    /// `precomputed`, when given, is that forward's result, computed already (`linearForward`
    /// over these rows and others').
    public func linear(weight w: Variable, bias b: Variable?, precomputed: Tensor? = nil) -> Variable {
        let xv = value, wv = w.value
        let (rows, _) = xv.matrixShape
        precondition(wv.rank == 2 && xv.shape.last == wv.shape[1],
                     "linear: input \(xv.shape) does not fit weight \(wv.shape)")
        let x2 = xv.reshaped([rows, wv.shape[1]])
        let y = precomputed ?? Tensor.linearForward(x2, weight: wv, bias: b?.value)
        precondition(y.shape == [rows, wv.shape[0]], "linear: precomputed output \(y.shape) is not \(rows)×\(wv.shape[0])")
        let inputs = b.map { [self, w, $0] } ?? [self, w]
        let hasBias = b != nil
        return tape.record(y, inputs: inputs) { [unowned tape = self.tape, weightID = w.id] g, needs in
            var grads: [Tensor?] = [
                needs[0] ? g.matmul(wv).reshaped(xv.shape) : nil,   // X̄ = Ȳ·W
                needs[1] ? tape.weightGradient(g, x2, leaf: weightID) : nil,  // W̄ = Ȳᵀ·X
            ]
            if hasBias { grads.append(needs[2] ? g.sum(axis: 0) : nil) }  // b̄ = Σ_rows Ȳ
            return grads
        }
    }

    /// Sum of all elements, as a scalar.
    public func sum() -> Variable {
        let shape = value.shape
        return tape.record(Tensor(value.sum()), inputs: [self]) { g, _ in
            [Tensor(shape: shape, repeating: g.scalar)]
        }
    }

    public func mean() -> Variable { sum() * (1 / Float(max(value.count, 1))) }

    /// Sum over one axis, which disappears from the shape.
    public func sum(axis: Int) -> Variable {
        let shape = value.shape
        let axis = axis < 0 ? axis + shape.count : axis
        return tape.record(value.sum(axis: axis), inputs: [self]) { g, _ in
            // Broadcast back along the summed axis.
            let outer = shape[..<axis].reduce(1, *), n = shape[axis], inner = shape[(axis + 1)...].reduce(1, *)
            var out = Tensor(uninitializedShape: shape)
            g.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    for o in 0..<outer { for k in 0..<n { for i in 0..<inner {
                        dst[(o * n + k) * inner + i] = src[o * inner + i]
                    } } }
                }
            }
            return [out]
        }
    }

    public func reshaped(_ shape: [Int]) -> Variable {
        let original = value.shape
        return tape.record(value.reshaped(shape), inputs: [self]) { g, _ in [g.reshaped(original)] }
    }

    public func exp() -> Variable {
        let y = value.map { Foundation.exp($0) }
        return tape.record(y, inputs: [self]) { g, _ in [g * y] }
    }

    public func log() -> Variable {
        let x = value
        return tape.record(x.map { Foundation.log($0) }, inputs: [self]) { g, _ in [g / x] }
    }

    public func squared() -> Variable {
        let x = value
        return tape.record(x * x, inputs: [self]) { g, _ in [g.zipMap(x) { 2 * $0 * $1 }] }
    }

    /// |x|, with the subgradient 0 at 0 (as PyTorch's sign-based gradient).
    public func abs() -> Variable {
        let x = value
        return tape.record(x.map { Swift.abs($0) }, inputs: [self]) { g, _ in
            [g.zipMap(x) { $1 > 0 ? $0 : ($1 < 0 ? -$0 : 0) }]
        }
    }
}

import Foundation

extension Tensor {
    /// x · Wᵀ + b for x of shape [rows, in]: the bias copied into every row of C, then one sgemm
    /// with beta = 1. Every linear layer's forward pass is this call.
    public static func linearForward(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
        var y = Tensor(uninitializedShape: [x.shape[0], weight.shape[0]])
        linearForward(x, weight: weight, bias: bias, columns: 0..<weight.shape[0], into: y.mutablePointer)
        return y
    }

    /// Columns `columns` of x · Wᵀ + b (W's rows `columns`, with those of b), written into `y`,
    /// the whole [rows, out] output, row-major: the bias (or zeros) first, then one sgemm with
    /// beta = 1. The whole output is the case 0..<out; a range computed apart has the whole's
    /// bits where `BLAS.splitsColumnsExactly` says so.
    public static func linearForward(_ x: Tensor, weight: Tensor, bias: Tensor?, columns: Range<Int>,
                                     into y: UnsafeMutablePointer<Float>) {
        let (rows, inFeatures, out) = (x.shape[0], weight.shape[1], weight.shape[0])
        precondition(x.count == rows * inFeatures && columns.lowerBound >= 0 && columns.upperBound <= out,
                     "linear: columns \(columns) of \(x.shape) · \(weight.shape)ᵀ")
        guard !columns.isEmpty else { return }
        withExtendedLifetime((x, weight, bias)) {
            for r in 0..<rows {
                let row = y + r * out + columns.lowerBound
                if let bias { row.update(from: bias.pointer + columns.lowerBound, count: columns.count) } else {
                    row.update(repeating: 0, count: columns.count)
                }
            }
            BLAS.gemm(transA: false, transB: true, m: rows, n: columns.count, k: inFeatures,
                      a: x.pointer, lda: inFeatures, b: weight.pointer + columns.lowerBound * inFeatures, ldb: inFeatures,
                      beta: 1, c: y + columns.lowerBound, ldc: out)
        }
    }
}
