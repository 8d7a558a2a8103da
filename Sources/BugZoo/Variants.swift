// The catalogued bugs, each a small variant of the correct code built from the public API.
// See docs/bug-zoo.md for what each one does to the output and which check catches it.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Attention
import Decoding
import Kernels
import Layers
import Masking
import Metrics
import Models
import PositionalEncoding
import TensorCore
import Training

/// The catalogue, in the order of docs/bug-zoo.md's table (data flow: PE, attention, masks, layers,
/// cache, decoding, training, metrics).
public enum BugCatalogue {
    public static let all: [Bug] = [
        peOneRowForAll, pePrecedence, peIntegerExponent, attentionScale, softmaxAxis, causalTriangle,
        uniformEmptyRow, crossAttentionPadding, unbiasedVariance, geluFlavour, cachePositionsNotOffset,
        cacheOffsetTwice, nucleusDropsCrossing, nucleusEdges, topKOffByOne, adamMistakes, lossOnIgnored, metricMistakes,
        nucleusThresholdInverted, beamLengthPenaltyWrongLength, beamStopDoesNotFinish,
        ropeConventionMismatch, ropeLowPrecision, alibiSlopesNonPowerOfTwo, ropeCacheOffset,
    ]

    /// The bug with number `id`, if catalogued.
    public static func bug(_ id: Int) -> Bug? { all.first { $0.id == id } }

    // MARK: - Correct implementations (the entry points the variants mutate)

    public static let correctTable: PositionalTableFunction = { n, d in
        try SinusoidalPositionalEncoding(dimension: d).table(count: n)
    }
    public static let correctAdd: PositionalAddFunction = { x in
        try SinusoidalPositionalEncoding(dimension: x.cols).add(to: x)
    }
    public static let correctAttention: AttentionFunction = { q, k, v, mask in
        try scaledDotProductAttention(q: q, k: k, v: v, mask: mask)
    }
    public static let correctMultiHead: MultiHeadFunction = { q, k, v, heads, mask in
        try multiHeadAttention(q: q, k: k, v: v, heads: heads, mask: mask)
    }
    public static let correctCrossAttention: CrossAttentionFunction = { layer, target, _, source, sourceValid in
        try layer(target, memory: source, mask: .keyPadding(validLength: sourceValid))
    }
    public static let correctLayerNorm: LayerNormFunction = { x, gamma, beta, eps in
        try LayerNorm(gamma: gamma, beta: beta, epsilon: eps)(x)
    }
    public static let correctActivation: ActivationFunction = { function, x in
        applyActivation(function, x)
    }
    public static let correctCachedDecoder: CachedDecoderFunction = { model, chunks in
        var cache = model.makeCache()
        return try chunks.map { try model.logits(appending: $0, to: &cache) }
    }
    public static let correctSampling: SamplingFilterFunction = { logits, config in
        try LogitsFilter.distribution(logits, config)
    }
    public static let correctBeamSearch: BeamSearchFunction = { model, prompt, beam, config in
        try Generator.generate(model, prompt: prompt, strategy: .beam(beam), config: config)
    }
    public static let correctOptimizer: OptimizerFunction = trainingAdam()
    public static let correctLoss: LossFunction = { logits, targets, ignore, eps in
        try CrossEntropyLoss(ignoreIndex: ignore, labelSmoothing: Float(eps))(logits: logits, targets: targets).loss
    }
    public static let correctBLEU: BLEUFunction = { h, r in try BLEU.corpus(hypotheses: h, references: [r]).score }
    public static let correctEntityF1: EntityF1Function = { g, p in try Conlleval.evaluate(gold: g, predicted: p).f1 }

    static func applyActivation(_ function: Activation.Function, _ x: [Float]) -> [Float] {
        var y = x
        y.withUnsafeMutableBufferPointer { p in
            if let base = p.baseAddress { Activation.apply(function, .naive, base, count: p.count) }
        }
        return y
    }

    /// A PE table from explicit frequencies ω_i (i < d/2): PE[pos, 2i] = sin(pos·ω_i), PE[pos, 2i+1] = cos(pos·ω_i).
    static func table(positions n: Int, dimension d: Int, frequency: (Int) -> Double) throws -> Matrix {
        guard d >= 2, d % 2 == 0, n > 0 else {
            throw DecoderSpecError.invalidArgument(what: "PE table \(n)×\(d)", reason: "needs n > 0 and an even d ≥ 2")
        }
        var out = Matrix(rows: n, cols: d)
        for pos in 0..<n {
            for i in 0..<(d / 2) {
                let angle = Double(pos) * frequency(i)
                out[pos, 2 * i] = Float(sin(angle))
                out[pos, 2 * i + 1] = Float(cos(angle))
            }
        }
        return out
    }

    // MARK: - 1–3 positional encoding

    /// #1 — PE added from one row to all positions.
    ///
    /// DiffPoseTalk/DiffPoseTalk issue #20: "The bugged line is: `x = x + self.pe[:, x.shape[1], :]`
    /// … leading to adding only one PE to all the input sequence elements which corresponds to
    /// position `x.shape[1]`." (correct: `self.pe[:, :x.shape[1], :]`)
    public static let peOneRowForAll = Bug(
        id: 1, name: "PE row T added to every position",
        mistake: "x = x + self.pe[:, x.shape[1], :]   # instead of self.pe[:, :x.shape[1], :]",
        citation: "DiffPoseTalk/DiffPoseTalk issue #20", concept: .positionalEncoding,
        variants: [Variant("pe[T] broadcast", mutant: .positionalAdd({ x in
            let pe = try SinusoidalPositionalEncoding(dimension: x.cols).table(count: x.rows + 1)
            var out = x
            for r in 0..<x.rows { for c in 0..<x.cols { out[r, c] += pe[x.rows, c] } }  // one row, index T
            return out
        }), correct: .positionalAdd(correctAdd))])

