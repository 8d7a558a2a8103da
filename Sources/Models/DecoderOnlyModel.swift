import Decoding
import Embedding
import Kernels
import Layers
import PositionalEncoding
import TensorCore

/// A GPT-2-style decoder: pre-norm blocks with causal self-attention, a final LayerNorm and an LM
/// head tied to the token embedding; positions by `config.positionEncoding` — GPT-2's learned table
/// (the default), the sinusoidal table, RoPE or ALiBi inside attention, or none. See
/// docs/layers.md, docs/decoding.md, docs/positional-encoding.md.
///
///     h⁰ = E[x] (+ P[0..<T]);  hˡ = Block_l(hˡ⁻¹);  logits = LN_f(h^L) · Eᵀ      [T, V]
public struct DecoderOnlyModel: AutoregressiveModel, Sendable {
    public var config: TransformerConfig
    public var tokenEmbedding: EmbeddingTable
    /// The learned table P [contextLength, d] of a `.learned` model; nil for every other scheme.
    public var positions: LearnedPositionalEncoding?
    public var layers: [TransformerLayer]
    public var finalNorm: LayerNorm
    /// Which kernels every forward pass of this model runs on.
    public var path: KernelPath
    /// How `makeCache()` stores the keys and values of a cached decoding step: Float, or bf16
    /// (rounded when written; docs/decoding.md, "bf16 KV cache"). `storingKVCache(as:)` sets it.
    public var kvFormat: KVFormat = .fp32

    public var vocabularySize: Int { config.vocabularySize }
    public var contextLength: Int { config.contextLength }

    public init(config: TransformerConfig, tokenEmbedding: EmbeddingTable, positions: LearnedPositionalEncoding?,
                layers: [TransformerLayer], finalNorm: LayerNorm, path: KernelPath = .optimized) throws {
        try config.validate()
        guard config.tokenTypes == 0 else {
            throw DecoderSpecError.invalidArgument(what: "token types = \(config.tokenTypes)", reason: "a decoder-only model has no token-type table (0)")
        }
        guard tokenEmbedding.weight.shape == Shape(config.vocabularySize, config.modelWidth) else {
            throw DecoderSpecError.shapeMismatch(operation: "DecoderOnlyModel token embedding", expected: "[\(config.vocabularySize), \(config.modelWidth)]",
                                                 actual: "\(tokenEmbedding.weight.shape)")
        }
        switch (config.positionEncoding, positions) {
        case (.learned, let table?):
            guard table.weight.shape == Shape(config.contextLength, config.modelWidth) else {
                throw DecoderSpecError.shapeMismatch(operation: "DecoderOnlyModel position embedding", expected: "[\(config.contextLength), \(config.modelWidth)]",
                                                     actual: "\(table.weight.shape)")
            }
        case (.learned, nil):
            throw DecoderSpecError.invalidArgument(what: "position table", reason: "a model with learned positions needs one")
        case (let scheme, _?):
            throw DecoderSpecError.invalidArgument(what: "position table", reason: "a model with \(scheme.rawValue) positions has none")
        case (.sinusoidal, nil):
            _ = try SinusoidalPositionalEncoding(dimension: config.modelWidth, contextLength: config.contextLength)
        case (.none, nil), (.rope, nil), (.alibi, nil):
            break
        }
        guard layers.count == config.layers else {
            throw DecoderSpecError.shapeMismatch(operation: "DecoderOnlyModel layers", expected: "\(config.layers) layers", actual: "\(layers.count)")
        }
        let attention = try Self.attentionPositions(config)
        for (l, layer) in layers.enumerated() where layer.selfAttention.positions != attention {
            throw DecoderSpecError.invalidArgument(what: "layer \(l)'s self-attention positions \(layer.selfAttention.positions)",
                                                   reason: "the model's scheme \(config.positionEncoding.rawValue) needs \(attention)")
        }
        (self.config, self.tokenEmbedding, self.positions, self.layers, self.finalNorm, self.path) =
            (config, tokenEmbedding, positions, layers, finalNorm, path)
    }

