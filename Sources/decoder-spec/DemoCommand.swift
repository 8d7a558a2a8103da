import ArgumentParser
import DecoderSpec
import Foundation

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Walk the whole data flow on a small deterministic model (generate --model demo), with printed tables.")

    func run() throws {
        do {
            var demo = try Demo()
            demo.tokens()
            try demo.embedding()
            try demo.positionalEncoding()
            try demo.sumEmbeddingAndPositions()
            // The decoder stages run the demo model (NamedModel.demo) over the same vocabulary.
            try DecoderDemo.run(vocabulary: demo.vocabulary, prompt: Array(demo.ids.prefix(5)), stopToken: 2, firstStage: 5)
        }
    }
}

/// The demo's state, passed from stage to stage in the order of the data flow
/// (docs/architecture.md). Every section prints a heading, the formula, and a small table.
struct Demo {
    /// A toy vocabulary: id = index.
    static let words = ["<pad>", "<bos>", "<eos>", "the", "cat", "sat", "on", "mat", "a", "dog"]
    let vocabulary = Demo.words
    let text = "the cat sat on the mat"
    let dModel = 8
    let seed: UInt64 = 0

    var ids: [Int] = []
    var embeddingTable: EmbeddingTable
    var embedded = Matrix(rows: 0, cols: 0)       // E[X]·sqrt(d)   [T, d]
    var positions = Matrix(rows: 0, cols: 0)      // P              [T, d]
    var decoderInput = Matrix(rows: 0, cols: 0)   // X' = E[X]·sqrt(d) + P

    init() throws {
        embeddingTable = try EmbeddingTable.seeded(vocabularySize: vocabulary.count, dimension: dModel, seed: seed)
    }

    var rowLabels: [String] { ids.enumerated().map { "\($0.offset) \(vocabulary[$0.element])" } }

    static func heading(_ n: Int, _ title: String) {
        print("\n== \(n). \(title) " + String(repeating: "=", count: max(0, 60 - title.count)))
    }

    /// Stage 1: text → token ids (whitespace tokenizer over the toy vocabulary, with <bos>).
    mutating func tokens() {
        print("DecoderSpec demo: the decoder's data flow on a small seeded model (d_model = \(dModel), V = \(vocabulary.count), seed \(seed))")
        Demo.heading(1, "Tokens: text → ids [T]")
        ids = [1] + text.split(separator: " ").map { word in vocabulary.firstIndex(of: String(word))! }
        print("text:   \"\(text)\"")
        print("tokens: " + ids.map { vocabulary[$0] }.joined(separator: " "))
        print("ids:    \(ids)    (T = \(ids.count))")
    }

    /// Stage 2: ids → embedding rows E[X]·sqrt(d).
    mutating func embedding() throws {
        Demo.heading(2, "Embedding: E[X] · sqrt(d_model)   [T, d]")
        print("E is a [V, d] = [\(vocabulary.count), \(dModel)] table, entries N(0, 1/d); row t of E[X] is row x_t of E.")
        print("sqrt(d_model) = \(String(format: "%.4f", embeddingTable.scaleFactor)) brings each coordinate to variance ≈ 1, the scale of PE.")
        embedded = try embeddingTable.lookup(ids, scaled: true)
        print(Printing.table(embedded, rowLabels: rowLabels))
        print("(\"the\" appears at positions 1 and 5: the same row twice — the embedding alone does not know the order.)")
    }

    /// Stage 3: positions → PE rows.
    mutating func positionalEncoding() throws {
        Demo.heading(3, "Positional encoding: P   [T, d]")
        print("P[pos, 2i] = sin(pos / 10000^(2i/d)),  P[pos, 2i+1] = cos(pos / 10000^(2i/d))")
        let pe = try SinusoidalPositionalEncoding(dimension: dModel, contextLength: 512)
        positions = try pe.table(count: ids.count)
        let omega = PositionalTable.frequencies(dimension: dModel)
        print("frequencies ω_i = 10000^(−2i/d): " + omega.map { String(format: "%.6f", $0) }.joined(separator: "  "))
        print(Printing.table(positions, rowLabels: (0..<ids.count).map { "pos \($0)" }))
        print("Row 0 is [0, 1, 0, 1, …]; each pair (2i, 2i+1) turns by ω_i radians per position.")
    }

    /// Stage 4: X' = E[X] + P, the input of the first decoder block.
    mutating func sumEmbeddingAndPositions() throws {
        Demo.heading(4, "Decoder input: X' = E[X] · sqrt(d) + P   [T, d]")
        decoderInput = try addPositions(embedded, positions)
        print(Printing.table(decoderInput, rowLabels: rowLabels))
        let same = embedded.row(1) == embedded.row(5)
        let differ = decoderInput.row(1) != decoderInput.row(5)
        print("\"the\" at positions 1 and 5: E rows equal: \(same); X' rows differ: \(differ) — the order is now in the input.")
    }
}
