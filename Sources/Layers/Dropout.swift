import TensorCore

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
