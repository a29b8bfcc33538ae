/// The two GRUs: the lecture's (`RecurrentCell.gru`) and PyTorch's (`.gruPyTorch`). They share
/// their parameters and the r and z gates; they differ in the candidate. The lecture's
/// multiplies U_h by r⊙h₋ (a second sgemm per step); PyTorch's scales W_hn h₋ + b_hn by r. So
/// neither reads W_hh·h₋ whole, as the RNN and LSTM do: each step keeps its hidden product
/// apart from the input part, and backward keeps the two gate gradients apart too.
///
/// Layout: rows b·T + t for every [B·T, ·] matrix; gates r, z, n in PyTorch's order.
extension Variable {
    func gatedRecurrentUnit(_ cell: RecurrentCell, weightIH wih: Variable, weightHH whh: Variable,
                            biasIH bih: Variable, biasHH bhh: Variable) -> Variable {
        let input = GRUInput(x: value, weightIH: wih.value, biasIH: bih.value)
        let (y, backward): (Tensor, GRUBackward) = cell == .gru
            ? lectureGRU(input, weightHH: whh.value, biasHH: bhh.value)
            : pytorchGRU(input, weightHH: whh.value, biasHH: bhh.value)
        // The pullback holds tensors, never a Variable: a Variable holds the tape, which holds the
        // pullback, and that cycle would keep every micro-batch's activations alive.
        let weightIH = wih.value
        return tape.record(y, inputs: [self, wih, whh, bih, bhh]) { dy, needs in
            let (dXW, dHW, dWhh) = backward(dy, needs[2])
            return input.gradients(dXW: dXW, dHW: dHW, dWhh: dWhh, weightIH: weightIH, needs: needs)
        }
    }

    /// torch.nn.GRU: r, z = σ(x W_i· + b_i· + h₋ W_h· + b_h·); n = tanh(x W_in + b_in + r⊙(h₋ W_hn + b_hn));
    /// h = (1 − z)⊙n + z⊙h₋. One sgemm per step gives all three hidden parts.
    func pytorchGRU(_ input: GRUInput, weightHH W_hh: Tensor, biasHH b_hh: Tensor) -> (Tensor, GRUBackward) {
        let (batch, steps, H, gh) = (input.batch, input.steps, input.hidden, input.gateWidth)
        var acts = [Tensor](), hs = [Tensor.zeros([batch, H])], hiddenN = [Tensor]()   // hiddenN: W_hn h₋ + b_hn
        for t in 0..<steps {
            let hPrev = hs[t]
            var a = Tensor(uninitializedShape: [batch, gh]), h = Tensor(uninitializedShape: [batch, H])
            var hn = Tensor(uninitializedShape: [batch, H])
            let hw = hPrev.matmul(W_hh, transposeOther: true)
            input.activateResetAndUpdate(a.mutablePointer, hiddenPart: hw, biasHH: b_hh, step: t)
            let pa = a.mutablePointer, ph = h.mutablePointer, phn = hn.mutablePointer
            let px = input.xw.pointer, phw = hw.pointer, pb = b_hh.pointer, hp = hPrev.pointer
            for b in 0..<batch {
                let xrow = px + (b * steps + t) * gh, hrow = phw + b * gh, arow = pa + b * gh
                for j in stride(from: 0, to: H, by: 8) {
                    let n = Swift.min(8, H - j)
                    let n0 = Lanes.load(hrow + 2 * H, j, n) + Lanes.load(pb + 2 * H, j, n)
                    Lanes.store(n0, phn + b * H, j, n)
                    Lanes.store(Lanes.load(xrow + 2 * H, j, n) + Lanes.load(arow, j, n) * n0, arow + 2 * H, j, n)
                }
                VectorMath.tanh(arow + 2 * H, count: H)
                for j in stride(from: 0, to: H, by: 8) {
                    let n = Swift.min(8, H - j), z = Lanes.load(arow + H, j, n)
                    Lanes.store((1 - z) * Lanes.load(arow + 2 * H, j, n) + z * Lanes.load(hp + b * H, j, n), ph + b * H, j, n)
                }
            }
            // Raw pointers do not keep their tensors alive: keep these until the step is done.
            withExtendedLifetime((input, hw, b_hh)) {}
            acts.append(a); hs.append(h); hiddenN.append(hn)
        }
        let backward: GRUBackward = { dy, needsWhh in
            input.backThroughTime(dy, states: hs, rowsForWhh: 0) { t, dh, dPre, dXW, dhPrev in
                let a = acts[t].pointer, hp = hs[t].pointer, hn = hiddenN[t].pointer
                for b in 0..<batch {
                    let arow = a + b * gh, drow = dPre + b * gh, xrow = dXW + (b * steps + t) * gh
                    for j in stride(from: 0, to: H, by: 8) {   // eight units at a time (Lanes: same bits)
                        let count = Swift.min(8, H - j), d = Lanes.load(dh + b * H, j, count)
                        let (r, z, n) = (Lanes.load(arow, j, count), Lanes.load(arow + H, j, count), Lanes.load(arow + 2 * H, j, count))
                        let dn = d * (1 - z) * (1 - n * n)
                        let dz = d * (Lanes.load(hp + b * H, j, count) - n) * z * (1 - z)
                        let dr = dn * Lanes.load(hn + b * H, j, count) * r * (1 - r)
                        Lanes.store(dr, xrow, j, count); Lanes.store(dz, xrow + H, j, count); Lanes.store(dn, xrow + 2 * H, j, count)
                        Lanes.store(dr, drow, j, count); Lanes.store(dz, drow + H, j, count); Lanes.store(dn * r, drow + 2 * H, j, count)
                        Lanes.store(d * z, dhPrev + b * H, j, count)
                    }
                }
                return (W_hh, gh)
            } weightGradient: { dHW, hPrevAll in
                needsWhh ? dHW.matmul(hPrevAll, transposeSelf: true) : nil
            }
        }
        return (input.batchFirst(hs), backward)
    }

