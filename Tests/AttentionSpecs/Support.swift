import DecoderSpec
import GSLOracle
import SpecSupport

/// The implementation under test of single-head attention: (Q, K, V, mask) → O.
typealias AttentionFunction = (Matrix, Matrix, Matrix, AttentionMask) throws -> Matrix
/// The implementation under test of attention weights: (Q, K, mask) → W [Tq, Tk].
typealias WeightsFunction = (Matrix, Matrix, AttentionMask) throws -> Matrix

/// Float's unit roundoff u = 2⁻²⁴ (half an ULP of 1).
let unitRoundoff = 0x1p-24

func sdpa(_ variant: AttentionVariant) -> AttentionFunction {
    { q, k, v, mask in try scaledDotProductAttention(q: q, k: k, v: v, mask: mask, variant: variant) }
}

/// The weights of any attention implementation, read off by attending over V = I_Tk:
/// O = W · I = W. This lets weight properties run on the fused kernel, which never stores W.
func weights(of attention: @escaping AttentionFunction) -> WeightsFunction {
    { q, k, mask in
        var eye = Matrix(rows: k.rows, cols: k.rows)
        for j in 0..<k.rows { eye[j, j] = 1 }
        return try attention(q, k, eye, mask)
    }
}

/// The mask's meaning, written out independently of `AttentionMask`'s own helpers:
/// query i sees key j iff (not causal or j ≤ i + offset) and (j < validLength).
func referenceVisible(_ mask: AttentionMask, _ i: Int, _ j: Int) -> Bool {
    if mask.isCausal && j > i + mask.queryOffset { return false }
    if let n = mask.keyValidLength, j >= n { return false }
    return true
}

/// Double-precision reference built from GSL: S = dgemm(Q, Kᵀ)/√d, w_ij = exp(s_ij − m_i)/Σ_l
/// exp(s_il − m_i) with gsl_sf_exp over the visible keys (0 for masked ones and for fully masked
/// rows), O = dgemm(W, V).
enum Reference {
    static func weights(q: Matrix, k: Matrix, mask: AttentionMask) throws -> [Double] {
        let (tq, tk, d) = (q.rows, k.rows, q.cols)
        var s = try GSL.dgemm(transB: true, m: tq, n: tk, k: d, a: q.storage.doubles, b: k.storage.doubles)
        let sqrtD = Double(d).squareRoot()
        var w = [Double](repeating: 0, count: tq * tk)
        for i in 0..<tq {
            var m = -Double.infinity
            for j in 0..<tk where referenceVisible(mask, i, j) {
                s[i * tk + j] /= sqrtD
                if let a = mask.additive { s[i * tk + j] += Double(a[i, j]) }
                m = max(m, s[i * tk + j])
            }
            if m == -.infinity { continue }  // fully masked row: all weights 0
            var sum = 0.0
            for j in 0..<tk where referenceVisible(mask, i, j) {
                let x = s[i * tk + j] - m
                let e = x < -700 ? 0 : try GSL.exp(x)  // below e^−700 is 0 in Double and in Float
                w[i * tk + j] = e
                sum += e
            }
            for j in 0..<tk { w[i * tk + j] /= sum }
        }
        return w
    }

    static func attention(q: Matrix, k: Matrix, v: Matrix, mask: AttentionMask) throws -> [Double] {
        let w = try weights(q: q, k: k, mask: mask)
        return try GSL.dgemm(m: q.rows, n: v.cols, k: k.rows, a: w, b: v.storage.doubles)
    }

    /// Multi-head on projected [T, d_model] matrices: per head h, columns h·d_h ..< (h+1)·d_h.
    static func multiHead(q: Matrix, k: Matrix, v: Matrix, heads: Int, mask: AttentionMask) throws -> [Double] {
        let dh = q.cols / heads, dv = v.cols / heads
        var out = [Double](repeating: 0, count: q.rows * v.cols)
        for h in 0..<heads {
            let o = try attention(q: slice(q, h * dh, dh), k: slice(k, h * dh, dh), v: slice(v, h * dv, dv), mask: mask)
            for r in 0..<q.rows { for c in 0..<dv { out[r * v.cols + h * dv + c] = o[r * dv + c] } }
        }
        return out
    }

