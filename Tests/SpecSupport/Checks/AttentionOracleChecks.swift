import GSLOracle
import Layers
import Masking
import TensorCore

/// Checks of scaled dot-product / multi-head / cross-attention and their masks
/// (docs/attention.md, docs/masking.md, docs/bug-zoo.md #4–8).
public enum AttentionOracleChecks {
    /// An implementation under test of single-head attention: (Q, K, V, mask) → O.
    public typealias Attention = (Matrix, Matrix, Matrix, AttentionMask) throws -> Matrix
    /// An implementation under test of the attention weights: (Q, K, mask) → W [Tq, Tk].
    public typealias Weights = (Matrix, Matrix, AttentionMask) throws -> Matrix

    /// The check's own reading of a mask (independent of `AttentionMask.allows`):
    /// visible(i, j) = (not causal or j ≤ i + offset) and (no padding or j < validLength) and the
    /// additive bias is not −∞ there.
    public static func visible(_ mask: AttentionMask, _ i: Int, _ j: Int) -> Bool {
        if mask.isCausal && j > i + mask.queryOffset { return false }
        if let n = mask.keyValidLength, j >= n { return false }
        if let a = mask.additive, a[i, j] == -.infinity { return false }
        return true
    }

    /// The weights of any attention implementation, read off by attending over V = I_Tk:
    /// O = W · I = W. This lets weight properties run on the fused kernel, which never stores W.
    public static func weights(of attention: @escaping Attention) -> Weights {
        { q, k, mask in
            var identity = Matrix(rows: k.rows, cols: k.rows)
            for j in 0..<k.rows { identity[j, j] = 1 }
            return try attention(q, k, identity, mask)
        }
    }

    /// The Double-precision reference weights, built from GSL: S = dgemm(Q, Kᵀ)·scale (+ the additive
    /// bias), w_ij = exp(s_ij − m_i)/Σ_l exp(s_il − m_i) with gsl_sf_exp over the visible keys; 0 for
    /// masked keys and for a row that sees no key. Row-major [Tq, Tk]. scale = 1/√(scaleDimension ?? d_k).
    public static func weightsReference(q: Matrix, k: Matrix, mask: AttentionMask, scaleDimension: Int? = nil) throws -> [Double] {
        let (tq, tk, d) = (q.rows, k.rows, q.cols)
        var s = try GSL.dgemm(transB: true, m: tq, n: tk, k: d, a: q.storage.doubles, b: k.storage.doubles)
        let scale = 1 / Double(scaleDimension ?? d).squareRoot()
        var w = [Double](repeating: 0, count: tq * tk)
        for i in 0..<tq {
            var m = -Double.infinity
            for j in 0..<tk where visible(mask, i, j) {
                s[i * tk + j] = s[i * tk + j] * scale + Double(mask.additive?[i, j] ?? 0)
                m = max(m, s[i * tk + j])
            }
            if m == -.infinity { continue }  // fully masked row: all weights 0
            var sum = 0.0
            for j in 0..<tk where visible(mask, i, j) {
                let e = CheckSupport.exp(s[i * tk + j] - m)
                w[i * tk + j] = e
                sum += e
            }
            for j in 0..<tk { w[i * tk + j] /= sum }
        }
        return w
    }

    /// softmax(Q·Kᵀ/√d_k + M)·V in Double: the reference weights times V by GSL's dgemm.
    /// Q [Tq, d_k], K [Tk, d_k], V [Tk, d_v]; row-major [Tq, d_v]. A query that sees no key gets 0.
    public static func reference(q: Matrix, k: Matrix, v: Matrix, mask: AttentionMask, scaleDimension: Int? = nil) throws -> [Double] {
        let w = try weightsReference(q: q, k: k, mask: mask, scaleDimension: scaleDimension)
        return try GSL.dgemm(m: q.rows, n: v.cols, k: k.rows, a: w, b: v.storage.doubles)
    }

    /// Multi-head on projected [T, d_model] matrices: head h uses columns h·d_h ..< (h+1)·d_h of Q
    /// and K (and of V with d_v = V.cols/H), scale 1/√d_h; the heads' outputs concatenated.
    public static func multiHeadReference(q: Matrix, k: Matrix, v: Matrix, heads: Int, mask: AttentionMask) throws -> [Double] {
        let dh = q.cols / heads, dv = v.cols / heads
        var out = [Double](repeating: 0, count: q.rows * v.cols)
        for h in 0..<heads {
            let o = try reference(q: slice(q, h * dh, dh), k: slice(k, h * dh, dh), v: slice(v, h * dv, dv), mask: mask)
            for r in 0..<q.rows { for c in 0..<dv { out[r * v.cols + h * dv + c] = o[r * dv + c] } }
        }
        return out
    }

