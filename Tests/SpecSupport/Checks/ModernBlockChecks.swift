// Checks of the modern decoder block: RoPE, ALiBi, RMSNorm, SwiGLU, grouped-query attention with a
// KV cache (docs/positional-encoding.md, docs/layers.md, docs/tolerances.md, docs/bug-zoo.md #22–25).
// Each takes the implementation under test, so the bug zoo's variants run through the same checks.
import DecoderSpec
import GSLOracle

public enum RoPEChecks {
    /// RoPE under test: x [T, heads·d] → x rotated, row r at position offset + r.
    public typealias Rotary = (_ x: Matrix, _ headWidth: Int, _ positionOffset: Int, _ base: Double,
                               _ convention: RotaryEmbedding.Convention) throws -> Matrix

    /// θ_i = base^(−2i/d) = exp(−(2i/d)·ln base) with gsl_sf_exp and gsl_sf_log.
    public static func frequencies(headWidth d: Int, base: Double) -> [Double] {
        (0..<(d / 2)).map { CheckSupport.exp(-2 * Double($0) / Double(d) * CheckSupport.log(base)) }
    }

    /// The reference in Double: each pair (a, b) of each head multiplied by the rotation matrix
    /// [[cos φ, −sin φ], [sin φ, cos φ]], φ = m·θ_i, with gsl_sf_cos / gsl_sf_sin.
    public static func reference(_ x: Matrix, headWidth d: Int, positionOffset: Int, base: Double,
                                 convention: RotaryEmbedding.Convention) throws -> [Double] {
        let theta = frequencies(headWidth: d, base: base)
        var y = x.storage.doubles
        for r in 0..<x.rows {
            let m = Double(positionOffset + r)
            for h in 0..<(x.cols / d) {
                for i in 0..<(d / 2) {
                    let (c, s) = (try GSL.cos(m * theta[i]), try GSL.sin(m * theta[i]))
                    let (ia, ib) = RoPEKernel.pair(i, headWidth: d, convention)
                    let (ja, jb) = (r * x.cols + h * d + ia, r * x.cols + h * d + ib)
                    let (a, b) = (y[ja], y[jb])
                    (y[ja], y[jb]) = (c * a - s * b, s * a + c * b)
                }
            }
        }
        return y
    }

    /// The bound of the library's RoPE against the exact rotation, per coordinate of pair (a, b):
    ///
    ///     |ŷ − y| ≤ (|a| + |b|) · (3u + 4·2⁻⁵³·m·θ_i + 2⁻⁵²)         u = 2⁻²⁴
    ///
    /// cos and sin rounded to Float (u each), a·c and b·s rounded and subtracted (2u more, first
    /// order: 3u in all); the Double angle m·θ_i carries pow's and the product's roundings, ≤ 4·2⁻⁵³
    /// relative, and Double sin/cos add ≤ 2⁻⁵² absolute. A Float angle would put 2u·m·θ_i here
    /// instead (`floatAngleBound`): 0.012 at m = 10⁵.
    public static func bound(a: Double, b: Double, position m: Int, theta: Double, angleUnitRoundoff: Double = 0x1p-53) -> Double {
        (abs(a) + abs(b)) * (3 * CheckSupport.unitRoundoff + 4 * angleUnitRoundoff * Double(m) * theta + 0x1p-52)
    }