    /// #2 — PE frequencies with operator precedence.
    ///
    /// zju3dv/LoFTR issue #41: "`div_term = torch.exp(torch.arange(0, d_model//2, 2).float() *
    /// (-math.log(10000.0) / d_model//2))` … Should we change `(-math.log(10000.0) / d_model // 2)`
    /// to `(-math.log(10000.0) / (d_model // 2))`? Otherwise this part ends up with -1.0".
    /// Python parses `-log(10000)/d//2` as `(-log(10000)/d)//2` = −1, so ω_i = e^(−2i) instead of
    /// 10000^(−2i/d). (Transcribed for one axis: the exponent's factor is floor(−ln(10⁴)/d / 2).)
    public static let pePrecedence = Bug(
        id: 2, name: "PE frequency exponent with wrong operator precedence",
        mistake: "div_term = exp(arange(0, d, 2) * (-log(10000.0) / d_model//2))   # (-log(10000)/d)//2 = -1",
        citation: "zju3dv/LoFTR issue #41", concept: .positionalEncoding,
        variants: [Variant("-log(1e4)/d//2", mutant: .positionalTable({ n, d in
            let factor = ((-log(10000.0) / Double(d)) / 2).rounded(.down)  // Python's floor division: −1
            return try table(positions: n, dimension: d) { i in exp(Double(2 * i) * factor) }
        }), correct: .positionalTable(correctTable))])

    /// #3 — PE exponent 2i/d in integer arithmetic.
    ///
    /// Kyubyong/transformer PR #81 ("fix position encoding bug"): "the result of dividing the
    /// integer is 0." — `np.power(10000, 2*i/num_units)` under Python 2 integer division, so every
    /// frequency is 10000⁰ = 1 and all dimensions pairs rotate at the same speed.
    public static let peIntegerExponent = Bug(
        id: 3, name: "PE exponent 2i/d in integer arithmetic",
        mistake: "pos / np.power(10000, 2*i/num_units)   # Python 2: 2*i/num_units == 0",
        citation: "Kyubyong/transformer PR #81", concept: .positionalEncoding,
        variants: [Variant("2i/d integer", mutant: .positionalTable({ n, d in
            try table(positions: n, dimension: d) { i in 1 / pow(10000.0, Double((2 * i) / d)) }  // (2i)/d == 0
        }), correct: .positionalTable(correctTable))])

    // MARK: - 4–8 attention and masks

    /// #4 — attention without the 1/√d_k scale; or scaled by √d_model instead of √d_head in MHA.
    /// Common (no single thread); the spec says so by comparing with the GSL reference.
    public static let attentionScale = Bug(
        id: 4, name: "attention scale missing, or √d_model instead of √d_head",
        mistake: "scores = q @ k.T   # no / sqrt(d_k);   or scores = q_h @ k_h.T / sqrt(d_model)",
        citation: "common (spec it)", concept: .attention,
        variants: [
            Variant("no 1/√d_k", mutant: .attention({ q, k, v, mask in
                // softmax((√d·Q)·Kᵀ/√d) = softmax(Q·Kᵀ): the real kernel on Q pre-multiplied by √d_k.
                var qs = q
                let s = Float(Double(q.cols).squareRoot())
                for i in qs.storage.indices { qs.storage[i] *= s }
                return try scaledDotProductAttention(q: qs, k: k, v: v, mask: mask)
            }), correct: .attention(correctAttention)),
            Variant("MHA /√d_model", mutant: .multiHeadAttention({ q, k, v, heads, mask in
                // Scores divided by √d_model: the real per-head kernel (÷√d_head) on Q·√(d_head/d_model).
                guard heads > 0, q.cols % heads == 0 else { return try multiHeadAttention(q: q, k: k, v: v, heads: heads, mask: mask) }
                var qs = q
                let s = Float((Double(q.cols / heads) / Double(q.cols)).squareRoot())
                for i in qs.storage.indices { qs.storage[i] *= s }
                return try multiHeadAttention(q: qs, k: k, v: v, heads: heads, mask: mask)
            }), correct: .multiHeadAttention(correctMultiHead)),
        ])

    /// Visibility of key j for query i under `mask` (causal with offset, key padding), additive bias aside.
    static func visible(_ mask: AttentionMask, _ i: Int, _ j: Int) -> Bool {
        if mask.isCausal && j > i + mask.queryOffset { return false }
        if let n = mask.keyValidLength, j >= n { return false }
        return true
    }

    /// Scores S = Q·Kᵀ/√d_k + M in Float (−∞ where masked).
    static func scores(_ q: Matrix, _ k: Matrix, _ mask: AttentionMask) -> Matrix {
        var s = Matrix(rows: q.rows, cols: k.rows)
        let scale = 1 / Float(Double(q.cols).squareRoot())
        for i in 0..<q.rows {
            for j in 0..<k.rows {
                guard visible(mask, i, j) else { s[i, j] = -.infinity; continue }
                var dot: Float = 0
                for c in 0..<q.cols { dot += q[i, c] * k[j, c] }
                s[i, j] = dot * scale + (mask.additive?[i, j] ?? 0)
            }
        }
        return s
    }

