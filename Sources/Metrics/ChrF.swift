import Foundation
import TensorCore

/// chrF with sacreBLEU's defaults (character n-grams 1…6, no word n-grams, β = 2, whitespace
/// removed, effective-order averaging), docs/metrics.md:
///
///   per order n: Pₙ = Σ matchₙ / Σ hypₙ,  Rₙ = Σ matchₙ / Σ refₙ   (corpus sums)
///   P̄, R̄ = means over the orders where both hypothesis and reference have n-grams
///   chrF = 100 · (1 + β²) P̄ R̄ / (β² P̄ + R̄)      (0 when P̄ + R̄ = 0)
///
/// With several references, each sentence uses the reference with the best sentence-level chrF.
public struct ChrFScore: Equatable, Sendable {
    /// 0…100.
    public var score: Double
    /// [hyp, ref, match] counts per order 1…6, summed over the corpus.
    public var statistics: [[Int]]
    public var referenceCount: Int
    public var lowercase: Bool

    /// sacreBLEU's format: `chrF2 = 45.12`.
    public var formatted: String { String(format: "chrF2 = %.2f", score) }
    public var signature: String {
        "nrefs:\(referenceCount)|case:\(lowercase ? "lc" : "mixed")|eff:yes|nc:6|nw:0|space:no|version:sacrebleu-2-semantics(DecoderSpec)"
    }
}

public enum ChrF {
    public static let charOrder = 6
    public static let beta = 2.0

    public static func corpus(hypotheses: [String], references: [[String]], lowercase: Bool = false) throws -> ChrFScore {
        guard !references.isEmpty else { throw DecoderSpecError.emptySequence(what: "references (at least one reference stream)") }
        guard !hypotheses.isEmpty else { throw DecoderSpecError.emptySequence(what: "hypotheses (a corpus score needs at least one sentence)") }
        for (k, r) in references.enumerated() where r.count != hypotheses.count {
            throw DecoderSpecError.shapeMismatch(operation: "ChrF.corpus reference stream \(k)", expected: "\(hypotheses.count) lines (one per hypothesis)", actual: "\(r.count) lines")
        }
        var total = [[Int]](repeating: [0, 0, 0], count: charOrder)
        for i in hypotheses.indices {
            let hyp = ngrams(lowercase ? hypotheses[i].lowercased() : hypotheses[i])
            var best: [[Int]] = []
            var bestF = -1.0
            for stream in references {
                let ref = ngrams(lowercase ? stream[i].lowercased() : stream[i])
                let stats = (0..<charOrder).map { matchStatistics(hyp[$0], ref[$0]) }
                let f = fScore(stats)
                if f > bestF { bestF = f; best = stats }
            }
            for n in 0..<charOrder { for k in 0..<3 { total[n][k] += best[n][k] } }
        }
        return ChrFScore(score: fScore(total), statistics: total, referenceCount: references.count, lowercase: lowercase)
    }

    /// Character n-gram counts of orders 1…6 after removing whitespace (Python's `str.split()`).
    static func ngrams(_ s: String) -> [[ArraySlice<Unicode.Scalar>: Int]] {
        let chars = s.unicodeScalars.filter { !Tokenizer13a.isPythonSpace($0) }
        let a = Array(chars)
        return (1...charOrder).map { n in
            var c: [ArraySlice<Unicode.Scalar>: Int] = [:]
            if a.count >= n { for i in 0...(a.count - n) { c[a[i..<(i + n)], default: 0] += 1 } }
            return c
        }
    }

    /// [hyp, ref, match]; the hypothesis count is 0 when the reference has no n-grams of this order.
    static func matchStatistics(_ hyp: [ArraySlice<Unicode.Scalar>: Int], _ ref: [ArraySlice<Unicode.Scalar>: Int]) -> [Int] {
        var match = 0, hypCount = 0
        for (g, c) in hyp {
            hypCount += c
            if let r = ref[g] { match += min(c, r) }
        }
        return [ref.isEmpty ? 0 : hypCount, ref.values.reduce(0, +), match]
    }

    /// sacreBLEU's `_compute_f_score` with effective-order averaging (eps_smoothing off).
    static func fScore(_ stats: [[Int]]) -> Double {
        let factor = beta * beta
        var avgP = 0.0, avgR = 0.0, effective = 0
        for s in stats where s[0] > 0 && s[1] > 0 {
            avgP += Double(s[2]) / Double(s[0])
            avgR += Double(s[2]) / Double(s[1])
            effective += 1
        }
        guard effective > 0 else { return 0 }
        avgP /= Double(effective)
        avgR /= Double(effective)
        guard avgP + avgR > 0 else { return 0 }
        return 100 * (1 + factor) * avgP * avgR / (factor * avgP + avgR)
    }
}
