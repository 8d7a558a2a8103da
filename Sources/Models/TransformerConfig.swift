import Kernels
import TensorCore

/// How a model knows token order (docs/positional-encoding.md): a table added to the token
/// embeddings (`learned`, `sinusoidal`), a rotation of queries and keys (`rope`) or a bias on the
/// attention logits (`alibi`) inside every self-attention, or not at all (`none`: a causal decoder
/// can still infer positions from its mask).
public enum PositionEncodingScheme: String, Codable, CaseIterable, Sendable {
    case none, sinusoidal, learned, rope, alibi
}

/// Hyperparameters of one Transformer stack. The BERT-style encoder (`EncoderModel`) and the
/// GPT-2-style decoder-only model (`DecoderOnlyModel`) have the same sizes — Hugging Face's BERT
/// and GPT-2 configs only name them differently (`HuggingFaceSchema`). See docs/layers.md.
public struct TransformerConfig: Sendable, Equatable, Codable {
    public var vocabularySize: Int
    /// The longest sequence the learned position table holds.
    public var contextLength: Int
    /// Rows of the token-type (segment) table: BERT has 2; a decoder-only model has none (0).
    public var tokenTypes: Int
    public var modelWidth: Int
    public var heads: Int
    public var layers: Int
    public var feedForwardWidth: Int
    public var layerNormEpsilon: Float
    public var activation: Activation.Function
    /// BERT and GPT-2 learn a position table; the decoder-only model also takes the other schemes.
    public var positionEncoding: PositionEncodingScheme

    /// Omitted values take GPT-2's: no token types, d_ff = 4·d_model, ε = 1e-5, the tanh GELU, learned positions.
    public init(vocabularySize: Int, contextLength: Int, tokenTypes: Int = 0, modelWidth: Int, heads: Int, layers: Int,
                feedForwardWidth: Int? = nil, layerNormEpsilon: Float = 1e-5, activation: Activation.Function = .geluTanh,
                positionEncoding: PositionEncodingScheme = .learned) {
        (self.vocabularySize, self.contextLength, self.tokenTypes) = (vocabularySize, contextLength, tokenTypes)
        (self.modelWidth, self.heads, self.layers) = (modelWidth, heads, layers)
        (self.feedForwardWidth, self.layerNormEpsilon, self.activation) = (feedForwardWidth ?? 4 * modelWidth, layerNormEpsilon, activation)
        self.positionEncoding = positionEncoding
    }

    /// GPT-2 small: 124M parameters (V 50257, context 1024, d 768, 12 heads, 12 layers).
    public static let gpt2Small = TransformerConfig(vocabularySize: 50257, contextLength: 1024, modelWidth: 768, heads: 12, layers: 12)

    /// all-MiniLM-L6-v2: 6 layers, d 384, 12 heads, FFN 1536, WordPiece vocabulary 30 522, BERT's ε and exact GELU.
    public static let miniLM = TransformerConfig(vocabularySize: 30522, contextLength: 512, tokenTypes: 2, modelWidth: 384, heads: 12,
                                                 layers: 6, feedForwardWidth: 1536, layerNormEpsilon: 1e-12, activation: .gelu)

    /// - Throws: `.invalidArgument` for non-positive sizes, a negative token-type count, heads ∤ d_model.
    public func validate() throws {
        try validateModelSizes(["vocabulary size": vocabularySize, "context length": contextLength, "d_model": modelWidth,
                                "heads": heads, "layers": layers, "d_ff": feedForwardWidth],
                               modelWidth: modelWidth, heads: heads)
        guard tokenTypes >= 0 else { throw DecoderSpecError.invalidArgument(what: "token types = \(tokenTypes)", reason: "must be 0 or more") }
    }
}

extension Activation.Function: Codable {}
