import BugZoo
import DecoderSpec
import Layers
import Masking
import TensorCore

/// A check with its name, bound to fixed inputs, ready to run against one implementation.
public struct NamedCheck {
    public let name: String
    public let run: () -> Verdict
}

/// The checks of every concept the zoo mutates, applied to an `Implementation` (real or mutant).
/// The same list runs against the correct code (every check must pass) and each variant (at least
/// one must fail). Inputs are fixed and seeded; everything here runs in well under a second in debug.
public enum ZooChecks {
    public static func checks(for implementation: Implementation) -> [NamedCheck] {
        switch implementation {
        case .positionalTable(let table):
            return [
                NamedCheck(name: "PE vs GSL sin/cos") {
                    PositionalEncodingChecks.tableMatchesGSL(table, positions: 50, dimension: 16)
                        .and(PositionalEncodingChecks.tableMatchesGSL(table, positions: 9, dimension: 6))
                },
                NamedCheck(name: "PE rotation property") { PositionalEncodingChecks.rotationProperty(table, positions: 20, dimension: 8) },
            ]
        case .positionalAdd(let add):
            return [NamedCheck(name: "X + P: one row per position") { PositionalEncodingChecks.addsOneRowPerPosition(add, rows: 7, dimension: 8, seed: 3) }]
        case .attention(let f):
            let q = CheckSupport.matrix(5, 8, seed: 31), k = CheckSupport.matrix(7, 8, seed: 32), v = CheckSupport.matrix(7, 6, seed: 33)
            let x = CheckSupport.matrix(6, 8, seed: 34)
            return [
                NamedCheck(name: "attention vs GSL") {
                    var verdict = Verdict.pass
                    for mask in [AttentionMask.none, .keyPadding(validLength: 4), .causal(queryOffset: 2)] {
                        verdict = verdict.and(AttentionOracleChecks.matchesGSLReference(f, q: q, k: k, v: v, mask: mask, context: "q [5, 8], k [7, 8], v [7, 6]"))
                    }
                    return verdict.and(AttentionOracleChecks.matchesGSLReference(f, q: x, k: x, v: x, mask: .causal(), context: "self-attention x [6, 8]"))
                },
                NamedCheck(name: "rows sum to 1 over keys") {
                    AttentionOracleChecks.rowsSumToOne(AttentionOracleChecks.weights(of: f), q: q, k: k, mask: .none, context: "q [5, 8], k [7, 8]")
                        .and(AttentionOracleChecks.rowsSumToOne(AttentionOracleChecks.weights(of: f), q: x, k: x, mask: .causal(), context: "causal x [6, 8]"))
                },
                NamedCheck(name: "masked keys get zero weight") {
                    AttentionOracleChecks.maskedKeysGetZeroWeight(AttentionOracleChecks.weights(of: f), q: q, k: k, mask: .keyPadding(validLength: 3), context: "q [5, 8], k [7, 8]")
                        .and(AttentionOracleChecks.maskedKeysGetZeroWeight(AttentionOracleChecks.weights(of: f), q: q, k: k, mask: .causal(queryOffset: 2), context: "q [5, 8], k [7, 8]"))
                },
                NamedCheck(name: "causality") { AttentionOracleChecks.causality({ try f($0, $0, $0, .causal()) }, x: x, position: 2, seed: 35, context: "x [6, 8]") },
                NamedCheck(name: "padded keys ignored") {
                    AttentionOracleChecks.paddedKeysIgnored(f, q: q, k: k, v: v, validLength: 3, seed: 36, context: "q [5, 8], k [7, 8]")
                },
                NamedCheck(name: "fully masked row is zero") { AttentionOracleChecks.fullyMaskedRowIsZero(f, q: q, k: k, v: v, context: "q [5, 8], k [7, 8]") },
            ]
        case .multiHeadAttention(let f):
            let q = CheckSupport.matrix(5, 16, seed: 41), k = CheckSupport.matrix(6, 16, seed: 42), v = CheckSupport.matrix(6, 16, seed: 43)
            let x = CheckSupport.matrix(6, 16, seed: 44)
            return [
                NamedCheck(name: "MHA vs per-head GSL") {
                    AttentionOracleChecks.multiHeadMatchesReference(f, q: q, k: k, v: v, heads: 4, mask: .none, context: "d_model 16, 4 heads")
                        .and(AttentionOracleChecks.multiHeadMatchesReference(f, q: x, k: x, v: x, heads: 2, mask: .causal(), context: "causal, d_model 16, 2 heads"))
                },
                NamedCheck(name: "MHA causality") {
                    AttentionOracleChecks.causality({ try f($0, $0, $0, 4, .causal()) }, x: x, position: 3, seed: 45, context: "4 heads")
                },
            ]
        case .crossAttention(let f):
            return [NamedCheck(name: "cross-attention ignores source padding") {
                CheckSupport.guarded("cross-attention layer") {
                    var rng = SeededRNG(seed: 51)
                    let layer = try MultiHeadAttention(modelWidth: 8, heads: 2, std: 0.5, rng: &rng)
                    return AttentionOracleChecks.crossAttentionIgnoresSourcePadding(
                        f, layer: layer, target: CheckSupport.matrix(5, 8, seed: 52), targetValid: 5,
                        source: CheckSupport.matrix(7, 8, seed: 53), sourceValid: 3, seed: 54)
                }
            }]
        case .layerNorm(let f):
            return [NamedCheck(name: "LayerNorm vs GSL population variance") {
                LayerChecks.layerNormMatchesGSL(f, rows: 5, dimension: 16, seed: 61).and(LayerChecks.layerNormMatchesGSL(f, rows: 3, dimension: 7, seed: 62))
            }]
        case .activation(let f):
            return [
                NamedCheck(name: "gelu vs gsl_sf_erf") { LayerChecks.geluMatchesErf(f) },
                NamedCheck(name: "gelu_new vs tanh form") { LayerChecks.geluTanhMatchesTanh(f) },
            ]
        case .cachedDecoder(let f):
            return [NamedCheck(name: "KV cache = recompute") {
                CheckSupport.guarded("tiny decoder") {
                    DecoderChecks.cacheEqualsRecompute(f, model: try DecoderChecks.tinyModel(), prompt: [5, 9, 2, 33], continuation: [17, 8, 1, 30])
                }
            }]
        case .samplingFilter(let f):
            return [
                NamedCheck(name: "nucleus keeps the crossing token") { SamplingChecks.nucleusKeepsCrossingToken(f) },
                NamedCheck(name: "top-p 0 keeps the argmax") { SamplingChecks.topPZeroKeepsArgmax(f) },
                NamedCheck(name: "top-p 1 keeps all") { SamplingChecks.topPOneKeepsAll(f) },
                NamedCheck(name: "top-k keeps exactly k") { SamplingChecks.topKKeepsExactlyK(f) },
            ]
        case .beamSearch(let f):
            return [NamedCheck(name: "exhaustive beam = brute force (α, stop tokens)") { DecoderChecks.beamMatchesBruteForceSweep(f) }]
        case .optimizer(let f):
            let run: ([Double], [[Double]], TrainingChecks.Hyper) throws -> [Double] = { theta, g, h in
                try f(theta, g, AdamHyperparameters(learningRate: h.learningRate, beta1: h.beta1, beta2: h.beta2, epsilon: h.epsilon, weightDecay: h.weightDecay))
            }
            return [
                NamedCheck(name: "AdamW closed form") { TrainingChecks.adamWClosedForm(run) },
                NamedCheck(name: "zero gradient only decays") { TrainingChecks.zeroGradientOnlyDecays(run) },
                NamedCheck(name: "AdamW, varying gradients") { TrainingChecks.adamWVaryingGradients(run) },
            ]
        case .loss(let f):
            return [
                NamedCheck(name: "smoothed CE closed form") { TrainingChecks.lossMatchesClosedForm(f) },
                NamedCheck(name: "ignored positions do not count") { TrainingChecks.ignoredPositionsDoNotCount(f) },
            ]
        case .bleu(let f):
            return [NamedCheck(name: "BLEU brevity penalty is corpus-level") { MetricChecks.corpusLevelBrevityPenalty(f) }]
        case .entityF1(let f):
            return [NamedCheck(name: "entity F1 ignores O") { MetricChecks.entityF1IgnoresO(f) }]
        case .rotary(let f):
            return [
                NamedCheck(name: "RoPE vs GSL rotation") {
                    var verdict = Verdict.pass
                    for convention in RotaryEmbedding.Convention.allCases {
                        for (offset, seed) in [(0, UInt(71)), (2_000, 72), (99_990, 73)] {
                            verdict = verdict.and(RoPEChecks.matchesGSL({ try f($0, $1, $2, $3, $4) }, rows: 6, heads: 2, headWidth: 16,
                                                                        positionOffset: offset, convention: convention, seed: seed))
                        }
                    }
                    return verdict
                },
                NamedCheck(name: "RoPE scores depend only on m − n") {
                    RoPEChecks.scoreDependsOnlyOnOffset({ try f($0, $1, $2, $3, $4) }, headWidth: 16, convention: .halfSplit,
                                                        pairs: [(3, 1), (40, 45)], shifts: [7, 3_000], seed: 74)
                },
            ]
        case .ropeConversion(let f):
            return [NamedCheck(name: "converted RoPE layer vs reference of the original") {
                CheckSupport.guarded("half-split layer, 2 heads, d_head 8") {
                    var rng = SeededRNG(seed: 75)
                    let layer = try MultiHeadAttention(modelWidth: 16, heads: 2, positions: .rope(try RotaryEmbedding(headWidth: 8)), std: 0.5, rng: &rng)
                    let (ref, bound) = try AttentionLayerChecks.reference(layer, x: CheckSupport.matrix(7, 16, seed: 76))
                    let converted = try f(layer)
                    guard case .rope(let rope) = converted.positions, rope.convention == .interleaved else {
                        return .fail("the converted layer does not run interleaved RoPE: \(converted.positions)")
                    }
                    return compare(try converted(CheckSupport.matrix(7, 16, seed: 76), mask: .causal()).storage, ref, .absolute(bound),
                                   "interleaved layer from half-split weights vs the half-split reference")
                }
            }]
        case .alibiSlopes(let f):
            return [NamedCheck(name: "ALiBi slopes vs closed form") { ALiBiChecks.slopesMatchClosedForm({ try f($0) }, heads: Array(1...24)) }]
        case .cachedAttention(let f):
            return [NamedCheck(name: "cached attention (RoPE, ALiBi) = reference of the prefix") {
                var verdict = Verdict.pass
                for (positions, seed) in [(AttentionPositions.rope(try! RotaryEmbedding(headWidth: 4)), UInt64(77)), (.alibi, 78)] {
                    verdict = verdict.and(CheckSupport.guarded("\(positions)") {
                        var rng = SeededRNG(seed: seed)
                        let layer = try MultiHeadAttention(modelWidth: 16, heads: 4, kvHeads: 2, positions: positions, std: 0.5, rng: &rng)
                        return AttentionLayerChecks.cacheMatchesReference({ try f($0, $1) }, layer: layer, x: CheckSupport.matrix(8, 16, seed: UInt(seed)),
                                                                          chunkSizes: [3, 1, 1, 2, 1], context: "\(positions), 4 heads, 2 kv heads")
                    })
                }
                return verdict
            }]
        }
    }
}

