import TensorCore

/// One attention layer's cache: the projected keys and values of every position read so far,
/// [T, d_model] each (all heads side by side). Self-attention appends one row per step
/// (`MultiHeadAttention.callAsFunction(_:cache:path:)`, which attends with
/// `.causal(queryOffset: length before the step)`); cross-attention's is filled once from the
/// encoder output (`MultiHeadAttention.project(memory:validLength:path:)`).
public struct LayerKVCache: Sendable, Equatable {
    public var keys: Matrix
    public var values: Matrix
    /// For cross-attention over a padded source: keys at positions ≥ validLength are masked
    /// (`AttentionMask.keyPadding(validLength:)`).
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

/// The decoder's memory: one self-attention cache per layer, plus (encoder-decoder) the cross
/// keys/values computed once from the encoder output. Printing it shows what grows per step.
public struct KVCache: Sendable, Equatable, CustomStringConvertible {
    public var layers: [LayerKVCache]
    public var cross: [LayerKVCache]?

    public init(layers: Int, width: Int, cross: [LayerKVCache]? = nil) {
        self.layers = Array(repeating: .empty(width: width), count: layers)
        self.cross = cross
    }

    /// Positions held (the same in every layer).
    public var length: Int { layers.first?.length ?? 0 }

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

    /// Floats held: 2 · layers · length · d (+ the cross cache).
    public var floatCount: Int {
        layers.reduce(0) { $0 + $1.keys.storage.count + $1.values.storage.count }
            + (cross ?? []).reduce(0) { $0 + $1.keys.storage.count + $1.values.storage.count }
    }

    public var description: String {
        let width = layers.first?.keys.cols ?? 0
        var s = "KVCache: \(layers.count) layer(s) × (K, V) of [\(length), \(width)] = \(floatCount) floats"
        if let cross { s += "; cross K/V of [\(cross.first?.length ?? 0), \(width)] per layer" }
        return s
    }
}
