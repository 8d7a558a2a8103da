import Kernels
import TensorCore

/// Multi-head attention as a layer with its projections, and the KV cache it keeps when it is a
/// decoder's self-attention. See docs/layers.md and docs/attention.md.
///
///     Q = X_q·W_Qᵀ + b_Q,  K = X_kv·W_Kᵀ + b_K,  V = X_kv·W_Vᵀ + b_V          [T, d_model]
///     head_h = softmax(Q_h K_hᵀ / sqrt(d_head) + M) V_h      (columns h·d_head ..< (h+1)·d_head)
///     out = Concat(head_1 … head_H) · W_Oᵀ + b_O
///
/// Weights are stored [out, in] as in PyTorch / Hugging Face checkpoints.
public struct AttentionLayer: Sendable, Equatable {
    public var query: Linear
    public var key: Linear
    public var value: Linear
    public var output: Linear
    public var heads: Int

    public var modelWidth: Int { query.inputSize }
    public var headWidth: Int { modelWidth / heads }

    /// - Throws: `.invalidArgument` when `heads` does not divide d_model; `.shapeMismatch` when
    ///   the projections are not all [d_model, d_model].
    public init(query: Linear, key: Linear, value: Linear, output: Linear, heads: Int) throws {
        let d = query.inputSize
        for (name, l) in [("W_Q", query), ("W_K", key), ("W_V", value), ("W_O", output)] where l.weight.shape != Shape(d, d) {
            throw DecoderSpecError.shapeMismatch(operation: "AttentionLayer \(name)", expected: "[\(d), \(d)]", actual: "\(l.weight.shape)")
        }
        guard heads > 0, d % heads == 0 else {
            throw DecoderSpecError.invalidArgument(what: "heads = \(heads)", reason: "must divide d_model = \(d)")
        }
        (self.query, self.key, self.value, self.output, self.heads) = (query, key, value, output, heads)
    }

    /// Seeded N(0, std²) projections.
    public init(modelWidth d: Int, heads: Int, std: Float = 0.02, rng: inout SeededRNG) throws {
        try self.init(query: Linear(inputSize: d, outputSize: d, std: std, rng: &rng),
                      key: Linear(inputSize: d, outputSize: d, std: std, rng: &rng),
                      value: Linear(inputSize: d, outputSize: d, std: std, rng: &rng),
                      output: Linear(inputSize: d, outputSize: d, std: std, rng: &rng), heads: heads)
    }

    /// Attention of the rows of `x` [Tq, d] over the rows of `memory` [Tk, d] (self-attention when
    /// memory is x). `causal`: query i sees keys j ≤ i. `memoryValidLength`: keys ≥ it are padding.
    public func callAsFunction(_ x: Matrix, memory: Matrix, causal: Bool, memoryValidLength: Int? = nil,
                               backend: Backend = .optimized) throws -> Matrix {
        let q = try query(x, backend: backend)
        let k = try key(memory, backend: backend)
        let v = try value(memory, backend: backend)
        let mixed = try HeadAttention.attend(q: q, k: k, v: v, heads: heads, causalOffset: causal ? 0 : nil,
                                             keyValidLength: memoryValidLength, backend: backend)
        return try output(mixed, backend: backend)
    }

    /// Self-attention of new rows `x` [Tn, d] that continue a sequence whose projected keys and
    /// values are in `cache`: appends this step's K, V to the cache, then attends causally over
    /// all of it (query i is at absolute position cache.length + i).
    public func callAsFunction(_ x: Matrix, cache: inout LayerKVCache, backend: Backend = .optimized) throws -> Matrix {
        let offset = cache.length
        let q = try query(x, backend: backend)
        try cache.keys.appendRows(try key(x, backend: backend))
        try cache.values.appendRows(try value(x, backend: backend))
        let mixed = try HeadAttention.attend(q: q, k: cache.keys, v: cache.values, heads: heads, causalOffset: offset,
                                             keyValidLength: nil, backend: backend, cachedRows: offset)
        return try output(mixed, backend: backend)
    }

    /// Cross-attention over keys/values projected once from the encoder output (the cross cache).
    public func callAsFunction(_ x: Matrix, projectedMemory: LayerKVCache, backend: Backend = .optimized) throws -> Matrix {
        let q = try query(x, backend: backend)
        let mixed = try HeadAttention.attend(q: q, k: projectedMemory.keys, v: projectedMemory.values, heads: heads,
                                             causalOffset: nil, keyValidLength: projectedMemory.validLength, backend: backend)
        return try output(mixed, backend: backend)
    }

    /// K = memory·W_Kᵀ + b_K and V likewise, computed once for cross-attention.
    public func project(memory: Matrix, validLength: Int? = nil, backend: Backend = .optimized) throws -> LayerKVCache {
        LayerKVCache(keys: try key(memory, backend: backend), values: try value(memory, backend: backend), validLength: validLength)
    }
}

/// One attention layer's cache: the projected keys and values of every position read so far,
/// [T, d_model] each (all heads side by side). Self-attention appends one row per step;
/// cross-attention's is filled once from the encoder output.
public struct LayerKVCache: Sendable, Equatable {
    public var keys: Matrix
    public var values: Matrix
    /// For cross-attention over a padded source: keys at positions ≥ validLength are masked.
    public var validLength: Int?

    public init(keys: Matrix, values: Matrix, validLength: Int? = nil) {
        self.keys = keys
        self.values = values
        self.validLength = validLength
    }

    public static func empty(width: Int) -> LayerKVCache {
        LayerKVCache(keys: Matrix(rows: 0, cols: width), values: Matrix(rows: 0, cols: width))
    }

    /// Positions held.
    public var length: Int { keys.rows }

    /// Drops the positions from `length` on (a failed step's rows), keeping the first ones.
    public mutating func truncate(to length: Int) {
        keys.truncateRows(to: Swift.min(length, keys.rows))
        values.truncateRows(to: Swift.min(length, values.rows))
    }
}