    /// #5 — softmax over the wrong axis (queries instead of keys).
    ///
    /// jadore801120/attention-is-all-you-need-pytorch issue #19 ("Masking bug?"): a 1-layer model
    /// reached "98% accuracy" — "Some possibilities … include softmax over the wrong dimension and
    /// the use of the wrong kind of triangular matrix" (jekbradbury); "F.softmax has strange default
    /// behavior, normalizing over dim 0 for 3D inputs".
    public static let softmaxAxis = Bug(
        id: 5, name: "softmax over the query axis",
        mistake: "attn = F.softmax(scores, dim=0)   # or dim=1 of [B, Tq, Tk]: normalizes over queries, not keys",
        citation: "jadore801120/attention-is-all-you-need-pytorch issue #19", concept: .attention,
        variants: [Variant("softmax over queries", mutant: .attention({ q, k, v, mask in
            try validateAttentionShapes(q, k, v, mask)
            var w = scores(q, k, mask)
            for j in 0..<w.cols {  // normalize each column (over queries i) instead of each row
                var mu = -Float.infinity
                for i in 0..<w.rows where w[i, j] > mu { mu = w[i, j] }
                if mu == -.infinity { for i in 0..<w.rows { w[i, j] = 0 }; continue }
                var sum: Float = 0
                for i in 0..<w.rows { let e = expf(w[i, j] - mu); w[i, j] = e; sum += e }
                for i in 0..<w.rows { w[i, j] /= sum }
            }
            return product(w, v)
        }), correct: .attention(correctAttention))])

    static func validateAttentionShapes(_ q: Matrix, _ k: Matrix, _ v: Matrix, _ mask: AttentionMask) throws {
        guard q.cols == k.cols, k.rows == v.rows, q.rows > 0, k.rows > 0 else {
            throw DecoderSpecError.shapeMismatch(operation: "attention", expected: "q [Tq, d], k [Tk, d], v [Tk, dv]",
                                                 actual: "q \(q.shape), k \(k.shape), v \(v.shape)")
        }
        try mask.validate(queries: q.rows, keys: k.rows)
    }

    /// W·V in Float, [Tq, Tk]·[Tk, dv].
    static func product(_ w: Matrix, _ v: Matrix) -> Matrix {
        var o = Matrix(rows: w.rows, cols: v.cols)
        for i in 0..<w.rows { for j in 0..<w.cols where w[i, j] != 0 { for c in 0..<v.cols { o[i, c] += w[i, j] * v[j, c] } } }
        return o
    }

    /// Replaces a causal mask by an additive bias that masks key j for query i when `masked(i, j, offset)`.
    static func replacingCausal(_ mask: AttentionMask, queries: Int, keys: Int, masked: (Int, Int, Int) -> Bool) -> AttentionMask {
        guard mask.isCausal else { return mask }
        var bias = mask.additive ?? Matrix(rows: queries, cols: keys)
        if bias.rows != queries || bias.cols != keys { return mask }  // let the real validation report it
        for i in 0..<queries { for j in 0..<keys where masked(i, j, mask.queryOffset) { bias[i, j] = -.infinity } }
        return AttentionMask(isCausal: false, keyValidLength: mask.keyValidLength, additive: bias)
    }

    /// #6 — causal mask with the wrong triangle (the future visible) or the diagonal masked.
    ///
    /// Same thread (attention-is-all-you-need-pytorch issue #19): "the use of the wrong kind of triangular matrix". The two classic
    /// slips: masking `tril(…, −1)` (the past) instead of `triu(…, 1)` (the future), and
    /// `triu(…, 0)` (the diagonal too, so token i cannot see itself and row 0 sees nothing).
    public static let causalTriangle = Bug(
        id: 6, name: "causal mask: wrong triangle, or diagonal masked",
        mistake: "mask = torch.tril(ones(T, T), diagonal=-1)   # masks the past; or torch.triu(ones(T, T)) # masks the diagonal too",
        citation: "jadore801120/attention-is-all-you-need-pytorch issue #19", concept: .masking,
        variants: [
            Variant("past masked, future visible", mutant: .attention({ q, k, v, mask in
                let m = replacingCausal(mask, queries: q.rows, keys: k.rows) { i, j, off in j < i + off }
                return try scaledDotProductAttention(q: q, k: k, v: v, mask: m)
            }), correct: .attention(correctAttention)),
            Variant("diagonal masked", mutant: .attention({ q, k, v, mask in
                let m = replacingCausal(mask, queries: q.rows, keys: k.rows) { i, j, off in j >= i + off }
                return try scaledDotProductAttention(q: q, k: k, v: v, mask: m)
            }), correct: .attention(correctAttention)),
        ])

    /// #7 — masked softmax returning a uniform row when the valid length is 0.
    ///
    /// d2l-ai/d2l-en PR #2423: "Based on the current logic of masked_sofmax function, softmax
    /// function will return uniform probabilities rather than 0 if the valid length is 0 for a
    /// sequence." d2l fills masked scores with −1e6 (`value=-1e6`), so a row with every key masked
    /// is softmax of equal numbers: 1/Tk each, an average of padding.
    public static let uniformEmptyRow = Bug(
        id: 7, name: "fully masked row becomes uniform (mask value −1e6)",
        mistake: "X = sequence_mask(X, valid_lens, value=-1e6); softmax(X)   # valid_len 0 → uniform weights",
        citation: "d2l-ai/d2l-en PR #2423", concept: .masking,
        variants: [Variant("−1e6 fill", mutant: .attention({ q, k, v, mask in
            guard let n = mask.keyValidLength else { return try scaledDotProductAttention(q: q, k: k, v: v, mask: mask) }
            var bias = mask.additive ?? Matrix(rows: q.rows, cols: k.rows)
            if bias.rows != q.rows || bias.cols != k.rows || n > k.rows || n < 0 {
                return try scaledDotProductAttention(q: q, k: k, v: v, mask: mask)
            }
            for i in 0..<q.rows { for j in n..<k.rows { bias[i, j] += -1e6 } }
            let m = AttentionMask(isCausal: mask.isCausal, queryOffset: mask.queryOffset, keyValidLength: nil, additive: bias)
            return try scaledDotProductAttention(q: q, k: k, v: v, mask: m)
        }), correct: .attention(correctAttention))])

