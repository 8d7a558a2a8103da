// The bug zoo: real-world Transformer bugs as small variants of the correct code. See docs/bug-zoo.md.
//
// NOT part of the library: the DecoderSpec umbrella does not re-export this module and no CLI
// command reaches it, so no user can select a bug by accident. Only the spec suite
// (Tests/BugZooSpecs, which `make zoo` runs) and notebooks-md/09-bug-zoo.md use it.
//
// Each `Bug` names the mistake, quotes it, cites where it was publicly reported, and carries one or
// more `Variant`s: the mutated implementation beside the correct one, with the same signature as
// the correct implementation's entry point. The checks in Tests/SpecSupport/Checks run against
// both: the correct one must pass every check of its concept, each mutant must fail at least one
// (a "caught" bug). The mutation score is caught bugs / catalogued bugs; 100% is the bar.
import Kernels
import Layers
import Masking
import Models
import TensorCore
import Decoding
import Training

// MARK: - Entry-point signatures (one per concept the zoo mutates)

/// Sinusoidal PE table: rows for positions 0 ..< positions, shape [positions, d].
public typealias PositionalTableFunction = @Sendable (_ positions: Int, _ dimension: Int) throws -> Matrix
/// X' = X + P for X [T, d] (P = the sinusoidal rows of positions 0 ..< T).
public typealias PositionalAddFunction = @Sendable (_ x: Matrix) throws -> Matrix
/// One head of softmax(Q·Kᵀ/√d_k + M)·V: q [Tq, d_k], k [Tk, d_k], v [Tk, d_v] → [Tq, d_v].
public typealias AttentionFunction = @Sendable (_ q: Matrix, _ k: Matrix, _ v: Matrix, _ mask: AttentionMask) throws -> Matrix
/// Multi-head attention on projected Q, K, V [T, d_model] split into `heads` slices → [Tq, d_model].
public typealias MultiHeadFunction = @Sendable (_ q: Matrix, _ k: Matrix, _ v: Matrix, _ heads: Int, _ mask: AttentionMask) throws -> Matrix
/// Decoder cross-attention of `layer`: target states [Tq, d] (valid rows < targetValidLength) attend
/// over the encoder output [Tk, d] (valid rows < sourceValidLength) → [Tq, d].
public typealias CrossAttentionFunction = @Sendable (_ layer: MultiHeadAttention, _ target: Matrix, _ targetValidLength: Int,
                                                     _ source: Matrix, _ sourceValidLength: Int) throws -> Matrix
/// LayerNorm over the last axis: x [T, d], γ [d], β [d], ε → [T, d].
public typealias LayerNormFunction = @Sendable (_ x: Matrix, _ gamma: [Float], _ beta: [Float], _ epsilon: Float) throws -> Matrix
/// A named activation, as a model's config asks for it ("gelu" exact, "gelu_new" tanh), elementwise.
public typealias ActivationFunction = @Sendable (_ function: Activation.Function, _ x: [Float]) throws -> [Float]
/// A KV-cached decoder: feeds `chunks` one after another through one cache (the first is the
/// prompt), returning the logits [V] of the last position after each chunk.
public typealias CachedDecoderFunction = @Sendable (_ model: DecoderOnlyModel, _ chunks: [[Int]]) throws -> [[Float]]
/// The next-token distribution after temperature / top-k / top-p (`LogitsFilter.distribution`).
public typealias SamplingFilterFunction = @Sendable (_ logits: [Float], _ config: SamplingConfig) throws -> [Double]
/// T optimizer steps from θ₀ with the gradients g₁ … g_T (one array per step) → θ_T.
public typealias OptimizerFunction = @Sendable (_ theta: [Double], _ gradients: [[Double]], _ hyper: AdamHyperparameters) throws -> [Double]
/// Mean cross-entropy over rows of logits [N, C] whose target is not `ignoreIndex`, with label smoothing ε.
public typealias LossFunction = @Sendable (_ logits: Matrix, _ targets: [Int], _ ignoreIndex: Int, _ labelSmoothing: Double) throws -> Double
/// Adam hyper-parameters: η, β₁, β₂, ε, weight decay λ.
public struct AdamHyperparameters: Sendable, Equatable {
    public var learningRate: Double
    public var beta1: Double
    public var beta2: Double
    public var epsilon: Double
    public var weightDecay: Double
    public init(learningRate: Double = 1e-2, beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8, weightDecay: Double = 0.1) {
        (self.learningRate, self.beta1, self.beta2, self.epsilon, self.weightDecay) = (learningRate, beta1, beta2, epsilon, weightDecay)
    }
}

