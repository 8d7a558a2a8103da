// A decoder-only language model trained from scratch on real English text: the data pipeline
// (one Bible version, split by book, chapters as documents, byte-level BPE trained on the training
// split), the task `Trainer.train` runs, perplexity, the unigram and bigram baselines it must beat,
// and text generation from a prompt. See docs/language-model.md.
import Decoding
import Foundation
import IO
import Kernels
import Models
import TensorCore
import Tokenizers
import Training

/// One Bible version as a language-modelling corpus. Documents are chapters (their verses joined by
/// a space), so a training window never spans two chapters; the split is by book — the held-out
/// books of the translation task (`TranslationSplit`) — so no validation or test text is trained on.
public struct LanguageModelData: Sendable {
    /// Byte-level BPE trained on the training chapters only: 256 byte symbols + `merges` merges.
    public var tokenizer: BPETokenizer
    /// Encoded chapters of each split.
    public var train: [[Int]]
    public var valid: [[Int]]
    public var test: [[Int]]

    public static func prepare(verses: [ParallelVerse], merges: Int,
                               validBooks: Set<Int> = TranslationSplit.validBooks, testBooks: Set<Int> = TranslationSplit.testBooks) throws -> LanguageModelData {
        let (train, valid, test) = try BibleCorpus.split(verses, validBooks: validBooks, testBooks: testBooks)
        guard !train.isEmpty, !valid.isEmpty, !test.isEmpty else { throw DecoderSpecError.emptySequence(what: "training, validation or test split") }
        let trainChapters = chapters(train)
        let tokenizer = try BPETrainer.train(corpus: trainChapters, merges: merges)
        return LanguageModelData(tokenizer: tokenizer, train: tokenizer.encode(trainChapters),
                                 valid: tokenizer.encode(chapters(valid)), test: tokenizer.encode(chapters(test)))
    }

    /// Each (book, chapter)'s verses joined by a space, in order.
    public static func chapters(_ verses: [ParallelVerse]) -> [String] {
        var out: [String] = [], current: (book: Int, chapter: Int)? = nil
        for v in verses {
            if let c = current, c == (v.book, v.chapter) { out[out.count - 1] += " " + v.source } else { out.append(v.source) }
            current = (v.book, v.chapter)
        }
        return out
    }

    /// Windows of at most `context` + 1 tokens cut from each document at multiples of `context`:
    /// window k holds tokens k·context … (k+1)·context, so consecutive windows share one token and
    /// every token of a document but its first is a label exactly once. Windows of one token (nothing
    /// to predict) are dropped.
    public static func windows(_ documents: [[Int]], context: Int) throws -> [[Int]] {
        try Validate.positive(context, "context")
        return documents.flatMap { doc in
            stride(from: 0, to: max(doc.count - 1, 0), by: context).map { Array(doc[$0..<min($0 + context + 1, doc.count)]) }
        }
    }
}

/// Causal-LM training as a `TrainingTask`: next-token cross-entropy over packed windows; validation
/// is the mean cross-entropy per predicted token on held-out windows (lower is better).
public struct LanguageModelTask: TrainingTask {
    public typealias Model = DecoderOnlyModel
    public var windows: [[Int]]
    public var validation: [[Int]]
    public var path: KernelPath
    /// Token budget per evaluation batch.
    public var evaluationBatchTokens = 8192

    public init(windows: [[Int]], validation: [[Int]] = [], path: KernelPath = .optimized) {
        (self.windows, self.validation, self.path) = (windows, validation, path)
    }

    public var exampleCount: Int { windows.count }
    /// The rows a window takes: its inputs (all tokens but the last).
    public func length(of example: Int) -> Int { windows[example].count - 1 }

    public func lossAndGradient(_ model: DecoderOnlyModel, examples: [Int]) throws -> (loss: Double, gradient: DecoderOnlyModel, tokens: Int) {
        let batch = try CausalLMBatch(sequences: examples.map { windows[$0] })
        let r = try model.lossAndGradient(batch, loss: CrossEntropyLoss(), path: path, wantGradient: true)
        return (r.loss, r.gradient!, r.labelled)
    }

