// The whole data flow of docs/architecture.md, written once from the formulas, in Double, reading
// every weight by name from a checkpoint dictionary: GPT-2 (pre-norm, learned positions, Conv1D
// [in, out] weights, tied head), BERT (post-norm, token types, mean pooling), a token-classification
// head, and the original encoder-decoder (sinusoidal PE, √d-scaled embeddings, cross-attention,
// either norm placement, final norms, tied head). Nothing here calls library code.
import GSLOracle

/// LayerNorm before each sublayer (x + f(LN x)) or after the residual (LN(x + f(x))).
public enum ReferencePlacement: String, Sendable { case pre, post }

/// Hyperparameters the weights' shapes do not tell.
public struct ReferenceHyper: Sendable {
    public var heads: Int
    public var epsilon: Double
    public var activation: ReferenceActivation
    public var placement: ReferencePlacement
    public init(heads: Int, epsilon: Double, activation: ReferenceActivation, placement: ReferencePlacement) {
        (self.heads, self.epsilon, self.activation, self.placement) = (heads, epsilon, activation, placement)
    }
}

public enum Reference {
    // MARK: The bound

    /// Perturbed runs per estimate (the default), and the confidence level of the upper bound on each σ.
    public static let defaultRuns = 24
    public static let sigmaConfidence = 1e-6

    /// Runs `forward` exactly and `runs` times under Monte Carlo arithmetic, and returns each output's
    /// exact values with bound_i = 5·σ_i⁺: σ̂_i is the RMS deviation of the perturbed runs from the exact
    /// one (N = `runs` degrees of freedom), σ_i⁺ = σ̂_i·√(N / χ²_N(10⁻⁶)) the one-sided 1 − 10⁻⁶ upper
    /// confidence bound on σ_i, and 5σ the statistical rung of docs/tolerances.md.
    public static func estimate(runs: Int = defaultRuns, seed: UInt = 0x5EED, _ forward: (Arithmetic) throws -> [Matrix64]) throws -> [Tracked] {
        let recorder = Arithmetic()
        let exact = try forward(recorder)
        var squares = exact.map { [Double](repeating: 0, count: $0.values.count) }
        let noise = GSLRandom(seed: seed)
        for _ in 0..<runs {
            let perturbed = try forward(Arithmetic(replaying: recorder, noise: noise))
            for (o, out) in perturbed.enumerated() {
                for i in out.values.indices {
                    let deviation = out.values[i] - exact[o].values[i]
                    squares[o][i] += deviation * deviation
                }
            }
        }
        let n = Double(runs)
        let factor = 5 * (n / GSL.chiSquareQuantile(sigmaConfidence, degreesOfFreedom: n)).squareRoot()
        return exact.indices.map { o in
            Tracked(rows: exact[o].rows, cols: exact[o].cols, values: exact[o].values,
                    bounds: squares[o].map { factor * ($0 / n).squareRoot() })
        }
    }

    // MARK: Shared pieces

    static func norm(_ a: Arithmetic, _ w: Checkpoint, _ base: String, _ x: Matrix64, _ epsilon: Double) throws -> Matrix64 {
        let (g, b) = w["\(base).weight"] != nil ? ("weight", "bias") : ("gamma", "beta")
        return try a.layerNorm(x, gamma: w.tensor("\(base).\(g)", [x.cols]), beta: w.tensor("\(base).\(b)", [x.cols]), epsilon: epsilon)
    }

    static func dense(_ a: Arithmetic, _ w: Checkpoint, _ base: String, _ x: Matrix64) throws -> Matrix64 {
        try a.linear(x, weight: w.tensor("\(base).weight"), bias: w.tensor("\(base).bias"))
    }

    /// x + f(LN x) (pre) or LN(x + f(x)) (post); the residual add rounds once (a = u|x + f|).
    static func residual(_ a: Arithmetic, _ x: Matrix64, _ placement: ReferencePlacement, norm: (Matrix64) throws -> Matrix64,
                         _ f: (Matrix64) throws -> Matrix64) throws -> Matrix64 {
        switch placement {
        case .pre: return a.sum([x, try f(try norm(x))])
        case .post: return try norm(a.sum([x, try f(x)]))
        }
    }

