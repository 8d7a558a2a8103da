import DecoderSpec
import SpecSupport
import Testing

/// Beam search wide enough to be exhaustive (B = V^L) against an independent enumeration of every
/// finished hypothesis, scored by the documented s(y) = log p(y) / |y|^α (docs/decoding.md), with
/// stop tokens and a length penalty. The check and its bound are `DecoderChecks.beamMatchesBruteForce`
/// and `DecoderChecks.beamBounds` (docs/tolerances.md, "Beam search vs brute force").
@Suite("Beam search vs brute force: length penalty and stop tokens")
struct BeamBruteForceSpecs {
    static func library(_ model: any AutoregressiveModel, _ prompt: [Int], _ beam: BeamConfig,
                        _ config: GenerationConfig) throws -> Generation {
        try Generator.generate(model, prompt: prompt, strategy: .beam(beam), config: config)
    }

    /// The library's default α (documented as 1, Hugging Face's `length_penalty=1.0`).
    static let defaultAlpha = BeamConfig(width: 1).lengthPenalty

    /// (V, max_new_tokens): exhaustive widths 256, 625, 729.
    static let shapes = [(4, 4), (5, 4), (3, 6)]
    static let seeds = Array(UInt64(1)...4)

    struct Case: CustomTestStringConvertible, Sendable {
        let alpha: Double
        let stops: Set<Int>
        var testDescription: String { "α \(alpha), stop \(stops.sorted())" }
    }

    static let cases: [Case] = [defaultAlpha, 0.6, 2.0].flatMap { a in [[0], [0, 2]].map { Case(alpha: a, stops: Set($0)) } }

    @Test("The default length penalty is α = 1, as documented")
    func defaultIsOne() {
        #expect(Self.defaultAlpha == 1)
    }

    @Test("Exhaustive beam search returns the brute-force best sequence and its score within the derived bound",
          arguments: cases)
    func exhaustiveBeamEqualsBruteForce(c: Case) throws {
        var endsInStop = 0, runsToLimit = 0
        for (v, l) in Self.shapes {
            for seed in Self.seeds {
                let model = DecoderChecks.PrefixHashModel(vocabularySize: v, contextLength: 16, seed: seed)
                let prompt = [1, 0, 2].map { $0 % v }
                let verdict = DecoderChecks.beamMatchesBruteForce(Self.library, model: model, prompt: prompt, maxNewTokens: l,
                                                                 stopTokens: c.stops, lengthPenalty: c.alpha)
                #expect(verdict.passed, "\(verdict)")
                // No tie can make this flaky: the best and the runner-up are farther apart than twice
                // the bound, so the check compared the sequences themselves, not only the scores.
                let reference = try DecoderChecks.bruteForceBeam(model, prompt: prompt, maxNewTokens: l,
                                                                 stopTokens: c.stops, lengthPenalty: c.alpha)
                let bound = DecoderChecks.beamBounds(vocabulary: v, maxLength: l, maxAbsLogit: reference.maxAbsLogit,
                                                     lengthPenalty: c.alpha)
                #expect(reference.bestScore - reference.runnerUpScore > 2 * bound.score,
                        "V \(v) L \(l) seed \(seed): gap \(reference.bestScore - reference.runnerUpScore), bound \(bound.score)")
                if c.stops.contains(reference.best.last!) { endsInStop += 1 } else { runsToLimit += 1 }
            }
        }
        print("beam vs brute force, \(c.testDescription): best ends in a stop token \(endsInStop)×, runs to max_new_tokens \(runsToLimit)×")
    }

    @Test("When the context is the limit (prompt 3 + 4 new > context 6), hypotheses stop at the context and say so",
          arguments: cases)
    func contextIsTheLimit(c: Case) {
        for seed in Self.seeds {
            let model = DecoderChecks.PrefixHashModel(vocabularySize: 4, contextLength: 6, seed: seed)
            let verdict = DecoderChecks.beamMatchesBruteForce(Self.library, model: model, prompt: [1, 2, 3], maxNewTokens: 4,
                                                             stopTokens: c.stops, lengthPenalty: c.alpha)
            #expect(verdict.passed, "\(verdict)")
        }
    }

    @Test("Across the sweep the optimum sometimes ends in a stop token and sometimes runs to max_new_tokens")
    func sweepExercisesBothEndings() throws {
        var endings = Set<Bool>()
        for c in Self.cases {
            for (v, l) in Self.shapes {
                for seed in Self.seeds {
                    let model = DecoderChecks.PrefixHashModel(vocabularySize: v, contextLength: 16, seed: seed)
                    let r = try DecoderChecks.bruteForceBeam(model, prompt: [1, 0, 2].map { $0 % v }, maxNewTokens: l,
                                                             stopTokens: c.stops, lengthPenalty: c.alpha)
                    endings.insert(c.stops.contains(r.best.last!))
                }
            }
        }
        #expect(endings == [true, false])
    }

    @Test("The check fails for a beam search that ignores α, and for one whose stop token does not finish a hypothesis")
    func checkCanFail() {
        // α ignored: the same search ranked by log p alone.
        let alphaIgnored: DecoderChecks.BeamSearchUnderTest = { model, prompt, beam, config in
            try Generator.generate(model, prompt: prompt, strategy: .beam(BeamConfig(width: beam.width, lengthPenalty: 0)), config: config)
        }
        // Stop tokens ignored during the search; the winner is cut after its first stop afterwards.
        let stopIgnored: DecoderChecks.BeamSearchUnderTest = { model, prompt, beam, config in
            var free = config
            free.stopTokens = []
            var g = try Generator.generate(model, prompt: prompt, strategy: .beam(beam), config: free)
            if let i = g.tokens.firstIndex(where: config.stopTokens.contains) {
                g.tokens = Array(g.tokens[...i])
                g.finishReason = .stopToken
                g.logProbability = 0
                var sequence = prompt
                for t in g.tokens {
                    g.logProbability += LogitsFilter.logSoftmax(try model.logits(forSequence: sequence))[t]
                    sequence.append(t)
                }
            }
            return g
        }
        #expect(DecoderChecks.beamMatchesBruteForceSweep(Self.library).passed)
        #expect(!DecoderChecks.beamMatchesBruteForceSweep(alphaIgnored).passed)
        #expect(!DecoderChecks.beamMatchesBruteForceSweep(stopIgnored).passed)
    }
}