    public func validate(_ model: DecoderOnlyModel) throws -> Validation? {
        guard !validation.isEmpty else { return nil }
        let (loss, tokens) = try Self.meanLoss(model, windows: validation, path: path, batchTokens: evaluationBatchTokens)
        return Validation(metric: "valid loss", value: loss, higherIsBetter: false,
                          detail: String(format: "perplexity %.2f, %d tokens", exp(loss), tokens))
    }

    /// Mean cross-entropy (nats per predicted token) over every label of `windows`, in batches of at
    /// most `batchTokens` rows; perplexity = exp(mean).
    public static func meanLoss(_ model: DecoderOnlyModel, windows: [[Int]], path: KernelPath, batchTokens: Int = 8192) throws -> (loss: Double, tokens: Int) {
        guard !windows.isEmpty else { throw DecoderSpecError.emptySequence(what: "evaluation windows") }
        let plain = try CrossEntropyLoss()
        var total = 0.0, labelled = 0, start = 0
        while start < windows.count {
            var end = start + 1, rows = windows[start].count - 1
            while end < windows.count && rows + windows[end].count - 1 <= batchTokens {
                rows += windows[end].count - 1
                end += 1
            }
            let r = try model.lossAndGradient(CausalLMBatch(sequences: Array(windows[start..<end])), loss: plain, path: path, wantGradient: false)
            total += r.loss * Double(r.labelled)
            labelled += r.labelled
            start = end
        }
        return (total / Double(labelled), labelled)
    }
}

/// The count-based baselines a language model must beat, counted once from the training tokens and
/// scored on exactly the tokens the model is scored on: every label of the evaluation windows (each
/// window's tokens after its first).
public struct NGramBaseline: Sendable {
    /// Add-one unigram: P(w) = (c(w) + 1) / (N + V).
    let unigram: [Double]
    /// c(v, w) and c(v) = Σ_w c(v, w) over adjacent pairs within each training document.
    let pairs: [Int: [Int: Int]]
    let context: [Int]

    public init(train: [[Int]], vocabularySize: Int) {
        var counts = [Int](repeating: 0, count: vocabularySize), n = 0
        var pairs: [Int: [Int: Int]] = [:], context = [Int](repeating: 0, count: vocabularySize)
        for doc in train {
            for w in doc { counts[w] += 1; n += 1 }
            for (v, w) in zip(doc, doc.dropFirst()) { pairs[v, default: [:]][w, default: 0] += 1; context[v] += 1 }
        }
        unigram = counts.map { Double($0 + 1) / Double(n + vocabularySize) }
        (self.pairs, self.context) = (pairs, context)
    }

    /// Perplexity of the add-one unigram.
    public func unigramPerplexity(_ windows: [[Int]]) -> Double {
        Self.perplexity(windows) { _, w in unigram[w] }
    }

    /// Perplexity of the interpolated bigram P(w | v) = λ·c(v, w)/c(v) + (1 − λ)·P_unigram(w) (the
    /// unigram term alone when v never precedes a token in training).
    public func bigramPerplexity(_ windows: [[Int]], lambda: Double) -> Double {
        Self.perplexity(windows) { v, w in
            guard context[v] > 0 else { return unigram[w] }
            return lambda * Double(pairs[v]?[w] ?? 0) / Double(context[v]) + (1 - lambda) * unigram[w]
        }
    }

    /// The λ of {0.1, 0.2, …, 0.9} with the lowest bigram perplexity on `validation`.
    public func tunedLambda(validation: [[Int]]) -> Double {
        (1...9).map { Double($0) / 10 }.min { bigramPerplexity(validation, lambda: $0) < bigramPerplexity(validation, lambda: $1) }!
    }

    /// exp(−mean log P(label | previous token)) over every label of `windows`.
    static func perplexity(_ windows: [[Int]], _ probability: (Int, Int) -> Double) -> Double {
        var sum = 0.0, count = 0
        for w in windows where w.count > 1 {
            for (previous, label) in zip(w, w.dropFirst()) { sum -= log(probability(previous, label)); count += 1 }
        }
        return exp(sum / Double(count))
    }
}

