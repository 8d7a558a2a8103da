// The fuzz harnesses that need the whole library (docs/reliability.md): training checkpoints
// (`checkpoint`), model directories (`modeldir`) and the trainer's resume path (`resume`).
//
// One file, two builds, like FuzzRegressionSpecs.swift: `swift test` compiles it into IOSpecs, whose
// `LibraryFuzzRegressionSpecs` replays every file under fuzz/<target>/seeds and
// fuzz/<target>/regressions; scripts/fuzz compiles it with -DDECODERSPEC_FUZZ, with copies of every
// library module as one module, into the libFuzzer binary of each of the three targets (their
// fuzz/<target>/main.swift is only the entry point). All three are structure-aware: an input starts
// from a valid file or directory the library wrote and says how to damage it.
#if DECODERSPEC_FUZZ
import Foundation
#else
import DecoderSpec
import Foundation
import Testing
#endif

/// A loader or the trainer broke an invariant on an input it accepted, or changed state on one it rejected.
struct LibraryFuzzViolation: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// The targets of this file.
enum LibraryFuzzTarget: String, CaseIterable, Sendable {
    case checkpoint, modeldir, resume

    func run(_ input: [UInt8]) throws {
        switch self {
        case .checkpoint: try CheckpointFuzz.check(input)
        case .modeldir: try ModelDirectoryFuzz.check(input)
        case .resume: try ResumeFuzz.check(input)
        }
    }

    /// libFuzzer's entry: a rejection (DecoderSpecError) returns; a violation or any other error traps.
    func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
        let input = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
        do {
            try run(input)
        } catch let v as LibraryFuzzViolation {
            fatalError("\(rawValue) invariant violated: \(v)")
        } catch is DecoderSpecError {
        } catch {
            fatalError("\(type(of: error)) instead of DecoderSpecError: \(error)")
        }
        return 0
    }
}

/// Tensors as the fuzzers edit them, and the edits they share (checkpoint, resume, model directories).
enum TensorEdits {
    typealias Tensor = (name: String, dtype: String, shape: [Int], values: [Float])

    static func tensors(of bytes: [UInt8]) -> [Tensor] {
        let file = try! SafeTensorsFile(bytes: bytes)
        return file.names.map { name in
            let (shape, values) = try! file.floats(name)
            return (name, "F32", shape, values)
        }
    }

    /// The safetensors layout with each tensor's dtype and with its data_offsets shifted by `shifts`
    /// (begin, end) — the reader's validation decides.
    static func serialize(_ tensors: [Tensor], metadata: [String: String], shifts: [String: (Int, Int)] = [:]) -> [UInt8] {
        var header: [String] = []
        if !metadata.isEmpty {
            let fields = metadata.keys.sorted().map { "\(json($0)):\(json(metadata[$0]!))" }
            header.append("\"__metadata__\":{\(fields.joined(separator: ","))}")
        }
        var data: [UInt8] = []
        for t in tensors {
            let begin = data.count
            for v in t.values {
                switch t.dtype {
                case "F64": withUnsafeBytes(of: Double(v).bitPattern.littleEndian) { data += $0 }
                case "BF16": withUnsafeBytes(of: UInt16(truncatingIfNeeded: v.bitPattern >> 16).littleEndian) { data += $0 }
                case "I32": withUnsafeBytes(of: Int32(v.isFinite ? max(min(v, 2e9), -2e9) : 0).littleEndian) { data += $0 }
                default: withUnsafeBytes(of: v.bitPattern.littleEndian) { data += $0 }
                }
            }
            let (db, de) = shifts[t.name] ?? (0, 0)
            let shape = t.shape.map(String.init).joined(separator: ",")
            header.append("\(json(t.name)):{\"dtype\":\"\(t.dtype)\",\"shape\":[\(shape)],\"data_offsets\":[\(begin + db),\(data.count + de)]}")
        }
        var h = Array(("{" + header.joined(separator: ",") + "}").utf8)
        h += [UInt8](repeating: 0x20, count: (8 - h.count % 8) % 8)
        var out: [UInt8] = []
        withUnsafeBytes(of: UInt64(h.count).littleEndian) { out += $0 }
        return out + h + data
    }