/// The outcome of one variant: which checks the correct code failed (must be none) and which
/// checks caught the mutant.
public struct VariantResult {
    public let label: String
    public let correctFailures: [(check: String, verdict: Verdict)]
    public let catching: [(check: String, verdict: Verdict)]
    public let survivedChecks: [String]
    /// Caught: the correct implementation passes every check and the mutant fails at least one.
    public var caught: Bool { correctFailures.isEmpty && !catching.isEmpty }
}

public struct BugResult {
    public let bug: Bug
    public let variants: [VariantResult]
    /// Every variant caught.
    public var caught: Bool { variants.allSatisfy(\.caught) }
}

public enum ZooEvaluation {
    public static func evaluate(_ variant: Variant) -> VariantResult {
        let correct = ZooChecks.checks(for: variant.correct).map { ($0.name, $0.run()) }
        let mutant = ZooChecks.checks(for: variant.mutant).map { ($0.name, $0.run()) }
        return VariantResult(label: variant.label,
                             correctFailures: correct.filter { !$0.1.passed }.map { (check: $0.0, verdict: $0.1) },
                             catching: mutant.filter { !$0.1.passed }.map { (check: $0.0, verdict: $0.1) },
                             survivedChecks: mutant.filter { $0.1.passed }.map(\.0))
    }

