// The recurrent baseline beside the Transformer on the translation task: a GRU encoder and a GRU
// decoder with dot-product attention over the encoder states, whose output is the documents'
// generation step read from the *current* state. See docs/finetune-translation.md
// ("Recurrence vs attention") and docs/decoding.md (Errata, the recurrent step).
import Decoding
import Embedding
import Kernels
import Layers
import TensorCore

/// Sizes of the GRU encoder-decoder.
public struct GRUTranslationConfig: Sendable, Equatable, Codable {
    public var sourceVocabularySize: Int
    public var targetVocabularySize: Int
    /// e, the width of both embedding tables.
    public var embeddingWidth: Int
    /// h, the state width of the encoder and the decoder GRU.
    public var hiddenWidth: Int
    /// The longest target (with `<bos>`) the decoder loop accepts.
    public var contextLength: Int

    public init(sourceVocabularySize: Int, targetVocabularySize: Int, embeddingWidth: Int, hiddenWidth: Int, contextLength: Int) {
        (self.sourceVocabularySize, self.targetVocabularySize) = (sourceVocabularySize, targetVocabularySize)
        (self.embeddingWidth, self.hiddenWidth, self.contextLength) = (embeddingWidth, hiddenWidth, contextLength)
    }

    /// - Throws: `.invalidArgument` naming the first size ≤ 0.
    public func validate() throws {
        for (name, n) in [("source vocabulary", sourceVocabularySize), ("target vocabulary", targetVocabularySize),
                          ("embedding width", embeddingWidth), ("hidden width", hiddenWidth), ("context length", contextLength)] {
            try Validate.positive(n, name)
        }
    }
}

/// A GRU encoder-decoder with attention (Cho et al. 2014's GRU; Luong et al. 2015's dot-product
/// score, scaled by 1/√h as in the Transformer, fed into the recurrence as Bahdanau et al. 2015 do).
///
/// Encoder, source ids x₁ … x_S:
///
///     m_s = GRU_enc(E_src[x_s], m_{s−1}),  m_0 = 0          memory M = [m_1 … m_S]   [S, h]
///
/// Decoder, step t = 1, 2, … reading y_{t−1} (y_0 = `<bos>`), from h_0 = m_S:
///
///     α_t = softmax_s(m_s·h_{t−1} / √h)                    attention over the source  [S]
///     c_t = Σ_s α_ts·m_s                                   context                    [h]
///     h_t = GRU_dec([E_tgt[y_{t−1}]; c_t], h_{t−1})        the state update           [h]
///     p_t = softmax(W_o·h_t + b_o)                         the output                 [V_tgt]
///
/// The last line is the generation step of doc 001 §4.1 with its defect corrected: the output is
/// read from h_t, the state *after* reading y_{t−1} and attending, not from h_{t−1}
/// (`ModelFormulaErrata.recurrentStep`; the specs check this model's step against it). Every step
/// needs h_{t−1}: the T steps of a target run one after another, in training too — the
/// sequential cost the Transformer's causal self-attention does not have.
///
/// Shapes: E_src [V_src, e], E_tgt [V_tgt, e], encoder GRU in = e, decoder GRU in = e + h,
/// W_o [V_tgt, h] (not tied), b_o [V_tgt]. No √e embedding scale, no positional encoding: the
/// recurrence itself orders the positions.
public struct GRUTranslationModel: Sendable {
    public var config: GRUTranslationConfig
    public var sourceEmbedding: EmbeddingTable
    public var targetEmbedding: EmbeddingTable
    public var encoder: GRUCell
    public var decoder: GRUCell
    /// W_o, b_o.
    public var output: Linear
    public var path: KernelPath

