import Foundation

/// The recurrent cells of lecture 001 (and lecture 000's Elman RNN), with PyTorch's weight
/// layout: weight_ih is [G·H, I] and weight_hh [G·H, H] with the gates stacked in PyTorch's order
/// (LSTM i, f, g, o; GRU r, z, n), biases [G·H] each.
public enum RecurrentCell: String, Sendable, CaseIterable {
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

/// σ without branches (e^−x overflowing to ∞ gives exactly 0), so the gate loops pipeline.
@inline(__always) func σ(_ x: Float) -> Float { 1 / (1 + Foundation.exp(-x)) }
/// tanh through one exp: 1 − 2/(e^{2x} + 1). glibc's tanhf goes through expm1f and was a fifth
/// of an LSTM step; this is within 2·10⁻⁷ of it and saturates cleanly at ±1.
@inline(__always) func th(_ x: Float) -> Float { 1 - 2 / (Foundation.exp(2 * x) + 1) }

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
        let (batch, steps, inputs) = (x.shape[0], x.shape[1], x.shape[2])
        let gh = wih.value.shape[0], hidden = gh / cell.gates
        precondition(wih.value.shape == [gh, inputs] && whh.value.shape == [gh, hidden], "recurrent weights \(wih.value.shape), \(whh.value.shape) for input \(inputs)")
        let W_hh = whh.value, W_ih = wih.value, b_hh = bhh.value
        // Input part of every gate at every step: rows b·T + t.
        let xf = x.reshaped([batch * steps, inputs])
        // The bias is preloaded into C, so the sgemm adds the product to it (beta = 1).
        var xw = Tensor(repeatingRow: bih.value, rows: batch * steps)
        xw.matmulAccumulate(xf, W_ih, transposeB: true, beta: 1)
        // Per step, time-major: gate activations, hidden and cell states, the hidden products.
        var acts = [Tensor](), hs = [Tensor.zeros([batch, hidden])], cs = [Tensor.zeros([batch, hidden])]
        var tanhCs = [Tensor]()   // lstm: tanh(C) of each step, reused by backward
        var hiddenN = [Tensor]()   // gru_pytorch: W_hn h₋ + b_hn; gru: (r⊙h₋)
        let H = hidden
        // The lecture GRU splits W_hh: rows r, z act on h₋, rows of the candidate (U_h) on r⊙h₋.
        let whhRZ = cell == .gru ? Tensor(shape: [2 * H, H], Array(UnsafeBufferPointer(start: W_hh.pointer, count: 2 * H * H))) : W_hh
        let uh = cell == .gru ? Tensor(shape: [H, H], Array(UnsafeBufferPointer(start: W_hh.pointer + 2 * H * H, count: H * H))) : W_hh
        for t in 0..<steps {
            let hPrev = hs[t]
            var a = Tensor(uninitializedShape: [batch, gh])
            var h = Tensor(uninitializedShape: [batch, hidden])
            var c = Tensor.zeros([batch, hidden])
            var tc = Tensor(uninitializedShape: cell == .lstm ? [batch, hidden] : [0])
            let ptc = tc.mutablePointer
            let hw = hPrev.matmul(whhRZ, transposeOther: true)
            let pa = a.mutablePointer, ph = h.mutablePointer, pc = c.mutablePointer
            let px = xw.pointer, phw = hw.pointer, pb = b_hh.pointer, hp = hPrev.pointer, cp = cs[t].pointer
            let hwWidth = hw.shape[1]
            switch cell {
            case .rnn:
                for b in 0..<batch { for j in 0..<H {
                    let v = th(px[(b * steps + t) * gh + j] + phw[b * hwWidth + j] + pb[j])
                    pa[b * gh + j] = v; ph[b * H + j] = v
                } }
            case .lstm:
                for b in 0..<batch {
                    let xrow = px + (b * steps + t) * gh, hrow = phw + b * hwWidth, arow = pa + b * gh
                    for k in 0..<(2 * H) { arow[k] = σ(xrow[k] + hrow[k] + pb[k]) }
                    for k in (2 * H)..<(3 * H) { arow[k] = th(xrow[k] + hrow[k] + pb[k]) }
                    for k in (3 * H)..<gh { arow[k] = σ(xrow[k] + hrow[k] + pb[k]) }
                    for j in 0..<H {
                        let cell = arow[H + j] * cp[b * H + j] + arow[j] * arow[2 * H + j]
                        pc[b * H + j] = cell
                        let t = th(cell)
                        ptc[b * H + j] = t
                        ph[b * H + j] = arow[3 * H + j] * t
                    }
                }
            case .gruPyTorch:
                var hn = Tensor(uninitializedShape: [batch, H])
                let phn = hn.mutablePointer
                for b in 0..<batch {
                    let xrow = px + (b * steps + t) * gh, hrow = phw + b * hwWidth, arow = pa + b * gh
                    for k in 0..<(2 * H) { arow[k] = σ(xrow[k] + hrow[k] + pb[k]) }
                    for j in 0..<H {
                        let n0 = hrow[2 * H + j] + pb[2 * H + j]
                        phn[b * H + j] = n0
                        let n = th(xrow[2 * H + j] + arow[j] * n0)
                        arow[2 * H + j] = n
                        let z = arow[H + j]
                        ph[b * H + j] = (1 - z) * n + z * hp[b * H + j]
                    }
                }
                hiddenN.append(hn)
            case .gru:
                // r and z from the first sgemm; the candidate needs (r⊙h₋)·U_hᵀ, a second one.
                var rh = Tensor(uninitializedShape: [batch, H])
                let prh = rh.mutablePointer
                for b in 0..<batch {
                    let xrow = px + (b * steps + t) * gh, hrow = phw + b * hwWidth, arow = pa + b * gh
                    for k in 0..<(2 * H) { arow[k] = σ(xrow[k] + hrow[k] + pb[k]) }
                    for j in 0..<H { prh[b * H + j] = arow[j] * hp[b * H + j] }
                }
                let un = rh.matmul(uh, transposeOther: true)
                defer { withExtendedLifetime(un) {} }
                let pun = un.pointer
                for b in 0..<batch {
                    let xrow = px + (b * steps + t) * gh, arow = pa + b * gh
                    for j in 0..<H {
                        let candidate = th(xrow[2 * H + j] + pun[b * H + j] + pb[2 * H + j])
                        arow[2 * H + j] = candidate
                        let z = arow[H + j]
                        ph[b * H + j] = (1 - z) * hp[b * H + j] + z * candidate
                    }
                }
                hiddenN.append(rh)
            }
            // Raw pointers do not keep their tensors alive: keep these until the step is done.
            withExtendedLifetime((xw, hw, b_hh)) {}
            acts.append(a); hs.append(h); cs.append(c); tanhCs.append(tc)
        }
        var y = Tensor(uninitializedShape: [batch, steps, hidden])
        let py = y.mutablePointer
        for t in 0..<steps { let ph = hs[t + 1].pointer; for b in 0..<batch { (py + (b * steps + t) * H).update(from: ph + b * H, count: H) } }

