// Continued masked-LM pre-training of a BERT-style encoder on in-domain text (the self-supervised
// pre-training of Docs 002 and 003, BERT's "Task #1"): the sentences as WordPiece sequences, the
// task the trainer runs (dynamic masking, keyed by step and example), the held-out MLM loss under a
// fixed masking, and the model directory `finetune ner --model DIR` reads. See docs/pretraining.md.
import Foundation
import IO
import Kernels
import Models
import TensorCore
import Tokenizers
import Training

public enum MaskedLMData {
    /// `[CLS] w₁-pieces … wₙ-pieces [SEP]` of every non-empty sentence, cut to `maxLength` ids
    /// (the last kept id replaced by `[SEP]`), as `NER.examples` encodes them.
    /// - Throws: `.invalidArgument` for maxLength < 3 ([CLS], one sub-token, [SEP]).
    public static func sequences(_ sentences: [[String]], tokenizer: WordPieceTokenizer, maxLength: Int) throws -> [[Int]] {
        guard maxLength >= 3 else {
            throw DecoderSpecError.invalidArgument(what: "maxLength \(maxLength)", reason: "must be ≥ 3 ([CLS], one sub-token, [SEP])")
        }
        return sentences.compactMap { words -> [Int]? in
            guard !words.isEmpty else { return nil }
            let ids = tokenizer.encode(words: words).ids
            return ids.count > maxLength ? Array(ids[..<(maxLength - 1)]) + [tokenizer.sepID] : ids
        }
    }

    /// The ids masking never selects: `[CLS]`, `[SEP]`, `[PAD]`, `[UNK]`, `[MASK]` (Hugging Face's
    /// `all_special_ids`), and the `[MASK]` id.
    /// - Throws: `.invalidArgument` when the vocabulary has no `[MASK]`.
    public static func specialIDs(_ tokenizer: WordPieceTokenizer) throws -> (protected: Set<Int>, mask: Int) {
        guard let mask = tokenizer.vocabulary.id(of: "[MASK]") else {
            throw DecoderSpecError.invalidArgument(what: "vocabulary of \(tokenizer.vocabulary.count) tokens", reason: "has no [MASK] token: masked-LM pre-training needs one")
        }
        var protected: Set<Int> = [tokenizer.clsID, tokenizer.sepID, tokenizer.unknownID, mask]
        if let pad = tokenizer.padID { protected.insert(pad) }
        return (protected, mask)
    }
}

/// Masked-LM training of a `MaskedLanguageModel`, for `Trainer.train`.
///
/// **Dynamic masking** (RoBERTa's, rather than BERT's masks fixed once at data preparation): at
/// global step s, sequence i is masked by `MLMMasking` with its own generator seeded by
/// (seed, s, i) — a fresh mask each time a sequence is met, a function of the step and the example
/// alone, so the same on one thread or many (the shards' `lossDenominator`s count the same selected
/// positions the loss divides by) and after a resume. The held-out loss masks sequence i of the
/// evaluation set with (evaluationSeed, 0, i): the same masks before and after training.
public struct MaskedLMTask: TrainingTask {
    public typealias Model = MaskedLanguageModel
    public var sequences: [[Int]]
    public var evaluation: [[Int]]
    public var masking: MLMMasking
    public var maskID: Int
    public var vocabularySize: Int
    public var protected: Set<Int>
    public var seed: UInt64
    public var evaluationSeed: UInt64
    public var loss: CrossEntropyLoss
    public var path: KernelPath
    /// Threads for the held-out loss's batches (`heldOutLoss`, `validate`); the training step's are
    /// `TrainingOptions.threads`.
    public var evaluationThreads = 1
    /// The global step the trainer is on (`beginStep`); 0 before training.
    public private(set) var step = 0

    /// - Throws: `.emptySequence` for no sequences or an empty one; `.idOutOfRange` for an id or
    ///   `maskID` outside 0 ..< `vocabularySize`.
    public init(sequences: [[Int]], evaluation: [[Int]] = [], masking: MLMMasking, maskID: Int, vocabularySize: Int, protected: Set<Int>,
                seed: UInt64, evaluationSeed: UInt64 = 1, path: KernelPath) throws {
        guard !sequences.isEmpty else { throw DecoderSpecError.emptySequence(what: "masked-LM training sequences") }
        for (name, set) in [("training", sequences), ("evaluation", evaluation)] {
            for (s, ids) in set.enumerated() {
                guard !ids.isEmpty else { throw DecoderSpecError.emptySequence(what: "\(name) sequence \(s)") }
                if let t = ids.firstIndex(where: { $0 < 0 || $0 >= vocabularySize }) {
                    throw DecoderSpecError.idOutOfRange(id: ids[t], position: t, vocabularySize: vocabularySize)
                }
            }
        }
        guard maskID >= 0 && maskID < vocabularySize else { throw DecoderSpecError.idOutOfRange(id: maskID, position: 0, vocabularySize: vocabularySize) }
        (self.sequences, self.evaluation, self.masking, self.maskID, self.vocabularySize) = (sequences, evaluation, masking, maskID, vocabularySize)
        (self.protected, self.seed, self.evaluationSeed, self.path) = (protected, seed, evaluationSeed, path)
        loss = try CrossEntropyLoss()
    }

