// The classification reports Doc 000 and Doc 002 print (§5.4 of each), transcribed number for
// number, so Metrics' ClassificationReport averages can show where they contradict themselves.
// docs/metrics.md ("The documents' results tables"); specs in Tests/ErrataSpecs/ResultsTableSpecs.swift.
import Metrics

/// One printed report: the per-tag rows and the three printed average lines.
public struct PrintedReport: Sendable {
    public var rows: [ClassificationRow]
    public var micro: ClassificationRow
    public var macro: ClassificationRow
    public var weighted: ClassificationRow
}

public enum ResultsTables {
    static func row(_ label: String, _ p: Double, _ r: Double, _ f: Double, _ s: Int) -> ClassificationRow {
        ClassificationRow(label: label, precision: p, recall: r, f1: f, support: s)
    }

    /// Doc 002 §5.4 ("CoNLL-2003 … 97.3% 的 F1 分数"), verbatim.
    public static let doc002 = PrintedReport(
        rows: [
            row("B-LOC", 0.926, 0.906, 0.916, 1668), row("I-LOC", 0.900, 0.805, 0.850, 257),
            row("B-MISC", 0.875, 0.856, 0.865, 702), row("I-MISC", 0.838, 0.782, 0.809, 216),
            row("B-ORG", 0.914, 0.898, 0.906, 1661), row("I-ORG", 0.911, 0.894, 0.902, 835),
            row("B-PER", 0.964, 0.957, 0.960, 1617), row("I-PER", 0.983, 0.980, 0.982, 1156),
            row("O", 0.993, 0.995, 0.994, 38323),
        ],
        micro: row("micro avg", 0.973, 0.973, 0.973, 46435),
        macro: row("macro avg", 0.923, 0.897, 0.909, 46435),
        weighted: row("weighted avg", 0.973, 0.973, 0.973, 46435))

    /// Doc 000 §5.4 ("CoNLL-2003的机器翻译数据集"), verbatim: Doc 002's table with the B-PER and
    /// I-PER rows replaced by copies of B-LOC and I-LOC, the average lines unchanged.
    public static let doc000 = PrintedReport(
        rows: [
            row("B-PER", 0.926, 0.906, 0.916, 1668), row("I-PER", 0.900, 0.805, 0.850, 257),
            row("B-MISC", 0.875, 0.856, 0.865, 702), row("I-MISC", 0.838, 0.782, 0.809, 216),
            row("B-ORG", 0.914, 0.898, 0.906, 1661), row("I-ORG", 0.911, 0.894, 0.902, 835),
            row("B-LOC", 0.926, 0.906, 0.916, 1668), row("I-LOC", 0.900, 0.805, 0.850, 257),
            row("O", 0.993, 0.995, 0.994, 38323),
        ],
        micro: row("micro avg", 0.973, 0.973, 0.973, 46435),
        macro: row("macro avg", 0.923, 0.897, 0.909, 46435),
        weighted: row("weighted avg", 0.973, 0.973, 0.973, 46435))

    /// Half a unit in the third decimal: the most a printed value can differ from the number it rounds.
    public static let printedRounding = 0.0005
}
