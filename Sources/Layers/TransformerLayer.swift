import Kernels
import Masking
import TensorCore

/// Where LayerNorm sits relative to each residual branch. See docs/layers.md.
///
///     post-norm ("Attention Is All You Need", BERT):  x ← LN(x + Sublayer(x))
///     pre-norm  (GPT-2):                              x ← x + Sublayer(LN(x))
public enum NormPlacement: String, Sendable, CaseIterable, Codable {
    case pre, post
}

/// One Transformer layer: self-attention (causal in a decoder), optional cross-attention over an
/// encoder's output, and the position-wise FFN, each wrapped in a residual connection with a
/// LayerNorm before (pre-norm) or after (post-norm) it.
///
/// - Encoder layer: `causal == false`, no cross-attention.
/// - Decoder layer of the encoder-decoder: `causal == true`, cross-attention present.
/// - GPT-2 block: `causal == true`, no cross-attention, pre-norm.
///
/// Shapes: x [T, d] → [T, d]; memory (encoder output) [S, d].
public struct TransformerLayer: Sendable, Equatable {
    public var selfAttention: MultiHeadAttention
    public var selfAttentionNorm: LayerNorm
    public var crossAttention: MultiHeadAttention?
    public var crossAttentionNorm: LayerNorm?
    public var feedForward: FeedForward
    public var feedForwardNorm: LayerNorm
    public var placement: NormPlacement
    public var causal: Bool

    public init(selfAttention: MultiHeadAttention, selfAttentionNorm: LayerNorm, crossAttention: MultiHeadAttention? = nil,
                crossAttentionNorm: LayerNorm? = nil, feedForward: FeedForward, feedForwardNorm: LayerNorm,
                placement: NormPlacement, causal: Bool) throws {
        guard (crossAttention == nil) == (crossAttentionNorm == nil) else {
            throw DecoderSpecError.invalidArgument(what: "TransformerLayer", reason: "cross-attention and its LayerNorm come together")
        }
        (self.selfAttention, self.selfAttentionNorm, self.crossAttention, self.crossAttentionNorm) =
            (selfAttention, selfAttentionNorm, crossAttention, crossAttentionNorm)
        (self.feedForward, self.feedForwardNorm, self.placement, self.causal) = (feedForward, feedForwardNorm, placement, causal)
    }

    /// A layer with seeded weights (N(0, std²) matrices, γ = 1, β = 0).
    public static func seeded(modelWidth d: Int, heads: Int, feedForwardWidth ff: Int, activation: Activation.Function,
                              placement: NormPlacement, causal: Bool, crossAttention: Bool, epsilon: Float = 1e-5,
                              std: Float = 0.02, rng: inout SeededRNG) throws -> TransformerLayer {
        try Validate.positive(d, "d_model")
        try Validate.positive(ff, "feed-forward width d_ff")
        return try TransformerLayer(
            selfAttention: MultiHeadAttention(modelWidth: d, heads: heads, std: std, rng: &rng),
            selfAttentionNorm: LayerNorm(width: d, epsilon: epsilon),
            crossAttention: crossAttention ? MultiHeadAttention(modelWidth: d, heads: heads, std: std, rng: &rng) : nil,
            crossAttentionNorm: crossAttention ? LayerNorm(width: d, epsilon: epsilon) : nil,
            feedForward: FeedForward(up: Linear(inputSize: d, outputSize: ff, std: std, rng: &rng),
                                     down: Linear(inputSize: ff, outputSize: d, std: std, rng: &rng), activation: activation),
            feedForwardNorm: LayerNorm(width: d, epsilon: epsilon), placement: placement, causal: causal)
    }

    /// This layer with the weight of every Linear (attention projections, cross-attention's, the
    /// feed-forward pair) rounded to bf16 (`Linear.roundingWeightToBF16()`); biases and LayerNorms unchanged.
    public func roundingLinearWeightsToBF16() -> TransformerLayer {
        var l = self
        func round(_ a: inout MultiHeadAttention) {
            a.query = a.query.roundingWeightToBF16()
            a.key = a.key.roundingWeightToBF16()
            a.value = a.value.roundingWeightToBF16()
            a.output = a.output.roundingWeightToBF16()
        }
        round(&l.selfAttention)
        if var cross = l.crossAttention { round(&cross); l.crossAttention = cross }
        l.feedForward.up = l.feedForward.up.roundingWeightToBF16()
        l.feedForward.down = l.feedForward.down.roundingWeightToBF16()
        return l
    }

    /// x + f(LN(x)) or LN(x + f(x)).
    func residual(_ x: Matrix, _ norm: LayerNorm, path: KernelPath, _ f: (Matrix) throws -> Matrix) throws -> Matrix {
        switch placement {
        case .pre: return try x.adding(f(try norm(x, path: path)))
        case .post: return try norm(try x.adding(f(x)), path: path)
        }
    }

    /// The whole layer over a full sequence (no cache). `memory` is required iff the layer has
    /// cross-attention; `memoryValidLength` masks padded source positions; `validLength` masks
    /// padded keys of the self-attention (encoder inputs with padding).
    public func callAsFunction(_ x: Matrix, memory: Matrix? = nil, memoryValidLength: Int? = nil, validLength: Int? = nil,
                               path: KernelPath = .optimized) throws -> Matrix {
        var h = try residual(x, selfAttentionNorm, path: path) {
            try selfAttention($0, mask: AttentionMask(isCausal: causal, keyValidLength: validLength), path: path)
        }
        if let crossAttention, let crossAttentionNorm {
            guard let memory else { throw DecoderSpecError.invalidArgument(what: "memory", reason: "a decoder layer with cross-attention needs the encoder output") }
            h = try residual(h, crossAttentionNorm, path: path) {
                try crossAttention($0, memory: memory, mask: AttentionMask(keyValidLength: memoryValidLength), path: path)
            }
        }
        return try residual(h, feedForwardNorm, path: path) { try feedForward($0, path: path) }
    }

    /// The layer on new rows `x` [Tn, d] continuing a cached sequence (causal self-attention).
    public func callAsFunction(_ x: Matrix, cache: inout LayerKVCache, cross: LayerKVCache? = nil,
                               path: KernelPath = .optimized) throws -> Matrix {
        var h = try residual(x, selfAttentionNorm, path: path) { try selfAttention($0, cache: &cache, path: path) }
        if let crossAttention, let crossAttentionNorm {
            guard let cross else { throw DecoderSpecError.invalidArgument(what: "cross cache", reason: "a decoder layer with cross-attention needs the projected encoder output") }
            h = try residual(h, crossAttentionNorm, path: path) { try crossAttention($0, projectedMemory: cross, path: path) }
        }
        return try residual(h, feedForwardNorm, path: path) { try feedForward($0, path: path) }
    }
}
