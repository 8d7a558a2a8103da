import DecoderSpec
import Foundation
import SpecSupport
import Testing

/// A gradient with one [5,003, 20] table (100,060 values: cut into chunks by the combination and by
/// AdamW at 2 and 3 threads; 20 is a multiple of neither the 8 nor the 16 lanes) and a dense vector.
/// Example e writes rows `rows[e]` of the table; the other rows are +0. `listsRows`: whether the
/// gradient says so (`rowSupports`) — the dense twin of the same task does not.
struct RowListTask: TrainingTask {
    struct Model: ParameterContainer {
        var table: [Float]
        var bias: [Float]
        var listed: [Int]? = nil
        static let (rows, width) = (5_003, 20)
        mutating func visitParameters(prefix: String, _ body: (String, [Int], inout [Float]) throws -> Void) rethrows {
            try body("table", [Self.rows, Self.width], &table)
            try body("bias", [Self.width], &bias)
        }
        var rowSupports: [Int: [Int]] {
            get { listed.map { [0: $0] } ?? [:] }
            set { listed = newValue[0] }
        }
        static var zero: Model { Model(table: [Float](repeating: 0, count: rows * width), bias: [Float](repeating: 0, count: width)) }
    }

    /// Rows per example: adjacent rows, the first and the last row, rows shared between examples.
    static let rows: [[Int]] = [[0, 1, 2, 917], [5_002, 40, 41], [917, 3_000], [7], [2, 4_999, 5_000, 5_001], [1_234, 3_000, 40]]
    static let denominators = [3, 1, 2, 4, 2, 1]
    var listsRows: Bool
    var exampleCount: Int { Self.rows.count }
    func length(of example: Int) -> Int { Self.rows[example].count }
    func lossDenominator(examples: [Int]) -> Int? { examples.reduce(0) { $0 + Self.denominators[$1] } }

    /// Example e's value at (row, j): uniform in [−1, 1) from a seed of (e, row), −0 at every 7th j.
    static func value(example e: Int, row: Int, _ j: Int) -> Double {
        if j % 7 == 3 { return -0.0 }
        var rng = SeededRNG(seed: UInt64(1_000 * e + row + 1))
        var x: Float = 0
        for _ in 0...j { x = rng.uniform(-1, 1) }
        return Double(x)
    }

    /// The shard's mean gradient: (1/n)·Σ_{e ∈ shard} values, in Double from −0 (so a −0 term stays −0),
    /// rounded once; the bias (1/n)·Σ_e (e + 1)·0.01.
    func lossAndGradient(_ model: Model, examples: [Int]) throws -> (loss: Double, gradient: Model, tokens: Int) {
        let n = Double(lossDenominator(examples: examples)!)
        var g = Model.zero
        var sums: [Int: [Double]] = [:]
        for e in examples {
            for r in Self.rows[e] {
                var s = sums[r] ?? [Double](repeating: -0.0, count: Model.width)
                for j in 0..<Model.width { s[j] += Self.value(example: e, row: r, j) }
                sums[r] = s
            }
        }
        for (r, s) in sums { for j in 0..<Model.width { g.table[r * Model.width + j] = Float(s[j] / n) } }
        for j in 0..<Model.width { g.bias[j] = Float(examples.reduce(0.0) { $0 + Double($1 + 1) * 0.01 } / n) }
        if listsRows { g.listed = sums.keys.sorted() }
        return (Double(examples.count) / n, g, examples.count)
    }

    func validate(_ model: Model) throws -> Validation? { nil }
}

/// Gradients that list their nonzero rows (`ParameterContainer.rowSupports`; the word embeddings of
/// a NER batch): the combination, the norm and AdamW skip the other rows. Checked against the same
/// passes without the list (bitwise: the skipped values are +0), against independent values (the
/// combination in Double, Σ g² in Double) and by the invariant that a row not listed is +0 in the
/// full gradient.
@Suite("Row lists of gradients: combination, norm and AdamW bitwise the dense passes; the NER step's list against its batch")
struct RowSupportSpecs {
    static func bits(_ m: RowListTask.Model) -> [UInt32] { (m.table + m.bias).map(\.bitPattern) }

