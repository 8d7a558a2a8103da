// Translation trained from scratch: the data pipeline (book split, length filter, BPE per side
// trained on the training split), the task `Trainer.train` runs (token-budget batches, validation
// loss), greedy and beam decoding, and BLEU beside a copy-source baseline. See docs/finetune-translation.md.
import Decoding
import Foundation
import IO
import Kernels
import Layers
import Metrics
import Models
import TensorCore
import Tokenizers
import Training

/// `<pad>`, `<bos>`, `<eos>` take ids 0, 1, 2 of both vocabularies.
public enum TranslationTokens {
    public static let special = ["<pad>", "<bos>", "<eos>"]
    public static let pad = 0, bos = 1, eos = 2
}

/// The documented split of the Bible corpus (book numbers 1 = Genesis … 66 = Revelation).
public enum TranslationSplit {
    /// Held out for test: Ruth (8), Jonah (32), 1 John (62) — narrative, prophecy and epistle.
    public static let testBooks: Set<Int> = [8, 32, 62]
    /// Held out for validation: Philemon (57) and Jude (65).
    public static let validBooks: Set<Int> = [57, 65]
}

/// A parallel corpus ready to train on: the split, one BPE per side (trained on `train` only)
/// and the pairs encoded (source + `<eos>`; target ids without specials).
public struct TranslationData: Sendable {
    public var train: [ParallelVerse]
    public var valid: [ParallelVerse]
    public var test: [ParallelVerse]
    public var sourceTokenizer: BPETokenizer
    public var targetTokenizer: BPETokenizer
    public var trainPairs: [(source: [Int], target: [Int])]
    /// The valid split encoded and filtered as `trainPairs` (the validation set of `TranslationTask`).
    public var validPairs: [(source: [Int], target: [Int])]

    /// - Parameters: `merges`: BPE merges per side (vocabulary = 3 specials + 256 bytes + merges);
    ///   `maxCharacters`: pairs with a longer side are dropped from every split; `maxTokens`:
    ///   training and validation pairs longer than this (either side, in subwords, with specials) are dropped.
    public static func prepare(verses: [ParallelVerse], merges: Int, maxCharacters: Int = 300, maxTokens: Int = 128,
                               validBooks: Set<Int> = TranslationSplit.validBooks, testBooks: Set<Int> = TranslationSplit.testBooks) throws -> TranslationData {
        let (train, valid, test) = try BibleCorpus.split(verses, validBooks: validBooks, testBooks: testBooks, maxCharacters: maxCharacters)
        guard !train.isEmpty, !test.isEmpty else { throw DecoderSpecError.emptySequence(what: "training or test split") }
        let src = try BPETrainer.train(corpus: train.map(\.source), merges: merges, specialTokens: TranslationTokens.special)
        let tgt = try BPETrainer.train(corpus: train.map(\.target), merges: merges, specialTokens: TranslationTokens.special)
        func encoded(_ verses: [ParallelVerse]) -> [(source: [Int], target: [Int])] {
            verses.compactMap { v in
                let s = src.encode(v.source) + [TranslationTokens.eos], t = tgt.encode(v.target)
                return s.count <= maxTokens && t.count + 1 <= maxTokens ? (s, t) : nil
            }
        }
        return TranslationData(train: train, valid: valid, test: test, sourceTokenizer: src, targetTokenizer: tgt,
                               trainPairs: encoded(train), validPairs: encoded(valid))
    }

    /// Copy-source baseline: the hypothesis is the source sentence itself.
    public static func copyBaseline(_ verses: [ParallelVerse]) throws -> BLEUScore {
        try BLEU.corpus(hypotheses: verses.map(\.source), references: [verses.map(\.target)])
    }
}

/// The Transformer's translation task (`Seq2SeqTask` over `EncoderDecoderModel`).
public typealias TranslationTask = Seq2SeqTask<EncoderDecoderModel>

