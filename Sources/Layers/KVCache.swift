import Kernels
import TensorCore

/// One attention layer's cache: the projected keys and values of every position read so far,
/// [T, d_model] each (all heads side by side), stored as Float or — `KVFormat.bf16` — rounded to
/// bf16 when written (docs/decoding.md, "bf16 KV cache"). Self-attention appends one row per step
/// (`MultiHeadAttention.callAsFunction(_:cache:path:)`, which attends with
/// `.causal(queryOffset: length before the step)`); cross-attention's is filled once from the
/// encoder output (`MultiHeadAttention.project(memory:validLength:path:)`).
public struct LayerKVCache: Sendable, Equatable {
    /// The stored rows (`CacheRows`): what attention reads.
    public private(set) var keyRows: CacheRows
    public private(set) var valueRows: CacheRows
    /// For cross-attention over a padded source: keys at positions ≥ validLength are masked
    /// (`AttentionMask.keyPadding(validLength:)`).
    public var validLength: Int?

    /// A cache holding `keys` and `values` (rounded to bf16 in that format).
    public init(keys: Matrix, values: Matrix, validLength: Int? = nil, format: KVFormat = .fp32) {
        keyRows = CacheRows(keys, format: format)
        valueRows = CacheRows(values, format: format)
        self.validLength = validLength
    }

    public static func empty(width: Int, format: KVFormat = .fp32) -> LayerKVCache {
        LayerKVCache(keys: Matrix(rows: 0, cols: width), values: Matrix(rows: 0, cols: width), format: format)
    }

    /// The keys [length, width] as Floats (a bf16 cache's widened: a copy).
    public var keys: Matrix { keyRows.matrix }
    /// The values [length, width] as Floats (a bf16 cache's widened: a copy).
    public var values: Matrix { valueRows.matrix }
    public var format: KVFormat { keyRows.format }

    /// Positions held.
    public var length: Int { keyRows.rows }

    /// Appends one step's keys and values [Tn, width] (rounded to bf16 in that format).
    /// - Throws: `.shapeMismatch` when a width differs from the cache's or the row counts differ;
    ///   `.nonFinite` when a row holds NaN/±Inf, or a value rounds to ±∞ in bf16 (beyond ≈ 3.39·10³⁸).
    ///   Nothing is appended then.
    public mutating func append(keys: Matrix, values: Matrix) throws {
        guard keys.cols == keyRows.cols, values.cols == valueRows.cols, keys.rows == values.rows else {
            throw DecoderSpecError.shapeMismatch(operation: "KV cache append", expected: "K and V rows of width \(keyRows.cols)",
                                                 actual: "K \(keys.shape), V \(values.shape)")
        }
        try Validate.finite(keys.storage, "keys K \(keys.shape)")
        try Validate.finite(values.storage, "values V \(values.shape)")
        if format == .bf16 {
            for (name, m) in [("keys K", keys), ("values V", values)] {
                if let i = m.storage.firstIndex(where: { !BFloat16.widen(BFloat16.round($0)).isFinite }) {
                    throw DecoderSpecError.nonFinite(what: "\(name) \(m.shape) rounded to bf16 (beyond the largest bf16, ≈ 3.39e38)",
                                                     index: i, value: Double(m.storage[i]))
                }
            }
        }
        keyRows.append(keys)
        valueRows.append(values)
    }

    /// Drops the positions from `length` on (a failed step's rows), keeping the first ones.
    public mutating func truncate(to length: Int) {
        keyRows.truncate(to: length)
        valueRows.truncate(to: length)
    }

    /// Bytes of stored keys and values.
    public var bytes: Int { keyRows.bytes + valueRows.bytes }
}

/// The decoder's memory: one self-attention cache per layer, plus (encoder-decoder) the cross
/// keys/values computed once from the encoder output. Printing it shows what grows per step.
public struct KVCache: Sendable, Equatable, CustomStringConvertible {
    public var layers: [LayerKVCache]
    public var cross: [LayerKVCache]?

    /// `format`: how the self-attention caches store their rows (the cross caches are made by
    /// `MultiHeadAttention.project`, in Float).
    public init(layers: Int, width: Int, cross: [LayerKVCache]? = nil, format: KVFormat = .fp32) {
        self.layers = Array(repeating: .empty(width: width, format: format), count: layers)
        self.cross = cross
    }

    /// Positions held (the same in every layer).
    public var length: Int { layers.first?.length ?? 0 }

    /// How the self-attention caches store their rows.
    public var format: KVFormat { layers.first?.format ?? .fp32 }

    /// Rolls every self-attention layer back to `length` positions.
    public mutating func truncate(to length: Int) {
        for l in layers.indices { layers[l].truncate(to: length) }
    }

    /// Runs one decoding step on the cache; if it throws half-way (some layers appended their K/V,
    /// a later check failed), the cache is rolled back to its length before the step.
    public mutating func step<T>(_ body: (inout KVCache) throws -> T) rethrows -> T {
        let before = length
        do { return try body(&self) } catch { truncate(to: before); throw error }
    }

    /// Values held: 2 · layers · length · d (+ the cross cache).
    public var floatCount: Int {
        layers.reduce(0) { $0 + 2 * $1.length * $1.keyRows.cols }
            + (cross ?? []).reduce(0) { $0 + 2 * $1.length * $1.keyRows.cols }
    }

    /// Bytes held (2 per value in bf16, 4 in Float).
    public var bytes: Int { layers.reduce(0) { $0 + $1.bytes } + (cross ?? []).reduce(0) { $0 + $1.bytes } }

    public var description: String {
        let width = layers.first?.keyRows.cols ?? 0
        var s = "KVCache: \(layers.count) layer(s) × (K, V) of [\(length), \(width)] = \(floatCount) floats"
        if format == .bf16 { s = "KVCache (bf16): \(layers.count) layer(s) × (K, V) of [\(length), \(width)] = \(floatCount) values, \(bytes) bytes" }
        if let cross { s += "; cross K/V of [\(cross.first?.length ?? 0), \(width)] per layer" }
        return s
    }
}