    /// #8 — cross-attention masked with the target padding instead of the source padding.
    /// Common (passing `tgt_key_padding_mask` where `memory_key_padding_mask` belongs); spec it.
    public static let crossAttentionPadding = Bug(
        id: 8, name: "cross-attention masked with the target padding",
        mistake: "decoder(tgt, memory, memory_key_padding_mask=tgt_padding_mask)   # should be src_padding_mask",
        citation: "common (spec it)", concept: .masking,
        variants: [Variant("target valid length on source keys", mutant: .crossAttention({ layer, target, targetValid, source, _ in
            try layer(target, memory: source, mask: .keyPadding(validLength: min(targetValid, source.rows)))
        }), correct: .crossAttention(correctCrossAttention))])

    // MARK: - 9–10 layers

    /// #9 — LayerNorm with the unbiased (n − 1) variance.
    /// Common: `torch.var`/`Tensor.std` default to the unbiased estimator, LayerNorm uses the
    /// population variance (÷ d). Spec it against gsl_stats.
    public static let unbiasedVariance = Bug(
        id: 9, name: "LayerNorm with the unbiased (n−1) variance",
        mistake: "(x - x.mean(-1)) / sqrt(x.var(-1) + eps)   # torch.var is unbiased by default: ÷(d−1)",
        citation: "common (torch.var default; spec it)", concept: .normalization,
        variants: [Variant("÷(d−1)", mutant: .layerNorm({ x, gamma, beta, eps in
            guard gamma.count == x.cols, beta.count == x.cols, x.cols > 1 else {
                throw DecoderSpecError.shapeMismatch(operation: "LayerNorm", expected: "x [T, \(gamma.count)], d > 1", actual: "x \(x.shape)")
            }
            var y = x
            let d = x.cols
            for r in 0..<x.rows {
                var mean: Float = 0
                for j in 0..<d { mean += x[r, j] }
                mean /= Float(d)
                var variance: Float = 0
                for j in 0..<d { let c = x[r, j] - mean; variance += c * c }
                variance /= Float(d - 1)  // the bug: Bessel's correction
                let inv = 1 / (variance + eps).squareRoot()
                for j in 0..<d { y[r, j] = gamma[j] * ((x[r, j] - mean) * inv) + beta[j] }
            }
            return y
        }), correct: .layerNorm(correctLayerNorm))])

    /// #10 — GELU flavour mismatch: tanh approximation where the checkpoint expects exact erf, or the reverse.
    /// Hugging Face names them `gelu` (erf, BERT) and `gelu_new` (tanh, GPT-2); loading a checkpoint
    /// with the other one runs without error and drifts by up to ~1e-3 per activation. Spec it.
    public static let geluFlavour = Bug(
        id: 10, name: "GELU tanh approximation vs exact erf swapped",
        mistake: "ACT2FN[\"gelu\"] used for a GPT-2 checkpoint (needs \"gelu_new\"), or the reverse for BERT",
        citation: "Hugging Face `gelu` vs `gelu_new` (spec it)", concept: .activation,
        variants: [
            Variant("gelu → tanh approximation", mutant: .activation({ f, x in
                applyActivation(f == .gelu ? .geluTanh : f, x)
            }), correct: .activation(correctActivation)),
            Variant("gelu_new → exact erf", mutant: .activation({ f, x in
                applyActivation(f == .geluTanh ? .gelu : f, x)
            }), correct: .activation(correctActivation)),
        ])

    // MARK: - 11–12 KV cache

    /// One cached step of `model` with the new tokens' positions starting at `positionStart`
    /// (the body of `DecoderOnlyModel.logits(appending:to:)` with the position made explicit).
    static func cachedStep(_ model: DecoderOnlyModel, _ tokens: [Int], _ cache: inout KVCache, positionStart: Int) throws -> [Float] {
        var h = try model.embedded(tokens, startingAt: positionStart)
        for l in model.layers.indices { h = try model.layers[l](h, cache: &cache.layers[l], path: model.path) }
        let last = try model.finalNorm(h.rows((h.rows - 1)..<h.rows), path: model.path)
        return try model.tokenEmbedding.tiedLogits(last, path: model.path).storage
    }

    /// #11 — KV cache: position ids not offset by the cached length.
    ///
    /// huggingface/transformers PR #15751: "The `create_position_ids_from_inputs_embeds` method does
    /// not use the `past_key_values_length` when creating `input_ids`, which creates issues in
    /// generation when `use_cache=True`." Every new token gets position 0 (or 0..<n).
    public static let cachePositionsNotOffset = Bug(
        id: 11, name: "KV cache: position ids not offset by the cached length",
        mistake: "position_ids = arange(0, seq_len)   # should be arange(past_len, past_len + seq_len)",
        citation: "huggingface/transformers PR #15751", concept: .kvCache,
        variants: [Variant("positions from 0 every step", mutant: .cachedDecoder({ model, chunks in
            var cache = model.makeCache()
            return try chunks.map { try cachedStep(model, $0, &cache, positionStart: 0) }
        }), correct: .cachedDecoder(correctCachedDecoder))])

