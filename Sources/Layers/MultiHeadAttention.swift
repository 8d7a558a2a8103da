import Attention
import Kernels
import Masking
import PositionalEncoding
import TensorCore

/// Where a `MultiHeadAttention` puts positions, if anywhere (docs/positional-encoding.md):
/// `.none` — none inside attention (absolute encodings are added to the tokens before it, or no
/// positions at all); `.rope` — queries and keys rotated by their absolute position after the
/// projections (`RotaryEmbedding`); `.alibi` — each head's logits biased by −m_h·|p_i − j|
/// (`ALiBi.slopes(heads:)`).
public enum AttentionPositions: Sendable, Equatable {
    case none
    case rope(RotaryEmbedding)
    case alibi
}

/// Multi-head attention with its four projections — the one attention layer of every model, of
/// training (`trainingForward`/`backward` in Sources/Training/AttentionBackward.swift) and of
/// notebook 04. See docs/attention.md and docs/layers.md.
///
///     Q = X_q·W_Qᵀ + b_Q,  K = X_kv·W_Kᵀ + b_K,  V = X_kv·W_Vᵀ + b_V          [T, d_model]
///     head_h = softmax(Q_h K_hᵀ / √d_head + M) V_h      (columns h·d_head ..< (h+1)·d_head)
///     MultiHead(X_q, X_kv) = Concat(head_1 … head_H) · W_Oᵀ + b_O               [Tq, d_model]
///
/// Each projection is a `Linear`, stored [out, in] as in PyTorch / Hugging Face checkpoints
/// (`q_proj.weight` loads as `query.weight` without a transpose). M is an `AttentionMask`
/// (docs/masking.md). Self-attention passes X as both inputs; cross-attention passes the decoder
/// states [Tq, d_model] and the encoder output [Tk, d_model]. The per-head attention is the
/// Attention module's `multiHeadAttention(q:k:v:heads:mask:variant:)`.
///
/// Grouped-query attention (GQA, Ainslie et al. 2023): `kvHeads` = H_kv key/value heads shared by
/// groups of H / H_kv query heads, so W_K and W_V are [H_kv·d_head, d_model] and the KV cache holds
/// H_kv·d_head floats per position and layer instead of d_model (H_kv = H: multi-head attention as
/// in "Attention Is All You Need"; H_kv = 1: multi-query attention). Positions inside attention
/// (RoPE, ALiBi) are the `positions` option (`AttentionPositions`). The training forward and
/// backward (Sources/Training/AttentionBackward.swift) cover kvHeads = heads, with RoPE, ALiBi or
/// no positions.
///
/// KV cache: a decoder's self-attention keeps the projected K, V of every position read so far
/// in a `LayerKVCache` (Sources/Layers/KVCache.swift) and projects only the new rows
/// (`callAsFunction(_:cache:path:)`); with RoPE the cached keys are already rotated to their
/// positions. Cross-attention projects the encoder output once (`project(memory:validLength:path:)`).
public struct MultiHeadAttention: Sendable, Equatable {
    /// W_Q, b_Q: [d_model, d_model], [d_model].
    public var query: Linear
    /// W_K, b_K: [kvHeads·d_head, d_model], [kvHeads·d_head].
    public var key: Linear
    /// W_V, b_V: as W_K.
    public var value: Linear
    /// W_O, b_O: [d_model, d_model].
    public var output: Linear
    public var heads: Int
    /// H_kv, dividing `heads` (= heads for multi-head attention).
    public var kvHeads: Int
    public var positions: AttentionPositions

    /// d_model.
    public var modelWidth: Int { query.inputSize }
    /// d_head = d_model / heads.
    public var headWidth: Int { modelWidth / heads }
    /// kvHeads·d_head: the width of K, V and of each cached row.
    public var keyValueWidth: Int { kvHeads * headWidth }