/// Translation as a `TrainingTask` for `Trainer.train`, for any `Seq2SeqTrainable` model (the
/// Transformer: `TranslationTask`; the GRU baseline: `GRUTranslationTask`): teacher-forced,
/// label-smoothed cross-entropy on packed batches of (source, target) pairs; validation is the plain
/// (unsmoothed) cross-entropy per target token on held-out pairs, so lower is better.
public struct Seq2SeqTask<Model: Seq2SeqTrainable>: TrainingTask {
    /// Source ids end with `<eos>`; target ids carry no specials (see `Seq2SeqBatch`).
    public var pairs: [(source: [Int], target: [Int])]
    public var validation: [(source: [Int], target: [Int])]
    public var loss: CrossEntropyLoss
    public var path: KernelPath
    /// Token budget per validation batch (Σ length as `length(of:)` counts it).
    public var validationBatchTokens = 4000

    public init(pairs: [(source: [Int], target: [Int])], validation: [(source: [Int], target: [Int])] = [],
                loss: CrossEntropyLoss, path: KernelPath = .optimized) {
        (self.pairs, self.validation, self.loss, self.path) = (pairs, validation, loss, path)
    }

    public var exampleCount: Int { pairs.count }

    /// max(|source|, |target| + 1): the longer of the pair's encoder rows and decoder rows.
    public func length(of example: Int) -> Int { Self.length(pairs[example]) }
    static func length(_ pair: (source: [Int], target: [Int])) -> Int { max(pair.source.count, pair.target.count + 1) }

    public func lossAndGradient(_ model: Model, examples: [Int]) throws -> (loss: Double, gradient: Model, tokens: Int) {
        let batch = try Seq2SeqBatch(pairs: examples.map { pairs[$0] }, bos: TranslationTokens.bos, eos: TranslationTokens.eos)
        let r = try model.lossAndGradient(batch, loss: loss, path: path)
        return (r.loss, r.gradient, batch.sourceTokens + batch.targetTokens)
    }

    /// The decoder's labels (target + `<eos>` of each pair) not equal to the ignore index: what the
    /// label-smoothed cross-entropy of `lossAndGradient` divides by (data parallelism, `DataParallel`).
    public func lossDenominator(examples: [Int]) -> Int? {
        examples.reduce(0) { n, i in
            n + (pairs[i].target + [TranslationTokens.eos]).reduce(0) { $0 + ($1 != loss.ignoreIndex ? 1 : 0) }
        }
    }

    /// Mean cross-entropy (ε = 0) per target token over `validation`, in batches of ≤
    /// `validationBatchTokens`; nil when there is no validation set.
    public func validate(_ model: Model) throws -> Validation? {
        guard !validation.isEmpty else { return nil }
        let plain = try CrossEntropyLoss()
        var total = 0.0, labelled = 0, start = 0
        while start < validation.count {
            var end = start + 1, tokens = Self.length(validation[start])
            while end < validation.count && tokens + Self.length(validation[end]) <= validationBatchTokens {
                tokens += Self.length(validation[end])
                end += 1
            }
            let batch = try Seq2SeqBatch(pairs: Array(validation[start..<end]), bos: TranslationTokens.bos, eos: TranslationTokens.eos)
            let r = try model.lossAndGradient(batch, loss: plain, path: path, wantGradient: false)
            total += r.loss * Double(r.labelled)
            labelled += r.labelled
            start = end
        }
        let mean = total / Double(max(labelled, 1))
        return Validation(metric: "valid loss", value: mean, higherIsBetter: false,
                          detail: String(format: "perplexity %.2f, %d target tokens", exp(mean), labelled))
    }
}

/// A model that turns one source sentence into a decoder the generation loop can run: the
/// Transformer encoder-decoder (`EncoderDecoderModel`) and the recurrent baseline
/// (`GRUTranslationModel`). `contextLength` bounds source and output lengths.
public protocol SourceConditionedModel: Sendable {
    associatedtype Decoder: AutoregressiveModel
    var contextLength: Int { get }
    /// Runs the encoder once over `source` (ids ending with `<eos>`).
    func conditioned(on source: [Int]) throws -> Decoder
}

extension EncoderDecoderModel: SourceConditionedModel {
    public var contextLength: Int { config.contextLength }
}

extension GRUTranslationModel: SourceConditionedModel {
    public var contextLength: Int { config.contextLength }
}

/// A trained translator — a source-conditioned model and both tokenizers — and the one decoding
/// loop every architecture shares (`Generator.generate` from `<bos>` until `<eos>`).
public protocol TranslatorProtocol: Sendable {
    associatedtype Model: SourceConditionedModel
    var model: Model { get }
    var sourceTokenizer: BPETokenizer { get }
    var targetTokenizer: BPETokenizer { get }
}

