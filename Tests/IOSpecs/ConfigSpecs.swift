import DecoderSpec
import Foundation
import Testing

@Suite("IO: Hugging Face config.json")
struct ConfigSpecs {
    // The MiniLM config as shipped (keys copied from the model's config.json).
    static let miniLM = """
    {"_name_or_path": "nreimers/MiniLM-L6-H384-uncased", "architectures": ["BertModel"],
     "attention_probs_dropout_prob": 0.1, "gradient_checkpointing": false, "hidden_act": "gelu",
     "hidden_dropout_prob": 0.1, "hidden_size": 384, "initializer_range": 0.02, "intermediate_size": 1536,
     "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert", "num_attention_heads": 12,
     "num_hidden_layers": 6, "pad_token_id": 0, "position_embedding_type": "absolute",
     "transformers_version": "4.8.2", "type_vocab_size": 2, "use_cache": true, "vocab_size": 30522}
    """
    // GPT-2 small's config (the keys that matter, plus a few of the many it has).
    static let gpt2 = """
    {"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1,
     "bos_token_id": 50256, "embd_pdrop": 0.1, "eos_token_id": 50256, "layer_norm_epsilon": 1e-05,
     "model_type": "gpt2", "n_ctx": 1024, "n_embd": 768, "n_head": 12, "n_inner": null, "n_layer": 12,
     "n_positions": 1024, "vocab_size": 50257}
    """

    func bert(_ text: String) throws -> (config: TransformerConfig, ignoredKeys: [String]) {
        try TransformerConfig.huggingFace(json: Array(text.utf8), schema: .bert, path: "config.json")
    }
    func gpt(_ text: String) throws -> (config: TransformerConfig, ignoredKeys: [String]) {
        try TransformerConfig.huggingFace(json: Array(text.utf8), schema: .gpt2, path: "config.json")
    }

    /// Replaces `"key": value` in the MiniLM config (or removes the key when `value` is nil).
    func editedMiniLM(_ key: String, _ value: String?) -> String {
        let pattern = "\"\(key)\": [^,}]+"
        let regex = try! NSRegularExpression(pattern: pattern)
        let range = NSRange(ConfigSpecs.miniLM.startIndex..., in: ConfigSpecs.miniLM)
        let replacement = value.map { "\"\(key)\": \($0)" } ?? "\"removed_\(key)\": 0"
        return regex.stringByReplacingMatches(in: ConfigSpecs.miniLM, range: range, withTemplate: NSRegularExpression.escapedTemplate(for: replacement))
    }

    @Test("MiniLM's BERT config reads into TransformerConfig (= the library's MiniLM preset); unused keys are listed, not rejected")
    func bertConfig() throws {
        let (c, ignored) = try bert(ConfigSpecs.miniLM)
        #expect(c.modelWidth == 384 && c.heads == 12 && c.layers == 6)
        #expect(c.feedForwardWidth == 1536 && c.contextLength == 512 && c.vocabularySize == 30522)
        #expect(c.tokenTypes == 2 && c.layerNormEpsilon == 1e-12 && c.activation == .gelu)
        #expect(c == .miniLM)
        #expect(ignored.contains("hidden_dropout_prob") && ignored.contains("architectures"))
        #expect(!ignored.contains("hidden_size") && !ignored.contains("model_type"))
    }

    @Test("the fetched MiniLM config.json reads", .enabled(if: RealData.hasMiniLM, Comment(rawValue: RealData.fetchHint)))
    func realBertConfig() throws {
        let c = try TransformerConfig.read(huggingFace: RealData.miniLM.appendingPathComponent("config.json"), schema: .bert)
        #expect(c.config == TransformerConfig.miniLM)
    }

    @Test("GPT-2's config reads; n_inner null means 4·n_embd; gelu_new is the tanh GELU")
    func gpt2Config() throws {
        let (c, ignored) = try gpt(ConfigSpecs.gpt2)
        #expect(c.modelWidth == 768 && c.heads == 12 && c.layers == 12 && c.contextLength == 1024 && c.vocabularySize == 50257)
        #expect(c.feedForwardWidth == 3072 && c.layerNormEpsilon == 1e-5 && c.activation == .geluTanh && c.tokenTypes == 0)
        #expect(c == .gpt2Small)
        #expect(ignored.contains("n_ctx"))
    }

