import Decoding
import Embedding
import Kernels
import Layers
import PositionalEncoding
import TensorCore

/// Hyperparameters of the original encoder-decoder Transformer ("Attention Is All You Need").
public struct EncoderDecoderConfig: Sendable, Equatable, Codable {
    public var sourceVocabularySize: Int
    public var targetVocabularySize: Int
    public var contextLength: Int
    public var modelWidth: Int
    public var heads: Int
    public var encoderLayers: Int
    public var decoderLayers: Int
    public var feedForwardWidth: Int
    public var layerNormEpsilon: Float
    public var activation: Activation.Function
    /// Post-norm is the paper's; pre-norm trains more easily from scratch.
    public var placement: NormPlacement

    /// The JSON keys of a saved translation model's config.json; `contextLength` keeps the file's
    /// original key "maxLength" so models saved before the rename still load.
    enum CodingKeys: String, CodingKey {
        case sourceVocabularySize, targetVocabularySize, contextLength = "maxLength", modelWidth, heads, encoderLayers, decoderLayers
        case feedForwardWidth, layerNormEpsilon, activation, placement
    }

    public init(sourceVocabularySize: Int, targetVocabularySize: Int, contextLength: Int, modelWidth: Int, heads: Int,
                encoderLayers: Int, decoderLayers: Int, feedForwardWidth: Int, layerNormEpsilon: Float = 1e-5,
                activation: Activation.Function = .relu, placement: NormPlacement = .post) {
        (self.sourceVocabularySize, self.targetVocabularySize, self.contextLength) = (sourceVocabularySize, targetVocabularySize, contextLength)
        (self.modelWidth, self.heads, self.encoderLayers, self.decoderLayers) = (modelWidth, heads, encoderLayers, decoderLayers)
        (self.feedForwardWidth, self.layerNormEpsilon, self.activation, self.placement) =
            (feedForwardWidth, layerNormEpsilon, activation, placement)
    }

    public func validate() throws {
        try validateModelSizes(["source vocabulary": sourceVocabularySize, "target vocabulary": targetVocabularySize,
                                "context length": contextLength, "d_model": modelWidth, "heads": heads,
                                "encoder layers": encoderLayers, "decoder layers": decoderLayers, "d_ff": feedForwardWidth],
                                modelWidth: modelWidth, heads: heads)
    }
}

/// The original encoder-decoder: sinusoidal positions, embeddings scaled by sqrt(d_model),
/// post-norm layers, decoder layers with masked self-attention and cross-attention, and an LM
/// head tied to the target embedding. See docs/layers.md.
///
///     memory = Encoder(E_src[x]·sqrt(d) + PE)                              [S, d]
///     logits = Decoder(E_tgt[y]·sqrt(d) + PE, memory) · E_tgtᵀ              [T, V_tgt]
public struct EncoderDecoderModel: Sendable {
    public var config: EncoderDecoderConfig
    public var sourceEmbedding: EmbeddingTable
    public var targetEmbedding: EmbeddingTable
    public var positions: SinusoidalPositionalEncoding
    public var encoderLayers: [TransformerLayer]
    public var decoderLayers: [TransformerLayer]
    /// Final LayerNorms (needed with pre-norm; identity-initialized and harmless with post-norm).
    public var encoderNorm: LayerNorm
    public var decoderNorm: LayerNorm
    public var path: KernelPath

    public static func seeded(_ config: EncoderDecoderConfig, seed: UInt64, path: KernelPath = .optimized) throws -> EncoderDecoderModel {
        try config.validate()
        var rng = SeededRNG(seed: seed)
        let d = config.modelWidth
        let std = Float(1 / Double(d).squareRoot())
        // Encoder layers: bidirectional, no cross-attention. Decoder layers: causal, with cross-attention.
        func layers(_ n: Int, decoder: Bool) throws -> [TransformerLayer] {
            try (0..<n).map { _ in
                try TransformerLayer.seeded(modelWidth: d, heads: config.heads, feedForwardWidth: config.feedForwardWidth,
                                            activation: config.activation, placement: config.placement, causal: decoder,
                                            crossAttention: decoder, epsilon: config.layerNormEpsilon, std: std, rng: &rng)
            }
        }
        return EncoderDecoderModel(
            config: config,
            sourceEmbedding: try EmbeddingTable(weight: rng.normalMatrix(rows: config.sourceVocabularySize, cols: d, std: std)),
            targetEmbedding: try EmbeddingTable(weight: rng.normalMatrix(rows: config.targetVocabularySize, cols: d, std: std)),
            positions: try SinusoidalPositionalEncoding(dimension: d, contextLength: config.contextLength),
            encoderLayers: try layers(config.encoderLayers, decoder: false),
            decoderLayers: try layers(config.decoderLayers, decoder: true),
            encoderNorm: try LayerNorm(width: d, epsilon: config.layerNormEpsilon),
            decoderNorm: try LayerNorm(width: d, epsilon: config.layerNormEpsilon), path: path)
    }