        return tape.record(y, inputs: [self, wih, whh, bih, bhh]) { dy, needs in
            var dXW = Tensor(uninitializedShape: [batch * steps, gh])     // ∂L/∂(input part), rows b·T + t
            var dHW = Tensor(uninitializedShape: [batch * steps, gh])     // ∂L/∂(hidden part incl. b_hh)
            var hPrevAll = Tensor(uninitializedShape: [batch * steps, H]) // what W_hh multiplied
            var rhAll = Tensor(uninitializedShape: cell == .gru ? [batch * steps, H] : [0, H])
            var dhNext = Tensor.zeros([batch, H]), dcNext = Tensor.zeros([batch, H])
            let pdy = dy.pointer, pdxw = dXW.mutablePointer, pdhw = dHW.mutablePointer, phall = hPrevAll.mutablePointer
            let prhall = rhAll.mutablePointer
            for t in stride(from: steps - 1, through: 0, by: -1) {
                let a = acts[t].pointer, hp = hs[t].pointer, hcur = hs[t + 1].pointer, cp = cs[t].pointer, tcur = tanhCs[t].pointer
                var dPre = Tensor(uninitializedShape: [batch, gh])     // for the hidden path
                var dhPrev = Tensor.zeros([batch, H])
                let pd = dPre.mutablePointer, pdh = dhNext.mutablePointer, pdc = dcNext.mutablePointer, pdhp = dhPrev.mutablePointer
                for b in 0..<batch {
                    let row = (b * steps + t)
                    (phall + row * H).update(from: hp + b * H, count: H)
                    let arow = a + b * gh, drow = pd + b * gh, xrow = pdxw + row * gh
                    for j in 0..<H {
                        let dh = pdy[row * H + j] + pdh[b * H + j]
                        switch cell {
                        case .rnn:
                            let v = (1 - hcur[b * H + j] * hcur[b * H + j]) * dh
                            drow[j] = v; xrow[j] = v
                        case .lstm:
                            let (i, f, g, o) = (arow[j], arow[H + j], arow[2 * H + j], arow[3 * H + j])
                            let tc = tcur[b * H + j]
                            let dc = dh * o * (1 - tc * tc) + pdc[b * H + j]
                            let di = dc * g * i * (1 - i), df = dc * cp[b * H + j] * f * (1 - f)
                            let dg = dc * i * (1 - g * g), dout = dh * tc * o * (1 - o)
                            drow[j] = di; drow[H + j] = df; drow[2 * H + j] = dg; drow[3 * H + j] = dout
                            xrow[j] = di; xrow[H + j] = df; xrow[2 * H + j] = dg; xrow[3 * H + j] = dout
                            pdc[b * H + j] = dc * f
                        case .gruPyTorch:
                            let (r, z, n) = (arow[j], arow[H + j], arow[2 * H + j])
                            let hn = hiddenN[t].pointer[b * H + j]
                            let dn = dh * (1 - z) * (1 - n * n)
                            let dz = dh * (hp[b * H + j] - n) * z * (1 - z)
                            let dr = dn * hn * r * (1 - r)
                            xrow[j] = dr; xrow[H + j] = dz; xrow[2 * H + j] = dn
                            drow[j] = dr; drow[H + j] = dz; drow[2 * H + j] = dn * r
                            pdhp[b * H + j] = dh * z
                        case .gru:
                            let (z, candidate) = (arow[H + j], arow[2 * H + j])
                            let dn = dh * z * (1 - candidate * candidate)
                            xrow[2 * H + j] = dn; drow[2 * H + j] = dn
                            xrow[H + j] = dh * (candidate - hp[b * H + j]) * z * (1 - z)
                            drow[H + j] = xrow[H + j]
                            pdhp[b * H + j] = dh * (1 - z)
                        }
                    }
                }
                if cell == .gru {
                    // Through the candidate's U_h(r⊙h₋): ∂(r⊙h₋) = dn·U_h, then into r and h₋.
                    var dnOnly = Tensor(uninitializedShape: [batch, H])
                    let pdn = dnOnly.mutablePointer
                    for b in 0..<batch { (pdn + b * H).update(from: pd + b * gh + 2 * H, count: H) }
                    let drhTensor = dnOnly.matmul(uh)
                    defer { withExtendedLifetime(drhTensor) {} }
                    let drh = drhTensor.pointer
                    let rh = hiddenN[t].pointer
                    for b in 0..<batch {
                        (prhall + (b * steps + t) * H).update(from: rh + b * H, count: H)
                        for j in 0..<H {
                            let r = a[b * gh + j]
                            let dr = drh[b * H + j] * hp[b * H + j] * r * (1 - r)
                            pd[b * gh + j] = dr; pdxw[(b * steps + t) * gh + j] = dr
                            pdhp[b * H + j] += drh[b * H + j] * r
                        }
                    }
                    // Only r and z reach h₋ through the first hidden sgemm.
                    var drz = Tensor(uninitializedShape: [batch, 2 * H])
                    let pdrz = drz.mutablePointer
                    for b in 0..<batch { (pdrz + b * 2 * H).update(from: pd + b * gh, count: 2 * H) }
                    dhPrev.matmulAccumulate(drz, whhRZ, beta: 1)
                } else {
                    dhPrev.matmulAccumulate(dPre, W_hh, beta: 1)
                }
                for b in 0..<batch { (pdhw + (b * steps + t) * gh).update(from: pd + b * gh, count: gh) }
                withExtendedLifetime((dPre, dcNext, dy)) {}
                dhNext = dhPrev
            }
            withExtendedLifetime((dXW, dHW, hPrevAll, rhAll)) {}
            let dx = needs[0] ? dXW.matmul(W_ih).reshaped(x.shape) : nil
            let dwih = needs[1] ? dXW.matmul(xf, transposeSelf: true) : nil
            var dwhh: Tensor? = nil
            if needs[2] {
                if cell == .gru {
                    // Rows r, z multiplied h₋; rows n multiplied r⊙h₋.
                    var grad = Tensor(uninitializedShape: [gh, H])
                    let rz = dHW.matmul(hPrevAll, transposeSelf: true), n = dHW.matmul(rhAll, transposeSelf: true)
                    let pg = grad.mutablePointer
                    pg.update(from: rz.pointer, count: 2 * H * H)
                    (pg + 2 * H * H).update(from: n.pointer + 2 * H * H, count: H * H)
                    dwhh = grad
                } else {
                    dwhh = dHW.matmul(hPrevAll, transposeSelf: true)
                }
            }
            return [dx, dwih, dwhh, needs[3] ? dXW.sum(axis: 0) : nil, needs[4] ? dHW.sum(axis: 0) : nil]
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
