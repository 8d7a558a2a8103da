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

/// The gated feed-forward network of LLaMA-style blocks (Shazeer 2020). See docs/layers.md.
///
///     FFN_SwiGLU(x) = W₂ (SiLU(W₁x) ⊙ W₃x),    W₁, W₃ [d_ff, d] (gate, up), W₂ [d, d_ff] (down)
///
/// Hugging Face's LLaMA names them `gate_proj` (W₁), `up_proj` (W₃), `down_proj` (W₂). The
/// elementwise SiLU(a) ⊙ b is `SwiGLUKernel`.
public struct SwiGLUFeedForward: Sendable, Equatable {
    public var gate: Linear
    public var up: Linear
    public var down: Linear

    /// - Throws: `.shapeMismatch` unless gate and up are [d_ff, d] and down is [d, d_ff].
    public init(gate: Linear, up: Linear, down: Linear) throws {
        guard gate.weight.shape == up.weight.shape, down.inputSize == gate.outputSize, down.outputSize == gate.inputSize else {
            throw DecoderSpecError.shapeMismatch(operation: "SwiGLUFeedForward(gate:up:down:)", expected: "gate and up [d_ff, d], down [d, d_ff]",
                                                 actual: "gate \(gate.weight.shape), up \(up.weight.shape), down \(down.weight.shape)")
        }
        (self.gate, self.up, self.down) = (gate, up, down)
    }

    /// Seeded: W₁, W₃, W₂ drawn in that order, N(0, std²), no biases (as in LLaMA).
    public init(modelWidth d: Int, feedForwardWidth f: Int, std: Float = 0.02, rng: inout SeededRNG) throws {
        try self.init(gate: Linear(inputSize: d, outputSize: f, std: std, bias: false, rng: &rng),
                      up: Linear(inputSize: d, outputSize: f, std: std, bias: false, rng: &rng),
                      down: Linear(inputSize: f, outputSize: d, std: std, bias: false, rng: &rng))
    }

    public func callAsFunction(_ x: Matrix, path: KernelPath = .optimized) throws -> Matrix {
        var a = try gate(x, path: path)
        let b = try up(x, path: path)
        // gate and up are public vars: the kernel reads `count` values of both.
        guard a.shape == b.shape else {
            throw DecoderSpecError.shapeMismatch(operation: "SwiGLU: SiLU(W₁x) ⊙ W₃x", expected: "W₃x \(a.shape) (as W₁x)", actual: "W₃x \(b.shape)")
        }
        let count = a.storage.count
        a.storage.withUnsafeMutableBufferPointer { pa in
            b.storage.withUnsafeBufferPointer { pb in
                if count > 0 { SwiGLUKernel.apply(path, gate: pa.baseAddress!, up: pb.baseAddress!, out: pa.baseAddress!, count: count) }
            }
        }
        return try down(a, path: path)
    }
}