    /// Embeddings N(0, 1) (the unit scale the Transformer's E·√d has), GRU weights N(0, 1/(3h)),
    /// W_o N(0, 1/h), biases 0.
    public static func seeded(_ config: GRUTranslationConfig, seed: UInt64, path: KernelPath = .optimized) throws -> GRUTranslationModel {
        try config.validate()
        var rng = SeededRNG(seed: seed)
        let (e, h) = (config.embeddingWidth, config.hiddenWidth)
        return GRUTranslationModel(
            config: config,
            sourceEmbedding: try EmbeddingTable(weight: rng.normalMatrix(rows: config.sourceVocabularySize, cols: e, std: 1)),
            targetEmbedding: try EmbeddingTable(weight: rng.normalMatrix(rows: config.targetVocabularySize, cols: e, std: 1)),
            encoder: try GRUCell.seeded(inputSize: e, hiddenSize: h, rng: &rng),
            decoder: try GRUCell.seeded(inputSize: e + h, hiddenSize: h, rng: &rng),
            output: try Linear(inputSize: h, outputSize: config.targetVocabularySize, std: Float(1 / Double(h).squareRoot()), rng: &rng),
            path: path)
    }

    /// The memory M = [m_1 … m_S] [S, h] for source ids [S] (ending with `<eos>` in translation).
    /// - Throws: `.emptySequence`, `.idOutOfRange`.
    /// - Throws: `.shapeMismatch` naming the first part whose shape is not the one `config`
    ///   describes (the parts are public vars; the loops over them rely on these counts).
    public func validateParts() throws {
        let (e, h) = (config.embeddingWidth, config.hiddenWidth)
        let (vs, vt) = (config.sourceVocabularySize, config.targetVocabularySize)
        let parts: [(name: String, holds: Bool, expected: String, actual: String)] = [
            ("source embedding", sourceEmbedding.weight.shape == Shape(vs, e), "[\(vs), \(e)]", "\(sourceEmbedding.weight.shape)"),
            ("target embedding", targetEmbedding.weight.shape == Shape(vt, e), "[\(vt), \(e)]", "\(targetEmbedding.weight.shape)"),
            ("encoder GRU", encoder.shapesAreConsistent && encoder.inputSize == e && encoder.hiddenSize == h,
             "W [\(3 * h), \(e)], U [\(3 * h), \(h)], b [\(3 * h)]", encoder.shapeDescription),
            ("decoder GRU", decoder.shapesAreConsistent && decoder.inputSize == e + h && decoder.hiddenSize == h,
             "W [\(3 * h), \(e + h)], U [\(3 * h), \(h)], b [\(3 * h)]", decoder.shapeDescription),
            ("output W_o, b_o", output.weight.shape == Shape(vt, h) && output.bias?.count == vt, "W_o [\(vt), \(h)], b_o [\(vt)]",
             "W_o \(output.weight.shape), b_o [\(output.bias?.count ?? 0)]"),
        ]
        if let bad = parts.first(where: { !$0.holds }) {
            throw DecoderSpecError.shapeMismatch(operation: "GRUTranslationModel's \(bad.name) against its config", expected: bad.expected, actual: bad.actual)
        }
    }

    public func encode(_ source: [Int]) throws -> Matrix {
        try validateParts()
        guard !source.isEmpty else { throw DecoderSpecError.emptySequence(what: "source token ids") }
        let memory = try encoder(sourceEmbedding.lookup(source, path: path), path: path)
        try Validate.finite(memory.storage, "GRU encoder states \(memory.shape)")
        return memory
    }

