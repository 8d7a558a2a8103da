import DecoderSpec
import Foundation
import SpecSupport
import Testing

/// The bf16 KV cache (docs/decoding.md, "bf16 KV cache"): keys and values rounded to bf16 when
/// written, attention reading them widened. Its error against attention in Double on the Float
/// cache, element-wise within the derived bound, on random heads (every kernel shape: d_h a multiple
/// of the vector block and not, grouped-query heads, ALiBi, both vector widths) and on the caches of
/// a trained model (docs/runs/byte-lm) at every position of real prompts; then the greedy tokens.
@Suite("bf16 KV cache: attention within the derived bound of the Double reference; greedy tokens on a trained model")
struct BF16KVCacheSpecs {
    static let checkpoint = BF16DecodeSpecs.checkpoint
    static let prompts = BF16DecodeSpecs.prompts

    /// One query row's heads in Double on the Float rows K, V [Tk, kvWidth] (the exact value), and
    /// the derived bound on |Ô − O| for the kernel's output Ô on the cache rows stored in `format`.
    ///
    /// Keys: k̂ = bf16(k) = k(1 + δ), |δ| ≤ u_b = 2⁻⁸ (0 for fp32), so a score s_j = σ·q·k_j moves by
    /// a_j ≤ u_b·σ·Σ_p|q_p k_jp|; its Float evaluation adds f_j ≤ (d_h + 2)·u·σ·(1 + u_b)·Σ_p|q_p k_jp|
    /// (d_h products and sums, the scale, the base-2 factor) and, with ALiBi, 3u·(|s_j| + |b_j|).
    /// With E = max_j (a_j + f_j), every weight satisfies p̂_j ≤ p_j·G, |p̂_j − p_j| ≤ (G − 1)·p_j,
    /// G = e^{2E}·(1 + (Tk + 8)·u + R·u) (the softmax of scores each moved by ≤ E, then 2^x, the
    /// Tk-term sum and the division in Float; R·u for the rounding of s − m in base 2, R ≤ 126 the
    /// largest |s − m|/ln 2). Values: v̂ = v(1 + δ'), |δ'| ≤ u_b. So, per output column c, with
    /// A_c = Σ_j p_j|v_jc| (exact weights):
    ///
    ///     |Ô_c − O_c| ≤ Σ p̂_j|v̂_jc − v_jc| + Σ|p̂_j − p_j||v_jc| + γ_Tk·Σ p̂_j|v̂_jc|
    ///                 ≤ A_c·(u_b·G + (G − 1) + (Tk + 2)·u·G·(1 + u_b))  (+ Tk·2⁻¹²⁶·max|v|: weights flushed to 0)
    static func reference(q: [Float], k: Matrix, v: Matrix, heads: Int, kvHeads: Int, position: Int, slopes: [Float]?,
                          format: KVFormat) -> (out: [Double], bound: [Double]) {
        let dh = q.count / heads, group = heads / kvHeads, tk = position + 1
        let u = Double(Float.ulpOfOne) / 2, ub = format == .bf16 ? 0x1p-8 : 0.0
        let scale = 1 / Double(dh).squareRoot()
        var out = [Double](repeating: 0, count: q.count), bound = out
        for h in 0..<heads {
            let g = h / group
            var s = [Double](repeating: 0, count: tk), e = 0.0
            for j in 0..<tk {
                var dot = 0.0, abs = 0.0
                for p in 0..<dh {
                    let x = Double(q[h * dh + p]) * Double(k[j, g * dh + p])
                    dot += x; abs += Swift.abs(x)
                }
                let bias = slopes.map { -Double($0[h]) * Double(position - j) } ?? 0
                s[j] = scale * dot + bias
                var ej = ub * scale * abs + Double(dh + 2) * u * scale * (1 + ub) * abs
                if slopes != nil { ej += 3 * u * (Swift.abs(scale * dot) + Swift.abs(bias)) }
                e = max(e, ej)
            }
            let m = s.max()!
            let w = s.map { exp($0 - m) }, l = w.reduce(0, +)
            // The kernel's 2^(s − m) in base 2: the subtraction's rounding moves the exponent by
            // ≤ u·R (R = the largest |s − m| in base 2, at most 126 below which weights flush to 0).
            let r = min(126, (m - s.min()!) / log(2.0))
            let G = exp(2 * e) * (1 + Double(tk + 8) * u + r * u)
            for c in 0..<dh {
                var o = 0.0, a = 0.0
                for j in 0..<tk { o += w[j] / l * Double(v[j, g * dh + c]); a += w[j] / l * Swift.abs(Double(v[j, g * dh + c])) }
                out[h * dh + c] = o
                // + the weights flushed to 0 below 2⁻¹²⁶ (each of them moves O by < 2⁻¹²⁶·|v|)
                let maxV = (0..<tk).map { Swift.abs(Double(v[$0, g * dh + c])) }.max()!
                bound[h * dh + c] = a * (ub * G + (G - 1) + Double(tk + 2) * u * G * (1 + ub)) + Double(tk) * 0x1p-126 * maxV
            }
        }
        return (out, bound)
    }

