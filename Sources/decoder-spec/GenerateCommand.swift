import ArgumentParser
import DecoderSpec
import Foundation

/// Parses "1,2,3" into ids; a clear validation error otherwise.
func parseIds(_ text: String) throws -> [Int] {
    let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    return try parts.enumerated().map { i, s in
        guard let v = Int(s) else { throw ValidationError("--ids: item \(i + 1) \"\(s)\" is not an integer (expected e.g. 464,2068,7586)") }
        return v
    }
}

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Autoregressive generation from a GPT-2-style model: greedy, sampling (temperature/top-k/top-p) or beam search.")

    @Option(help: ArgumentHelp("A GPT-2 checkpoint directory (config.json + model.safetensors), or a seeded model: \(NamedModel.names).",
                               discussion: "demo: the model decoder-spec demo runs (V 10, fixed weights); tiny: 2 layers, d 32, V 64; gpt2-small: GPT-2 small's shape."))
    var model: String

    @Option(help: "Prompt token ids, comma-separated.")
    var ids: String?

    @Option(help: "Prompt text, for a model directory with its tokenizer (vocab.json + merges.txt), e.g. from `train lm --output`; prints text.")
    var prompt: String?

    @Option(help: "greedy | sample | beam")
    var strategy: String = "greedy"

    @Option(name: .customLong("max-new"), help: "Maximum number of new tokens.")
    var maxNew: Int = 20

    @Option(help: "Sampling temperature (sample).") var temperature: Float = 1
    @Option(name: .customLong("top-k"), help: "Keep the k most likely tokens (sample).") var topK: Int?
    @Option(name: .customLong("top-p"), help: "Nucleus mass in [0, 1] (sample).") var topP: Float?
    @Option(help: "Beam width (beam).") var beams: Int = 4
    @Option(name: .customLong("length-penalty"), help: "α in log p / |y|^α (beam).") var lengthPenalty: Double = 1
    @Option(help: "Seed for sampling and for seeded models.") var seed: UInt64 = 0
    @Option(name: .customLong("stop"), help: "Stop token ids, comma-separated.") var stop: String?
    @Option(name: .customLong("backend"), help: "Kernel path: naive | optimized | parallel (KernelPath).") var path: KernelPath = .optimized
    @Flag(name: .customLong("no-cache"), help: "Recompute the whole sequence each step instead of using the KV cache.") var noCache = false
    @Option(name: .customLong("weights"),
            help: ArgumentHelp("How the weight matrices are stored for decoding: fp32 | bf16.",
                               discussion: "bf16: every Linear weight and the tied embedding/head rounded once to bfloat16 (nearest, ties to even; activations and sums stay Float), half the bytes a cached step reads (docs/decoding.md)."))
    var weights: WeightFormat = .fp32
    @Option(name: .customLong("kv"),
            help: ArgumentHelp("How the KV cache stores keys and values: fp32 | bf16.",
                               discussion: "bf16: each key and value rounded once to bfloat16 when it is written (attention reads them widened; sums stay Float): half the bytes of the cache a step reads, which grows with the context. Independent of --weights, so each rounding can be tried alone; both bf16 is the fastest decode (docs/decoding.md)."))
    var kv: KVFormat = .fp32
    @Flag(name: .customLong("print-ids"), help: "Print only the generated ids, one line.") var printIds = false

    /// Option values out of their domain are command-line errors (exit 64), checked before the model is built.
    func validate() throws {
        guard (ids == nil) != (prompt == nil) else { throw ValidationError("give exactly one of --ids and --prompt") }
        try requirePositive(["--max-new": maxNew, "--beams": beams])
        if kv == .bf16 && noCache { throw ValidationError("--kv bf16 stores the KV cache in bf16, and --no-cache has no cache: drop one of them") }
        do {
            try SamplingConfig(temperature: temperature, topK: topK, topP: topP).validate()
        } catch let error as DecoderSpecError {
            throw ValidationError(error.description)
        }
    }

    func run() throws {
        try generate()
    }

    /// --strategy with its options.
    func decodingStrategy() throws -> DecodingStrategy {
        switch strategy {
        case "greedy": return .greedy
        case "sample": return .sample(SamplingConfig(temperature: temperature, topK: topK, topP: topP), seed: seed)
        case "beam": return .beam(BeamConfig(width: beams, lengthPenalty: lengthPenalty))
        default: throw ValidationError("--strategy must be greedy, sample or beam (got \"\(strategy)\")")
        }
    }

    func generate() throws {
        let chosen = try decodingStrategy()
        if let prompt {
            var lm = try LanguageModel.load(directory: URL(fileURLWithPath: model), path: path)
            if weights == .bf16 { lm.model = lm.model.roundingWeightsToBF16() }
            lm.model = lm.model.storingKVCache(as: kv)
            print(try lm.generate(prompt, maxNewTokens: maxNew, strategy: chosen))
            return
        }
        let loaded = try loadDecoderOnly(model, seed: seed, path: path)
        let lm = (weights == .bf16 ? loaded.roundingWeightsToBF16() : loaded).storingKVCache(as: kv)
        let prompt = try parseIds(ids!)
        let stops = Set(try stop.map(parseIds) ?? [])
        let clock = ContinuousClock()
        var result: Generation?
        let elapsed = try clock.measure {
            result = try Generator.generate(lm, prompt: prompt, strategy: chosen,
                                            config: GenerationConfig(maxNewTokens: maxNew, stopTokens: stops, useCache: !noCache))
        }
        let g = result!
        if printIds {
            print(g.tokens.map(String.init).joined(separator: ","))
            return
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        print("model: \(lm.config.layers) layers, d \(lm.config.modelWidth), \(lm.config.heads) heads, V \(lm.config.vocabularySize); path \(path.rawValue); weights \(weights.rawValue); cache \(noCache ? "off" : "on, \(kv.rawValue)")")
        print("prompt ids:    \(prompt.map(String.init).joined(separator: ","))")
        print("generated ids: \(g.tokens.map(String.init).joined(separator: ","))")
        print(String(format: "finish: %@; log p = %.4f; %d tokens in %.3f s (%.1f tokens/s; the time includes reading the prompt)",
                     g.finishReason.rawValue, g.logProbability, g.tokens.count, seconds, Double(g.tokens.count) / seconds))
    }
}

struct ForwardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward",
        abstract: "One forward pass of a GPT-2-style model; writes the logits [T, V] to a safetensors file (key \"logits\").")

    @Option(help: "A GPT-2 checkpoint directory, or a seeded model: \(NamedModel.names) (see generate --help).") var model: String
    @Option(help: "Token ids, comma-separated.") var ids: String
    @Option(help: "Output .safetensors file.") var output: String
    @Option(name: .customLong("backend"), help: "Kernel path: naive | optimized | parallel (KernelPath).") var path: KernelPath = .optimized
    @Option(help: "Seed for seeded models.") var seed: UInt64 = 0

    func run() throws {
        do {
            let lm = try loadDecoderOnly(model, seed: seed, path: path)
            let logits = try lm.forward(try parseIds(ids))
            try SafeTensorsFile.write([("logits", [logits.rows, logits.cols], logits.storage)],
                                      metadata: ["ids": ids, "backend": path.rawValue], to: URL(fileURLWithPath: output))
            print("wrote logits \(logits.shape) to \(output)")
        }
    }
}
