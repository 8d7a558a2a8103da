import Kernels
import TensorCore

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
