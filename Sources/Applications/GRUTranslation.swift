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

/// Translation with the GRU encoder-decoder as a `TrainingTask`: the Transformer's task
/// (`Seq2SeqTask`) over `GRUTranslationModel` — the same pairs, batches, example length, loss and
/// validation (plain cross-entropy per target token).
public typealias GRUTranslationTask = Seq2SeqTask<GRUTranslationModel>

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