    /// #12 — KV cache: offset advanced by the prompt length again after the first step.
    ///
    /// skyzh/tiny-llm PR #46: "the offset was incorrectly incremented using tokens.size after the
    /// first decoding step … (note the jump from 6 → 12 in the first step)". The first generated
    /// token is placed right, every later one L − 1 positions too far.
    public static let cacheOffsetTwice = Bug(
        id: 12, name: "KV cache: offset advanced by the prompt length again",
        mistake: "offset += tokens.size   # tokens still holds the prompt after the first decoding step",
        citation: "skyzh/tiny-llm PR #46", concept: .kvCache,
        variants: [Variant("offset += prompt length at step 1", mutant: .cachedDecoder({ model, chunks in
            var cache = model.makeCache()
            var offset = 0
            var out: [[Float]] = []
            let promptLength = chunks.first?.count ?? 0
            for (step, chunk) in chunks.enumerated() {
                out.append(try cachedStep(model, chunk, &cache, positionStart: offset))
                offset += step == 1 ? promptLength : chunk.count  // the bug: the prompt's size again
            }
            return out
        }), correct: .cachedDecoder(correctCachedDecoder))])

    // MARK: - 13–15 sampling

    /// Temperature and top-k by the real filter, then `nucleus` applied to the resulting distribution.
    static func withNucleus(_ logits: [Float], _ config: SamplingConfig, applyAtOne: Bool = false,
                            _ nucleus: ([Double], [Int], Double) -> [Double]) throws -> [Double] {
        var base = config
        base.topP = nil
        let p = try LogitsFilter.distribution(logits, base)
        guard let topP = config.topP, config.temperature > 0, topP < 1 || applyAtOne else {
            return try LogitsFilter.distribution(logits, config)
        }
        let order = p.indices.sorted { p[$0] != p[$1] ? p[$0] > p[$1] : $0 < $1 }
        return nucleus(p, order, Double(topP))
    }

    static func renormalized(_ p: [Double]) -> [Double] {
        let s = p.reduce(0, +)
        return p.map { $0 / s }  // 0/0 = NaN for an empty nucleus, as the buggy code would produce
    }

    /// #13 — top-p dropping the token that crosses the threshold.
    ///
    /// rasbt/reasoning-from-scratch issue #164: "uses cumprobas <= top_p to determine which tokens
    /// to keep … Given probabilities [0.5, 0.41, 0.09] with top_p=0.9: Current behavior: Only keeps
    /// first token". Biohub/esm PR #360: "`top_p_mask = cumsum_logits <= top_p` … drops the token
    /// that *crosses* the threshold, so the kept set's cumulative mass is always strictly below top_p".
    public static let nucleusDropsCrossing = Bug(
        id: 13, name: "top-p drops the token that crosses the threshold",
        mistake: "keep = cumsum(sorted_probs) <= top_p   # should be (cumsum - probs) < top_p",
        citation: "rasbt/reasoning-from-scratch issue #164; Biohub/esm PR #360", concept: .sampling,
        variants: [Variant("cumsum <= p", mutant: .samplingFilter({ logits, config in
            try withNucleus(logits, config) { p, order, topP in
                var out = [Double](repeating: 0, count: p.count)
                var cumulative = 0.0
                for id in order {
                    cumulative += p[id]
                    if cumulative <= topP { out[id] = p[id] }
                }
                if !out.contains(where: { $0 > 0 }) { out[order[0]] = p[order[0]] }  // the "at least one" guard
                return renormalized(out)
            }
        }), correct: .samplingFilter(correctSampling))])

    /// #14 — top-p = 0 giving an empty nucleus; top-p = 1 collapsing to argmax.
    ///
    /// google-deepmind/simply PR #42: "`top_p=0` created an empty candidate mask … The fallback
    /// logits could then select token 0 even when it was not the argmax". BlinkDL/ChatRWKV PR #170:
    /// "When top_p = 1, `np.argmax(cumulative_probs > top_p)` will unexpectly be 0 (so the token with
    /// the largest logit will always be selected) because `cumulative_probs > top_p` is all False".
    public static let nucleusEdges = Bug(
        id: 14, name: "top-p edge values: p = 0 empty, p = 1 argmax",
        mistake: "mask = (cumsum - probs) < top_p   # empty when top_p = 0;  cutoff = sorted[argmax(cumsum > top_p)]  # index 0 when top_p = 1",
        citation: "google-deepmind/simply PR #42; BlinkDL/ChatRWKV PR #170", concept: .sampling,
        variants: [
            Variant("p = 0 → empty mask", mutant: .samplingFilter({ logits, config in
                try withNucleus(logits, config) { p, order, topP in
                    var keep = [Bool](repeating: false, count: p.count)
                    var before = 0.0
                    for id in order { keep[id] = before < topP; before += p[id] }
                    // No "keep the argmax" guard: with nothing kept every logit is the same fill value,
                    // so the draw is uniform over the vocabulary.
                    if !keep.contains(true) { return [Double](repeating: 1 / Double(p.count), count: p.count) }
                    return renormalized(p.indices.map { keep[$0] ? p[$0] : 0 })
                }
            }), correct: .samplingFilter(correctSampling)),
            Variant("p = 1 → argmax (ChatRWKV cutoff)", mutant: .samplingFilter({ logits, config in
                try withNucleus(logits, config, applyAtOne: true) { p, order, topP in
                    var cumulative = 0.0
                    var first = 0  // np.argmax of an all-False array is 0
                    for (rank, id) in order.enumerated() {
                        cumulative += p[id]
                        if cumulative > topP { first = rank; break }
                    }
                    let cutoff = p[order[first]]
                    return renormalized(p.map { $0 < cutoff ? 0 : $0 })
                }
            }), correct: .samplingFilter(correctSampling)),
        ])

