// Concept 3 — scaled dot-product and multi-head attention. See docs/attention.md.
import Kernels
import Masking
import TensorCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Scaled dot-product attention

/// Scaled dot-product attention of one head. See docs/attention.md.
///
///     Attention(Q, K, V) = softmax(Q·Kᵀ/√d_k + M) · V
///
/// - Parameters:
///   - q: queries [Tq, d_k]
///   - k: keys [Tk, d_k]
///   - v: values [Tk, d_v]
///   - mask: which keys each query may see (`AttentionMask`, docs/masking.md). A query that sees
///     no key gets an all-zero output row.
///   - path: `.naive` materializes S = Q·Kᵀ/√d_k [Tq, Tk], adds the materialized mask M, softmaxes
///     each row (`Softmax.rows(.naive)`) and multiplies by V (`GEMM` `.naive`) — the formula as it
///     reads. `.optimized` (= `.parallel`) is `FusedAttention.forward`: identical to naive except
///     tiled over query and key blocks with an online softmax (running max and sum), never
///     allocating Tq×Tk; masks applied as loop bounds (causal blocks above the diagonal skipped);
///     a SIMD 2^x polynomial; summation order differs.
/// - Returns: [Tq, d_v]
/// - Throws: `DecoderSpecError` for empty inputs, mismatched d_k or Tk, a mask that does not fit
///   [Tq, Tk], or NaN/±Inf in q, k or v.
///
/// Edge numerics (docs/attention.md, "Edge numerics"): every finite input gives a finite, correct
/// result. When the Float computation overflows — a score |q·k|/√d_k (or q·k + M) beyond
/// Float.greatestFiniteMagnitude ≈ 3.4e38, or the fused kernel's unnormalized Σ 2^(s−m)·V beyond
/// it — the output would hold NaN/±∞; it is then recomputed in Double (`AttentionKernels.wide`:
/// scores up to d_k·FLT_MAX² fit, and O is a convex combination of V rows, so it fits in Float).
/// The check is one pass over the output; inputs in Float range cost nothing extra.
public func scaledDotProductAttention(
    q: Matrix, k: Matrix, v: Matrix, mask: AttentionMask = .none, path: KernelPath = .optimized
) throws -> Matrix {
    try AttentionValidation.check(q: q, k: k, v: v, mask: mask, operation: "scaledDotProductAttention(Q, K, V)")
    return AttentionKernels.finiteOrWide(AttentionKernels.attend(q: q, k: k, v: v, mask: mask, path: path),
                                         q: q, k: k, v: v, heads: 1, mask: mask)
}

/// The attention weights softmax(Q·Kᵀ/√d_k + M) [Tq, Tk] (naive path), for printing and pictures.
/// Rows sum to 1, masked entries are exactly 0, a fully masked row is all 0. Scores that overflow
/// Float are handled as in `scaledDotProductAttention` (recomputed in Double).
/// - Throws: as `scaledDotProductAttention`.
public func attentionWeights(q: Matrix, k: Matrix, mask: AttentionMask = .none) throws -> Matrix {
    try AttentionValidation.check(q: q, k: k, v: nil, mask: mask, operation: "attentionWeights(Q, K)")
    let w = AttentionKernels.naiveWeights(q: q, k: k, mask: mask)
    if Validate.allFinite(w.storage) { return w }
    return AttentionKernels.wideWeights(q: q, qOffset: 0, k: k, kOffset: 0, dk: q.cols, mask: mask)
}

/// Attention of new queries over cached, already projected keys and values of one head — the
/// step of a KV-cached decoder. Same as `scaledDotProductAttention(q:k:v:mask:path:)`; with
/// Tk cached positions and Tq new queries at the end, pass `mask: .causal(queryOffset: Tk − Tq)`.
/// - Parameters: q [Tq, d_k]; cachedK [Tk, d_k]; cachedV [Tk, d_v]. Returns [Tq, d_v].
public func attend(q: Matrix, cachedK: Matrix, cachedV: Matrix, mask: AttentionMask,
                   path: KernelPath = .optimized) throws -> Matrix {
    try scaledDotProductAttention(q: q, k: cachedK, v: cachedV, mask: mask, path: path)
}

