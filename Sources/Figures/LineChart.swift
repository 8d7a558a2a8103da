import Foundation
import TensorCore

/// A series of a line chart: its points, drawn as a line, a dashed line or markers only.
public struct Series: Sendable {
    public enum Style: Sendable { case line, dashed, points }
    public var name: String
    public var points: [(x: Double, y: Double)]
    public var style: Style
    /// Text drawn beside each marker (`points` style only), e.g. a kernel's name; nil or "": none.
    public var pointLabels: [String]?

    public init(_ name: String, _ points: [(x: Double, y: Double)], style: Style = .line, pointLabels: [String]? = nil) {
        self.name = name
        self.points = points
        self.style = style
        self.pointLabels = pointLabels
    }
}

/// A line chart of several series with a legend (one entry per series, in order), linear or log
/// axes. The x domain defaults to the data's extent (log: whole decades), the y domain to the
/// data's extent widened to whole ticks (`Scale.niceDomain`).
public struct LineChart: Figure {
    public var title: String
    public var series: [Series]
    public var xTitle: String, yTitle: String
    public var xScale: Scale, yScale: Scale
    public var plotWidth: Double, plotHeight: Double

    static let pad = 8.0, tickFont = 11.0, axisFont = 12.0, titleFont = 13.0

    /// - Throws: `.emptySequence` without a finite point, `.nonFinite` for a NaN/∞ coordinate,
    ///   `.invalidArgument` for a point ≤ 0 on a log axis or an empty domain.
    public init(title: String, series: [Series], xTitle: String, yTitle: String, xKind: Scale.Kind = .linear,
                yKind: Scale.Kind = .linear, xDomain: ClosedRange<Double>? = nil, yDomain: ClosedRange<Double>? = nil,
                plotWidth: Double = 460, plotHeight: Double = 260) throws {
        let all = series.flatMap(\.points)
        guard !all.isEmpty else { throw DecoderSpecError.emptySequence(what: "line chart points") }
        for (s, item) in series.enumerated() {
            for (i, p) in item.points.enumerated() {
                guard p.x.isFinite, p.y.isFinite else {
                    throw DecoderSpecError.nonFinite(what: "series \(s) (\(item.name)) point", index: i, value: p.x.isFinite ? p.y : p.x)
                }
                if (xKind == .log && p.x <= 0) || (yKind == .log && p.y <= 0) {
                    throw DecoderSpecError.invalidArgument(what: "series \(item.name) point \(i) (\(p.x), \(p.y))", reason: "a log axis needs values > 0")
                }
            }
        }
        let xs = all.map(\.x), ys = all.map(\.y)
        // x: the data's extent (log: whole decades); y: widened to whole ticks.
        let xd = xDomain ?? (xKind == .log || xs.min()! == xs.max()! ? Scale.niceDomain(xKind, xs.min()!, xs.max()!, target: 6) : xs.min()!...xs.max()!)
        let yd = yDomain ?? Scale.niceDomain(yKind, ys.min()!, ys.max()!, target: 5)
        self.title = title
        self.series = series
        self.xTitle = xTitle
        self.yTitle = yTitle
        self.plotWidth = plotWidth
        self.plotHeight = plotHeight
        // Pixel ranges are relative to the plot's top-left corner; `draw` translates them.
        self.xScale = try Scale(xKind, domain: xd, range: (0, plotWidth))
        self.yScale = try Scale(yKind, domain: yd, range: (plotHeight, 0))
    }

    var yTicks: [(value: Double, label: String)] { yScale.ticks(target: 5) }
    var xTicks: [(value: Double, label: String)] { xScale.ticks(target: 6) }
    var top: Double { Self.pad + (title.isEmpty ? 0 : 22) }
    var left: Double { Self.pad + 18 + (yTicks.map { SVGCanvas.textWidth($0.label, fontSize: Self.tickFont) }.max() ?? 0) + 8 }
    var legendLeft: Double { left + plotWidth + 16 }
    var legendWidth: Double { 28 + (series.map { SVGCanvas.textWidth($0.name, fontSize: Self.tickFont) }.max() ?? 0) }