    @Test("defaults: absent optional keys take transformers' defaults")
    func defaults() throws {
        let c = try gpt(#"{"n_embd": 8, "n_head": 2, "n_layer": 1, "n_positions": 16, "vocab_size": 10}"#).config
        #expect(c.layerNormEpsilon == 1e-5 && c.activation == .geluTanh && c.feedForwardWidth == 32)
        #expect(try bert(editedMiniLM("hidden_act", nil)).config.activation == .gelu)
        #expect(try bert(editedMiniLM("type_vocab_size", nil)).config.tokenTypes == 2)
        #expect(try bert(editedMiniLM("layer_norm_eps", nil)).config.layerNormEpsilon == 1e-12)
    }

    @Test("a config written for a schema reads back to the same config, for every activation",
          arguments: Activation.Function.allCases)
    func writeThenRead(activation: Activation.Function) throws {
        let gpt2 = TransformerConfig(vocabularySize: 61, contextLength: 40, modelWidth: 12, heads: 3, layers: 2, feedForwardWidth: 20,
                                     layerNormEpsilon: 1e-5, activation: activation)
        let gpt2Back = try gpt(gpt2.huggingFaceJSON(schema: .gpt2))
        #expect(gpt2Back.config == gpt2 && gpt2Back.ignoredKeys.isEmpty)
        var bertConfig = TransformerConfig.miniLM
        bertConfig.activation = activation
        let bertBack = try bert(bertConfig.huggingFaceJSON(schema: .bert))
        #expect(bertBack.config == bertConfig && bertBack.ignoredKeys.isEmpty)
    }

    @Test("missing, ill-typed and out-of-domain keys are errors naming the file and the key",
          arguments: [
            ("hidden_size", nil, "required key is missing"),
            ("hidden_size", "\"384\"", "must be an integer, found a string"),
            ("hidden_size", "384.0", "must be an integer, found a number (384.0)"),
            ("num_hidden_layers", "0", "must be positive, found 0"),
            ("num_attention_heads", "5", "hidden_size 384 is not divisible by num_attention_heads 5"),
            ("layer_norm_eps", "\"1e-12\"", "must be a number"),
            ("layer_norm_eps", "-1e-12", "must be a positive finite number"),
            ("layer_norm_eps", "1e-60", "1e-60 is not a positive finite Float"),
            ("layer_norm_eps", "1e60", "1e+60 is not a positive finite Float"),
            ("hidden_act", "\"swishy\"", "unknown activation \"swishy\" (accepted: gelu, gelu_fast, gelu_new, gelu_pytorch_tanh, relu)"),
            ("hidden_act", "7", "must be a string"),
            ("model_type", "\"gpt2\"", "expected \"bert\""),
          ] as [(String, String?, String)])
    func badKeys(key: String, value: String?, message: String) {
        do {
            _ = try bert(editedMiniLM(key, value))
            Issue.record("expected an error for \(key) = \(value ?? "missing")")
        } catch let e as DecoderSpecError {
            #expect(e.description.contains("config.json: key \"\(key)\""), "\(e)")
            #expect(e.description.contains(message), "\(e)")
        } catch { Issue.record("unexpected \(error)") }
    }

    @Test("a file that is not a JSON object, is invalid JSON, repeats a key, or is absent gives a typed error")
    func badFiles() {
        #expect(throws: DecoderSpecError.self) { try bert("[1, 2]") }
        #expect(throws: DecoderSpecError.self) { try bert("{\"hidden_size\": 384,") }
        #expect(throws: DecoderSpecError.self) { try bert(ConfigSpecs.miniLM.replacingOccurrences(of: "{\"_name", with: "{\"vocab_size\": 2, \"_name")) }
        #expect(throws: DecoderSpecError.self) { try TransformerConfig.huggingFace(json: [], schema: .gpt2) }
        #expect(throws: DecoderSpecError.self) { try TransformerConfig.read(huggingFace: URL(fileURLWithPath: "/nonexistent/config.json"), schema: .bert) }
        #expect(throws: DecoderSpecError.self) { try gpt(ConfigSpecs.gpt2.replacingOccurrences(of: "\"n_head\": 12", with: "\"n_head\": 7")) }
    }
}