    /// BERT-named attention block `base` (`…attention` or `…crossattention`): `self.query/key/value`,
    /// multi-head attention, `output.dense`.
    static func attentionBlock(_ a: Arithmetic, _ w: Checkpoint, _ base: String, x: Matrix64, memory: Matrix64, heads: Int,
                               causal: Bool, keyValidLength: Int? = nil) throws -> Matrix64 {
        let mixed = try a.attention(q: dense(a, w, "\(base).self.query", x), k: dense(a, w, "\(base).self.key", memory),
                                    v: dense(a, w, "\(base).self.value", memory), heads: heads, causal: causal, keyValidLength: keyValidLength)
        return try dense(a, w, "\(base).output.dense", mixed)
    }

    /// One BERT-named layer `p` (`encoder.layer.0`, `decoder.layers.1`, …): self-attention, optional
    /// cross-attention over `memory`, FFN `intermediate.dense` → act → `output.dense`, each residual with
    /// its LayerNorm (`attention.output.LayerNorm`, `crossattention.output.LayerNorm`, `output.LayerNorm`).
    static func layer(_ a: Arithmetic, _ w: Checkpoint, _ p: String, _ x: Matrix64, hyper: ReferenceHyper, causal: Bool,
                      memory: Matrix64? = nil, validLength: Int? = nil) throws -> Matrix64 {
        var h = try residual(a, x, hyper.placement, norm: { try norm(a, w, "\(p).attention.output.LayerNorm", $0, hyper.epsilon) }) {
            try attentionBlock(a, w, "\(p).attention", x: $0, memory: $0, heads: hyper.heads, causal: causal, keyValidLength: validLength)
        }
        if let memory {
            h = try residual(a, h, hyper.placement, norm: { try norm(a, w, "\(p).crossattention.output.LayerNorm", $0, hyper.epsilon) }) {
                try attentionBlock(a, w, "\(p).crossattention", x: $0, memory: memory, heads: hyper.heads, causal: false)
            }
        }
        return try residual(a, h, hyper.placement, norm: { try norm(a, w, "\(p).output.LayerNorm", $0, hyper.epsilon) }) {
            try dense(a, w, "\(p).output.dense", a.activation(dense(a, w, "\(p).intermediate.dense", $0), hyper.activation))
        }
    }

    /// How many layers `prefix.0`, `prefix.1`, … the checkpoint holds (probed by `probe`).
    static func layerCount(_ w: Checkpoint, _ prefix: String, probe: String) -> Int {
        var n = 0
        while w["\(prefix).\(n).\(probe)"] != nil { n += 1 }
        return n
    }

    static func stripping(_ prefix: String, _ w: Checkpoint) -> Checkpoint {
        Dictionary(uniqueKeysWithValues: w.map { ($0.key.hasPrefix(prefix) ? String($0.key.dropFirst(prefix.count)) : $0.key, $0.value) })
    }

    // MARK: GPT-2

    /// GPT-2's logits [T, V] (names of a GPT-2 checkpoint, `h.0.attn.c_attn.weight`, …, optional
    /// "transformer." prefix; Conv1D weights [in, out]):
    ///
    ///     h⁰ = wte[ids] + wpe[0..<T];  h ← h + attn(ln_1 h);  h ← h + mlp(ln_2 h)   (each layer)
    ///     attn: [q k v] = a·c_attn + b, causal multi-head attention, ·c_proj + b;  mlp: act(m·c_fc + b)·c_proj + b
    ///     logits = ln_f(h^L)·wteᵀ
    public static func gpt2(_ a: Arithmetic, _ checkpoint: Checkpoint, hyper: ReferenceHyper, ids: [Int]) throws -> Matrix64 {
        let w = checkpoint["wte.weight"] != nil ? checkpoint : stripping("transformer.", checkpoint)
        let (wte, wpe) = (try w.tensor("wte.weight"), try w.tensor("wpe.weight"))
        let d = wte.shape[1]
        guard ids.count <= wpe.shape[0] else { throw ReferenceError("reference: \(ids.count) ids for \(wpe.shape[0]) positions") }
        func conv(_ base: String, _ x: Matrix64) throws -> Matrix64 {
            try a.linear(x, weight: w.tensor("\(base).weight"), bias: w.tensor("\(base).bias"), inOut: true)
        }
        var h = a.sum([try a.gather(wte, ids, name: "wte"), try a.gather(wpe, Array(0..<ids.count), name: "wpe")])
        for l in 0..<layerCount(w, "h", probe: "ln_1.weight") {
            let p = "h.\(l)"
            h = try residual(a, h, .pre, norm: { try norm(a, w, "\(p).ln_1", $0, hyper.epsilon) }) { x in
                let qkv = try conv("\(p).attn.c_attn", x)
                let mixed = try a.attention(q: qkv.columns(0, d), k: qkv.columns(d, d), v: qkv.columns(2 * d, d), heads: hyper.heads, causal: true)
                return try conv("\(p).attn.c_proj", mixed)
            }
            h = try residual(a, h, .pre, norm: { try norm(a, w, "\(p).ln_2", $0, hyper.epsilon) }) { x in
                try conv("\(p).mlp.c_proj", a.activation(conv("\(p).mlp.c_fc", x), hyper.activation))
            }
        }
        return try a.linear(norm(a, w, "ln_f", h, hyper.epsilon), weight: wte, bias: nil)
    }

