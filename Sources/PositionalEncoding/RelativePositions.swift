// Positions inside attention instead of added to the tokens: RoPE rotates queries and keys, ALiBi
// biases the logits. See docs/positional-encoding.md, "RoPE" and "ALiBi".
import Kernels
import TensorCore

/// Rotary position embedding of queries or keys: each head's pair i rotated by m·θ_i,
/// θ_i = base^(−2i/d_head). The formula, the conventions and the precision are `RoPEKernel`'s.
///
/// Shapes: x [T, heads·d_head] (all heads side by side, as a projection outputs them); row r is
/// at absolute position `positionOffset + r` (a KV-cached step passes the cache length).
public struct RotaryEmbedding: Sendable, Equatable {
    public typealias Convention = RoPEKernel.Convention

    /// d_head (even).
    public var headWidth: Int
    /// θ_0 … θ_{d/2−1} = base^(−2i/d): 10000 in RoFormer, LLaMA 1/2; 500000 in LLaMA 3.
    public var base: Double
    public var convention: Convention

    /// - Throws: `.invalidArgument` for an odd or non-positive d_head, or base not finite and > 1.
    public init(headWidth: Int, base: Double = 10_000, convention: Convention = .halfSplit) throws {
        guard headWidth > 0, headWidth % 2 == 0 else {
            throw DecoderSpecError.invalidArgument(what: "RoPE head width \(headWidth)", reason: "must be even and > 0 (coordinates rotate in pairs)")
        }
        guard base.isFinite, base > 1 else {
            throw DecoderSpecError.invalidArgument(what: "RoPE base θ = \(base)", reason: "must be finite and > 1")
        }
        (self.headWidth, self.base, self.convention) = (headWidth, base, convention)
    }

    /// x with every head of row r rotated to position `positionOffset + r`.
    /// - Throws: `.shapeMismatch` when x's width is not a multiple of d_head; `.invalidArgument`
    ///   for a negative offset or one whose positions overflow.
    public func apply(to x: Matrix, positionOffset: Int = 0, path: KernelPath = .optimized) throws -> Matrix {
        guard x.cols > 0, x.cols % headWidth == 0 else {
            throw DecoderSpecError.shapeMismatch(operation: "RoPE", expected: "x [T, heads·\(headWidth)]", actual: "x \(x.shape)")
        }
        guard positionOffset >= 0, !positionOffset.addingReportingOverflow(x.rows).overflow else {
            throw DecoderSpecError.invalidArgument(what: "RoPE position offset \(positionOffset)", reason: "must be ≥ 0 and leave room for \(x.rows) rows")
        }
        var y = x
        if x.rows == 0 { return y }
        y.storage.withUnsafeMutableBufferPointer { p in
            RoPEKernel.rotate(path, p.baseAddress!, rows: x.rows, heads: x.cols / headWidth, headWidth: headWidth,
                              positionOffset: positionOffset, base: base, convention: convention)
        }
        return y
    }

    /// The rows of W_Q or W_K [heads·d_head, d_model] ([out, in]; a bias as [heads·d_head, 1])
    /// permuted within every head from this embedding's convention to `target`, so that a
    /// checkpoint trained with one convention gives the same scores on code of the other:
    /// half-split → interleaved moves row i to 2i and row i + d/2 to 2i + 1
    /// (`RoPEKernel.halfSplitToInterleaved`); the reverse is its inverse. The same target returns
    /// the weight unchanged.
    /// - Throws: `.shapeMismatch` when the row count is not a multiple of d_head.
    public func permutedRows(_ weight: Matrix, to target: Convention) throws -> Matrix {
        guard weight.rows > 0, weight.rows % headWidth == 0 else {
            throw DecoderSpecError.shapeMismatch(operation: "RoPE weight permutation", expected: "[heads·\(headWidth), d_model]",
                                                 actual: "\(weight.shape)")
        }
        if target == convention { return weight }
        let perm = target == .interleaved ? RoPEKernel.halfSplitToInterleaved(headWidth: headWidth)
                                          : RoPEKernel.interleavedToHalfSplit(headWidth: headWidth)
        var out = weight
        for h in 0..<(weight.rows / headWidth) {
            for k in 0..<headWidth {
                let src = (h * headWidth + perm[k]) * weight.cols, dst = (h * headWidth + k) * weight.cols
                for c in 0..<weight.cols { out.storage[dst + c] = weight.storage[src + c] }
            }
        }
        return out
    }
}

/// ALiBi's slopes and bias (`ALiBiKernel`: the formula and the non-power-of-two rule).
public enum ALiBi {
    /// m_1 … m_n for n = `heads` (geometric; the reference code's rule when n is not a power of two).
    /// - Throws: `.invalidArgument` for heads ≤ 0.
    public static func slopes(heads: Int) throws -> [Float] {
        try Validate.positive(heads, "ALiBi heads")
        return ALiBiKernel.slopes(heads: heads).map { Float($0) }
    }

    /// Head h's bias [queries, keys]: B[i, j] = −m_h·|queryOffset + i − j|.
    /// - Throws: `.invalidArgument` for a non-finite slope, sizes ≤ 0 or a negative offset.
    public static func bias(slope: Float, queries: Int, keys: Int, queryOffset: Int = 0) throws -> Matrix {
        guard slope.isFinite else { throw DecoderSpecError.invalidArgument(what: "ALiBi slope \(slope)", reason: "must be finite") }
        try Validate.positive(queries, "ALiBi queries")
        try Validate.positive(keys, "ALiBi keys")
        guard queryOffset >= 0 else { throw DecoderSpecError.invalidArgument(what: "ALiBi query offset \(queryOffset)", reason: "must be ≥ 0") }
        return try Matrix(rows: queries, cols: keys, storage: ALiBiKernel.bias(slope: slope, queries: queries, keys: keys, queryOffset: queryOffset))
    }
}