/// A trained language model: the decoder and its tokenizer. Saved as a Hugging Face GPT-2 directory
/// (`config.json`, `model.safetensors`, `vocab.json`, `merges.txt`).
public struct LanguageModel: Sendable {
    public var model: DecoderOnlyModel
    public var tokenizer: BPETokenizer

    public init(model: DecoderOnlyModel, tokenizer: BPETokenizer) throws {
        guard tokenizer.tokens.count == model.vocabularySize else {
            throw DecoderSpecError.shapeMismatch(operation: "language model tokenizer", expected: "\(model.vocabularySize) tokens (the embedding rows)",
                                                 actual: "\(tokenizer.tokens.count)")
        }
        (self.model, self.tokenizer) = (model, tokenizer)
    }

    /// Writes config.json, model.safetensors, vocab.json and merges.txt as one `AtomicFile.group`:
    /// a failed write (the disk full) leaves a previous directory as it was.
    public func save(to directory: URL) throws {
        try AtomicFile.group(directory: directory) {
            try model.save(directory: directory)
            try tokenizer.write(to: directory)
        }
    }

    /// Loads a directory `save` wrote (or a Hugging Face GPT-2 directory): the model
    /// (`DecoderOnlyModel.load`), then vocab.json and merges.txt (`BPETokenizer.load`), then
    /// `checkTrainedVocabulary`.
    /// - Throws: the loaders' errors; `.malformedFile` naming merges.txt when a vocabulary in the
    ///   trainer's layout holds a token no merge produces; `.shapeMismatch` when the vocabulary is
    ///   not one token per embedding row.
    public static func load(directory: URL, path: KernelPath = .optimized) throws -> LanguageModel {
        let model = try DecoderOnlyModel.load(directory: directory, path: path)
        let tokenizer = try BPETokenizer.load(directory: directory)
        try checkTrainedVocabulary(tokenizer, directory: directory)
        return try LanguageModel(model: model, tokenizer: tokenizer)
    }

    /// The vocabulary of a directory `train lm` wrote is exactly what `BPETrainer.train` (no special
    /// tokens) builds: the 256 byte-level symbols at ids 0…255 in byte order, then one token a + b per
    /// merge (a result two merges share is listed once), so every token past the byte symbols is
    /// produced by some merge of merges.txt. A merges.txt cut short (or taken from a run with fewer
    /// merges) is still a valid BPE — `BPETokenizer.init` only requires every merge's parts and result
    /// to be in the vocabulary — but the tokens of the missing merges can never be produced: the
    /// text is tokenized differently from training, without an error. So a vocabulary in that layout
    /// must have no unreachable token.
    ///
    /// Other layouts keep the looser rule of Hugging Face's tokenizers, which accept vocabulary
    /// entries no merge produces: GPT-2's vocab.json lists the byte symbols in `bytes_to_unicode`'s
    /// order ("!" is id 0, where the trainer puts byte 0x00's "Ā") and holds `<|endoftext|>`, which no
    /// merge produces (50,257 tokens = 256 + 50,000 merges + 1); added and special tokens are such
    /// entries in general, and the file does not say which they are.
    /// - Throws: `.malformedFile` naming merges.txt, the first unreachable token and its id, and the
    ///   counts (merges, tokens, unreachable tokens).
    public static func checkTrainedVocabulary(_ tokenizer: BPETokenizer, directory: URL) throws {
        let tokens = tokenizer.tokens
        guard tokens.count >= 256,
              (0..<256).allSatisfy({ tokens[$0].unicodeScalars.elementsEqual(CollectionOfOne(ByteLevel.byteToScalar[$0])) }) else { return }
        // String equality suffices: `BPETokenizer.init` requires each merge's result in the
        // vocabulary with its exact scalars, and vocabulary tokens are distinct as Strings.
        let produced = Set(tokenizer.merges.map { $0.0 + $0.1 })
        let unreachable = (256..<tokens.count).filter { !produced.contains(tokens[$0]) }
        guard let first = unreachable.first else { return }
        throw DecoderSpecError.malformedFile(
            path: directory.appendingPathComponent("merges.txt").path, location: "vocab.json id \(first)",
            reason: "vocab.json's token \(tokens[first].debugDescription) (id \(first)) is produced by no merge: merges.txt has \(tokenizer.merges.count) merges, vocab.json \(tokens.count) tokens = 256 byte symbols + \(tokens.count - 256), \(unreachable.count) of them unreachable. A language-model directory (vocab.json in the trainer's layout: the byte symbols in byte order first) holds one token per merge: is merges.txt cut short, or from another run?")
    }

