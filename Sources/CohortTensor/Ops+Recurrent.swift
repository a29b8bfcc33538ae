/// The recurrent cells of lecture 001 (and lecture 000's Elman RNN), with PyTorch's weight
/// layout: weight_ih is [G·H, I] and weight_hh [G·H, H] with the gates stacked in PyTorch's order
/// (LSTM i, f, g, o; GRU r, z, n), biases [G·H] each.
public enum RecurrentCell: String, Sendable, CaseIterable, Codable {
    /// h = tanh(W_ih x + b_ih + W_hh h₋ + b_hh).
    case rnn
    /// i, f, o = σ(·), g = tanh(·) from W x + W h + b; C = f⊙C₋ + i⊙g; h = o⊙tanh(C).
    case lstm
    /// Lecture 001 §5.3: z, r = σ(W x + U h₋ + b); h̃ = tanh(W_h x + U_h (r⊙h₋) + b_h);
    /// h = (1 − z)⊙h₋ + z⊙h̃.
    case gru
    /// torch.nn.GRU: n = tanh(W_in x + b_in + r⊙(W_hn h₋ + b_hn)); h = (1 − z)⊙n + z⊙h₋.
    /// Same parameters as `gru`, a different function: use it to exchange weights with PyTorch.
    case gruPyTorch = "gru_pytorch"

    public var gates: Int {
        switch self {
        case .rnn: 1
        case .lstm: 4
        case .gru, .gruPyTorch: 3
        }
    }
}

extension Variable {
    /// One recurrent layer over a batch-first sequence x [B, T, I]; returns every hidden state
    /// [B, T, H] (h₀ = 0, C₀ = 0). One sgemm gives the input part of all gates for all steps;
    /// each step then needs one sgemm for the hidden part of all its gates (two for the lecture
    /// GRU, whose candidate reads r⊙h₋). Backward is backpropagation through time: the sum over
    /// steps of lecture 000's unrolled chain rule, with the weight gradients as single sgemms.
    public func recurrent(_ cell: RecurrentCell, weightIH wih: Variable, weightHH whh: Variable,
                          biasIH bih: Variable, biasHH bhh: Variable) -> Variable {
        let x = value
        precondition(x.rank == 3, "recurrent layers take [batch, time, features], got \(x.shape)")
        let gh = wih.value.shape[0], hidden = gh / cell.gates
        precondition(wih.value.shape == [gh, x.shape[2]] && whh.value.shape == [gh, hidden],
                     "recurrent weights \(wih.value.shape), \(whh.value.shape) for input \(x.shape[2])")
        switch cell {
        case .rnn, .lstm: return elmanOrLSTM(cell, weightIH: wih, weightHH: whh, biasIH: bih, biasHH: bhh)
        case .gru, .gruPyTorch: return gatedRecurrentUnit(cell, weightIH: wih, weightHH: whh, biasIH: bih, biasHH: bhh)
        }
    }