    /// What every self-attention of a model with `config` does with positions: RoPE (half-split,
    /// θ = 10 000, over each head's d_model/heads columns), ALiBi, or nothing.
    public static func attentionPositions(_ config: TransformerConfig) throws -> AttentionPositions {
        switch config.positionEncoding {
        case .rope: return .rope(try RotaryEmbedding(headWidth: config.modelWidth / config.heads))
        case .alibi: return .alibi
        case .none, .sinusoidal, .learned: return .none
        }
    }

    /// Seeded random weights (GPT-2's init: N(0, 0.02²) matrices, a learned table N(0, 0.01²),
    /// γ = 1, β = 0). For tests, the demo, benchmarks and training from scratch: no download.
    public static func seeded(_ config: TransformerConfig, seed: UInt64, path: KernelPath = .optimized) throws -> DecoderOnlyModel {
        try config.validate()
        var rng = SeededRNG(seed: seed)
        let d = config.modelWidth
        let embedding = try EmbeddingTable(weight: rng.normalMatrix(rows: config.vocabularySize, cols: d, std: 0.02))
        let positions = config.positionEncoding == .learned
            ? try LearnedPositionalEncoding(weight: rng.normalMatrix(rows: config.contextLength, cols: d, std: 0.01)) : nil
        let attention = try attentionPositions(config)
        let layers = try (0..<config.layers).map { _ in
            var layer = try TransformerLayer.seeded(modelWidth: d, heads: config.heads, feedForwardWidth: config.feedForwardWidth,
                                                    activation: config.activation, placement: .pre, causal: true, crossAttention: false,
                                                    epsilon: config.layerNormEpsilon, rng: &rng)
            layer.selfAttention.positions = attention
            return layer
        }
        return try DecoderOnlyModel(config: config, tokenEmbedding: embedding, positions: positions, layers: layers,
                                    finalNorm: LayerNorm(width: d, epsilon: config.layerNormEpsilon), path: path)
    }

    /// The same weights with a longer context, to evaluate beyond the training length: every scheme
    /// but the learned table, which has no rows past its own (length extrapolation,
    /// docs/positional-encoding.md).
    /// - Throws: `.invalidArgument` for a learned model or `n` < 1.
    public func extendingContext(to n: Int) throws -> DecoderOnlyModel {
        try Validate.positive(n, "context length")
        guard config.positionEncoding != .learned else {
            throw DecoderSpecError.invalidArgument(what: "context \(n) for learned positions", reason: "the table has \(contextLength) rows and none beyond")
        }
        var config = config
        config.contextLength = n
        var m = try DecoderOnlyModel(config: config, tokenEmbedding: tokenEmbedding, positions: nil, layers: layers, finalNorm: finalNorm, path: path)
        m.kvFormat = kvFormat
        return m
    }

    /// E[ids] plus the absolute positions `first ..< first + T` for the learned and sinusoidal
    /// schemes; E[ids] alone for the others (RoPE and ALiBi act inside attention).
    ///
    ///     learned: E[x] + P[t];   sinusoidal: E[x]·√d + PE(t);   none, rope, alibi: E[x]
    ///
    /// The sinusoidal scheme scales the embeddings by √d as "Attention Is All You Need" does (and the
    /// encoder-decoder here): PE's entries are ±1 and would swamp GPT-2's N(0, 0.02²) embeddings — an
    /// unscaled first run learned nothing beyond the unigram distribution (docs/language-model.md).
    /// - Throws: `.invalidArgument` when a learned model's table has been removed.
    public func embedded(_ ids: [Int], startingAt first: Int) throws -> Matrix {
        let e = try tokenEmbedding.lookup(ids, scaled: scalesEmbeddings, path: path)
        switch config.positionEncoding {
        case .learned:
            guard let positions else { throw DecoderSpecError.invalidArgument(what: "position table", reason: "a model with learned positions needs one") }
            return try positions.add(to: e, startingAt: first, path: path)
        case .sinusoidal:
            return try SinusoidalPositionalEncoding(dimension: config.modelWidth, contextLength: contextLength).add(to: e, startingAt: first, path: path)
        case .none, .rope, .alibi:
            return e
        }
    }

