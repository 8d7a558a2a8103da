// Concept 1 — token embedding E[X]. See docs/embedding.md.
//
//     X = [x_0, …, x_{T−1}]  token ids in 0..<V
//     E                      the table, [V, d]; row v is the vector of token v
//     E[X]                   [T, d]; row t is E[x_t]   (a gather: no arithmetic)
//     E[X]·sqrt(d)           optional scaling (Vaswani et al. §3.4, when E is shared with the head)
//     logits = H·Eᵀ          the tied output head: [T, d]·[d, V] → [T, V]
import Kernels
import TensorCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The row gather `out[t, :] = scale · E[ids[t], :]`. Internal kernel: ids are preconditions.
public enum EmbeddingGather {
    // Paths (`KernelPath`): `.naive` copies element by element, out[t·d + j] = E[id·d + j] · scale;
    // `.optimized` (= `.parallel`) is identical to naive except: whole rows are copied with one
    // `memcpy` when scale is 1, or multiplied eight lanes at a time (SIMD8<Float>) — the same
    // single rounding per element, so the result is bitwise equal.

    /// `table` is [V, d], `out` is [ids.count, d]; every id must be in 0..<V.
    public static func gather(
        _ path: KernelPath, table: UnsafePointer<Float>, vocabularySize: Int, dimension d: Int,
        ids: UnsafeBufferPointer<Int>, scale: Float, into out: UnsafeMutablePointer<Float>
    ) {
        KernelRecorder.record(.embeddingGather, path)
        switch path {
        case .naive:
            for t in 0..<ids.count {
                let id = ids[t]
                precondition(id >= 0 && id < vocabularySize, "token id out of range")
                for j in 0..<d { out[t * d + j] = table[id * d + j] * scale }
            }
        case .optimized, .parallel:
            for t in 0..<ids.count {
                let id = ids[t]
                precondition(id >= 0 && id < vocabularySize, "token id out of range")
                let src = table + id * d
                let dst = out + t * d
                if scale == 1 {
                    // x · 1 == x bitwise for every Float (NaN payloads aside), so a copy is exact.
                    memcpy(dst, src, d * MemoryLayout<Float>.stride)
                    continue
                }
                let s = SIMD8<Float>(repeating: scale)
                var j = 0
                while j + 8 <= d {
                    let v = UnsafeRawPointer(src + j).loadUnaligned(as: SIMD8<Float>.self)
                    UnsafeMutableRawPointer(dst + j).storeBytes(of: v * s, as: SIMD8<Float>.self)
                    j += 8
                }
                while j < d { dst[j] = src[j] * scale; j += 1 }
            }
        }
    }
}

/// A token-embedding table E of shape [V, d] with lookup and the tied output head.
public struct EmbeddingTable: Sendable, Equatable {
    /// E, [V, d]. Assigning or changing it drops `weightBF16` (which was rounded from the old E).
    public var weight: Matrix { didSet { weightBF16 = nil } }
    /// E rounded to bf16 once (`roundingToBF16()`), or nil. When present, `weight` holds the same
    /// rounded values in Float (lookups read them) and the tied head on one row reads these
    /// 2-byte entries through `BF16GEMV`. See docs/decoding.md.
    public private(set) var weightBF16: BF16Matrix?
    /// V.
    public var vocabularySize: Int { weight.rows }
    /// d_model.
    public var dimension: Int { weight.cols }

    /// Wraps an existing table (e.g. a checkpoint's `word_embeddings.weight`, stored [V, d]).
    /// - Throws: `.invalidArgument` naming the shape when V or d is 0; `.nonFinite` naming the
    ///   first NaN/±Inf entry.
    public init(weight: Matrix) throws {
        guard weight.rows > 0, weight.cols > 0 else {
            throw DecoderSpecError.invalidArgument(
                what: "embedding table of shape \(weight.shape)", reason: "needs V ≥ 1 rows and d ≥ 1 columns")
        }
        try Validate.finite(weight.storage, "embedding table \(weight.shape)")
        self.weight = weight
    }

