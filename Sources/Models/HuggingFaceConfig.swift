import Foundation
import IO
import Kernels
import TensorCore

/// How one Hugging Face architecture's `config.json` names the sizes of a `TransformerConfig`, and
/// transformers' defaults for the keys it may omit. Every other key (dropout rates, architectures,
/// token ids, versions …) does not change the forward pass: it is ignored and listed, not rejected.
/// See docs/io.md ("Hugging Face configs").
public struct HuggingFaceSchema: Sendable {
    /// The `model_type` a file must name when it names one.
    public let modelType: String
    /// Keys of the required positive integers.
    public let vocabularySize, contextLength, modelWidth, heads, layers: String
    /// The FFN width's key; with `feedForwardMultiple`, absent or null means that multiple of d_model.
    public let feedForwardWidth: String
    public let feedForwardMultiple: Int?
    /// The token-type count's key and default; `nil` for an architecture without token types.
    public let tokenTypes: (key: String, default: Int)?
    public let layerNormEpsilon: (key: String, default: Double)
    public let activation: (key: String, default: String)

    /// BERT (transformers' `BertConfig`): e.g. all-MiniLM-L6-v2.
    public static let bert = HuggingFaceSchema(
        modelType: "bert", vocabularySize: "vocab_size", contextLength: "max_position_embeddings", modelWidth: "hidden_size",
        heads: "num_attention_heads", layers: "num_hidden_layers", feedForwardWidth: "intermediate_size", feedForwardMultiple: nil,
        tokenTypes: ("type_vocab_size", 2), layerNormEpsilon: ("layer_norm_eps", 1e-12), activation: ("hidden_act", "gelu"))

    /// GPT-2 (transformers' `GPT2Config`): `n_inner` null means 4·n_embd.
    public static let gpt2 = HuggingFaceSchema(
        modelType: "gpt2", vocabularySize: "vocab_size", contextLength: "n_positions", modelWidth: "n_embd",
        heads: "n_head", layers: "n_layer", feedForwardWidth: "n_inner", feedForwardMultiple: 4,
        tokenTypes: nil, layerNormEpsilon: ("layer_norm_epsilon", 1e-5), activation: ("activation_function", "gelu_new"))

    /// The keys that must be present.
    public var requiredKeys: [String] {
        [modelWidth, heads, layers] + (feedForwardMultiple == nil ? [feedForwardWidth] : []) + [contextLength, vocabularySize]
    }

    /// This suite's own key for a position scheme other than the learned table (absent: learned, as
    /// in every Hugging Face BERT and GPT-2 file; transformers ignores it).
    public static let positionEncodingKey = "position_encoding"

    /// Every key this schema reads.
    public var keys: [String] {
        [modelWidth, heads, layers, feedForwardWidth, contextLength, vocabularySize, layerNormEpsilon.key, activation.key, "model_type",
         Self.positionEncodingKey] + (tokenTypes.map { [$0.key] } ?? [])
    }

    /// Activation spellings → the library's functions. `gelu_new`, `gelu_pytorch_tanh` and `gelu_fast`
    /// are the same tanh formula written three ways in transformers; `gelu` is the exact erf form.
    public static let activationNames: [String: Activation.Function] = [
        "relu": .relu, "gelu": .gelu, "gelu_new": .geluTanh, "gelu_pytorch_tanh": .geluTanh, "gelu_fast": .geluTanh,
    ]

    /// The spelling written for `function` (GPT-2's own name for the tanh GELU).
    static func activationName(_ function: Activation.Function) -> String {
        switch function {
        case .relu: "relu"
        case .gelu: "gelu"
        case .geluTanh: "gelu_new"
        }
    }
}

