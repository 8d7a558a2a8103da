import Kernels
import TensorCore

/// Layer normalization as a layer: learned γ, β of width d and ε. See docs/layers.md.
///
///     y = γ ⊙ (x − μ) / sqrt(σ² + ε) + β,   μ, σ² over the last axis (population variance)
///
/// Shapes: x [T, d] → y [T, d]; γ, β [d].
public struct LayerNorm: Sendable, Equatable {
    public var gamma: [Float]
    public var beta: [Float]
    public var epsilon: Float

    /// - Throws: `.shapeMismatch` when γ and β differ in length; `.invalidArgument` for ε ≤ 0 or non-finite.
    public init(gamma: [Float], beta: [Float], epsilon: Float) throws {
        guard gamma.count == beta.count, !gamma.isEmpty else {
            throw DecoderSpecError.shapeMismatch(operation: "LayerNorm(gamma:beta:)", expected: "γ and β of equal, non-zero width", actual: "γ [\(gamma.count)], β [\(beta.count)]")
        }
        guard epsilon.isFinite, epsilon > 0 else {
            throw DecoderSpecError.invalidArgument(what: "LayerNorm ε = \(epsilon)", reason: "must be finite and > 0")
        }
        self.gamma = gamma
        self.beta = beta
        self.epsilon = epsilon
    }

    /// γ = 1, β = 0.
    /// - Throws: `.invalidArgument` for width ≤ 0, ε ≤ 0 or non-finite.
    public init(width: Int, epsilon: Float = 1e-5) throws {
        try Validate.positive(width, "LayerNorm width")
        try self.init(gamma: [Float](repeating: 1, count: width), beta: [Float](repeating: 0, count: width), epsilon: epsilon)
    }

    /// - Throws: `.shapeMismatch` when x is not [T, d], or when β (a public var) no longer has γ's width.
    public func callAsFunction(_ x: Matrix, path: KernelPath = .optimized) throws -> Matrix {
        guard x.cols == gamma.count else {
            throw DecoderSpecError.shapeMismatch(operation: "LayerNorm", expected: "x [T, \(gamma.count)]", actual: "x \(x.shape)")
        }
        guard beta.count == gamma.count else {  // the kernel reads d values of each
            throw DecoderSpecError.shapeMismatch(operation: "LayerNorm", expected: "β [\(gamma.count)] (γ's width)", actual: "β [\(beta.count)]")
        }
        var y = Matrix(rows: x.rows, cols: x.cols)
        if x.rows == 0 { return y }
        x.storage.withUnsafeBufferPointer { px in
            y.storage.withUnsafeMutableBufferPointer { py in
                gamma.withUnsafeBufferPointer { g in
                    beta.withUnsafeBufferPointer { b in
                        LayerNormKernel.forward(path, x: px.baseAddress!, y: py.baseAddress!, rows: x.rows, d: x.cols,
                                                gamma: g.baseAddress!, beta: b.baseAddress!, epsilon: epsilon)
                    }
                }
            }
        }
        return y
    }
}

/// RMS normalization as a layer: learned gain g of width d and ε (LLaMA, T5). See docs/layers.md.
///
///     y = g ⊙ x / sqrt(mean(x²) + ε),   mean over the last axis
///
/// Shapes: x [T, d] → y [T, d]; g [d]. No centring and no bias, unlike `LayerNorm`.
public struct RMSNorm: Sendable, Equatable {
    public var gain: [Float]
    public var epsilon: Float

    /// - Throws: `.shapeMismatch` for an empty gain; `.invalidArgument` for ε ≤ 0 or non-finite, or a non-finite gain.
    public init(gain: [Float], epsilon: Float = 1e-6) throws {
        guard !gain.isEmpty else {
            throw DecoderSpecError.shapeMismatch(operation: "RMSNorm(gain:)", expected: "g of non-zero width", actual: "g [0]")
        }
        guard epsilon.isFinite, epsilon > 0 else {
            throw DecoderSpecError.invalidArgument(what: "RMSNorm ε = \(epsilon)", reason: "must be finite and > 0")
        }
        try Validate.finite(gain[...], "RMSNorm gain")
        (self.gain, self.epsilon) = (gain, epsilon)
    }

    /// g = 1.
    public init(width: Int, epsilon: Float = 1e-6) throws {
        try Validate.positive(width, "RMSNorm width")
        try self.init(gain: [Float](repeating: 1, count: width), epsilon: epsilon)
    }

    /// - Throws: `.shapeMismatch` when x is not [T, d]; `.nonFinite` for NaN/±Inf in x.
    public func callAsFunction(_ x: Matrix, path: KernelPath = .optimized) throws -> Matrix {
        guard x.cols == gain.count else {
            throw DecoderSpecError.shapeMismatch(operation: "RMSNorm", expected: "x [T, \(gain.count)]", actual: "x \(x.shape)")
        }
        try Validate.finite(x.storage[...], "RMSNorm input \(x.shape)")
        var y = Matrix(rows: x.rows, cols: x.cols)
        if x.rows == 0 { return y }
        x.storage.withUnsafeBufferPointer { px in
            y.storage.withUnsafeMutableBufferPointer { py in
                gain.withUnsafeBufferPointer { g in
                    RMSNormKernel.forward(path, x: px.baseAddress!, y: py.baseAddress!, rows: x.rows, d: x.cols,
                                          gain: g.baseAddress!, epsilon: epsilon)
                }
            }
        }
        return y
    }
}