    /// Lecture 001 §5.3: z, r = σ(W x + U h₋ + b); h̃ = tanh(W_h x + U_h(r⊙h₋) + b_h);
    /// h = (1 − z)⊙h₋ + z⊙h̃. W_hh's rows r, z act on h₋ and its rows n (U_h) on r⊙h₋.
    ///
    /// A numeric kernel kept in one piece, like `pytorchGRU`: the step's backward closure reads
    /// the forward's saved gates and must stay beside the formulas it reverses.
    func lectureGRU(_ input: GRUInput, weightHH W_hh: Tensor, biasHH b_hh: Tensor) -> (Tensor, GRUBackward) {
        let (batch, steps, H, gh) = (input.batch, input.steps, input.hidden, input.gateWidth)
        let whhRZ = Tensor(shape: [2 * H, H], Array(UnsafeBufferPointer(start: W_hh.pointer, count: 2 * H * H)))
        let uh = Tensor(shape: [H, H], Array(UnsafeBufferPointer(start: W_hh.pointer + 2 * H * H, count: H * H)))
        var acts = [Tensor](), hs = [Tensor.zeros([batch, H])], resetHidden = [Tensor]()   // r⊙h₋
        for t in 0..<steps {
            let hPrev = hs[t]
            var a = Tensor(uninitializedShape: [batch, gh]), h = Tensor(uninitializedShape: [batch, H])
            var rh = Tensor(uninitializedShape: [batch, H])
            let hw = hPrev.matmul(whhRZ, transposeOther: true)
            input.activateResetAndUpdate(a.mutablePointer, hiddenPart: hw, biasHH: b_hh, step: t)
            let pa = a.mutablePointer, ph = h.mutablePointer, prh = rh.mutablePointer
            let px = input.xw.pointer, pb = b_hh.pointer, hp = hPrev.pointer
            for b in 0..<batch { Lanes.map(H, into: prh + b * H, pa + b * gh, hp + b * H) { r, h in r * h } }
            // The candidate needs (r⊙h₋)·U_hᵀ, a second sgemm.
            let un = rh.matmul(uh, transposeOther: true)
            let pun = un.pointer
            for b in 0..<batch {
                let xrow = px + (b * steps + t) * gh, arow = pa + b * gh
                for j in stride(from: 0, to: H, by: 8) {
                    let n = Swift.min(8, H - j)
                    let sum = Lanes.load(xrow + 2 * H, j, n) + Lanes.load(pun + b * H, j, n)
                    Lanes.store(sum + Lanes.load(pb + 2 * H, j, n), arow + 2 * H, j, n)
                }
                VectorMath.tanh(arow + 2 * H, count: H)
                for j in stride(from: 0, to: H, by: 8) {
                    let n = Swift.min(8, H - j), z = Lanes.load(arow + H, j, n)
                    Lanes.store((1 - z) * Lanes.load(hp + b * H, j, n) + z * Lanes.load(arow + 2 * H, j, n), ph + b * H, j, n)
                }
            }
            withExtendedLifetime((input, hw, un, b_hh)) {}
            acts.append(a); hs.append(h); resetHidden.append(rh)
        }
        let backward: GRUBackward = { dy, needsWhh in
            var rhAll = Tensor(uninitializedShape: [batch * steps, H])   // what U_h multiplied, rows b·T + t
            return input.backThroughTime(dy, states: hs, rowsForWhh: 2 * H) { t, dh, dPre, dXW, dhPrev in
                let a = acts[t].pointer, hp = hs[t].pointer, rh = resetHidden[t].pointer, prhall = rhAll.mutablePointer
                for b in 0..<batch {
                    let arow = a + b * gh, drow = dPre + b * gh, xrow = dXW + (b * steps + t) * gh
                    for j in stride(from: 0, to: H, by: 8) {   // eight units at a time (Lanes: same bits)
                        let n = Swift.min(8, H - j), d = Lanes.load(dh + b * H, j, n)
                        let (z, candidate) = (Lanes.load(arow + H, j, n), Lanes.load(arow + 2 * H, j, n))
                        let dn = d * z * (1 - candidate * candidate)
                        Lanes.store(dn, xrow + 2 * H, j, n); Lanes.store(dn, drow + 2 * H, j, n)
                        let dz = d * (candidate - Lanes.load(hp + b * H, j, n)) * z * (1 - z)
                        Lanes.store(dz, xrow + H, j, n); Lanes.store(dz, drow + H, j, n)
                        Lanes.store(d * (1 - z), dhPrev + b * H, j, n)
                    }
                }
                // Through the candidate's U_h(r⊙h₋): ∂(r⊙h₋) = dn·U_h, then into r and h₋.
                var dnOnly = Tensor(uninitializedShape: [batch, H])
                let pdn = dnOnly.mutablePointer
                for b in 0..<batch { (pdn + b * H).update(from: dPre + b * gh + 2 * H, count: H) }
                let drhTensor = dnOnly.matmul(uh)
                let drh = drhTensor.pointer
                for b in 0..<batch {
                    (prhall + (b * steps + t) * H).update(from: rh + b * H, count: H)
                    for j in stride(from: 0, to: H, by: 8) {
                        let n = Swift.min(8, H - j), r = Lanes.load(a + b * gh, j, n), dr0 = Lanes.load(drh + b * H, j, n)
                        let dr = dr0 * Lanes.load(hp + b * H, j, n) * r * (1 - r)
                        Lanes.store(dr, dPre + b * gh, j, n); Lanes.store(dr, dXW + (b * steps + t) * gh, j, n)
                        Lanes.store(Lanes.load(dhPrev + b * H, j, n) + dr0 * r, dhPrev + b * H, j, n)
                    }
                }
                withExtendedLifetime(drhTensor) {}
                // Only r and z reach h₋ through the first hidden sgemm.
                return (whhRZ, 2 * H)
            } weightGradient: { dHW, hPrevAll in
                guard needsWhh else { return nil }
                // Rows r, z multiplied h₋; rows n multiplied r⊙h₋.
                var grad = Tensor(uninitializedShape: [gh, H])
                let rz = dHW.matmul(hPrevAll, transposeSelf: true), n = dHW.matmul(rhAll, transposeSelf: true)
                withExtendedLifetime(rhAll) {}
                let pg = grad.mutablePointer
                pg.update(from: rz.pointer, count: 2 * H * H)
                (pg + 2 * H * H).update(from: n.pointer + 2 * H * H, count: H * H)
                return grad
            }
        }
        return (input.batchFirst(hs), backward)
    }
}

