extension Variable {
    /// The two GRUs (`RecurrentCell.gru`, the lecture's, and `.gruPyTorch`). Their candidate does
    /// not read W_hh·h₋ whole (the lecture's multiplies U_h by r⊙h₋, a second sgemm; PyTorch's
    /// scales W_hn h₋ + b_hn by r), so each step keeps its hidden product apart from the input
    /// part, and backward keeps the two gate gradients apart too.
    func gatedRecurrentUnit(_ cell: RecurrentCell, weightIH wih: Variable, weightHH whh: Variable,
                            biasIH bih: Variable, biasHH bhh: Variable) -> Variable {
        let x = value
        let (batch, steps, inputs) = (x.shape[0], x.shape[1], x.shape[2])
        let W_hh = whh.value, W_ih = wih.value, b_hh = bhh.value
        let gh = W_ih.shape[0], H = gh / cell.gates
        // Input part of every gate at every step: rows b·T + t.
        let xf = x.reshaped([batch * steps, inputs])
        // The bias is preloaded into C, so the sgemm adds the product to it (beta = 1).
        var xw = Tensor(repeatingRow: bih.value, rows: batch * steps)
        xw.matmulAccumulate(xf, W_ih, transposeB: true, beta: 1)
        // Per step, time-major: gate activations, hidden states, and what the backward pass needs.
        var acts = [Tensor](), hs = [Tensor.zeros([batch, H])]
        var hiddenN = [Tensor]()   // gru_pytorch: W_hn h₋ + b_hn; gru: (r⊙h₋)
        // The lecture GRU splits W_hh: rows r, z act on h₋, rows of the candidate (U_h) on r⊙h₋.
        let whhRZ = cell == .gru ? Tensor(shape: [2 * H, H], Array(UnsafeBufferPointer(start: W_hh.pointer, count: 2 * H * H))) : W_hh
        let uh = cell == .gru ? Tensor(shape: [H, H], Array(UnsafeBufferPointer(start: W_hh.pointer + 2 * H * H, count: H * H))) : W_hh
        for t in 0..<steps {
            let hPrev = hs[t]
            var a = Tensor(uninitializedShape: [batch, gh])
            var h = Tensor(uninitializedShape: [batch, H])
            let hw = hPrev.matmul(whhRZ, transposeOther: true)
            let pa = a.mutablePointer, ph = h.mutablePointer
            let px = xw.pointer, phw = hw.pointer, pb = b_hh.pointer, hp = hPrev.pointer
            let hwWidth = hw.shape[1]
            // r and z: σ of the input part, the hidden part and b_hh.
            for b in 0..<batch {
                let xrow = px + (b * steps + t) * gh, hrow = phw + b * hwWidth, arow = pa + b * gh
                for k in 0..<(2 * H) { arow[k] = xrow[k] + hrow[k] + pb[k] }
                VectorMath.sigmoid(arow, count: 2 * H)
            }
            if cell == .gruPyTorch {
                var hn = Tensor(uninitializedShape: [batch, H])
                let phn = hn.mutablePointer
                for b in 0..<batch {
                    let xrow = px + (b * steps + t) * gh, hrow = phw + b * hwWidth, arow = pa + b * gh
                    for j in 0..<H {
                        let n0 = hrow[2 * H + j] + pb[2 * H + j]
                        phn[b * H + j] = n0
                        arow[2 * H + j] = xrow[2 * H + j] + arow[j] * n0
                    }
                    VectorMath.tanh(arow + 2 * H, count: H)
                    for j in 0..<H {
                        let z = arow[H + j]
                        ph[b * H + j] = (1 - z) * arow[2 * H + j] + z * hp[b * H + j]
                    }
                }
                hiddenN.append(hn)
            } else {
                // The candidate needs (r⊙h₋)·U_hᵀ, a second sgemm.
                var rh = Tensor(uninitializedShape: [batch, H])
                let prh = rh.mutablePointer
                for b in 0..<batch { for j in 0..<H { prh[b * H + j] = pa[b * gh + j] * hp[b * H + j] } }
                let un = rh.matmul(uh, transposeOther: true)
                let pun = un.pointer
                for b in 0..<batch {
                    let xrow = px + (b * steps + t) * gh, arow = pa + b * gh
                    for j in 0..<H { arow[2 * H + j] = xrow[2 * H + j] + pun[b * H + j] + pb[2 * H + j] }
                    VectorMath.tanh(arow + 2 * H, count: H)
                    for j in 0..<H {
                        let z = arow[H + j]
                        ph[b * H + j] = (1 - z) * hp[b * H + j] + z * arow[2 * H + j]
                    }
                }
                withExtendedLifetime(un) {}
                hiddenN.append(rh)
            }
            // Raw pointers do not keep their tensors alive: keep these until the step is done.
            withExtendedLifetime((xw, hw, b_hh)) {}
            acts.append(a); hs.append(h)
        }
        var y = Tensor(uninitializedShape: [batch, steps, H])
        let py = y.mutablePointer
        for t in 0..<steps { let ph = hs[t + 1].pointer; for b in 0..<batch { (py + (b * steps + t) * H).update(from: ph + b * H, count: H) } }

        return tape.record(y, inputs: [self, wih, whh, bih, bhh]) { dy, needs in
            var dXW = Tensor(uninitializedShape: [batch * steps, gh])     // ∂L/∂(input part), rows b·T + t
            var dHW = Tensor(uninitializedShape: [batch * steps, gh])     // ∂L/∂(hidden part incl. b_hh)
            var hPrevAll = Tensor(uninitializedShape: [batch * steps, H]) // what W_hh multiplied
            var rhAll = Tensor(uninitializedShape: cell == .gru ? [batch * steps, H] : [0, H])
            var dhNext = Tensor.zeros([batch, H])
            let pdy = dy.pointer, pdxw = dXW.mutablePointer, pdhw = dHW.mutablePointer, phall = hPrevAll.mutablePointer
            let prhall = rhAll.mutablePointer
            for t in stride(from: steps - 1, through: 0, by: -1) {
                let a = acts[t].pointer, hp = hs[t].pointer
                var dPre = Tensor(uninitializedShape: [batch, gh])     // for the hidden path
                var dhPrev = Tensor.zeros([batch, H])
                let pd = dPre.mutablePointer, pdh = dhNext.mutablePointer, pdhp = dhPrev.mutablePointer
                for b in 0..<batch {
                    let row = (b * steps + t)
                    (phall + row * H).update(from: hp + b * H, count: H)
                    let arow = a + b * gh, drow = pd + b * gh, xrow = pdxw + row * gh
                    for j in 0..<H {
                        let dh = pdy[row * H + j] + pdh[b * H + j]
                        if cell == .gruPyTorch {
                            let (r, z, n) = (arow[j], arow[H + j], arow[2 * H + j])
                            let hn = hiddenN[t].pointer[b * H + j]
                            let dn = dh * (1 - z) * (1 - n * n)
                            let dz = dh * (hp[b * H + j] - n) * z * (1 - z)
                            let dr = dn * hn * r * (1 - r)
                            xrow[j] = dr; xrow[H + j] = dz; xrow[2 * H + j] = dn
                            drow[j] = dr; drow[H + j] = dz; drow[2 * H + j] = dn * r
                            pdhp[b * H + j] = dh * z
                        } else {
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
                withExtendedLifetime((dPre, dy)) {}
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
}