    /// The prompt's tokens followed by up to `maxNewTokens` generated ones, decoded to text. The
    /// prompt keeps its last `contextLength` − `maxNewTokens` tokens when it is longer.
    public func generate(_ prompt: String, maxNewTokens: Int, strategy: DecodingStrategy = .greedy) throws -> String {
        try Validate.positive(maxNewTokens, "maxNewTokens")
        guard maxNewTokens < model.contextLength else {
            throw DecoderSpecError.invalidArgument(what: "maxNewTokens = \(maxNewTokens)", reason: "must be below the context length \(model.contextLength)")
        }
        let ids = tokenizer.encode(prompt).suffix(model.contextLength - maxNewTokens)
        guard !ids.isEmpty else { throw DecoderSpecError.emptySequence(what: "prompt") }
        let g = try Generator.generate(model, prompt: Array(ids), strategy: strategy, config: GenerationConfig(maxNewTokens: maxNewTokens))
        return try tokenizer.decode(Array(ids) + g.tokens)
    }
}

/// One `decoder-spec train lm` run as a record (`--report FILE`, one JSON object per line): what the
/// positional-encoding study (scripts/pe-study → docs/runs/pe-study.jsonl,
/// docs/positional-encoding-study.md) tabulates and draws.
public struct LanguageModelReport: Codable, Sendable, Equatable {
    /// Test perplexity with windows of `context` tokens, over `tokens` predicted tokens.
    public struct Evaluation: Codable, Sendable, Equatable {
        public var context: Int
        public var perplexity: Double
        public var tokens: Int
        public init(context: Int, perplexity: Double, tokens: Int) { (self.context, self.perplexity, self.tokens) = (context, perplexity, tokens) }
    }
    public var positionEncoding: PositionEncodingScheme
    public var seed: UInt64
    public var parameters: Int
    public var trainingContext: Int
    public var steps: Int
    /// Tokens the model was trained on (predicted labels), and the training wall time.
    public var tokens: Int
    public var minutes: Double
    /// At the training context first, then at each longer one (none for learned positions).
    public var test: [Evaluation]
    public var unigramPerplexity: Double
    public var bigramPerplexity: Double

    public init(positionEncoding: PositionEncodingScheme, seed: UInt64, parameters: Int, trainingContext: Int, steps: Int, tokens: Int,
                minutes: Double, test: [Evaluation], unigramPerplexity: Double, bigramPerplexity: Double) {
        (self.positionEncoding, self.seed, self.parameters, self.trainingContext, self.steps, self.tokens, self.minutes) =
            (positionEncoding, seed, parameters, trainingContext, steps, tokens, minutes)
        (self.test, self.unigramPerplexity, self.bigramPerplexity) = (test, unigramPerplexity, bigramPerplexity)
    }

    /// Reports from JSON Lines (blank lines skipped).
    /// - Throws: `.malformedFile` naming the line of a record that does not decode.
    public static func read(jsonLines text: String, path: String) throws -> [LanguageModelReport] {
        var reports: [LanguageModelReport] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            do {
                reports.append(try JSONDecoder().decode(LanguageModelReport.self, from: Data(line.utf8)))
            } catch let error as DecodingError {
                throw DecoderSpecError.malformedFile(path: path, location: "line \(i + 1), " + JSONDecoding.location(error), reason: JSONDecoding.reason(error))
            }
        }
        return reports
    }

    /// One line of JSON (sorted keys), no newline.
    public func jsonLine() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}
