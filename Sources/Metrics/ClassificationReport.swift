import TensorCore

/// One row of a per-class report, as scikit-learn's `classification_report` prints it.
public struct ClassificationRow: Equatable, Sendable {
    public var label: String
    public var precision: Double
    public var recall: Double
    public var f1: Double
    public var support: Int
    public init(label: String, precision: Double, recall: Double, f1: Double, support: Int) {
        (self.label, self.precision, self.recall, self.f1, self.support) = (label, precision, recall, f1, support)
    }
}

/// A token-level, single-label per-class report (scikit-learn's `classification_report` on flat
/// tag lists): for class c, P_c = correct_c / predicted_c, R_c = correct_c / support_c, F1 their
/// harmonic mean (0 when a denominator is 0, as scikit-learn's `zero_division=0`). Not an entity
/// score (that is `Conlleval`); it exists to check the tables the source documents print
/// (docs/metrics.md, "The documents' results tables").
///
/// Averages over the classes' rows:
///
///     macro    = (1/C)·Σ_c row_c                      (unweighted mean of P, R, F1)
///     weighted = Σ_c s_c·row_c / Σ_c s_c              (support-weighted mean)
///     micro    = from the summed counts: Σ correct / Σ predicted, Σ correct / Σ support
///
/// With exactly one gold and one predicted tag per token, Σ predicted = Σ support = N, so
/// micro P = micro R = token accuracy, and the weighted recall Σ s_c·R_c / N = Σ correct_c / N is
/// that same number.
public struct ClassificationReport: Equatable, Sendable {
    /// One row per class that occurs in gold or prediction, sorted by label.
    public var rows: [ClassificationRow]
    public var micro: ClassificationRow

    /// - Throws: `.shapeMismatch` when a sentence's gold and predicted tags differ in length or
    ///   the sentence counts differ.
    public init(gold: [[String]], predicted: [[String]]) throws {
        guard gold.count == predicted.count else {
            throw DecoderSpecError.shapeMismatch(operation: "ClassificationReport", expected: "\(gold.count) predicted sentences",
                                                 actual: "\(predicted.count)")
        }
        var support: [String: Int] = [:], guessed: [String: Int] = [:], correct: [String: Int] = [:]
        for (i, (g, p)) in zip(gold, predicted).enumerated() {
            guard g.count == p.count else {
                throw DecoderSpecError.shapeMismatch(operation: "ClassificationReport sentence \(i)", expected: "\(g.count) tags", actual: "\(p.count)")
            }
            for (a, b) in zip(g, p) {
                support[a, default: 0] += 1
                guessed[b, default: 0] += 1
                if a == b { correct[a, default: 0] += 1 }
            }
        }
        rows = Set(support.keys).union(guessed.keys).sorted().map {
            Self.row($0, correct: correct[$0] ?? 0, predicted: guessed[$0] ?? 0, support: support[$0] ?? 0)
        }
        micro = Self.row("micro avg", correct: correct.values.reduce(0, +), predicted: guessed.values.reduce(0, +),
                         support: support.values.reduce(0, +))
    }

    public var macro: ClassificationRow { Self.macro(rows) }
    public var weighted: ClassificationRow { Self.weighted(rows) }

    static func row(_ label: String, correct: Int, predicted: Int, support: Int) -> ClassificationRow {
        let p = predicted == 0 ? 0 : Double(correct) / Double(predicted)
        let r = support == 0 ? 0 : Double(correct) / Double(support)
        return ClassificationRow(label: label, precision: p, recall: r, f1: p + r == 0 ? 0 : 2 * p * r / (p + r), support: support)
    }

    /// The unweighted mean of the rows' P, R, F1; support is their sum.
    public static func macro(_ rows: [ClassificationRow]) -> ClassificationRow {
        average(rows, "macro avg") { _ in 1 }
    }

    /// The support-weighted mean of the rows' P, R, F1; support is their sum.
    public static func weighted(_ rows: [ClassificationRow]) -> ClassificationRow {
        average(rows, "weighted avg") { Double($0.support) }
    }

    static func average(_ rows: [ClassificationRow], _ label: String, weight: (ClassificationRow) -> Double) -> ClassificationRow {
        let total = rows.reduce(0) { $0 + weight($1) }
        func mean(_ v: (ClassificationRow) -> Double) -> Double { total == 0 ? 0 : rows.reduce(0) { $0 + weight($1) * v($1) } / total }
        return ClassificationRow(label: label, precision: mean(\.precision), recall: mean(\.recall), f1: mean(\.f1),
                                 support: rows.reduce(0) { $0 + $1.support })
    }
}
