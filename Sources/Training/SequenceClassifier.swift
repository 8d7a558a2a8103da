// Sequence classification: one label per sequence from a pooled hidden state — the head Doc 001
// puts on GPT (the last token) and BERT puts on its encoder ([CLS] or the mean), over either trunk.
// See docs/classification.md and docs/training.md ("Sequence classification").
import Kernels
import Layers
import Models
import TensorCore

/// Which row of a sequence's hidden states the head reads.
public enum SequencePooling: String, Sendable, CaseIterable {
    /// p = h[len − 1], the last real (non-pad) token: a causal model's only row that has seen the
    /// whole sequence (Hugging Face's `GPT2ForSequenceClassification`).
    case last
    /// p = h[0], BERT's [CLS] row.
    case first
    /// p = (1/len)·Σ_{t < len} h[t] over the real tokens: sentence-transformers' pooling, the one
    /// all-MiniLM-L6-v2 was trained with.
    case mean
}

/// Sequences for a classifier, right-padded or not. Every token — padding included — is a packed row
/// (positions 0 ..< count per sequence); a sequence's trailing `padID` tokens are masked as keys
/// (`AttentionSegment.keyValidLength`) and never pooled. Sequence s has `lengths[s]` real tokens
/// at rows `rows.segments[s].queries.lowerBound ..< + lengths[s]`.
public struct ClassificationBatch: Sendable, Equatable {
    public var rows: PackedBatch
    /// Real tokens per sequence: the count without its trailing `padID` tokens.
    public var lengths: [Int]

    /// - Throws: `.emptySequence` for no sequences, an empty one, or one made only of `padID`.
    public init(_ sequences: [[Int]], padID: Int? = nil) throws {
        var rows = try PackedBatch(sequences)
        lengths = []
        for (s, seq) in sequences.enumerated() {
            var n = seq.count
            if let padID { while n > 0 && seq[n - 1] == padID { n -= 1 } }
            guard n > 0 else { throw DecoderSpecError.emptySequence(what: "sequence \(s) of the batch (only padding id \(padID!))") }
            lengths.append(n)
            if n < seq.count { rows.segments[s].keyValidLength = n }
        }
        self.rows = rows
    }

    public var count: Int { lengths.count }

    /// The first packed row of sequence s.
    func start(_ s: Int) -> Int { rows.segments[s].queries.lowerBound }
}

/// What a sequence classifier can sit on: a model mapping packed rows to hidden states [ΣT, d], with
/// the backward of that map. `EncoderModel` (BERT-style, bidirectional) and `DecoderOnlyModel`
/// (GPT-style, causal; its hidden states are LN_f(h^L), as GPT-2's `transformer` returns them).
public protocol SequenceTrunk: ParameterContainer, Sendable {
    associatedtype TrunkCache
    /// d, the width of the hidden states.
    var hiddenWidth: Int { get }
    /// The longest sequence the trunk takes.
    var maximumLength: Int { get }
    /// The prefix of the trunk's parameter names inside a classifier (Hugging Face's: "bert", "transformer").
    static var classifierPrefix: String { get }
    /// Hidden states [ΣT, d] of the packed rows, and what the backward needs.
    func trunkForward(_ batch: PackedBatch, path: KernelPath) throws -> (Matrix, TrunkCache)
    /// Accumulates dL/dθ into `gradient` from dL/d(hidden states) [ΣT, d].
    func trunkBackward(_ dHidden: Matrix, batch: PackedBatch, cache: TrunkCache, gradient: inout Self, path: KernelPath)
}

extension EncoderModel: SequenceTrunk {
    public var hiddenWidth: Int { config.modelWidth }
    public var maximumLength: Int { config.contextLength }
    public static var classifierPrefix: String { "bert" }
    /// `trainingForward`: LN(E_word + E_pos + E_type), then the post-norm layers.
    public func trunkForward(_ batch: PackedBatch, path: KernelPath) throws -> (Matrix, EncoderCache) {
        try trainingForward(batch, path: path)
    }
    public func trunkBackward(_ dHidden: Matrix, batch: PackedBatch, cache: EncoderCache, gradient: inout EncoderModel, path: KernelPath) {
        backward(dHidden, batch: batch, cache: cache, gradient: &gradient, path: path)
    }
}

