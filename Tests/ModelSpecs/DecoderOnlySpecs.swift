import DecoderSpec
import SpecSupport
import Testing

/// The tiny GPT-2-shaped model the decoder checks use (SpecSupport): V 37, context 24, d 16,
/// 4 heads, 2 layers, embedding scale raised so greedy choices are not near-ties.
func tinyDecoder(seed: UInt64 = 7, path: KernelPath = .optimized) throws -> DecoderOnlyModel {
    try DecoderChecks.tinyModel(seed: seed, path: path)
}

@Suite("Decoder-only model: KV cache, backends, causality")
struct DecoderOnlySpecs {
    static let strategies: [DecodingStrategy] = [
        .greedy,
        .sample(SamplingConfig(temperature: 0.9, topK: 8), seed: 1),
        .sample(SamplingConfig(temperature: 1.2, topP: 0.9), seed: 2),
        .beam(BeamConfig(width: 3, lengthPenalty: 1)),
    ]

    @Test("Generation with the KV cache equals generation without it, token for token (every strategy, both backends)",
          arguments: KernelPath.allCases)
    func cacheEquivalence(path: KernelPath) throws {
        let model = try tinyDecoder(path: path)
        for strategy in Self.strategies {
            let cached = try Generator.generate(model, prompt: [3, 14, 15], strategy: strategy,
                                                config: .init(maxNewTokens: 12, stopTokens: [0]))
            let uncached = try Generator.generate(model, prompt: [3, 14, 15], strategy: strategy,
                                                  config: .init(maxNewTokens: 12, stopTokens: [0], useCache: false))
            #expect(cached.tokens == uncached.tokens, "\(strategy), \(path)")
        }
    }

    @Test("Cached logits equal full-recompute logits within 8 Float ULPs of the largest logit, every position scheme",
          arguments: PositionEncodingScheme.allCases)
    func cachedLogitsMatch(scheme: PositionEncodingScheme) throws {
        // The cached path multiplies [1, d] rows where the full pass multiplies [T, d] blocks;
        // the same dot products, possibly summed in a different blocking order: a few ulps of the
        // row's scale, bounded here by 8 ulps of max |logit|. RoPE rotates each row to its own
        // position and ALiBi biases it by its own distance on both paths: no extra rounding.
        let model = try DecoderChecks.tinyModel(positionEncoding: scheme)
        let ids = [5, 9, 2, 33, 17, 8, 1]
        let full = try model.forward(ids)
        var cache = model.makeCache()
        for (t, id) in ids.enumerated() {
            let step = try model.logits(appending: [id], to: &cache)
            let scale = Double(full.row(t).map(abs).max()!)
            #expect(compare(step, full.row(t).map(Double.init), .absolute(8 * Double(Float(scale).ulp))).passed, "position \(t)")
        }
        #expect(cache.length == ids.count)
        #expect(cache.floatCount == 2 * 2 * ids.count * 16)
    }

    @Test("Naive and optimized backends: identical greedy ids, logits within 1e-4 relative to the row scale")
    func backendsAgree() throws {
        // Float sums of ≤ 64 terms in two orders differ by ≤ 64·ε·Σ|terms| per dot product
        // (≈ 4e-6 relative); through 2 layers and a LayerNorm that stays well under 1e-4.
        let naive = try tinyDecoder(path: .naive), fast = try tinyDecoder(path: .optimized)
        let ids = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
        let a = try naive.forward(ids), b = try fast.forward(ids)
        let scale = Double(a.storage.map(abs).max()!)
        #expect(compare(b.storage, a.storage.map(Double.init), .absolute(1e-4 * scale)).passed)
        let ga = try Generator.generate(naive, prompt: [4, 2], strategy: .greedy, config: .init(maxNewTokens: 15))
        let gb = try Generator.generate(fast, prompt: [4, 2], strategy: .greedy, config: .init(maxNewTokens: 15))
        #expect(ga.tokens == gb.tokens)
    }

    @Test("Causality: changing the tokens after position i leaves the logits at positions ≤ i bitwise unchanged")
    func causality() throws {
        let model = try tinyDecoder()
        let base = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3]
        let a = try model.forward(base)
        for i in [0, 3, 8] {
            var changed = base
            for j in (i + 1)..<base.count { changed[j] = (changed[j] + 7) % 37 }
            let b = try model.forward(changed)
            for t in 0...i { #expect(a.row(t) == b.row(t), "position \(t) changed when tokens > \(i) changed") }
            #expect(a.row(i + 1) != b.row(i + 1), "the check must be able to fail: position \(i + 1) sees the change")
        }
    }

    @Test("A NaN reaching the KV cache is an error on the step that appends it, not silent garbage")
    func nanInCache() throws {
        var model = try tinyDecoder()
        var cache = model.makeCache()
        _ = try model.logits(appending: [1, 2, 3], to: &cache)
        // Poison the value projection's bias: the next step's new V row is NaN.
        model.layers[1].selfAttention.value.bias![0] = .nan
        do {
            _ = try model.logits(appending: [4], to: &cache)
            Issue.record("expected a non-finite error")
        } catch let error as DecoderSpecError {
            #expect("\(error)".contains("non-finite") && "\(error)".contains("values V"), "\(error)")
        }
    }

    @Test("Bad input: empty prompt, prompt longer than the context, out-of-vocabulary id, bad config")
    func badInput() throws {
        let model = try tinyDecoder()
        #expect(throws: DecoderSpecError.self) { try model.forward([]) }
        #expect(throws: DecoderSpecError.self) { try model.forward(Array(repeating: 1, count: 25)) }
        #expect(throws: DecoderSpecError.self) { try model.forward([1, 37]) }
        #expect(throws: DecoderSpecError.self) {
            try Generator.generate(model, prompt: Array(repeating: 1, count: 24), strategy: .greedy, config: .init(maxNewTokens: 1))
        }
        #expect(throws: DecoderSpecError.self) {
            try DecoderOnlyModel.seeded(TransformerConfig(vocabularySize: 10, contextLength: 8, modelWidth: 10, heads: 4, layers: 1), seed: 0)
        }
    }
}
