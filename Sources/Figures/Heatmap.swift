import Foundation
import TensorCore

/// One axis of a heatmap: a title and either a label per cell (tokens) or a numeric coordinate per
/// cell (default 0, 1, …), which gets nice-number ticks at the cells' centres.
public struct HeatmapAxis: Sendable {
    public var title: String
    public var labels: [String]?
    public var coordinates: [Double]?

    /// Numeric ticks; cell i has coordinate `coordinates[i]` (nil: first + i).
    public init(_ title: String, coordinates: [Double]? = nil) { self.title = title; self.coordinates = coordinates }
    /// Numeric ticks for cells first, first + 1, ….
    public static func index(_ title: String, from first: Int = 0, count: Int) -> HeatmapAxis {
        HeatmapAxis(title, coordinates: (0..<count).map { Double(first + $0) })
    }
    /// One text label per cell.
    public static func labelled(_ title: String, _ labels: [String]) -> HeatmapAxis {
        var a = HeatmapAxis(title); a.labels = labels; return a
    }
}

/// A heatmap of a matrix: row 0 at the top, column 0 at the left (matrix order), each cell coloured
/// by `colorMap` over `domain`, a colour bar with ticks on the right, hidden cells (e.g. masked
/// keys) light grey with a legend entry. The numeric ticks follow `Ticks`. Size: `cell` pixels per
/// cell plus margins measured from the labels, so nothing is cut off.
public struct Heatmap: Figure {
    public var values: [[Double]]
    public var title: String
    public var x: HeatmapAxis
    public var y: HeatmapAxis
    public var colorMap: ColorMap
    public var domain: ClosedRange<Double>
    public var colorBarTitle: String
    public var hidden: [[Bool]]?
    public var cell: Double

    static let pad = 8.0, tickFont = 11.0, axisFont = 12.0, titleFont = 13.0, barWidth = 12.0

    /// - Parameters:
    ///   - values: rows × columns, rectangular, at least 1 × 1 (NaN is drawn grey).
    ///   - title: the title above the map.
    ///   - x: the column axis (title and labels or coordinates).
    ///   - y: the row axis.
    ///   - colorMap: sequential or diverging colours.
    ///   - domain: the values mapped to the colour map's ends (default: the finite values' min … max).
    ///   - colorBarTitle: the colour bar's title.
    ///   - hidden: same shape as `values`; true cells are drawn grey, not by value.
    ///   - cell: pixels per cell (default: fits the larger side into about 420 pixels, 2 … 28).
    /// - Throws: `.emptySequence` for no cells, `.shapeMismatch` for ragged rows, labels or
    ///   coordinates of the wrong count or `hidden` of the wrong shape, `.invalidArgument` for a bad domain.
    public init(_ values: [[Double]], title: String, x: HeatmapAxis, y: HeatmapAxis, colorMap: ColorMap = .sequential,
                domain: ClosedRange<Double>? = nil, colorBarTitle: String = "", hidden: [[Bool]]? = nil, cell: Double? = nil) throws {
        guard let cols = values.first?.count, cols > 0 else { throw DecoderSpecError.emptySequence(what: "heatmap values") }
        for (i, row) in values.enumerated() where row.count != cols {
            throw DecoderSpecError.shapeMismatch(operation: "heatmap row \(i)", expected: "\(cols) values", actual: "\(row.count)")
        }
        for (axis, n, name) in [(x, cols, "x"), (y, values.count, "y")] {
            if let l = axis.labels, l.count != n { throw DecoderSpecError.shapeMismatch(operation: "heatmap \(name) labels", expected: "\(n)", actual: "\(l.count)") }
            if let c = axis.coordinates, c.count != n { throw DecoderSpecError.shapeMismatch(operation: "heatmap \(name) coordinates", expected: "\(n)", actual: "\(c.count)") }
        }
        if let hidden, hidden.count != values.count || hidden.contains(where: { $0.count != cols }) {
            throw DecoderSpecError.shapeMismatch(operation: "heatmap hidden cells", expected: "[\(values.count), \(cols)]", actual: "[\(hidden.count), \(hidden.first?.count ?? 0)]")
        }
        let finite = values.joined().filter(\.isFinite)
        var d = domain ?? ((finite.min() ?? 0)...(finite.max() ?? 1))
        if domain == nil, d.upperBound == d.lowerBound { d = d.lowerBound...(d.lowerBound + 1) }
        guard d.lowerBound.isFinite, d.upperBound.isFinite, d.upperBound > d.lowerBound else {
            throw DecoderSpecError.invalidArgument(what: "heatmap domain \(d)", reason: "needs finite bounds lo < hi")
        }
        self.values = values
        self.title = title
        self.x = x
        self.y = y
        self.colorMap = colorMap
        self.domain = d
        self.colorBarTitle = colorBarTitle
        self.hidden = hidden
        self.cell = cell ?? min(28, max(2, (420 / Double(max(values.count, cols))).rounded(.down)))
    }