    /// - Parameters: kvHeads: H_kv (nil: = heads); positions: RoPE or ALiBi inside attention.
    /// - Throws: `.invalidArgument` when `heads` ≤ 0 or does not divide d_model, kvHeads does not
    ///   divide heads, or RoPE's d_head is not d_model/heads; `.shapeMismatch` naming the
    ///   projection that is not [d_model, d_model] (W_Q, W_O) or [kvHeads·d_head, d_model] (W_K,
    ///   W_V). (Each `Linear` has already checked its bias length and that its values are finite.)
    public init(query: Linear, key: Linear, value: Linear, output: Linear, heads: Int, kvHeads: Int? = nil,
                positions: AttentionPositions = .none) throws {
        let d = query.inputSize
        let headsValid = heads > 0 && d % heads == 0
        let kvHeads = kvHeads ?? heads
        let kv = headsValid && kvHeads > 0 && heads % kvHeads == 0 ? d / heads * kvHeads : d
        for (name, l, rows) in [("W_Q", query, d), ("W_K", key, kv), ("W_V", value, kv), ("W_O", output, d)] where l.weight.shape != Shape(rows, d) {
            throw DecoderSpecError.shapeMismatch(operation: "MultiHeadAttention \(name)", expected: "[\(rows), \(d)] ([out, in])",
                                                 actual: "\(l.weight.shape)")
        }
        guard headsValid else {
            throw DecoderSpecError.invalidArgument(what: "heads = \(heads)", reason: "must divide d_model = \(d)")
        }
        guard kvHeads > 0, heads % kvHeads == 0 else {
            throw DecoderSpecError.invalidArgument(what: "kvHeads = \(kvHeads)", reason: "must be positive and divide heads = \(heads)")
        }
        if case .rope(let rope) = positions, rope.headWidth != d / heads {
            throw DecoderSpecError.invalidArgument(what: "RoPE head width \(rope.headWidth)", reason: "must be d_head = \(d / heads)")
        }
        (self.query, self.key, self.value, self.output, self.heads) = (query, key, value, output, heads)
        (self.kvHeads, self.positions) = (kvHeads, positions)
    }

    /// Seeded projections: weights N(0, std²) drawn W_Q, W_K, W_V, W_O in that order, zero biases.
    /// GPT-2 uses std 0.02; std = 1/√d_model keeps projections of unit-scale inputs at unit scale.
    /// `kvHeads` and `positions` as in `init(query:key:value:output:heads:kvHeads:positions:)`.
    public init(modelWidth d: Int, heads: Int, kvHeads: Int? = nil, positions: AttentionPositions = .none, std: Float = 0.02,
                rng: inout SeededRNG) throws {
        guard heads > 0, d % heads == 0 else {
            throw DecoderSpecError.invalidArgument(what: "heads = \(heads)", reason: "must divide d_model = \(d)")
        }
        let kv = d / heads * (kvHeads ?? heads)
        try self.init(query: Linear(inputSize: d, outputSize: d, std: std, rng: &rng),
                      key: Linear(inputSize: d, outputSize: kv, std: std, rng: &rng),
                      value: Linear(inputSize: d, outputSize: kv, std: std, rng: &rng),
                      output: Linear(inputSize: d, outputSize: d, std: std, rng: &rng), heads: heads, kvHeads: kvHeads,
                      positions: positions)
    }

    /// Identity projections and zero biases: MultiHead(X_q, X_kv) = multiHeadAttention(X_q, X_kv, X_kv).
    public static func identity(modelWidth d: Int, heads: Int) throws -> MultiHeadAttention {
        try Validate.positive(d, "d_model")
        var eye = Matrix(rows: d, cols: d)
        for i in 0..<d { eye[i, i] = 1 }
        let projection = try Linear(weight: eye, bias: [Float](repeating: 0, count: d))
        return try MultiHeadAttention(query: projection, key: projection, value: projection, output: projection, heads: heads)
    }

    // MARK: - Forward

    /// Self-attention: MultiHead(X, X) [T, d_model].
    /// - Parameters: x [T, d_model]; mask over [T, T] (e.g. `.causal()` in a decoder,
    ///   `.keyPadding(validLength:)` over a padded input).
    /// - Throws: `DecoderSpecError` for x not [T, d_model], an empty x, NaN/±Inf in x, a mask that
    ///   does not fit [T, T].
    public func callAsFunction(_ x: Matrix, mask: AttentionMask = .none, path: KernelPath = .optimized) throws -> Matrix {
        try checkInput(x, "query input")
        return try forward(x, memory: x, mask: mask, path: path)
    }

    /// MultiHead(X_q, X_kv) [Tq, d_model]: the rows of `x` [Tq, d_model] attend over the rows of
    /// `memory` [Tk, d_model] (cross-attention; self-attention when memory is x).
    /// - Throws: as `callAsFunction(_:mask:path:)`, for both inputs; a mask that does not fit [Tq, Tk].
    public func callAsFunction(_ x: Matrix, memory: Matrix, mask: AttentionMask = .none, path: KernelPath = .optimized) throws -> Matrix {
        try checkInput(x, "query input")
        try checkInput(memory, "key/value input")
        return try forward(x, memory: memory, mask: mask, path: path)
    }