    /// Whether the input embeddings are E[x]·√d (the sinusoidal scheme) rather than E[x].
    public var scalesEmbeddings: Bool { config.positionEncoding == .sinusoidal }

    func checkIds(_ ids: [Int], startingAt first: Int) throws {
        guard !ids.isEmpty else { throw DecoderSpecError.emptySequence(what: "token ids") }
        guard first + ids.count <= contextLength else {
            throw DecoderSpecError.invalidArgument(what: "sequence of \(first + ids.count) tokens",
                                                   reason: "longer than the model's context of \(contextLength)")
        }
    }

    /// The last layer's output h^L [T, d] for `ids` (a full causal pass, no cache), before LN_f.
    public func hiddenStates(_ ids: [Int]) throws -> Matrix {
        try checkIds(ids, startingAt: 0)
        var h = try embedded(ids, startingAt: 0)
        for layer in layers { h = try layer(h, path: path) }
        return h
    }

    /// LN_f(h) · Eᵀ: the tied head on rows h [T, d] → logits [T, V].
    /// - Throws: `.nonFinite` when a logit is NaN/±Inf: finite weights can still overflow Float
    ///   in the activations (e.g. weights of 1e30), and a NaN logit must not become a token.
    func head(_ h: Matrix) throws -> Matrix {
        let logits = try tokenEmbedding.tiedLogits(try finalNorm(h, path: path), path: path)
        try Validate.finite(logits.storage, "logits \(logits.shape) (the activations overflowed Float: check the scale of the weights)")
        return logits
    }

    /// Logits [T, V] for every position of `ids` (a full causal forward pass, no cache).
    public func forward(_ ids: [Int]) throws -> Matrix {
        try head(hiddenStates(ids))
    }

    /// An empty cache for `logits(appending:to:)`, storing its rows in `kvFormat`.
    public func makeCache() -> KVCache { KVCache(layers: config.layers, width: config.modelWidth, format: kvFormat) }

    /// This model with its decoding caches stored in `format` (`kvFormat`); the weights are unchanged.
    ///
    ///     bf16: K̂_j = bf16(K_j), V̂_j = bf16(V_j) when position j is appended; attention reads them widened
    public func storingKVCache(as format: KVFormat) -> DecoderOnlyModel {
        var m = self
        m.kvFormat = format
        return m
    }

    /// Reads `tokens` at positions cache.length …, appends their K/V to every layer's cache, and
    /// returns the logits of the last one. Only the new rows are computed.
    public func logits(appending tokens: [Int], to cache: inout KVCache) throws -> [Float] {
        let first = cache.length
        try cache.check(layers: config.layers, width: config.modelWidth)
        try checkIds(tokens, startingAt: first)
        return try cache.step { cache in  // a failed step leaves the cache as it was
            var h = try embedded(tokens, startingAt: first)
            for (l, layer) in layers.enumerated() { h = try layer(h, cache: &cache.layers[l], path: path) }
            return try head(h.rows((h.rows - 1)..<h.rows)).storage
        }
    }

    /// Recomputes every position (no cache) but applies the head to the last row only.
    public func logits(forSequence sequence: [Int]) throws -> [Float] {
        let h = try hiddenStates(sequence)
        return try head(h.rows((h.rows - 1)..<h.rows)).storage
    }