    /// `rope` matches the GSL rotation at rows placed at `positionOffset`, coordinate by coordinate,
    /// within `bound` (with the angle's unit roundoff `angleUnitRoundoff`: 2⁻⁵³ for Double angles).
    public static func matchesGSL(_ rope: Rotary, rows: Int, heads: Int, headWidth d: Int, positionOffset: Int, base: Double = 10_000,
                                  convention: RotaryEmbedding.Convention, seed: UInt, angleUnitRoundoff: Double = 0x1p-53) -> Verdict {
        let context = "RoPE \(convention), d_head \(d), \(heads) heads, positions \(positionOffset)..<\(positionOffset + rows), base \(base), seed \(seed)"
        return CheckSupport.guarded(context) {
            let x = Inputs.matrix(rows: rows, cols: heads * d, seed: seed)
            let y = try rope(x, d, positionOffset, base, convention)
            guard y.shape == x.shape else { return .fail("shape \(y.shape), expected \(x.shape). \(context)") }
            let ref = try reference(x, headWidth: d, positionOffset: positionOffset, base: base, convention: convention)
            let theta = frequencies(headWidth: d, base: base)
            for r in 0..<rows {
                for h in 0..<heads {
                    for i in 0..<(d / 2) {
                        let (ia, ib) = RoPEKernel.pair(i, headWidth: d, convention)
                        let (ja, jb) = (r * x.cols + h * d + ia, r * x.cols + h * d + ib)
                        let tol = bound(a: Double(x.storage[ja]), b: Double(x.storage[jb]), position: positionOffset + r, theta: theta[i],
                                        angleUnitRoundoff: angleUnitRoundoff)
                        for j in [ja, jb] where !(abs(Double(y.storage[j]) - ref[j]) <= tol) {
                            return .fail("row \(r) (position \(positionOffset + r)), head \(h), pair \(i), index \(j): expected \(ref[j]), observed \(y.storage[j]), |error| \(abs(Double(y.storage[j]) - ref[j])) > \(tol). \(context)")
                        }
                    }
                }
            }
            return .pass
        }
    }

    /// ⟨RoPE(q, m), RoPE(k, n)⟩ depends only on m − n: for each (m, n) the score equals the score at
    /// (m + s, n + s) for shifts s up to `maxShift`. Each score is within
    ///     E = d·(2·Q·2·K·η·2 + 4·Q·K·d·u),   η = 3u + 4·2⁻⁵³·P + 2⁻⁵²   (P the largest position, θ₀ = 1)
    /// of the exact ⟨q, R((n − m)θ) k⟩ (rotated components within 2·max|·|·η, the d-term Float dot
    /// product within d·u of Σ|q'||k'| ≤ 4·d·Q·K), so two scores differ by at most 2E.
    public static func scoreDependsOnlyOnOffset(_ rope: Rotary, headWidth d: Int, convention: RotaryEmbedding.Convention,
                                                pairs: [(Int, Int)], shifts: [Int], seed: UInt) -> Verdict {
        let context = "RoPE \(convention), d_head \(d), seed \(seed)"
        return CheckSupport.guarded(context) {
            let q = Inputs.matrix(rows: 1, cols: d, seed: seed), k = Inputs.matrix(rows: 1, cols: d, seed: seed + 1)
            func score(_ m: Int, _ n: Int) throws -> Double {
                let qm = try rope(q, d, m, 10_000, convention), kn = try rope(k, d, n, 10_000, convention)
                var s: Float = 0
                for c in 0..<d { s += qm.storage[c] * kn.storage[c] }
                return Double(s)
            }
            let (maxQ, maxK) = (Double(q.storage.map(abs).max()!), Double(k.storage.map(abs).max()!))
            let u = CheckSupport.unitRoundoff
            for (m, n) in pairs {
                let base = try score(m, n)
                for s in shifts {
                    let p = Double(max(m, n) + s)
                    let eta = 3 * u + 4 * 0x1p-53 * p + 0x1p-52
                    let e = Double(d) * (8 * maxQ * maxK * eta + 4 * maxQ * maxK * Double(d) * u)
                    let shifted = try score(m + s, n + s)
                    if !(abs(shifted - base) <= 2 * e) {
                        return .fail("⟨RoPE(q, \(m)), RoPE(k, \(n))⟩ = \(base) but at (\(m + s), \(n + s)) = \(shifted): |Δ| \(abs(shifted - base)) > \(2 * e). \(context)")
                    }
                }
            }
            return .pass
        }
    }
}

public enum ALiBiChecks {
    /// The closed form of the slopes: n a power of two → m_h = 2^(−8h/n), h = 1 … n; otherwise, with
    /// p = 2^⌊log₂ n⌋: 2^(−8h/p) for h = 1 … p, then 2^(−8(2j − 1)/(2p)) = 2^(−4(2j − 1)/p) for j = 1 … n − p.
    public static func closedFormSlopes(heads n: Int) -> [Double] {
        var p = 1
        while 2 * p <= n { p *= 2 }
        let first = (1...p).map { CheckSupport.exp(-8 * Double($0) / Double(p) * CheckSupport.log(2)) }
        let rest = n == p ? [] : (1...(n - p)).map { CheckSupport.exp(-4 * Double(2 * $0 - 1) / Double(p) * CheckSupport.log(2)) }
        return first + rest
    }

