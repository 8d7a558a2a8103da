// Doc 002's PyTorch encoder layer (§5.2), transcribed so its defects can be run on real weights.
// The correct layer is Layers' TransformerLayer (post-norm, as BERT); docs/layers.md quotes the
// original beside it. Specs: Tests/ErrataSpecs/EncoderLayerErrataSpecs.swift.
import Kernels
import Layers
import TensorCore

/// Doc 002 §5.2's `TransformerEncoderLayer`, `MultiHeadAttention` and `PositionwiseFeedForward`,
/// in eval mode (dropout is the identity), built from the weights of a correct post-norm layer so
/// the two can be compared on the same numbers. The original, verbatim:
///
///     # TransformerEncoderLayer.forward
///     x = self.layernorm1(x + self.self_attn(self.dropout(x), x, x, attention_mask)[0])
///     x = self.pos_ffn(self.dropout(x))
///     x = self.layernorm2(x + x)
///     # MultiHeadAttention.forward(q, k, v, attn_mask)
///     sz, bs, _ = q.size()
///     q = self.wq(q).view(sz, bs, self.n_heads, self.depth)          # k, v alike
///     q = q.permute(0, 2, 1, 3).contiguous().view(sz * self.n_heads, bs, self.depth)
///     scores = torch.matmul(q, k.transpose(1, 2)) / math.sqrt(self.depth)
///     attn_weights = F.softmax(scores + attn_mask, dim=-1)
///     attn = torch.matmul(attn_weights, v)
///     attn = attn.view(sz, self.n_heads, bs, self.depth)
///     attn = attn.permute(0, 2, 1, 3).contiguous().view(sz, bs, self.n_heads * self.depth)
///     attn = self.o(attn)
///     attn = self.layer_norm(x + attn)
///     # PositionwiseFeedForward.forward
///     x = self.ffn1(x); x = self.dropout(x); x = self.ffn2(x)
///     return self.layer_norm(x + x)
///
/// Four defects, each kept here:
/// 1. The `view`s make the batched matmul run over `sz · n_heads` groups of `bs` rows: each
///    position attends over the *sentences of the batch* at that position, never over the other
///    positions of its own sentence. With one sentence (bs = 1) softmax over one key is 1, so the
///    output does not depend on W_Q, W_K at all.
/// 2. `self.self_attn(…)[0]` indexes the first axis of a [sz, bs, d] tensor: position 0's row of
///    every sentence, added (broadcast) to every position.
/// 3. `layer_norm(x + x)` (FFN) and `layernorm2(x + x)` (layer): the residual adds the tensor to
///    itself — the FFN's input is thrown away — and LayerNorm runs twice in a row.
/// 4. The FFN has no activation between `ffn1` and `ffn2`: it collapses to one affine map.
///
/// `x` in `MultiHeadAttention.forward` is not a parameter (a NameError unless a global `x`
/// exists); the caller passes `x, x, x`, so it is read as `q`. `attn_mask` must broadcast to
/// [bs, bs] after the `view`s; the padding-free case, zeros, is used.
///
/// Shapes: a batch of `bs` sentences of equal length `sz`, each [sz, d] (the doc's [sz, bs, d]
/// with the sentence index as an array index).
public struct Doc002EncoderLayer: Sendable {
    /// W_Q, W_K, W_V, W_O and `heads` (the doc's `wq`, `wk`, `wv`, `o`, `n_heads`).
    public var attention: MultiHeadAttention
    /// `MultiHeadAttention.layer_norm`.
    public var attentionNorm: LayerNorm
    /// `layernorm1`.
    public var norm1: LayerNorm
    /// `ffn1`, `ffn2`.
    public var ffn1: Linear, ffn2: Linear
    /// `PositionwiseFeedForward.layer_norm`.
    public var feedForwardNorm: LayerNorm
    /// `layernorm2`.
    public var norm2: LayerNorm

    public init(attention: MultiHeadAttention, attentionNorm: LayerNorm, norm1: LayerNorm, ffn1: Linear, ffn2: Linear,
                feedForwardNorm: LayerNorm, norm2: LayerNorm) {
        (self.attention, self.attentionNorm, self.norm1) = (attention, attentionNorm, norm1)
        (self.ffn1, self.ffn2, self.feedForwardNorm, self.norm2) = (ffn1, ffn2, feedForwardNorm, norm2)
    }