    static func json(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default: out += u.value < 0x20 ? String(format: "\\u%04x", u.value) : String(u)
            }
        }
        return out + "\""
    }

    /// One tensor edit (op, a, b): drop tensor a; reshape it (b: a dimension ±1 or 0, an extra
    /// axis of 1, the axes reversed, rank 0); rename it (`renames` gives the candidates); poison
    /// element b (NaN, ±∞, −1, 1e30, −0); duplicate it under a new name; re-type it (F64, BF16,
    /// I32); shift its data offsets.
    static func apply(_ op: UInt8, _ a: Int, _ b: Int, to tensors: inout [Tensor], shifts: inout [String: (Int, Int)],
                      renames: (String, Int) -> String, extraNames: [String]) {
        guard !tensors.isEmpty else { return }
        let k = a % tensors.count
        switch op % 7 {
        case 0: tensors.remove(at: k)
        case 1:
            var s = tensors[k].shape
            switch b % 6 {
            case 0: if !s.isEmpty { s[b / 6 % s.count] += 1 }
            case 1: if !s.isEmpty { s[b / 6 % s.count] = max(s[b / 6 % s.count] - 1, 0) }
            case 2: if !s.isEmpty { s[b / 6 % s.count] = 0 }
            case 3: s.append(1)
            case 4: s.reverse()
            default: s = []
            }
            let count = s.reduce(1, *)
            tensors[k].shape = s
            tensors[k].values = Array((tensors[k].values + [Float](repeating: 0.5, count: max(count - tensors[k].values.count, 0))).prefix(count))
        case 2:
            let renamed = renames(tensors[k].name, b)
            if !tensors.contains(where: { $0.name == renamed }) { tensors[k].name = renamed }
        case 3:
            if !tensors[k].values.isEmpty {
                let poison: [Float] = [.nan, .infinity, -.infinity, -1, 1e30, -0.0]
                tensors[k].values[b % tensors[k].values.count] = poison[b % poison.count]
            }
        case 4:
            var copy = tensors[k]
            copy.name = extraNames[b % extraNames.count]
            if !tensors.contains(where: { $0.name == copy.name }) { tensors.append(copy) }
        case 5: tensors[k].dtype = ["F64", "BF16", "I32", "F32"][b % 4]
        default:
            let delta = (b % 16) - 8
            let old = shifts[tensors[k].name] ?? (0, 0)
            shifts[tensors[k].name] = b & 16 == 0 ? (old.0 + delta, old.1) : (old.0, old.1 + delta)
        }
    }

    /// Byte patches (2-byte little-endian offset, value) over `bytes`.
    static func patch(_ bytes: [UInt8], with rest: ArraySlice<UInt8>) -> [UInt8] {
        var out = bytes
        let r = Array(rest)
        var i = 0
        while i + 3 <= r.count, !out.isEmpty {
            out[(Int(r[i]) | Int(r[i + 1]) << 8) % out.count] = r[i + 2]
            i += 3
        }
        return out
    }

    /// Metadata values for the resume target: the checkpoint target's and the counts of a short run.
    static let metadataPool = ["-1", "0", "1", "2", "3", "4", "", "abc", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
                               "1e3", " 1", "01", "+1", "0x10", "1000000000000000", "nan", "inf", "0.5", "true",
                               "decoder-spec-training-checkpoint-2"]
}

// MARK: model directories