    /// `slopes(n)` equals the closed form within 1 Float ULP (one rounding of an exact power of two,
    /// or of a Double value within a few Double ULPs) for every n in `heads`.
    public static func slopesMatchClosedForm(_ slopes: (Int) throws -> [Float], heads: [Int]) -> Verdict {
        for n in heads {
            let v = CheckSupport.guarded("ALiBi slopes, \(n) heads") {
                compare(try slopes(n), closedFormSlopes(heads: n), .ulps(1), "ALiBi slopes of \(n) heads vs the closed form")
            }
            if !v.passed { return v }
        }
        return .pass
    }
}

public enum NormChecks {
    /// RMSNorm under test: (x, g, ε) → y, x and y [T, d].
    public typealias RMSNormFunction = (_ x: Matrix, _ gain: [Float], _ epsilon: Float) throws -> Matrix

    /// y_j = g_j·x_j / sqrt(Σx²/d + ε) with Σx² by `GSL.dgemm` (x·xᵀ of the row) in Double, per element within
    ///     (d/2 + 8)·u · |reference|
    /// Σx² of d positive terms in Float is within d·u relative (any order), /d and +ε add 2u; the
    /// square root halves the relative error and adds u; 1/rms, ·x and ·g add 3u: (d/2 + 7)·u, +1 for margin of
    /// second-order terms. The naive path (Double) is within 2u.
    public static func rmsNormMatchesGSL(_ f: RMSNormFunction, rows: Int, d: Int, epsilon: Float = 1e-6, scale: Float = 1, seed: UInt) -> Verdict {
        let context = "RMSNorm [\(rows), \(d)], ε \(epsilon), scale \(scale), seed \(seed)"
        return CheckSupport.guarded(context) {
            let rng = GSLRandom(seed: seed)
            let x = try Matrix(rows: rows, cols: d, storage: rng.floats(rows * d, in: -3, 3).map { $0 * scale })
            let g = rng.floats(d, in: 0.5, 1.5)
            let y = try f(x, g, epsilon)
            var ref = [Double](repeating: 0, count: rows * d)
            for r in 0..<rows {
                let row = Array(x.storage[(r * d)..<((r + 1) * d)]).doubles
                let sumSquares = try GSL.dgemm(transB: true, m: 1, n: 1, k: d, a: row, b: row)[0]
                let rms = (sumSquares / Double(d) + Double(epsilon)).squareRoot()
                for j in 0..<d { ref[r * d + j] = Double(g[j]) * row[j] / rms }
            }
            return compare(y.storage, ref, .relative((Double(d) / 2 + 8) * CheckSupport.unitRoundoff), context)
        }
    }

    /// SwiGLU gate under test: (a, b) → SiLU(a)·b elementwise.
    public typealias GateFunction = (_ a: [Float], _ b: [Float]) throws -> [Float]

    /// SiLU(a)·b = a·b / (1 + e^(−a)) with gsl_sf_exp, per element within
    ///     8·ulp(reference) + |a·b|·e⁻⁸⁷
    /// e^(−a) within 3 ULPs (vector exp) or 1 (expf), then +1, ÷, ×b: ≤ 6 ULPs first order, 8 with
    /// margin. The absolute term covers a < −87, where the vector exp saturates at e⁸⁸ and expf
    /// overflows to ∞: the result is then |a·b|/e⁸⁸ or 0 instead of |a·b|·eᵃ, both within |a·b|·e⁻⁸⁷.
    public static func swiGLUMatchesGSL(_ f: GateFunction, seed: UInt) -> Verdict {
        let special: [Float] = [0, -0.0, 1, -1, 20, -20, 80, -80, 87, -87, 100, -100, 1e-20, -1e-20]
        let rng = GSLRandom(seed: seed)
        let a = special + rng.floats(1009, in: -15, 15), b = special.map { _ in 1.5 } + rng.floats(1009, in: -3, 3)
        return CheckSupport.guarded("SwiGLU, seed \(seed)") {
            let y = try f(a, b)
            guard y.count == a.count else { return .fail("\(y.count) outputs for \(a.count) inputs") }
            for i in a.indices {
                let ref = Double(a[i]) * Double(b[i]) / (1 + CheckSupport.exp(-Double(a[i])))
                let tol = 8 * Double(Float(ref).ulp) + abs(Double(a[i]) * Double(b[i])) * CheckSupport.exp(-87)
                if !(abs(Double(y[i]) - ref) <= tol) {
                    return .fail("SiLU(\(a[i]))·\(b[i]) at \(i): expected \(ref), observed \(y[i]), |error| \(abs(Double(y[i]) - ref)) > \(tol)")
                }
            }
            return .pass
        }
    }
}

