// Backpropagation through time for the GRU (Layers/GRU.swift): the step's backward, a whole
// packed batch of sequences forward (keeping what the backward needs) and backward, and the
// parameter names. See docs/finetune-translation.md ("Recurrence vs attention: the GRU baseline").
import Kernels
import Layers
import TensorCore

extension GRUCell: ParameterContainer {
    /// `input_weight` W [3h, in], `hidden_weight` U [3h, h], `bias` b [3h] (blocks z, r, h̃).
    public mutating func visitParameters(prefix: String, _ body: (String, [Int], inout [Float]) throws -> Void) rethrows {
        try body(join(prefix, "input_weight"), [inputWeight.rows, inputWeight.cols], &inputWeight.storage)
        try body(join(prefix, "hidden_weight"), [hiddenWeight.rows, hiddenWeight.cols], &hiddenWeight.storage)
        try body(join(prefix, "bias"), [bias.count], &bias)
    }
}

/// What `GRUCell.trainingForward` keeps for the backward, one row per (position, sequence) of the
/// packing (time-major): the input x_t, h_{t−1}, the gates z, r, the candidate h̃, s = r ⊙ h_{t−1},
/// and the output h_t.
public struct GRUTrace: Sendable {
    public let packing: GRUPacking
    /// x [rows, in].
    public let inputs: Matrix
    /// h_{t−1}, z, r, h̃, s: [rows, h] each, row-major.
    public var previous: [Float], z: [Float], r: [Float], candidate: [Float], s: [Float]
    /// h_t [rows, h].
    public var states: Matrix
}

/// C = β·C + op(A)·op(B) on slices of arrays (offsets in elements), the GEMM of `path`.
@inline(__always)
func gemm(_ path: KernelPath, transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
          _ a: [Float], _ aOffset: Int = 0, lda: Int, _ b: [Float], _ bOffset: Int = 0, ldb: Int,
          beta: Float = 0, _ c: inout [Float], _ cOffset: Int = 0, ldc: Int) {
    guard m > 0, n > 0, k > 0 else { return }
    a.withUnsafeBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
            c.withUnsafeMutableBufferPointer { pc in
                GEMM.sgemm(path, transA: transA, transB: transB, m: m, n: n, k: k, a: pa.baseAddress! + aOffset, lda: lda,
                           b: pb.baseAddress! + bOffset, ldb: ldb, beta: beta, c: pc.baseAddress! + cOffset, ldc: ldc)
            }
        }
    }
}

/// v[j] += Σ_r m[r, j] for m [rows, cols] row-major (a bias's gradient).
func addColumnSums(_ m: [Float], rows: Int, cols: Int, into v: inout [Float]) {
    precondition(m.count >= rows * cols && v.count == cols, "addColumnSums: [rows, cols] into [cols]")
    m.withUnsafeBufferPointer { pm in
        v.withUnsafeMutableBufferPointer { pv in
            for r in 0..<rows {
                let row = pm.baseAddress! + r * cols
                for j in 0..<cols { pv[j] += row[j] }
            }
        }
    }
}

/// dst[dstOffset ..< dstOffset + count] = src[srcOffset ..< srcOffset + count].
@inline(__always)
func copyElements(_ src: [Float], _ srcOffset: Int, into dst: inout [Float], _ dstOffset: Int, count: Int) {
    precondition(srcOffset >= 0 && dstOffset >= 0 && srcOffset + count <= src.count && dstOffset + count <= dst.count, "copyElements bounds")
    src.withUnsafeBufferPointer { ps in
        dst.withUnsafeMutableBufferPointer { pd in
            (pd.baseAddress! + dstOffset).update(from: ps.baseAddress! + srcOffset, count: count)
        }
    }
}