/// `modeldir`: the four kinds of model directory the suite loads, each written by the library's own
/// saver with tiny sizes, then damaged as a whole — config.json, the weights and the tokenizer
/// files together:
///
///   byte 0 % 4  the kind: GPT-2 (config.json, model.safetensors; `DecoderOnlyModel.load`), BERT
///               (config.json, model.safetensors, vocab.txt; `EncoderModel.load` and
///               `WordPieceTokenizer.load(modelDirectory:embeddingRows:)`), language model (GPT-2 +
///               vocab.json, merges.txt; `LanguageModel.load`), translator (config.json,
///               model.safetensors, source/ and target/ vocab.json and merges.txt; `Translator.load`)
///   byte 1 % 3  0: edits, 3 bytes each (op, a, b): op % 4 = 0 sets config key a to pool value b
///               (integers at the edges, 2⁴⁰, 2⁶², Int.max, a fraction, a string, null, a list) or
///               removes it; 1 a tensor edit of model.safetensors (`TensorEdits.apply`); 2 a line
///               edit of a tokenizer file a (drop line b, duplicate it, cut the file after it,
///               append a line, swap two lines); 3 swaps a file with the same file of another kind
///               1: byte patches over file a (byte 2); 2: file a (byte 2) is replaced by the rest
///
/// Invariants: a rejected directory raises DecoderSpecError; an accepted one has a tokenizer no
/// larger than the embedding table (LM and translator: exactly its rows), and a forward pass (BERT,
/// GPT-2), a one-token generation (LM) or a translation of at most the context (translator) runs
/// — a trap in their release preconditions is a finding.
enum ModelDirectoryFuzz {
    enum Kind: Int, CaseIterable { case gpt2, bert, lm, translator }