/// The decoder trunk's cache: the blocks' and the final LayerNorm's.
public struct DecoderTrunkCache: Sendable {
    public var layers: [TransformerLayerCache]
    public var finalNorm: LayerNormCache
}

extension DecoderOnlyModel: SequenceTrunk {
    public var hiddenWidth: Int { config.modelWidth }
    public var maximumLength: Int { contextLength }
    public static var classifierPrefix: String { "transformer" }
    /// LN_f(h^L) with h^L from `trainingForward` (the language model's own trunk, causal per sequence).
    public func trunkForward(_ batch: PackedBatch, path: KernelPath) throws -> (Matrix, DecoderTrunkCache) {
        let (top, caches) = try trainingForward(batch, path: path)
        let (h, normCache) = finalNorm.trainingForward(top)
        return (h, DecoderTrunkCache(layers: caches, finalNorm: normCache))
    }
    public func trunkBackward(_ dHidden: Matrix, batch: PackedBatch, cache: DecoderTrunkCache, gradient g: inout DecoderOnlyModel, path: KernelPath) {
        let dTop = finalNorm.backward(dHidden, cache: cache.finalNorm, gradient: &g.finalNorm)
        backward(dTop, inputs: batch, caches: cache.layers, gradient: &g, path: path)
    }
}

/// A sequence-classification head on a trunk:
///
///     H = trunk(x) [ΣT, d];   p_s = pool(H, sequence s) [d];   z_s = p_s·Wᵀ + b [C];   L = CE(z, y)
///
/// Backward: dz = CE′; dW += dZᵀ·P, db += Σ_s dz_s, dP = dZ·W; the pooling's adjoint scatters dP
/// back to rows (last/first: dH[row] = dp_s; mean: dH[t] = dp_s/len_s for each real row t; every
/// other row, padding included, gets 0); then the trunk's backward — the whole model is trained.
public struct SequenceClassifier<Trunk: SequenceTrunk>: ParameterContainer, Sendable {
    public var trunk: Trunk
    /// W [C, d], b [C].
    public var head: Linear
    public var labels: [String]
    public var pooling: SequencePooling

    /// A fresh head N(0, 0.02²) with zero bias (BERT's and GPT-2's initialization).
    /// - Throws: `.invalidArgument` for fewer than 2 labels or a repeated label.
    public init(trunk: Trunk, labels: [String], pooling: SequencePooling, seed: UInt64) throws {
        guard labels.count >= 2 else { throw DecoderSpecError.invalidArgument(what: "labels \(labels)", reason: "need at least 2 classes") }
        guard Set(labels).count == labels.count else { throw DecoderSpecError.invalidArgument(what: "labels \(labels)", reason: "a label appears twice") }
        var rng = SeededRNG(seed: seed)
        head = try Linear(inputSize: trunk.hiddenWidth, outputSize: labels.count, std: 0.02, rng: &rng)
        (self.trunk, self.labels, self.pooling) = (trunk, labels, pooling)
    }

    /// The trunk's tensors under `bert.` / `transformer.`, the head's under `classifier.`.
    public mutating func visitParameters(prefix: String, _ body: (String, [Int], inout [Float]) throws -> Void) rethrows {
        try trunk.visitParameters(prefix: join(prefix, Trunk.classifierPrefix), body)
        try head.visitParameters(prefix: join(prefix, "classifier"), body)
    }