    /// A heatmap of a `Matrix` (Float values widened to Double).
    public init(_ m: Matrix, title: String, x: HeatmapAxis, y: HeatmapAxis, colorMap: ColorMap = .sequential,
                domain: ClosedRange<Double>? = nil, colorBarTitle: String = "", hidden: [[Bool]]? = nil, cell: Double? = nil) throws {
        try self.init((0..<m.rows).map { r in (0..<m.cols).map { Double(m[r, $0]) } }, title: title, x: x, y: y,
                      colorMap: colorMap, domain: domain, colorBarTitle: colorBarTitle, hidden: hidden, cell: cell)
    }

    var rows: Int { values.count }
    var cols: Int { values[0].count }
    var plotWidth: Double { Double(cols) * cell }
    var plotHeight: Double { Double(rows) * cell }
    var anyHidden: Bool { hidden?.contains { $0.contains(true) } ?? false }

    /// Ticks along an axis of n cells: (pixel offset from the axis start, label).
    func ticks(_ axis: HeatmapAxis, n: Int) -> [(Double, String)] {
        if let labels = axis.labels {
            let every = max(1, Int((Self.tickFont * 1.1 / cell).rounded(.up)))
            return stride(from: 0, to: n, by: every).map { ((Double($0) + 0.5) * cell, labels[$0]) }
        }
        let coords = axis.coordinates ?? (0..<n).map(Double.init)
        guard n > 1 else { return [(0.5 * cell, Ticks.labels([coords[0]], step: 1)[0])] }
        let lo = coords[0], hi = coords[n - 1]
        // About one tick per 40 pixels (at most 8), so tick labels never crowd.
        let target = max(1, min(8, Int(Double(n) * cell / 40)))
        let values = Ticks.linear(min(lo, hi), max(lo, hi), target: target)
        let labels = Ticks.labels(values, step: Ticks.niceStep(span: abs(hi - lo), target: target))
        return zip(values, labels).compactMap { v, label in
            // Piecewise-linear between cell centres (exact for evenly spaced coordinates).
            for i in 0..<(n - 1) {
                let a = coords[i], b = coords[i + 1]
                if (v >= min(a, b) - 1e-9) && (v <= max(a, b) + 1e-9) {
                    let t = b == a ? 0 : (v - a) / (b - a)
                    return ((Double(i) + 0.5 + t) * cell, label)
                }
            }
            return nil
        }
    }

    var xTicks: [(Double, String)] { ticks(x, n: cols) }
    var yTicks: [(Double, String)] { ticks(y, n: rows) }
    var xRotated: Bool {
        let widest = xTicks.map { SVGCanvas.textWidth($0.1, fontSize: Self.tickFont) }.max() ?? 0
        let spacing = xTicks.count > 1 ? xTicks[1].0 - xTicks[0].0 : plotWidth
        return widest > spacing - 4
    }
    var xTickHeight: Double {
        xRotated ? (xTicks.map { SVGCanvas.textWidth($0.1, fontSize: Self.tickFont) }.max() ?? 0) * 0.71 + Self.tickFont : Self.tickFont + 4
    }
    var barTicks: [(value: Double, label: String)] {
        (try? Scale(.linear, domain: domain, range: (0, 1)))?.ticks(target: 4) ?? []
    }
    var top: Double { Self.pad + (title.isEmpty ? 0 : 22) }
    /// Whole pixels, so that cell coordinates stay short integers when `cell` is one.
    var left: Double {
        (Self.pad + (y.title.isEmpty ? 0 : 18) + (yTicks.map { SVGCanvas.textWidth($0.1, fontSize: Self.tickFont) }.max() ?? 0) + 8).rounded(.up)
    }
    var barHeight: Double { max(plotHeight, 100) }
    var barLeft: Double { left + plotWidth + 16 }
    var barLabelWidth: Double { barTicks.map { SVGCanvas.textWidth($0.label, fontSize: Self.tickFont) }.max() ?? 0 }

    public var width: Double {
        let body = barLeft + Self.barWidth + 6 + barLabelWidth + (colorBarTitle.isEmpty ? 0 : 20) + Self.pad
        let hiddenLegend = anyHidden ? barLeft + SVGCanvas.textWidth("masked", fontSize: Self.tickFont) + 20 + Self.pad : 0
        let xTitle = left + SVGCanvas.textWidth(x.title, fontSize: Self.axisFont) + Self.pad
        return max(body, hiddenLegend, xTitle, 2 * Self.pad + SVGCanvas.textWidth(title, fontSize: Self.titleFont))
    }