    /// The valid directory of each kind: relative path → bytes.
    static let valid: [Kind: [String: [UInt8]]] = {
        var out: [Kind: [String: [UInt8]]] = [:]
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-modeldir-valid-\(getpid())")
        defer { try? FileManager.default.removeItem(at: root) }
        let bytes = (0..<256).map { ByteLevel.byteToScalar[$0] }.map { String($0) }
        for kind in Kind.allCases {
            let dir = root.appendingPathComponent("\(kind)")
            try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            switch kind {
            case .gpt2:
                try! DecoderOnlyModel.seeded(TransformerConfig(vocabularySize: 20, contextLength: 8, modelWidth: 8, heads: 2, layers: 2), seed: 3)
                    .save(directory: dir)
            case .bert:
                let config = TransformerConfig(vocabularySize: 12, contextLength: 8, tokenTypes: 2, modelWidth: 8, heads: 2, layers: 1,
                                               feedForwardWidth: 16, layerNormEpsilon: 1e-12, activation: .gelu)
                var model = try! EncoderModel.seeded(config, seed: 4)
                var tensors: [(name: String, shape: [Int], values: [Float])] = []
                model.visitParameters(prefix: "") { name, shape, values in tensors.append((name, shape, values)) }
                try! SafeTensorsFile.write(tensors, to: dir.appendingPathComponent("model.safetensors"))
                try! Data(config.huggingFaceJSON(schema: .bert).utf8).write(to: dir.appendingPathComponent("config.json"))
                let tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "light", "##s", "day", "night", "god", "."]
                try! Data((tokens.joined(separator: "\n") + "\n").utf8).write(to: dir.appendingPathComponent("vocab.txt"))
            case .lm:
                let tokenizer = try! BPETokenizer(tokens: bytes + ["Ġ" + "t", "h" + "e", "Ġt" + "he"], merges: [("Ġ", "t"), ("h", "e"), ("Ġt", "he")])
                let model = try! DecoderOnlyModel.seeded(TransformerConfig(vocabularySize: 259, contextLength: 8, modelWidth: 4, heads: 1, layers: 1), seed: 5)
                try! LanguageModel(model: model, tokenizer: tokenizer).save(to: dir)
            case .translator:
                let specials = ["<pad>", "<bos>", "<eos>"]
                let config = EncoderDecoderConfig(sourceVocabularySize: 260, targetVocabularySize: 259, contextLength: 8, modelWidth: 4, heads: 1,
                                                  encoderLayers: 1, decoderLayers: 1, feedForwardWidth: 8)
                try! Translator(model: EncoderDecoderModel.seeded(config, seed: 6),
                                sourceTokenizer: BPETokenizer(tokens: specials + bytes + ["he"], merges: [("h", "e")]),
                                targetTokenizer: BPETokenizer(tokens: specials + bytes, merges: [])).save(to: dir)
            }
            var files: [String: [UInt8]] = [:]
            let e = FileManager.default.enumerator(atPath: dir.path)!
            while let name = e.nextObject() as? String {
                var isDirectory: ObjCBool = false
                let url = dir.appendingPathComponent(name)
                if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue {
                    files[name] = [UInt8](try! Data(contentsOf: url))
                }
            }
            out[kind] = files
        }
        return out
    }()

    static var configPool: [Any] { [0, -1, 1, 2, 3, 4, 7, 8, 9, 16, 259, 260, 1 << 20, 1 << 40, 1 << 62, Int.max, 1.5, 1e-12, -1e-12, "x", NSNull(), true, [1, 2]] }

    /// The damaged directory for `input`: relative path → bytes.
    static func damaged(_ input: [UInt8]) -> (Kind, [String: [UInt8]]) {
        let kind = Kind(rawValue: Int(input.first ?? 0) % 4)!
        var files = valid[kind]!
        let names = files.keys.sorted()
        guard input.count >= 2 else { return (kind, files) }
        let rest = input.dropFirst(2)
        switch input[1] % 3 {
        case 0:
            let ops = Array(rest)
            var i = 0
            while i + 3 <= ops.count {
                let (op, a, b) = (ops[i], Int(ops[i + 1]), Int(ops[i + 2]))
                i += 3
                switch op % 4 {
                case 0:
                    guard let data = files["config.json"], var object = (try? JSONSerialization.jsonObject(with: Data(data))) as? [String: Any],
                          !object.isEmpty else { continue }
                    let key = object.keys.sorted()[a % object.count]
                    if b % (configPool.count + 1) == configPool.count { object.removeValue(forKey: key) } else { object[key] = configPool[b % configPool.count] }
                    if let out = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) { files["config.json"] = [UInt8](out) }
                case 1:
                    guard let data = files["model.safetensors"], let file = try? SafeTensorsFile(bytes: data) else { continue }
                    var tensors = TensorEdits.tensors(of: data)
                    var shifts: [String: (Int, Int)] = [:]
                    TensorEdits.apply(UInt8(b % 7), a, b / 7 + a, to: &tensors, shifts: &shifts, renames: { name, b in
                        [name.replacingOccurrences(of: ".0.", with: ".1."), name.replacingOccurrences(of: ".1.", with: ".2."), name + ".extra",
                         name.replacingOccurrences(of: "encoder", with: "decoder"), "transformer." + name][b % 5]
                    }, extraNames: ["h.2.ln_1.weight", "encoder.layer.1.output.dense.bias", "decoder.layers.1.fc1.bias", "lm_head.weight", "other"])
                    files["model.safetensors"] = TensorEdits.serialize(tensors, metadata: file.metadata, shifts: shifts)
                case 2:
                    let textFiles = names.filter { !$0.hasSuffix(".safetensors") && $0 != "config.json" }
                    guard !textFiles.isEmpty else { continue }
                    let name = textFiles[a % textFiles.count]
                    var lines = String(decoding: files[name]!, as: UTF8.self).components(separatedBy: "\n")
                    let j = b % max(lines.count, 1)
                    switch b % 5 {
                    case 0: if !lines.isEmpty { lines.remove(at: j) }
                    case 1: if !lines.isEmpty { lines.insert(lines[j], at: j) }
                    case 2: lines = Array(lines.prefix(j))
                    case 3: lines.append(["zz", "Ġ e", "[UNK]", "\"x\": 1", "#version: 0.2", "é"][a % 6])
                    default: if lines.count > 1 { lines.swapAt(j, (j + 1) % lines.count) }
                    }
                    files[name] = Array(lines.joined(separator: "\n").utf8)
                default:
                    let other = valid[Kind(rawValue: (kind.rawValue + 1 + b % 3) % 4)!]!
                    let name = names[a % names.count]
                    if let replacement = other[name] { files[name] = replacement }
                }
            }
        case 1:
            guard let which = rest.first else { break }
            let name = names[Int(which) % names.count]
            files[name] = TensorEdits.patch(files[name]!, with: rest.dropFirst())
        default:
            guard let which = rest.first else { break }
            files[names[Int(which) % names.count]] = Array(rest.dropFirst())
        }
        return (kind, files)
    }

    /// A scratch directory per process, rewritten for each input.
    static let scratch: URL = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-modeldir-\(getpid())")

    static func check(_ input: [UInt8]) throws {
        let (kind, files) = damaged(input)
        try? FileManager.default.removeItem(at: scratch)
        for (name, bytes) in files {
            let url = scratch.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(bytes).write(to: url)
        }
        switch kind {
        case .gpt2:
            let model = try DecoderOnlyModel.load(directory: scratch, path: .naive)
            try runs { _ = try model.forward([0, min(1, model.vocabularySize - 1)]) }
        case .bert:
            let model = try EncoderModel.load(directory: scratch, path: .naive)
            let rows = model.wordEmbedding.weight.rows
            let tokenizer = try WordPieceTokenizer.load(modelDirectory: scratch, embeddingRows: rows)
            guard tokenizer.vocabulary.tokens.count <= rows else {
                throw LibraryFuzzViolation("BERT: a vocab.txt of \(tokenizer.vocabulary.tokens.count) tokens accepted for \(rows) embedding rows")
            }
            let ids = tokenizer.encode("the light of day")
            guard ids.allSatisfy({ (0..<rows).contains($0) }) else { throw LibraryFuzzViolation("BERT: ids \(ids) outside 0..<\(rows)") }
            try runs { _ = try model.hiddenStates(Array(ids.prefix(model.config.contextLength))) }
        case .lm:
            let lm = try LanguageModel.load(directory: scratch, path: .naive)
            guard lm.tokenizer.tokens.count == lm.model.vocabularySize else {
                throw LibraryFuzzViolation("LM: \(lm.tokenizer.tokens.count) tokens for \(lm.model.vocabularySize) embedding rows")
            }
            try runs { _ = try lm.generate("the", maxNewTokens: 1) }
        case .translator:
            let t = try Translator.load(directory: scratch)
            guard t.sourceTokenizer.tokens.count == t.model.config.sourceVocabularySize,
                  t.targetTokenizer.tokens.count == t.model.config.targetVocabularySize else {
                throw LibraryFuzzViolation("translator: tokenizers of \(t.sourceTokenizer.tokens.count)/\(t.targetTokenizer.tokens.count) tokens for \(t.model.config.sourceVocabularySize)/\(t.model.config.targetVocabularySize) rows")
            }
            try runs { _ = try t.translate("the", beams: 1) }
        }
    }

    /// What a user does next with an accepted model must run: a DecoderSpecError there is fine
    /// (e.g. weights of 1e30 overflow the activations: `nonFinite`), a trap is a finding.
    static func runs(_ body: () throws -> Void) throws {
        do { try body() } catch is DecoderSpecError {}
    }
}

