import Figures
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import TensorCore
import Testing

/// An element of a parsed SVG: its name, attributes, text and enclosing `<g class>` names.
struct Element {
    var name: String
    var attributes: [String: String]
    var text = ""
    var groups: [String]
    func number(_ key: String) -> Double { Double(attributes[key] ?? "") ?? .nan }
}

/// Parses SVG text with Foundation's XMLParser; nil when it is not well-formed XML.
final class SVGReader: NSObject, XMLParserDelegate {
    var elements: [Element] = []
    var open: [Int] = []
    var groups: [String] = []

    static func parse(_ svg: String) -> [Element]? {
        let reader = SVGReader()
        let parser = XMLParser(data: Data(svg.utf8))
        parser.delegate = reader
        return parser.parse() ? reader.elements : nil
    }

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        if name == "g" { groups.append(attributes["class"] ?? "") }
        elements.append(Element(name: name, attributes: attributes, groups: groups))
        open.append(elements.count - 1)
    }
    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        if name == "g" { groups.removeLast() }
        open.removeLast()
    }
    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if let i = open.last { elements[i].text += string }
    }
}

func parsed(_ figure: some Figure) throws -> [Element] {
    let svg = figure.svg()
    let elements = try #require(SVGReader.parse(svg), "not well-formed XML:\n\(svg.prefix(400))")
    let root = try #require(elements.first)
    #expect(root.name == "svg")
    // 1 unit = 1 pixel: width/height equal the viewBox, and the figure's size rounded up.
    #expect(root.attributes["viewBox"] == "0 0 \(root.attributes["width"]!) \(root.attributes["height"]!)")
    #expect(root.number("width") == figure.width.rounded(.up) && root.number("height") == figure.height.rounded(.up))
    return elements
}

/// The box a text element covers, from the same width estimate the layout uses
/// (`SVGCanvas.textWidth`): [y − size, y + 0.25·size] vertically (ascent and descent), rotated
/// about (x, y) by the element's rotation. Returns the four corners.
func corners(_ e: Element) -> [(Double, Double)] {
    let x = e.number("x"), y = e.number("y"), size = e.number("font-size")
    let w = SVGCanvas.textWidth(e.text, fontSize: size)
    let x0: Double
    switch e.attributes["text-anchor"] ?? "start" { case "middle": x0 = x - w / 2; case "end": x0 = x - w; default: x0 = x }
    var angle = 0.0
    if let t = e.attributes["transform"], t.hasPrefix("rotate(") {
        angle = Double(t.dropFirst(7).split(separator: " ")[0]) ?? 0
    }
    let a = angle * Double.pi / 180
    return [(x0, y - size), (x0 + w, y - size), (x0, y + 0.25 * size), (x0 + w, y + 0.25 * size)].map { px, py in
        let dx = px - x, dy = py - y
        return (x + dx * cos(a) - dy * sin(a), y + dx * sin(a) + dy * cos(a))
    }
}

/// Every text inside the figure (nothing cut off) and at least 10 px (readable at the size shown).
func expectTextInside(_ figure: some Figure, _ what: String) throws {
    let elements = try parsed(figure)
    let inGroup = elements.contains { $0.name == "g" && ($0.attributes["transform"] ?? "").hasPrefix("translate") }
    #expect(!inGroup || figure is FigureGrid)
    for e in elements where e.name == "text" && e.groups.allSatisfy({ _ in true }) && !inGroup {
        #expect(e.number("font-size") >= 10, "\(what): \"\(e.text)\" is \(e.number("font-size")) px")
        for (px, py) in corners(e) {
            #expect(px >= -0.5 && px <= figure.width + 0.5 && py >= -0.5 && py <= figure.height + 0.5,
                    "\(what): \"\(e.text)\" reaches (\(px), \(py)) outside \(figure.width) × \(figure.height)")
        }
    }
}

@Suite("Figures: ticks, scales, colour maps, legends, well-formed deterministic SVG")
struct FigureSpecs {
    // MARK: ticks