/// Checks of a whole attention layer with grouped-query heads and RoPE/ALiBi against a Double
/// reference written from the formulas (GSL dgemm, `RoPEChecks.reference`, `AttentionOracleChecks`).
public enum AttentionLayerChecks {
    /// Self-attention of `layer` on x [T, d] under a causal mask (or none: `causal` false), in Double: projections by dgemm,
    /// RoPE by GSL rotation matrices, each query head h over key/value head ⌊h·H_kv/H⌋ with the
    /// closed-form ALiBi bias, then W_O. Returns the output and the first-order error bound of a
    /// Float computation of it (u = 2⁻²⁴), element by element:
    /// - a projection P = x·Wᵀ + b: ε_P = (d + 2)·u·max_{r,c}(Σ_j|x_rj·W_cj| + |b_c|);
    /// - RoPE: a rotated coordinate mixes two inputs (2·ε_P) and adds 3u·(|a| + |b|) ≤ 6u·max|P|;
    /// - scores: e_s = (d_h·(max|Q'|·ε_K' + max|K'|·ε_Q') + (d_h + 1)·u·d_h·max|Q'|·max|K'|)/√d_h,
    ///   plus 3u·max|bias| with ALiBi (the bias rounded, the fused kernel's ×log₂e);
    /// - a head's output: max|V|·(2·e_s + (3·T + 8)·u) + ε_V (`AttentionOracleChecks.bound`'s argument);
    /// - W_O: (d + 2)·u·max(Σ_j|o_j·W_O,cj| + |b|) + max_c Σ_j|W_O,cj| · ε_head.
    public static func reference(_ layer: MultiHeadAttention, x: Matrix, causal: Bool = true) throws -> (output: [Double], bound: Double) {
        let (t, d, h, hkv, dh) = (x.rows, layer.modelWidth, layer.heads, layer.kvHeads, layer.headWidth)
        let u = CheckSupport.unitRoundoff
        func project(_ l: Linear, _ input: [Double], inputWidth: Int) throws -> (values: [Double], error: Double, absSum: Double) {
            let n = l.outputSize
            var y = try GSL.dgemm(transB: true, m: t, n: n, k: inputWidth, a: input, b: l.weight.storage.doubles)
            let absY = try GSL.dgemm(transB: true, m: t, n: n, k: inputWidth, a: input.map(abs), b: l.weight.storage.doubles.map(abs))
            var worst = 0.0
            for r in 0..<t {
                for c in 0..<n {
                    let b = Double(l.bias?[c] ?? 0)
                    y[r * n + c] += b
                    worst = max(worst, absY[r * n + c] + abs(b))
                }
            }
            return (y, Double(inputWidth + 2) * u * worst, worst)
        }
        let xd = x.storage.doubles
        var (q, eq, _) = try project(layer.query, xd, inputWidth: d)
        var (k, ek, _) = try project(layer.key, xd, inputWidth: d)
        let (v, ev, _) = try project(layer.value, xd, inputWidth: d)
        if case .rope(let rope) = layer.positions {
            let (maxQ, maxK) = (q.map(abs).max()!, k.map(abs).max()!)
            // Rotate the Float-rounded projections' exact values: the reference rotates in Double.
            q = try RoPEChecks.reference(Matrix(rows: t, cols: d, storage: q.map { Float($0) }), headWidth: dh, positionOffset: 0,
                                         base: rope.base, convention: rope.convention)
            k = try RoPEChecks.reference(Matrix(rows: t, cols: hkv * dh, storage: k.map { Float($0) }), headWidth: dh, positionOffset: 0,
                                         base: rope.base, convention: rope.convention)
            // The Float rounding of P before rotating is inside ε_P's budget (one more u·max|P|).
            eq = 2 * (eq + u * maxQ) + 6 * u * maxQ
            ek = 2 * (ek + u * maxK) + 6 * u * maxK
        }
        let slopes = layer.positions == .alibi ? ALiBiChecks.closedFormSlopes(heads: h) : nil
        let (maxQ, maxK, maxV) = (q.map(abs).max()!, k.map(abs).max()!, v.map(abs).max()!)
        var mixed = [Double](repeating: 0, count: t * d)
        var maxBias = 0.0
        for head in 0..<h {
            let g = head / (h / hkv)
            var w = [Double](repeating: 0, count: t * t)
            for i in 0..<t {
                var s = [Double](repeating: -.infinity, count: t)
                for j in 0..<(causal ? i + 1 : t) {
                    var dot = 0.0
                    for c in 0..<dh { dot += q[i * d + head * dh + c] * k[j * hkv * dh + g * dh + c] }
                    let bias = slopes.map { -$0[head] * Double(abs(i - j)) } ?? 0
                    maxBias = max(maxBias, abs(bias))
                    s[j] = dot / Double(dh).squareRoot() + bias
                }
                let p = CheckSupport.softmax(s)
                for j in 0..<t { w[i * t + j] = p[j] }
            }
            for i in 0..<t {
                for c in 0..<dh {
                    var acc = 0.0
                    for j in 0..<t { acc += w[i * t + j] * v[j * hkv * dh + g * dh + c] }
                    mixed[i * d + head * dh + c] = acc
                }
            }
        }
        let es = (Double(dh) * (maxQ * ek + maxK * eq) + Double(dh + 1) * u * Double(dh) * maxQ * maxK) / Double(dh).squareRoot()
            + 3 * u * maxBias
        let eHead = maxV * (2 * es + Double(3 * t + 8) * u) + ev
        let (out, eOut, _) = try project(layer.output, mixed, inputWidth: d)
        let rowSum = (0..<d).map { c in (0..<d).reduce(0.0) { $0 + abs(Double(layer.output.weight[c, $1])) } }.max()!
        return (out, eOut + rowSum * eHead)
    }