    /// The doc's layer with a correct post-norm layer's weights: its attention and FFN
    /// projections; `layernorm1` and the attention's own `layer_norm` both take the layer's
    /// attention LayerNorm, `layernorm2` and the FFN's `layer_norm` its FFN LayerNorm (the doc
    /// has four LayerNorms where the layer has two).
    public init(weightsOf layer: TransformerLayer) {
        self.init(attention: layer.selfAttention, attentionNorm: layer.selfAttentionNorm, norm1: layer.selfAttentionNorm,
                  ffn1: layer.feedForward.up, ffn2: layer.feedForward.down, feedForwardNorm: layer.feedForwardNorm,
                  norm2: layer.feedForwardNorm)
    }

    /// `MultiHeadAttention.forward(x, x, x, 0)`: per position t, the sentences' rows t stacked
    /// [bs, d] go through multi-head attention (the doc's `view`/`permute` split d into
    /// `n_heads` contiguous chunks of `depth`, as `MultiHeadAttention` does), then
    /// `layer_norm(x + attn)`. Returns one [sz, d] per sentence.
    /// - Throws: `.shapeMismatch` for sentences of different shapes, or not of width d_model.
    public func attend(_ batch: [Matrix], path: KernelPath = .naive) throws -> [Matrix] {
        let (sz, d) = try Self.checkBatch(batch, width: attention.modelWidth)
        var out = batch.map { _ in Matrix(rows: sz, cols: d) }
        for t in 0..<sz {
            var rowsAtT = Matrix(rows: batch.count, cols: d)                 // the doc's q[t] : [bs, d]
            for (b, s) in batch.enumerated() { for j in 0..<d { rowsAtT[b, j] = s[t, j] } }
            let attn = try attention(rowsAtT, path: path)                     // softmax over the bs axis
            let y = try attentionNorm(rowsAtT.adding(attn, "layer_norm(x + attn)"), path: path)
            for b in batch.indices { for j in 0..<d { out[b][t, j] = y[b, j] } }
        }
        return out
    }

    /// `PositionwiseFeedForward.forward`: layer_norm(z + z) with z = ffn2(ffn1(x)) — no activation,
    /// no residual from x. [sz, d] → [sz, d].
    public func feedForward(_ x: Matrix, path: KernelPath = .naive) throws -> Matrix {
        let z = try feedForwardLinear(x, path: path)
        return try feedForwardNorm(z.adding(z, "layer_norm(x + x)"), path: path)
    }

    /// The FFN before its LayerNorm: ffn2(ffn1(x)), an affine map of x.
    public func feedForwardLinear(_ x: Matrix, path: KernelPath = .naive) throws -> Matrix {
        try ffn2(ffn1(x, path: path), path: path)
    }

    /// `TransformerEncoderLayer.forward` over the batch (eval mode).
    public func callAsFunction(_ batch: [Matrix], path: KernelPath = .naive) throws -> [Matrix] {
        let attended = try attend(batch, path: path)
        return try zip(batch, attended).map { x, a in
            var h = x                                                          // x + self_attn(…)[0]
            for t in 0..<x.rows { for j in 0..<x.cols { h[t, j] += a[0, j] } }
            h = try norm1(h, path: path)
            let f = try feedForward(h, path: path)
            return try norm2(f.adding(f, "layernorm2(x + x)"), path: path)
        }
    }

    static func checkBatch(_ batch: [Matrix], width d: Int) throws -> (Int, Int) {
        guard let first = batch.first, first.rows > 0 else { throw DecoderSpecError.emptySequence(what: "Doc002EncoderLayer batch") }
        for (b, s) in batch.enumerated() where s.shape != Shape(first.rows, d) {
            throw DecoderSpecError.shapeMismatch(operation: "Doc002EncoderLayer (sentence \(b))", expected: "[\(first.rows), \(d)]",
                                                 actual: "\(s.shape)")
        }
        return (first.rows, d)
    }
}