extension GRUCell {
    /// The backward of one step for n rows. Given dh = ∂L/∂h_t [n, h] and the step's saved values,
    /// writes da = ∂L/∂a [n, 3h] — a the pre-activations, blocks z, r, h̃, equal to ∂L/∂(W·x + b) — and
    /// dhPrev = ∂L/∂h_{t−1} [n, h] (through this step only):
    ///
    ///     dz  = dh ⊙ (h_{t−1} − h̃),   da_z = dz ⊙ z ⊙ (1 − z)
    ///     dh̃  = dh ⊙ (1 − z),          da_h = dh̃ ⊙ (1 − h̃²)
    ///     ds  = da_h · U_h,            dr = ds ⊙ h_{t−1},   da_r = dr ⊙ r ⊙ (1 − r)
    ///     dh_{t−1} = dh ⊙ z + ds ⊙ r + [da_z, da_r] · [U_z; U_r]
    ///
    /// U's own gradient, dU_{z,r} += [da_z, da_r]ᵀ·h_{t−1} and dU_h += da_hᵀ·s, is a sum over rows
    /// and steps: `sequenceBackward` forms it once for all rows.
    static func stepBackward(_ path: KernelPath, rows n: Int, hidden h: Int, u: [Float], dh: [Float], dhOffset: Int,
                             previous: [Float], z: [Float], r: [Float], candidate: [Float], savedOffset: Int,
                             da: inout [Float], daOffset: Int, dPrevious: inout [Float], ds: inout [Float]) {
        guard n > 0 else { return }
        dh.withUnsafeBufferPointer { pdh in
            previous.withUnsafeBufferPointer { pp in
                z.withUnsafeBufferPointer { pz in
                    candidate.withUnsafeBufferPointer { pc in
                        da.withUnsafeMutableBufferPointer { pda in
                            for row in 0..<n {
                                let g = pdh.baseAddress! + dhOffset + row * h, q = savedOffset + row * h
                                let hp = pp.baseAddress! + q, zz = pz.baseAddress! + q, c = pc.baseAddress! + q
                                let out = pda.baseAddress! + daOffset + row * 3 * h
                                for j in 0..<h {
                                    out[j] = g[j] * (hp[j] - c[j]) * zz[j] * (1 - zz[j])
                                    out[2 * h + j] = g[j] * (1 - zz[j]) * (1 - c[j] * c[j])
                                }
                            }
                        }
                    }
                }
            }
        }
        // ds = da_h · U_h   (U_h: rows 2h..<3h of U, [h, h])
        gemm(path, m: n, n: h, k: h, da, daOffset + 2 * h, lda: 3 * h, u, 2 * h * h, ldb: h, &ds, ldc: h)
        dh.withUnsafeBufferPointer { pdh in
            previous.withUnsafeBufferPointer { pp in
                z.withUnsafeBufferPointer { pz in
                    r.withUnsafeBufferPointer { pr in
                        ds.withUnsafeBufferPointer { pds in
                            da.withUnsafeMutableBufferPointer { pda in
                                dPrevious.withUnsafeMutableBufferPointer { pdp in
                                    for row in 0..<n {
                                        let g = pdh.baseAddress! + dhOffset + row * h, q = savedOffset + row * h
                                        let hp = pp.baseAddress! + q, zz = pz.baseAddress! + q, rr = pr.baseAddress! + q
                                        let d = pds.baseAddress! + row * h, out = pda.baseAddress! + daOffset + row * 3 * h + h
                                        let dp = pdp.baseAddress! + row * h
                                        for j in 0..<h {
                                            out[j] = d[j] * hp[j] * rr[j] * (1 - rr[j])
                                            dp[j] = g[j] * zz[j] + d[j] * rr[j]
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        // dh_{t−1} += [da_z, da_r] · [U_z; U_r]
        gemm(path, m: n, n: h, k: 2 * h, da, daOffset, lda: 3 * h, u, ldb: h, beta: 1, &dPrevious, ldc: h)
    }

    /// The forward of a packed batch (`GRUPacking`, time-major) keeping every step's values.
    /// `x` [rows, in] time-major; `initial` h_0 [n_0, h] in rank order (zeros when nil).
    public func trainingForward(_ x: Matrix, packing: GRUPacking, initial: Matrix? = nil, path: KernelPath) throws -> GRUTrace {
        try validateShapes("GRUCell.trainingForward")
        let h = hiddenSize, rows = packing.rowCount
        guard x.rows == rows, x.cols == inputSize else {
            throw DecoderSpecError.shapeMismatch(operation: "GRUCell.trainingForward", expected: "x [\(rows), \(inputSize)]", actual: "\(x.shape)")
        }
        if let initial, initial.rows != packing.counts[0] || initial.cols != h {
            throw DecoderSpecError.shapeMismatch(operation: "GRUCell.trainingForward", expected: "h₀ [\(packing.counts[0]), \(h)]", actual: "\(initial.shape)")
        }
        let a = try inputProjections(x, path: path).storage
        var trace = GRUTrace(packing: packing, inputs: x, previous: [Float](repeating: 0, count: rows * h), z: [Float](repeating: 0, count: rows * h),
                             r: [Float](repeating: 0, count: rows * h), candidate: [Float](repeating: 0, count: rows * h),
                             s: [Float](repeating: 0, count: rows * h), states: Matrix(rows: rows, cols: h))
        if let initial { for i in 0..<(packing.counts[0] * h) { trace.previous[i] = initial.storage[i] } }
        var g = [Float](repeating: 0, count: packing.counts[0] * 2 * h)
        for t in 0..<packing.steps {
            let n = packing.counts[t], o = packing.offsets[t] * h
            if t > 0 {  // h_{t−1}: the first n rows of step t − 1's outputs
                let p = packing.offsets[t - 1] * h
                copyElements(trace.states.storage, p, into: &trace.previous, o, count: n * h)
            }
            Self.runStep(self, path, rows: n, hidden: h, a: a, aOffset: packing.offsets[t] * 3 * h, trace: &trace, offset: o, g: &g)
        }
        return trace
    }

    /// `stepKernel` on rows [offset, offset + n·h) of the trace's arrays.
    static func runStep(_ cell: GRUCell, _ path: KernelPath, rows n: Int, hidden h: Int, a: [Float], aOffset: Int,
                        trace: inout GRUTrace, offset o: Int, g: inout [Float]) {
        cell.hiddenWeight.storage.withUnsafeBufferPointer { pu in
            a.withUnsafeBufferPointer { pa in
                trace.previous.withUnsafeBufferPointer { ph in
                    trace.z.withUnsafeMutableBufferPointer { pz in
                        trace.r.withUnsafeMutableBufferPointer { pr in
                            trace.candidate.withUnsafeMutableBufferPointer { pc in
                                trace.s.withUnsafeMutableBufferPointer { ps in
                                    g.withUnsafeMutableBufferPointer { pg in
                                        trace.states.storage.withUnsafeMutableBufferPointer { po in
                                            GRUCell.stepKernel(path, rows: n, hidden: h, u: pu.baseAddress!, a: pa.baseAddress! + aOffset,
                                                               hPrev: ph.baseAddress! + o, z: pz.baseAddress! + o, r: pr.baseAddress! + o,
                                                               candidate: pc.baseAddress! + o, s: ps.baseAddress! + o, g: pg.baseAddress!,
                                                               out: po.baseAddress! + o)
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Backpropagation through time over a packed batch. `dStates` [rows, h] is ∂L/∂h_t from
    /// outside the recurrence (a head, attention) for every row; the recurrence adds, going back from
    /// t = T − 1, each step's ∂L/∂h_{t−1} to the rows of step t − 1. Accumulates dW, dU, db into
    /// `gradient` and returns ∂L/∂x [rows, in] and ∂L/∂h_0 [n_0, h]:
    ///
    ///     dW += daᵀ·x,   db += Σ_rows da,   dU_{z,r} += [da_z, da_r]ᵀ·h_{t−1},   dU_h += da_hᵀ·s,   dx = da·W
    public func backward(_ dStates: Matrix, trace: GRUTrace, gradient: inout GRUCell, path: KernelPath) -> (dInputs: Matrix, dInitial: Matrix) {
        let p = trace.packing, h = hiddenSize, rows = p.rowCount
        precondition(shapesAreConsistent, "GRUCell.backward: \(shapeDescription) are not [3h, in], [3h, h], [3h]")
        precondition(gradient.inputWeight.shape == inputWeight.shape && gradient.hiddenWeight.shape == hiddenWeight.shape
                     && gradient.bias.count == bias.count, "GRUCell.backward: gradient \(gradient.shapeDescription) for a cell of \(shapeDescription)")
        precondition([trace.previous, trace.z, trace.r, trace.candidate, trace.s].allSatisfy { $0.count == rows * h }
                     && trace.inputs.rows == rows && trace.inputs.cols == inputSize,
                     "GRUCell.backward: a trace of inputs \(trace.inputs.shape) for \(rows) rows of a cell of \(shapeDescription)")
        precondition(dStates.rows == rows && dStates.cols == h, "GRUCell.backward: dStates [rows, h]")
        var da = [Float](repeating: 0, count: rows * 3 * h)
        var carry = [Float](repeating: 0, count: p.counts[0] * h)  // ∂L/∂h_t through later steps, rank order
        var dh = [Float](repeating: 0, count: p.counts[0] * h), ds = carry, dPrevious = carry
        for t in stride(from: p.steps - 1, through: 0, by: -1) {
            let n = p.counts[t], o = p.offsets[t] * h
            copyElements(dStates.storage, o, into: &dh, 0, count: n * h)
            for i in 0..<(n * h) { dh[i] += carry[i] }
            Self.stepBackward(path, rows: n, hidden: h, u: hiddenWeight.storage, dh: dh, dhOffset: 0, previous: trace.previous, z: trace.z,
                              r: trace.r, candidate: trace.candidate, savedOffset: o, da: &da, daOffset: p.offsets[t] * 3 * h,
                              dPrevious: &dPrevious, ds: &ds)
            for i in 0..<(n * h) { carry[i] = dPrevious[i] }
            for i in (n * h)..<carry.count { carry[i] = 0 }  // sequences that end at step t − 1 start their carry at 0
        }
        let dInitial = try! Matrix(rows: p.counts[0], cols: h, storage: Array(carry[0..<(p.counts[0] * h)]))
        Self.accumulateParameterGradients(path, rows: rows, hidden: h, da: da, inputs: trace.inputs.storage, inputWidth: inputSize,
                                          previous: trace.previous, s: trace.s, gradient: &gradient)
        var dx = [Float](repeating: 0, count: rows * inputSize)
        gemm(path, m: rows, n: inputSize, k: 3 * h, da, lda: 3 * h, inputWeight.storage, ldb: inputSize, &dx, ldc: inputSize)
        return (try! Matrix(rows: rows, cols: inputSize, storage: dx), dInitial)
    }

    /// dW += daᵀ·x, db += Σ da, dU_{z,r} += [da_z, da_r]ᵀ·h_{t−1}, dU_h += da_hᵀ·s over all rows.
    static func accumulateParameterGradients(_ path: KernelPath, rows: Int, hidden h: Int, da: [Float], inputs: [Float], inputWidth: Int,
                                             previous: [Float], s: [Float], gradient g: inout GRUCell) {
        gemm(path, transA: true, m: 3 * h, n: inputWidth, k: rows, da, lda: 3 * h, inputs, ldb: inputWidth, beta: 1,
             &g.inputWeight.storage, ldc: inputWidth)
        gemm(path, transA: true, m: 2 * h, n: h, k: rows, da, lda: 3 * h, previous, ldb: h, beta: 1, &g.hiddenWeight.storage, ldc: h)
        gemm(path, transA: true, m: h, n: h, k: rows, da, 2 * h, lda: 3 * h, s, ldb: h, beta: 1, &g.hiddenWeight.storage, 2 * h * h, ldc: h)
        addColumnSums(da, rows: rows, cols: 3 * h, into: &g.bias)
    }
}