    /// #15 — top-k off by one (k + 1 tokens kept).
    ///
    /// kingoflolz/mesh-transformer-jax issue #164 ("top-k sampling off by 1 bug"): with `top_k=1`
    /// two logits survive; fix: "`jnp.where(indices_range > top_k, …)` → `jnp.where(indices_range >= top_k, …)`".
    public static let topKOffByOne = Bug(
        id: 15, name: "top-k keeps k+1 tokens",
        mistake: "sorted_indices_to_remove = jnp.where(indices_range > top_k, sorted_indices, 0)   # should be >=",
        citation: "kingoflolz/mesh-transformer-jax issue #164", concept: .sampling,
        variants: [Variant("> k instead of >= k", mutant: .samplingFilter({ logits, config in
            var c = config
            if let k = c.topK { c.topK = k + 1 }  // ranks 0…k survive: k + 1 tokens
            return try LogitsFilter.distribution(logits, c)
        }), correct: .samplingFilter(correctSampling))])

    /// #19 — top-p threshold read the wrong way round (the kept mass is 1 − p).
    ///
    /// lucidrains/routing-transformer issue #1 ("top_p returns wrong values and re-orders the
    /// data"): "It defines the threshold in the opposite way as top_k. So setting `thres=0.9`
    /// results in everything being returned until a cumulative probability of 0.1 is reached."
    /// Added to the original 18 bugs as found along the way.
    public static let nucleusThresholdInverted = Bug(
        id: 19, name: "top-p threshold inverted (keeps mass 1 − p)",
        mistake: "sorted_indices_to_remove = cum_probs > (1 - thres)   # thres = 0.9 keeps only the top 10% of the mass",
        citation: "lucidrains/routing-transformer issue #1", concept: .sampling,
        variants: [Variant("p read as 1 − p", mutant: .samplingFilter({ logits, config in
            var c = config
            if let p = c.topP { c.topP = 1 - p }
            return try LogitsFilter.distribution(logits, c)
        }), correct: .samplingFilter(correctSampling))])

    // MARK: - 20–21 beam search

    /// A transcription of `BeamSearch.run` (Sources/Decoding/BeamSearch.swift) through the public API,
    /// with the length |y| of the score s = log p / |y|^α given by `scoredLength(newTokens, promptLength,
    /// maxLength)`; `{ n, _, _ in n }` is the library's rule.
    static func beamSearch<M: AutoregressiveModel>(_ model: M, prompt: [Int], beam: BeamConfig, config: GenerationConfig,
                                                   scoredLength: (Int, Int, Int) -> Int) throws -> Generation {
        // `Generation` has no public initializer: a one-token greedy run (which also validates the
        // input as the library does) supplies one whose fields are overwritten at the end.
        var result = try Generator.generate(model, prompt: prompt, strategy: .greedy, config: GenerationConfig(maxNewTokens: 1))
        typealias Hypothesis = (tokens: [Int], logProbability: Double, cache: M.Cache, lastLogits: [Float])
        let maxNew = min(config.maxNewTokens, model.contextLength - prompt.count)
        func normalized(_ logProbability: Double, _ length: Int) -> Double {
            beam.lengthPenalty == 0 ? logProbability
                : logProbability / pow(Double(scoredLength(length, prompt.count, maxNew)), beam.lengthPenalty)
        }
        var cache = model.makeCache()
        let firstLogits = try model.logits(appending: prompt, to: &cache)
        var live: [Hypothesis] = [([], 0, cache, firstLogits)]
        var finished: [(tokens: [Int], logProbability: Double, score: Double, reason: Generation.FinishReason)] = []
        for step in 1...maxNew {
            var candidates: [(beam: Int, token: Int, logProbability: Double)] = []
            for (b, h) in live.enumerated() {
                for (t, lp) in LogitsFilter.logSoftmax(h.lastLogits).enumerated() where lp > -.infinity {
                    candidates.append((b, t, h.logProbability + lp))
                }
            }
            candidates.sort {
                $0.logProbability != $1.logProbability ? $0.logProbability > $1.logProbability
                    : ($0.beam != $1.beam ? $0.beam < $1.beam : $0.token < $1.token)
            }
            var next: [Hypothesis] = []
            for (rank, c) in candidates.enumerated() {
                if next.count == beam.width { break }
                let tokens = live[c.beam].tokens + [c.token]
                if config.stopTokens.contains(c.token) {
                    if rank < beam.width { finished.append((tokens, c.logProbability, normalized(c.logProbability, tokens.count), .stopToken)) }
                    continue
                }
                var h = live[c.beam]
                h.tokens = tokens
                h.logProbability = c.logProbability
                if step < maxNew { h.lastLogits = try model.logits(appending: [c.token], to: &h.cache) }
                next.append(h)
            }
            live = next
            finished.sort { $0.score > $1.score }
            if finished.count > beam.width { finished.removeLast(finished.count - beam.width) }
            if live.isEmpty { break }
            if finished.count == beam.width, normalized(live[0].logProbability, step) <= finished[finished.count - 1].score { break }
        }
        let outOfRoom: Generation.FinishReason = maxNew == config.maxNewTokens ? .maxNewTokens : .contextFull
        for h in live { finished.append((h.tokens, h.logProbability, normalized(h.logProbability, h.tokens.count), outOfRoom)) }
        let best = finished.enumerated().max { a, b in
            a.element.score != b.element.score ? a.element.score < b.element.score : a.offset > b.offset
        }!.element
        (result.tokens, result.finishReason, result.logProbability) = (best.tokens, best.reason, best.logProbability)
        return result
    }

