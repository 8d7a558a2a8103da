import Decoding
import TensorCore

/// Checks of the next-token filter (docs/decoding.md, docs/bug-zoo.md #13–15). `filter` maps
/// (logits, config) to the distribution actually sampled from.
public enum SamplingChecks {
    public typealias Filter = ([Float], SamplingConfig) throws -> [Double]

    /// Exactness of the comparison: both sides are a Double softmax of the same Float logits, a few
    /// roundings apart: 1e-12 relative, 1e-15 absolute for the zeros.
    static let bound = Bound.mixed(absolute: 1e-15, relative: 1e-12)

    /// softmax(z) restricted to `kept` and renormalized, in Double (GSL exp).
    static func restricted(_ logits: [Float], kept: Set<Int>) -> [Double] {
        let z = logits.indices.map { kept.contains($0) ? Double(logits[$0]) : -.infinity }
        return CheckSupport.softmax(z)
    }

    /// Ids sorted by descending logit (ties: lower id first).
    static func order(_ logits: [Float]) -> [Int] {
        logits.indices.sorted { logits[$0] != logits[$1] ? logits[$0] > logits[$1] : $0 < $1 }
    }

    static func seededLogits(_ n: Int, seed: UInt) -> [Float] { CheckSupport.matrix(1, n, seed: seed, range: -2...2).storage }

    /// The nucleus is the smallest prefix (by probability) whose mass reaches p — it includes the
    /// token that crosses p. Cases from the public reports: probabilities [0.4, 0.3, 0.2, 0.1] with
    /// p = 0.8 keep three tokens (mass 0.9, Biohub/esm PR #360); [0.5, 0.41, 0.09] with p = 0.9 keep
    /// two (rasbt/reasoning-from-scratch #164).
    public static func nucleusKeepsCrossingToken(_ filter: Filter) -> Verdict {
        for (probs, p, keep) in [([0.4, 0.3, 0.2, 0.1], Float(0.8), 3), ([0.5, 0.41, 0.09], Float(0.9), 2)] {
            let logits = probs.map { Float(CheckSupport.log($0)) }
            let expected = restricted(logits, kept: Set(order(logits).prefix(keep)))
            let v = CheckSupport.guarded("top-p \(p) on \(probs)") {
                compare(try filter(logits, SamplingConfig(topP: p)), expected, bound,
                        "top-p \(p) on probabilities \(probs) must keep the \(keep) tokens up to and including the crossing one")
            }
            if !v.passed { return v }
        }
        return .pass
    }

    /// top-p = 0 keeps exactly one token, the argmax (never an empty nucleus).
    public static func topPZeroKeepsArgmax(_ filter: Filter) -> Verdict {
        for seed in UInt(1)...3 {
            let logits = seededLogits(10, seed: seed)
            var expected = [Double](repeating: 0, count: logits.count)
            expected[order(logits)[0]] = 1
            let v = CheckSupport.guarded("top-p 0, seed \(seed)") {
                compare(try filter(logits, SamplingConfig(topP: 0)), expected, .exact, "top-p 0 must keep exactly the argmax (logits seed \(seed))")
            }
            if !v.passed { return v }
        }
        return .pass
    }

    /// top-p = 1 keeps every token: the full softmax. Several logit vectors (seeded, and
    /// log [0.5, 0.3, 0.2]), so a rounding of the cumulative sum above 1 cannot hide a collapse.
    public static func topPOneKeepsAll(_ filter: Filter) -> Verdict {
        var cases: [(String, [Float])] = (UInt(1)...4).map { ("seed \($0)", seededLogits(10, seed: $0)) }
        cases.append(("log [0.5, 0.3, 0.2]", [0.5, 0.3, 0.2].map { Float(CheckSupport.log($0)) }))
        for (name, logits) in cases {
            let v = CheckSupport.guarded("top-p 1, \(name)") {
                compare(try filter(logits, SamplingConfig(topP: 1)), restricted(logits, kept: Set(logits.indices)), bound,
                        "top-p 1 must keep every token (logits \(name))")
            }
            if !v.passed { return v }
        }
        return .pass
    }

    /// top-k keeps exactly the k most likely tokens (k = 1, 3, 9 of 10 distinct logits), renormalized.
    public static func topKKeepsExactlyK(_ filter: Filter) -> Verdict {
        let logits = seededLogits(10, seed: 11)
        for k in [1, 3, 9] {
            let v = CheckSupport.guarded("top-k \(k)") { () -> Verdict in
                let p = try filter(logits, SamplingConfig(topK: k))
                let kept = p.filter { $0 > 0 }.count
                if kept != k { return .fail("top-k \(k) kept \(kept) tokens (logits seed 11)") }
                return compare(p, restricted(logits, kept: Set(order(logits).prefix(k))), bound, "top-k \(k) vs the k largest logits")
            }
            if !v.passed { return v }
        }
        return .pass
    }
}
