import DecoderSpec
import Foundation

/// Shared output helpers for the CLI: fixed-format tables, CSV, one-line errors, atomic writes.
enum Printing {
    /// A fixed-width table: a header of column labels, then one labelled row per matrix row.
    static func table(_ m: Matrix, rowLabels: [String], columnLabels: [String]? = nil, format: String = "%8.4f") -> String {
        let cols = columnLabels ?? (0..<m.cols).map { "d\($0)" }
        let labelWidth = max(rowLabels.map(\.count).max() ?? 0, 3)
        let cellWidth = max(String(format: format, -0.0).count, cols.map(\.count).max() ?? 0)
        func pad(_ s: String, _ w: Int) -> String { String(repeating: " ", count: max(0, w - s.count)) + s }
        var lines = [pad("", labelWidth) + " " + cols.map { pad($0, cellWidth) }.joined(separator: " ")]
        for r in 0..<m.rows {
            let cells = (0..<m.cols).map { pad(String(format: format, m[r, $0]), cellWidth) }
            let label = rowLabels[r] + String(repeating: " ", count: max(0, labelWidth - rowLabels[r].count))
            lines.append(label + " " + cells.joined(separator: " "))
        }
        return lines.joined(separator: "\n")
    }

    /// CSV: one line per row, `cols` values, no header; `%.9g` round-trips every Float.
    static func csv(_ m: Matrix) -> String {
        (0..<m.rows).map { r in (0..<m.cols).map { String(format: "%.9g", m[r, $0]) }.joined(separator: ",") }
            .joined(separator: "\n")
    }

    /// Writes `text` to `path` atomically (IO's AtomicFile: temporary file, fsync, rename), so a
    /// reader never sees a partial file and a failure leaves no file behind.
    static func writeAtomically(_ text: String, to path: String) throws {
        try AtomicFile.write(text, to: URL(fileURLWithPath: path))
    }
}