extension TranslatorProtocol {
    /// Target ids (without `<eos>`) for source ids (ending with `<eos>`): greedy when `beams` = 1;
    /// at most min(context − 1, `maxNewTokens` ?? 2·|source| + 10) tokens.
    public func translate(ids source: [Int], beams: Int = 1, maxNewTokens: Int? = nil) throws -> [Int] {
        try Validate.positive(beams, "beams")
        let limit = min(model.contextLength - 1, maxNewTokens ?? (2 * source.count + 10))
        let decoder = try model.conditioned(on: source)
        let config = GenerationConfig(maxNewTokens: max(1, limit), stopTokens: [TranslationTokens.eos])
        let generation = try Generator.generate(decoder, prompt: [TranslationTokens.bos],
                                                strategy: beams == 1 ? .greedy : .beam(BeamConfig(width: beams)), config: config)
        return generation.tokens.filter { $0 != TranslationTokens.eos }
    }

    /// Translates text: source BPE (cut to context − 1 tokens) + `<eos>`, decoded back to text
    /// without the special ids.
    public func translate(_ text: String, beams: Int = 1) throws -> String {
        var ids = sourceTokenizer.encode(text)
        if ids.count + 1 > model.contextLength { ids = Array(ids.prefix(model.contextLength - 1)) }
        let out = try translate(ids: ids + [TranslationTokens.eos], beams: beams)
        return try targetTokenizer.decode(out.filter { $0 >= TranslationTokens.special.count }).trimmingCharacters(in: .whitespaces)
    }

    /// Corpus BLEU of this translator's output on `verses` (greedy when beams = 1). With `threads` > 1
    /// the verses are translated concurrently (`DataParallel.map`); each verse's output is the one
    /// thread's, so the score does not depend on `threads`.
    public func evaluate(_ verses: [ParallelVerse], beams: Int, threads: Int = 1) throws -> (score: BLEUScore, hypotheses: [String]) {
        let hyps = try DataParallel.map(verses.count, threads: threads) { try translate(verses[$0].source, beams: beams) }
        return (try BLEU.corpus(hypotheses: hyps, references: [verses.map(\.target)]), hyps)
    }
}

/// The Transformer translator: `EncoderDecoderModel` and both tokenizers; saved and loaded as a
/// directory (`translate --model`).
public struct Translator: TranslatorProtocol {
    public var model: EncoderDecoderModel
    public var sourceTokenizer: BPETokenizer
    public var targetTokenizer: BPETokenizer

    public init(model: EncoderDecoderModel, sourceTokenizer: BPETokenizer, targetTokenizer: BPETokenizer) {
        (self.model, self.sourceTokenizer, self.targetTokenizer) = (model, sourceTokenizer, targetTokenizer)
    }

    /// Saves `model.safetensors`, `config.json`, `source/` and `target/` tokenizers, atomically and
    /// as one `AtomicFile.group`: a failed write (the disk full) leaves a previous directory as it was.
    public func save(to directory: URL) throws {
        try AtomicFile.group(directory: directory) {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            var m = model
            var tensors: [(name: String, shape: [Int], values: [Float])] = []
            m.visitParameters(prefix: "") { n, s, v in tensors.append((n, s, v)) }
            try SafeTensorsFile.write(tensors, metadata: ["format": "decoder-spec-translation-1"], to: directory.appendingPathComponent("model.safetensors"))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try AtomicFile.write(try encoder.encode(model.config), to: directory.appendingPathComponent("config.json"))
            for (name, tok) in [("source", sourceTokenizer), ("target", targetTokenizer)] {
                let sub = directory.appendingPathComponent(name)
                try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
                try tok.write(to: sub)
            }
        }
    }