    /// Projections, positions (RoPE: queries from the mask's query offset under a causal mask, keys
    /// from 0), heads, output projection, on checked inputs.
    func forward(_ x: Matrix, memory: Matrix, mask: AttentionMask, path: KernelPath) throws -> Matrix {
        let start = mask.isCausal ? mask.queryOffset : 0
        let mixed = try attend(queries: rotated(query(x, path: path), from: start, path: path),
                               keys: rotated(key(memory, path: path), from: 0, path: path),
                               values: value(memory, path: path), mask: mask, path: path)
        return try output(mixed, path: path)
    }

    /// Projected queries or keys rotated to positions `from ..< from + rows` when `positions` is RoPE; else unchanged.
    public func rotated(_ projected: Matrix, from first: Int, path: KernelPath = .optimized) throws -> Matrix {
        guard case .rope(let rope) = positions else { return projected }
        return try rope.apply(to: projected, positionOffset: first, path: path)
    }

    /// Self-attention of new rows `x` [Tn, d_model] that continue a sequence whose projected keys
    /// and values are in `cache`: appends this step's K, V to the cache, then attends over all of
    /// it with `.causal(queryOffset: cache.length before the step)` (query i is at absolute
    /// position offset + i; with RoPE its query and key are rotated to that position, with ALiBi
    /// its bias is measured from it). The cache's earlier rows were checked when they were
    /// appended and are not scanned again.
    /// - Throws: as `callAsFunction(_:mask:path:)`; `.shapeMismatch` when the cache's width is not kvHeads·d_head.
    public func callAsFunction(_ x: Matrix, cache: inout LayerKVCache, path: KernelPath = .optimized) throws -> Matrix {
        try checkInput(x, "query input")
        guard cache.keyRows.cols == keyValueWidth, cache.valueRows.cols == keyValueWidth else {
            throw DecoderSpecError.shapeMismatch(operation: "MultiHeadAttention KV cache", expected: "rows of width kvHeads·d_head = \(keyValueWidth)",
                                                 actual: "K [\(cache.length), \(cache.keyRows.cols)], V [\(cache.length), \(cache.valueRows.cols)]")
        }
        let offset = cache.length
        let q = try rotated(query(x, path: path), from: offset, path: path)
        try cache.append(keys: try rotated(key(x, path: path), from: offset, path: path), values: try value(x, path: path))
        let mixed: Matrix
        do {
            mixed = try attend(queries: q, cache: cache, queryOffset: offset, path: path)
        } catch {
            cache.truncate(to: offset)
            throw error
        }
        return try output(mixed, path: path)
    }

    /// Cross-attention over keys and values projected once from the encoder output (`project`);
    /// source positions ≥ `projectedMemory.validLength` are masked.
    public func callAsFunction(_ x: Matrix, projectedMemory: LayerKVCache, path: KernelPath = .optimized) throws -> Matrix {
        try checkInput(x, "query input")
        let mask = projectedMemory.validLength.map { AttentionMask.keyPadding(validLength: $0) } ?? .none
        let mixed = try attend(queries: query(x, path: path), keys: projectedMemory.keys, values: projectedMemory.values,
                               mask: mask, path: path)
        return try output(mixed, path: path)
    }

    /// K = memory·W_Kᵀ + b_K and V = memory·W_Vᵀ + b_V [Tk, kvHeads·d_head], computed once for
    /// cross-attention (which takes no positions: no RoPE rotation); keys at positions ≥
    /// `validLength` will be masked.
    public func project(memory: Matrix, validLength: Int? = nil, path: KernelPath = .optimized) throws -> LayerKVCache {
        try checkInput(memory, "key/value input")
        return LayerKVCache(keys: try key(memory, path: path), values: try value(memory, path: path), validLength: validLength)
    }

    /// The heads on projected (and, with RoPE, rotated) queries [Tq, d_model], keys and values
    /// [Tk, kvHeads·d_head]: the concatenated heads Concat(head_1 … head_H) [Tq, d_model], before
    /// W_O; with ALiBi each head's bias is measured from the mask's query offset.
    /// `trustedKeyRows`: leading rows of keys/values already checked (a KV cache's earlier rows).
    public func attend(queries: Matrix, keys: Matrix, values: Matrix, mask: AttentionMask = .none,
                       path: KernelPath = .optimized, trustedKeyRows: Int = 0) throws -> Matrix {
        for (name, m, width) in [("projected queries", queries, modelWidth), ("projected keys", keys, keyValueWidth),
                                 ("projected values", values, keyValueWidth)] where m.cols != width {
            throw DecoderSpecError.shapeMismatch(operation: "MultiHeadAttention.attend", expected: "\(name) [T, \(width)]", actual: "\(m.shape)")
        }
        return try multiHeadAttention(q: queries, k: keys, v: values, heads: heads, kvHeads: kvHeads, mask: mask,
                                      alibiSlopes: positions == .alibi ? try ALiBi.slopes(heads: heads) : nil, path: path,
                                      trustedKeyRows: trustedKeyRows)
    }