/// Multi-head attention on already projected matrices: Q [Tq, d_model], K [Tk, d_model],
/// V [Tk, d_model] are split into `heads` column slices of width d_model/heads; each head attends
/// with the same mask; the head outputs are concatenated (before W_O) into [Tq, d_model]. The
/// projections around it are `MultiHeadAttention` (Sources/Layers/MultiHeadAttention.swift).
///
///     head_h = Attention(Q[:, h·d_h ..< (h+1)·d_h], K[:, …], V[:, …]),   Concat(head_1 … head_H)
///
/// - Parameters:
///   - q: [Tq, d_model] projected queries.
///   - k: [Tk, d_model] projected keys.
///   - v: [Tk, d_model] projected values.
///   - heads: H, which must divide d_model.
///   - mask: applied to every head's scores (notebook 05).
///   - path: naive or optimized (fused, online-softmax) kernel.
///   - trustedKeyRows: leading rows of K and V already checked by an earlier call (a KV
///     cache's rows before this decoding step); they are not scanned for NaN/±Inf again, so a step
///     does not re-read the whole cache. 0 (the default) scans everything.
/// - Returns: [Tq, d_model], the heads' outputs concatenated (before W_O).
/// - Throws: `.invalidArgument` when heads ∤ d_model; otherwise as `scaledDotProductAttention`
///   (including its edge numerics: an overflowing Float result is recomputed in Double).
public func multiHeadAttention(q: Matrix, k: Matrix, v: Matrix, heads: Int, mask: AttentionMask = .none,
                               path: KernelPath = .optimized, trustedKeyRows: Int = 0) throws -> Matrix {
    try Validate.positive(heads, "heads")
    try AttentionValidation.check(q: q, k: k, v: v, mask: mask, operation: "multiHeadAttention(Q, K, V)", trustedKeyRows: trustedKeyRows)
    guard q.cols % heads == 0, v.cols % heads == 0 else {
        throw DecoderSpecError.invalidArgument(
            what: "heads = \(heads)",
            reason: "must divide d_model (Q is \(q.shape), V is \(v.shape))")
    }
    return AttentionKernels.finiteOrWide(AttentionKernels.multiHead(q: q, k: k, v: v, heads: heads, mask: mask, path: path),
                                         q: q, k: k, v: v, heads: heads, mask: mask)
}

// MARK: - Validation and kernels

enum AttentionValidation {
    /// `trustedKeyRows`: leading rows of K and V already validated (a KV cache's earlier rows);
    /// only the rows after them are scanned for NaN/±Inf.
    static func check(q: Matrix, k: Matrix, v: Matrix?, mask: AttentionMask, operation: String, trustedKeyRows: Int = 0) throws {
        guard q.rows > 0 else { throw DecoderSpecError.emptySequence(what: "queries Q \(q.shape) in \(operation)") }
        guard k.rows > 0 else { throw DecoderSpecError.emptySequence(what: "keys K \(k.shape) in \(operation)") }
        guard q.cols > 0 else { throw DecoderSpecError.invalidArgument(what: "d_k of Q \(q.shape)", reason: "must be positive") }
        guard q.cols == k.cols else {
            throw DecoderSpecError.shapeMismatch(operation: operation, expected: "Q [Tq, d_k] and K [Tk, d_k] with the same d_k",
                                                 actual: "Q \(q.shape), K \(k.shape)")
        }
        if let v {
            guard v.rows == k.rows else {
                throw DecoderSpecError.shapeMismatch(operation: operation, expected: "K [Tk, d_k] and V [Tk, d_v] with the same Tk",
                                                     actual: "K \(k.shape), V \(v.shape)")
            }
            guard v.cols > 0 else { throw DecoderSpecError.invalidArgument(what: "d_v of V \(v.shape)", reason: "must be positive") }
        }
        try mask.validate(queries: q.rows, keys: k.rows)
        try Validate.finite(q.storage[...], "queries Q \(q.shape)")
        let trusted = Swift.min(Swift.max(trustedKeyRows, 0), k.rows)
        try Validate.finite(k.storage[(trusted * k.cols)...], "keys K \(k.shape) (rows \(trusted)…)")
        if let v { try Validate.finite(v.storage[(trusted * v.cols)...], "values V \(v.shape) (rows \(trusted)…)") }
    }
}