    /// #20 — the length penalty divides by the wrong length: the prompt counted, or one length for all.
    ///
    /// vllm-project/vllm issue #2606 ("Beam Search Length Normalization Wrong"): "seems to incorrectly
    /// include the prompt length in the sequence length when calculating the beam score … I was
    /// surprised that a short sequence was being returned as the best choice when the second option was
    /// much much longer and only had a slightly smaller logprob". OpenNMT/OpenNMT-tf PR #456 ("fix
    /// beam_search length penalty bug"): `scores /= tf.pow(((5. + tf.cast(step + 1, tf.float32)) / 6.),
    /// self.length_penalty)` divides every hypothesis by the same step's penalty, so "length_penalty only
    /// affects the absolute value, not relative value" — α has no effect on the ranking.
    public static let beamLengthPenaltyWrongLength = Bug(
        id: 20, name: "beam length penalty on the wrong length (prompt counted; one length for all)",
        mistake: "score = cum_logprob / (len(prompt) + len(output)) ** length_penalty;   scores /= lp(step)   # same length for every hypothesis",
        citation: "vllm-project/vllm issue #2606; OpenNMT/OpenNMT-tf PR #456", concept: .beamSearch,
        variants: [
            Variant("length + prompt length", mutant: .beamSearch({ model, prompt, beam, config in
                try beamSearch(model, prompt: prompt, beam: beam, config: config) { n, promptLength, _ in n + promptLength }
            }), correct: .beamSearch(correctBeamSearch)),
            Variant("one length (the last step's) for every hypothesis", mutant: .beamSearch({ model, prompt, beam, config in
                try beamSearch(model, prompt: prompt, beam: beam, config: config) { _, _, maxLength in maxLength }
            }), correct: .beamSearch(correctBeamSearch)),
        ])

    /// #21 — a stop (EOS) token that does not finish a hypothesis.
    ///
    /// jarobyte91/pytorch_beam_search issue #5 ("Length Penalty with Beam Search"): the implementation
    /// does not "terminate a beam when the EOS token is predicted by the language model" (kept "to keep
    /// the functions vectorized"). Every beam runs to the maximum length and is ranked as a whole; the
    /// text is cut at its first EOS afterwards — so the ranking scores tokens after the stop.
    public static let beamStopDoesNotFinish = Bug(
        id: 21, name: "beam search: a stop token does not finish the hypothesis",
        mistake: "beams keep extending after EOS; the winner (ranked on its full length) is cut at its first EOS",
        citation: "jarobyte91/pytorch_beam_search issue #5", concept: .beamSearch,
        variants: [Variant("EOS ignored, output cut after it", mutant: .beamSearch({ model, prompt, beam, config in
            var free = config
            free.stopTokens = []
            var g = try Generator.generate(model, prompt: prompt, strategy: .beam(beam), config: free)
            guard let first = g.tokens.firstIndex(where: config.stopTokens.contains) else { return g }
            g.tokens = Array(g.tokens[...first])
            g.finishReason = .stopToken
            g.logProbability = 0
            var sequence = prompt
            for t in g.tokens {  // the log p of what is returned, so only the choice is wrong
                g.logProbability += LogitsFilter.logSoftmax(try model.logits(forSequence: sequence))[t]
                sequence.append(t)
            }
            return g
        }), correct: .beamSearch(correctBeamSearch))])

    // MARK: - 16–17 training (the Training module's AdamW and CrossEntropyLoss)

    /// One tensor of parameters, so `AdamW.update` can run on a plain vector. Its shape [1, n] is a
    /// matrix, so AdamW's rank rule weight-decays it.
    struct ParameterVector: ParameterContainer {
        var values: [Float]
        mutating func visitParameters(prefix: String, _ body: (String, [Int], inout [Float]) throws -> Void) rethrows {
            try body(prefix + "weight", [1, values.count], &values)
        }
    }

    /// One update of θ by gradient g with an optimizer made from the hyper-parameters h.
    typealias AdamStep = @Sendable (_ optimizer: inout AdamW, _ theta: inout ParameterVector, _ g: ParameterVector, _ h: AdamHyperparameters) -> Void

    /// T steps of `Training.AdamW` — or of a mistake built on it (`weightDecay` is what the
    /// optimizer is given, `step` what one update does) — on θ₀ (Float inside, Double at the boundary).
    static func trainingAdam(weightDecay: @escaping @Sendable (AdamHyperparameters) -> Double = { $0.weightDecay },
                             step: @escaping AdamStep = { o, theta, g, h in o.update(&theta, gradient: g, learningRate: h.learningRate) })
        -> OptimizerFunction
    {
        return { theta, gradients, h in
            var optimizer = try AdamW(beta1: h.beta1, beta2: h.beta2, epsilon: h.epsilon, weightDecay: weightDecay(h))
            var model = ParameterVector(values: theta.map(Float.init))
            for (t, g) in gradients.enumerated() {
                guard g.count == theta.count else {
                    throw DecoderSpecError.shapeMismatch(operation: "AdamW step \(t + 1)", expected: "gradient of \(theta.count) values", actual: "\(g.count)")
                }
                step(&optimizer, &model, ParameterVector(values: g.map(Float.init)), h)
            }
            return model.values.map(Double.init)
        }
    }

    /// Adam without bias correction, on the real `AdamW`: before each update the optimizer is told it
    /// has already taken 10⁶ steps, so β₁ᵗ and β₂ᵗ underflow to 0 and 1/(1 − βᵗ) is exactly 1 —
    /// m̂ = m, v̂ = v. Decoupled decay is untouched.
    static let adamWithoutBiasCorrection: OptimizerFunction = trainingAdam(step: { o, theta, g, h in
        o.restore(step: 1_000_000, m: o.m, v: o.v)
        o.update(&theta, gradient: g, learningRate: h.learningRate)
    })