    /// The heads of new queries [Tq, d_model] (projected, rotated) over a self-attention cache that
    /// already holds their keys and values: `cachedMultiHeadAttention` on the cache's stored rows
    /// (Float or bf16), query i at position queryOffset + i; with ALiBi the bias is measured from it.
    public func attend(queries: Matrix, cache: LayerKVCache, queryOffset: Int, path: KernelPath = .optimized) throws -> Matrix {
        guard queries.cols == modelWidth else {
            throw DecoderSpecError.shapeMismatch(operation: "MultiHeadAttention.attend", expected: "projected queries [T, \(modelWidth)]", actual: "\(queries.shape)")
        }
        return try cachedMultiHeadAttention(q: queries, keys: cache.keyRows, values: cache.valueRows, heads: heads, kvHeads: kvHeads,
                                            queryOffset: queryOffset, alibiSlopes: positions == .alibi ? try ALiBi.slopes(heads: heads) : nil,
                                            path: path)
    }

    /// The attention weights softmax(Q_h K_hᵀ/√d_head + M) of every head (with its RoPE rotation or
    /// ALiBi bias): `heads` matrices [Tq, Tk] (naive path), for printing and pictures.
    public func headWeights(_ x: Matrix, memory: Matrix, mask: AttentionMask = .none) throws -> [Matrix] {
        try checkInput(x, "query input")
        try checkInput(memory, "key/value input")
        let start = mask.isCausal ? mask.queryOffset : 0
        let q = try rotated(query(x, path: .naive), from: start, path: .naive)
        let k = try rotated(key(memory, path: .naive), from: 0, path: .naive)
        let dh = headWidth
        func head(_ m: Matrix, _ h: Int) -> Matrix {
            var out = Matrix(rows: m.rows, cols: dh)
            for r in 0..<m.rows { for c in 0..<dh { out[r, c] = m[r, h * dh + c] } }
            return out
        }
        let slopes = positions == .alibi ? try ALiBi.slopes(heads: heads) : nil
        return try (0..<heads).map { h in
            var headMask = mask
            if let slopes {
                headMask = try mask.combined(with: .additive(ALiBi.bias(slope: slopes[h], queries: q.rows, keys: k.rows, queryOffset: start)))
            }
            return try attentionWeights(q: head(q, h), k: head(k, h / (heads / kvHeads)), mask: headMask)
        }
    }

    /// This layer with RoPE in convention `target`: the rows of W_Q, W_K (and b_Q, b_K) permuted
    /// within each head (`RotaryEmbedding.permutedRows(_:to:)`), so the attention scores are the
    /// same — how a half-split (Hugging Face) checkpoint runs on interleaved (Meta) code and back.
    /// Without RoPE, or already in `target`, the layer is returned unchanged.
    public func convertingRoPE(to target: RotaryEmbedding.Convention) throws -> MultiHeadAttention {
        guard case .rope(let rope) = positions, rope.convention != target else { return self }
        func permuted(_ l: Linear) throws -> Linear {
            let bias = try l.bias.map { try rope.permutedRows(Matrix(rows: $0.count, cols: 1, storage: $0), to: target).storage }
            return try Linear(weight: rope.permutedRows(l.weight, to: target), bias: bias)
        }
        var converted = self
        (converted.query, converted.key) = (try permuted(query), try permuted(key))
        converted.positions = .rope(try RotaryEmbedding(headWidth: rope.headWidth, base: rope.base, convention: target))
        return converted
    }

    /// An empty self-attention cache of this layer's width, kvHeads·d_head.
    public func emptyCache() -> LayerKVCache { .empty(width: keyValueWidth) }

    /// An input must be [T, d_model] with T ≥ 1 and finite values.
    func checkInput(_ x: Matrix, _ what: String) throws {
        guard x.cols == modelWidth else {
            throw DecoderSpecError.shapeMismatch(operation: "MultiHeadAttention (\(what))", expected: "[T, \(modelWidth)]", actual: "\(x.shape)")
        }
        guard x.rows > 0 else { throw DecoderSpecError.emptySequence(what: "MultiHeadAttention \(what) \(x.shape)") }
        try Validate.finite(x.storage[...], "MultiHeadAttention \(what) \(x.shape)")
    }
}
