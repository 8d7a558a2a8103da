// The recurrent baseline of the translation task: the same pairs, batches, loss, validation and
// BLEU as `TranslationTask`/`Translator`, with the GRU encoder-decoder (Models/GRUTranslationModel.swift).
// See docs/finetune-translation.md ("Recurrence vs attention").
import Decoding
import Foundation
import IO
import Kernels
import Metrics
import Models
import TensorCore
import Tokenizers
import Training

/// Translation with the GRU encoder-decoder as a `TrainingTask`: teacher-forced, label-smoothed
/// cross-entropy on `Seq2SeqBatch`es of the same pairs as `TranslationTask`, the same example
/// length max(|source|, |target| + 1), the same validation (plain cross-entropy per target token).
public struct GRUTranslationTask: TrainingTask {
    public typealias Model = GRUTranslationModel
    public var pairs: [(source: [Int], target: [Int])]
    public var validation: [(source: [Int], target: [Int])]
    public var loss: CrossEntropyLoss
    public var path: KernelPath
    public var validationBatchTokens = 4000

    public init(pairs: [(source: [Int], target: [Int])], validation: [(source: [Int], target: [Int])] = [],
                loss: CrossEntropyLoss, path: KernelPath = .optimized) {
        (self.pairs, self.validation, self.loss, self.path) = (pairs, validation, loss, path)
    }

    public var exampleCount: Int { pairs.count }
    public func length(of example: Int) -> Int { TranslationTask.length(pairs[example]) }

    public func lossAndGradient(_ model: GRUTranslationModel, examples: [Int]) throws -> (loss: Double, gradient: GRUTranslationModel, tokens: Int) {
        let batch = try Seq2SeqBatch(pairs: examples.map { pairs[$0] }, bos: TranslationTokens.bos, eos: TranslationTokens.eos)
        let r = try model.lossAndGradient(batch, loss: loss, path: path)
        return (r.loss, r.gradient, batch.sourceTokens + batch.targetTokens)
    }

    /// The labels (target + `<eos>`) not equal to the ignore index, as `TranslationTask`'s.
    public func lossDenominator(examples: [Int]) -> Int? {
        examples.reduce(0) { n, i in n + (pairs[i].target + [TranslationTokens.eos]).reduce(0) { $0 + ($1 != loss.ignoreIndex ? 1 : 0) } }
    }

    public func validate(_ model: GRUTranslationModel) throws -> Validation? {
        try TranslationTask.validationLoss(validation, batchTokens: validationBatchTokens) { batch, plain in
            let r = try model.lossAndGradient(batch, loss: plain, path: path, wantGradient: false)
            return (r.loss, r.labelled)
        }
    }
}

/// A trained GRU translator: the model and both tokenizers, decoded by the same loop as `Translator`
/// (`TranslatorProtocol`).
public struct GRUTranslator: TranslatorProtocol {
    public var model: GRUTranslationModel
    public var sourceTokenizer: BPETokenizer
    public var targetTokenizer: BPETokenizer

    public init(model: GRUTranslationModel, sourceTokenizer: BPETokenizer, targetTokenizer: BPETokenizer) {
        (self.model, self.sourceTokenizer, self.targetTokenizer) = (model, sourceTokenizer, targetTokenizer)
    }
}

/// Synthetic batches for timing one training step as the target length grows.
public enum TranslationStepTiming {
    /// `tokens / length` pairs (at least 1) whose source (with `<eos>`) and decoder input (`<bos>`
    /// + target) both have `length` tokens, ids drawn uniformly from the non-special ids.
    public static func pairs(length: Int, tokens: Int, sourceVocabulary: Int, targetVocabulary: Int, seed: UInt64) throws -> [(source: [Int], target: [Int])] {
        try Validate.positive(length - 1, "length − 1 (a pair needs one source token before <eos>)")
        let first = TranslationTokens.special.count
        guard sourceVocabulary > first, targetVocabulary > first else {
            throw DecoderSpecError.invalidArgument(what: "vocabularies \(sourceVocabulary), \(targetVocabulary)", reason: "need ids beyond the \(first) specials")
        }
        var rng = SeededRNG(seed: seed)
        return (0..<max(1, tokens / length)).map { _ in
            ((0..<(length - 1)).map { _ in first + Int(rng.next() % UInt64(sourceVocabulary - first)) } + [TranslationTokens.eos],
             (0..<(length - 1)).map { _ in first + Int(rng.next() % UInt64(targetVocabulary - first)) })
        }
    }
}