/// Unvalidated internals (inputs already checked).
enum AttentionKernels {
    /// The weights softmax(Q_h·K_hᵀ/√d_k + M) of one head (columns [qOffset, qOffset + dk) of Q
    /// and [kOffset, kOffset + dk) of K) with the scores, the max subtraction and the sum in
    /// Double — the fallback for scores beyond Float's range (|q·k| ≤ d_k·FLT_MAX² ≈ 1.2e77·d_k
    /// fits in Double). A fully masked row stays all 0.
    static func wideWeights(q: Matrix, qOffset: Int, k: Matrix, kOffset: Int, dk: Int, mask: AttentionMask) -> Matrix {
        let (tq, tk) = (q.rows, k.rows)
        let m = try! mask.materialize(queries: tq, keys: tk)
        let sqrtDk = Double(dk).squareRoot()
        var weights = Matrix(rows: tq, cols: tk)
        var scores = [Double](repeating: 0, count: tk)
        for i in 0..<tq {
            var mu = -Double.infinity
            for j in 0..<tk {
                var dot: Double = 0
                for p in 0..<dk { dot += Double(q.storage[i * q.cols + qOffset + p]) * Double(k.storage[j * k.cols + kOffset + p]) }
                let s = dot / sqrtDk + Double(m.storage[i * tk + j])
                scores[j] = s
                mu = Swift.max(mu, s)
            }
            if mu == -.infinity { continue }  // fully masked: all 0
            var sum: Double = 0
            for j in 0..<tk { scores[j] = exp(scores[j] - mu); sum += scores[j] }
            for j in 0..<tk { weights.storage[i * tk + j] = Float(scores[j] / sum) }
        }
        return weights
    }

    /// `out` when the Float computation stayed finite (one SIMD pass), else the Double recomputation
    /// `wide` — the edge-numerics rule of the public entry points.
    static func finiteOrWide(_ out: Matrix, q: Matrix, k: Matrix, v: Matrix, heads: Int, mask: AttentionMask) -> Matrix {
        Validate.allFinite(out.storage) ? out : wide(q: q, k: k, v: v, heads: heads, mask: mask)
    }

    /// Multi-head attention entirely in Double (weights from `wideWeights`, O = Σ_j w_j·V_j),
    /// rounded once to Float: finite for every finite input, since each output row is a convex
    /// combination of V rows (|O| ≤ max|V| ≤ FLT_MAX). The fallback when the Float result overflows.
    static func wide(q: Matrix, k: Matrix, v: Matrix, heads: Int, mask: AttentionMask) -> Matrix {
        let dk = q.cols / heads, dv = v.cols / heads
        let (tq, tk) = (q.rows, k.rows)
        var out = Matrix(rows: tq, cols: v.cols)
        for h in 0..<heads {
            let w = wideWeights(q: q, qOffset: h * dk, k: k, kOffset: h * dk, dk: dk, mask: mask)
            for i in 0..<tq {
                for c in 0..<dv {
                    var acc: Double = 0
                    for j in 0..<tk { acc += Double(w.storage[i * tk + j]) * Double(v.storage[j * v.cols + h * dv + c]) }
                    out.storage[i * v.cols + h * dv + c] = Float(acc)
                }
            }
        }
        return out
    }

    static func attend(q: Matrix, k: Matrix, v: Matrix, mask: AttentionMask, path: KernelPath) -> Matrix {
        KernelRecorder.record(.attention, path)
        switch path {
        case .naive:
            let weights = naiveWeights(q: q, k: k, mask: mask)
            return try! weights.matmul(v, path: .naive)
        case .optimized, .parallel:
            var out = Matrix(rows: q.rows, cols: v.cols)
            fused(q: q, qOffset: 0, k: k, kOffset: 0, v: v, vOffset: 0, dk: q.cols, dv: v.cols,
                  mask: mask, out: &out, outOffset: 0)
            return out
        }
    }