    /// α = softmax(M·q/√h) [S] and c = αᵀ·M [h] for memory M [S, h] and query q = h_{t−1} [h].
    public static func attend(memory: Matrix, query: [Float], path: KernelPath) throws -> (context: [Float], weights: [Float]) {
        let h = memory.cols
        guard query.count == h, memory.rows > 0 else {
            throw DecoderSpecError.shapeMismatch(operation: "GRU attention", expected: "memory [S ≥ 1, \(query.count)]", actual: "\(memory.shape)")
        }
        var scores = try memory.matmul(Matrix(rows: h, cols: 1, storage: query), path: path)  // [S, 1]
        let scale = 1 / Float(Double(h).squareRoot())
        for i in scores.storage.indices { scores.storage[i] *= scale }
        let s = scores.rows
        scores.storage.withUnsafeMutableBufferPointer { Softmax.rows(path, $0.baseAddress!, rows: 1, cols: s) }
        let context = try Matrix(rows: 1, cols: s, storage: scores.storage).matmul(memory, path: path)
        return (context.storage, scores.storage)
    }

    /// One decoder step: h_t and the logits W_o·h_t + b_o [V_tgt] from y_{t−1} and h_{t−1}.
    /// - Throws: `.idOutOfRange` for a token outside the target vocabulary.
    public func decoderStep(token: Int, state: [Float], memory: Matrix) throws -> (state: [Float], logits: [Float]) {
        let c = try Self.attend(memory: memory, query: state, path: path).context
        let e = try targetEmbedding.lookup([token], path: path).storage
        let x = try Matrix(rows: 1, cols: e.count + c.count, storage: e + c)
        let next = try decoder(x, initialState: state, path: path).storage
        let logits = try output(Matrix(rows: 1, cols: next.count, storage: next), path: path).storage
        try Validate.finite(logits, "GRU decoder logits [\(logits.count)] (the activations overflowed Float: check the scale of the weights)")
        return (next, logits)
    }

    /// The decoder conditioned on one source sentence (the encoder runs once here), as a model the
    /// decoder loop (`Generator`) drives: greedy, sampling or beam search.
    public func conditioned(on source: [Int]) throws -> GRUConditionedDecoder {
        let memory = try encode(source)
        return GRUConditionedDecoder(model: self, memory: memory, initialState: memory.row(memory.rows - 1))
    }
}

/// What a recurrent decoder remembers of the tokens it has read: its state h_t (a fixed [h], however
/// long the target — where a Transformer's KV cache grows by a row per token) and how many it read.
public struct GRUDecoderCache: Sendable, Equatable {
    public var state: [Float]
    public var length: Int
}

/// `GRUTranslationModel` with its source fixed: an `AutoregressiveModel` over target ids.
public struct GRUConditionedDecoder: AutoregressiveModel, Sendable {
    public let model: GRUTranslationModel
    /// The encoder states M [S, h].
    public let memory: Matrix
    /// h_0 = m_S.
    public let initialState: [Float]

    public var vocabularySize: Int { model.config.targetVocabularySize }
    public var contextLength: Int { model.config.contextLength }

    public func makeCache() -> GRUDecoderCache { GRUDecoderCache(state: initialState, length: 0) }

    public func logits(appending tokens: [Int], to cache: inout GRUDecoderCache) throws -> [Float] {
        guard !tokens.isEmpty else { throw DecoderSpecError.emptySequence(what: "tokens to append") }
        guard cache.state.count == model.config.hiddenWidth else {
            throw DecoderSpecError.shapeMismatch(operation: "GRU decoder cache", expected: "state [\(model.config.hiddenWidth)]", actual: "[\(cache.state.count)]")
        }
        guard cache.length + tokens.count <= contextLength else {
            throw DecoderSpecError.invalidArgument(what: "target of \(cache.length + tokens.count) tokens", reason: "longer than context length \(contextLength)")
        }
        var state = cache.state, logits: [Float] = []
        for t in tokens { (state, logits) = try model.decoderStep(token: t, state: state, memory: memory) }
        cache = GRUDecoderCache(state: state, length: cache.length + tokens.count)  // only after every step succeeded
        return logits
    }

    /// From h_0 through every token of `sequence` (the recurrence has nothing to recompute in parallel).
    public func logits(forSequence sequence: [Int]) throws -> [Float] {
        var cache = makeCache()
        return try logits(appending: sequence, to: &cache)
    }
}