// MARK: training checkpoints

/// `checkpoint`: one valid training checkpoint — a 1-layer decoder (V 16, context 8, d 8, 2 heads)
/// with AdamW's moments after one update, as `TrainingCheckpoint.write` lays it out — damaged as the
/// input says, then read by `TrainingCheckpoint.read(_:into:optimizer:)` into a fresh model:
///
///   byte 0 % 3 = 0  edits, 3 bytes each (op, a, b): tensor edits (`TensorEdits.apply`: drop,
///                   reshape, rename param/ ↔ adam.m/ ↔ adam.v/ or h.0 → h.1 or to a name the model
///                   lacks, poison, duplicate, re-type, shift offsets); set a metadata field (step,
///                   optimizerStep, seed, format) to an edge-case string, remove one, or set `batches`
///   byte 0 % 3 = 1  byte patches (2-byte little-endian offset, value) over the valid file
///   byte 0 % 3 = 2  the rest of the input is the whole file
///
/// Invariants. A rejected file must raise DecoderSpecError and leave the model and the optimizer
/// bitwise as they were. An accepted file must give a step ≥ 0, the model's tensor shapes unchanged,
/// every parameter finite, AdamW's state empty or one m and one v per tensor of its count with v ≥ 0
/// — and one AdamW update and one forward pass must then run.
enum CheckpointFuzz {
    static let config = TransformerConfig(vocabularySize: 16, contextLength: 8, modelWidth: 8, heads: 2, layers: 1)

