import Foundation
import TensorCore

/// The figures the CLI, the notebooks and `docs/figures/` share, built from plain matrices (this
/// module knows nothing of masks or encodings: callers pass what to hide and what to label).
extension Heatmap {
    /// Rows (or column pairs) kept when drawing n of them in at most `maxCells`: every index when
    /// n ≤ maxCells, else ⌊k·n/maxCells⌋ for k < maxCells.
    public static func sampled(_ n: Int, maxCells: Int) -> [Int] {
        n <= maxCells ? Array(0..<n) : (0..<maxCells).map { $0 * n / maxCells }
    }

    /// A positional-encoding table [positions, d] as a diverging heatmap over [−1, 1]: rows are
    /// positions start, start + 1, … (top to bottom), columns dimensions j. Larger tables are
    /// sampled to at most `maxCells` rows and columns, keeping each (2i, 2i+1) sine/cosine pair
    /// together; the tick numbers are the kept rows' positions and columns' dimensions.
    public static func positionalEncoding(_ table: Matrix, start: Int = 0, title: String, maxCells: Int = 256,
                                          cell: Double? = nil) throws -> Heatmap {
        let rows = sampled(table.rows, maxCells: maxCells)
        let cols = table.cols <= maxCells ? Array(0..<table.cols)
            : sampled(table.cols / 2, maxCells: maxCells / 2).flatMap { [2 * $0, 2 * $0 + 1] }
        let values = rows.map { r in cols.map { Double(table[r, $0]) } }
        var t = title
        if rows.count < table.rows || cols.count < table.cols { t += " (sampled \(rows.count) × \(cols.count) of \(table.rows) × \(table.cols))" }
        return try Heatmap(values, title: t, x: HeatmapAxis("dimension j", coordinates: cols.map(Double.init)),
                           y: HeatmapAxis("position", coordinates: rows.map { Double(start + $0) }),
                           colorMap: .diverging, domain: -1...1, colorBarTitle: "PE value", cell: cell)
    }
}

extension FigureGrid {
    /// Attention weights [Tq, Tk] per head, one panel each, rows queries and columns keys. Each
    /// panel is scaled to its own maximum (its colour bar runs from 0 to that head's largest
    /// weight), which the note says; `hidden` cells (masked keys) are grey. Labels: one per query
    /// and per key (tokens), or nil for index ticks. At most `maxCells` rows and columns are drawn
    /// (the top-left corner, said in the title).
    public static func attention(_ weights: [Matrix], title: String, queryLabels: [String]? = nil, keyLabels: [String]? = nil,
                                 hidden: [[Bool]]? = nil, headNames: [String]? = nil, columns: Int = 2,
                                 maxCells: Int = 64) throws -> FigureGrid {
        guard let first = weights.first else { throw DecoderSpecError.emptySequence(what: "attention weights (no head)") }
        let rows = min(first.rows, maxCells), cols = min(first.cols, maxCells)
        var panels: [any Figure] = []
        for (h, w) in weights.enumerated() {
            guard w.rows == first.rows, w.cols == first.cols else {
                throw DecoderSpecError.shapeMismatch(operation: "attention weights head \(h)", expected: "\(first.shape)", actual: "\(w.shape)")
            }
            let values = (0..<rows).map { i in (0..<cols).map { Double(w[i, $0]) } }
            let peak = values.joined().filter(\.isFinite).max() ?? 0
            let x = keyLabels.map { HeatmapAxis.labelled("key", Array($0.prefix(cols))) } ?? .index("key", count: cols)
            let y = queryLabels.map { HeatmapAxis.labelled("query", Array($0.prefix(rows))) } ?? .index("query", count: rows)
            panels.append(try Heatmap(values, title: headNames?[h] ?? "head \(h)", x: x, y: y, colorMap: .sequential,
                                      domain: 0...(peak > 0 ? peak : 1), colorBarTitle: String(format: "weight (max %.3g)", peak), hidden: hidden.map { $0.prefix(rows).map { Array($0.prefix(cols)) } },
                                      cell: max(6, min(24, (220 / Double(max(rows, cols))).rounded(.down)))))
        }
        var t = title
        if rows < first.rows || cols < first.cols { t += " (top-left \(rows) × \(cols) of \(first.rows) × \(first.cols))" }
        return FigureGrid(panels, columns: columns, title: t,
                          note: "Rows: queries; columns: keys. Each head is scaled to its own maximum (its own colour bar)\(hidden == nil ? "" : "; grey: masked").")
    }
}