    @Test("Nice step: closed forms, and the smallest of {1, 2, 5}·10^e ≥ span/n for many spans")
    func niceStep() {
        #expect(Ticks.niceStep(span: 63, target: 5) == 20)          // 12.6 → 20
        #expect(Ticks.niceStep(span: 1, target: 5) == 0.2)          // 0.2 → 0.2
        #expect(Ticks.niceStep(span: 100, target: 5) == 20)         // 20 → 20
        #expect(Ticks.niceStep(span: 0.37, target: 4) == 0.1)       // 0.0925 → 0.1
        #expect(Ticks.niceStep(span: 7, target: 7) == 1)            // 1 → 1
        #expect(Ticks.niceStep(span: 3000, target: 6) == 500)       // 500 → 500
        var rng = SeededRNG(seed: 18)
        for _ in 0..<2000 {
            let span = pow(10, rng.uniform() * 12 - 6), n = 2 + Int(rng.uniform() * 8)
            let step = Ticks.niceStep(span: span, target: n)
            let e = floor(log10(step) + 1e-9), m = step / pow(10, e)
            #expect([1.0, 2, 5].contains { abs(m - $0) < 1e-9 }, "step \(step) is not 1, 2 or 5 × 10^\(e)")
            #expect(step >= span / Double(n) * (1 - 1e-12))
            // Minimal: the next smaller nice number (5 → 2 → 1 → 0.5 …) is below span/n.
            let smaller = abs(m - 1) < 1e-9 ? 0.5 * step : abs(m - 2) < 1e-9 ? 0.5 * step : 0.4 * step
            #expect(smaller < span / Double(n))
        }
    }

    @Test("Linear ticks are the multiples of the step inside [lo, hi]; labels in fixed notation")
    func linearTicks() {
        #expect(Ticks.linear(0, 63, target: 5) == [0, 20, 40, 60])
        #expect(Ticks.linear(-1, 1, target: 4).count == 5)
        #expect(Ticks.labels(Ticks.linear(-1, 1, target: 4), step: 0.5) == ["\u{2212}1.0", "\u{2212}0.5", "0.0", "0.5", "1.0"])
        #expect(Ticks.labels(Ticks.linear(0, 1, target: 5), step: 0.2) == ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"])
        #expect(Ticks.labels([0, 20, 40, 60], step: 20) == ["0", "20", "40", "60"])
        var rng = SeededRNG(seed: 7)
        for _ in 0..<500 {
            let lo = (rng.uniform() - 0.5) * 1000, hi = lo + rng.uniform() * 500 + 1e-3
            let n = 2 + Int(rng.uniform() * 6)
            let step = Ticks.niceStep(span: hi - lo, target: n)
            let ticks = Ticks.linear(lo, hi, target: n)
            #expect(!ticks.isEmpty && ticks.count <= n + 1)
            for t in ticks {
                #expect(t >= lo - 1e-9 * step && t <= hi + 1e-9 * step)
                #expect(abs(t / step - (t / step).rounded()) < 1e-9)
            }
            #expect(ticks.first! - step < lo && ticks.last! + step > hi)   // none missing at either end
        }
    }

