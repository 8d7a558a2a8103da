import DecoderSpec
import Foundation
import SpecSupport
import Testing

// The bad-input matrix (docs/errors.md): one row per way a user can hand the library
// something wrong. Each row is the input, the typed error it must raise (or the documented numeric
// result), and the values the message must name so that the message alone says what to fix.
// A row that traps instead of throwing takes the whole test process down: that is a failure too.

/// The kind of `DecoderSpecError` a row expects (the payload is checked through the message).
enum ErrorKind: String, Sendable {
    case shapeMismatch, emptySequence, idOutOfRange, nonFinite, invalidArgument, malformedFile, missingFile

    init(_ error: DecoderSpecError) {
        switch error {
        case .shapeMismatch: self = .shapeMismatch
        case .emptySequence: self = .emptySequence
        case .idOutOfRange: self = .idOutOfRange
        case .nonFinite: self = .nonFinite
        case .invalidArgument: self = .invalidArgument
        case .malformedFile: self = .malformedFile
        case .missingFile: self = .missingFile
        }
    }
}

/// A row whose call must throw `kind` with a message containing every string of `naming`.
struct ErrorRow: Sendable, CustomTestStringConvertible {
    let area: String
    let input: String
    let kind: ErrorKind
    let naming: [String]
    let call: @Sendable () throws -> Void
    var testDescription: String { "\(area): \(input)" }

    init(_ area: String, _ input: String, _ kind: ErrorKind, naming: [String], _ call: @escaping @Sendable () throws -> Void) {
        (self.area, self.input, self.kind, self.naming, self.call) = (area, input, kind, naming, call)
    }
}

/// A row whose input is legal but extreme: the documented result must hold. `check` returns nil
/// when it does, or what went wrong.
struct ResultRow: Sendable, CustomTestStringConvertible {
    let area: String
    let input: String
    let documented: String
    let check: @Sendable () throws -> String?
    var testDescription: String { "\(area): \(input) → \(documented)" }

    init(_ area: String, _ input: String, documented: String, _ check: @escaping @Sendable () throws -> String?) {
        (self.area, self.input, self.documented, self.check) = (area, input, documented, check)
    }
}

/// Matrix helpers for the rows.
enum Fixture {
    static func m(_ rows: Int, _ cols: Int, seed: UInt = 1) -> Matrix { Inputs.matrix(rows: rows, cols: cols, seed: seed) }

    /// `m` with `value` written at flat index `index`.
    static func poisoned(_ rows: Int, _ cols: Int, at index: Int, _ value: Float) -> Matrix {
        var x = m(rows, cols)
        x.storage[index] = value
        return x
    }

    static func tinyDecoder() throws -> DecoderOnlyModel {
        try DecoderOnlyModel.seeded(TransformerConfig(vocabularySize: 16, contextLength: 8, modelWidth: 8, heads: 2, layers: 1), seed: 3)
    }

    static func tinyEncoder() throws -> EncoderModel {
        try EncoderModel.seeded(TransformerConfig(vocabularySize: 16, contextLength: 8, tokenTypes: 2, modelWidth: 8, heads: 2, layers: 1, feedForwardWidth: 16, layerNormEpsilon: 1e-12, activation: .gelu),
                                seed: 4)
    }

    static func tinySeq2Seq() throws -> EncoderDecoderModel {
        try EncoderDecoderModel.seeded(
            EncoderDecoderConfig(sourceVocabularySize: 12, targetVocabularySize: 10, contextLength: 8, modelWidth: 8, heads: 2,
                                 encoderLayers: 1, decoderLayers: 1, feedForwardWidth: 16), seed: 5)
    }

