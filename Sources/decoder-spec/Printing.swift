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

/// An SVG heatmap of a matrix with values in [−1, 1] (blue → white → red), with axis labels.
/// Larger matrices are sampled down to at most `maxCells` rows and columns (nearest index).
enum Heatmap {
    static func svg(_ m: Matrix, title: String, rowAxis: String, columnAxis: String, maxCells: Int = 256) -> String {
        let rowIndex = sample(m.rows, maxCells), colIndex = samplePairs(m.cols, maxCells)
        // Whole-pixel cells keep the coordinates short integers (a 256×256 map is ≈ 3 MB of SVG).
        let cell = Double(max(1, min(6, 800 / max(rowIndex.count, colIndex.count))))
        let left = 70.0, top = 50.0
        let width = left + Double(colIndex.count) * cell + 90, height = top + Double(rowIndex.count) * cell + 50
        var s = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(left)" y="20" font-size="14">\(escape(title))</text>
        <text x="\(left)" y="40">\(escape(columnAxis)) → (0 … \(m.cols - 1))</text>
        <text x="15" y="\(top + Double(rowIndex.count) * cell / 2)" transform="rotate(-90 15 \(top + Double(rowIndex.count) * cell / 2))" text-anchor="middle">\(escape(rowAxis)) → (0 … \(m.rows - 1))</text>

        """
        for (y, r) in rowIndex.enumerated() {
            for (x, c) in colIndex.enumerated() {
                s += "<rect x=\"\(fmt(left + Double(x) * cell))\" y=\"\(fmt(top + Double(y) * cell))\" width=\"\(fmt(cell))\" height=\"\(fmt(cell))\" fill=\"\(color(m[r, c]))\"/>\n"
            }
        }
        // Colour legend.
        let lx = left + Double(colIndex.count) * cell + 20
        for k in 0...20 {
            let v = 1 - Double(k) / 10
            s += "<rect x=\"\(fmt(lx))\" y=\"\(fmt(top + Double(k) * 10))\" width=\"20\" height=\"10\" fill=\"\(color(Float(v)))\"/>\n"
        }
        s += "<text x=\"\(fmt(lx + 25))\" y=\"\(fmt(top + 9))\">+1</text>\n"
        s += "<text x=\"\(fmt(lx + 25))\" y=\"\(fmt(top + 109))\">0</text>\n"
        s += "<text x=\"\(fmt(lx + 25))\" y=\"\(fmt(top + 209))\">−1</text>\n"
        if rowIndex.count < m.rows || colIndex.count < m.cols {
            s += "<text x=\"\(left)\" y=\"\(fmt(height - 15))\">sampled to \(rowIndex.count) × \(colIndex.count) cells of \(m.rows) × \(m.cols)</text>\n"
        }
        return s + "</svg>\n"
    }

    static func sample(_ n: Int, _ maxCells: Int) -> [Int] {
        n <= maxCells ? Array(0..<n) : (0..<maxCells).map { $0 * n / maxCells }
    }

    /// Column sampling that keeps adjacent (2k, 2k+1) pairs together, so a PE map still shows both
    /// the sine and the cosine column of every sampled frequency (plain striding by 2 would keep
    /// only the sines).
    static func samplePairs(_ n: Int, _ maxCells: Int) -> [Int] {
        if n <= maxCells { return Array(0..<n) }
        let pairs = n / 2, keep = maxCells / 2
        return (0..<keep).flatMap { k -> [Int] in let p = k * pairs / keep; return [2 * p, 2 * p + 1] }
    }

    static func fmt(_ x: Double) -> String { x == x.rounded() ? String(Int(x)) : String(format: "%.2f", x) }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// −1 → blue (33, 102, 172), 0 → white, +1 → red (178, 24, 43); clamped; NaN → grey.
    static func color(_ v: Float) -> String {
        guard v.isFinite else { return "#808080" }
        let t = Double(max(-1, min(1, v)))
        let (r, g, b): (Double, Double, Double) = t >= 0
            ? (255 + (178 - 255) * t, 255 + (24 - 255) * t, 255 + (43 - 255) * t)
            : (255 + (33 - 255) * -t, 255 + (102 - 255) * -t, 255 + (172 - 255) * -t)
        return String(format: "#%02x%02x%02x", Int(r.rounded()), Int(g.rounded()), Int(b.rounded()))
    }
}