    /// P [B, d]: one pooled row per sequence.
    public func pool(_ h: Matrix, _ batch: ClassificationBatch) -> Matrix {
        var p = Matrix(rows: batch.count, cols: h.cols)
        for s in 0..<batch.count {
            let start = batch.start(s), n = batch.lengths[s]
            switch pooling {
            case .last: for c in 0..<h.cols { p[s, c] = h[start + n - 1, c] }
            case .first: for c in 0..<h.cols { p[s, c] = h[start, c] }
            case .mean:
                for c in 0..<h.cols {
                    var sum: Float = 0
                    for t in start..<(start + n) { sum += h[t, c] }
                    p[s, c] = sum / Float(n)
                }
            }
        }
        return p
    }

    /// The pooling's adjoint: dH [rows, d] from dP [B, d] (zero on every row the pooling does not read).
    func poolBackward(_ dp: Matrix, _ batch: ClassificationBatch, rows: Int) -> Matrix {
        var dh = Matrix(rows: rows, cols: dp.cols)
        for s in 0..<batch.count {
            let start = batch.start(s), n = batch.lengths[s]
            switch pooling {
            case .last: for c in 0..<dp.cols { dh[start + n - 1, c] = dp[s, c] }
            case .first: for c in 0..<dp.cols { dh[start, c] = dp[s, c] }
            case .mean:
                for t in start..<(start + n) { for c in 0..<dp.cols { dh[t, c] = dp[s, c] / Float(n) } }
            }
        }
        return dh
    }

    func checkLengths(_ batch: ClassificationBatch) throws {
        for seq in batch.rows.sequences where seq.count > trunk.maximumLength {
            throw DecoderSpecError.invalidArgument(what: "sequence of \(seq.count) tokens", reason: "longer than the trunk's maximum of \(trunk.maximumLength)")
        }
    }

    /// Logits [B, C].
    /// - Throws: `.invalidArgument` for a sequence longer than the trunk takes; `.idOutOfRange`.
    public func logits(_ batch: ClassificationBatch, path: KernelPath) throws -> Matrix {
        try checkLengths(batch)
        let (h, _) = try trunk.trunkForward(batch.rows, path: path)
        return head.trainingForward(pool(h, batch), path: path)
    }

    /// Mean cross-entropy over the batch's sequences, its gradient for every parameter (trunk and
    /// head), and the logits [B, C].
    /// - Throws: `.shapeMismatch` for a target count other than the batch's; `.idOutOfRange` for a
    ///   target outside 0 ..< C; the trunk's errors.
    public func lossAndGradient(_ batch: ClassificationBatch, targets: [Int], loss: CrossEntropyLoss, path: KernelPath)
        throws -> (loss: Double, gradient: SequenceClassifier, logits: Matrix)
    {
        try checkLengths(batch)
        guard targets.count == batch.count else {
            throw DecoderSpecError.shapeMismatch(operation: "SequenceClassifier targets", expected: "\(batch.count) (one per sequence)", actual: "\(targets.count)")
        }
        let (h, cache) = try trunk.trunkForward(batch.rows, path: path)
        let p = pool(h, batch)
        let z = head.trainingForward(p, path: path)
        let (value, dz, _) = try loss(logits: z, targets: targets, path: path)
        var g = zeroGradient()
        let dp = head.backward(dz, input: p, gradient: &g.head, path: path)
        trunk.trunkBackward(poolBackward(dp, batch, rows: h.rows), batch: batch.rows, cache: cache, gradient: &g.trunk, path: path)
        return (value, g, z)
    }

    /// The argmax class of each sequence, in batches of `batchSize` sequences.
    public func predict(_ sequences: [[Int]], padID: Int? = nil, path: KernelPath, batchSize: Int = 64) throws -> [Int] {
        try Validate.positive(batchSize, "batch size")
        var out: [Int] = []
        out.reserveCapacity(sequences.count)
        var start = 0
        while start < sequences.count {
            let z = try logits(ClassificationBatch(Array(sequences[start..<min(sequences.count, start + batchSize)]), padID: padID), path: path)
            for r in 0..<z.rows {
                var best = 0
                for c in 1..<z.cols where z[r, c] > z[r, best] { best = c }
                out.append(best)
            }
            start += batchSize
        }
        return out
    }
}