    /// The kernel directly at a given vector width (the public entry point runs the build's width).
    static func kernel(q: [Float], keys: CacheRows, values: CacheRows, heads: Int, kvHeads: Int, position: Int, slopes: [Float]?,
                       width: GEMVWidth) -> [Float] {
        let dh = q.count / heads
        var out = [Float](repeating: 0, count: q.count)
        let s = slopes ?? []
        func run<E: CacheElement>(_ k: UnsafePointer<E>, _ v: UnsafePointer<E>) {
            q.withUnsafeBufferPointer { pq in
                out.withUnsafeMutableBufferPointer { po in
                    s.withUnsafeBufferPointer { ps in
                        CachedAttention.forward(E.self, width: width, q: pq.baseAddress!, k: k, v: v, ld: keys.cols, out: po.baseAddress!,
                                                heads: heads, kvHeads: kvHeads, keys: position + 1, dk: dh, scale: 1 / Float(dh).squareRoot(),
                                                position: position, alibi: slopes == nil ? nil : ps.baseAddress!)
                    }
                }
            }
        }
        switch keys.format {
        case .fp32: keys.floats.withUnsafeBufferPointer { pk in values.floats.withUnsafeBufferPointer { pv in run(pk.baseAddress!, pv.baseAddress!) } }
        case .bf16: keys.halves.withUnsafeBufferPointer { pk in values.halves.withUnsafeBufferPointer { pv in run(pk.baseAddress!, pv.baseAddress!) } }
        }
        return out
    }

