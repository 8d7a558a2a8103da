import Foundation

/// The SVG every figure is written as: numbers in fixed notation with at most two decimals, no
/// dates, no random ids, elements in drawing order — the same figure gives the same bytes. Text is
/// `<text>` (selectable, searchable), sans-serif; 1 user unit = 1 CSS pixel (width/height equal the
/// viewBox), so a font size is the size a reader sees when the image is shown at its natural width.
public struct SVGCanvas: Sendable {
    /// The elements drawn so far, one per line.
    public private(set) var elements: [String] = []

    public init() {}

    /// `x` in fixed notation: rounded to 0.01, trailing zeros dropped, never "-0".
    public static func number(_ x: Double) -> String {
        guard x.isFinite else { return "0" }
        var s = String(format: "%.2f", x)
        if s.contains(".") {
            while s.hasSuffix("0") { s.removeLast() }
            if s.hasSuffix(".") { s.removeLast() }
        }
        return s == "-0" ? "0" : s
    }

    /// XML character escaping for text and attribute values.
    public static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// An estimate of a string's rendered width in a sans-serif font: 0.62 em per ASCII character
    /// (wider than the average Latin glyph, so the estimate errs on the side of space) and 1 em per
    /// other character (CJK glyphs are square). Layout uses it so that no label is cut off.
    public static func textWidth(_ s: String, fontSize: Double) -> Double {
        s.unicodeScalars.reduce(0) { $0 + ($1.isASCII ? 0.62 : 1.0) } * fontSize
    }

    static func n(_ x: Double) -> String { number(x) }

    public mutating func rect(x: Double, y: Double, width: Double, height: Double, fill: String,
                              stroke: String? = nil, className: String? = nil, tooltip: String? = nil) {
        var s = "<rect x=\"\(Self.n(x))\" y=\"\(Self.n(y))\" width=\"\(Self.n(width))\" height=\"\(Self.n(height))\" fill=\"\(fill)\""
        if let stroke { s += " stroke=\"\(stroke)\"" }
        if let className { s += " class=\"\(className)\"" }
        if let tooltip { s += "><title>\(Self.escape(tooltip))</title></rect>" } else { s += "/>" }
        elements.append(s)
    }

    public mutating func line(x1: Double, y1: Double, x2: Double, y2: Double, stroke: String = "#000000",
                              width: Double = 1, dashed: Bool = false, className: String? = nil) {
        var s = "<line x1=\"\(Self.n(x1))\" y1=\"\(Self.n(y1))\" x2=\"\(Self.n(x2))\" y2=\"\(Self.n(y2))\" stroke=\"\(stroke)\" stroke-width=\"\(Self.n(width))\""
        if dashed { s += " stroke-dasharray=\"6 4\"" }
        if let className { s += " class=\"\(className)\"" }
        elements.append(s + "/>")
    }

    public mutating func polyline(_ points: [(Double, Double)], stroke: String, width: Double = 2, dashed: Bool = false,
                                  className: String? = nil) {
        let pts = points.map { "\(Self.n($0.0)),\(Self.n($0.1))" }.joined(separator: " ")
        var s = "<polyline points=\"\(pts)\" fill=\"none\" stroke=\"\(stroke)\" stroke-width=\"\(Self.n(width))\" stroke-linejoin=\"round\""
        if dashed { s += " stroke-dasharray=\"6 4\"" }
        if let className { s += " class=\"\(className)\"" }
        elements.append(s + "/>")
    }

    public mutating func circle(cx: Double, cy: Double, r: Double, fill: String, className: String? = nil, tooltip: String? = nil) {
        var s = "<circle cx=\"\(Self.n(cx))\" cy=\"\(Self.n(cy))\" r=\"\(Self.n(r))\" fill=\"\(fill)\""
        if let className { s += " class=\"\(className)\"" }
        if let tooltip { s += "><title>\(Self.escape(tooltip))</title></circle>" } else { s += "/>" }
        elements.append(s)
    }

    public enum Anchor: String, Sendable { case start, middle, end }

    /// Text whose baseline starts (or is centred / ends, per `anchor`) at (x, y); `rotation` in
    /// degrees about (x, y), negative = counter-clockwise.
    public mutating func text(_ content: String, x: Double, y: Double, size: Double = 12, anchor: Anchor = .start,
                              bold: Bool = false, rotation: Double = 0, className: String? = nil, fill: String? = nil) {
        var s = "<text x=\"\(Self.n(x))\" y=\"\(Self.n(y))\" font-size=\"\(Self.n(size))\""
        if anchor != .start { s += " text-anchor=\"\(anchor.rawValue)\"" }
        if bold { s += " font-weight=\"bold\"" }
        if rotation != 0 { s += " transform=\"rotate(\(Self.n(rotation)) \(Self.n(x)) \(Self.n(y)))\"" }
        if let className { s += " class=\"\(className)\"" }
        if let fill { s += " fill=\"\(fill)\"" }
        elements.append(s + ">\(Self.escape(content))</text>")
    }