    /// RNN and LSTM, whose gates all read W_hh·h₋ whole. The gate matrix [B·T, G·H] (rows b·T + t)
    /// starts as x·W_ihᵀ + b_ih + b_hh; step t's sgemm adds h₋·W_hhᵀ straight into that step's
    /// rows (T rows apart: lda = T·G·H), reading h₋ where the previous step wrote it in the
    /// output, and the gates are activated in place. Backward fills one matrix of gate gradients
    /// in the same layout: it gives ∂x, ∂W_ih, ∂W_hh, and both biases' gradient.
    ///
    /// A numeric kernel kept in one piece: the forward loop and its pullback share the layout
    /// constants and raw pointers above, and each gate's derivative is meant to be read beside
    /// the forward formula it reverses.
    func elmanOrLSTM(_ cell: RecurrentCell, weightIH wih: Variable, weightHH whh: Variable,
                     biasIH bih: Variable, biasHH bhh: Variable) -> Variable {
        let x = value, W_ih = wih.value, W_hh = whh.value
        let (batch, steps, inputs) = (x.shape[0], x.shape[1], x.shape[2])
        let gh = W_ih.shape[0], H = gh / cell.gates, lstm = cell == .lstm
        // From one sample's row of a step to the next sample's, in the gates and in [B, T, H].
        let gateStride = steps * gh, stateStride = steps * H
        let xf = x.reshaped([batch * steps, inputs])
        var gates = Tensor(repeatingRow: bih.value + bhh.value, rows: batch * steps)
        gates.matmulAccumulate(xf, W_ih, transposeB: true, beta: 1)
        var y = Tensor(uninitializedShape: [batch, steps, H])
        var cells = Tensor(uninitializedShape: lstm ? [batch, steps, H] : [0])       // C_t
        var tanhCells = Tensor(uninitializedShape: lstm ? [batch, steps, H] : [0])   // tanh(C_t), for backward
        let zeros = Tensor.zeros([H])   // C₀
        let pg = gates.mutablePointer, py = y.mutablePointer, pc = cells.mutablePointer, ptc = tanhCells.mutablePointer
        for t in 0..<steps {
            if t > 0 {  // h₀ = 0 adds nothing
                BLAS.gemm(transA: false, transB: true, m: batch, n: gh, k: H, a: py + (t - 1) * H, lda: stateStride,
                          b: W_hh.pointer, ldb: H, beta: 1, c: pg + t * gh, ldc: gateStride)
            }
            for b in 0..<batch {
                let a = pg + b * gateStride + t * gh, h = py + b * stateStride + t * H
                guard lstm else {
                    VectorMath.tanh(a, count: H)
                    h.update(from: a, count: H)
                    continue
                }
                VectorMath.sigmoid(a, count: 2 * H)       // i, f
                VectorMath.tanh(a + 2 * H, count: H)      // g
                VectorMath.sigmoid(a + 3 * H, count: H)   // o
                let c = pc + b * stateStride + t * H, tc = ptc + b * stateStride + t * H
                let cPrev = t > 0 ? UnsafePointer(c - H) : zeros.pointer
                for j in stride(from: 0, to: H, by: 8) {   // C = f⊙C₋ + i⊙g
                    let n = Swift.min(8, H - j)
                    let fc = Lanes.load(a + H, j, n) * Lanes.load(cPrev, j, n)
                    Lanes.store(fc + Lanes.load(a, j, n) * Lanes.load(a + 2 * H, j, n), c, j, n)
                }
                tc.update(from: c, count: H)
                VectorMath.tanh(tc, count: H)
                Lanes.map(H, into: h, a + 3 * H, tc) { o, tc in o * tc }
            }
        }
        // Raw pointers do not keep their tensors alive.
        withExtendedLifetime((W_hh, zeros)) {}
        let (activations, output, cellStates, tanhCellStates) = (gates, y, cells, tanhCells)

        return tape.record(output, inputs: [self, wih, whh, bih, bhh]) { dy, needs in
            var dGates = Tensor(uninitializedShape: [batch * steps, gh])   // ∂L/∂(gate pre-activations)
            var dhNext = Tensor.zeros([batch, H])                           // ∂L/∂h_t through step t + 1
            var dcNext = Tensor.zeros(lstm ? [batch, H] : [0])              // ∂L/∂C_t through step t + 1
            let pd = dGates.mutablePointer, pdh = dhNext.mutablePointer, pdc = dcNext.mutablePointer
            let pdy = dy.pointer, pa = activations.pointer, py = output.pointer
            let pc = cellStates.pointer, ptc = tanhCellStates.pointer
            for t in stride(from: steps - 1, through: 0, by: -1) {
                for b in 0..<batch {
                    let row = b * steps + t
                    let a = pa + row * gh, d = pd + row * gh, dyRow = pdy + row * H, dh = pdh + b * H
                    guard lstm else {
                        let h = py + row * H
                        for j in stride(from: 0, to: H, by: 8) {
                            let n = Swift.min(8, H - j), hj = Lanes.load(h, j, n)
                            Lanes.store((1 - hj * hj) * (Lanes.load(dyRow, j, n) + Lanes.load(dh, j, n)), d, j, n)
                        }
                        continue
                    }
                    let tc = ptc + row * H, cPrev = t > 0 ? pc + (row - 1) * H : zeros.pointer, dc = pdc + b * H
                    // Eight hidden units at a time, each lane the scalar formula (Lanes: same bits).
                    for j in stride(from: 0, to: H, by: 8) {
                        let n = Swift.min(8, H - j)
                        let (i, f) = (Lanes.load(a, j, n), Lanes.load(a + H, j, n))
                        let (g, o) = (Lanes.load(a + 2 * H, j, n), Lanes.load(a + 3 * H, j, n))
                        let dhj = Lanes.load(dyRow, j, n) + Lanes.load(dh, j, n), tcj = Lanes.load(tc, j, n)
                        let dcj = dhj * o * (1 - tcj * tcj) + Lanes.load(dc, j, n)
                        Lanes.store(dcj * g * i * (1 - i), d, j, n)
                        Lanes.store(dcj * Lanes.load(cPrev, j, n) * f * (1 - f), d + H, j, n)
                        Lanes.store(dcj * i * (1 - g * g), d + 2 * H, j, n)
                        Lanes.store(dhj * tcj * o * (1 - o), d + 3 * H, j, n)
                        Lanes.store(dcj * f, dc, j, n)
                    }
                }
                if t > 0 {  // ∂L/∂h_{t−1} = ∂gates_t · W_hh
                    BLAS.gemm(transA: false, transB: false, m: batch, n: H, k: gh, a: pd + t * gh, lda: gateStride,
                              b: W_hh.pointer, ldb: H, beta: 0, c: pdh, ldc: H)
                }
            }
            var dwhh: Tensor? = nil
            if needs[2] {
                // What W_hh multiplied at row b·T + t: h_{t−1}, i.e. each sample's outputs moved
                // down one row, with h₀ = 0 in its first row.
                var hPrev = Tensor(uninitializedShape: [batch * steps, H])
                let php = hPrev.mutablePointer
                for b in 0..<batch {
                    (php + b * stateStride).update(repeating: 0, count: H)
                    (php + b * stateStride + H).update(from: py + b * stateStride, count: (steps - 1) * H)
                }
                dwhh = dGates.matmul(hPrev, transposeSelf: true)
            }
            withExtendedLifetime((dy, activations, output, cellStates, tanhCellStates, dcNext, W_hh, zeros)) {}
            let dx = needs[0] ? dGates.matmul(W_ih).reshaped(x.shape) : nil
            let dwih = needs[1] ? dGates.matmul(xf, transposeSelf: true) : nil
            // b_ih and b_hh enter every gate the same way: one gradient for both.
            let db = needs[3] || needs[4] ? dGates.sum(axis: 0) : nil
            return [dx, dwih, dwhh, needs[3] ? db : nil, needs[4] ? db : nil]
        }
    }

    /// The last time step of [B, T, H]: [B, H].
    public func lastStep() -> Variable {
        let x = value
        let (batch, steps, width) = (x.shape[0], x.shape[1], x.shape[2])
        var y = Tensor(uninitializedShape: [batch, width])
        let px = x.pointer, py = y.mutablePointer
        for b in 0..<batch { (py + b * width).update(from: px + (b * steps + steps - 1) * width, count: width) }
        return tape.record(y, inputs: [self]) { dy, _ in
            var dx = Tensor.zeros(x.shape)
            let pd = dx.mutablePointer, pg = dy.pointer
            for b in 0..<batch { (pd + (b * steps + steps - 1) * width).update(from: pg + b * width, count: width) }
            return [dx]
        }
    }
}
