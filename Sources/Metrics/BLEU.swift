import Foundation
import TensorCore

/// sacreBLEU's default tokenizer "13a" (the mteval-v13a.pl rules), transcribed on Unicode scalars.
///
/// 1. remove `<skipped>`, join `-\n` line breaks, newlines → spaces, unescape `&quot; &amp; &lt; &gt;`;
/// 2. pad with spaces and split off the ASCII symbols `{|}~ [\]^_\` space!"#$%& ()*+ :;<=>? @ /`;
/// 3. split `.` and `,` unless preceded by a digit, then unless followed by a digit;
/// 4. split `-` when preceded by a digit;
/// 5. collapse whitespace (Python's `str.split()`), trim.
/// Each rule is a left-to-right, non-overlapping substitution, as Python's `re.sub`.
public enum Tokenizer13a {
    public static func tokenize(_ line: String) -> [String] {
        var text = line.replacingOccurrences(of: "<skipped>", with: "")
            .replacingOccurrences(of: "-\n", with: "")
            .replacingOccurrences(of: "\n", with: " ")
        if text.contains("&") {
            text = text.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&amp;", with: "&")
                .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
        }
        var s: [Unicode.Scalar] = [" "] + Array(text.unicodeScalars) + [" "]
        // ([\{-\~\[-\` -\&\(-\+\:-\@\/]) → " \1 "
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(s.count * 2)
        for u in s {
            if isSymbol(u) { out += [" ", u, " "] } else { out.append(u) }
        }
        s = out
        // ([^0-9])([\.,]) → "\1 \2 "
        s = substitutePairs(s, { !isDigit($0) }, { $0 == "." || $0 == "," }) { a, b in [a, " ", b, " "] }
        // ([\.,])([^0-9]) → " \1 \2"
        s = substitutePairs(s, { $0 == "." || $0 == "," }, { !isDigit($0) }) { a, b in [" ", a, " ", b] }
        // ([0-9])(-) → "\1 \2 "
        s = substitutePairs(s, isDigit, { $0 == "-" }) { a, b in [a, " ", b, " "] }
        // ' '.join(line.split())
        var tokens: [String] = []
        var current = String.UnicodeScalarView()
        for u in s {
            if isPythonSpace(u) {
                if !current.isEmpty { tokens.append(String(current)); current = String.UnicodeScalarView() }
            } else {
                current.append(u)
            }
        }
        if !current.isEmpty { tokens.append(String(current)) }
        return tokens
    }

    static func isDigit(_ u: Unicode.Scalar) -> Bool { ("0"..."9").contains(u) }

    /// The character class `[\{-\~\[-\` -\&\(-\+\:-\@\/]`.
    static func isSymbol(_ u: Unicode.Scalar) -> Bool {
        switch u.value {
        case 0x7B...0x7E, 0x5B...0x60, 0x20...0x26, 0x28...0x2B, 0x3A...0x40, 0x2F: return true
        default: return false
        }
    }

    /// Python's `str.isspace()`: Unicode White_Space plus the separators U+001C…U+001F.
    static func isPythonSpace(_ u: Unicode.Scalar) -> Bool {
        u.properties.isWhitespace || (0x1C...0x1F).contains(u.value)
    }

    /// `re.sub("(A)(B)", repl)` for single-scalar classes A and B: scan left to right, replace each
    /// non-overlapping match, continue after it.
    static func substitutePairs(_ s: [Unicode.Scalar], _ a: (Unicode.Scalar) -> Bool, _ b: (Unicode.Scalar) -> Bool,
                                _ replacement: (Unicode.Scalar, Unicode.Scalar) -> [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(s.count + s.count / 2)
        var i = 0
        while i < s.count {
            if i + 1 < s.count, a(s[i]), b(s[i + 1]) {
                out += replacement(s[i], s[i + 1])
                i += 2
            } else {
                out.append(s[i])
                i += 1
            }
        }
        return out
    }
}

/// Corpus BLEU with sacreBLEU's semantics (docs/metrics.md):
///
///   BLEU = BP · exp( (1/4) Σₙ log pₙ ),  n = 1…4
///   pₙ = Σ_sentences clipped n-gram matches / Σ_sentences hypothesis n-grams   (corpus sums)
///   BP = 1 if c ≥ r, else exp(1 − r/c)   with c = Σ hypothesis lengths, r = Σ reference lengths
///
/// — the brevity penalty uses corpus totals, never per-sentence values. With several references,
/// matches clip to the maximum count in any reference and r sums the reference length closest to
/// each hypothesis (ties → the shorter). Smoothing "exp" (sacreBLEU's default for corpus BLEU):
/// the k-th order with zero matches gets pₙ = 1/(2^k · totalₙ). No matches at all → 0.
public struct BLEUScore: Equatable, Sendable {
    /// 0…100.
    public var score: Double
    /// Clipped matches and totals per order 1…4.
    public var correct: [Int]
    public var total: [Int]
    /// pₙ in percent.
    public var precisions: [Double]
    public var brevityPenalty: Double
    public var hypothesisLength: Int
    public var referenceLength: Int
    public var referenceCount: Int
    public var lowercase: Bool

    /// sacreBLEU's one-line format: `BLEU = 27.35 59.5/33.1/20.6/13.2 (BP = 1.000 ratio = 1.003 hyp_len = … ref_len = …)`.
    public var formatted: String {
        let ratio = referenceLength > 0 ? Double(hypothesisLength) / Double(referenceLength) : 0
        return String(format: "BLEU = %.2f ", score) + precisions.map { String(format: "%.1f", $0) }.joined(separator: "/")
            + String(format: " (BP = %.3f ratio = %.3f hyp_len = %d ref_len = %d)", brevityPenalty, ratio, hypothesisLength, referenceLength)
    }

