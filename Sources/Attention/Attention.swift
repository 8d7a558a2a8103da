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
                                         q: q, k: k, v: v, heads: .init(query: 1, keyValue: 1, alibiSlopes: nil), mask: mask)
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

/// Multi-head attention on already projected matrices: Q [Tq, H·d_h] is split into H = `heads`
/// column slices of width d_h; K and V [Tk, H_kv·d_h] into H_kv = `kvHeads` slices (grouped-query
/// attention, Ainslie et al. 2023): query head h reads key/value head ⌊h / (H / H_kv)⌋. H_kv = H is
/// multi-head attention, H_kv = 1 multi-query attention (Shazeer 2019). Each head attends with the
/// same mask (plus its ALiBi bias when `alibiSlopes` is given); the head outputs are concatenated
/// (before W_O) into [Tq, H·d_h]. The projections around it are `MultiHeadAttention`
/// (Sources/Layers/MultiHeadAttention.swift).
///
///     head_h = Attention(Q[:, h·d_h ..< (h+1)·d_h], K[:, g·d_h ..< (g+1)·d_h], V[:, g·d_h …]),  g = ⌊h·H_kv/H⌋
///     with ALiBi: scores of head h get −m_h·|p_i − j|, p_i = mask.queryOffset + i under a causal mask, i otherwise
///
/// - Parameter trustedKeyRows: leading rows of K and V already checked by an earlier call (a KV
///   cache's rows before this decoding step); they are not scanned for NaN/±Inf again, so a step
///   does not re-read the whole cache. 0 (the default) scans everything.
/// - Throws: `.invalidArgument` when heads ∤ d_model, kvHeads ∤ heads, or the slopes are not `heads`
///   finite values; `.shapeMismatch` when K is not [Tk, H_kv·d_h]; otherwise as
///   `scaledDotProductAttention` (including its edge numerics: an overflowing Float result is
///   recomputed in Double).
public func multiHeadAttention(q: Matrix, k: Matrix, v: Matrix, heads: Int, kvHeads: Int? = nil, mask: AttentionMask = .none,
                               alibiSlopes: [Float]? = nil, path: KernelPath = .optimized, trustedKeyRows: Int = 0) throws -> Matrix {
    try Validate.positive(heads, "heads")
    let kvHeads = kvHeads ?? heads
    guard kvHeads > 0, heads % kvHeads == 0 else {
        throw DecoderSpecError.invalidArgument(what: "kvHeads = \(kvHeads)", reason: "must be positive and divide heads = \(heads)")
    }
    let grouped = kvHeads != heads && q.cols % heads == 0
    try AttentionValidation.check(q: q, k: k, v: v, mask: mask, operation: "multiHeadAttention(Q, K, V)", trustedKeyRows: trustedKeyRows,
                                  keyWidth: grouped ? q.cols / heads * kvHeads : nil)
    guard q.cols % heads == 0, v.cols % kvHeads == 0 else {
        throw DecoderSpecError.invalidArgument(
            what: "heads = \(heads)",
            reason: "must divide d_model (Q is \(q.shape), V is \(v.shape))")
    }
    if let alibiSlopes {
        guard alibiSlopes.count == heads, alibiSlopes.allSatisfy(\.isFinite) else {
            throw DecoderSpecError.invalidArgument(what: "ALiBi slopes (\(alibiSlopes.count))", reason: "need \(heads) finite values, one per head")
        }
    }
    let heads = AttentionKernels.Heads(query: heads, keyValue: kvHeads, alibiSlopes: alibiSlopes)
    return AttentionKernels.finiteOrWide(AttentionKernels.multiHead(q: q, k: k, v: v, heads: heads, mask: mask, path: path),
                                         q: q, k: k, v: v, heads: heads, mask: mask)
}

// MARK: - Validation and kernels

