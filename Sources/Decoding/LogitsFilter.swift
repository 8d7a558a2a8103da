#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TensorCore

/// How the next token is chosen from the logits z of the last position. See docs/decoding.md.
///
/// Sampling applies, in this order (the order of Hugging Face's `generate`):
///
///     1. temperature τ:  z ← z / τ                      (τ → 0 is greedy; τ = 1 leaves z as is)
///     2. top-k:          keep the k largest z, set the rest to −∞
///     3. top-p (nucleus): sort p = softmax(z) descending; keep the smallest prefix whose
///                        cumulative probability reaches p — including the token that crosses
///                        the threshold — and always at least one token
///     4. renormalize and draw from the remaining distribution.
public struct SamplingConfig: Sendable, Equatable {
    /// τ > 0. A temperature of exactly 0 is accepted and means greedy (argmax).
    public var temperature: Float
    /// Keep the k most likely tokens; nil disables. k ≥ 1.
    public var topK: Int?
    /// Nucleus mass in [0, 1]; nil (or 1) disables. 0 keeps only the most likely token.
    public var topP: Float?

    public init(temperature: Float = 1, topK: Int? = nil, topP: Float? = nil) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
    }

    /// Throws `.invalidArgument` for τ < 0 or non-finite, k < 1, p ∉ [0, 1].
    public func validate() throws {
        guard temperature.isFinite, temperature >= 0 else {
            throw DecoderSpecError.invalidArgument(what: "temperature \(temperature)", reason: "must be finite and ≥ 0 (0 means greedy)")
        }
        if let k = topK, k < 1 {
            throw DecoderSpecError.invalidArgument(what: "top-k \(k)", reason: "must be ≥ 1 (omit it to disable)")
        }
        if let p = topP, !(p >= 0 && p <= 1) {
            throw DecoderSpecError.invalidArgument(what: "top-p \(p)", reason: "must be in [0, 1]")
        }
    }
}

/// The distribution a sampling configuration actually draws from: the pipeline of
/// `SamplingConfig` made explicit, so the specs can compare empirical frequencies with it.
public enum LogitsFilter {
    /// The filtered, renormalized next-token distribution, in Double for exact bookkeeping.
    /// - Parameters:
    ///   - logits: [V] finite logits of the last position.
    ///   - config: the temperature, top-k and top-p to apply, in that order.
    /// - Returns: [V] probabilities summing to 1, exactly 0 outside the kept set.
    public static func distribution(_ logits: [Float], _ config: SamplingConfig) throws -> [Double] {
        try config.validate()
        guard !logits.isEmpty else { throw DecoderSpecError.emptySequence(what: "logits") }
        try Validate.finite(logits, "logits")
        let v = logits.count
        if config.temperature == 0 {
            var p = [Double](repeating: 0, count: v)
            p[argmax(logits)] = 1
            return p
        }
        var z = logits.map { Double($0) / Double(config.temperature) }
        // Token order by descending logit, ties broken by the lower id (a stable, documented order).
        let order = (0..<v).sorted { z[$0] != z[$1] ? z[$0] > z[$1] : $0 < $1 }
        if let k = config.topK, k < v {
            for id in order[k...] { z[id] = -.infinity }
        }
        var p = softmax(z)
        if let topP = config.topP, topP < 1 {
            var cumulative = 0.0
            var keep = 0
            for id in order where p[id] > 0 {
                cumulative += p[id]
                keep += 1
                if cumulative >= Double(topP) { break }  // the crossing token is kept
            }
            keep = max(keep, 1)
            for id in order[keep...] { p[id] = 0 }
            let total = p.reduce(0, +)
            p = p.map { $0 / total }
        }
        return p
    }

    /// Index of the largest logit; ties go to the lowest id. Precondition: non-empty.
    public static func argmax(_ x: [Float]) -> Int {
        precondition(!x.isEmpty, "argmax of no logits (the checked entry point is distribution(_:_:))")
        var best = 0
        for i in 1..<x.count where x[i] > x[best] { best = i }
        return best
    }

    /// log softmax(z) in Double: z − max − log Σ exp(z − max). −∞ entries stay −∞.
    public static func logSoftmax(_ z: [Float]) -> [Double] {
        precondition(!z.isEmpty, "logSoftmax of no logits")
        let m = Double(z.max()!)
        let logZ = m + log(z.reduce(0.0) { $0 + exp(Double($1) - m) })
        return z.map { Double($0) - logZ }
    }

    static func softmax(_ z: [Double]) -> [Double] {
        let m = z.max()!
        let e = z.map { exp($0 - m) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }

    /// One draw by inverse CDF: the first id whose cumulative probability exceeds u ~ U[0, 1).
    public static func draw(_ p: [Double], using rng: inout SeededRNG) -> Int {
        let u = rng.uniform()
        var cumulative = 0.0
        var last = 0
        for (id, pi) in p.enumerated() where pi > 0 {
            cumulative += pi
            last = id
            if u < cumulative { return id }
        }
        return last  // u fell in the rounding gap at the top: the last kept token
    }
}