    static func rowsFrom(_ m: Matrix, _ from: Int) -> Matrix {
        try! Matrix(rows: m.rows - from, cols: m.cols, storage: Array(m.storage[(from * m.cols)...]))
    }

    static func slice(_ m: Matrix, _ from: Int, _ count: Int) -> Matrix {
        var out = Matrix(rows: m.rows, cols: count)
        for r in 0..<m.rows { for c in 0..<count { out[r, c] = m[r, from + c] } }
        return out
    }
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
func attentionBound(q: Matrix, k: Matrix, v: Matrix, headDimension: Int? = nil) -> (bound: Bound, value: Double) {
    let maxQ = Double(q.storage.map { abs($0) }.max() ?? 0)
    let maxK = Double(k.storage.map { abs($0) }.max() ?? 0)
    let maxV = Double(v.storage.map { abs($0) }.max() ?? 0)
    let d = Double(headDimension ?? q.cols)
    let es = (d + 1) * unitRoundoff * d * maxQ * maxK / d.squareRoot()
    let tol = maxV * (2 * es + Double(3 * k.rows + 8) * unitRoundoff)
    return (.absolute(tol), tol)
}

// MARK: - Reusable checks (each takes the implementation under test, returns a Verdict)

enum AttentionChecks {
    /// O agrees with the GSL Double reference within `attentionBound`.
    static func matchesReference(_ attention: AttentionFunction, q: Matrix, k: Matrix, v: Matrix,
                                 mask: AttentionMask, context: String) -> Verdict {
        do {
            let o = try attention(q, k, v, mask)
            let ref = try Reference.attention(q: q, k: k, v: v, mask: mask)
            return compare(o.storage, ref, attentionBound(q: q, k: k, v: v).bound, context)
        } catch { return .fail("threw \(error). \(context)") }
    }

    /// Every row of W with a visible key sums to 1 within (2·Tk + 4)·u (the Tk-term sum of the
    /// normalized weights plus the normalization's own rounding); a fully masked row sums to 0.
    static func rowsSumToOne(_ weights: WeightsFunction, q: Matrix, k: Matrix, mask: AttentionMask, context: String) -> Verdict {
        do {
            let w = try weights(q, k, mask)
            var sums: [Double] = [], expected: [Double] = []
            for i in 0..<w.rows {
                var s = 0.0
                for j in 0..<w.cols { s += Double(w[i, j]) }
                sums.append(s)
                expected.append((0..<k.rows).contains { referenceVisible(mask, i, $0) } ? 1 : 0)
            }
            return compare(sums, expected, .absolute(Double(2 * k.rows + 4) * unitRoundoff), "row sums. \(context)")
        } catch { return .fail("threw \(error). \(context)") }
    }

    /// Masked keys (padding, future positions) get weight exactly 0.
    static func maskedKeysGetZeroWeight(_ weights: WeightsFunction, q: Matrix, k: Matrix, mask: AttentionMask,
                                        context: String) -> Verdict {
        do {
            let w = try weights(q, k, mask)
            for i in 0..<w.rows { for j in 0..<w.cols where !referenceVisible(mask, i, j) && w[i, j] != 0 {
                return .fail("weight[\(i), \(j)] = \(w[i, j]) for a masked key (mask \(mask)). \(context)")
            } }
            return .pass
        } catch { return .fail("threw \(error). \(context)") }
    }

    /// Replacing the keys and values at masked positions (K, V rows ≥ validLength) by other
    /// numbers leaves O bitwise unchanged.
    static func paddedKeysIgnored(_ attention: AttentionFunction, q: Matrix, k: Matrix, v: Matrix, validLength: Int,
                                  seed: UInt, context: String) -> Verdict {
        do {
            let mask = AttentionMask.keyPadding(validLength: validLength)
            let o1 = try attention(q, k, v, mask)
            var k2 = k, v2 = v
            let junk = Inputs.matrix(rows: k.rows, cols: k.cols + v.cols, seed: seed, range: -5...5)
            for j in validLength..<k.rows {
                for c in 0..<k.cols { k2[j, c] = junk[j, c] }
                for c in 0..<v.cols { v2[j, c] = junk[j, k.cols + c] }
            }
            let o2 = try attention(q, k2, v2, mask)
            return compare(o2.storage, o1.storage, .exact, "padded keys changed the output. \(context)")
        } catch { return .fail("threw \(error). \(context)") }
    }

