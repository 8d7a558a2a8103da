// Concept 2 — positional encoding. See docs/positional-encoding.md.
//
//     X' = E[X] + P          E[X]: [T, d] token rows,  P: [T, d] one row per position
//
// Attention alone is blind to order (permuting the tokens permutes its output), so each row gets
// a vector that depends on its position. Two kinds:
//   - sinusoidal (fixed): PE[pos, 2i] = sin(pos·ω_i), PE[pos, 2i+1] = cos(pos·ω_i), ω_i = 10000^(−2i/d)
//   - learned: a trainable table P of shape [contextLength, d]; row pos is the encoding of pos.
import Kernels
import TensorCore

/// Anything that gives one d-wide row per position: the sinusoidal formula or a learned table.
public protocol PositionEncoder: Sendable {
    /// d_model: the width of every row.
    var dimension: Int { get }
    /// Positions `0 ..< contextLength` are valid; anything else is a typed error.
    var contextLength: Int { get }
    /// Rows for positions `first ..< first + count`, shape [count, d], computed on `path` (a
    /// formula's kernel path; a learned table is a copy on every path).
    func table(count: Int, startingAt first: Int, path: KernelPath) throws -> Matrix
}

extension PositionEncoder {
    /// Checks that `first ..< first + count` is a non-empty range inside `0 ..< contextLength`.
    func validateRange(count: Int, first: Int) throws {
        guard count > 0 else { throw DecoderSpecError.emptySequence(what: "positions (count \(count))") }
        guard first >= 0 else {
            throw DecoderSpecError.invalidArgument(what: "position \(first)", reason: "positions are non-negative")
        }
        guard first <= contextLength - count else {
            let (end, overflow) = first.addingReportingOverflow(count)
            throw DecoderSpecError.invalidArgument(
                what: overflow ? "positions \(first) + \(count)" : "positions \(first)..<\(end)",
                reason: "beyond contextLength \(contextLength) (valid positions 0..<\(contextLength))")
        }
    }

    /// Rows for positions `first ..< first + count` on the optimized path, shape [count, d].
    public func table(count: Int, startingAt first: Int = 0) throws -> Matrix {
        try table(count: count, startingAt: first, path: .optimized)
    }

    /// X' = E[X] + P with P = rows `first ..< first + T`; `embeddings` is [T, d].
    /// - Throws: `.shapeMismatch` when the width is not `dimension`; range errors as `table`.
    public func add(to embeddings: Matrix, startingAt first: Int = 0, path: KernelPath = .optimized) throws -> Matrix {
        guard embeddings.cols == dimension else {
            throw DecoderSpecError.shapeMismatch(
                operation: "E[X] + P", expected: "[T, \(dimension)] (d_model of the encoding)",
                actual: "\(embeddings.shape)")
        }
        guard embeddings.rows > 0 else { throw DecoderSpecError.emptySequence(what: "embedding rows E[X]") }
        return try addPositions(embeddings, table(count: embeddings.rows, startingAt: first, path: path))
    }
}

/// X' = E[X] + P elementwise; both [T, d].
/// - Throws: `.shapeMismatch` naming both shapes when they differ.
public func addPositions(_ embeddings: Matrix, _ positions: Matrix) throws -> Matrix {
    guard embeddings.shape == positions.shape else {
        throw DecoderSpecError.shapeMismatch(operation: "E[X] + P", expected: "P of shape \(embeddings.shape)",
                                             actual: "\(positions.shape)")
    }
    var out = embeddings
    for k in out.storage.indices { out.storage[k] += positions.storage[k] }
    return out
}

/// The fixed sinusoidal encoding of "Attention Is All You Need":
///
///     PE[pos, 2i]   = sin(pos / 10000^(2i/d))
///     PE[pos, 2i+1] = cos(pos / 10000^(2i/d))
///
/// Conventions (specced): d must be even and ≥ 2 (odd d → `.invalidArgument`; a half pair has no
/// rotation property); positions must be in `0 ..< contextLength` (negative or beyond → typed error).
/// `contextLength` is the longest sequence the model accepts; its ceiling 2²⁰ keeps the stated accuracy bound
/// (docs/positional-encoding.md).
public struct SinusoidalPositionalEncoding: PositionEncoder {
    /// The largest `contextLength` accepted; below it every value is within 2⁻²⁴·|PE| + 1e-9 of exact
    /// (+ 1e-10 for positions ≤ 8192). Beyond it the recurrence's Double error would approach the
    /// budget, and no model of this suite needs longer contexts.
    public static let positionCeiling = 1 << 20