    @Test("a cache row in bf16 holds bf16(x) for every x it was given (widening is exact)")
    func storedRoundedOnce() {
        let m = Inputs.matrix(rows: 5, cols: 40, seed: 3, range: -3...3)
        let rows = CacheRows(m, format: .bf16)
        #expect(rows.matrix.storage == m.storage.map { BFloat16.widen(BFloat16.round($0)) })
        #expect(rows.bytes == 5 * 40 * 2 && CacheRows(m, format: .fp32).matrix.storage == m.storage)
        var cache = LayerKVCache.empty(width: 40, format: .bf16)
        #expect(throws: DecoderSpecError.self) { try cache.append(keys: Matrix(rows: 1, cols: 40, storage: [Float](repeating: 3.4e38, count: 40)),
                                                                   values: Matrix(rows: 1, cols: 40)) }
        #expect(cache.length == 0, "a row that rounds to ∞ is not appended")
    }

    @Test("random heads: cached attention on a Float and on a bf16 cache within the derived bound of Double attention on the Float rows, element-wise",
          arguments: [(dh: 64, heads: 4, kvHeads: 4, alibi: false), (dh: 64, heads: 4, kvHeads: 2, alibi: true),
                      (dh: 40, heads: 3, kvHeads: 3, alibi: false), (dh: 12, heads: 4, kvHeads: 1, alibi: true)])
    func randomHeads(_ c: (dh: Int, heads: Int, kvHeads: Int, alibi: Bool)) throws {
        let kvWidth = c.dh * c.kvHeads, tk = 130
        // Scores of a few units (as in trained models): q, k entries of ±2 over d_h of 12…64.
        let k = Inputs.matrix(rows: tk, cols: kvWidth, seed: 11, range: -2...2)
        let v = Inputs.matrix(rows: tk, cols: kvWidth, seed: 12, range: -2...2)
        let q = Inputs.matrix(rows: tk, cols: c.dh * c.heads, seed: 13, range: -2...2)
        let slopes = c.alibi ? try ALiBi.slopes(heads: c.heads) : nil
        var worst = 0.0, checked = 0
        for format in KVFormat.allCases {
            for position in [0, 1, 31, 32, 33, 129] {
                let keys = CacheRows(k.rows(0..<(position + 1)), format: format), values = CacheRows(v.rows(0..<(position + 1)), format: format)
                let qi = q.row(position)
                let (exact, bound) = Self.reference(q: qi, k: k, v: v, heads: c.heads, kvHeads: c.kvHeads, position: position,
                                                    slopes: slopes, format: format)
                var outputs = try [("public", cachedMultiHeadAttention(q: Matrix(rows: 1, cols: qi.count, storage: qi), keys: keys, values: values,
                                                                       heads: c.heads, kvHeads: c.kvHeads, queryOffset: position, alibiSlopes: slopes).storage)]
                for width in GEMVWidth.allCases {
                    outputs.append(("\(width)", Self.kernel(q: qi, keys: keys, values: values, heads: c.heads, kvHeads: c.kvHeads,
                                                            position: position, slopes: slopes, width: width)))
                }
                for (name, o) in outputs {
                    for i in o.indices {
                        let d = abs(Double(o[i]) - exact[i])
                        worst = max(worst, d / bound[i])
                        #expect(d <= bound[i], "\(format) \(name) \(c) position \(position) column \(i): |Ô − O| \(d) > bound \(bound[i]) (O \(exact[i]), Ô \(o[i]))")
                        checked += 1
                    }
                }
            }
        }
        #expect(checked > 0)
        print("bf16 KV random heads \(c): \(checked) outputs, the largest |Ô − O| is \(String(format: "%.2f", worst)) of its bound")
    }

    @Test("trained model (docs/runs/byte-lm): every layer's cached attention on a bf16 cache within the bound, at every position of real prompts")
    func trainedModelCaches() throws {
        let model = try LanguageModel.load(directory: Self.checkpoint, path: .optimized)
        let fp = model.model
        let slopes = fp.config.positionEncoding == .alibi ? try ALiBi.slopes(heads: fp.config.heads) : nil
        var worst = 0.0, checked = 0
        for prompt in Self.prompts {
            let ids = model.tokenizer.encode(prompt)
            var h = try fp.embedded(ids, startingAt: 0)
            for layer in fp.layers {
                let a = layer.selfAttention
                let x = try layer.selfAttentionNorm(h)
                let q = try a.query(x), k = try a.key(x), v = try a.value(x)
                for t in 0..<ids.count {
                    let keys = CacheRows(k.rows(0..<(t + 1)), format: .bf16), values = CacheRows(v.rows(0..<(t + 1)), format: .bf16)
                    let o = try cachedMultiHeadAttention(q: q.rows(t..<(t + 1)), keys: keys, values: values, heads: a.heads, kvHeads: a.kvHeads,
                                                         queryOffset: t, alibiSlopes: slopes).storage
                    let (exact, bound) = Self.reference(q: q.row(t), k: k, v: v, heads: a.heads, kvHeads: a.kvHeads, position: t, slopes: slopes,
                                                        format: .bf16)
                    for i in o.indices {
                        let d = abs(Double(o[i]) - exact[i])
                        worst = max(worst, d / bound[i])
                        #expect(d <= bound[i], "\"\(prompt)\" position \(t) column \(i): |Ô − O| \(d) > bound \(bound[i])")
                        checked += 1
                    }
                }
                h = try layer(h)
            }
        }
        #expect(checked > 1000)
        print("bf16 KV on byte-lm's caches: \(checked) outputs, the largest |Ô − O| is \(String(format: "%.2f", worst)) of its bound")
    }

    /// Not a bound: what a bf16 cache does to greedy decoding of the whole model, reported (docs/decoding.md
    /// records it), with Float weights and with bf16 weights. The spec checks the bf16 cache was used
    /// (the logits moved, the cache holds 2 bytes per value) and both runs produced their tokens.
    @Test("greedy decoding, Float cache vs bf16 cache (Float and bf16 weights): the first divergence, reported")
    func greedyTokens() throws {
        let model = try LanguageModel.load(directory: Self.checkpoint, path: .optimized)
        let fp = model.model
        var moved = 0.0
        for (name, base) in [("fp32 weights", fp), ("bf16 weights", fp.roundingWeightsToBF16())] {
            let kv = base.storingKVCache(as: .bf16)
            for prompt in Self.prompts {
                let ids = model.tokenizer.encode(prompt)
                let n = fp.contextLength - ids.count
                let a = try Generator.generate(fp, prompt: ids, strategy: .greedy, config: GenerationConfig(maxNewTokens: n))
                let b = try Generator.generate(kv, prompt: ids, strategy: .greedy, config: GenerationConfig(maxNewTokens: n))
                #expect(a.tokens.count == n && b.tokens.count == n)
                var ca = fp.makeCache(), cb = kv.makeCache()
                #expect(cb.format == .bf16)
                let la = try fp.logits(appending: ids, to: &ca), lb = try kv.logits(appending: ids, to: &cb)
                let d = zip(la, lb).map { abs(Double($0) - Double($1)) }.max()!
                #expect(cb.bytes * 2 == ca.bytes)
                moved = max(moved, d)
                print("bf16 KV (\(name)) greedy \"\(prompt)\": \(n) tokens; max |Δlogit| after the prompt \(String(format: "%.2e", d)); "
                      + (try BF16DecodeSpecs.divergence(fp, prompt: ids, a.tokens, b.tokens)))
            }
        }
        #expect(moved > 0, "the bf16 cache changed no logit: it was not used")
    }
}