    /// Columns from ..< from + count of `m`.
    public static func slice(_ m: Matrix, _ from: Int, _ count: Int) -> Matrix {
        var out = Matrix(rows: m.rows, cols: count)
        for r in 0..<m.rows { for c in 0..<count { out[r, c] = m[r, from + c] } }
        return out
    }

    /// Rows from ..< m.rows of `m`.
    public static func rowsFrom(_ m: Matrix, _ from: Int) -> Matrix {
        try! Matrix(rows: m.rows - from, cols: m.cols, storage: Array(m.storage[(from * m.cols)...]))
    }

    /// The error bound of one head's output against the exact value (first order in u, worst case —
    /// not a statistical estimate), with γ_n = n·u:
    /// - a score s = q·k/√d computed in Float is off by e_s ≤ γ_{d+1} · d · max|q| · max|k| / √d
    ///   (a d-term dot product plus the scaling);
    /// - perturbing every score of a row by ≤ e_s changes each weight by a relative ≤ 2·e_s; exp
    ///   (expf, or the fused kernel's 2^x polynomial: ≤ 2 u), the Tk-term sum, the division and the
    ///   fused kernel's per-block rescalings (≤ Tk/16 of them for blocks of ≥ 16 keys) add ≤ (Tk + 8 + Tk/16)·u relative;
    /// - O = Σ w_j v_j adds γ_Tk · Σ w_j|v_j| ≤ Tk·u·max|v|.
    /// So |Ô − O| ≤ max|v| · (2·e_s + (3·Tk + 8)·u) for either variant.
    public static func bound(q: Matrix, k: Matrix, v: Matrix, headDimension: Int? = nil) -> Double {
        let u = CheckSupport.unitRoundoff
        let maxQ = Double(q.storage.map { abs($0) }.max() ?? 0)
        let maxK = Double(k.storage.map { abs($0) }.max() ?? 0)
        let maxV = Double(v.storage.map { abs($0) }.max() ?? 0)
        let d = Double(headDimension ?? q.cols)
        let es = (d + 1) * u * d * maxQ * maxK / d.squareRoot()
        return maxV * (2 * es + Double(3 * k.rows + 8) * u)
    }

    /// O matches the GSL Double reference within `bound`.
    public static func matchesGSLReference(_ attention: Attention, q: Matrix, k: Matrix, v: Matrix, mask: AttentionMask, context: String) -> Verdict {
        CheckSupport.guarded(context) {
            let o = try attention(q, k, v, mask)
            return compare(o.storage, try reference(q: q, k: k, v: v, mask: mask), .absolute(bound(q: q, k: k, v: v)),
                           "attention vs GSL reference, mask \(mask). \(context)")
        }
    }

    /// Every row of W with a visible key sums to 1 within (2·Tk + 4)·u (the Tk-term sum of the
    /// normalized weights plus the normalization's own rounding); a fully masked row sums to 0.
    /// Pass `weights(of:)` to check an implementation that only returns O.
    public static func rowsSumToOne(_ weights: Weights, q: Matrix, k: Matrix, mask: AttentionMask, context: String) -> Verdict {
        CheckSupport.guarded(context) {
            let w = try weights(q, k, mask)
            var sums: [Double] = [], expected: [Double] = []
            for i in 0..<w.rows {
                sums.append((0..<w.cols).reduce(0.0) { $0 + Double(w[i, $1]) })
                expected.append((0..<k.rows).contains { visible(mask, i, $0) } ? 1 : 0)
            }
            return compare(sums, expected, .absolute(Double(2 * k.rows + 4) * CheckSupport.unitRoundoff),
                           "row sums over keys, mask \(mask). \(context)")
        }
    }

    /// Masked keys (padding, the future) get weight exactly 0: bitwise 0 wherever the mask hides a key.
    public static func maskedKeysGetZeroWeight(_ weights: Weights, q: Matrix, k: Matrix, mask: AttentionMask, context: String) -> Verdict {
        CheckSupport.guarded(context) {
            let w = try weights(q, k, mask)
            for i in 0..<w.rows { for j in 0..<w.cols where !visible(mask, i, j) && w[i, j] != 0 {
                return .fail("weight[\(i), \(j)] = \(w[i, j]) for a masked key (mask \(mask)). \(context)")
            } }
            return .pass
        }
    }