    /// SplitMix64's finaliser of seed ⊕ step·φ ⊕ example·c: a generator per (seed, step, example).
    public static func maskingSeed(_ seed: UInt64, step: Int, example: Int) -> UInt64 {
        var z = seed ^ (UInt64(truncatingIfNeeded: step) &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(truncatingIfNeeded: example) &* 0xC2B2_AE3D_27D4_EB4F)
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// (inputs, labels) of `ids` masked with the generator of (seed, step, example).
    public func masked(_ ids: [Int], seed: UInt64, step: Int, example: Int) throws -> (inputs: [Int], labels: [Int]) {
        var rng = SeededRNG(seed: Self.maskingSeed(seed, step: step, example: example))
        return try masking.apply(ids, maskID: maskID, vocabularySize: vocabularySize, protected: protected, rng: &rng)
    }

    public mutating func beginStep(_ step: Int) { self.step = step }

    public var exampleCount: Int { sequences.count }
    public func length(of example: Int) -> Int { sequences[example].count }

    /// The selected positions of the examples' masks at the current step: what the mean divides by.
    public func lossDenominator(examples: [Int]) -> Int? {
        var n = 0
        for i in examples {
            guard let labels = try? masked(sequences[i], seed: seed, step: step, example: i).labels else { return nil }
            n += labels.reduce(0) { $0 + ($1 != loss.ignoreIndex ? 1 : 0) }
        }
        return n
    }

    public func lossAndGradient(_ model: MaskedLanguageModel, examples: [Int]) throws -> (loss: Double, gradient: MaskedLanguageModel, tokens: Int) {
        let masked = try examples.map { try self.masked(sequences[$0], seed: seed, step: step, example: $0) }
        let batch = try PackedBatch(masked.map(\.inputs))
        let r = try model.lossAndGradient(batch, labels: masked.flatMap(\.labels), loss: loss, path: path)
        return (r.loss, r.gradient!, batch.tokenCount)
    }

    /// The mean MLM loss over the selected positions of `sequences`, sequence i masked with
    /// (evaluationSeed, 0, i), in batches of `batchSize`; and the count of selected positions.
    public func heldOutLoss(_ model: MaskedLanguageModel, sequences: [[Int]], batchSize: Int = 64) throws -> (loss: Double, selected: Int) {
        try Validate.positive(batchSize, "batch size")
        // The batches on `evaluationThreads` cores (DataParallel.map), summed in batch order: the same
        // bits on any number of threads.
        let starts = Array(stride(from: 0, to: sequences.count, by: batchSize))
        let batches = try DataParallel.map(starts.count, threads: evaluationThreads) { b in
            let range = starts[b]..<min(sequences.count, starts[b] + batchSize)
            let masked = try range.map { try self.masked(sequences[$0], seed: evaluationSeed, step: 0, example: $0) }
            let r = try model.lossAndGradient(PackedBatch(masked.map(\.inputs)), labels: masked.flatMap(\.labels), loss: loss, path: path,
                                              wantGradient: false)
            return (sum: r.loss * Double(r.labelled), labelled: r.labelled)
        }
        var total = 0.0, count = 0
        for b in batches {
            total += b.sum
            count += b.labelled
        }
        return (count == 0 ? 0 : total / Double(count), count)
    }

    /// The held-out MLM loss on `evaluation` (lower is better), perplexity in the detail; nil when there is none.
    public func validate(_ model: MaskedLanguageModel) throws -> Validation? {
        guard !evaluation.isEmpty else { return nil }
        let (value, n) = try heldOutLoss(model, sequences: evaluation)
        return Validation(metric: "valid MLM loss", value: value, higherIsBetter: false, detail: String(format: "perplexity %.2f over %d masked positions", exp(value), n))
    }
}

extension MaskedLanguageModel {
    /// The encoder of a BERT checkpoint directory with its MLM head: `cls.predictions.*` from the
    /// same model.safetensors when it has them (a `save(to:)` directory, BertForMaskedLM's files),
    /// else a fresh head from `fresh` (all-MiniLM-L6-v2 has none). Returns whether the head was loaded.
    /// - Throws: `EncoderModel.load`'s errors; `.malformedFile` naming a `cls.predictions` tensor of
    ///   the wrong shape or with a non-finite value.
    public static func load(directory: URL, path: KernelPath = .optimized,
                            fresh: (_ modelWidth: Int, _ vocabularySize: Int, _ epsilon: Float) throws -> MaskedLMHead) throws
        -> (model: MaskedLanguageModel, headLoaded: Bool)
    {
        let encoder = try EncoderModel.load(directory: directory, path: path)
        let (d, v, eps) = (encoder.config.modelWidth, encoder.config.vocabularySize, encoder.config.layerNormEpsilon)
        let url = directory.appendingPathComponent("model.safetensors")
        let file = try SafeTensorsFile.read(contentsOf: url)
        guard file.tensors["cls.predictions.bias"] != nil else {
            return (try MaskedLanguageModel(encoder: encoder, head: fresh(d, v, eps)), false)
        }
        var head = try MaskedLMHead.identity(modelWidth: d, vocabularySize: v, epsilon: eps)
        try head.visitParameters(prefix: "cls.predictions") { name, shape, values in
            let (s, x) = try file.floats(name)
            guard s == shape else {
                throw DecoderSpecError.malformedFile(path: url.path, location: "tensor \(name)", reason: "shape \(Shape(s)), the model expects \(Shape(shape))")
            }
            try Validate.finite(x, "tensor \(name) of \(url.path)")
            values = x
        }
        return (try MaskedLanguageModel(encoder: encoder, head: head), true)
    }