    public static func gpt2Logits(_ checkpoint: Checkpoint, hyper: ReferenceHyper, ids: [Int]) throws -> Tracked {
        try estimate { a in [try gpt2(a, checkpoint, hyper: hyper, ids: ids)] }[0]
    }

    // MARK: BERT and heads on it

    /// BERT's last hidden states [T, d] (names of a BERT checkpoint, optional "bert." prefix):
    ///
    ///     h⁰ = LN_emb(E_word[ids] + E_pos[0..<T] + E_type[types]);  h ← LN(h + attn(h)); h ← LN(h + FFN(h))
    ///
    /// `validLength`: keys at positions ≥ it are padding, masked in every self-attention.
    public static func bert(_ a: Arithmetic, _ checkpoint: Checkpoint, hyper: ReferenceHyper, ids: [Int], tokenTypes: [Int]? = nil,
                            validLength: Int? = nil) throws -> Matrix64 {
        try bertLayerStates(a, checkpoint, hyper: hyper, ids: ids, tokenTypes: tokenTypes, validLength: validLength).last!
    }

    /// As `bert`, every state: [h⁰ (the embedding LayerNorm's output), h¹, …, h^L].
    public static func bertLayerStates(_ a: Arithmetic, _ checkpoint: Checkpoint, hyper: ReferenceHyper, ids: [Int], tokenTypes: [Int]? = nil,
                                       validLength: Int? = nil) throws -> [Matrix64] {
        let w = checkpoint["embeddings.word_embeddings.weight"] != nil ? checkpoint : stripping("bert.", checkpoint)
        let x = a.sum([try a.gather(w.tensor("embeddings.word_embeddings.weight"), ids, name: "word embeddings"),
                       try a.gather(w.tensor("embeddings.position_embeddings.weight"), Array(0..<ids.count), name: "position embeddings"),
                       try a.gather(w.tensor("embeddings.token_type_embeddings.weight"), tokenTypes ?? ids.map { _ in 0 }, name: "token types")])
        var states = [try norm(a, w, "embeddings.LayerNorm", x, hyper.epsilon)]
        var post = hyper
        post.placement = .post
        for l in 0..<layerCount(w, "encoder.layer", probe: "attention.self.query.weight") {
            states.append(try layer(a, w, "encoder.layer.\(l)", states[states.count - 1], hyper: post, causal: false, validLength: validLength))
        }
        return states
    }

    /// BERT's hidden states [T, d] and sentence-transformers' sentence embedding [1, d] (mean over
    /// positions, unit L2 norm).
    public static func bertOutputs(_ checkpoint: Checkpoint, hyper: ReferenceHyper, ids: [Int], tokenTypes: [Int]? = nil,
                                   runs: Int = defaultRuns) throws -> (hidden: Tracked, sentenceEmbedding: Tracked)
    {
        let r = try estimate(runs: runs) { a in
            let h = try bert(a, checkpoint, hyper: hyper, ids: ids, tokenTypes: tokenTypes)
            return [h, a.meanPooledUnit(h)]
        }
        return (r[0], r[1])
    }

    /// A token-classification head on BERT: logits = H·Wᵀ + b with `classifier.weight` [n_labels, d].
    public static func classifierLogits(_ checkpoint: Checkpoint, hyper: ReferenceHyper, ids: [Int]) throws -> Tracked {
        try estimate { a in
            [try dense(a, checkpoint, "classifier", bert(a, checkpoint, hyper: hyper, ids: ids))]
        }[0]
    }