/// A GRU's backward pass from ∂L/∂y: ∂L/∂(input part) and ∂L/∂(hidden part incl. b_hh), both
/// [B·T, 3H], and ∂W_hh when asked for.
typealias GRUBackward = (_ dy: Tensor, _ needsWeightHH: Bool) -> (dXW: Tensor, dHW: Tensor, dWhh: Tensor?)

/// What both GRUs start from: x as rows b·T + t, and the input part of every gate at every
/// step, x·W_ihᵀ + b_ih.
struct GRUInput {
    let xShape: [Int]
    let batch, steps, inputs, hidden: Int
    var gateWidth: Int { 3 * hidden }
    let xf: Tensor
    let xw: Tensor

    init(x: Tensor, weightIH: Tensor, biasIH: Tensor) {
        xShape = x.shape
        (batch, steps, inputs) = (x.shape[0], x.shape[1], x.shape[2])
        hidden = weightIH.shape[0] / 3
        xf = x.reshaped([batch * steps, inputs])
        // The bias is preloaded into C, so the sgemm adds the product to it (beta = 1).
        var xw = Tensor(repeatingRow: biasIH, rows: batch * steps)
        xw.matmulAccumulate(xf, weightIH, transposeB: true, beta: 1)
        self.xw = xw
    }

    /// r and z of step t into the rows of `a`: σ(input part + hidden part + b_hh).
    func activateResetAndUpdate(_ pa: UnsafeMutablePointer<Float>, hiddenPart hw: Tensor, biasHH: Tensor, step t: Int) {
        let gh = gateWidth, width = hw.shape[1]
        let px = xw.pointer, phw = hw.pointer, pb = biasHH.pointer
        for b in 0..<batch {
            let xrow = px + (b * steps + t) * gh, hrow = phw + b * width, arow = pa + b * gh
            for k in stride(from: 0, to: 2 * hidden, by: 8) {
                let n = Swift.min(8, 2 * hidden - k)
                Lanes.store(Lanes.load(xrow, k, n) + Lanes.load(hrow, k, n) + Lanes.load(pb, k, n), arow, k, n)
            }
            VectorMath.sigmoid(arow, count: 2 * hidden)
        }
        withExtendedLifetime((xw, hw, biasHH)) {}
    }

