#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TensorCore

/// Checks of the evaluation metrics (docs/metrics.md, docs/bug-zoo.md #18).
public enum MetricChecks {
    /// The brevity penalty is corpus-level (sacreBLEU): hypothesis lengths 2 + 5 against reference
    /// lengths 3 + 4 give c = r = 7, BP = 1, and BLEU = 100·(6/7 · 4/5 · 2/3 · 1/2)^(1/4) ≈ 69.1442.
    /// A per-sentence BP (e^(−1/2) for the short one) is lower. Tolerance 1e-9 relative (Double).
    public static func corpusLevelBrevityPenalty(_ bleu: ([String], [String]) throws -> Double) -> Verdict {
        CheckSupport.guarded("corpus BLEU") {
            compare([try bleu(["the cat", "a dog ran home fast"], ["the cat sat", "a dog ran home"])], [100 * pow(48.0 / 210.0, 0.25)],
                    .relative(1e-9), "corpus-level BP: hypothesis lengths 2+5, reference lengths 3+4")
        }
    }

    /// Entity F1 (conlleval) does not count O: all-O predictions against one entity score 0 (a
    /// token-level score would give 0.95), no entities anywhere scores 0, a perfect prediction 1.
    public static func entityF1IgnoresO(_ f1: ([[String]], [[String]]) throws -> Double) -> Verdict {
        CheckSupport.guarded("entity F1") {
            let gold = [["B-PER"] + Array(repeating: "O", count: 19)]
            let allO = [Array(repeating: "O", count: 20)]
            let missed = try f1(gold, allO)
            if missed != 0 { return .fail("predicting only O scored F1 = \(missed); entity F1 must be 0 (O is not an entity)") }
            let none = try f1(allO, allO)
            if none != 0 { return .fail("no gold and no predicted entities scored F1 = \(none); conlleval defines it as 0") }
            let perfect = try f1(gold, gold)
            return perfect == 1 ? .pass : .fail("a perfect prediction scored F1 = \(perfect), expected 1")
        }
    }
}
