// Named-entity recognition as token classification on a BERT-style encoder.
// See docs/finetune-ner.md.
//
// WordPiece alignment: a CoNLL word may become several sub-tokens ("Ljubljana" → "l ##ju ##bl
// ##jana"). The word's tag is the target of its FIRST sub-token; the other sub-tokens and
// [CLS]/[SEP] get the ignore index, so the loss counts each word once. At prediction time a word
// takes the tag predicted at its first sub-token.
import Foundation
import IO
import Kernels
import Metrics
import Models
import TensorCore
import Tokenizers
import Training

/// One sentence ready for training: sub-token ids with [CLS]/[SEP], one target per sub-token.
public struct NERExample: Sendable, Equatable {
    public var words: [String]
    /// Gold tags in IOB2.
    public var gold: [String]
    public var ids: [Int]
    /// Label index at each word's first sub-token, `CrossEntropyLoss.defaultIgnoreIndex` elsewhere.
    public var targets: [Int]
    /// For each word, the row of its first sub-token in `ids` (nil when truncated away).
    public var firstPiece: [Int?]
}

public enum NER {
    /// The label set of IOB2 sentences: "O", then B-X, I-X for each type X in sorted order.
    public static func labels(_ sentences: [[String]]) -> [String] {
        let types = Set(sentences.joined().compactMap { t -> String? in
            guard let (p, type) = NERTags.split(t), p != "O" else { return nil }
            return String(type)
        }).sorted()
        return ["O"] + types.flatMap { ["B-\($0)", "I-\($0)"] }
    }

    /// Aligns words to sub-tokens (first sub-token labelled, the rest ignored). Tags are converted
    /// to IOB2 first (CoNLL-2003 files may be IOB1). Sentences longer than `maxLength` sub-tokens
    /// are truncated: the cut words get no target and are predicted `O` (counted in the scores).
    /// - Throws: `.invalidArgument` for a tag outside `labels` or a malformed tag (naming it), a
    ///   repeated label, or maxLength < 3 ([CLS], one sub-token, [SEP]); `.shapeMismatch` when a
    ///   sentence has more or fewer tags than words.
    public static func examples(_ sentences: [(words: [String], tags: [String])], tokenizer: WordPieceTokenizer,
                                labels: [String], maxLength: Int) throws -> [NERExample] {
        guard maxLength >= 3 else {
            throw DecoderSpecError.invalidArgument(what: "maxLength \(maxLength)", reason: "must be ≥ 3 ([CLS], one sub-token, [SEP])")
        }
        var index: [String: Int] = [:]
        for (i, label) in labels.enumerated() {
            guard index.updateValue(i, forKey: label) == nil else {
                throw DecoderSpecError.invalidArgument(what: "label set \(labels)", reason: "\"\(label)\" appears twice")
            }
        }
        let ignore = CrossEntropyLoss.defaultIgnoreIndex
        return try sentences.enumerated().compactMap { (s, sentence) -> NERExample? in
            guard sentence.words.count == sentence.tags.count else {
                throw DecoderSpecError.shapeMismatch(operation: "NER.examples sentence \(s)", expected: "one tag per word (\(sentence.words.count) words)",
                                                     actual: "\(sentence.tags.count) tags")
            }
            guard !sentence.words.isEmpty else { return nil }
            let gold = try NERTags.convert(sentence.tags, to: .iob2)
            var (ids, wordIndex) = tokenizer.encode(words: sentence.words)
            if ids.count > maxLength {
                ids = Array(ids[..<(maxLength - 1)]) + [tokenizer.sepID]
                wordIndex = Array(wordIndex[..<(maxLength - 1)]) + [nil]
            }
            var targets = [Int](repeating: ignore, count: ids.count)
            var first = [Int?](repeating: nil, count: sentence.words.count)
            for (row, w) in wordIndex.enumerated() {
                guard let w, first[w] == nil else { continue }
                first[w] = row
                guard let label = index[gold[w]] else {
                    throw DecoderSpecError.invalidArgument(what: "tag \"\(gold[w])\" of word \(w) in sentence \(s)", reason: "not in the label set \(labels)")
                }
                targets[row] = label
            }
            return NERExample(words: sentence.words, gold: gold, ids: ids, targets: targets, firstPiece: first)
        }
    }

    /// Predicted IOB2 tags per sentence: argmax of the logits at each word's first sub-token (with a
    /// CRF, Viterbi over those logits). The sentences are packed `batchSize` at a time; with `threads`
    /// > 1 the batches are computed concurrently (`DataParallel.map`), each on `path`'s kernels, and the
    /// result is the one-thread result, bit for bit (each batch's logits depend on that batch alone).
    public static func predict(_ model: TokenClassifier, _ examples: [NERExample], path: KernelPath, batchSize: Int = 32,
                               threads: Int = 1) throws -> [[String]] {
        let starts = Array(stride(from: 0, to: examples.count, by: batchSize))
        let batches = try DataParallel.map(starts.count, threads: threads) { b in
            try predict(model, examples[starts[b]..<min(examples.count, starts[b] + batchSize)], path: path)
        }
        return batches.flatMap { $0 }
    }

