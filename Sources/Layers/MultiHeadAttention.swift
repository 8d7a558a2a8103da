import Attention
import Kernels
import Masking
import TensorCore

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
/// KV cache: a decoder's self-attention keeps the projected K, V of every position read so far
/// in a `LayerKVCache` (Sources/Layers/KVCache.swift) and projects only the new rows
/// (`callAsFunction(_:cache:path:)`); cross-attention projects the encoder output once
/// (`project(memory:validLength:path:)`).
public struct MultiHeadAttention: Sendable, Equatable {
    /// W_Q, b_Q: [d_model, d_model], [d_model].
    public var query: Linear
    /// W_K, b_K.
    public var key: Linear
    /// W_V, b_V.
    public var value: Linear
    /// W_O, b_O.
    public var output: Linear
    public var heads: Int

    /// d_model.
    public var modelWidth: Int { query.inputSize }
    /// d_head = d_model / heads.
    public var headWidth: Int { modelWidth / heads }

    /// - Throws: `.invalidArgument` when `heads` ≤ 0 or does not divide d_model; `.shapeMismatch`
    ///   naming the projection (W_Q … W_O) that is not [d_model, d_model]. (Each `Linear` has
    ///   already checked its bias length and that its values are finite.)
    public init(query: Linear, key: Linear, value: Linear, output: Linear, heads: Int) throws {
        let d = query.inputSize
        for (name, l) in [("W_Q", query), ("W_K", key), ("W_V", value), ("W_O", output)] where l.weight.shape != Shape(d, d) {
            throw DecoderSpecError.shapeMismatch(operation: "MultiHeadAttention \(name)", expected: "[\(d), \(d)] ([out, in])",
                                                 actual: "\(l.weight.shape)")
        }
        guard heads > 0, d % heads == 0 else {
            throw DecoderSpecError.invalidArgument(what: "heads = \(heads)", reason: "must divide d_model = \(d)")
        }
        (self.query, self.key, self.value, self.output, self.heads) = (query, key, value, output, heads)
    }

    /// Seeded projections: weights N(0, std²) drawn W_Q, W_K, W_V, W_O in that order, zero biases.
    /// GPT-2 uses std 0.02; std = 1/√d_model keeps projections of unit-scale inputs at unit scale.
    public init(modelWidth d: Int, heads: Int, std: Float = 0.02, rng: inout SeededRNG) throws {
        try self.init(query: Linear(inputSize: d, outputSize: d, std: std, rng: &rng),
                      key: Linear(inputSize: d, outputSize: d, std: std, rng: &rng),
                      value: Linear(inputSize: d, outputSize: d, std: std, rng: &rng),
                      output: Linear(inputSize: d, outputSize: d, std: std, rng: &rng), heads: heads)
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

    /// Projections, heads, output projection, on checked inputs.
    func forward(_ x: Matrix, memory: Matrix, mask: AttentionMask, path: KernelPath) throws -> Matrix {
        let mixed = try attend(queries: query(x, path: path), keys: key(memory, path: path),
                               values: value(memory, path: path), mask: mask, path: path)
        return try output(mixed, path: path)
    }

    /// Self-attention of new rows `x` [Tn, d_model] that continue a sequence whose projected keys
    /// and values are in `cache`: appends this step's K, V to the cache, then attends over all of
    /// it with `.causal(queryOffset: cache.length before the step)` (query i is at absolute
    /// position offset + i). The cache's earlier rows were checked when they were appended and
    /// are not scanned again.
    public func callAsFunction(_ x: Matrix, cache: inout LayerKVCache, path: KernelPath = .optimized) throws -> Matrix {
        try checkInput(x, "query input")
        let offset = cache.length
        let q = try query(x, path: path)
        try cache.keys.appendRows(try key(x, path: path))
        try cache.values.appendRows(try value(x, path: path))
        let mixed = try attend(queries: q, keys: cache.keys, values: cache.values, mask: .causal(queryOffset: offset),
                               path: path, trustedKeyRows: offset)
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

    /// K = memory·W_Kᵀ + b_K and V = memory·W_Vᵀ + b_V [Tk, d_model], computed once for
    /// cross-attention; keys at positions ≥ `validLength` will be masked.
    public func project(memory: Matrix, validLength: Int? = nil, path: KernelPath = .optimized) throws -> LayerKVCache {
        try checkInput(memory, "key/value input")
        return LayerKVCache(keys: try key(memory, path: path), values: try value(memory, path: path), validLength: validLength)
    }

    /// The heads on projected queries [Tq, d_model], keys and values [Tk, d_model]: the
    /// concatenated heads Concat(head_1 … head_H) [Tq, d_model], before W_O.
    /// `trustedKeyRows`: leading rows of keys/values already checked (a KV cache's earlier rows).
    public func attend(queries: Matrix, keys: Matrix, values: Matrix, mask: AttentionMask = .none,
                       path: KernelPath = .optimized, trustedKeyRows: Int = 0) throws -> Matrix {
        for (name, m) in [("projected queries", queries), ("projected keys", keys), ("projected values", values)] where m.cols != modelWidth {
            throw DecoderSpecError.shapeMismatch(operation: "MultiHeadAttention.attend", expected: "\(name) [T, \(modelWidth)]", actual: "\(m.shape)")
        }
        return try multiHeadAttention(q: queries, k: keys, v: values, heads: heads, mask: mask, path: path,
                                      trustedKeyRows: trustedKeyRows)
    }

    /// The attention weights softmax(Q_h K_hᵀ/√d_head + M) of every head: `heads` matrices
    /// [Tq, Tk] (naive path), for printing and pictures.
    public func headWeights(_ x: Matrix, memory: Matrix, mask: AttentionMask = .none) throws -> [Matrix] {
        try checkInput(x, "query input")
        try checkInput(memory, "key/value input")
        let q = try query(x, path: .naive), k = try key(memory, path: .naive)
        let dh = headWidth
        func head(_ m: Matrix, _ h: Int) -> Matrix {
            var out = Matrix(rows: m.rows, cols: dh)
            for r in 0..<m.rows { for c in 0..<dh { out[r, c] = m[r, h * dh + c] } }
            return out
        }
        return try (0..<heads).map { h in try attentionWeights(q: head(q, h), k: head(k, h), mask: mask) }
    }

    /// An input must be [T, d_model] with T ≥ 1 and finite values.
    func checkInput(_ x: Matrix, _ what: String) throws {
        guard x.cols == modelWidth else {
            throw DecoderSpecError.shapeMismatch(operation: "MultiHeadAttention (\(what))", expected: "[T, \(modelWidth)]", actual: "\(x.shape)")
        }
        guard x.rows > 0 else { throw DecoderSpecError.emptySequence(what: "MultiHeadAttention \(what) \(x.shape)") }
        try Validate.finite(x.storage[...], "MultiHeadAttention \(what) \(x.shape)")
    }
}
