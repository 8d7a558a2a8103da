import DecoderSpec
import GSLOracle
import SpecSupport
import Testing

@Suite("Decoding: greedy, sampling, beam search, stop tokens")
struct DecodingSpecs {
    // MARK: greedy

    @Test("Greedy follows the argmax chain of the model's logits", arguments: [1, 2, 3] as [UInt64])
    func greedyIsArgmaxChain(seed: UInt64) throws {
        let model = ToyModel(vocabularySize: 11, contextLength: 16, seed: seed)
        let g = try Generator.generate(model, prompt: [3], strategy: .greedy, config: .init(maxNewTokens: 10))
        // Independent transcription: at each step pick the index of the maximum logit by a sort.
        var last = 3
        var expected: [Int] = []
        for position in 0..<10 {
            let row = model.row(last: last, position: position)
            last = row.indices.sorted { row[$0] > row[$1] || (row[$0] == row[$1] && $0 < $1) }[0]
            expected.append(last)
        }
        #expect(g.tokens == expected, "seed \(seed)")
        #expect(g.finishReason == .maxNewTokens)
    }

    @Test("A stop token ends generation and is included; the context limit ends it too")
    func stopAndContext() throws {
        let model = ToyModel(vocabularySize: 7, contextLength: 12, seed: 9)
        let free = try Generator.generate(model, prompt: [1], strategy: .greedy, config: .init(maxNewTokens: 8))
        let stop = free.tokens[3]
        let first = free.tokens.firstIndex(of: stop)!
        let stopped = try Generator.generate(model, prompt: [1], strategy: .greedy,
                                             config: .init(maxNewTokens: 8, stopTokens: [stop]))
        #expect(stopped.tokens == Array(free.tokens[...first]))
        #expect(stopped.finishReason == .stopToken)
        let full = try Generator.generate(model, prompt: [1, 2, 3, 4, 5, 6, 0, 1, 2, 3], strategy: .greedy,
                                          config: .init(maxNewTokens: 50))
        #expect(full.tokens.count == 2 && full.finishReason == .contextFull)
    }

    // MARK: cache equivalence (toy model; the Transformer's KV cache is specced in ModelSpecs)

    @Test("With and without the cache, every strategy emits the same tokens")
    func cacheEquivalence() throws {
        let model = ToyModel(vocabularySize: 9, contextLength: 20, seed: 5)
        let strategies: [DecodingStrategy] = [
            .greedy, .sample(SamplingConfig(temperature: 0.8, topK: 5, topP: 0.9), seed: 11),
            .beam(BeamConfig(width: 3, lengthPenalty: 1)),
        ]
        for s in strategies {
            let a = try Generator.generate(model, prompt: [2, 4], strategy: s, config: .init(maxNewTokens: 12, stopTokens: [0]))
            let b = try Generator.generate(model, prompt: [2, 4], strategy: s, config: .init(maxNewTokens: 12, stopTokens: [0], useCache: false))
            #expect(a == b, "\(s)")
        }
    }

    // MARK: beam search

    @Test("Beam width 1 is greedy decoding, token for token", arguments: Array(UInt64(1)...12))
    func beamOneIsGreedy(seed: UInt64) throws {
        let model = ToyModel(vocabularySize: 8, contextLength: 16, seed: seed)
        let config = GenerationConfig(maxNewTokens: 10, stopTokens: [0])
        let greedy = try Generator.generate(model, prompt: [1], strategy: .greedy, config: config)
        let beam = try Generator.generate(model, prompt: [1], strategy: .beam(BeamConfig(width: 1)), config: config)
        #expect(beam.tokens == greedy.tokens, "seed \(seed)")
    }

    /// log p(y | prompt) of a whole continuation, from the model's logits (Double log-softmax).
    static func score(_ model: ToyModel, prompt: [Int], _ y: [Int]) throws -> Double {
        var total = 0.0
        var sequence = prompt
        for t in y {
            total += LogitsFilter.logSoftmax(try model.logits(forSequence: sequence))[t]
            sequence.append(t)
        }
        return total
    }

    @Test("Beam search with width V^(L−1) finds the brute-force best sequence of length L",
          arguments: [(5, 2), (5, 3), (4, 4), (3, 5)])
    func beamEqualsBruteForce(vocabulary: Int, length: Int) throws {
        // With width ≥ V^(L−1) no prefix of the optimum can be pruned before the last step, so
        // beam search is exhaustive; α = 0 and no stop token make both rank by log p alone.
        for seed in UInt64(1)...5 {
            let model = ToyModel(vocabularySize: vocabulary, contextLength: 16, seed: seed, scale: 2)
            var width = 1
            for _ in 1..<length { width *= vocabulary }
            let beam = try Generator.generate(model, prompt: [0], strategy: .beam(BeamConfig(width: width, lengthPenalty: 0)),
                                              config: .init(maxNewTokens: length))
            var best: (y: [Int], s: Double) = ([], -.infinity)
            var total = 1
            for _ in 0..<length { total *= vocabulary }
            for code in 0..<total {
                var y: [Int] = []
                var c = code
                for _ in 0..<length { y.append(c % vocabulary); c /= vocabulary }
                let s = try Self.score(model, prompt: [0], y)
                if s > best.s { best = (y, s) }
            }
            #expect(beam.tokens == best.y, "V=\(vocabulary) L=\(length) seed \(seed)")
            #expect(abs(beam.logProbability - best.s) <= 1e-9 * abs(best.s))
        }
    }

    // MARK: bad input

    @Test("Bad input is a typed error naming the value")
    func badInput() {
        let model = ToyModel(vocabularySize: 5, contextLength: 4, seed: 1)
        func fails(_ fragment: String, _ prompt: [Int], _ s: DecodingStrategy = .greedy, _ c: GenerationConfig = .init(maxNewTokens: 2)) {
            do {
                _ = try Generator.generate(model, prompt: prompt, strategy: s, config: c)
                Issue.record("expected an error containing '\(fragment)'")
            } catch {
                #expect("\(error)".contains(fragment), "\(error)")
            }
        }
        fails("empty sequence", [])
        fails("token id 9 at position 1", [1, 9])
        fails("context holds 4 tokens", [1, 2, 3, 4])
        fails("maxNewTokens", [1], .greedy, .init(maxNewTokens: 0))
        fails("temperature -1", [1], .sample(SamplingConfig(temperature: -1), seed: 0))
        fails("top-k 0", [1], .sample(SamplingConfig(topK: 0), seed: 0))
        fails("top-p 1.5", [1], .sample(SamplingConfig(topP: 1.5), seed: 0))
        fails("beam width 0", [1], .beam(BeamConfig(width: 0)))
    }
}
