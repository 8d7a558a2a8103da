import DecoderSpec
import Foundation
import SpecSupport
import GSLOracle
import Testing

/// Seeded byte mutations of valid files: every reader must either accept the input or throw
/// `DecoderSpecError` — a crash (trap, out-of-bounds read) would kill the test process. Accepted
/// safetensors files must also serve every tensor. (The libFuzzer runs of scripts/fuzz explore far
/// more; this keeps a fast, deterministic guard in `swift test`.)
@Suite("IO: seeded mutations never crash a reader")
struct MutationSpecs {
    /// `count` mutants of `seed`: 1–4 random byte flips, insertions, deletions or truncations each.
    static func mutants(of seed: [UInt8], count: Int, rngSeed: UInt) -> [[UInt8]] {
        let rng = GSLRandom(seed: rngSeed)
        return (0..<count).map { _ in
            var b = seed
            for _ in 0..<(1 + rng.int(below: 4)) {
                switch rng.int(below: 4) {
                case 0 where !b.isEmpty: b[rng.int(below: b.count)] = UInt8(rng.int(below: 256))
                case 1: b.insert(UInt8(rng.int(below: 256)), at: rng.int(below: b.count + 1))
                case 2 where !b.isEmpty: b.remove(at: rng.int(below: b.count))
                case 3 where !b.isEmpty: b = Array(b.prefix(rng.int(below: b.count)))
                default: break
                }
            }
            return b
        }
    }

    func expectOnlyTypedErrors(_ what: String, _ inputs: [[UInt8]], _ body: ([UInt8]) throws -> Void) -> Int {
        var accepted = 0
        for (i, input) in inputs.enumerated() {
            do {
                try body(input)
                accepted += 1
            } catch is DecoderSpecError {
            } catch {
                Issue.record("\(what) mutant \(i) threw a non-DecoderSpec error: \(error)")
            }
        }
        return accepted
    }

    @Test("safetensors: 3,000 mutants (seed 5)")
    func safetensors() throws {
        let valid = Array(try SafeTensorsFile.serialize([
            (name: "a", shape: [2, 3], values: [1, 2, 3, 4, 5, 6]), (name: "b.weight", shape: [4], values: [0.5, -1, 2, 8]),
        ], metadata: ["format": "pt"]))
        let accepted = expectOnlyTypedErrors("safetensors", Self.mutants(of: valid, count: 3000, rngSeed: 5)) { bytes in
            let f = try SafeTensorsFile(bytes: bytes)
            for n in f.names { _ = try f.floats(n) }
        }
        #expect(accepted > 0 && accepted < 3000, "the mutants should include accepted (data-only) and rejected files")
    }

    @Test("CoNLL corpus and prediction readers, configs, vocab files: 2,000 mutants each (seed 6)")
    func textFormats() {
        let conll = Array("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n".utf8)
        _ = expectOnlyTypedErrors("CoNLL", Self.mutants(of: conll, count: 2000, rngSeed: 6)) { _ = try CoNLLCorpus(bytes: $0) }
        let predictions = Array("EU B-ORG B-ORG\nrejects O B-MISC\n\nPeter B-PER O\n".utf8)
        _ = expectOnlyTypedErrors("predictions", Self.mutants(of: predictions, count: 2000, rngSeed: 6)) { _ = try CoNLLPredictions(bytes: $0) }
        let config = Array(#"{"hidden_size": 8, "num_attention_heads": 2, "num_hidden_layers": 1, "intermediate_size": 16, "max_position_embeddings": 4, "vocab_size": 10, "hidden_act": "gelu_new", "layer_norm_eps": 1e-12}"#.utf8)
        _ = expectOnlyTypedErrors("config", Self.mutants(of: config, count: 2000, rngSeed: 6)) { _ = try TransformerConfig.huggingFace(json: $0, schema: .bert) }
        let vocab = Array("[PAD]\n[UNK]\n[CLS]\n[SEP]\nthe\n##s\n".utf8)
        _ = expectOnlyTypedErrors("vocab", Self.mutants(of: vocab, count: 2000, rngSeed: 6)) { _ = try WordPieceVocabulary(contentsOf: $0) }
        let merges = Array("#version: 0.2\nh e\nt he\nĠ c\n".utf8)
        _ = expectOnlyTypedErrors("merges", Self.mutants(of: merges, count: 2000, rngSeed: 6)) { _ = try BPETokenizer.parseMerges($0) }
    }

    @Test("SQLite: 2,000 mutants of the hand-built Bible database (seed 8)")
    func sqlite() {
        _ = expectOnlyTypedErrors("sqlite", Self.mutants(of: SQLiteFixture.bible(), count: 2000, rngSeed: 8)) {
            _ = try SQLiteDatabase(data: Data($0)).rows(ofTable: "bible")
        }
    }

    @Test("tokenizers accept any bytes (decoded with U+FFFD replacement) and the pre-tokenizer loses nothing (seed 7)")
    func tokenizers() throws {
        let wp = try WordPieceTokenizer(vocabulary: try WordPieceVocabulary(tokens: ["[UNK]", "[CLS]", "[SEP]", "a", "##a", "中"]))
        for bytes in Self.mutants(of: Array("aa 中a, Café!\t\u{0}".utf8), count: 2000, rngSeed: 7) {
            let s = String(decoding: bytes, as: UTF8.self)
            let ids = wp.encode(s)
            #expect(ids.first == 1 && ids.last == 2)
            #expect(ByteLevel.preTokenize(s).joined() == s)
        }
    }
}