    /// Causality: for self-attention over X [T, d] with a causal mask (Q = K = V = X through
    /// `selfAttention`), changing rows > i of X leaves output rows ≤ i bitwise unchanged.
    static func causality(_ selfAttention: (Matrix) throws -> Matrix, x: Matrix, position i: Int, seed: UInt,
                          context: String) -> Verdict {
        do {
            let o1 = try selfAttention(x)
            var x2 = x
            let junk = Inputs.matrix(rows: x.rows, cols: x.cols, seed: seed, range: -3...3)
            for r in (i + 1)..<x.rows { for c in 0..<x.cols { x2[r, c] = junk[r, c] } }
            let o2 = try selfAttention(x2)
            let n = (i + 1) * o1.cols
            return compare(Array(o2.storage[0..<n]), Array(o1.storage[0..<n]), .exact,
                           "outputs at positions ≤ \(i) changed when positions > \(i) changed. \(context)")
        } catch { return .fail("threw \(error). \(context)") }
    }

    /// Self-attention without positional encoding is permutation-equivariant:
    /// f(P·X) = P·f(X). Summation order over keys changes with the permutation, so the bound is
    /// twice `attentionBound` (each side is within it of its exact value, and the exact values agree).
    static func permutationEquivariant(_ selfAttention: (Matrix) throws -> Matrix, x: Matrix, seed: UInt,
                                       context: String) -> Verdict {
        do {
            let rng = GSLRandom(seed: seed)
            var perm = Array(0..<x.rows)
            for i in stride(from: perm.count - 1, to: 0, by: -1) { perm.swapAt(i, rng.int(below: i + 1)) }
            var px = x
            for r in 0..<x.rows { for c in 0..<x.cols { px[r, c] = x[perm[r], c] } }
            let o = try selfAttention(x), po = try selfAttention(px)
            var permutedO = o
            for r in 0..<o.rows { for c in 0..<o.cols { permutedO[r, c] = o[perm[r], c] } }
            let tol = 2 * attentionBound(q: x, k: x, v: x).value
            return compare(po.storage, permutedO.storage, .absolute(tol), "f(PX) vs P f(X), permutation \(perm.prefix(8))…. \(context)")
        } catch { return .fail("threw \(error). \(context)") }
    }

    /// Attention of constant values is that constant: if every V row is c, every output row with a
    /// visible key is c (weights sum to 1). Bound: relative (2·Tk + 8)·u (sum of weights to 1 plus
    /// the products), stated as mixed so a row of c = 0 passes exactly.
    static func constantValuesPreserved(_ attention: AttentionFunction, q: Matrix, k: Matrix, mask: AttentionMask,
                                        context: String) -> Verdict {
        do {
            let c = Inputs.matrix(rows: 1, cols: 5, seed: 99, range: 0.5...2)
            var v = Matrix(rows: k.rows, cols: 5)
            for j in 0..<k.rows { for col in 0..<5 { v[j, col] = c[0, col] } }
            let o = try attention(q, k, v, mask)
            var expected: [Double] = []
            for i in 0..<q.rows {
                let any = (0..<k.rows).contains { referenceVisible(mask, i, $0) }
                for col in 0..<5 { expected.append(any ? Double(c[0, col]) : 0) }
            }
            return compare(o.storage, expected, .relative(Double(2 * k.rows + 8) * unitRoundoff), "constant values. \(context)")
        } catch { return .fail("threw \(error). \(context)") }
    }

    /// Causal attention of the last Tq queries with `.causal(queryOffset: T − Tq)` over all T keys
    /// (a KV-cache step) equals the last Tq rows of full causal attention, bitwise (every row is
    /// computed by the same arithmetic in both).
    static func offsetMatchesFullCausal(_ attention: AttentionFunction, q: Matrix, k: Matrix, v: Matrix, newQueries tq: Int,
                                        context: String) -> Verdict {
        do {
            let t = q.rows
            let full = try attention(q, k, v, .causal())
            let qTail = Reference.rowsFrom(q, t - tq)
            let part = try attention(qTail, k, v, .causal(queryOffset: t - tq))
            return compare(part.storage, Array(full.storage[((t - tq) * full.cols)...]), .exact,
                           "offset \(t - tq) rows vs full causal. \(context)")
        } catch { return .fail("threw \(error). \(context)") }
    }
}