extension TransformerConfig {
    /// Parses a Hugging Face `config.json` named by `schema`; errors name `path` and the key.
    /// Required keys are never defaulted (no silent 768); the width must be divisible by the head count.
    /// - Returns: the config and the file's keys this reader does not use.
    public static func huggingFace(json bytes: [UInt8], schema: HuggingFaceSchema,
                                   path: String = "<config>") throws -> (config: TransformerConfig, ignoredKeys: [String]) {
        let r = try ConfigReader(bytes: bytes, path: path)
        try r.checkModelType([schema.modelType])
        let width = try r.positiveInt(schema.modelWidth)
        let heads = try r.positiveInt(schema.heads)
        let layers = try r.positiveInt(schema.layers)
        let feedForward = try schema.feedForwardMultiple.map { multiple in
            if let explicit = try r.optionalPositiveInt(schema.feedForwardWidth) { return explicit }
            // The default multiple of a damaged width must not overflow (a trap in release builds too).
            let (product, overflow) = multiple.multipliedReportingOverflow(by: width)
            guard !overflow else { throw r.error(schema.modelWidth, "\(width): the default \(schema.feedForwardWidth) = \(multiple)·\(schema.modelWidth) overflows Int") }
            return product
        } ?? r.positiveInt(schema.feedForwardWidth)
        let context = try r.positiveInt(schema.contextLength)
        let vocabulary = try r.positiveInt(schema.vocabularySize)
        let tokenTypes = try schema.tokenTypes.map { try r.optionalPositiveInt($0.key) ?? $0.default } ?? 0
        let epsilonKey = schema.layerNormEpsilon.key
        let epsilon = try r.positiveDouble(epsilonKey, default: schema.layerNormEpsilon.default)
        guard Float(epsilon).isFinite, Float(epsilon) > 0 else { throw r.error(epsilonKey, "\(epsilon) is not a positive finite Float") }
        let activationKey = schema.activation.key
        let activationName = try r.string(activationKey, default: schema.activation.default)
        guard let activation = HuggingFaceSchema.activationNames[activationName] else {
            let accepted = HuggingFaceSchema.activationNames.keys.sorted().joined(separator: ", ")
            throw r.error(activationKey, "unknown activation \"\(activationName)\" (accepted: \(accepted))")
        }
        let schemeKey = HuggingFaceSchema.positionEncodingKey
        let schemeName = try r.string(schemeKey, default: PositionEncodingScheme.learned.rawValue)
        guard let scheme = PositionEncodingScheme(rawValue: schemeName) else {
            let accepted = PositionEncodingScheme.allCases.map(\.rawValue).joined(separator: ", ")
            throw r.error(schemeKey, "unknown position encoding \"\(schemeName)\" (accepted: \(accepted))")
        }
        try r.requireDivisible(schema.modelWidth, width, by: schema.heads, heads)
        let config = TransformerConfig(vocabularySize: vocabulary, contextLength: context, tokenTypes: tokenTypes, modelWidth: width,
                                       heads: heads, layers: layers, feedForwardWidth: feedForward,
                                       layerNormEpsilon: Float(epsilon), activation: activation, positionEncoding: scheme)
        return (config, r.ignored(schema.keys))
    }

    /// Reads `config.json` at `url` (see `huggingFace(json:schema:path:)`).
    public static func read(huggingFace url: URL, schema: HuggingFaceSchema) throws -> (config: TransformerConfig, ignoredKeys: [String]) {
        try huggingFace(json: ConfigReader.load(url), schema: schema, path: url.path)
    }

    /// This config as `schema`'s `config.json`; `huggingFace(json:schema:)` reads it back to `self`.
    public func huggingFaceJSON(schema: HuggingFaceSchema) -> String {
        var fields = [("model_type", "\"\(schema.modelType)\""), (schema.vocabularySize, "\(vocabularySize)"),
                      (schema.contextLength, "\(contextLength)"), (schema.modelWidth, "\(modelWidth)"), (schema.heads, "\(heads)"),
                      (schema.layers, "\(layers)"), (schema.feedForwardWidth, "\(feedForwardWidth)"),
                      (schema.layerNormEpsilon.key, "\(layerNormEpsilon)"),
                      (schema.activation.key, "\"\(HuggingFaceSchema.activationName(activation))\"")]
        if let key = schema.tokenTypes?.key { fields.append((key, "\(tokenTypes)")) }
        if positionEncoding != .learned { fields.append((HuggingFaceSchema.positionEncodingKey, "\"\(positionEncoding.rawValue)\"")) }
        return "{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}\n"
    }
}