    public var width: Double {
        max(legendLeft + legendWidth + Self.pad, 2 * Self.pad + SVGCanvas.textWidth(title, fontSize: Self.titleFont),
            left + plotWidth + labelOverhang + Self.pad)
    }
    public var height: Double {
        max(top + plotHeight + 20 + 18 + Self.pad, top + Double(series.count) * 18 + Self.pad,
            top + SVGCanvas.textWidth(yTitle, fontSize: Self.axisFont) + Self.pad)
    }

    /// How far point labels may reach right of the plot.
    var labelOverhang: Double {
        series.flatMap { $0.pointLabels ?? [] }.map { SVGCanvas.textWidth($0, fontSize: 10) + 8 }.max() ?? 0
    }

    public func draw(into canvas: inout SVGCanvas) {
        let (top, left) = (self.top, self.left)
        if !title.isEmpty { canvas.text(title, x: Self.pad, y: Self.pad + 13, size: Self.titleFont, bold: true, className: "title") }
        canvas.valueAxis(yTicks, scale: yScale, left: left, top: top, width: plotWidth, fontSize: Self.tickFont)
        for tick in xTicks {
            let px = left + xScale(tick.value)
            canvas.line(x1: px, y1: top, x2: px, y2: top + plotHeight, stroke: "#e5e5e5", className: "grid")
            canvas.line(x1: px, y1: top + plotHeight, x2: px, y2: top + plotHeight + 4, stroke: "#666666", className: "x-tick")
            canvas.text(tick.label, x: px, y: top + plotHeight + 6 + Self.tickFont, size: Self.tickFont, anchor: .middle, className: "x-tick-label")
        }
        canvas.rect(x: left, y: top, width: plotWidth, height: plotHeight, fill: "none", stroke: "#666666")
        canvas.text(xTitle, x: left + plotWidth / 2, y: top + plotHeight + 20 + 14, size: Self.axisFont, anchor: .middle, className: "x-title")
        let cy = top + max(plotHeight, SVGCanvas.textWidth(yTitle, fontSize: Self.axisFont)) / 2
        canvas.text(yTitle, x: Self.pad + 12, y: cy, size: Self.axisFont, anchor: .middle, rotation: -90, className: "y-title")
        for (k, s) in series.enumerated() {
            let color = Palette.color(k)
            let pts = s.points.map { (left + xScale($0.x), top + yScale($0.y)) }
            switch s.style {
            case .line, .dashed:
                canvas.polyline(pts, stroke: color, dashed: s.style == .dashed, className: "series")
            case .points:
                for (i, p) in pts.enumerated() {
                    canvas.circle(cx: p.0, cy: p.1, r: 4, fill: color, className: "series-point",
                                  tooltip: "\(s.pointLabels.map { i < $0.count && !$0[i].isEmpty ? $0[i] : s.name } ?? s.name): (\(String(format: "%.4g", s.points[i].x)), \(String(format: "%.4g", s.points[i].y)))")
                    if let labels = s.pointLabels, i < labels.count, !labels[i].isEmpty {
                        canvas.text(labels[i], x: p.0 + 6, y: p.1 - 5, size: 10, className: "point-label", fill: color)
                    }
                }
            }
            // Legend entry.
            let ly = top + 6 + Double(k) * 18
            var entry = SVGCanvas()
            if s.style == .points { entry.circle(cx: legendLeft + 10, cy: ly, r: 4, fill: color) }
            else { entry.line(x1: legendLeft, y1: ly, x2: legendLeft + 20, y2: ly, stroke: color, width: 2, dashed: s.style == .dashed) }
            entry.text(s.name, x: legendLeft + 26, y: ly + 4, size: Self.tickFont)
            canvas.group(entry, className: "legend-entry")
        }
    }
}
