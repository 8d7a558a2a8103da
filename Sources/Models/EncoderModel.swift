import Embedding
import Kernels
import Layers
import PositionalEncoding
import TensorCore

/// A BERT-style encoder. See docs/layers.md.
///
///     h⁰ = LN_emb(E_word[x] + E_pos[0..<T] + E_type[types]);  hˡ = EncoderLayer_l(hˡ⁻¹)  (post-norm)
///     sentence embedding = normalize(mean_t h^L_t)  (sentence-transformers' mean pooling + L2)
public struct EncoderModel: Sendable {
    public var config: TransformerConfig
    public var wordEmbedding: EmbeddingTable
    public var positions: LearnedPositionalEncoding
    public var tokenTypeEmbedding: EmbeddingTable
    public var embeddingNorm: LayerNorm
    public var layers: [TransformerLayer]
    public var path: KernelPath

    public init(config: TransformerConfig, wordEmbedding: EmbeddingTable, positions: LearnedPositionalEncoding,
                tokenTypeEmbedding: EmbeddingTable, embeddingNorm: LayerNorm, layers: [TransformerLayer],
                path: KernelPath = .optimized) throws {
        try config.validate()
        try Validate.positive(config.tokenTypes, "token types")
        let d = config.modelWidth
        for (name, m, expected) in [("word embedding", wordEmbedding.weight, Shape(config.vocabularySize, d)),
                                    ("position embedding", positions.weight, Shape(config.contextLength, d)),
                                    ("token type embedding", tokenTypeEmbedding.weight, Shape(config.tokenTypes, d))] where m.shape != expected {
            throw DecoderSpecError.shapeMismatch(operation: "EncoderModel \(name)", expected: "\(expected)", actual: "\(m.shape)")
        }
        guard layers.count == config.layers else {
            throw DecoderSpecError.shapeMismatch(operation: "EncoderModel layers", expected: "\(config.layers)", actual: "\(layers.count)")
        }
        (self.config, self.wordEmbedding, self.positions, self.tokenTypeEmbedding) = (config, wordEmbedding, positions, tokenTypeEmbedding)
        (self.embeddingNorm, self.layers, self.path) = (embeddingNorm, layers, path)
    }

    public static func seeded(_ config: TransformerConfig, seed: UInt64, path: KernelPath = .optimized) throws -> EncoderModel {
        try config.validate()
        var rng = SeededRNG(seed: seed)
        let d = config.modelWidth
        return try EncoderModel(
            config: config,
            wordEmbedding: EmbeddingTable(weight: rng.normalMatrix(rows: config.vocabularySize, cols: d, std: 0.02)),
            positions: LearnedPositionalEncoding(weight: rng.normalMatrix(rows: config.contextLength, cols: d, std: 0.02)),
            tokenTypeEmbedding: EmbeddingTable(weight: rng.normalMatrix(rows: config.tokenTypes, cols: d, std: 0.02)),
            embeddingNorm: LayerNorm(width: d, epsilon: config.layerNormEpsilon),
            layers: (0..<config.layers).map { _ in
                try TransformerLayer.seeded(modelWidth: d, heads: config.heads, feedForwardWidth: config.feedForwardWidth,
                                            activation: config.activation, placement: .post, causal: false, crossAttention: false,
                                            epsilon: config.layerNormEpsilon, rng: &rng)
            }, path: path)
    }

    /// Hidden states [T, d] of the last layer. `tokenTypes` defaults to all 0 (one segment).
    public func hiddenStates(_ ids: [Int], tokenTypes: [Int]? = nil) throws -> Matrix {
        try layerStates(ids, tokenTypes: tokenTypes).last!  // never empty: the embedding output is first
    }

    /// Every layer's output: [embedding output (after its LayerNorm), layer 1, …, layer L], each
    /// [T, d] — the contextual vectors of notebooks-md/10-static-vs-contextual.md.
    public func layerStates(_ ids: [Int], tokenTypes: [Int]? = nil) throws -> [Matrix] {
        guard ids.count <= config.contextLength else {
            throw DecoderSpecError.invalidArgument(what: "sequence of \(ids.count) tokens", reason: "longer than context length \(config.contextLength)")
        }
        let types = tokenTypes ?? [Int](repeating: 0, count: ids.count)
        guard types.count == ids.count else {
            throw DecoderSpecError.shapeMismatch(operation: "EncoderModel token types", expected: "[\(ids.count)]", actual: "[\(types.count)]")
        }
        var h = try wordEmbedding.lookup(ids, path: path)
        h = try positions.add(to: h, path: path)
        h = try h.adding(tokenTypeEmbedding.lookup(types, path: path), "E_word + E_pos + E_type")
        var states = [try embeddingNorm(h, path: path)]
        for layer in layers { states.append(try layer(states[states.count - 1], path: path)) }
        try Validate.finite(states[states.count - 1].storage, "hidden states \(h.shape) (the activations overflowed Float: check the scale of the weights)")
        return states
    }

    /// Mean of the hidden states over positions, scaled to unit L2 norm: [d].
    public func sentenceEmbedding(_ ids: [Int], tokenTypes: [Int]? = nil) throws -> [Float] {
        let h = try hiddenStates(ids, tokenTypes: tokenTypes)
        var mean = [Double](repeating: 0, count: h.cols)
        for t in 0..<h.rows { for j in 0..<h.cols { mean[j] += Double(h[t, j]) } }
        let norm = max(mean.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)  // as torch.nn.functional.normalize
        return mean.map { Float($0 / norm) }
    }
}
