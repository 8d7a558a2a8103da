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

    public func callAsFunction(_ x: Matrix, path: KernelPath = .optimized) throws -> Matrix {
        guard x.cols == gamma.count else {
            throw DecoderSpecError.shapeMismatch(operation: "LayerNorm", expected: "x [T, \(gamma.count)]", actual: "x \(x.shape)")
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

/// The position-wise feed-forward network: the same two-layer MLP applied to every position.
///
///     FFN(x) = act(x · W₁ᵀ + b₁) · W₂ᵀ + b₂,   W₁ [d_ff, d], W₂ [d, d_ff]
///
/// act is ReLU in "Attention Is All You Need", exact GELU in BERT, tanh-GELU in GPT-2.
public struct FeedForward: Sendable, Equatable {
    public var up: Linear
    public var down: Linear
    public var activation: Activation.Function

    /// - Throws: `.shapeMismatch` when `up`'s output is not `down`'s input or `down` does not map back to `up`'s input width.
    public init(up: Linear, down: Linear, activation: Activation.Function) throws {
        guard up.outputSize == down.inputSize, down.outputSize == up.inputSize else {
            throw DecoderSpecError.shapeMismatch(operation: "FeedForward(up:down:)", expected: "up [d_ff, d], down [d, d_ff]",
                                                 actual: "up \(up.weight.shape), down \(down.weight.shape)")
        }
        self.up = up
        self.down = down
        self.activation = activation
    }

    public func callAsFunction(_ x: Matrix, path: KernelPath = .optimized) throws -> Matrix {
        var h = try up(x, path: path)
        let count = h.storage.count
        h.storage.withUnsafeMutableBufferPointer { p in
            if count > 0 { Activation.apply(activation, path, p.baseAddress!, count: count) }
        }
        return try down(h, path: path)
    }
}

/// Inverted dropout, for training only: each element is zeroed with probability p and the
/// survivors scaled by 1/(1 − p), so E[dropout(x)] = x. At inference it is the identity.
public struct Dropout: Sendable {
    public var probability: Float

    public init(probability: Float) throws {
        guard probability >= 0, probability < 1 else {
            throw DecoderSpecError.invalidArgument(what: "dropout p = \(probability)", reason: "must be in [0, 1)")
        }
        self.probability = probability
    }

    /// Applies the mask drawn from `rng`; returns x unchanged when p = 0.
    public func callAsFunction(_ x: Matrix, rng: inout SeededRNG) -> Matrix {
        guard probability > 0 else { return x }
        var y = x
        let scale = 1 / (1 - probability)
        for i in y.storage.indices {
            y.storage[i] = rng.uniform() < Double(probability) ? 0 : y.storage[i] * scale
        }
        return y
    }
}