    /// Writes `model.safetensors` in BertForMaskedLM's names (`bert.*`, `cls.predictions.*`; the
    /// decoder is the word embedding, not stored twice) into `directory`, atomically, and copies
    /// `config.json` and `vocab.txt` from `source`: a BERT checkpoint directory that
    /// `EncoderModel.load` (and so `finetune ner --model DIR`) reads, and this type's `load` too.
    /// The three files are one `AtomicFile.group`: a failed write (the disk full) replaces none of
    /// a previous directory's files, and a directory this call created is removed again.
    public func save(to directory: URL, copyingFrom source: URL) throws {
        var tensors: [(name: String, shape: [Int], values: [Float])] = []
        var copy = self
        copy.visitParameters(prefix: "") { n, s, v in tensors.append((n, s, v)) }
        try AtomicFile.group(directory: directory) {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try SafeTensorsFile.write(tensors, metadata: ["format": "pt"], to: directory.appendingPathComponent("model.safetensors"))
            for file in ["config.json", "vocab.txt"] {
                try AtomicFile.write(try FileBytes.read(source.appendingPathComponent(file)), to: directory.appendingPathComponent(file))
            }
        }
    }
}

/// One `pretrain mlm` run as a JSON line (`--report FILE`): the held-out MLM loss before and after.
public struct MaskedLMReport: Codable, Sendable, Equatable {
    public struct HeldOut: Codable, Sendable, Equatable {
        /// Mean cross-entropy per masked position (nats), its perplexity exp(loss), the positions.
        public var loss: Double
        public var perplexity: Double
        public var selected: Int
        public init(loss: Double, selected: Int) { (self.loss, self.perplexity, self.selected) = (loss, exp(loss), selected) }
    }
    public var model: String
    /// "loaded" (cls.predictions.* from the checkpoint), "identity" or "bert" (a fresh head).
    public var head: String
    public var seed: UInt64
    public var evaluationSeed: UInt64
    public var steps: Int
    public var batchSize: Int
    public var learningRate: Double
    public var threads: Int
    public var trainingSequences: Int
    /// Sub-tokens read in training, the training wall time.
    public var tokens: Int
    public var minutes: Double
    public var evaluationSequences: Int
    public var before: HeldOut
    public var after: HeldOut

    public init(model: String, head: String, seed: UInt64, evaluationSeed: UInt64, steps: Int, batchSize: Int, learningRate: Double, threads: Int,
                trainingSequences: Int, tokens: Int, minutes: Double, evaluationSequences: Int, before: HeldOut, after: HeldOut) {
        (self.model, self.head, self.seed, self.evaluationSeed, self.steps, self.batchSize) = (model, head, seed, evaluationSeed, steps, batchSize)
        (self.learningRate, self.threads, self.trainingSequences, self.tokens, self.minutes) = (learningRate, threads, trainingSequences, tokens, minutes)
        (self.evaluationSequences, self.before, self.after) = (evaluationSequences, before, after)
    }

    /// One line of JSON (sorted keys), no newline.
    public func jsonLine() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}