/// Beam search: (model, prompt [T₀], width and α, limits) → the chosen continuation (`Generator.generate`
/// with `.beam`). The model is an existential so one signature serves any `AutoregressiveModel`.
public typealias BeamSearchFunction = @Sendable (_ model: any AutoregressiveModel, _ prompt: [Int], _ beam: BeamConfig,
                                                 _ config: GenerationConfig) throws -> Generation
/// Corpus BLEU (0…100) of hypotheses against one reference stream.
public typealias BLEUFunction = @Sendable (_ hypotheses: [String], _ references: [String]) throws -> Double
/// Entity-level F1 (0…1) of predicted IOB tag sentences against gold ones.
public typealias EntityF1Function = @Sendable (_ gold: [[String]], _ predicted: [[String]]) throws -> Double

/// An implementation under test, tagged with its entry-point signature.
public enum Implementation: Sendable {
    case positionalTable(PositionalTableFunction)
    case positionalAdd(PositionalAddFunction)
    case attention(AttentionFunction)
    case multiHeadAttention(MultiHeadFunction)
    case crossAttention(CrossAttentionFunction)
    case layerNorm(LayerNormFunction)
    case activation(ActivationFunction)
    case cachedDecoder(CachedDecoderFunction)
    case samplingFilter(SamplingFilterFunction)
    case beamSearch(BeamSearchFunction)
    case optimizer(OptimizerFunction)
    case loss(LossFunction)
    case bleu(BLEUFunction)
    case entityF1(EntityF1Function)
    case rotary(RotaryFunction)
    case ropeConversion(RoPEConversionFunction)
    case alibiSlopes(ALiBiSlopesFunction)
    case cachedAttention(CachedAttentionFunction)

    /// The entry point, for tables: "(positions, d) → PE [positions, d]" etc.
    public var signature: String {
        switch self {
        case .positionalTable: return "(positions, d) throws -> Matrix"
        case .positionalAdd: return "(X) throws -> X + P"
        case .attention: return "(q, k, v, mask) throws -> Matrix"
        case .multiHeadAttention: return "(q, k, v, heads, mask) throws -> Matrix"
        case .crossAttention: return "(layer, target, targetValid, source, sourceValid) throws -> Matrix"
        case .layerNorm: return "(x, γ, β, ε) throws -> Matrix"
        case .activation: return "(function, x) throws -> [Float]"
        case .cachedDecoder: return "(model, chunks) throws -> [[Float]]"
        case .samplingFilter: return "([Float], SamplingConfig) throws -> [Double]"
        case .beamSearch: return "(model, prompt, BeamConfig, GenerationConfig) throws -> Generation"
        case .optimizer: return "(θ₀, [g_t], hyper) throws -> θ_T"
        case .loss: return "(logits, targets, ignoreIndex, ε) throws -> Double"
        case .bleu: return "(hypotheses, references) throws -> Double"
        case .entityF1: return "(gold, predicted) throws -> Double"
        case .rotary: return "(x, d_head, offset, base, convention) throws -> Matrix"
        case .ropeConversion: return "(half-split layer) throws -> interleaved layer"
        case .alibiSlopes: return "(heads) throws -> [Float]"
        case .cachedAttention: return "(layer, chunks) throws -> [Matrix]"
        }
    }
}

/// The concept a bug mutates (the module whose correct code the variant copies).
public enum Concept: String, Sendable, CaseIterable {
    case positionalEncoding = "positional encoding"
    case attention = "attention"
    case masking = "masking"
    case normalization = "layer norm"
    case activation = "activation"
    case kvCache = "KV cache"
    case sampling = "sampling"
    case beamSearch = "beam search"
    case optimizer = "optimizer"
    case loss = "loss"
    case metrics = "metrics"
}

/// One mutant: a label, the wrong implementation, and the correct one it mutates (same signature).
public struct Variant: Sendable {
    public let label: String
    public let mutant: Implementation
    public let correct: Implementation
    public init(_ label: String, mutant: Implementation, correct: Implementation) {
        self.label = label
        self.mutant = mutant
        self.correct = correct
    }
}

/// One catalogued bug.
public struct Bug: Sendable, Identifiable {
    /// The number in docs/bug-zoo.md's table.
    public let id: Int
    /// A short name.
    public let name: String
    /// The mistake, quoted (code or prose as reported).
    public let mistake: String
    /// Where it was publicly reported ("common; spec it" when it is folklore, not one thread).
    public let citation: String
    /// The concept it mutates.
    public let concept: Concept
    /// One or more wrong implementations; the bug is caught when every one fails a check.
    public let variants: [Variant]
}