    /// One packed batch's predicted tags.
    private static func predict(_ model: TokenClassifier, _ chunk: ArraySlice<NERExample>, path: KernelPath) throws -> [[String]] {
        let z = try model.logits(try PackedBatch(chunk.map(\.ids)), path: path)
        var out: [[String]] = []
        var offset = 0
        for ex in chunk {
            defer { offset += ex.ids.count }
            guard let crf = model.crf else {
                out.append(ex.firstPiece.map { row -> String in
                    guard let row else { return "O" }
                    var best = 0
                    for c in 1..<z.cols where z[offset + row, c] > z[offset + row, best] { best = c }
                    return model.labels[best]
                })
                continue
            }
            // Viterbi over the words' first sub-tokens; truncated words are O.
            let rows = ex.firstPiece.compactMap { $0 }
            var tags = [String](repeating: "O", count: ex.words.count)
            if !rows.isEmpty {
                var emissions = Matrix(rows: rows.count, cols: z.cols)
                for (i, r) in rows.enumerated() { for c in 0..<z.cols { emissions[i, c] = z[offset + r, c] } }
                let path = try crf.viterbi(emissions)
                var k = 0
                for (w, row) in ex.firstPiece.enumerated() where row != nil { tags[w] = model.labels[path[k]]; k += 1 }
            }
            out.append(tags)
        }
        return out
    }

    /// Entity-level P/R/F1 (conlleval semantics) and, separately, token accuracy.
    public static func evaluate(_ model: TokenClassifier, _ examples: [NERExample], path: KernelPath,
                                threads: Int = 1) throws -> (report: NERReport, predicted: [[String]]) {
        let predicted = try predict(model, examples, path: path, threads: threads)
        return (try Conlleval.evaluate(gold: examples.map(\.gold), predicted: predicted), predicted)
    }
}

/// Fine-tuning a `TokenClassifier` on NER examples, for `Trainer.train`.
public struct NERTask: TrainingTask {
    public typealias Model = TokenClassifier
    public var examples: [NERExample]
    public var evaluation: [NERExample]
    public var loss: CrossEntropyLoss
    public var path: KernelPath
    public var freezeEncoder: Bool
    /// Threads for `validate`'s batches (`NER.predict`); the training step's are `TrainingOptions.threads`.
    public var evaluationThreads: Int

    public init(examples: [NERExample], evaluation: [NERExample] = [], loss: CrossEntropyLoss, path: KernelPath, freezeEncoder: Bool = false,
                evaluationThreads: Int = 1) {
        (self.examples, self.evaluation, self.loss, self.path, self.freezeEncoder) = (examples, evaluation, loss, path, freezeEncoder)
        self.evaluationThreads = evaluationThreads
    }

    public var exampleCount: Int { examples.count }
    public func length(of example: Int) -> Int { examples[example].ids.count }

    public func lossAndGradient(_ model: TokenClassifier, examples indices: [Int]) throws -> (loss: Double, gradient: TokenClassifier, tokens: Int) {
        let chosen = indices.map { examples[$0] }
        let batch = try PackedBatch(chosen.map(\.ids))
        let r = try model.lossAndGradient(batch, targets: chosen.flatMap(\.targets), loss: loss, freezeEncoder: freezeEncoder, path: path)
        return (r.loss, r.gradient, batch.tokenCount)
    }

    /// Entity F1 on the evaluation set (higher is better); nil when there is none.
    public func validate(_ model: TokenClassifier) throws -> Validation? {
        guard !evaluation.isEmpty else { return nil }
        let (report, _) = try NER.evaluate(model, evaluation, path: path, threads: evaluationThreads)
        return Validation(metric: "valid entity F1", value: report.f1, higherIsBetter: true,
                          detail: String(format: "P %.4f R %.4f, token accuracy %.4f", report.precision, report.recall, report.tokenAccuracy))
    }
}

extension TokenClassifier {
    /// Writes the fine-tuned weights as one safetensors file (`bert.*` in Hugging Face BERT names,
    /// `classifier.weight` [n_labels, d], `classifier.bias`), labels in the metadata, atomically.
    public func save(to url: URL) throws {
        var tensors: [(name: String, shape: [Int], values: [Float])] = []
        var copy = self
        copy.visitParameters(prefix: "") { n, s, v in tensors.append((n, s, v)) }
        try SafeTensorsFile.write(tensors, metadata: ["labels": labels.joined(separator: " ")], to: url)
    }
}