    /// The weight-only bf16 form of this model (docs/decoding.md, "bf16 weights"): every Linear
    /// weight of every layer and the tied embedding/head table rounded once to bf16 (nearest, ties
    /// to even, relative error ≤ 2⁻⁸ per weight); biases, LayerNorm parameters and the learned
    /// position table stay Float, and so do activations and every sum. A decoding step then reads
    /// 2 bytes per weight instead of 4 (`BF16GEMV`); a prompt of several tokens runs the Float GEMM
    /// on the same rounded values.
    ///
    ///     logits = LN_f(h^L) · Êᵀ  with every W replaced by Ŵ = bf16(W), E by Ê = bf16(E)
    public func roundingWeightsToBF16() -> DecoderOnlyModel {
        var m = self
        m.tokenEmbedding = tokenEmbedding.roundingToBF16()
        m.layers = layers.map { $0.roundingLinearWeightsToBF16() }
        return m
    }

    /// How the weights are stored: `.bf16` after `roundingWeightsToBF16()`, else `.fp32`.
    public var weightFormat: WeightFormat { tokenEmbedding.weightBF16 != nil ? .bf16 : .fp32 }

    /// Bytes of parameters one cached decoding step reads at least: every weight matrix and the tied
    /// head once (2 bytes per entry in bf16, 4 in Float), the biases and norms in Float, one row of
    /// a learned position table.
    public var bytesReadPerToken: Int {
        let big = weightFormat == .bf16 ? 2 : 4
        var n = big * tokenEmbedding.weight.storage.count + 4 * (config.modelWidth + 2 * config.modelWidth)
        for layer in layers {
            for lin in [layer.selfAttention.query, layer.selfAttention.key, layer.selfAttention.value, layer.selfAttention.output,
                        layer.feedForward.up, layer.feedForward.down] {
                n += big * lin.weight.storage.count + 4 * (lin.bias?.count ?? 0)
            }
            n += 4 * 4 * config.modelWidth
        }
        return n
    }

    /// Bytes one cached decoding step at `context` positions (the cache holding `context − 1`
    /// before it) reads and writes at least: the weights (`bytesReadPerToken`), the cache's keys and
    /// values read once by attention (2 · layers · context · d, in `kvFormat`'s element size) and the
    /// new position's written (2 · layers · d). Activations (a few vectors of d and d_ff Floats) are
    /// left out: they stay in the caches of the core.
    public func bytesPerToken(context: Int) -> Int {
        let kv = kvFormat.bytesPerElement * 2 * config.layers * config.modelWidth
        return bytesReadPerToken + kv * context + kv
    }

    /// Parameters, with the tied head counted once.
    public var parameterCount: Int {
        var n = tokenEmbedding.weight.storage.count + (positions?.weight.storage.count ?? 0) + 2 * config.modelWidth
        for layer in layers {
            for lin in [layer.selfAttention.query, layer.selfAttention.key, layer.selfAttention.value, layer.selfAttention.output,
                        layer.feedForward.up, layer.feedForward.down] {
                n += lin.weight.storage.count + (lin.bias?.count ?? 0)
            }
            n += 4 * config.modelWidth
        }
        return n
    }
}

extension KVCache {
    /// - Throws: `.shapeMismatch` when this cache was made by a model of another depth or width
    ///   (use the model's own `makeCache()`).
    func check(layers: Int, width: Int) throws {
        guard self.layers.count == layers, self.layers.allSatisfy({ $0.keyRows.cols == width && $0.valueRows.cols == width }) else {
            throw DecoderSpecError.shapeMismatch(operation: "KV cache", expected: "\(layers) layers of width \(width) (the model's makeCache())",
                                                 actual: "\(self.layers.count) layers of width \(self.layers.first.map { String($0.keyRows.cols) } ?? "–")")
        }
    }
}

/// How a decoder's weight matrices are stored for decoding (`DecoderOnlyModel.roundingWeightsToBF16()`).
public enum WeightFormat: String, CaseIterable, Sendable {
    /// IEEE binary32, as trained or loaded.
    case fp32
    /// bfloat16, rounded once from Float (nearest, ties to even); activations and sums stay Float.
    case bf16
}
