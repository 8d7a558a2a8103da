import DecoderSpec
import Foundation

/// `decoder-spec attention`: attention on a user's own tensors from a safetensors file, so results
/// can be compared with PyTorch / JAX. See docs/attention.md ("Running it on your own tensors").
///
/// Input tensors (F32/F16/BF16/F64, read as Float): `q` [Tq, d_model], `k` [Tk, d_model],
/// `v` [Tk, d_v·H] — already projected; with `heads` = H the columns are split into H heads of
/// width d_model/H (and d_v·H / H), as `multiHeadAttention` does.
/// Output tensors (F32): `o` [Tq, d_v·H] (heads concatenated) and `weights` [H, Tq, Tk].
/// The output file is written atomically (temporary file, then rename).
enum AttentionFileJob {
    struct Result: Sendable {
        var output: Matrix
        /// One [Tq, Tk] matrix per head.
        var weights: [Matrix]
    }

    /// The largest weights tensor [H, Tq, Tk] the job writes: 2²⁸ values (1 GiB of Float). Beyond
    /// it the weights would not fit in memory or a sensible file; the library's
    /// `scaledDotProductAttention` (fused) computes o without ever materializing them.
    static let maximumWeightCount = 1 << 28

    /// Reads q, k, v from `input`, attends, writes o and weights to `output`; returns them.
    /// - Throws: `DecoderSpecError` for a missing/malformed file, missing tensor, wrong rank or
    ///   shape, heads ∤ widths, NaN/Inf, weights larger than `maximumWeightCount`, or an
    ///   unwritable output.
    @discardableResult
    static func run(input: URL, output: URL, causal: Bool, heads: Int, validLength: Int? = nil,
                           path: KernelPath = .optimized) throws -> Result {
        guard FileManager.default.fileExists(atPath: input.path) else {
            throw DecoderSpecError.missingFile(path: input.path, hint: "Write q, k, v with safetensors (e.g. safetensors.torch.save_file).")
        }
        let file = try SafeTensorsFile.read(contentsOf: input)
        var tensors: [Matrix] = []
        for name in ["q", "k", "v"] {
            let shape = try file.shape(name)
            guard shape.count == 2 else {
                throw DecoderSpecError.shapeMismatch(operation: "tensor \"\(name)\" in \(input.path)", expected: "a 2-D tensor [T, width]",
                                                     actual: Shape(shape).description)
            }
            tensors.append(try file.matrix(name))
        }
        let (q, k, v) = (tensors[0], tensors[1], tensors[2])
        try Validate.positive(heads, "heads")
        let (perHead, overflow1) = q.rows.multipliedReportingOverflow(by: k.rows)
        let (count, overflow2) = perHead.multipliedReportingOverflow(by: heads)
        guard !overflow1, !overflow2, count <= maximumWeightCount else {
            throw DecoderSpecError.invalidArgument(
                what: "attention weights [\(heads), \(q.rows), \(k.rows)]",
                reason: "more than \(maximumWeightCount) values (1 GiB of Float) to write; split the sequence, or call scaledDotProductAttention, which never materializes them")
        }
        var mask = causal ? AttentionMask.causal(queryOffset: max(0, k.rows - q.rows)) : .none
        if let validLength { mask = try mask.combined(with: .keyPadding(validLength: validLength)) }
        let o = try multiHeadAttention(q: q, k: k, v: v, heads: heads, mask: mask, path: path)
        let dh = q.cols / heads
        var weights: [Matrix] = []
        for h in 0..<heads {
            weights.append(try attentionWeights(q: columns(q, h * dh, dh), k: columns(k, h * dh, dh), mask: mask))
        }
        var metadata = ["format": "pt", "producer": "decoder-spec attention", "causal": String(causal), "heads": String(heads),
                        "variant": path.rawValue, "mask": mask.description]
        if let validLength { metadata["valid_length"] = String(validLength) }
        try SafeTensorsFile.write([
            (name: "o", shape: [o.rows, o.cols], values: o.storage),
            (name: "weights", shape: [heads, q.rows, k.rows], values: weights.flatMap(\.storage)),
        ], metadata: metadata, to: output)
        return Result(output: o, weights: weights)
    }

    static func columns(_ m: Matrix, _ from: Int, _ count: Int) -> Matrix {
        var out = Matrix(rows: m.rows, cols: count)
        for r in 0..<m.rows { for c in 0..<count { out[r, c] = m[r, from + c] } }
        return out
    }

    /// An SVG heat map of attention weights, one panel per head: white = 0, dark blue = the
    /// largest weight of the panel, masked-out cells (weight exactly 0 where the mask hides the key)
    /// drawn light grey when `mask` is given. At most `maxCells` rows and columns are drawn (the
    /// top-left corner) so a long sequence still gives a file a browser can open.
    static func svg(weights: [Matrix], mask: AttentionMask? = nil, title: String, maxCells: Int = 256) -> String {
        guard let first = weights.first else { return "<svg xmlns=\"http://www.w3.org/2000/svg\"/>" }
        let rows = min(first.rows, maxCells), cols = min(first.cols, maxCells)
        let cell = max(1.0, min(16.0, 512.0 / Double(max(rows, cols))))
        let panelW = Double(cols) * cell, panelH = Double(rows) * cell
        let gap = 24.0, top = 40.0
        let width = Double(weights.count) * (panelW + gap) + gap
        let height = top + panelH + gap
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(fmt(width))\" height=\"\(fmt(height))\" viewBox=\"0 0 \(fmt(width)) \(fmt(height))\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(fmt(gap))\" y=\"18\" font-family=\"sans-serif\" font-size=\"13\">\(escape(title))"
        if rows < first.rows || cols < first.cols { s += " (top-left \(rows)×\(cols) of \(first.rows)×\(first.cols))" }
        s += "</text>\n"
        for (h, w) in weights.enumerated() {
            let x0 = gap + Double(h) * (panelW + gap)
            s += "<text x=\"\(fmt(x0))\" y=\"\(fmt(top - 6))\" font-family=\"sans-serif\" font-size=\"11\">head \(h) — rows: queries, columns: keys</text>\n"
            var peak: Float = 0
            for i in 0..<rows { for j in 0..<cols { peak = max(peak, w[i, j]) } }
            for i in 0..<rows {
                for j in 0..<cols {
                    let fill: String
                    if let mask, !mask.allows(query: i, key: j, keys: w.cols) {
                        fill = "#e6e6e6"
                    } else {
                        let t = peak > 0 ? Double(w[i, j] / peak) : 0
                        let r = Int((1 - t) * 255 + t * 8), g = Int((1 - t) * 255 + t * 48), b = Int((1 - t) * 255 + t * 107)
                        fill = String(format: "#%02x%02x%02x", r, g, b)
                    }
                    s += "<rect x=\"\(fmt(x0 + Double(j) * cell))\" y=\"\(fmt(top + Double(i) * cell))\" width=\"\(fmt(cell))\" height=\"\(fmt(cell))\" fill=\"\(fill)\"><title>q\(i) k\(j): \(String(format: "%.4f", w[i, j]))</title></rect>\n"
                }
            }
        }
        s += "</svg>\n"
        return s
    }

    /// Writes `svg(…)` to `url` atomically (temporary file, then rename).
    static func writeSVG(weights: [Matrix], mask: AttentionMask?, title: String, to url: URL) throws {
        try AtomicFile.write(svg(weights: weights, mask: mask, title: title), to: url)
    }

    static func fmt(_ x: Double) -> String { String(format: "%.2f", x) }
    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