    static func freshModel() -> DecoderOnlyModel { try! DecoderOnlyModel.seeded(config, seed: 3) }

    /// The valid checkpoint: its bytes, tensors in file order and metadata.
    static let valid: (bytes: [UInt8], tensors: [TensorEdits.Tensor], metadata: [String: String]) = {
        var model = try! DecoderOnlyModel.seeded(config, seed: 7)
        var optimizer = try! AdamW()
        var gradient = model.zeroGradient()
        var rng = SeededRNG(seed: 11)
        gradient.setFlattenedParameters(gradient.flattenedParameters().map { _ in rng.uniform(-1, 1) })
        optimizer.update(&model, gradient: gradient, learningRate: 1e-3)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-checkpoint-\(getpid()).safetensors")
        try! TrainingCheckpoint.write(model, optimizer: optimizer, step: 1, seed: 5, to: url)
        let bytes = [UInt8](try! Data(contentsOf: url))
        try? FileManager.default.removeItem(at: url)
        return (bytes, TensorEdits.tensors(of: bytes), try! SafeTensorsFile(bytes: bytes).metadata)
    }()

    static func checkpointRenames(_ name: String, _ b: Int) -> String {
        switch b % 5 {
        case 0: return name.hasPrefix("param/") ? "adam.m/" + name.dropFirst(6) : "param/" + name.drop { $0 != "/" }.dropFirst()
        case 1: return name.replacingOccurrences(of: "adam.m/", with: "adam.v/")
        case 2: return name.replacingOccurrences(of: "adam.v/", with: "adam.m/")
        case 3: return name.replacingOccurrences(of: "h.0.", with: "h.1.")
        default: return name + ".extra"
        }
    }
    static let checkpointExtraNames = ["param/h.9.ln_1.weight", "adam.m/wte.weight.x", "param/", "adam.v/ln_f.bias", "other"]

    /// The metadata values of the committed seeds (fuzz/checkpoint/seeds): an edit picks one by index.
    static let metadataPool = ["-1", "0", "1", "2", "", "abc", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
                               "1e3", " 1", "01", "+1", "0x10", "decoder-spec-training-checkpoint-2"]

    /// `bytes` (a valid checkpoint with `tensors` and `metadata`) damaged by `input`. Edit ops
    /// (op % 9): 0 drop, 1 reshape, 2 rename, 3 poison (`TensorEdits.apply`); 4 set metadata field
    /// keys[a] to pool[b]; 5 remove field keys[a] (b even) or set `batches` to pool[b]; 6 duplicate,
    /// 7 re-type, 8 shift offsets (`TensorEdits.apply`) — the numbering of the committed seeds.
    static func damage(_ input: [UInt8], bytes: [UInt8], tensors valid: [TensorEdits.Tensor], metadata validMetadata: [String: String],
                       keys: [String], pool: [String]) -> [UInt8] {
        guard let mode = input.first else { return bytes }
        let rest = input.dropFirst()
        switch mode % 3 {
        case 0:
            var tensors = valid, metadata = validMetadata
            var shifts: [String: (Int, Int)] = [:]
            let ops = Array(rest)
            var i = 0
            while i + 3 <= ops.count, !tensors.isEmpty {
                let (op, a, b) = (ops[i], Int(ops[i + 1]), Int(ops[i + 2]))
                i += 3
                switch op % 9 {
                case 4: metadata[keys[a % keys.count]] = pool[b % pool.count]
                case 5:
                    if b % 2 == 0 { metadata.removeValue(forKey: keys[a % keys.count]) } else { metadata["batches"] = pool[b % pool.count] }
                default:
                    let edit: [UInt8: UInt8] = [0: 0, 1: 1, 2: 2, 3: 3, 6: 4, 7: 5, 8: 6]
                    TensorEdits.apply(edit[op % 9]!, a, b, to: &tensors, shifts: &shifts, renames: checkpointRenames, extraNames: checkpointExtraNames)
                }
            }
            return TensorEdits.serialize(tensors, metadata: metadata, shifts: shifts)
        case 1: return TensorEdits.patch(bytes, with: rest)
        default: return Array(rest)
        }
    }

