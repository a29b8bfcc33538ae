/// Dropout and embedding lookup: the ops that index by sample or by token.
extension Variable {
    /// Inverted dropout (lecture 001 §2.3, scaled by 1/(1 − p) while training so inference is the
    /// identity). Row r's mask comes from the counter-based generator keyed by (seed, step, the
    /// row's dataset index, layer): it is the same whichever worker runs the sample.
    public func dropout(rate p: Float, seed: UInt64, step: Int, layer: UInt32, sampleIndices: [Int]) -> Variable {
        let x = value
        let rows = x.shape.first ?? 0
        let width = rows == 0 ? 0 : x.count / rows
        precondition(sampleIndices.count == rows, "dropout needs the dataset index of each of the \(rows) rows")
        let rng = Philox(seed: seed)
        let keep = 1 / (1 - p)
        var mask = Tensor(uninitializedShape: x.shape)
        let pm = mask.mutablePointer
        for r in 0..<rows {
            let sample = UInt32(truncatingIfNeeded: sampleIndices[r])
            for j in 0..<width {
                let u = Philox.unit(rng.block(RandomStream.dropout << 24 | layer, UInt32(truncatingIfNeeded: step), sample, UInt32(j)).0)
                pm[r * width + j] = u < p ? 0 : keep
            }
        }
        return tape.record(x * mask, inputs: [self]) { g, _ in [g * mask] }
    }

    /// Rows of this table ([N, D]) picked by the token ids in `ids` (any shape, integral values):
    /// the result has shape ids.shape + [D]. The gradient adds into the rows that were used.
    public func embeddingLookup(_ ids: Tensor) -> Variable {
        let table = value
        let (n, d) = (table.shape[0], table.shape[1])
        var y = Tensor(uninitializedShape: ids.shape + [d])
        let py = y.mutablePointer, pt = table.pointer, pi = ids.pointer
        for k in 0..<ids.count {
            let id = Int(pi[k])
            precondition(id >= 0 && id < n && Float(id) == pi[k], "token id \(pi[k]) outside 0..<\(n)")
            (py + k * d).update(from: pt + id * d, count: d)
        }
        return tape.record(y, inputs: [self]) { g, _ in
            var dt = Tensor.zeros(table.shape)
            let pd = dt.mutablePointer, pg = g.pointer
            for k in 0..<ids.count {
                let row = pd + Int(pi[k]) * d
                for j in 0..<d { row[j] += pg[k * d + j] }
            }
            return [dt]
        }
    }
}