    /// Wraps a flat row-major table and checks it is exactly [V, d].
    /// - Throws: `.shapeMismatch` naming the expected [V, d] and the element count received.
    public init(vocabularySize: Int, dimension: Int, storage: [Float]) throws {
        try Validate.positive(vocabularySize, "vocabulary size V")
        try Validate.positive(dimension, "d_model")
        let (elements, overflow) = vocabularySize.multipliedReportingOverflow(by: dimension)
        guard !overflow, storage.count == elements else {
            throw DecoderSpecError.shapeMismatch(
                operation: "EmbeddingTable(vocabularySize:dimension:storage:)",
                expected: "[\(vocabularySize), \(dimension)] = \(overflow ? "too many" : String(elements)) elements",
                actual: "\(storage.count) elements")
        }
        try self.init(weight: Matrix(rows: vocabularySize, cols: dimension, storage: storage))
    }

    /// A fresh table with entries N(0, 1/d) from `SeededRNG(seed:)`: rows have expected squared
    /// norm 1, so after the sqrt(d) scaling each coordinate has variance 1 — the scale of PE.
    public static func seeded(vocabularySize: Int, dimension: Int, seed: UInt64) throws -> EmbeddingTable {
        try Validate.positive(vocabularySize, "vocabulary size V")
        try Validate.positive(dimension, "d_model")
        let (elements, overflow) = vocabularySize.multipliedReportingOverflow(by: dimension)
        guard !overflow, elements <= maxSeededElements else {
            throw DecoderSpecError.invalidArgument(
                what: "embedding table [\(vocabularySize), \(dimension)]", reason: "larger than \(maxSeededElements) elements (8 GiB)")
        }
        var rng = SeededRNG(seed: seed)
        let std = Float(1 / Double(dimension).squareRoot())
        return try EmbeddingTable(weight: rng.normalMatrix(rows: vocabularySize, cols: dimension, std: std))
    }

    /// The largest table `seeded` creates, in elements (2³¹ Floats = 8 GiB).
    public static let maxSeededElements = 1 << 31

    /// The factor sqrt(d_model) as a Float (the one rounding every scaled lookup shares).
    public var scaleFactor: Float { Float(Double(dimension).squareRoot()) }

    /// E[X] (or E[X]·sqrt(d) when `scaled`), shape [T, d] for T = ids.count.
    /// - Throws: `.emptySequence` for no ids; `.idOutOfRange` naming the id, its position and V.
    public func lookup(_ ids: [Int], scaled: Bool = false,
                       path: KernelPath = .optimized) throws -> Matrix {
        guard !ids.isEmpty else { throw DecoderSpecError.emptySequence(what: "token ids X") }
        for (position, id) in ids.enumerated() where id < 0 || id >= vocabularySize {
            throw DecoderSpecError.idOutOfRange(id: id, position: position, vocabularySize: vocabularySize)
        }
        var out = Matrix(rows: ids.count, cols: dimension)
        let scale: Float = scaled ? scaleFactor : 1
        weight.storage.withUnsafeBufferPointer { table in
            ids.withUnsafeBufferPointer { idBuffer in
                out.storage.withUnsafeMutableBufferPointer { o in
                    EmbeddingGather.gather(path, table: table.baseAddress!, vocabularySize: vocabularySize,
                                           dimension: dimension, ids: idBuffer, scale: scale, into: o.baseAddress!)
                }
            }
        }
        return out
    }

    /// The tied output head: logits = H·Eᵀ, [T, d]·[d, V] → [T, V]. Row t, column v is ⟨h_t, E_v⟩:
    /// the same matrix maps ids to vectors on the way in and vectors to token scores on the way out.
    /// - Throws: `.shapeMismatch` naming both shapes when H's width is not d.
    public func tiedLogits(_ hidden: Matrix, path: KernelPath = .optimized) throws -> Matrix {
        guard hidden.cols == dimension else {
            throw DecoderSpecError.shapeMismatch(
                operation: "tied head H·Eᵀ", expected: "H of shape [T, \(dimension)] (E is \(weight.shape))",
                actual: "\(hidden.shape)")
        }
        guard hidden.rows > 0 else { throw DecoderSpecError.emptySequence(what: "hidden rows H") }
        if let h = weightBF16, hidden.rows == 1, h.rows == vocabularySize, h.cols == dimension {
            return h.timesRow(hidden, path: path)
        }
        return try hidden.matmul(weight, transposeOther: true, path: path)
    }

    /// The table with every entry rounded to bf16 (nearest, ties to even): `weight` becomes Ê in
    /// Float, `weightBF16` Ê in 2 bytes per entry (the tied head's weight-only bf16 form).
    public func roundingToBF16() -> EmbeddingTable {
        var rounded = self
        let h = BF16Matrix(rounding: weight)
        rounded.weight = h.widened()
        rounded.weightBF16 = h
        return rounded
    }
}
