import Decoding
import Models
import Kernels
import TensorCore

/// Checks of the KV-cached decoder and of beam search (docs/decoding.md, docs/bug-zoo.md #11–12, #20–21).
public enum DecoderChecks {
    /// A tiny GPT-2-shaped model (V 37, context 24, d 16, 4 heads, 2 layers), embedding scaled ×50 so
    /// logits are far from uniform (as ModelSpecs' `tinyDecoder`).
    public static func tinyModel(seed: UInt64 = 7, path: KernelPath = .optimized,
                                 positionEncoding: PositionEncodingScheme = .learned) throws -> DecoderOnlyModel {
        var m = try DecoderOnlyModel.seeded(
            TransformerConfig(vocabularySize: 37, contextLength: 24, modelWidth: 16, heads: 4, layers: 2, positionEncoding: positionEncoding),
            seed: seed, path: path)
        for i in m.tokenEmbedding.weight.storage.indices { m.tokenEmbedding.weight.storage[i] *= 50 }
        return m
    }

    /// KV cache equals no cache: feeding the prompt, then one token at a time, through one cache
    /// gives at every step the last-position logits of a full forward pass over the whole prefix.
    /// Tolerance 8 Float ULPs of the row's max |logit| (same dot products, different blocking).
    public static func cacheEqualsRecompute(_ decoder: (DecoderOnlyModel, [[Int]]) throws -> [[Float]],
                                            model: DecoderOnlyModel, prompt: [Int], continuation: [Int]) -> Verdict {
        let context = "prompt \(prompt), then \(continuation) one at a time"
        return CheckSupport.guarded(context) {
            let chunks = [prompt] + continuation.map { [$0] }
            let cached = try decoder(model, chunks)
            guard cached.count == chunks.count else { return .fail("\(cached.count) logit rows for \(chunks.count) chunks. \(context)") }
            var prefix: [Int] = []
            for (step, chunk) in chunks.enumerated() {
                prefix += chunk
                let full = try model.forward(prefix).row(prefix.count - 1)
                let scale = full.map { abs($0) }.max()!
                let v = compare(cached[step], full.map(Double.init), .absolute(8 * Double(scale.ulp)),
                                "step \(step) (positions 0..<\(prefix.count)): cached vs full recompute. \(context)")
                if !v.passed { return v }
            }
            return .pass
        }
    }

    // MARK: - Beam search against brute-force enumeration

    /// A beam search under test: (model, prompt [T₀], beam settings, limits) → the chosen continuation.
    public typealias BeamSearchUnderTest = (_ model: any AutoregressiveModel, _ prompt: [Int], _ beam: BeamConfig,
                                            _ config: GenerationConfig) throws -> Generation

    /// A tiny autoregressive model whose logits hash the whole prefix: for a sequence x₁…x_n,
    ///
    ///     z_t = scale · (2·U(seed, x₁…x_n, t) − 1),   t = 0 ..< V,
    ///
    /// U a SplitMix64 uniform in [0, 1) (24 bits, exact in Float). Unlike a Markov table, every prefix
    /// has its own next-token distribution, so nothing short of enumerating sequences finds the
    /// optimum. Its cache is the sequence read (a value type, as beam search needs for forking).
    public struct PrefixHashModel: AutoregressiveModel, Sendable {
        public let vocabularySize: Int
        public let contextLength: Int
        public let seed: UInt64
        public let scale: Float

        public init(vocabularySize: Int, contextLength: Int, seed: UInt64, scale: Float = 3) {
            (self.vocabularySize, self.contextLength, self.seed, self.scale) = (vocabularySize, contextLength, seed, scale)
        }

        static func mix(_ x: UInt64) -> UInt64 {
            var z = x &+ 0x9E37_79B9_7F4A_7C15
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }

        public func makeCache() -> [Int] { [] }

        public func logits(appending tokens: [Int], to cache: inout [Int]) throws -> [Float] {
            let sequence = cache + tokens
            let z = try logits(forSequence: sequence)
            cache = sequence
            return z
        }

        public func logits(forSequence sequence: [Int]) throws -> [Float] {
            guard !sequence.isEmpty else { throw DecoderSpecError.emptySequence(what: "sequence") }
            guard sequence.count <= contextLength else {
                throw DecoderSpecError.invalidArgument(what: "sequence of \(sequence.count)", reason: "exceeds context \(contextLength)")
            }
            var h = Self.mix(seed)
            for (position, id) in sequence.enumerated() {
                guard (0..<vocabularySize).contains(id) else {
                    throw DecoderSpecError.idOutOfRange(id: id, position: position, vocabularySize: vocabularySize)
                }
                h = Self.mix(h ^ UInt64(id))
            }
            return (0..<vocabularySize).map { t in
                let u = Float(Self.mix(h &+ UInt64(t)) >> 40) * 0x1p-24
                return scale * (2 * u - 1)
            }
        }
    }

