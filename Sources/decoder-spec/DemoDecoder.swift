import DecoderSpec
import Foundation

/// The decoder half of `decoder-spec demo`: attention with its mask, the KV cache growing one
/// step at a time, and the three decoding strategies — on the seeded demo model (`NamedModel.demo`, no download).
enum DecoderDemo {
    nonisolated(unsafe) static var vocabulary: [String] = []

    static func words(_ ids: [Int]) -> String { ids.map { vocabulary[$0] }.joined(separator: " ") }

    static func f(_ x: Float, _ width: Int = 6, _ digits: Int = 3) -> String {
        x == -.infinity ? "-inf".leftPad(width) : String(format: "%\(width).\(digits)f", x)
    }

    /// Head 0 of layer 0 on the prompt: the causal mask M and softmax(q·kᵀ/√d_head + M).
    static func attentionMap(_ m: DecoderOnlyModel, _ prompt: [Int]) throws {
        let layer = m.layers[0]
        let x = try m.embedded(prompt, startingAt: 0)
        let normed = try layer.selfAttentionNorm(x)
        let q = try layer.selfAttention.query(normed), k = try layer.selfAttention.key(normed)
        let dh = layer.selfAttention.headWidth
        let t = prompt.count
        func head0(_ m: Matrix) throws -> Matrix {
            try Matrix(rows: t, cols: dh, storage: (0..<t).flatMap { m.row($0)[0..<dh] })
        }
        let maskMatrix = try AttentionMask.causal().materialize(queries: t, keys: t)
        let weightMatrix = try attentionWeights(q: head0(q), k: head0(k), mask: .causal())
        let (mask, weights) = (maskMatrix.storage, weightMatrix.storage)
        let labels = prompt.map { vocabulary[$0] }
        let header = "".leftPad(7) + labels.map { $0.leftPad(7) }.joined()
        print("causal mask M (query rows, key columns): 0 = visible, -inf = future")
        print(header)
        for i in 0..<t { print(labels[i].leftPad(7) + (0..<t).map { f(mask[i * t + $0], 7, 0) }.joined()) }
        print("\nattention weights, layer 0, head 0: softmax(q·kᵀ/sqrt(\(dh)) + M); every row sums to 1")
        print(header + "    sum")
        for i in 0..<t {
            let row = (0..<t).map { weights[i * t + $0] }
            print(labels[i].leftPad(7) + row.map { f($0, 7) }.joined() + f(row.reduce(0, +), 7))
        }
    }

    /// Greedy decoding one step at a time, printing the cache as it grows.
    static func cacheSteps(_ m: DecoderOnlyModel, _ prompt: [Int]) throws {
        var cache = m.makeCache()
        var logits = try m.logits(appending: prompt, to: &cache)
        print("after the prompt: \(cache)")
        for step in 1...4 {
            let p = try LogitsFilter.distribution(logits, SamplingConfig(temperature: 1))
            let token = LogitsFilter.argmax(logits)
            logits = try m.logits(appending: [token], to: &cache)
            print("step \(step): next = " + vocabulary[token].padding(toLength: 6, withPad: " ", startingAt: 0)
                  + String(format: " p = %.3f   cache now holds %d positions (%d floats)", p[token], cache.length, cache.floatCount))
        }
    }

    static func strategies(_ m: DecoderOnlyModel, _ prompt: [Int], stopToken: Int) throws {
        let config = GenerationConfig(maxNewTokens: 8, stopTokens: [stopToken])
        let runs: [(String, DecodingStrategy)] = [
            ("greedy", .greedy),
            ("sample τ=0.8 top-k=5 (seed 7)", .sample(SamplingConfig(temperature: 0.8, topK: 5), seed: 7)),
            ("sample top-p=0.9 (seed 7)", .sample(SamplingConfig(topP: 0.9), seed: 7)),
            ("beam width 4, α=1", .beam(BeamConfig(width: 4, lengthPenalty: 1))),
        ]
        for (name, strategy) in runs {
            let g = try Generator.generate(m, prompt: prompt, strategy: strategy, config: config)
            let cached = try Generator.generate(m, prompt: prompt, strategy: strategy,
                                                config: GenerationConfig(maxNewTokens: 8, stopTokens: [stopToken], useCache: false))
            print(name.padding(toLength: 30, withPad: " ", startingAt: 0) + words(g.tokens))
            print("".padding(toLength: 30, withPad: " ", startingAt: 0)
                  + String(format: "log p = %.2f, finished by %@, same tokens without the cache: %@", g.logProbability,
                           g.finishReason.rawValue, g.tokens == cached.tokens ? "yes" : "NO"))
        }
    }

    /// Stages `firstStage` … `firstStage + 2` of the demo: attention with its mask, the KV cache
    /// growing, and the decoding strategies.
    static func run(vocabulary: [String], prompt: [Int], stopToken: Int, firstStage: Int) throws {
        self.vocabulary = vocabulary
        let m = try NamedModel.demoModel(path: .optimized)
        Demo.heading(firstStage, "Attention with the causal mask (the demo model, a GPT-2-style decoder)")
        print("model: 2 pre-norm layers, d_model 16, 4 heads, learned positions, tied head, seeded weights (generate --model demo)")
        print("prompt: \"\(words(prompt))\" → ids \(prompt)\n")
        try attentionMap(m, prompt)
        Demo.heading(firstStage + 1, "One decoder step at a time: the KV cache")
        print("each step feeds one token and appends one row of K and V per layer")
        try cacheSteps(m, prompt)
        Demo.heading(firstStage + 2, "Decoding strategies")
        print("(random demo model: the words are arbitrary, the mechanics are not; \(vocabulary[stopToken]) stops)")
        try strategies(m, prompt, stopToken: stopToken)
    }
}

extension String {
    func leftPad(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