    /// The hidden states h₁…h_T (time-major, `states` holds h₀ first) as y [B, T, H].
    func batchFirst(_ states: [Tensor]) -> Tensor {
        var y = Tensor(uninitializedShape: [batch, steps, hidden])
        let py = y.mutablePointer
        for t in 0..<steps {
            let ph = states[t + 1].pointer
            for b in 0..<batch { (py + (b * steps + t) * hidden).update(from: ph + b * hidden, count: hidden) }
        }
        return y
    }

    /// Backpropagation through time, from the last step to the first. `step` fills, for step t
    /// and ∂L/∂h_t, the step's gate gradients (dPre for the hidden path, dXW's rows for the
    /// input path) and ∂L/∂h₋ from the gates' direct terms, and returns the matrix (and its
    /// leading rows of dPre) that carries the hidden path back to h₋. `weightGradient` makes
    /// ∂W_hh from dHW and the h₋ of every step.
    func backThroughTime(
        _ dy: Tensor, states: [Tensor], rowsForWhh: Int,
        step: (_ t: Int, _ dh: UnsafePointer<Float>, _ dPre: UnsafeMutablePointer<Float>, _ dXW: UnsafeMutablePointer<Float>,
               _ dhPrev: UnsafeMutablePointer<Float>) -> (weight: Tensor, width: Int),
        weightGradient: (_ dHW: Tensor, _ hPrevAll: Tensor) -> Tensor?
    ) -> (dXW: Tensor, dHW: Tensor, dWhh: Tensor?) {
        let gh = gateWidth, H = hidden
        var dXW = Tensor(uninitializedShape: [batch * steps, gh])
        var dHW = Tensor(uninitializedShape: [batch * steps, gh])
        var hPrevAll = Tensor(uninitializedShape: [batch * steps, H])   // what W_hh multiplied
        var dhNext = Tensor.zeros([batch, H])
        let pdy = dy.pointer, pdxw = dXW.mutablePointer, pdhw = dHW.mutablePointer, phall = hPrevAll.mutablePointer
        for t in stride(from: steps - 1, through: 0, by: -1) {
            var dh = Tensor(uninitializedShape: [batch, H])
            let pdh = dh.mutablePointer, next = dhNext.pointer, hp = states[t].pointer
            for b in 0..<batch {
                let row = b * steps + t
                (phall + row * H).update(from: hp + b * H, count: H)
                Lanes.map(H, into: pdh + b * H, pdy + row * H, next + b * H) { dy, next in dy + next }
            }
            var dPre = Tensor(uninitializedShape: [batch, gh])
            var dhPrev = Tensor.zeros([batch, H])
            let (weight, width) = step(t, dh.pointer, dPre.mutablePointer, pdxw, dhPrev.mutablePointer)
            if width == gh {
                dhPrev.matmulAccumulate(dPre, weight, beta: 1)
            } else {
                var leading = Tensor(uninitializedShape: [batch, width])
                let pl = leading.mutablePointer, pd = dPre.pointer
                for b in 0..<batch { (pl + b * width).update(from: pd + b * gh, count: width) }
                dhPrev.matmulAccumulate(leading, weight, beta: 1)
            }
            let pd = dPre.pointer
            for b in 0..<batch { (pdhw + (b * steps + t) * gh).update(from: pd + b * gh, count: gh) }
            // One tensor at a time: a tuple that also held the parameters `dy` and `states` here
            // leaked dh and dPre at every step in release builds (3.3 MB a micro-batch for
            // mnist-gru), a retain the optimizer left unbalanced. The parameters live anyway.
            withExtendedLifetime(dPre) {}
            withExtendedLifetime(dh) {}
            dhNext = dhPrev
        }
        withExtendedLifetime((dXW, dHW, hPrevAll)) {}
        return (dXW, dHW, weightGradient(dHW, hPrevAll))
    }

    /// ∂x, ∂W_ih, ∂W_hh, ∂b_ih, ∂b_hh from the two gate-gradient matrices.
    func gradients(dXW: Tensor, dHW: Tensor, dWhh: Tensor?, weightIH: Tensor, needs: [Bool]) -> [Tensor?] {
        [needs[0] ? dXW.matmul(weightIH).reshaped(xShape) : nil,
         needs[1] ? dXW.matmul(xf, transposeSelf: true) : nil,
         dWhh,
         needs[3] ? dXW.sum(axis: 0) : nil,
         needs[4] ? dHW.sum(axis: 0) : nil]
    }
}
