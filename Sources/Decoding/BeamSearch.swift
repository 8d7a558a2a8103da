import TensorCore

/// Beam search settings. See docs/decoding.md.
public struct BeamConfig: Sendable, Equatable {
    /// Number of hypotheses kept alive at each step (≥ 1). Width 1 is greedy decoding.
    public var width: Int
    /// α in the length-normalized score  s(y) = log p(y) / |y|^α  used to rank finished
    /// hypotheses (|y| = new tokens, stop token included). α = 0 ranks by log p alone; α = 1 by the
    /// mean log-probability per token (Hugging Face's default `length_penalty=1.0`).
    public var lengthPenalty: Double

    /// The widest beam accepted. Each step scores width × V candidates and keeps a KV cache per
    /// hypothesis, so the cost grows with the width; 4096 is far above any practical beam (and above
    /// the exhaustive widths V^(L−1) the specs use) while keeping a typo such as 10¹⁸ from running
    /// an exponential search that never ends.
    public static let maximumWidth = 4096

    public init(width: Int, lengthPenalty: Double = 1) {
        self.width = width
        self.lengthPenalty = lengthPenalty
    }
}

/// Breadth-limited search for the most probable continuation.
///
/// At each step every live hypothesis h is extended by every token t with score
/// log p(h) + log p(t | h); of all V·B candidates the best are kept:
/// - a candidate ending in a stop token among the best B becomes a *finished* hypothesis
///   (scored s = log p / |y|^α);
/// - the best B candidates that do not end in a stop token stay live.
/// The search ends when B hypotheses have finished and the best live one, normalized at its
/// current length, does not beat the worst of them (Hugging Face's `early_stopping=False` rule:
/// exact for α = 0, where log p only falls as a hypothesis grows; a heuristic for α > 0, where
/// log p / |y|^α can still rise), or at max_new_tokens / a full context, where live hypotheses are
/// finished as they stand. A width ≥ V^L never prunes nor stops early: it is exhaustive for length
/// L. Ties are broken by beam order, then token id, so width 1 reproduces greedy decoding exactly.
public enum BeamSearch {
    struct Hypothesis<Cache> {
        var tokens: [Int]
        var logProbability: Double
        var cache: Cache
        var lastLogits: [Float]
    }

    static func normalized(_ logProbability: Double, length: Int, _ alpha: Double) -> Double {
        alpha == 0 ? logProbability : logProbability / pow(Double(length), alpha)
    }

    public static func run<M: AutoregressiveModel>(
        _ model: M, prompt: [Int], beam: BeamConfig, config: GenerationConfig
    ) throws -> Generation {
        guard beam.width >= 1, beam.width <= BeamConfig.maximumWidth else {
            throw DecoderSpecError.invalidArgument(what: "beam width \(beam.width)", reason: "must be in 1…\(BeamConfig.maximumWidth)")
        }
        guard beam.lengthPenalty.isFinite else {
            throw DecoderSpecError.invalidArgument(what: "length penalty \(beam.lengthPenalty)", reason: "must be finite")
        }
        var cache = model.makeCache()
        let firstLogits = config.useCache
            ? try model.logits(appending: prompt, to: &cache)
            : try model.logits(forSequence: prompt)
        var live = [Hypothesis(tokens: [], logProbability: 0, cache: cache, lastLogits: firstLogits)]
        var finished: [(tokens: [Int], logProbability: Double, score: Double, reason: Generation.FinishReason)] = []
        let maxNew = min(config.maxNewTokens, model.contextLength - prompt.count)

        for step in 1...maxNew {
            // Every (hypothesis, token) extension, best first; ties: earlier hypothesis, lower id.
            var candidates: [(beam: Int, token: Int, logProbability: Double)] = []
            candidates.reserveCapacity(live.count * model.vocabularySize)
            for (b, h) in live.enumerated() {
                let logp = LogitsFilter.logSoftmax(h.lastLogits)
                for (t, lp) in logp.enumerated() where lp > -.infinity {
                    candidates.append((b, t, h.logProbability + lp))
                }
            }
            candidates.sort {
                $0.logProbability != $1.logProbability ? $0.logProbability > $1.logProbability
                    : ($0.beam != $1.beam ? $0.beam < $1.beam : $0.token < $1.token)
            }
            var next: [Hypothesis<M.Cache>] = []
            for (rank, c) in candidates.enumerated() {
                if next.count == beam.width { break }
                let tokens = live[c.beam].tokens + [c.token]
                if config.stopTokens.contains(c.token) {
                    // Only a stop token ranked among the best `width` candidates finishes a hypothesis.
                    if rank < beam.width {
                        finished.append((tokens, c.logProbability,
                                         normalized(c.logProbability, length: tokens.count, beam.lengthPenalty), .stopToken))
                    }
                    continue
                }
                var h = live[c.beam]
                h.tokens = tokens
                h.logProbability = c.logProbability
                if step < maxNew {
                    h.lastLogits = config.useCache
                        ? try model.logits(appending: [c.token], to: &h.cache)
                        : try model.logits(forSequence: prompt + tokens)
                }
                next.append(h)
            }
            live = next
            finished.sort { $0.score > $1.score }
            if finished.count > beam.width { finished.removeLast(finished.count - beam.width) }
            if live.isEmpty { break }
            if finished.count == beam.width {
                // Hugging Face's `early_stopping=False` heuristic: stop when the best live
                // hypothesis, normalized at its current length, cannot beat the worst finished one.
                let bestLive = normalized(live[0].logProbability, length: step, beam.lengthPenalty)
                if bestLive <= finished[finished.count - 1].score { break }
            }
        }
        // Live hypotheses that ran out of room finish as they stand.
        let outOfRoom: Generation.FinishReason = maxNew == config.maxNewTokens ? .maxNewTokens : .contextFull
        for h in live {
            finished.append((h.tokens, h.logProbability,
                             normalized(h.logProbability, length: h.tokens.count, beam.lengthPenalty), outOfRoom))
        }
        let best = finished.enumerated().max { a, b in
            a.element.score != b.element.score ? a.element.score < b.element.score : a.offset > b.offset
        }!.element
        return Generation(tokens: best.tokens, finishReason: best.reason, logProbability: best.logProbability)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