    /// The encoder output [S, d] for source ids [S].
    public func encode(_ source: [Int]) throws -> Matrix {
        guard !source.isEmpty else { throw DecoderSpecError.emptySequence(what: "source token ids") }
        var h = try positions.add(to: sourceEmbedding.lookup(source, scaled: true, path: path), path: path)
        for layer in encoderLayers { h = try layer(h, path: path) }
        let memory = try encoderNorm(h, path: path)
        try Validate.finite(memory.storage, "encoder output \(memory.shape) (the activations overflowed Float: check the scale of the weights)")
        return memory
    }

    /// The decoder's last-layer output [T, d] for target inputs [T] given the encoder output.
    public func decoderStates(_ target: [Int], memory: Matrix) throws -> Matrix {
        var h = try positions.add(to: targetEmbedding.lookup(target, scaled: true, path: path), path: path)
        for layer in decoderLayers { h = try layer(h, memory: memory, path: path) }
        return h
    }

    /// The tied head on decoder rows h [T, d] → logits [T, V_tgt].
    /// - Throws: `.nonFinite` for a NaN/±Inf logit (overflowing activations), as DecoderOnlyModel.
    func head(_ h: Matrix) throws -> Matrix {
        let logits = try targetEmbedding.tiedLogits(try decoderNorm(h, path: path), path: path)
        try Validate.finite(logits.storage, "logits \(logits.shape) (the activations overflowed Float: check the scale of the weights)")
        return logits
    }

    /// Teacher-forced logits [T, V_tgt] for target inputs [T] given the encoder output.
    public func decode(_ target: [Int], memory: Matrix) throws -> Matrix {
        try head(decoderStates(target, memory: memory))
    }

    /// The decoder conditioned on one source sentence, as a model the decoder loop can drive.
    /// The encoder runs once here, and each layer's cross-attention K/V are projected once.
    public func conditioned(on source: [Int]) throws -> ConditionedDecoder {
        let memory = try encode(source)
        let cross = try decoderLayers.map { layer in
            try layer.crossAttention!.project(memory: memory, path: path)
        }
        return ConditionedDecoder(model: self, memory: memory, cross: cross)
    }
}

/// `EncoderDecoderModel` with its source fixed: an `AutoregressiveModel` over target ids.
public struct ConditionedDecoder: AutoregressiveModel, Sendable {
    public let model: EncoderDecoderModel
    public let memory: Matrix
    public let cross: [LayerKVCache]

    public var vocabularySize: Int { model.config.targetVocabularySize }
    public var contextLength: Int { model.config.contextLength }

    public func makeCache() -> KVCache {
        KVCache(layers: model.config.decoderLayers, width: model.config.modelWidth, cross: cross)
    }

    public func logits(appending tokens: [Int], to cache: inout KVCache) throws -> [Float] {
        let first = cache.length
        try cache.check(layers: model.config.decoderLayers, width: model.config.modelWidth)
        guard first + tokens.count <= contextLength else {
            throw DecoderSpecError.invalidArgument(what: "target of \(first + tokens.count) tokens", reason: "longer than context length \(contextLength)")
        }
        return try cache.step { cache in  // a failed step leaves the cache as it was
            var h = try model.positions.add(to: model.targetEmbedding.lookup(tokens, scaled: true, path: model.path), startingAt: first, path: model.path)
            for (l, layer) in model.decoderLayers.enumerated() {
                h = try layer(h, cache: &cache.layers[l], cross: cross[l], path: model.path)
            }
            return try model.head(h.rows((h.rows - 1)..<h.rows)).storage
        }
    }

    /// Recomputes every target position (no cache) but applies the head to the last row only.
    public func logits(forSequence sequence: [Int]) throws -> [Float] {
        let h = try model.decoderStates(sequence, memory: memory)
        return try model.head(h.rows((h.rows - 1)..<h.rows)).storage
    }
}
