import GSLOracle
import Layers
import Masking
import TensorCore

/// Checks of scaled dot-product / multi-head / cross-attention and their masks
/// (docs/attention.md, docs/masking.md, docs/bug-zoo.md #4–8).
public enum AttentionOracleChecks {
    public typealias Attention = (Matrix, Matrix, Matrix, AttentionMask) throws -> Matrix

    /// The check's own reading of a mask (independent of `AttentionMask.allows`):
    /// visible(i, j) = (not causal or j ≤ i + offset) and (no padding or j < validLength).
    static func visible(_ mask: AttentionMask, _ i: Int, _ j: Int) -> Bool {
        if mask.isCausal && j > i + mask.queryOffset { return false }
        if let n = mask.keyValidLength, j >= n { return false }
        if let a = mask.additive, a[i, j] == -.infinity { return false }
        return true
    }

    /// softmax(Q·Kᵀ/√d_k + M)·V in Double with GSL's exponential; a query that sees no key gets 0.
    /// Q [Tq, d_k], K [Tk, d_k], V [Tk, d_v]; row-major [Tq, d_v].
    public static func reference(q: Matrix, k: Matrix, v: Matrix, mask: AttentionMask, scaleDimension: Int? = nil) -> [Double] {
        let scale = 1 / Double(scaleDimension ?? q.cols).squareRoot()
        var out = [Double](repeating: 0, count: q.rows * v.cols)
        for i in 0..<q.rows {
            var s = [Double](repeating: -.infinity, count: k.rows)
            for j in 0..<k.rows where visible(mask, i, j) {
                var dot = 0.0
                for c in 0..<q.cols { dot += Double(q[i, c]) * Double(k[j, c]) }
                s[j] = dot * scale + Double(mask.additive?[i, j] ?? 0)
            }
            let w = CheckSupport.softmax(s)
            for j in 0..<k.rows where w[j] != 0 { for c in 0..<v.cols { out[i * v.cols + c] += w[j] * Double(v[j, c]) } }
        }
        return out
    }

    /// The forward-error bound of Float attention against the exact value (as AttentionSpecs'
    /// `attentionBound`): scores carry e_s = (d+1)·u·d·max|q|·max|k|/√d, the weights a relative
    /// 2e_s + (3Tk + 8)u (exp, sum, divide), the output that times max|v|.
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
            return compare(o.storage, reference(q: q, k: k, v: v, mask: mask), .absolute(bound(q: q, k: k, v: v)),
                           "attention vs GSL reference, mask \(mask). \(context)")
        }
    }

    /// The weights, read off with V = I [Tk, Tk], sum to 1 over the keys in every row that sees a key
    /// (0 in a fully masked row). Tolerance (2·Tk + 4)·u: the Tk-term sum plus the normalization.
    public static func rowsSumToOne(_ attention: Attention, q: Matrix, k: Matrix, mask: AttentionMask, context: String) -> Verdict {
        CheckSupport.guarded(context) {
            var identity = Matrix(rows: k.rows, cols: k.rows)
            for j in 0..<k.rows { identity[j, j] = 1 }
            let w = try attention(q, k, identity, mask)
            var sums: [Double] = [], expected: [Double] = []
            for i in 0..<w.rows {
                sums.append((0..<w.cols).reduce(0.0) { $0 + Double(w[i, $1]) })
                expected.append((0..<k.rows).contains { visible(mask, i, $0) } ? 1 : 0)
            }
            return compare(sums, expected, .absolute(Double(2 * k.rows + 4) * CheckSupport.unitRoundoff),
                           "row sums over keys (weights via V = I), mask \(mask). \(context)")
        }
    }

    /// Masked keys (padding, the future) get weight exactly 0: the weights, read off with V = I,
    /// are bitwise 0 wherever the mask hides a key.
    public static func maskedKeysGetZeroWeight(_ attention: Attention, q: Matrix, k: Matrix, mask: AttentionMask, context: String) -> Verdict {
        CheckSupport.guarded(context) {
            var identity = Matrix(rows: k.rows, cols: k.rows)
            for j in 0..<k.rows { identity[j, j] = 1 }
            let w = try attention(q, k, identity, mask)
            for i in 0..<w.rows { for j in 0..<w.cols where !visible(mask, i, j) && w[i, j] != 0 {
                return .fail("weight[\(i), \(j)] = \(w[i, j]) for a masked key (mask \(mask)). \(context)")
            } }
            return .pass
        }
    }

    /// Causality: self-attention (Q = K = V = X) with the causal mask; replacing the rows after
    /// position i leaves output rows ≤ i bitwise unchanged (each row's arithmetic never reads them).
    public static func causality(_ attention: Attention, x: Matrix, position i: Int, seed: UInt, context: String) -> Verdict {
        CheckSupport.guarded(context) {
            let o1 = try attention(x, x, x, .causal())
            var x2 = x
            let junk = CheckSupport.matrix(x.rows, x.cols, seed: seed, range: -3...3)
            for r in (i + 1)..<x.rows { for c in 0..<x.cols { x2[r, c] = junk[r, c] } }
            let o2 = try attention(x2, x2, x2, .causal())
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
            let dh = q.cols / heads, dv = v.cols / heads
            var expected = [Double](repeating: 0, count: q.rows * v.cols)
            for h in 0..<heads {
                func slice(_ m: Matrix, _ w: Int) -> Matrix {
                    var s = Matrix(rows: m.rows, cols: w)
                    for r in 0..<m.rows { for c in 0..<w { s[r, c] = m[r, h * w + c] } }
                    return s
                }
                let ref = reference(q: slice(q, dh), k: slice(k, dh), v: slice(v, dv), mask: mask)
                for r in 0..<q.rows { for c in 0..<dv { expected[r * v.cols + h * dv + c] = ref[r * dv + c] } }
            }
            return compare(o.storage, expected, .absolute(bound(q: q, k: k, v: v, headDimension: dh)),
                           "\(heads)-head attention vs per-head GSL reference (÷√d_head = ÷√\(dh)), mask \(mask). \(context)")
        }
    }

    /// Cross-attention ignores the source's padding: with the target longer than the source's valid
    /// part, other encoder rows at source positions ≥ sourceValid leave the output bitwise unchanged,
    /// and so does the target's own valid length (the target's padding is not a key mask here).
    public static func crossAttentionIgnoresSourcePadding(
        _ cross: (AttentionLayer, Matrix, Int, Matrix, Int) throws -> Matrix,
        layer: AttentionLayer, target: Matrix, targetValid: Int, source: Matrix, sourceValid: Int, seed: UInt
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