    /// softmax(Q·Kᵀ/√d_k + M), the formula as it reads (GEMM.naive, Softmax.naive).
    /// A row with a score that overflowed Float (±∞ from finite inputs) is all NaN, so the caller
    /// can tell it from a fully masked row (the public API recomputes it in Double).
    static func naiveWeights(q: Matrix, k: Matrix, mask: AttentionMask) -> Matrix {
        var scores = try! q.matmul(k, transposeOther: true, path: .naive)
        let sqrtDk = Float(q.cols).squareRoot()
        for i in scores.storage.indices { scores.storage[i] /= sqrtDk }
        let tk = k.rows
        for r in 0..<q.rows where scores.storage[(r * tk)..<((r + 1) * tk)].contains(where: { !$0.isFinite }) {
            for j in 0..<tk { scores.storage[r * tk + j] = .nan }
        }
        let m = try! mask.materialize(queries: q.rows, keys: k.rows)
        let (rows, cols) = (scores.rows, scores.cols)
        scores.storage.withUnsafeMutableBufferPointer { s in
            m.storage.withUnsafeBufferPointer { mp in
                Softmax.rows(.naive, s.baseAddress!, rows: rows, cols: cols, mask: mp.baseAddress!)
            }
        }
        return scores
    }

    static func multiHead(q: Matrix, k: Matrix, v: Matrix, heads: Int, mask: AttentionMask, path: KernelPath) -> Matrix {
        let dk = q.cols / heads, dv = v.cols / heads
        var out = Matrix(rows: q.rows, cols: v.cols)
        KernelRecorder.record(.attention, path)
        for h in 0..<heads {
            switch path {
            case .naive:
                let o = attend(q: columns(q, from: h * dk, count: dk), k: columns(k, from: h * dk, count: dk),
                               v: columns(v, from: h * dv, count: dv), mask: mask, path: .naive)
                for r in 0..<q.rows { for c in 0..<dv { out[r, h * dv + c] = o[r, c] } }
            case .optimized, .parallel:
                fused(q: q, qOffset: h * dk, k: k, kOffset: h * dk, v: v, vOffset: h * dv, dk: dk, dv: dv,
                      mask: mask, out: &out, outOffset: h * dv)
            }
        }
        return out
    }

    /// Columns [from, from + count) of m, as a new matrix.
    static func columns(_ m: Matrix, from: Int, count: Int) -> Matrix {
        if from == 0 && count == m.cols { return m }
        var out = Matrix(rows: m.rows, cols: count)
        for r in 0..<m.rows { for c in 0..<count { out.storage[r * count + c] = m.storage[r * m.cols + from + c] } }
        return out
    }

    /// One head of the fused kernel on column slices (no copies: row strides are the full widths).
    static func fused(q: Matrix, qOffset: Int, k: Matrix, kOffset: Int, v: Matrix, vOffset: Int, dk: Int, dv: Int,
                      mask: AttentionMask, out: inout Matrix, outOffset: Int) {
        let (tq, tk) = (q.rows, k.rows)
        let outCols = out.cols
        func body(_ additive: UnsafePointer<Float>?) {
            q.storage.withUnsafeBufferPointer { pq in
                k.storage.withUnsafeBufferPointer { pk in
                    v.storage.withUnsafeBufferPointer { pv in
                        out.storage.withUnsafeMutableBufferPointer { po in
                            FusedAttention.forward(
                                q: pq.baseAddress! + qOffset, ldq: q.cols, k: pk.baseAddress! + kOffset, ldk: k.cols,
                                v: pv.baseAddress! + vOffset, ldv: v.cols, out: po.baseAddress! + outOffset, ldo: outCols,
                                queries: tq, keys: tk, dk: dk, dv: dv, scale: 1 / Float(dk).squareRoot(),
                                causalOffset: mask.isCausal ? min(mask.queryOffset, tk) : nil,
                                keyValidLength: mask.keyValidLength ?? tk,
                                additive: additive, ldm: tk)
                        }
                    }
                }
            }
        }
        if let a = mask.additive {
            a.storage.withUnsafeBufferPointer { body($0.baseAddress!) }
        } else {
            body(nil)
        }
    }
}
