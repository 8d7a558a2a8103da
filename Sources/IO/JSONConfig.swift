import Foundation
import TensorCore

/// The activation functions a Hugging Face config may name, mapped to the three the library
/// implements. Unknown names are an error listing the accepted ones. See docs/io.md.
public enum HFActivation: String, CaseIterable, Sendable {
    /// max(0, x).
    case relu
    /// Exact GELU: x · Φ(x) = x · ½(1 + erf(x/√2)).
    case gelu
    /// tanh approximation: ½x(1 + tanh(√(2/π)(x + 0.044715x³))).
    case geluTanh

    /// Config spelling → activation. `gelu_new`, `gelu_pytorch_tanh` and `gelu_fast` are the same
    /// tanh formula written three ways in transformers; `gelu` is the exact erf form.
    public static let acceptedNames: [String: HFActivation] = [
        "relu": .relu, "gelu": .gelu, "gelu_new": .geluTanh, "gelu_pytorch_tanh": .geluTanh, "gelu_fast": .geluTanh,
    ]

    /// Parses a config's activation name; unknown names throw naming the key and the accepted names.
    public static func parse(_ name: String, key: String, path: String) throws -> HFActivation {
        guard let a = acceptedNames[name] else {
            throw DecoderSpecError.malformedFile(
                path: path, location: "key \"\(key)\"",
                reason: "unknown activation \"\(name)\" (accepted: \(acceptedNames.keys.sorted().joined(separator: ", ")))")
        }
        return a
    }
}

/// Reads typed values out of a parsed config object, with errors naming the file and key.
struct ConfigReader {
    let path: String
    let members: [String: JSONValue]
    let keys: [String]

    init(bytes: [UInt8], path: String) throws {
        let value = try JSONValue.parse(bytes, path: path)
        guard case .object(let keys, let members) = value else {
            throw DecoderSpecError.malformedFile(path: path, location: "byte 0", reason: "a config must be a JSON object, found \(value.kindName)")
        }
        self.path = path
        self.members = members
        self.keys = keys
    }

    static func load(_ url: URL) throws -> [UInt8] {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw DecoderSpecError.missingFile(path: url.path, hint: "A model directory needs its config.json; run `make fetch-data` to fetch the real models into data/pkgs.")
        }
        return Array(try Data(contentsOf: url))
    }

    func error(_ key: String, _ reason: String) -> DecoderSpecError {
        .malformedFile(path: path, location: "key \"\(key)\"", reason: reason)
    }

    /// A required positive integer.
    func positiveInt(_ key: String) throws -> Int {
        guard let v = members[key] else { throw error(key, "required key is missing") }
        guard let i = v.exactInteger else { throw error(key, "must be an integer, found \(v.kindName)") }
        guard i > 0 else { throw error(key, "must be positive, found \(i)") }
        return i
    }

    /// An optional positive integer; JSON null counts as absent.
    func optionalPositiveInt(_ key: String) throws -> Int? {
        guard let v = members[key], v != .null else { return nil }
        return try positiveInt(key)
    }

    /// A positive finite number, `fallback` when absent.
    func positiveDouble(_ key: String, default fallback: Double) throws -> Double {
        guard let v = members[key] else { return fallback }
        guard let d = v.double else { throw error(key, "must be a number, found \(v.kindName)") }
        guard d.isFinite, d > 0 else { throw error(key, "must be a positive finite number, found \(d)") }
        return d
    }

    func string(_ key: String, default fallback: String) throws -> String {
        guard let v = members[key] else { return fallback }
        guard case .string(let s) = v else { throw error(key, "must be a string, found \(v.kindName)") }
        return s
    }

    /// The activation named at `key` (`fallback` when absent); unknown names throw listing the accepted ones.
    func activation(_ key: String, default fallback: String) throws -> HFActivation {
        try HFActivation.parse(try string(key, default: fallback), key: key, path: path)
    }

    /// Each attention head takes `width / heads` columns, so `heads` must divide `width`.
    func requireDivisible(_ widthKey: String, _ width: Int, by headsKey: String, _ heads: Int) throws {
        guard width % heads == 0 else { throw error(headsKey, "\(widthKey) \(width) is not divisible by \(headsKey) \(heads)") }
    }

    func checkModelType(_ accepted: [String]) throws {
        guard let v = members["model_type"] else { return }
        guard case .string(let s) = v, accepted.contains(s) else {
            throw error("model_type", "\(v.kindName) is not a config for this model (expected \(accepted.map { "\"\($0)\"" }.joined(separator: " or ")))")
        }
    }

    func ignored(_ used: [String]) -> [String] { keys.filter { !used.contains($0) } }
}

/// A Hugging Face BERT `config.json`, typed.
///
/// Required keys (positive integers): `hidden_size`, `num_attention_heads`, `num_hidden_layers`,
/// `intermediate_size`, `max_position_embeddings`, `vocab_size`. Optional with transformers'
/// defaults: `type_vocab_size` (2), `layer_norm_eps` (1e-12), `hidden_act` ("gelu").
/// `model_type`, when present, must be "bert". Every other key (dropout rates, architectures,
/// versions …) is ignored and listed in `ignoredKeys`: HF configs carry many keys that do not
/// change the forward pass. `hidden_size` must be divisible by `num_attention_heads`.
public struct BERTConfig: Equatable, Sendable {
    public var hiddenSize: Int
    public var numAttentionHeads: Int
    public var numHiddenLayers: Int
    public var intermediateSize: Int
    public var maxPositionEmbeddings: Int
    public var vocabSize: Int
    public var typeVocabSize: Int
    public var layerNormEps: Double
    public var hiddenAct: HFActivation
    /// Keys present in the file that this reader does not use.
    public var ignoredKeys: [String]