    /// Every finished hypothesis of a search with at most L new tokens, scored by the documented formula
    /// (docs/decoding.md, `BeamSearch`):
    ///
    ///     s(y) = log p(y | prompt) / |y|^α,   log p(y | prompt) = Σ_i log softmax(z(prompt, y_<i))[y_i]
    ///
    /// |y| counts the new tokens, the stop token included, never the prompt. A hypothesis is finished
    /// when its last token is a stop token (nothing after the first stop) or when it has
    /// L = min(max_new_tokens, context − T₀) tokens. log-softmax is computed here in Double with GSL's
    /// exp and log from the model's Float logits; |y|^α = exp(α·ln|y|).
    public struct BruteForceBeam: Sendable {
        /// Finished hypotheses → (log p, s).
        public let finished: [[Int]: (logProbability: Double, score: Double)]
        /// The best finished hypothesis by s (ties: none expected; see `runnerUpScore`).
        public let best: [Int]
        /// s of the second-best finished hypothesis (−∞ when there is only one).
        public let runnerUpScore: Double
        /// L, the longest hypothesis.
        public let maxLength: Int
        /// max |z| over every logit row read: the magnitude the rounding bound scales with.
        public let maxAbsLogit: Double

        public var bestScore: Double { finished[best]!.score }
    }

    /// Enumerates every continuation of `prompt` up to `maxNewTokens` (see `BruteForceBeam`).
    public static func bruteForceBeam(_ model: some AutoregressiveModel, prompt: [Int], maxNewTokens: Int,
                                      stopTokens: Set<Int>, lengthPenalty alpha: Double) throws -> BruteForceBeam {
        let maxLength = min(maxNewTokens, model.contextLength - prompt.count)
        var finished: [[Int]: (logProbability: Double, score: Double)] = [:]
        var maxAbsLogit = 0.0
        func lengthFactor(_ n: Int) -> Double { CheckSupport.exp(alpha * CheckSupport.log(Double(n))) }
        func visit(_ prefix: [Int], _ logProbability: Double) throws {
            let z = try model.logits(forSequence: prompt + prefix).map(Double.init)
            let m = z.max()!
            maxAbsLogit = max(maxAbsLogit, z.map(abs).max()!)
            let logZ = m + CheckSupport.log(z.reduce(0) { $0 + CheckSupport.exp($1 - m) })
            for t in z.indices {
                let y = prefix + [t]
                let lp = logProbability + (z[t] - logZ)
                if stopTokens.contains(t) || y.count == maxLength {
                    finished[y] = (lp, lp / lengthFactor(y.count))
                } else {
                    try visit(y, lp)
                }
            }
        }
        try visit([], 0)
        let ranked = finished.sorted { $0.value.score > $1.value.score }
        return BruteForceBeam(finished: finished, best: ranked[0].key,
                              runnerUpScore: ranked.count > 1 ? ranked[1].value.score : -.infinity,
                              maxLength: maxLength, maxAbsLogit: maxAbsLogit)
    }

    /// How far the search's log p and s may sit from the reference's, both computed in Double from the
    /// same Float logits (the Float rounding of the logits is common to both and cancels). With
    /// u = 2⁻⁵³, M = max|z|, per token and per side: log-softmax z_t − m − ln Σ e^(z_j − m) costs
    /// ≤ (V + 7)·u·(2M + ln V + 1) (each exp ≤ 2 ulps, V − 1 additions, the log, three subtractions
    /// of magnitude ≤ 2M + ln V); accumulating ≤ L terms costs ≤ L·u·L·(2M + ln V). Two sides:
    ///
    ///     Δ log p ≤ 2·L·(V + L + 7)·u·(2M + ln V + 1)
    ///     Δ s     ≤ Δ log p · max(1, L^(−α)) + 2·(|α|·ln L + 6)·u·L·(2M + ln V)
    ///
    /// (the second term: |y|^α and the division, relative to |s| ≤ L·(2M + ln V)). For V = 5, L = 5,
    /// M = 3 this is 1.6e-13; the best and runner-up scores of the specced sweep are ≥ 1.3e-4 apart.
    public static func beamBounds(vocabulary: Int, maxLength: Int, maxAbsLogit: Double,
                                  lengthPenalty alpha: Double) -> (logProbability: Double, score: Double) {
        let u = 0x1p-53, v = Double(vocabulary), l = Double(maxLength)
        let logV = CheckSupport.log(v), logL = CheckSupport.log(l)
        let logProbability = 2 * l * (v + l + 7) * u * (2 * maxAbsLogit + logV + 1)
        let shrink = max(1, CheckSupport.exp(-alpha * logL))
        return (logProbability, logProbability * shrink + 2 * (abs(alpha) * logL + 6) * u * l * (2 * maxAbsLogit + logV))
    }