    @Test("Combination, norm and AdamW with row lists = without them, bit for bit (1, 2, 3 threads); the combination vs Double", arguments: [1, 2, 3])
    func bitwiseDense(threads: Int) throws {
        let examples = Array(0..<6)
        let sparse = try DataParallel.step(RowListTask(listsRows: true), model: .zero, examples: examples, threads: threads)
        let dense = try DataParallel.step(RowListTask(listsRows: false), model: .zero, examples: examples, threads: threads)
        #expect(dense.gradient.listed == nil)
        #expect(sparse.loss.bitPattern == dense.loss.bitPattern)
        #expect(Self.bits(sparse.gradient) == Self.bits(dense.gradient), "\(threads) threads: combined gradient differs from the dense combination")
        #expect(sparse.squaredNorm?.bitPattern == dense.squaredNorm?.bitPattern, "\(threads) threads: Σ g² differs")
        // The list is the union of the examples' rows, and every other row is +0 (the invariant).
        let union = Array(Set(RowListTask.rows.joined())).sorted()
        #expect(sparse.gradient.listed == union)
        let w = RowListTask.Model.width
        for r in 0..<RowListTask.Model.rows where !union.contains(r) {
            #expect(sparse.gradient.table[(r * w)..<((r + 1) * w)].allSatisfy { $0.bitPattern == 0 }, "row \(r) is not listed but not +0")
        }
        // Independent: Σ_k (n_k/N)·g_k = (1/N)·Σ_e values, in Double. Each shard's mean is rounded once
        // (|δ| ≤ u·|g_k|), then the combination once: |g̃ − g| ≤ u·|g| + (u + 2⁻⁴⁰)·(1/N)·Σ_e |values|
        // (docs/training.md's bound for the combination; u = 2⁻²⁴).
        let total = Double(RowListTask.denominators.reduce(0, +))
        for r in union {
            for j in 0..<w {
                let terms = examples.filter { RowListTask.rows[$0].contains(r) }.map { RowListTask.value(example: $0, row: r, j) }
                let exact = terms.reduce(0, +) / total, scale = terms.reduce(0) { $0 + abs($1) } / total
                let got = Double(sparse.gradient.table[r * w + j])
                #expect(abs(got - exact) <= 0x1p-24 * abs(exact) + (0x1p-24 + 0x1p-40) * scale, "row \(r), j \(j): \(got) vs \(exact)")
            }
        }
        // The norm: with and without the list bitwise; against Σ g² in Double (relative 65u, the 16-lane bound).
        var stripped = sparse.gradient
        stripped.listed = nil
        let norm = GradientClipping.globalNorm(sparse.gradient, threads: threads)
        #expect(norm.bitPattern == GradientClipping.globalNorm(stripped, threads: threads).bitPattern)
        let exactSquares = (sparse.gradient.table + sparse.gradient.bias).reduce(0.0) { $0 + Double($1) * Double($1) }
        #expect(abs(norm * norm - exactSquares) <= 65 * 0x1p-24 * exactSquares)
        // AdamW, optimized, reading g in the listed rows only vs the naive update reading every g: θ, m, v
        // bitwise over 3 steps from a state with −0 in m (β₁·(−0) + (1 − β₁)·(+0) = +0: the unread g must
        // enter the same sum), decay on the table, a clip factor ≠ 1.
        var rng = SeededRNG(seed: 5)
        let n = RowListTask.Model.rows * w
        let theta = RowListTask.Model(table: (0..<n).map { _ in rng.uniform(-1, 1) }, bias: (0..<w).map { _ in rng.uniform(-1, 1) })
        let m0: [[Float]] = [(0..<n).map { $0 % 5 == 0 ? -0.0 : rng.uniform(-0.1, 0.1) }, (0..<w).map { _ in rng.uniform(-0.1, 0.1) }]
        let v0: [[Float]] = [(0..<n).map { _ in rng.uniform(0, 0.01) }, (0..<w).map { _ in rng.uniform(0, 0.01) }]
        var results: [(RowListTask.Model, AdamW)] = []
        for (path, g) in [(KernelPath.optimized, sparse.gradient), (.naive, stripped)] {
            var model = theta
            var opt = try AdamW(weightDecay: 0.1)
            opt.restore(step: 4, m: m0, v: v0)
            for t in 0..<3 { opt.update(&model, gradient: g, learningRate: 1e-2 * Double(t + 1), threads: threads, path: path, gradientScale: 0.75) }
            results.append((model, opt))
        }
        #expect(Self.bits(results[0].0) == Self.bits(results[1].0), "\(threads) threads: θ differs")
        #expect(results[0].1.m.joined().map(\.bitPattern) == results[1].1.m.joined().map(\.bitPattern), "\(threads) threads: m differs")
        #expect(results[0].1.v.joined().map(\.bitPattern) == results[1].1.v.joined().map(\.bitPattern), "\(threads) threads: v differs")
        // Rows without gradient still move (the dense AdamW, as torch's): there m ← β₁m and v ← β₂v
        // change every nonzero moment, and θ decays where m is +0.
        let (m3, v3, theta3) = (results[0].1.m[0], results[0].1.v[0], results[0].0.table)
        for r in 0..<RowListTask.Model.rows where !union.contains(r) {
            for i in (r * w)..<((r + 1) * w) {
                #expect(m0[0][i] == 0 || m3[i] != m0[0][i], "m[\(i)] did not change")
                #expect(v0[0][i] == 0 || v3[i] != v0[0][i], "v[\(i)] did not change")
                #expect(m0[0][i] != 0 || theta3[i] != theta.table[i], "θ[\(i)] did not decay")
            }
        }
    }