    /// Causality: for causal self-attention over X [T, d] (e.g. `{ try f($0, $0, $0, .causal()) }`,
    /// or a multi-head layer), replacing the rows after position i leaves output rows ≤ i bitwise
    /// unchanged (each row's arithmetic never reads them).
    public static func causality(_ selfAttention: (Matrix) throws -> Matrix, x: Matrix, position i: Int, seed: UInt, context: String) -> Verdict {
        CheckSupport.guarded(context) {
            let o1 = try selfAttention(x)
            var x2 = x
            let junk = CheckSupport.matrix(x.rows, x.cols, seed: seed, range: -3...3)
            for r in (i + 1)..<x.rows { for c in 0..<x.cols { x2[r, c] = junk[r, c] } }
            let o2 = try selfAttention(x2)
            let n = (i + 1) * o1.cols
            return compare(Array(o2.storage[0..<n]), Array(o1.storage[0..<n]), .exact,
                           "outputs at positions ≤ \(i) changed when the tokens after \(i) changed (seed \(seed)). \(context)")
        }
    }

    /// Keys at padded positions (≥ validLength) cannot change the output: other K/V contents there
    /// leave O bitwise unchanged.
    public static func paddedKeysIgnored(_ attention: Attention, q: Matrix, k: Matrix, v: Matrix, validLength: Int, seed: UInt, context: String) -> Verdict {
        CheckSupport.guarded(context) {
            let mask = AttentionMask.keyPadding(validLength: validLength)
            let o1 = try attention(q, k, v, mask)
            var k2 = k, v2 = v
            let junk = CheckSupport.matrix(k.rows, k.cols + v.cols, seed: seed, range: -5...5)
            for j in validLength..<k.rows {
                for c in 0..<k.cols { k2[j, c] = junk[j, c] }
                for c in 0..<v.cols { v2[j, c] = junk[j, k.cols + c] }
            }
            let o2 = try attention(q, k2, v2, mask)
            return compare(o2.storage, o1.storage, .exact, "padded keys (≥ \(validLength)) changed the output (seed \(seed)). \(context)")
        }
    }

    /// A query that sees no key (valid length 0) gets an all-zero row — "attend to nothing", not the
    /// uniform average of the padding and never NaN.
    public static func fullyMaskedRowIsZero(_ attention: Attention, q: Matrix, k: Matrix, v: Matrix, context: String) -> Verdict {
        CheckSupport.guarded(context) {
            let o = try attention(q, k, v, .keyPadding(validLength: 0))
            return compare(o.storage, [Double](repeating: 0, count: o.storage.count), .exact, "valid length 0 must give zeros. \(context)")
        }
    }

    /// Multi-head attention equals the per-head GSL reference (scale 1/√d_head, d_head = d_model/H),
    /// concatenated; tolerance `bound` with d = d_head.
    public static func multiHeadMatchesReference(_ mha: (Matrix, Matrix, Matrix, Int, AttentionMask) throws -> Matrix,
                                                 q: Matrix, k: Matrix, v: Matrix, heads: Int, mask: AttentionMask, context: String) -> Verdict {
        CheckSupport.guarded(context) {
            let o = try mha(q, k, v, heads, mask)
            let dh = q.cols / heads
            let expected = try multiHeadReference(q: q, k: k, v: v, heads: heads, mask: mask)
            return compare(o.storage, expected, .absolute(bound(q: q, k: k, v: v, headDimension: dh)),
                           "\(heads)-head attention vs per-head GSL reference (÷√d_head = ÷√\(dh)), mask \(mask). \(context)")
        }
    }

    /// Cross-attention ignores the source's padding: with the target longer than the source's valid
    /// part, other encoder rows at source positions ≥ sourceValid leave the output bitwise unchanged,
    /// and so does the target's own valid length (the target's padding is not a key mask here).
    public static func crossAttentionIgnoresSourcePadding(
        _ cross: (MultiHeadAttention, Matrix, Int, Matrix, Int) throws -> Matrix,
        layer: MultiHeadAttention, target: Matrix, targetValid: Int, source: Matrix, sourceValid: Int, seed: UInt
    ) -> Verdict {
        let context = "target \(target.shape) valid \(targetValid), source \(source.shape) valid \(sourceValid), seed \(seed)"
        return CheckSupport.guarded(context) {
            let o1 = try cross(layer, target, targetValid, source, sourceValid)
            var s2 = source
            let junk = CheckSupport.matrix(source.rows, source.cols, seed: seed, range: -5...5)
            for r in sourceValid..<source.rows { for c in 0..<source.cols { s2[r, c] = junk[r, c] } }
            let o2 = try cross(layer, target, targetValid, s2, sourceValid)
            let padding = compare(o2.storage, o1.storage, .exact, "source padding rows changed cross-attention. \(context)")
            guard padding.passed else { return padding }
            let o3 = try cross(layer, target, sourceValid, source, sourceValid)
            return compare(o3.storage, o1.storage, .exact, "the target's valid length changed cross-attention over the source. \(context)")
        }
    }
}