    @Test("Log ticks are the powers of ten, equally spaced on a log axis; labels 0.01 … 10000, 1e5")
    func logTicks() throws {
        let s = try Scale(.log, domain: 1...1000, range: (0, 300))
        let ticks = s.ticks()
        #expect(ticks.map(\.value) == [1, 10, 100, 1000])
        #expect(ticks.map(\.label) == ["1", "10", "100", "1000"])
        for (k, t) in ticks.enumerated() { #expect(abs(s(t.value) - 100 * Double(k)) < 1e-9) }
        #expect(Scale.niceDomain(.log, 0.03, 420) == 0.01...1000)
        #expect(Ticks.logLabel(-2) == "0.01" && Ticks.logLabel(5) == "1e5" && Ticks.logLabel(-5) == "1e\u{2212}5")
    }

    // MARK: scales and colour maps

    @Test("Data → pixel maps are monotone with exact endpoints, linear and log, either direction")
    func scales() throws {
        var rng = SeededRNG(seed: 3)
        for kind in [Scale.Kind.linear, .log] {
            for _ in 0..<200 {
                let lo = kind == .log ? pow(10, rng.uniform() * 6 - 3) : (rng.uniform() - 0.5) * 100
                let hi = kind == .log ? lo * pow(10, 0.1 + rng.uniform() * 5) : lo + 0.01 + rng.uniform() * 100
                let r: (Double, Double) = rng.uniform() < 0.5 ? (10, 410) : (300, 20)
                let s = try Scale(kind, domain: lo...hi, range: r)
                #expect(s(lo) == r.0 && s(hi) == r.1)
                let xs = (0...50).map { lo + (hi - lo) * Double($0) / 50 }
                let px = xs.map { s($0) }
                for i in 1..<px.count { #expect(r.1 > r.0 ? px[i] > px[i - 1] : px[i] < px[i - 1]) }
            }
        }
        // Linear midpoint is the pixel midpoint; log: the geometric mean is.
        #expect(try Scale(.linear, domain: 2...6, range: (0, 100))(4) == 50)
        #expect(abs(try Scale(.log, domain: 1...100, range: (0, 100))(10) - 50) < 1e-12)
        #expect(throws: DecoderSpecError.self) { try Scale(.log, domain: 0...1, range: (0, 1)) }
        #expect(throws: DecoderSpecError.self) { try Scale(.linear, domain: 1...1, range: (0, 1)) }
    }

    @Test("Colour maps: endpoints are their stops, the midpoint the rounded channel mean (sequential) or white (diverging)")
    func colorMaps() {
        #expect(ColorMap.sequential.color(0) == RGB(255, 255, 255))
        #expect(ColorMap.sequential.color(1) == RGB(8, 48, 107))
        // (255 + 8)/2 = 131.5 → 132, (255 + 48)/2 = 151.5 → 152, (255 + 107)/2 = 181.
        #expect(ColorMap.sequential.color(0.5) == RGB(132, 152, 181))
        #expect(ColorMap.diverging.color(0) == RGB(33, 102, 172))
        #expect(ColorMap.diverging.color(0.5) == RGB(255, 255, 255))
        #expect(ColorMap.diverging.color(1) == RGB(178, 24, 43))
        #expect(ColorMap.diverging.color(-3) == ColorMap.diverging.color(0) && ColorMap.sequential.color(7) == ColorMap.sequential.color(1))
        #expect(ColorMap.sequential.color(.nan) == ColorMap.nan)
        #expect(ColorMap.diverging.color(0, domain: -1...1) == RGB(255, 255, 255))
        #expect(RGB(8, 48, 107).hex == "#08306b")
    }

    // MARK: figures

    func heatmap(rows: Int, cols: Int, labels: [String]? = nil, title: String = "t") throws -> Heatmap {
        let values = (0..<rows).map { i in (0..<cols).map { j in sin(Double(i) / 3 + Double(j)) } }
        let x = labels.map { HeatmapAxis.labelled("key", $0) } ?? .index("dimension", count: cols)
        return try Heatmap(values, title: title, x: x, y: labels.map { .labelled("query", $0) } ?? .index("position", count: rows),
                           colorMap: .diverging, domain: -1...1, colorBarTitle: "value")
    }

    @Test("Heatmap: one cell per value coloured by the map, x ticks at cell centres per the nice-number rule, a colour bar")
    func heatmapCells() throws {
        let h = try heatmap(rows: 50, cols: 64)
        let e = try parsed(h)
        let cells = e.filter { $0.name == "rect" && $0.groups.last == "cells" }
        #expect(cells.count == 50 * 64)
        #expect(cells[0].attributes["fill"] == ColorMap.diverging.color(sin(0.0), domain: -1...1).hex)
        #expect(cells[65].attributes["fill"] == ColorMap.diverging.color(sin(1.0 / 3 + 1), domain: -1...1).hex)
        let left = cells[0].number("x"), cell = cells[1].number("x") - left
        let ticks = e.filter { $0.attributes["class"] == "x-tick" }.map { $0.number("x1") }
        let labels = e.filter { $0.attributes["class"] == "x-tick-label" }.map(\.text)
        let expected = Ticks.linear(0, 63, target: max(1, min(8, Int(64 * cell / 40))))
        #expect(labels == expected.map { String(Int($0)) })
        for (p, v) in zip(ticks, expected) { #expect(abs(p - (left + (v + 0.5) * cell)) < 0.006) }   // 2-decimal output
        let bar = e.filter { $0.attributes["class"] == "colorbar-label" }.map(\.text)
        #expect(bar == ["\u{2212}1.0", "\u{2212}0.5", "0.0", "0.5", "1.0"])
        // The top band is the upper end of the domain.
        let bands = e.filter { $0.attributes["class"] == "colorbar" }
        #expect(bands.count == 64 && bands[0].number("y") < bands[63].number("y"))
        #expect(bands[0].attributes["fill"] == ColorMap.diverging.color(1 - 0.5 / 64).hex)
    }

    @Test("Heatmap: hidden (masked) cells grey with a legend entry; bad shapes are typed errors")
    func heatmapHidden() throws {
        let v = [[1.0, 0], [0.5, 0.5]]
        let h = try Heatmap(v, title: "causal", x: .labelled("key", ["a", "b"]), y: .labelled("query", ["a", "b"]),
                            domain: 0...1, hidden: [[false, true], [false, false]])
        let e = try parsed(h)
        let cells = e.filter { $0.name == "rect" && $0.groups.last == "cells" }
        #expect(cells[1].attributes["fill"] == ColorMap.hidden.hex && cells[0].attributes["fill"] == ColorMap.darkBlue.hex)
        #expect(e.contains { $0.name == "text" && $0.text == "masked" })
        #expect(throws: DecoderSpecError.self) { try Heatmap([[1, 2], [3]], title: "", x: HeatmapAxis(""), y: HeatmapAxis("")) }
        #expect(throws: DecoderSpecError.self) { try Heatmap([], title: "", x: HeatmapAxis(""), y: HeatmapAxis("")) }
        #expect(throws: DecoderSpecError.self) { try Heatmap(v, title: "", x: .labelled("", ["a"]), y: HeatmapAxis("")) }
        #expect(throws: DecoderSpecError.self) { try Heatmap(v, title: "", x: HeatmapAxis(""), y: HeatmapAxis(""), domain: 1...1) }
    }

    func lineChart(series: Int, xKind: Scale.Kind = .linear, yKind: Scale.Kind = .linear) throws -> LineChart {
        let all = (0..<series).map { s in
            Series("series \(s) with a long name", (1...20).map { (x: Double($0), y: Double($0 * (s + 1))) },
                   style: s == 1 ? .dashed : s == 2 ? .points : .line)
        }
        return try LineChart(title: "lines", series: all, xTitle: "k", yTitle: "value", xKind: xKind, yKind: yKind)
    }

    @Test("Line chart: one legend entry per series in order; points on the axes' scales; log axes tick at powers of ten")
    func lines() throws {
        for n in [1, 3, 5] {
            let e = try parsed(lineChart(series: n))
            let legend = e.filter { $0.name == "text" && $0.groups.contains("legend-entry") }.map(\.text)
            #expect(legend == (0..<n).map { "series \($0) with a long name" })
        }
        let chart = try lineChart(series: 1, xKind: .log, yKind: .log)
        #expect(chart.xScale.domain == 1...100 && chart.yScale.domain == 1...100)
        let e = try parsed(chart)
        #expect(e.filter { $0.attributes["class"] == "x-tick-label" }.map(\.text) == ["1", "10", "100"])
        // The polyline's first and last points are (1, 1) and (20, 20) through the scales.
        let line = try #require(e.first { $0.attributes["class"] == "series" })
        let pts = line.attributes["points"]!.split(separator: " ").map { $0.split(separator: ",").map { Double($0)! } }
        let plotLeft = try #require(e.first { $0.attributes["class"] == "x-tick" }).number("x1")   // the tick at 1 is the left edge
        #expect(abs(pts[0][0] - plotLeft) < 0.006)
        #expect(abs(pts.last![0] - (plotLeft + chart.plotWidth * log10(20) / 2)) < 0.006)
        #expect(throws: DecoderSpecError.self) { try LineChart(title: "", series: [Series("a", [(x: 0, y: 1)])], xTitle: "", yTitle: "", xKind: .log) }
        #expect(throws: DecoderSpecError.self) { try LineChart(title: "", series: [Series("a", [(x: .nan, y: 1)])], xTitle: "", yTitle: "") }
        #expect(throws: DecoderSpecError.self) { try LineChart(title: "", series: [Series("a", [])], xTitle: "", yTitle: "") }
    }

    @Test("Bar chart: one bar per present value with height ∝ value from 0, one legend entry per series")
    func bars() throws {
        let chart = try BarChart(title: "speed", categories: ["softmax", "a very long kernel name indeed", "gemm"],
                                 series: ["naive", "optimized"], values: [[1, 2, 4], [10, nil, 40]], yTitle: "GFLOP/s")
        let e = try parsed(chart)
        let bars = e.filter { $0.attributes["class"] == "bar" }
        #expect(bars.count == 5)
        #expect(e.filter { $0.name == "text" && $0.groups.contains("legend-entry") }.map(\.text) == ["naive", "optimized"])
        #expect(chart.yScale.domain == 0...40)
        // height = plotHeight · v / 40.
        for (bar, v) in zip(bars, [1.0, 10, 2, 4, 40]) { #expect(abs(bar.number("height") - chart.plotHeight * v / 40) < 0.006) }
        #expect(throws: DecoderSpecError.self) {
            try BarChart(title: "", categories: ["a"], series: ["s"], values: [[0]], yTitle: "", yKind: .log)
        }
        #expect(throws: DecoderSpecError.self) { try BarChart(title: "", categories: ["a", "b"], series: ["s"], values: [[1]], yTitle: "") }
        // A reference line sits at its value on the axis (and widens the domain to include it).
        let withLine = try BarChart(title: "", categories: ["a"], series: ["s"], values: [[10]], yTitle: "", references: [(50, "bound")])
        #expect(withLine.yScale.domain == 0...50)
        let line = try #require(try parsed(withLine).first { $0.attributes["class"] == "reference" })
        let bar = try #require(try parsed(withLine).first { $0.attributes["class"] == "bar" })
        #expect(abs(line.number("y1") - (bar.number("y") + bar.number("height") - withLine.plotHeight)) < 0.011)
    }

    @Test("Tree: one box per node, one edge per non-root node, legend per mark; bad parents are typed errors")
    func tree() throws {
        let nodes = [TreeDiagram.Node("<s>", parent: nil, mark: 0), .init("the", parent: 0, mark: 0), .init("a", parent: 0),
                     .init("cat", parent: 1, mark: 0), .init("dog", parent: 1), .init("cat", parent: 2)]
        let t = try TreeDiagram(title: "search", nodes: nodes, marks: ["greedy"], columnTitles: ["step 0", "step 1", "step 2"])
        let e = try parsed(t)
        #expect(e.filter { $0.attributes["class"] == "node" }.count == 6)
        #expect(e.filter { $0.attributes["class"] == "edge" }.count == 5)
        #expect(e.filter { $0.name == "g" && $0.attributes["class"] == "legend-entry" }.count == 1)
        try expectTextInside(t, "tree")
        #expect(throws: DecoderSpecError.self) { try TreeDiagram(title: "", nodes: [.init("a", parent: nil), .init("b", parent: 1)]) }
        #expect(throws: DecoderSpecError.self) { try TreeDiagram(title: "", nodes: [.init("a", parent: nil, mark: 2)], marks: ["x"]) }
    }

    @Test("No text is cut off or smaller than 10 px, for one cell, short and long labels, long titles")
    func textInside() throws {
        try expectTextInside(heatmap(rows: 1, cols: 1), "1×1 heatmap")
        try expectTextInside(heatmap(rows: 3, cols: 3, labels: ["I", "am", "x"]), "3×3 heatmap")
        try expectTextInside(heatmap(rows: 4, cols: 4, labels: ["a", "tokenization", "supercalifragilistic", "x"],
                                     title: "a title far longer than the four cells of this little heatmap"), "long labels")
        try expectTextInside(heatmap(rows: 100, cols: 64), "100×64 heatmap")
        try expectTextInside(lineChart(series: 3), "line chart")
        try expectTextInside(lineChart(series: 2, xKind: .log, yKind: .log), "log-log chart")
        try expectTextInside(BarChart(title: "t", categories: ["x", "an extremely long category name"], series: ["a", "b", "c"],
                                      values: [[1, 2], [3, 4], [5, 6]], yTitle: "a long value-axis title that is longer than the plot", yKind: .log),
                             "bar chart")
    }

    @Test("Deterministic: the same input gives the same bytes; no ids, no dates")
    func deterministic() throws {
        let a = try heatmap(rows: 10, cols: 8).svg(), b = try heatmap(rows: 10, cols: 8).svg()
        #expect(a == b)
        let grid = FigureGrid([try heatmap(rows: 3, cols: 3), try lineChart(series: 2)], columns: 2, title: "grid", note: "a note")
        #expect(grid.svg() == grid.svg())
        #expect(!a.contains(" id=") && !grid.svg().contains(" id="))
        let e = try parsed(grid)
        #expect(e.filter { $0.name == "g" && ($0.attributes["transform"] ?? "").hasPrefix("translate") }.count == 2)
        #expect(SVGCanvas.number(1.005) == "1" || SVGCanvas.number(1.005) == "1.01")
        #expect(SVGCanvas.number(-0.001) == "0" && SVGCanvas.number(12.5) == "12.5" && SVGCanvas.number(3) == "3")
    }

    @Test("FigureFile.save writes NAME.svg into $DECODERSPEC_FIGURES or docs/figures; a bad name is a typed error")
    func save() throws {
        #expect(throws: DecoderSpecError.self) { try FigureFile.save(svg: "<svg/>", as: "../escape") }
        #expect(throws: DecoderSpecError.self) { try FigureFile.save(svg: "<svg/>", as: "") }
    }
}
