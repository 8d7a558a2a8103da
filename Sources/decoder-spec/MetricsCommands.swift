import ArgumentParser
import DecoderSpec
import Foundation

/// Reads a text file as lines ("\n"-separated, a trailing "\r" stripped, no line after a final
/// newline). Invalid UTF-8 is an error naming the line.
func readLines(_ path: String) throws -> [String] {
    guard FileManager.default.fileExists(atPath: path) else {
        throw DecoderSpecError.missingFile(path: path, hint: "Check the path.")
    }
    let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    var lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
    if lines.last?.isEmpty == true { lines.removeLast() }
    return try lines.enumerated().map { i, line in
        let trimmed = line.last == 0x0D ? line.dropLast() : line
        guard let s = String(validating: trimmed, as: UTF8.self) else {
            throw DecoderSpecError.malformedFile(path: path, location: "line \(i + 1)", reason: "invalid UTF-8")
        }
        return s
    }
}

struct BLEUCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bleu",
        abstract: "Corpus BLEU with sacreBLEU semantics (13a tokenization, exp smoothing, corpus brevity penalty); --chrf adds chrF.",
        discussion: "One sentence per line; --ref may be repeated for multiple references. See docs/metrics.md.")

    @Option(name: .long, help: "Hypothesis file, one sentence per line.")
    var hyp: String

    @Option(name: .long, help: "Reference file, one sentence per line (repeat for more references).")
    var ref: [String]

    @Flag(name: .long, help: "Lower-case hypotheses and references before scoring (case:lc).")
    var lowercase = false

    @Flag(name: .long, help: "Also print chrF (sacreBLEU defaults: character 6-grams, beta 2).")
    var chrf = false

    func run() throws {
        do {
            let hyps = try readLines(hyp)
            var refs: [[String]] = []
            for path in ref {
                let lines = try readLines(path)
                guard lines.count == hyps.count else {
                    throw DecoderSpecError.shapeMismatch(operation: "bleu", expected: "\(hyps.count) lines in \(path) (as in \(hyp))", actual: "\(lines.count) lines")
                }
                refs.append(lines)
            }
            let score = try BLEU.corpus(hypotheses: hyps, references: refs, lowercase: lowercase)
            print(score.formatted)
            print(score.signature)
            if chrf {
                let c = try ChrF.corpus(hypotheses: hyps, references: refs, lowercase: lowercase)
                print(c.formatted)
                print(c.signature)
            }
        }
    }
}

struct ConllevalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conlleval",
        abstract: "Entity-level precision/recall/F1 with conlleval semantics for a `token gold predicted` file.",
        discussion: "Prints conlleval.pl's report, then a per-type table with support and the token accuracy on its own labelled line. See docs/metrics.md.")

    @Argument(help: "Prediction file: columns token … gold predicted; blank lines between sentences.")
    var file: String

    func run() throws {
        do {
            let predictions = try CoNLLPredictions.read(contentsOf: URL(fileURLWithPath: file))
            let report = try Conlleval.evaluate(gold: predictions.sentences.map(\.gold), predicted: predictions.sentences.map(\.predicted))
            print(report.conllevalText, terminator: "")
            print()
            print(report.table, terminator: "")
        }
    }
}