    static func check(_ input: [UInt8]) throws {
        let bytes = damage(input, bytes: valid.bytes, tensors: valid.tensors, metadata: valid.metadata,
                           keys: ["step", "optimizerStep", "seed", "format"], pool: metadataPool)
        var model = freshModel()
        var optimizer = try AdamW()
        let before = model.flattenedParameters()
        let shapes = model.parameterShapes()
        let step: Int
        do {
            let file = try SafeTensorsFile(bytes: bytes, path: "<fuzz checkpoint>")
            step = try TrainingCheckpoint.read(file, into: &model, optimizer: &optimizer)
        } catch is DecoderSpecError {
            guard model.flattenedParameters().elementsEqual(before, by: { $0.bitPattern == $1.bitPattern }) else {
                throw LibraryFuzzViolation("a rejected checkpoint changed the model")
            }
            guard optimizer.step == 0, optimizer.m.isEmpty, optimizer.v.isEmpty else {
                throw LibraryFuzzViolation("a rejected checkpoint changed the optimizer (step \(optimizer.step), \(optimizer.m.count) m, \(optimizer.v.count) v)")
            }
            return
        }
        guard step >= 0 else { throw LibraryFuzzViolation("accepted with step \(step)") }
        let after = model.parameterShapes()
        guard after.count == shapes.count, zip(after, shapes).allSatisfy({ $0.name == $1.name && $0.shape == $1.shape }) else {
            throw LibraryFuzzViolation("accepted, but the model's tensors changed shape")
        }
        guard model.flattenedParameters().allSatisfy(\.isFinite) else { throw LibraryFuzzViolation("accepted a non-finite parameter") }
        if !optimizer.m.isEmpty || !optimizer.v.isEmpty {
            var counts: [Int] = []
            model.visitParameters(prefix: "") { _, _, v in counts.append(v.count) }
            guard optimizer.m.map(\.count) == counts, optimizer.v.map(\.count) == counts else {
                throw LibraryFuzzViolation("accepted AdamW moments of other counts than the tensors")
            }
            guard optimizer.v.allSatisfy({ $0.allSatisfy { $0 >= 0 } }) else { throw LibraryFuzzViolation("accepted a negative or NaN second moment") }
            guard optimizer.step >= 0 else { throw LibraryFuzzViolation("accepted an optimizer step \(optimizer.step)") }
        }
        // What the trainer does next must run: one update and one forward (their preconditions trap otherwise).
        optimizer.update(&model, gradient: model.zeroGradient(), learningRate: 1e-3)
        do { _ = try model.forward([1, 2, 3]) } catch is DecoderSpecError {}
    }
}

// MARK: the trainer's resume path

/// `resume`: the checkpoint of a real run — `Trainer.train` of a 1-layer decoder (V 16, d 8) as a
/// language model on 8 windows, batches of 2, validation every 2 steps, stopped after step 3 of 8,
/// so its metadata holds the batch plan, the epoch and the early-stopping record — damaged as in
/// `checkpoint` (the metadata edits reach every field: step, optimizerStep, seed, format, batches,
/// epoch, validation.best/bestStep/sinceBest/stoppedEarly), then resumed by `Trainer.train` with
/// the same task and options. Invariants: a rejected resume raises DecoderSpecError and leaves the
/// checkpoint file byte-identical (nothing written before the read is validated); an accepted one
/// ends at step 8 (or stopped early, as its record says), with finite weights, and writes a
/// checkpoint at its final step; no input makes it hang (libFuzzer's -timeout).
enum ResumeFuzz {
    static var task: LanguageModelTask { LanguageModelTask(windows: [[1, 2, 3, 4, 5], [2, 3, 4, 5, 6], [7, 8, 9], [3, 4, 5, 6], [9, 10, 11, 12], [4, 3, 2], [5, 6, 7, 8, 9, 10], [11, 12, 13]],
                                        validation: [[1, 2, 3], [4, 5, 6, 7]], path: .naive) }