    /// The largest table `table(count:)` builds, in elements (2³¹ Floats = 8 GiB).
    public static let maxElements = 1 << 31

    public let dimension: Int
    public let contextLength: Int

    public init(dimension: Int, contextLength: Int = 8192) throws {
        guard dimension >= 2, dimension % 2 == 0 else {
            throw DecoderSpecError.invalidArgument(
                what: "d_model \(dimension) for sinusoidal PE",
                reason: "must be even and ≥ 2: each frequency fills a (sin, cos) pair of columns")
        }
        guard contextLength > 0, contextLength <= Self.positionCeiling else {
            throw DecoderSpecError.invalidArgument(
                what: "contextLength \(contextLength)", reason: "must be in 1...\(Self.positionCeiling)")
        }
        self.dimension = dimension
        self.contextLength = contextLength
    }

    /// Rows for positions `first ..< first + count`, shape [count, d] (`PositionalTable.sinusoidal`).
    public func table(count: Int, startingAt first: Int, path: KernelPath) throws -> Matrix {
        try validateRange(count: count, first: first)
        let (elements, overflow) = count.multipliedReportingOverflow(by: dimension)
        guard !overflow, elements <= Self.maxElements else {
            throw DecoderSpecError.invalidArgument(
                what: "table of \(count) × \(dimension) values", reason: "larger than \(Self.maxElements) elements (8 GiB)")
        }
        var out = Matrix(rows: count, cols: dimension)
        out.storage.withUnsafeMutableBufferPointer { buffer in
            PositionalTable.sinusoidal(path, first: first, count: count, dimension: dimension,
                                       into: buffer.baseAddress!)
        }
        return out
    }

    /// Rows for arbitrary positions (any order, repeats allowed), shape [positions.count, d].
    public func rows(at positions: [Int], path: KernelPath = .optimized) throws -> Matrix {
        guard !positions.isEmpty else { throw DecoderSpecError.emptySequence(what: "positions") }
        var out = Matrix(rows: positions.count, cols: dimension)
        for (r, p) in positions.enumerated() {
            try validateRange(count: 1, first: p)
            let row = try table(count: 1, startingAt: p, path: path)
            for j in 0..<dimension { out[r, j] = row.storage[j] }
        }
        return out
    }
}

/// A learned position table (BERT, GPT-2): P is a trainable [contextLength, d] matrix and the
/// encoding of position pos is row pos. No formula, so no rotation property; it is initialized
/// with small seeded noise and learned with the rest of the model.
public struct LearnedPositionalEncoding: PositionEncoder {
    /// [contextLength, d].
    public var weight: Matrix
    public var dimension: Int { weight.cols }
    public var contextLength: Int { weight.rows }

    /// Wraps an existing table (e.g. loaded from a checkpoint's `position_embeddings`).
    /// - Throws: `.invalidArgument` when either side of the shape is 0; `.nonFinite` naming the
    ///   first NaN/±Inf entry.
    public init(weight: Matrix) throws {
        guard weight.rows > 0, weight.cols > 0 else {
            throw DecoderSpecError.invalidArgument(
                what: "learned position table of shape \(weight.shape)", reason: "needs ≥ 1 position and d ≥ 1")
        }
        try Validate.finite(weight.storage, "learned position table \(weight.shape)")
        self.weight = weight
    }

    /// A fresh table with entries N(0, std²) from `SeededRNG(seed:)` (GPT-2 uses std 0.01–0.02).
    public static func seeded(contextLength: Int, dimension: Int, seed: UInt64, std: Float = 0.02) throws -> LearnedPositionalEncoding {
        try Validate.positive(contextLength, "contextLength")
        try Validate.positive(dimension, "d_model")
        let (elements, overflow) = contextLength.multipliedReportingOverflow(by: dimension)
        guard !overflow, elements <= SinusoidalPositionalEncoding.maxElements else {
            throw DecoderSpecError.invalidArgument(what: "learned table [\(contextLength), \(dimension)]", reason: "too large")
        }
        var rng = SeededRNG(seed: seed)
        return try LearnedPositionalEncoding(weight: rng.normalMatrix(rows: contextLength, cols: dimension, std: std))
    }

    /// Rows `first ..< first + count` of P, [count, d]: a copy, the same on every path.
    public func table(count: Int, startingAt first: Int, path: KernelPath) throws -> Matrix {
        try validateRange(count: count, first: first)
        let slice = Array(weight.storage[(first * dimension)..<((first + count) * dimension)])
        return try Matrix(rows: count, cols: dimension, storage: slice)
    }
}
