import TensorCore

/// A model the decoder loop can drive one step at a time. See docs/decoding.md.
///
/// `Cache` is the model's memory of what it has read (a KV cache for a Transformer). It must be a
/// value type: beam search copies it when a hypothesis forks.
public protocol AutoregressiveModel {
    associatedtype Cache
    /// V: logits have this many entries; valid ids are 0..<V.
    var vocabularySize: Int { get }
    /// The longest sequence (prompt + generated) the model accepts.
    var contextLength: Int { get }
    /// An empty cache.
    func makeCache() -> Cache
    /// Reads `tokens` after what `cache` holds, appends them to it, and returns the logits [V] of
    /// the last of them. Throws for ids out of range or a sequence longer than the context.
    func logits(appending tokens: [Int], to cache: inout Cache) throws -> [Float]
    /// The logits [V] of the last position of `sequence`, recomputed from scratch (no cache).
    func logits(forSequence sequence: [Int]) throws -> [Float]
}

/// How to choose each next token.
public enum DecodingStrategy: Sendable, Equatable {
    /// argmax of the logits; ties go to the lowest id.
    case greedy
    /// Draw from the filtered distribution of `SamplingConfig` with a seeded generator.
    case sample(SamplingConfig, seed: UInt64)
    /// Beam search (see `BeamSearch`).
    case beam(BeamConfig)
}

/// Limits and stop conditions shared by every strategy.
public struct GenerationConfig: Sendable, Equatable {
    /// At most this many new tokens (≥ 1).
    public var maxNewTokens: Int
    /// Generation stops after emitting any of these (the stop token is included in the output).
    public var stopTokens: Set<Int>
    /// Use the model's cache (one new token per step) or recompute the whole sequence each step.
    public var useCache: Bool

    public init(maxNewTokens: Int, stopTokens: Set<Int> = [], useCache: Bool = true) {
        self.maxNewTokens = maxNewTokens
        self.stopTokens = stopTokens
        self.useCache = useCache
    }
}

/// What a generation produced.
public struct Generation: Sendable, Equatable {
    public enum FinishReason: String, Sendable { case stopToken, maxNewTokens, contextFull }
    /// The new tokens only (not the prompt); ends with the stop token when `finishReason == .stopToken`.
    public var tokens: [Int]
    public var finishReason: FinishReason
    /// Sum of log p(token) of the new tokens under the unfiltered model distribution.
    public var logProbability: Double
}

public enum Generator {
    /// Runs the decoder loop: feed the prompt, then repeatedly choose a token and feed it back.
    ///
    ///     x_{t+1} = choose(logits(x_1 … x_t)),  until a stop token, max_new_tokens or the context is full
    ///
    /// - Parameters: `prompt` [T₀] non-empty ids in 0..<V with T₀ < contextLength.
    /// - Throws: `.emptySequence`, `.idOutOfRange`, `.invalidArgument` (prompt fills the context,
    ///   maxNewTokens < 1, bad sampling parameters), and whatever the model throws.
    public static func generate<M: AutoregressiveModel>(
        _ model: M, prompt: [Int], strategy: DecodingStrategy, config: GenerationConfig
    ) throws -> Generation {
        try validate(model, prompt: prompt, config: config)
        switch strategy {
        case .greedy:
            return try loop(model, prompt: prompt, config: config) { logits in LogitsFilter.argmax(logits) }
        case let .sample(sampling, seed):
            try sampling.validate()
            var rng = SeededRNG(seed: seed)
            return try loop(model, prompt: prompt, config: config) { logits in
                LogitsFilter.draw(try LogitsFilter.distribution(logits, sampling), using: &rng)
            }
        case let .beam(beam):
            return try BeamSearch.run(model, prompt: prompt, beam: beam, config: config)
        }
    }

    static func validate<M: AutoregressiveModel>(_ model: M, prompt: [Int], config: GenerationConfig) throws {
        guard !prompt.isEmpty else { throw DecoderSpecError.emptySequence(what: "prompt") }
        for (position, id) in prompt.enumerated() where !(0..<model.vocabularySize).contains(id) {
            throw DecoderSpecError.idOutOfRange(id: id, position: position, vocabularySize: model.vocabularySize)
        }
        guard prompt.count < model.contextLength else {
            throw DecoderSpecError.invalidArgument(
                what: "prompt of \(prompt.count) tokens",
                reason: "the model's context holds \(model.contextLength) tokens, so the prompt must be shorter to leave room for one new token")
        }
        try Validate.positive(config.maxNewTokens, "maxNewTokens")
    }

    /// The shared single-hypothesis loop of greedy decoding and sampling.
    static func loop<M: AutoregressiveModel>(
        _ model: M, prompt: [Int], config: GenerationConfig, choose: ([Float]) throws -> Int
    ) throws -> Generation {
        var cache = model.makeCache()
        var sequence = prompt
        var generated: [Int] = []
        var logProbability = 0.0
        var logits = config.useCache
            ? try model.logits(appending: prompt, to: &cache)
            : try model.logits(forSequence: prompt)
        while true {
            let token = try choose(logits)
            logProbability += LogitsFilter.logSoftmax(logits)[token]
            generated.append(token)
            sequence.append(token)
            if config.stopTokens.contains(token) {
                return Generation(tokens: generated, finishReason: .stopToken, logProbability: logProbability)
            }
            if generated.count == config.maxNewTokens {
                return Generation(tokens: generated, finishReason: .maxNewTokens, logProbability: logProbability)
            }
            if sequence.count == model.contextLength {
                return Generation(tokens: generated, finishReason: .contextFull, logProbability: logProbability)
            }
            logits = config.useCache
                ? try model.logits(appending: [token], to: &cache)
                : try model.logits(forSequence: sequence)
        }
    }
}