    static func options(checkpoint: URL) -> TrainingOptions {
        var o = TrainingOptions()
        (o.epochs, o.batchSize, o.seed, o.validateEvery, o.patience, o.checkpoint, o.learningRate) = (2, 2, 5, 2, 3, checkpoint, 1e-3)
        // A checkpoint at the end only: an error during the resumed steps (a loss overflowing on
        // accepted weights of 1e30) then leaves the file as it was read.
        return o
    }

    static func freshModel() -> DecoderOnlyModel { try! DecoderOnlyModel.seeded(CheckpointFuzz.config, seed: 3) }

    static let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-resume-\(getpid())")

    static let valid: (bytes: [UInt8], tensors: [TensorEdits.Tensor], metadata: [String: String]) = {
        try? FileManager.default.removeItem(at: scratch)
        try! FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        let url = scratch.appendingPathComponent("valid.ckpt")
        var model = freshModel()
        var o = options(checkpoint: url)
        o.stopAfterStep = 3
        _ = try! Trainer.train(&model, task: task, options: o, progress: { _ in })
        let bytes = [UInt8](try! Data(contentsOf: url))
        return (bytes, TensorEdits.tensors(of: bytes), try! SafeTensorsFile(bytes: bytes).metadata)
    }()

    static func check(_ input: [UInt8]) throws {
        let bytes = CheckpointFuzz.damage(input, bytes: valid.bytes, tensors: valid.tensors, metadata: valid.metadata,
                                          keys: ["step", "optimizerStep", "seed", "format", "batches", "epoch", "validation.best",
                                                 "validation.bestStep", "validation.sinceBest", "validation.stoppedEarly"], pool: TensorEdits.metadataPool)
        try? FileManager.default.removeItem(at: scratch)
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        let url = scratch.appendingPathComponent("run.ckpt")
        try Data(bytes).write(to: url)
        var model = freshModel()
        let summary: TrainingSummary
        do {
            summary = try Trainer.train(&model, task: task, options: options(checkpoint: url), progress: { _ in })
        } catch is DecoderSpecError {
            guard [UInt8](try FileBytes.read(url)) == bytes else { throw LibraryFuzzViolation("a rejected resume rewrote the checkpoint") }
            return
        }
        guard summary.finalStep == summary.totalSteps || summary.ending == .earlyStopping else {
            throw LibraryFuzzViolation("an accepted resume ended at step \(summary.finalStep) of \(summary.totalSteps) (\(summary.ending))")
        }
        guard model.flattenedParameters().allSatisfy(\.isFinite) else { throw LibraryFuzzViolation("non-finite weights after an accepted resume") }
        let written = try SafeTensorsFile(bytes: [UInt8](try FileBytes.read(url)))
        guard written.metadata["step"] == String(summary.finalStep) else {
            throw LibraryFuzzViolation("the final checkpoint says step \(written.metadata["step"] ?? "-"), the run ended at \(summary.finalStep)")
        }
    }
}

#if !DECODERSPEC_FUZZ
/// Replays every committed input of the three targets (fuzz/<target>/seeds and regressions)
/// through its harness in-process: accepted with the invariants holding, or rejected with a
/// DecoderSpecError — never a violation, a trap or another error type.
@Suite("Fuzz regression inputs of the checkpoint, model-directory and resume targets", .serialized)
struct LibraryFuzzRegressionSpecs {
    @Test("every target has committed seeds", arguments: LibraryFuzzTarget.allCases)
    func seedsExist(_ target: LibraryFuzzTarget) {
        #expect(!FuzzRegressionSpecs.inputs(named: target.rawValue).isEmpty, "no inputs under fuzz/\(target.rawValue)")
    }

    @Test("each committed input is accepted with the invariants holding, or rejected with DecoderSpecError", arguments: LibraryFuzzTarget.allCases)
    func replay(_ target: LibraryFuzzTarget) throws {
        for url in FuzzRegressionSpecs.inputs(named: target.rawValue) {
            do {
                try target.run(Array(try FileBytes.read(url)))
            } catch is DecoderSpecError {
            } catch {
                Issue.record("\(target.rawValue) \(url.lastPathComponent): \(error)")
            }
        }
    }
}
#endif