    // MARK: Encoder-decoder ("Attention Is All You Need")

    /// memory = LN_enc(Encoder(E_src[x]·√d + PE)) [S, d]; names `encoder.embed_tokens.weight`,
    /// `encoder.layers.i.*` (BERT layer names), `encoder.layer_norm`.
    public static func encode(_ a: Arithmetic, _ w: Checkpoint, hyper: ReferenceHyper, source: [Int]) throws -> Matrix64 {
        let table = try w.tensor("encoder.embed_tokens.weight")
        let d = table.shape[1]
        var h = a.sum([a.scaled(try a.gather(table, source, name: "source embeddings"), by: Double(d).squareRoot()),
                       try a.sinusoidal(count: source.count, d: d)])
        for l in 0..<layerCount(w, "encoder.layers", probe: "attention.self.query.weight") {
            h = try layer(a, w, "encoder.layers.\(l)", h, hyper: hyper, causal: false)
        }
        return try norm(a, w, "encoder.layer_norm", h, hyper.epsilon)
    }

    /// Teacher-forced logits [T, V_tgt] = LN_dec(Decoder(E_tgt[y]·√d + PE, memory))·E_tgtᵀ, decoder
    /// layers causal with cross-attention; names `decoder.embed_tokens.weight`, `decoder.layers.i.*`
    /// (+ `crossattention.*`), `decoder.layer_norm`.
    public static func decode(_ a: Arithmetic, _ w: Checkpoint, hyper: ReferenceHyper, memory: Matrix64, target: [Int]) throws -> Matrix64 {
        let table = try w.tensor("decoder.embed_tokens.weight")
        let d = table.shape[1]
        var h = a.sum([a.scaled(try a.gather(table, target, name: "target embeddings"), by: Double(d).squareRoot()),
                       try a.sinusoidal(count: target.count, d: d)])
        for l in 0..<layerCount(w, "decoder.layers", probe: "attention.self.query.weight") {
            h = try layer(a, w, "decoder.layers.\(l)", h, hyper: hyper, causal: true, memory: memory)
        }
        return try a.linear(norm(a, w, "decoder.layer_norm", h, hyper.epsilon), weight: table, bias: nil)
    }

    /// The encoder-decoder's memory [S, d] and teacher-forced logits [T, V_tgt] for each pair,
    /// the logits of all pairs stacked (the packed layout of a training batch).
    public static func encoderDecoder(_ w: Checkpoint, hyper: ReferenceHyper, pairs: [(source: [Int], target: [Int])])
        throws -> (memories: [Tracked], logits: Tracked)
    {
        let r = try estimate { a in
            var memories: [Matrix64] = [], logits: [Matrix64] = []
            for pair in pairs {
                let memory = try encode(a, w, hyper: hyper, source: pair.source)
                memories.append(memory)
                logits.append(try decode(a, w, hyper: hyper, memory: memory, target: pair.target))
            }
            return memories + [Matrix64.stacked(logits)]
        }
        return (Array(r.dropLast()), r.last!)
    }

    // MARK: Loss

    /// Mean label-smoothed cross-entropy over the rows whose target is not `ignoreIndex`:
    /// ℓ = −Σ_c q_c log p_c, q = (1 − ε)·onehot + ε/V, log p = z − logsumexp(z) (gsl_sf_exp, gsl_sf_log).
    public static func crossEntropy(_ logits: Tracked, targets: [Int], smoothing: Double = 0, ignoreIndex: Int = -100) throws -> Double {
        var total = 0.0, n = 0
        for (r, t) in targets.enumerated() where t != ignoreIndex {
            let row = logits.values[(r * logits.cols)..<((r + 1) * logits.cols)]
            let m = row.max()!
            var s = 0.0
            for z in row { s += try Arithmetic.exp(z - m) }
            let logZ: Double
            do { logZ = m + (try GSL.log(s)) } catch { throw ReferenceError("\(error)") }
            for (c, z) in row.enumerated() {
                total -= ((c == t ? 1 - smoothing : 0) + smoothing / Double(row.count)) * (z - logZ)
            }
            n += 1
        }
        return n == 0 ? 0 : total / Double(n)
    }
}