    /// Adam + L2 (coupled), on the real `AdamW`: the optimizer's decoupled decay is off (λ = 0) and
    /// λθ is added to the gradient instead, where Adam's 1/(√v̂ + ε) rescales it.
    static let adamCoupledL2: OptimizerFunction = trainingAdam(weightDecay: { _ in 0 }, step: { o, theta, g, h in
        let lambda = Float(h.weightDecay)
        let coupled = ParameterVector(values: zip(g.values, theta.values).map { $0 + lambda * $1 })
        o.update(&theta, gradient: coupled, learningRate: h.learningRate)
    })

    /// #16 — Adam without bias correction; weight decay coupled into the gradient (Adam + L2, not AdamW).
    /// Loshchilov & Hutter, "Decoupled Weight Decay Regularization" (ICLR 2019): L2 regularization
    /// added to the gradient is rescaled by Adam's 1/(√v̂ + ε) and is not weight decay; AdamW
    /// subtracts η·λ·θ directly. Kingma & Ba's bias correction m̂ = m/(1 − β₁ᵗ) is the other slip.
    /// Both mutants are built on `Training.AdamW`, which has one update rule (the correct one).
    public static let adamMistakes = Bug(
        id: 16, name: "Adam without bias correction; L2 in the gradient instead of decoupled decay",
        mistake: "m_hat = m; v_hat = v   # no /(1 - beta**t);   g = g + wd * theta   # Adam+L2, not AdamW",
        citation: "Loshchilov & Hutter, \"Decoupled Weight Decay Regularization\"", concept: .optimizer,
        variants: [
            Variant("no bias correction", mutant: .optimizer(adamWithoutBiasCorrection), correct: .optimizer(correctOptimizer)),
            Variant("Adam + L2 (coupled)", mutant: .optimizer(adamCoupledL2), correct: .optimizer(correctOptimizer)),
        ])

    /// −(1/C) Σ_c log softmax(z)_c of row i, in Double: the label-smoothing term of one row.
    static func smoothingTerm(_ logits: Matrix, row i: Int) -> Double {
        let z = logits.row(i).map(Double.init)
        let mu = z.max()!
        let logZ = mu + log(z.reduce(0) { $0 + exp($1 - mu) })
        return -z.reduce(0) { $0 + ($1 - logZ) } / Double(z.count)
    }

    /// #17 — label smoothing or the loss applied to padding / ignored positions. Common; spec it.
    /// (fairseq's `label_smoothed_nll_loss` masks both `nll_loss` and `smooth_loss` with the pad
    /// mask; forgetting the second, or dividing by every position, is the classic slip.) Both
    /// mutants wrap the real `CrossEntropyLoss` and add the mistake on top.
    public static let lossOnIgnored = Bug(
        id: 17, name: "loss / label smoothing on ignored (padding) positions",
        mistake: "nll_loss.masked_fill_(pad_mask, 0)   # smooth_loss not masked;  or loss.sum() / num_positions (padding counted)",
        citation: "common (spec it)", concept: .loss,
        variants: [
            Variant("smoothing on ignored rows", mutant: .loss({ z, t, ignore, eps in
                let (loss, _, n) = try CrossEntropyLoss(ignoreIndex: ignore, labelSmoothing: Float(eps))(logits: z, targets: t)
                guard n > 0 else { return loss }
                // ε·smooth of every ignored row added to the sum (the pad mask forgotten for smooth_loss).
                let leaked = t.indices.filter { t[$0] == ignore }.reduce(0.0) { $0 + eps * smoothingTerm(z, row: $1) }
                return loss + leaked / Double(n)
            }), correct: .loss(correctLoss)),
            Variant("mean over all rows", mutant: .loss({ z, t, ignore, eps in
                let (loss, _, n) = try CrossEntropyLoss(ignoreIndex: ignore, labelSmoothing: Float(eps))(logits: z, targets: t)
                return loss * Double(n) / Double(max(t.count, 1))  // divided by every position, padding included
            }), correct: .loss(correctLoss)),
        ])

    // MARK: - 18 metrics

    /// #18 — BLEU brevity penalty per sentence instead of per corpus; entity F1 counting `O`.
    /// sacreBLEU's corpus BLEU sums hypothesis and reference lengths over the corpus before
    /// BP = exp(1 − r/c); conlleval scores chunks (entities), never the `O` tag.
    public static let metricMistakes = Bug(
        id: 18, name: "sentence-level brevity penalty; F1 counting O",
        mistake: "mean(BP(sentence))   # BP is corpus-level;   f1_score(flat_gold, flat_pred, average='micro')   # counts O",
        citation: "sacreBLEU / conlleval definitions", concept: .metrics,
        variants: [
            Variant("BP per sentence", mutant: .bleu({ h, r in
                let pooled = try BLEU.corpus(hypotheses: h, references: [r])
                var bps: [Double] = []
                for (hyp, ref) in zip(h, r) { bps.append(try BLEU.corpus(hypotheses: [hyp], references: [[ref]]).brevityPenalty) }
                let meanBP = bps.reduce(0, +) / Double(max(bps.count, 1))
                return pooled.brevityPenalty == 0 ? 0 : pooled.score / pooled.brevityPenalty * meanBP
            }), correct: .bleu(correctBLEU)),
            Variant("token-level F1 incl. O", mutant: .entityF1({ g, p in
                TokenLevelScores.microF1IncludingO(gold: g, predicted: p)
            }), correct: .entityF1(correctEntityF1)),
        ])
}