enum AttentionValidation {
    /// `trustedKeyRows`: leading rows of K and V already validated (a KV cache's earlier rows);
    /// only the rows after them are scanned for NaN/±Inf.
    /// `keyWidth`: with grouped-query heads K is narrower than Q and must have this width
    /// (kvHeads·d_head); by default K's width must equal Q's.
    static func check(q: Matrix, k: Matrix, v: Matrix?, mask: AttentionMask, operation: String, trustedKeyRows: Int = 0,
                      keyWidth: Int? = nil) throws {
        guard q.rows > 0 else { throw DecoderSpecError.emptySequence(what: "queries Q \(q.shape) in \(operation)") }
        guard k.rows > 0 else { throw DecoderSpecError.emptySequence(what: "keys K \(k.shape) in \(operation)") }
        guard q.cols > 0 else { throw DecoderSpecError.invalidArgument(what: "d_k of Q \(q.shape)", reason: "must be positive") }
        if let keyWidth, k.cols != keyWidth {
            throw DecoderSpecError.shapeMismatch(operation: operation, expected: "K [Tk, kvHeads·d_head] = [Tk, \(keyWidth)] for Q \(q.shape)",
                                                 actual: "K \(k.shape)")
        }
        guard keyWidth != nil || q.cols == k.cols else {
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
    static func finiteOrWide(_ out: Matrix, q: Matrix, k: Matrix, v: Matrix, heads: Heads, mask: AttentionMask) -> Matrix {
        Validate.allFinite(out.storage) ? out : wide(q: q, k: k, v: v, heads: heads, mask: mask)
    }

    /// Multi-head attention entirely in Double (weights from `wideWeights`, O = Σ_j w_j·V_j),
    /// rounded once to Float: finite for every finite input, since each output row is a convex
    /// combination of V rows (|O| ≤ max|V| ≤ FLT_MAX). The fallback when the Float result overflows.
    static func wide(q: Matrix, k: Matrix, v: Matrix, heads: Heads, mask: AttentionMask) -> Matrix {
        let dk = q.cols / heads.query, dv = v.cols / heads.keyValue
        let (tq, tk) = (q.rows, k.rows)
        var out = Matrix(rows: tq, cols: dv * heads.query)
        for h in 0..<heads.query {
            let g = heads.group(of: h)
            let w = wideWeights(q: q, qOffset: h * dk, k: k, kOffset: g * dk, dk: dk, mask: heads.mask(mask, head: h, queries: tq, keys: tk))
            for i in 0..<tq {
                for c in 0..<dv {
                    var acc: Double = 0
                    for j in 0..<tk { acc += Double(w.storage[i * tk + j]) * Double(v.storage[j * v.cols + g * dv + c]) }
                    out.storage[i * out.cols + h * dv + c] = Float(acc)
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

    /// The head layout of one multi-head call: H query heads, H_kv key/value heads, optional ALiBi slopes.
    struct Heads {
        let query: Int
        let keyValue: Int
        let alibiSlopes: [Float]?

        /// The key/value head that query head h reads: ⌊h / (H / H_kv)⌋.
        func group(of h: Int) -> Int { h / (query / keyValue) }

        /// `mask` plus head h's ALiBi bias as an explicit [Tq, Tk] matrix (the naive form).
        func mask(_ mask: AttentionMask, head h: Int, queries: Int, keys: Int) -> AttentionMask {
            guard let slope = alibiSlopes?[h] else { return mask }
            let bias = ALiBiKernel.bias(slope: slope, queries: queries, keys: keys, queryOffset: mask.isCausal ? mask.queryOffset : 0)
            return try! mask.combined(with: .additive(try! Matrix(rows: queries, cols: keys, storage: bias)))
        }
    }

    static func multiHead(q: Matrix, k: Matrix, v: Matrix, heads: Heads, mask: AttentionMask, path: KernelPath) -> Matrix {
        let dk = q.cols / heads.query, dv = v.cols / heads.keyValue
        var out = Matrix(rows: q.rows, cols: dv * heads.query)
        KernelRecorder.record(.attention, path)
        for h in 0..<heads.query {
            let g = heads.group(of: h)
            switch path {
            case .naive:
                let o = attend(q: columns(q, from: h * dk, count: dk), k: columns(k, from: g * dk, count: dk),
                               v: columns(v, from: g * dv, count: dv), mask: heads.mask(mask, head: h, queries: q.rows, keys: k.rows),
                               path: .naive)
                for r in 0..<q.rows { for c in 0..<dv { out[r, h * dv + c] = o[r, c] } }
            case .optimized, .parallel:
                let alibi = heads.alibiSlopes.map { (slope: $0[h], queryOffset: mask.isCausal ? mask.queryOffset : 0) }
                fused(q: q, qOffset: h * dk, k: k, kOffset: g * dk, v: v, vOffset: g * dv, dk: dk, dv: dv,
                      mask: mask, out: &out, outOffset: h * dv, alibi: alibi)
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
                      mask: AttentionMask, out: inout Matrix, outOffset: Int, alibi: (slope: Float, queryOffset: Int)? = nil) {
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
                                additive: additive, ldm: tk, alibi: alibi)
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
