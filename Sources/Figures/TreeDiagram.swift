import Foundation
import TensorCore

/// A tree drawn left to right: the root at the left, depth d in column d, leaves one row each in
/// depth-first order, a parent centred on its children. Each node is a boxed label; a node may
/// carry a mark (an index into `marks`, the legend), which colours its box and the edge into it —
/// e.g. the hypotheses greedy decoding and beam search keep.
public struct TreeDiagram: Figure {
    public struct Node: Sendable {
        public var label: String
        public var parent: Int?
        public var mark: Int?
        public init(_ label: String, parent: Int?, mark: Int? = nil) { self.label = label; self.parent = parent; self.mark = mark }
    }

    public var title: String
    public var nodes: [Node]
    public var marks: [String]
    public var columnTitles: [String]

    static let pad = 8.0, font = 11.0, titleFont = 13.0, rowHeight = 24.0, boxHeight = 18.0, columnGap = 28.0

    /// - Throws: `.emptySequence` for no node, `.invalidArgument` when node 0 has a parent, a
    ///   parent index is not an earlier node, or a mark is not an index into `marks`.
    public init(title: String, nodes: [Node], marks: [String] = [], columnTitles: [String] = []) throws {
        guard !nodes.isEmpty else { throw DecoderSpecError.emptySequence(what: "tree nodes") }
        for (i, n) in nodes.enumerated() {
            if i == 0, n.parent != nil { throw DecoderSpecError.invalidArgument(what: "tree node 0", reason: "the root has no parent") }
            if i > 0 { guard let p = n.parent, p >= 0, p < i else {
                throw DecoderSpecError.invalidArgument(what: "tree node \(i) parent \(n.parent.map(String.init) ?? "nil")", reason: "must be an earlier node")
            } }
            if let m = n.mark, !marks.indices.contains(m) {
                throw DecoderSpecError.invalidArgument(what: "tree node \(i) mark \(m)", reason: "expected an index into \(marks.count) marks")
            }
        }
        self.title = title
        self.nodes = nodes
        self.marks = marks
        self.columnTitles = columnTitles
    }

    var depth: [Int] {
        var d = [Int](repeating: 0, count: nodes.count)
        for i in 1..<max(1, nodes.count) { d[i] = d[nodes[i].parent!] + 1 }
        return d
    }
    var children: [[Int]] {
        var c = [[Int]](repeating: [], count: nodes.count)
        for i in 1..<max(1, nodes.count) { c[nodes[i].parent!].append(i) }
        return c
    }
    /// Row (fractional) of each node: leaves 0, 1, … in depth-first order, parents the mean of their children.
    var rowOf: [Double] {
        var row = [Double](repeating: 0, count: nodes.count)
        var next = 0.0
        let kids = children
        func visit(_ i: Int) {
            if kids[i].isEmpty { row[i] = next; next += 1; return }
            for c in kids[i] { visit(c) }
            row[i] = (row[kids[i].first!] + row[kids[i].last!]) / 2
        }
        visit(0)
        return row
    }
    var leafCount: Int { children.filter(\.isEmpty).count }
    func boxWidth(_ i: Int) -> Double { SVGCanvas.textWidth(nodes[i].label, fontSize: Self.font) + 10 }
    var columnWidths: [Double] {
        let d = depth
        return (0...(d.max() ?? 0)).map { k in
            max(nodes.indices.filter { d[$0] == k }.map(boxWidth).max() ?? 0,
                k < columnTitles.count ? SVGCanvas.textWidth(columnTitles[k], fontSize: Self.font) : 0)
        }
    }
    var columnLeft: [Double] {
        var x = Self.pad, out: [Double] = []
        for w in columnWidths { out.append(x); x += w + Self.columnGap }
        return out
    }
    var top: Double { Self.pad + (title.isEmpty ? 0 : 22) + (columnTitles.isEmpty ? 0 : 18) }
    var treeWidth: Double { (columnLeft.last ?? 0) + (columnWidths.last ?? 0) }
    var legendTop: Double { top + Double(leafCount) * Self.rowHeight + 6 }

    public var width: Double {
        let legend = Self.pad + marks.map { SVGCanvas.textWidth($0, fontSize: Self.font) + 40 }.reduce(0, +)
        return max(treeWidth + Self.pad, legend + Self.pad, 2 * Self.pad + SVGCanvas.textWidth(title, fontSize: Self.titleFont))
    }
    public var height: Double { legendTop + (marks.isEmpty ? 0 : 20) + Self.pad }

    func color(_ mark: Int?) -> String { mark.map(Palette.color) ?? "#999999" }

    public func draw(into canvas: inout SVGCanvas) {
        if !title.isEmpty { canvas.text(title, x: Self.pad, y: Self.pad + 13, size: Self.titleFont, bold: true, className: "title") }
        let left = columnLeft, d = depth, row = rowOf
        for (k, t) in columnTitles.enumerated() where k < left.count {
            canvas.text(t, x: left[k], y: top - 6, size: Self.font, className: "column-title", fill: "#555555")
        }
        func center(_ i: Int) -> Double { top + (row[i] + 0.5) * Self.rowHeight }
        for i in 1..<max(1, nodes.count) {
            let p = nodes[i].parent!
            canvas.line(x1: left[d[p]] + boxWidth(p), y1: center(p), x2: left[d[i]], y2: center(i), stroke: color(nodes[i].mark),
                        width: nodes[i].mark == nil ? 1 : 2, className: "edge")
        }
        for i in nodes.indices {
            let marked = nodes[i].mark != nil
            canvas.rect(x: left[d[i]], y: center(i) - Self.boxHeight / 2, width: boxWidth(i), height: Self.boxHeight,
                        fill: marked ? "#ffffff" : "#f4f4f4", stroke: color(nodes[i].mark), className: "node")
            canvas.text(nodes[i].label, x: left[d[i]] + 5, y: center(i) + 4, size: Self.font, bold: marked, className: "node-label")
        }
        var x = Self.pad
        for (m, name) in marks.enumerated() {
            var entry = SVGCanvas()
            entry.line(x1: x, y1: legendTop + 8, x2: x + 20, y2: legendTop + 8, stroke: Palette.color(m), width: 2)
            entry.text(name, x: x + 26, y: legendTop + 12, size: Self.font)
            canvas.group(entry, className: "legend-entry")
            x += SVGCanvas.textWidth(name, fontSize: Self.font) + 40
        }
    }
}