    /// Draws `figure` with its top-left corner at (dx, dy).
    public mutating func place(_ figure: some Figure, dx: Double, dy: Double) {
        var inner = SVGCanvas()
        figure.draw(into: &inner)
        elements.append("<g transform=\"translate(\(Self.n(dx)) \(Self.n(dy)))\">")
        elements += inner.elements
        elements.append("</g>")
    }

    /// A complete SVG document of the given size with a white background.
    public func document(width: Double, height: Double) -> String {
        let w = Self.n(width.rounded(.up)), h = Self.n(height.rounded(.up))
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(w)\" height=\"\(h)\" viewBox=\"0 0 \(w) \(h)\" font-family=\"Helvetica, Arial, sans-serif\">\n"
        s += "<rect width=\"\(w)\" height=\"\(h)\" fill=\"#ffffff\"/>\n"
        for e in elements { s += e + "\n" }
        return s + "</svg>\n"
    }
}

/// A figure: a fixed size and a way to draw itself with its top-left corner at (0, 0).
public protocol Figure: Sendable {
    var width: Double { get }
    var height: Double { get }
    func draw(into canvas: inout SVGCanvas)
}

extension Figure {
    /// The figure as a standalone SVG document.
    public func svg() -> String {
        var canvas = SVGCanvas()
        draw(into: &canvas)
        return canvas.document(width: width, height: height)
    }
}

/// Panels side by side in rows of `columns`, under an optional title and note (e.g. "each head is
/// scaled to its own maximum"). Each row is as tall as its tallest panel.
public struct FigureGrid: Figure {
    public var panels: [any Figure]
    public var columns: Int
    public var title: String
    public var note: String
    public static let gap = 16.0

    public init(_ panels: [any Figure], columns: Int, title: String = "", note: String = "") {
        self.panels = panels
        self.columns = max(1, columns)
        self.title = title
        self.note = note
    }

    var header: Double { (title.isEmpty ? 0 : 24) + (note.isEmpty ? 0 : 18) + (title.isEmpty && note.isEmpty ? 0 : 4) }
    var rows: [[any Figure]] { stride(from: 0, to: panels.count, by: columns).map { Array(panels[$0..<min($0 + columns, panels.count)]) } }
    var columnWidths: [Double] {
        (0..<min(columns, panels.count)).map { c in stride(from: c, to: panels.count, by: columns).map { panels[$0].width }.max() ?? 0 }
    }

    public var width: Double {
        let panelsWidth = columnWidths.reduce(0, +) + Self.gap * Double(max(0, columnWidths.count - 1))
        let textWidth = max(SVGCanvas.textWidth(title, fontSize: 15), SVGCanvas.textWidth(note, fontSize: 12)) + 2 * Self.gap
        return max(panelsWidth, textWidth)
    }

    public var height: Double {
        header + rows.map { $0.map(\.height).max() ?? 0 }.reduce(0, +) + Self.gap * Double(max(0, rows.count - 1))
    }

    public func draw(into canvas: inout SVGCanvas) {
        var y = 0.0
        if !title.isEmpty { canvas.text(title, x: Self.gap, y: 19, size: 15, bold: true, className: "title"); y = 24 }
        if !note.isEmpty { canvas.text(note, x: Self.gap, y: y + 14, size: 12, className: "note"); y += 18 }
        y = header
        let widths = columnWidths
        for row in rows {
            var x = 0.0
            for (c, panel) in row.enumerated() {
                canvas.place(panel, dx: x, dy: y)
                x += widths[c] + Self.gap
            }
            y += (row.map(\.height).max() ?? 0) + Self.gap
        }
    }
}

extension SVGCanvas {
    /// Wraps `inner`'s elements in one `<g class="…">` (e.g. a legend entry).
    public mutating func group(_ inner: SVGCanvas, className: String) {
        elements.append("<g class=\"\(className)\">")
        elements += inner.elements
        elements.append("</g>")
    }
}

extension SVGCanvas {
    /// A value axis on the left of a plot whose top-left corner is (left, top): for each tick a
    /// light grid line across `width`, a tick mark and its label right-aligned beside it.
    mutating func valueAxis(_ ticks: [(value: Double, label: String)], scale: Scale, left: Double, top: Double, width: Double,
                            fontSize: Double) {
        for tick in ticks {
            let py = top + scale(tick.value)
            line(x1: left, y1: py, x2: left + width, y2: py, stroke: "#e5e5e5", className: "grid")
            line(x1: left - 4, y1: py, x2: left, y2: py, stroke: "#666666", className: "y-tick")
            text(tick.label, x: left - 6, y: py + 4, size: fontSize, anchor: .end, className: "y-tick-label")
        }
    }
}