    /// The signature line saying how the number was computed.
    public var signature: String {
        "nrefs:\(referenceCount)|case:\(lowercase ? "lc" : "mixed")|eff:no|tok:13a|smooth:exp|version:sacrebleu-2-semantics(DecoderSpec)"
    }
}

public enum BLEU {
    public static let maxOrder = 4

    /// Corpus BLEU of `hypotheses` against one or more reference streams (`references[k][i]` is
    /// reference k of sentence i). Throws when a reference stream's length differs from the
    /// hypotheses' or there are no references.
    public static func corpus(hypotheses: [String], references: [[String]], lowercase: Bool = false) throws -> BLEUScore {
        guard !references.isEmpty else { throw DecoderSpecError.emptySequence(what: "references (at least one reference stream)") }
        guard !hypotheses.isEmpty else { throw DecoderSpecError.emptySequence(what: "hypotheses (a corpus score needs at least one sentence)") }
        for (k, r) in references.enumerated() where r.count != hypotheses.count {
            throw DecoderSpecError.shapeMismatch(operation: "BLEU.corpus reference stream \(k)", expected: "\(hypotheses.count) lines (one per hypothesis)", actual: "\(r.count) lines")
        }
        // sacreBLEU lower-cases (optionally), strips trailing whitespace, then tokenizes.
        func tok(_ s: String) -> [String] { Tokenizer13a.tokenize(rstrip(lowercase ? s.lowercased() : s)) }
        var stats = Statistics()
        for i in hypotheses.indices {
            stats.add(hypothesis: tok(hypotheses[i]), references: references.map { tok($0[i]) })
        }
        var score = compute(stats)
        score.referenceCount = references.count
        score.lowercase = lowercase
        return score
    }

    /// Sufficient statistics summed over the corpus.
    public struct Statistics: Equatable, Sendable {
        public var correct = [Int](repeating: 0, count: BLEU.maxOrder)
        public var total = [Int](repeating: 0, count: BLEU.maxOrder)
        public var hypothesisLength = 0
        public var referenceLength = 0
        public init() {}

        /// Adds one tokenized sentence.
        public mutating func add(hypothesis: [String], references: [[String]]) {
            hypothesisLength += hypothesis.count
            var closest = Int.max, closestDiff = Int.max
            for r in references {
                let diff = abs(r.count - hypothesis.count)
                if diff < closestDiff || (diff == closestDiff && r.count < closest) { closest = r.count; closestDiff = diff }
            }
            referenceLength += references.isEmpty ? 0 : closest
            for n in 1...BLEU.maxOrder {
                let hyp = ngrams(hypothesis, n)
                var maxRef: [ArraySlice<String>: Int] = [:]
                for r in references {
                    for (g, c) in ngrams(r, n) { maxRef[g] = max(maxRef[g] ?? 0, c) }
                }
                for (g, c) in hyp { correct[n - 1] += min(c, maxRef[g] ?? 0) }
                total[n - 1] += max(0, hypothesis.count - n + 1)
            }
        }
    }

    static func ngrams(_ tokens: [String], _ n: Int) -> [ArraySlice<String>: Int] {
        var counts: [ArraySlice<String>: Int] = [:]
        if tokens.count >= n { for i in 0...(tokens.count - n) { counts[tokens[i..<(i + n)], default: 0] += 1 } }
        return counts
    }

    /// sacreBLEU's `compute_bleu` with smooth_method "exp", effective order off.
    public static func compute(_ s: Statistics) -> BLEUScore {
        let c = Double(s.hypothesisLength), r = Double(s.referenceLength)
        let bp = s.hypothesisLength < s.referenceLength ? (s.hypothesisLength > 0 ? exp(1 - r / c) : 0) : 1
        var precisions = [Double](repeating: 0, count: maxOrder)
        var result = BLEUScore(score: 0, correct: s.correct, total: s.total, precisions: precisions, brevityPenalty: bp,
                               hypothesisLength: s.hypothesisLength, referenceLength: s.referenceLength, referenceCount: 1, lowercase: false)
        guard s.correct.contains(where: { $0 > 0 }) else { return result }
        var smooth = 1.0
        for n in 1...maxOrder {
            if s.total[n - 1] == 0 { break }
            if s.correct[n - 1] == 0 {
                smooth *= 2
                precisions[n - 1] = 100 / (smooth * Double(s.total[n - 1]))
            } else {
                precisions[n - 1] = 100 * Double(s.correct[n - 1]) / Double(s.total[n - 1])
            }
        }
        // sacreBLEU's my_log(0) = −9999999999: an order with no n-grams at all drives BLEU to 0.
        let logSum = precisions.reduce(0.0) { $0 + ($1 == 0 ? -9_999_999_999 : log($1)) }
        result.precisions = precisions
        result.score = bp * exp(logSum / Double(maxOrder))
        return result
    }
}

/// Python's `str.rstrip()`: drops trailing characters for which `isspace()` holds.
func rstrip(_ s: String) -> String {
    var scalars = Array(s.unicodeScalars)
    while let last = scalars.last, Tokenizer13a.isPythonSpace(last) { scalars.removeLast() }
    var view = String.UnicodeScalarView()
    view.append(contentsOf: scalars)
    return String(view)
}
