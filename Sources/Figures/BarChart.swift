import Foundation
import TensorCore

/// A grouped bar chart: one group per category along x, one bar per series inside each group, a
/// legend with one entry per series, a linear (from 0) or log value axis. A missing value (nil) is
/// no bar.
public struct BarChart: Figure {
    public var title: String
    public var categories: [String]
    public var seriesNames: [String]
    public var values: [[Double?]]
    public var yTitle: String
    public var yScale: Scale
    public var barWidth: Double
    public var plotHeight: Double
    /// Horizontal dashed lines across the plot (e.g. a measured bound), each labelled at its right end.
    public var references: [(value: Double, label: String)]

    static let pad = 8.0, tickFont = 11.0, axisFont = 12.0, titleFont = 13.0, groupGap = 14.0

    /// - Parameters:
    ///   - title: the title above the plot.
    ///   - categories: the groups along x, one label each.
    ///   - seriesNames: one legend entry per series (the bars inside each group).
    ///   - values: `values[s][c]`, series s in category c.
    ///   - yTitle: the value axis's title.
    ///   - yKind: linear (from 0) or log value axis.
    ///   - references: horizontal dashed lines, each labelled at its right end.
    ///   - barWidth: pixels per bar.
    ///   - plotHeight: pixels of the plot area.
    /// - Throws: `.emptySequence` for no category, series or value, `.shapeMismatch` when a series
    ///   has not one value per category, `.nonFinite`, `.invalidArgument` for a negative value or one ≤ 0 on a log axis.
    public init(title: String, categories: [String], series seriesNames: [String], values: [[Double?]], yTitle: String,
                yKind: Scale.Kind = .linear, references: [(value: Double, label: String)] = [], barWidth: Double = 14,
                plotHeight: Double = 240) throws {
        guard !categories.isEmpty, !seriesNames.isEmpty else { throw DecoderSpecError.emptySequence(what: "bar chart categories or series") }
        guard values.count == seriesNames.count else {
            throw DecoderSpecError.shapeMismatch(operation: "bar chart values", expected: "\(seriesNames.count) series", actual: "\(values.count)")
        }
        for (s, row) in values.enumerated() {
            guard row.count == categories.count else {
                throw DecoderSpecError.shapeMismatch(operation: "bar chart series \(seriesNames[s])", expected: "\(categories.count) values", actual: "\(row.count)")
            }
            for (c, v) in row.enumerated() {
                guard let v else { continue }
                guard v.isFinite else { throw DecoderSpecError.nonFinite(what: "bar chart series \(seriesNames[s])", index: c, value: v) }
                guard v >= 0, yKind == .linear || v > 0 else {
                    throw DecoderSpecError.invalidArgument(what: "bar \(seriesNames[s]) / \(categories[c]) = \(v)", reason: yKind == .log ? "a log axis needs values > 0" : "bars start at 0; values must be ≥ 0")
                }
            }
        }
        for r in references where !r.value.isFinite || (yKind == .log && r.value <= 0) {
            throw DecoderSpecError.invalidArgument(what: "reference line \(r.label) = \(r.value)", reason: "must be finite (and > 0 on a log axis)")
        }
        let present = values.joined().compactMap { $0 } + references.map(\.value)
        guard let hi = present.max(), let lo = present.min() else { throw DecoderSpecError.emptySequence(what: "bar chart values") }
        let domain = yKind == .linear ? Scale.niceDomain(.linear, 0, max(hi, 1e-300), target: 5) : Scale.niceDomain(.log, lo, hi)
        self.title = title
        self.categories = categories
        self.seriesNames = seriesNames
        self.values = values
        self.yTitle = yTitle
        self.barWidth = barWidth
        self.plotHeight = plotHeight
        self.references = references
        self.yScale = try Scale(yKind, domain: domain, range: (plotHeight, 0))
    }