    public static let requiredKeys = ["hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size", "max_position_embeddings", "vocab_size"]
    public static let optionalKeys = ["type_vocab_size", "layer_norm_eps", "hidden_act", "model_type"]

    public init(hiddenSize: Int, numAttentionHeads: Int, numHiddenLayers: Int, intermediateSize: Int,
                maxPositionEmbeddings: Int, vocabSize: Int, typeVocabSize: Int = 2, layerNormEps: Double = 1e-12,
                hiddenAct: HFActivation = .gelu) {
        self.hiddenSize = hiddenSize
        self.numAttentionHeads = numAttentionHeads
        self.numHiddenLayers = numHiddenLayers
        self.intermediateSize = intermediateSize
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.vocabSize = vocabSize
        self.typeVocabSize = typeVocabSize
        self.layerNormEps = layerNormEps
        self.hiddenAct = hiddenAct
        self.ignoredKeys = []
    }

    /// Reads `config.json` at `url`.
    public static func read(contentsOf url: URL) throws -> BERTConfig {
        try BERTConfig(json: ConfigReader.load(url), path: url.path)
    }

    /// Parses config JSON bytes; errors name `path` and the key.
    public init(json bytes: [UInt8], path: String = "<config>") throws {
        let r = try ConfigReader(bytes: bytes, path: path)
        try r.checkModelType(["bert"])
        hiddenSize = try r.positiveInt("hidden_size")
        numAttentionHeads = try r.positiveInt("num_attention_heads")
        numHiddenLayers = try r.positiveInt("num_hidden_layers")
        intermediateSize = try r.positiveInt("intermediate_size")
        maxPositionEmbeddings = try r.positiveInt("max_position_embeddings")
        vocabSize = try r.positiveInt("vocab_size")
        typeVocabSize = try r.optionalPositiveInt("type_vocab_size") ?? 2
        layerNormEps = try r.positiveDouble("layer_norm_eps", default: 1e-12)
        hiddenAct = try r.activation("hidden_act", default: "gelu")
        try r.requireDivisible("hidden_size", hiddenSize, by: "num_attention_heads", numAttentionHeads)
        ignoredKeys = r.ignored(BERTConfig.requiredKeys + BERTConfig.optionalKeys)
    }
}

/// A Hugging Face GPT-2 `config.json`, typed.
///
/// Required keys (positive integers): `n_embd`, `n_head`, `n_layer`, `n_positions`, `vocab_size`.
/// Optional with transformers' defaults: `layer_norm_epsilon` (1e-5), `activation_function`
/// ("gelu_new"), `n_inner` (null → 4 · n_embd). `model_type`, when present, must be "gpt2".
/// Other keys are ignored and listed in `ignoredKeys`. `n_embd` must be divisible by `n_head`.
public struct GPT2Config: Equatable, Sendable {
    public var nEmbd: Int
    public var nHead: Int
    public var nLayer: Int
    public var nPositions: Int
    public var vocabSize: Int
    /// The FFN width: `n_inner`, or 4 · n_embd when absent/null.
    public var nInner: Int
    public var layerNormEpsilon: Double
    public var activationFunction: HFActivation
    public var ignoredKeys: [String]

    public static let requiredKeys = ["n_embd", "n_head", "n_layer", "n_positions", "vocab_size"]
    public static let optionalKeys = ["layer_norm_epsilon", "activation_function", "n_inner", "model_type"]

    public init(nEmbd: Int, nHead: Int, nLayer: Int, nPositions: Int, vocabSize: Int, nInner: Int? = nil,
                layerNormEpsilon: Double = 1e-5, activationFunction: HFActivation = .geluTanh) {
        self.nEmbd = nEmbd
        self.nHead = nHead
        self.nLayer = nLayer
        self.nPositions = nPositions
        self.vocabSize = vocabSize
        self.nInner = nInner ?? 4 * nEmbd
        self.layerNormEpsilon = layerNormEpsilon
        self.activationFunction = activationFunction
        self.ignoredKeys = []
    }

    public static func read(contentsOf url: URL) throws -> GPT2Config {
        try GPT2Config(json: ConfigReader.load(url), path: url.path)
    }

    public init(json bytes: [UInt8], path: String = "<config>") throws {
        let r = try ConfigReader(bytes: bytes, path: path)
        try r.checkModelType(["gpt2"])
        nEmbd = try r.positiveInt("n_embd")
        nHead = try r.positiveInt("n_head")
        nLayer = try r.positiveInt("n_layer")
        nPositions = try r.positiveInt("n_positions")
        vocabSize = try r.positiveInt("vocab_size")
        nInner = try r.optionalPositiveInt("n_inner") ?? 4 * nEmbd
        layerNormEpsilon = try r.positiveDouble("layer_norm_epsilon", default: 1e-5)
        activationFunction = try r.activation("activation_function", default: "gelu_new")
        try r.requireDivisible("n_embd", nEmbd, by: "n_head", nHead)
        ignoredKeys = r.ignored(GPT2Config.requiredKeys + GPT2Config.optionalKeys)
    }
}