    @Test("The NER step lists its batch's distinct ids; every other word-embedding row is +0; none with a frozen encoder")
    func nerList() throws {
        let (model, examples) = try TinyNER.setup(sentences: 12)
        let vocabulary = model.encoder.wordEmbedding.weight.rows, width = model.encoder.wordEmbedding.weight.cols
        for (batch, frozen) in [([0, 3, 5], false), ([1, 2, 4, 7, 11], false), ([6, 8], true)] {
            var task = try TinyNER.task(examples)
            task.freezeEncoder = frozen
            let g = try task.lossAndGradient(model, examples: batch).gradient
            // Independent: the ids of the examples, not the packed batch.
            let ids = frozen ? [] : Array(Set(batch.flatMap { examples[$0].ids })).sorted()
            #expect(g.wordEmbeddingGradientRows == ids)
            #expect(g.rowSupports[0] == ids)
            #expect(ids.count < vocabulary, "the batch must leave rows untouched for the check to mean anything")
            let table = g.encoder.wordEmbedding.weight.storage
            for r in 0..<vocabulary where !ids.contains(r) {
                #expect(table[(r * width)..<((r + 1) * width)].allSatisfy { $0.bitPattern == 0 }, "row \(r) not listed but not +0")
            }
            if !frozen { #expect(ids.allSatisfy { r in table[(r * width)..<((r + 1) * width)].contains { $0 != 0 } }, "a listed row with no gradient") }
            // The first tensor of the visiting order is the word-embedding table the list is about.
            var copy = g
            var first: [Float]? = nil
            copy.visitParameters(prefix: "") { _, _, v in if first == nil { first = v } }
            #expect(first == table)
        }
        // A fresh accumulator lists nothing (dense), even from a gradient that did.
        var listed = model
        listed.wordEmbeddingGradientRows = [1]
        #expect(listed.zeroGradient().wordEmbeddingGradientRows == nil)
    }

    @Test("The NER step on 2 threads with the list = without it, bit for bit: loss, gradient, Σ g², and 3 AdamW steps")
    func nerBitwise() throws {
        let (model, examples) = try TinyNER.setup(sentences: 12)
        let task = try TinyNER.task(examples)
        let batch = Array(0..<12)
        for threads in [1, 2] {
            let listed = try DataParallel.step(task, model: model, examples: batch, threads: threads)
            let dense = try DataParallel.step(StrippedTask(inner: task), model: model, examples: batch, threads: threads)
            #expect(dense.gradient.wordEmbeddingGradientRows == nil && listed.gradient.wordEmbeddingGradientRows != nil)
            #expect(listed.loss.bitPattern == dense.loss.bitPattern)
            #expect(listed.gradient.flattenedParameters().map(\.bitPattern) == dense.gradient.flattenedParameters().map(\.bitPattern))
            #expect(listed.squaredNorm?.bitPattern == dense.squaredNorm?.bitPattern)
            #expect(GradientClipping.globalNorm(listed.gradient).bitPattern == GradientClipping.globalNorm(dense.gradient).bitPattern)
            var (a, b) = (model, model)
            var (oa, ob) = (try AdamW(), try AdamW())
            for _ in 0..<3 {
                oa.update(&a, gradient: listed.gradient, learningRate: 1e-3, threads: threads)
                ob.update(&b, gradient: dense.gradient, learningRate: 1e-3, threads: threads)
            }
            #expect(a.flattenedParameters().map(\.bitPattern) == b.flattenedParameters().map(\.bitPattern))
        }
    }
}

/// A task whose gradients list no rows: the dense twin of `inner`.
struct StrippedTask: TrainingTask {
    var inner: NERTask
    var exampleCount: Int { inner.exampleCount }
    func length(of example: Int) -> Int { inner.length(of: example) }
    func lossDenominator(examples: [Int]) -> Int? { inner.lossDenominator(examples: examples) }
    func lossAndGradient(_ model: TokenClassifier, examples: [Int]) throws -> (loss: Double, gradient: TokenClassifier, tokens: Int) {
        var r = try inner.lossAndGradient(model, examples: examples)
        r.gradient.wordEmbeddingGradientRows = nil
        return r
    }
    func validate(_ model: TokenClassifier) throws -> Validation? { nil }
}