    /// Beam search wide enough to be exhaustive returns the brute-force best hypothesis: with width
    /// B ≥ V^L every candidate of every step ranks among the best B, so no stop candidate is dropped
    /// and no prefix is pruned, and fewer than B hypotheses finish before step L (they form a
    /// prefix-free set with a stop in it), so the early-stopping rule cannot fire.
    ///
    /// Passes when the returned tokens are a finished hypothesis (finish reason `.stopToken` when the
    /// last token is a stop, else `.maxNewTokens`, or `.contextFull` when the context is the limit), its log p is the reference's within `beamBounds`, its score is
    /// within the bound of the best score, and — when the best and the runner-up are more than twice
    /// the bound apart, so no rounding can swap them — it is the best sequence itself.
    public static func beamMatchesBruteForce(_ search: BeamSearchUnderTest, model: PrefixHashModel, prompt: [Int],
                                             maxNewTokens: Int, stopTokens: Set<Int>, lengthPenalty alpha: Double) -> Verdict {
        let context = "V \(model.vocabularySize), max_new_tokens \(maxNewTokens), α \(alpha), stop \(stopTokens.sorted()), "
            + "prompt \(prompt), model seed \(model.seed)"
        return CheckSupport.guarded(context) {
            let reference = try bruteForceBeam(model, prompt: prompt, maxNewTokens: maxNewTokens, stopTokens: stopTokens, lengthPenalty: alpha)
            var width = 1
            for _ in 0..<reference.maxLength { width *= model.vocabularySize }
            guard width <= BeamConfig.maximumWidth else { return .fail("V^L = \(width) is above the widest beam. \(context)") }
            let g = try search(model, prompt, BeamConfig(width: width, lengthPenalty: alpha),
                               GenerationConfig(maxNewTokens: maxNewTokens, stopTokens: stopTokens))
            let bound = beamBounds(vocabulary: model.vocabularySize, maxLength: reference.maxLength,
                                   maxAbsLogit: reference.maxAbsLogit, lengthPenalty: alpha)
            let best = reference.finished[reference.best]!
            let expected = "expected \(reference.best) (log p \(best.logProbability), s \(best.score))"
            guard let mine = reference.finished[g.tokens] else {
                return .fail("returned \(g.tokens), not a finished hypothesis (a stop inside, or stopped short of L = \(reference.maxLength) without a stop); \(expected). \(context)")
            }
            let endsInStop = stopTokens.contains(g.tokens.last!)
            let outOfRoom: Generation.FinishReason = reference.maxLength == maxNewTokens ? .maxNewTokens : .contextFull
            if g.finishReason != (endsInStop ? .stopToken : outOfRoom) {
                return .fail("returned \(g.tokens) with finish reason \(g.finishReason). \(context)")
            }
            if abs(g.logProbability - mine.logProbability) > bound.logProbability {
                return .fail("log p of \(g.tokens): \(g.logProbability) vs reference \(mine.logProbability) (bound \(bound.logProbability)). \(context)")
            }
            if mine.score < best.score - bound.score {
                return .fail("returned \(g.tokens) with s \(mine.score) (log p \(mine.logProbability)); \(expected), "
                             + "worse by \(best.score - mine.score) > bound \(bound.score). \(context)")
            }
            if best.score - reference.runnerUpScore > 2 * bound.score, g.tokens != reference.best {
                return .fail("returned \(g.tokens); \(expected). \(context)")
            }
            return .pass
        }
    }

    /// The zoo's fixed sweep of `beamMatchesBruteForce`: V = 4, L = 4 (exhaustive width 256), a
    /// three-token prompt (so a score that counts the prompt differs), α ∈ {1, 0.6, 2}, stop sets
    /// {0} and {0, 3}, model seeds 1…3.
    public static func beamMatchesBruteForceSweep(_ search: BeamSearchUnderTest) -> Verdict {
        var verdict = Verdict.pass
        for seed in UInt64(1)...3 {
            let model = PrefixHashModel(vocabularySize: 4, contextLength: 12, seed: seed)
            for alpha in [1, 0.6, 2.0] {
                for stops in [[0], [0, 3]] as [Set<Int>] {
                    verdict = verdict.and(beamMatchesBruteForce(search, model: model, prompt: [1, 2, 3], maxNewTokens: 4,
                                                                stopTokens: stops, lengthPenalty: alpha))
                }
            }
        }
        return verdict
    }
}