    /// A training checkpoint of `model` (with AdamW moments after one update) in a fresh directory,
    /// after `edit` has changed its tensors (name → (shape, values)) or its metadata.
    static func checkpoint(of model: DecoderOnlyModel,
                           _ edit: (inout [String: (shape: [Int], values: [Float])], inout [String: String]) -> Void = { _, _ in }) throws -> URL {
        var trained = model
        var optimizer = try AdamW()
        optimizer.update(&trained, gradient: trained.zeroGradient(), learningRate: 1e-3)
        let url = try directory().appendingPathComponent("ckpt.safetensors")
        try TrainingCheckpoint.write(trained, optimizer: optimizer, step: 1, seed: 0, to: url)
        let file = try SafeTensorsFile.read(contentsOf: url)
        var tensors = try Dictionary(uniqueKeysWithValues: file.tensors.keys.map { name in
            let (shape, values) = try file.floats(name)
            return (name, (shape: shape, values: values))
        })
        var metadata = file.metadata
        edit(&tensors, &metadata)
        try SafeTensorsFile.write(tensors.keys.sorted().map { ($0, tensors[$0]!.shape, tensors[$0]!.values) }, metadata: metadata, to: url)
        return url
    }

    /// The safetensors file at `url` rewritten with tensor `name` stored as I32 (values truncated
    /// toward zero, as another program might have saved it); every other tensor (F32) and the
    /// metadata unchanged.
    static func storeAsI32(_ url: URL, tensor name: String) throws {
        let file = try SafeTensorsFile.read(contentsOf: url)
        var header: [String: Any] = ["__metadata__": file.metadata]
        var data = Data()
        for key in file.tensors.keys.sorted() {
            let (shape, values) = try file.floats(key)
            let begin = data.count
            for v in values {
                if key == name {
                    withUnsafeBytes(of: Int32(v).littleEndian) { data.append(contentsOf: $0) }
                } else {
                    withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) }
                }
            }
            header[key] = ["dtype": key == name ? "I32" : "F32", "shape": shape, "data_offsets": [begin, data.count]] as [String: Any]
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var bytes = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { bytes.append(contentsOf: $0) }
        try (bytes + json + data).write(to: url)
    }

    /// Reads the checkpoint at `url` into a fresh `tinyDecoder()`.
    static func resumeTinyDecoder(from url: URL) throws {
        var model = try tinyDecoder()
        var optimizer = try AdamW()
        _ = try TrainingCheckpoint.read(from: url, into: &model, optimizer: &optimizer)
    }

    /// Trains `tinyDecoder()` as a language model on four windows, 2 epochs of 2 batches (4 steps),
    /// seed 0 (the seed `checkpoint(of:)` records), resuming from `checkpoint`.
    static func trainTinyDecoder(checkpoint url: URL) throws {
        var model = try tinyDecoder()
        var options = TrainingOptions()
        (options.epochs, options.batchSize, options.seed, options.checkpoint) = (2, 2, 0, url)
        let task = LanguageModelTask(windows: [[1, 2, 3, 4, 5], [2, 3, 4, 5, 6], [7, 8, 9], [3, 4, 5, 6]], path: .naive)
        _ = try Trainer.train(&model, task: task, options: options, progress: { _ in })
    }

    // Model directories of two layers, written by the library's own savers, then damaged by `edit`
    // (config.json as a JSON object; the directory for anything else) — as a user would damage them:
    // another model's config, a vocabulary or tokenizer from another run, a stray tensor.

    /// config.json at `dir` after `edit` (JSON object, keys as in the file).
    static func editConfig(_ dir: URL, _ edit: (inout [String: Any]) -> Void) throws {
        let url = dir.appendingPathComponent("config.json")
        var object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        edit(&object)
        try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]).write(to: url)
    }

    /// A GPT-2 directory (config.json + model.safetensors) of a 2-layer, d 8, V 16 decoder.
    static func gpt2Directory(_ edit: (inout [String: Any]) -> Void = { _ in }) throws -> URL {
        let dir = try directory()
        try DecoderOnlyModel.seeded(TransformerConfig(vocabularySize: 16, contextLength: 8, modelWidth: 8, heads: 2, layers: 2), seed: 3)
            .save(directory: dir)
        try editConfig(dir, edit)
        return dir
    }

    /// A BERT directory (config.json, model.safetensors, vocab.txt of `vocabulary` tokens) of a
    /// 2-layer, d 8, V 16 encoder, in Hugging Face's names.
    static func bertDirectory(vocabulary: Int = 16, _ edit: (inout [String: Any]) -> Void = { _ in }) throws -> URL {
        let config = TransformerConfig(vocabularySize: 16, contextLength: 8, tokenTypes: 2, modelWidth: 8, heads: 2, layers: 2,
                                       feedForwardWidth: 16, layerNormEpsilon: 1e-12, activation: .gelu)
        var model = try EncoderModel.seeded(config, seed: 4)
        var tensors: [(name: String, shape: [Int], values: [Float])] = []
        model.visitParameters(prefix: "") { name, shape, values in tensors.append((name, shape, values)) }
        let dir = try directory()
        try SafeTensorsFile.write(tensors, to: dir.appendingPathComponent("model.safetensors"))
        try Data(config.huggingFaceJSON(schema: .bert).utf8).write(to: dir.appendingPathComponent("config.json"))
        let tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + (5..<max(vocabulary, 5)).map { "w\($0)" }
        try Data((tokens.joined(separator: "\n") + "\n").utf8).write(to: dir.appendingPathComponent("vocab.txt"))
        try editConfig(dir, edit)
        return dir
    }

    /// A translator directory (config.json, model.safetensors, source/ and target/ tokenizers) of a
    /// 2+2-layer, d 8 encoder-decoder whose vocabularies are the 3 specials + 256 bytes (259 rows),
    /// as `Translator.save` writes it; `targetMerges` adds merges (and their tokens) to the target
    /// tokenizer only.
    static func translatorDirectory(targetMerges: [(String, String)] = [], _ edit: (inout [String: Any]) -> Void = { _ in }) throws -> URL {
        let specials = ["<pad>", "<bos>", "<eos>"]
        let config = EncoderDecoderConfig(sourceVocabularySize: 259, targetVocabularySize: 259, contextLength: 8, modelWidth: 8, heads: 2,
                                          encoderLayers: 2, decoderLayers: 2, feedForwardWidth: 16)
        let translator = Translator(model: try EncoderDecoderModel.seeded(config, seed: 5),
                                    sourceTokenizer: try BPETokenizer(tokens: specials + byteAlphabet, merges: []),
                                    targetTokenizer: try BPETokenizer(tokens: specials + byteAlphabet + targetMerges.map { $0.0 + $0.1 }, merges: targetMerges))
        let dir = try directory()
        try translator.save(to: dir)
        try editConfig(dir, edit)
        return dir
    }

    /// A language-model directory as `LanguageModel.save` writes it after `train lm`: vocab.json in
    /// the trainer's layout (the 256 byte symbols in byte order, then one token per merge: "Ġt",
    /// "he", "Ġthe", ids 256…258) and a 1-layer, d 4 decoder of 259 rows; merges.txt then rewritten
    /// with only the first `keptMerges` of its 3 merges (as a file cut short or from a shorter run).
    static func languageModelDirectory(keptMerges: Int = 3) throws -> URL {
        let merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he")]
        let tokenizer = try BPETokenizer(tokens: byteAlphabet + merges.map { $0.0 + $0.1 }, merges: merges)
        let model = try DecoderOnlyModel.seeded(TransformerConfig(vocabularySize: 259, contextLength: 8, modelWidth: 4, heads: 1, layers: 1), seed: 6)
        let dir = try directory()
        try LanguageModel(model: model, tokenizer: tokenizer).save(to: dir)
        let kept = "#version: 0.2\n" + merges.prefix(keptMerges).map { "\($0.0) \($0.1)\n" }.joined()
        try Data(kept.utf8).write(to: dir.appendingPathComponent("merges.txt"))
        return dir
    }

    /// A fresh directory under the temporary directory.
    static func directory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("hardening-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Writes `bytes` to a new file named `name` in a fresh directory.
    static func file(_ name: String, _ bytes: [UInt8]) throws -> URL {
        let url = try directory().appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url
    }

    static func file(_ name: String, _ text: String) throws -> URL { try file(name, Array(text.utf8)) }
}

/// The same Float as the message prints it, e.g. "nan", "inf", "-inf" for Double(value).
func printed(_ value: Float) -> String { "\(Double(value))" }

/// The 256 byte symbols of byte-level BPE, in byte order.
let byteAlphabet: [String] = ByteLevel.byteToScalar.map { String($0) }
