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

    /// The attention weights as an SVG (`FigureGrid.attention`): one heatmap per head, rows queries
    /// and columns keys, each head scaled to its own maximum with its own colour bar, masked cells
    /// grey when `mask` is given, `labels` (Tk of them; the queries take the last Tq) on the axes.
    /// At most `maxCells` rows and columns are drawn (the top-left corner, said in the title).
    /// - Throws: `.shapeMismatch` when `labels` is not one per key.
    static func svg(weights: [Matrix], mask: AttentionMask? = nil, title: String, labels: [String]? = nil,
                    maxCells: Int = 64) throws -> String {
        guard let first = weights.first else { throw DecoderSpecError.emptySequence(what: "attention weights (no head)") }
        if let labels, labels.count != first.cols {
            throw DecoderSpecError.shapeMismatch(operation: "--labels", expected: "\(first.cols) labels (one per key)", actual: "\(labels.count)")
        }
        let hidden = mask.map { mask in
            (0..<first.rows).map { i in (0..<first.cols).map { !mask.allows(query: i, key: $0, keys: first.cols) } }
        }
        return try FigureGrid.attention(weights, title: title, queryLabels: labels.map { Array($0.suffix(first.rows)) }, keyLabels: labels,
                                        hidden: hidden, maxCells: maxCells).svg()
    }

    /// Writes `svg(…)` to `url` atomically (temporary file, then rename).
    static func writeSVG(weights: [Matrix], mask: AttentionMask?, title: String, labels: [String]? = nil, to url: URL) throws {
        try AtomicFile.write(try svg(weights: weights, mask: mask, title: title, labels: labels), to: url)
    }
}