    public static func load(directory: URL) throws -> Translator {
        let configURL = directory.appendingPathComponent("config.json")
        guard let data = try? FileBytes.read(configURL) else { throw DecoderSpecError.missingFile(path: configURL.path, hint: "Train one with `decoder-spec train translate --data DIR --output DIR` (the data comes from `make fetch-data`).") }
        let config: EncoderDecoderConfig
        do {
            config = try JSONDecoder().decode(EncoderDecoderConfig.self, from: data)
        } catch let error as DecodingError {
            throw DecoderSpecError.malformedFile(path: configURL.path, location: JSONDecoding.location(error), reason: JSONDecoding.reason(error))
        }
        try config.validate()
        let weightsURL = directory.appendingPathComponent("model.safetensors")
        let file = try SafeTensorsFile.read(contentsOf: weightsURL)
        // Every size config.json names is checked against the file before the model is built: the
        // model is allocated from the config, so a damaged size (a width of 2⁴⁰) would otherwise be a
        // fatal allocation failure, and fewer layers would load a deeper model's file truncated.
        let d = config.modelWidth
        for (name, shape, keys) in [("encoder.embed_tokens.weight", [config.sourceVocabularySize, d], "sourceVocabularySize × modelWidth"),
                                    ("decoder.embed_tokens.weight", [config.targetVocabularySize, d], "targetVocabularySize × modelWidth"),
                                    ("encoder.layers.0.intermediate.dense.weight", [config.feedForwardWidth, d], "feedForwardWidth × modelWidth")] {
            let actual = try file.shape(name)
            guard actual == shape else {
                throw DecoderSpecError.shapeMismatch(operation: "tensor \"\(name)\" in \(weightsURL.path) against config.json's \(keys)",
                                                     expected: Shape(shape).description, actual: Shape(actual).description)
            }
        }
        try file.requireLayers(config.encoderLayers, under: "encoder.layers.", configKey: "encoderLayers")
        try file.requireLayers(config.decoderLayers, under: "decoder.layers.", configKey: "decoderLayers")
        var model = try EncoderDecoderModel.seeded(config, seed: 0)
        var loaded = Set<String>()
        try model.visitParameters(prefix: "") { name, shape, v in
            let (s, values) = try file.floats(name)
            guard s == shape else {
                throw DecoderSpecError.shapeMismatch(operation: "tensor \"\(name)\" in \(weightsURL.path)", expected: Shape(shape).description, actual: Shape(s).description)
            }
            try Validate.finite(values, "tensor \(name) of \(weightsURL.path)")
            v = values
            loaded.insert(name)
        }
        if let extra = file.names.first(where: { !loaded.contains($0) }) {
            throw DecoderSpecError.malformedFile(path: weightsURL.path, location: "tensor \"\(extra)\"",
                                                 reason: "not a parameter of the model config.json describes (\(file.names.count) tensors, the model has \(loaded.count))")
        }
        // Each side's tokenizer must be the one its embedding table was trained with: one id per row.
        var tokenizers: [BPETokenizer] = []
        for (side, rows, key) in [("source", config.sourceVocabularySize, "sourceVocabularySize"), ("target", config.targetVocabularySize, "targetVocabularySize")] {
            let sub = directory.appendingPathComponent(side)
            let tokenizer = try BPETokenizer.load(directory: sub)
            guard tokenizer.tokens.count == rows else {
                throw DecoderSpecError.malformedFile(
                    path: sub.appendingPathComponent("vocab.json").path, location: "\(tokenizer.tokens.count) tokens",
                    reason: "config.json's \(key) (the rows of \(side == "source" ? "encoder" : "decoder").embed_tokens.weight) is \(rows): this \(side) tokenizer is not the model's")
            }
            tokenizers.append(tokenizer)
        }
        return Translator(model: model, sourceTokenizer: tokenizers[0], targetTokenizer: tokenizers[1])
    }

}

/// Turns Foundation's `DecodingError` for a config file into the location and reason of a
/// `DecoderSpecError.malformedFile` (e.g. "key heads", "missing key (expected Int)").
enum JSONDecoding {
    static func location(_ error: DecodingError) -> String {
        let path: [CodingKey]
        switch error {
        case let .keyNotFound(key, context): path = context.codingPath + [key]
        case let .typeMismatch(_, context), let .valueNotFound(_, context), let .dataCorrupted(context): path = context.codingPath
        @unknown default: path = []
        }
        return path.isEmpty ? "top level" : "key " + path.map(\.stringValue).joined(separator: ".")
    }

    static func reason(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound: return "missing key"
        case let .typeMismatch(type, _): return "expected a value of type \(type)"
        case let .valueNotFound(type, _): return "expected a value of type \(type), found null"
        case let .dataCorrupted(context): return "not valid JSON (\(context.debugDescription))"
        @unknown default: return "cannot decode"
        }
    }
}