    var groupWidth: Double { Double(seriesNames.count) * barWidth + Self.groupGap }
    var plotWidth: Double { Double(categories.count) * groupWidth }
    var yTicks: [(value: Double, label: String)] { yScale.ticks(target: 5) }
    var top: Double { Self.pad + (title.isEmpty ? 0 : 22) }
    var left: Double { Self.pad + 18 + (yTicks.map { SVGCanvas.textWidth($0.label, fontSize: Self.tickFont) }.max() ?? 0) + 8 }
    var widestCategory: Double { categories.map { SVGCanvas.textWidth($0, fontSize: Self.tickFont) }.max() ?? 0 }
    var rotated: Bool { widestCategory > groupWidth - 4 }
    var categoryHeight: Double { rotated ? widestCategory * 0.71 + Self.tickFont + 4 : Self.tickFont + 6 }
    var referenceWidth: Double { references.map { SVGCanvas.textWidth($0.label, fontSize: Self.tickFont) + 6 }.max() ?? 0 }
    var legendLeft: Double { left + plotWidth + 16 + referenceWidth }

    public var width: Double {
        let legend = legendLeft + 28 + (seriesNames.map { SVGCanvas.textWidth($0, fontSize: Self.tickFont) }.max() ?? 0) + Self.pad
        // A rotated first label reaches left of the plot by up to 0.71 of its width.
        return max(legend + leftOverhang, 2 * Self.pad + SVGCanvas.textWidth(title, fontSize: Self.titleFont))
    }
    var leftOverhang: Double { rotated ? max(0, widestCategory * 0.71 - left + Self.pad) : 0 }
    public var height: Double {
        max(top + plotHeight + categoryHeight + Self.pad, top + Double(seriesNames.count) * 18 + Self.pad,
            top + SVGCanvas.textWidth(yTitle, fontSize: Self.axisFont) + Self.pad)
    }

    public func draw(into canvas: inout SVGCanvas) {
        let top = self.top, left = self.left + leftOverhang
        if !title.isEmpty { canvas.text(title, x: Self.pad, y: Self.pad + 13, size: Self.titleFont, bold: true, className: "title") }
        canvas.valueAxis(yTicks, scale: yScale, left: left, top: top, width: plotWidth, fontSize: Self.tickFont)
        let base = top + plotHeight
        for (c, name) in categories.enumerated() {
            let gx = left + Double(c) * groupWidth + Self.groupGap / 2
            for s in seriesNames.indices {
                guard let v = values[s][c] else { continue }
                let py = top + yScale(v)
                canvas.rect(x: gx + Double(s) * barWidth, y: py, width: barWidth - 1, height: base - py, fill: Palette.color(s),
                            className: "bar", tooltip: "\(seriesNames[s]), \(name): \(String(format: "%.4g", v))")
            }
            let cx = gx + Double(seriesNames.count) * barWidth / 2
            if rotated {
                canvas.text(name, x: cx + 3, y: base + 10, size: Self.tickFont, anchor: .end, rotation: -45, className: "x-tick-label")
            } else {
                canvas.text(name, x: cx, y: base + 4 + Self.tickFont, size: Self.tickFont, anchor: .middle, className: "x-tick-label")
            }
        }
        for r in references {
            let py = top + yScale(r.value)
            canvas.line(x1: left, y1: py, x2: left + plotWidth, y2: py, stroke: "#333333", dashed: true, className: "reference")
            canvas.text(r.label, x: left + plotWidth + 4, y: py + 4, size: Self.tickFont, className: "reference-label")
        }
        canvas.line(x1: left, y1: base, x2: left + plotWidth, y2: base, stroke: "#666666")
        canvas.line(x1: left, y1: top, x2: left, y2: base, stroke: "#666666")
        let cy = top + max(plotHeight, SVGCanvas.textWidth(yTitle, fontSize: Self.axisFont)) / 2
        canvas.text(yTitle, x: Self.pad + 12, y: cy, size: Self.axisFont, anchor: .middle, rotation: -90, className: "y-title")
        for (s, name) in seriesNames.enumerated() {
            let ly = top + 6 + Double(s) * 18
            var entry = SVGCanvas()
            entry.rect(x: legendLeft + leftOverhang, y: ly - 6, width: 20, height: 12, fill: Palette.color(s))
            entry.text(name, x: legendLeft + leftOverhang + 26, y: ly + 4, size: Self.tickFont)
            canvas.group(entry, className: "legend-entry")
        }
    }
}