    public var height: Double {
        let plot = top + plotHeight + 4 + xTickHeight + (x.title.isEmpty ? 0 : 18) + Self.pad
        let bar = top + barHeight + (anyHidden ? 22 : 0) + Self.pad
        let yTitle = top + SVGCanvas.textWidth(y.title, fontSize: Self.axisFont) + Self.pad
        let barTitle = top + SVGCanvas.textWidth(colorBarTitle, fontSize: Self.tickFont) + Self.pad
        return max(plot, bar, yTitle, barTitle)
    }

    public func draw(into canvas: inout SVGCanvas) {
        let (top, left) = (self.top, self.left)
        if !title.isEmpty { canvas.text(title, x: Self.pad, y: Self.pad + 13, size: Self.titleFont, bold: true, className: "title") }
        // A tooltip per cell only for small maps (attention over a sentence); it would double a large map's bytes.
        let tooltips = rows * cols <= 256
        var cells = SVGCanvas()
        for i in 0..<rows {
            for j in 0..<cols {
                let v = values[i][j]
                let masked = hidden?[i][j] ?? false
                let fill = masked ? ColorMap.hidden : colorMap.color(v, domain: domain)
                let tip = tooltips ? "\(y.labels?[i] ?? "row \(i)"), \(x.labels?[j] ?? "column \(j)"): \(masked ? "masked" : String(format: "%.4g", v))" : nil
                cells.rect(x: left + Double(j) * cell, y: top + Double(i) * cell, width: cell, height: cell, fill: fill.hex, tooltip: tip)
            }
        }
        canvas.group(cells, className: "cells")
        canvas.rect(x: left, y: top, width: plotWidth, height: plotHeight, fill: "none", stroke: "#666666")
        // x ticks below the plot.
        let base = top + plotHeight
        for (p, label) in xTicks {
            canvas.line(x1: left + p, y1: base, x2: left + p, y2: base + 4, stroke: "#666666", className: "x-tick")
            if xRotated {
                canvas.text(label, x: left + p + 3, y: base + 8, size: Self.tickFont, anchor: .end, rotation: -45, className: "x-tick-label")
            } else {
                canvas.text(label, x: left + p, y: base + 6 + Self.tickFont, size: Self.tickFont, anchor: .middle, className: "x-tick-label")
            }
        }
        if !x.title.isEmpty {
            canvas.text(x.title, x: left + plotWidth / 2, y: base + 4 + xTickHeight + 14, size: Self.axisFont, anchor: .middle, className: "x-title")
        }
        for (p, label) in yTicks {
            canvas.line(x1: left - 4, y1: top + p, x2: left, y2: top + p, stroke: "#666666", className: "y-tick")
            canvas.text(label, x: left - 6, y: top + p + 4, size: Self.tickFont, anchor: .end, className: "y-tick-label")
        }
        if !y.title.isEmpty {
            let cy = top + max(plotHeight, SVGCanvas.textWidth(y.title, fontSize: Self.axisFont)) / 2
            canvas.text(y.title, x: Self.pad + 12, y: cy, size: Self.axisFont, anchor: .middle, rotation: -90, className: "y-title")
        }
        // Colour bar: 64 bands, the top band the domain's upper end.
        let bands = 64, bh = barHeight / Double(bands)
        for k in 0..<bands {
            let t = 1 - (Double(k) + 0.5) / Double(bands)
            canvas.rect(x: barLeft, y: top + Double(k) * bh, width: Self.barWidth, height: k == bands - 1 ? bh : bh + 0.5, fill: colorMap.color(t).hex, className: "colorbar")
        }
        canvas.rect(x: barLeft, y: top, width: Self.barWidth, height: barHeight, fill: "none", stroke: "#666666")
        let barScale = try? Scale(.linear, domain: domain, range: (top + barHeight, top))
        for tick in barTicks {
            let py = barScale?(tick.value) ?? top
            canvas.line(x1: barLeft + Self.barWidth, y1: py, x2: barLeft + Self.barWidth + 3, y2: py, stroke: "#666666", className: "colorbar-tick")
            canvas.text(tick.label, x: barLeft + Self.barWidth + 5, y: py + 4, size: Self.tickFont, className: "colorbar-label")
        }
        if !colorBarTitle.isEmpty {
            let bx = barLeft + Self.barWidth + 8 + barLabelWidth + 6
            canvas.text(colorBarTitle, x: bx, y: top, size: Self.tickFont, rotation: 90, className: "colorbar-title")
        }
        if anyHidden {
            let ly = top + barHeight + 8
            canvas.rect(x: barLeft, y: ly, width: Self.barWidth, height: 12, fill: ColorMap.hidden.hex, stroke: "#666666", className: "legend-entry")
            canvas.text("masked", x: barLeft + Self.barWidth + 5, y: ly + 10, size: Self.tickFont)
        }
    }
}