    public static func evaluate(_ bug: Bug) -> BugResult {
        BugResult(bug: bug, variants: bug.variants.map(evaluate))
    }

    public static func evaluateAll() -> [BugResult] { BugCatalogue.all.map(evaluate) }

    /// "mutation score: 19/19 = 100%" (caught / catalogued, rounded down).
    public static func scoreLine(_ results: [BugResult]) -> String {
        let caught = results.filter(\.caught).count
        let percent = results.isEmpty ? 0 : Int((100 * Double(caught) / Double(results.count)).rounded(.down))
        return "mutation score: \(caught)/\(results.count) = \(percent)%"
    }

    /// The zoo table (Markdown): #, bug, source, the checks that catch each variant, caught yes/no.
    public static func table(_ results: [BugResult]) -> String {
        var lines = ["| # | bug | source | variant: caught by | caught |", "|---|---|---|---|---|"]
        for r in results {
            let variants = r.variants.map { v -> String in
                let by = v.catching.isEmpty ? "nothing" : v.catching.map(\.check).joined(separator: ", ")
                let broken = v.correctFailures.isEmpty ? "" : " (CORRECT CODE FAILS: \(v.correctFailures.map(\.check).joined(separator: ", ")))"
                return "\(v.label): \(by)\(broken)"
            }.joined(separator: "; ")
            lines.append("| \(r.bug.id) | \(r.bug.name) | \(r.bug.citation) | \(variants) | \(r.caught ? "yes" : "NO") |")
        }
        return lines.joined(separator: "\n")
    }
}