    /// `run(layer, x)` (causal self-attention) matches `reference` within its bound.
    public static func matchesReference(_ run: (MultiHeadAttention, Matrix) throws -> Matrix, layer: MultiHeadAttention, x: Matrix,
                                        context: String) -> Verdict {
        CheckSupport.guarded(context) {
            let (ref, bound) = try reference(layer, x: x)
            return compare(try run(layer, x).storage, ref, .absolute(bound), "layer vs Double reference. \(context)")
        }
    }

    /// KV-cached decoding under test: feeds `chunks` (row blocks of x) through one cache, returning each chunk's output rows.
    public typealias CachedAttention = (_ layer: MultiHeadAttention, _ chunks: [Matrix]) throws -> [Matrix]

    /// KV cache equals recompute: the rows a cached run returns for each chunk equal the Double
    /// reference of the whole prefix's causal self-attention (`reference`, same bound) — so a cache
    /// position offset that is wrong (RoPE angles or ALiBi distances from 0 at every step) fails.
    public static func cacheMatchesReference(_ cached: CachedAttention, layer: MultiHeadAttention, x: Matrix, chunkSizes: [Int],
                                             context: String) -> Verdict {
        CheckSupport.guarded(context) {
            var chunks: [Matrix] = [], start = 0
            for n in chunkSizes {
                chunks.append(try Matrix(rows: n, cols: x.cols, storage: Array(x.storage[(start * x.cols)..<((start + n) * x.cols)])))
                start += n
            }
            let outputs = try cached(layer, chunks)
            let prefix = try Matrix(rows: start, cols: x.cols, storage: Array(x.storage[..<(start * x.cols)]))
            let (ref, bound) = try reference(layer, x: prefix)
            guard outputs.count == chunks.count else { return .fail("\(outputs.count) outputs for \(chunks.count) chunks. \(context)") }
            return compare(outputs.flatMap(\.storage), ref, .absolute(bound), "cached chunks \(chunkSizes) vs reference of the whole prefix. \(context)")
        }
    }

    /// The library's cached decoding: one `LayerKVCache` of width kvHeads·d_head, chunk after chunk.
    public static func libraryCached(path: KernelPath) -> CachedAttention {
        { layer, chunks in
            var cache = layer.emptyCache()
            return try chunks.map { try layer($0, cache: &cache, path: path) }
        }
    }
}
