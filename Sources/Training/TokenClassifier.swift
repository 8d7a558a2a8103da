// The BERT-style encoder's training forward/backward and a token-classification head on top.
// See docs/training.md and docs/finetune-ner.md.
import Embedding
import Kernels
import Layers
import Models
import PositionalEncoding
import TensorCore

/// A batch of sequences packed row after row (no padding): sequence s occupies rows
/// `offsets[s] ..< offsets[s+1]` of every [ΣT, d] activation.
public struct PackedBatch: Sendable, Equatable {
    public var sequences: [[Int]]
    public var ids: [Int]
    public var positions: [Int]
    public var segments: [AttentionSegment]

    /// - Throws: `.emptySequence` for an empty batch or an empty sequence.
    public init(_ sequences: [[Int]]) throws {
        guard !sequences.isEmpty else { throw DecoderSpecError.emptySequence(what: "batch of sequences") }
        self.sequences = sequences
        ids = []
        positions = []
        segments = []
        var start = 0
        for (s, seq) in sequences.enumerated() {
            guard !seq.isEmpty else { throw DecoderSpecError.emptySequence(what: "sequence \(s) of the batch") }
            ids.append(contentsOf: seq)
            positions.append(contentsOf: 0..<seq.count)
            segments.append(.selfAttention(start..<(start + seq.count)))
            start += seq.count
        }
    }

    public var tokenCount: Int { ids.count }
}

public struct EncoderCache: Sendable {
    public var embeddingNorm: LayerNormCache
    public var layers: [TransformerLayerCache]
}

extension EncoderModel {
    /// h⁰ = LN(E_word[ids] + E_pos[positions] + E_type[0]); hˡ = layer_l(hˡ⁻¹), over packed rows.
    /// Equals `hiddenStates` of each sequence (checked by TrainingSpecs).
    /// - Throws: `.idOutOfRange` / `.invalidArgument` for ids or lengths the model cannot take.
    public func trainingForward(_ batch: PackedBatch, path: KernelPath) throws -> (Matrix, EncoderCache) {
        for seq in batch.sequences where seq.count > config.contextLength {
            throw DecoderSpecError.invalidArgument(what: "sequence of \(seq.count) tokens", reason: "longer than context length \(config.contextLength)")
        }
        var x = try wordEmbedding.lookup(batch.ids, path: path)
        x.addInPlace(try EmbeddingTable(weight: positions.weight).lookup(batch.positions, path: path))
        x.addInPlace(try tokenTypeEmbedding.lookup([Int](repeating: 0, count: batch.ids.count), path: path))
        let (h0, nc) = embeddingNorm.trainingForward(x)
        let (h, caches) = layers.trainingForward(h0, segments: batch.segments, path: path)
        return (h, EncoderCache(embeddingNorm: nc, layers: caches))
    }

    /// Backward from dL/dH [ΣT, d] down to the three embedding tables (scatter-adds).
    public func backward(_ dHidden: Matrix, batch: PackedBatch, cache: EncoderCache, gradient g: inout EncoderModel, path: KernelPath) {
        var noMemory: Matrix? = nil
        let dh = layers.backward(dHidden, caches: cache.layers, gradient: &g.layers, dMemory: &noMemory, path: path)
        let dx = embeddingNorm.backward(dh, cache: cache.embeddingNorm, gradient: &g.embeddingNorm)
        EmbeddingTable.backward(ids: batch.ids, dOut: dx, gradient: &g.wordEmbedding.weight)
        PositionalEncodingBackward.learned(positions: batch.positions, dOut: dx, gradient: &g.positions.weight)
        EmbeddingTable.backward(ids: [Int](repeating: 0, count: batch.ids.count), dOut: dx, gradient: &g.tokenTypeEmbedding.weight)
    }
}

/// A token-classification head on the encoder: logits = H·Wᵀ + b, [ΣT, d] → [ΣT, n_labels].
public struct TokenClassifier: ParameterContainer, Sendable {
    public var encoder: EncoderModel
    public var head: Linear
    public var labels: [String]
    /// Optional CRF over the labelled positions (the head's logits are its emissions).
    public var crf: LinearChainCRF? = nil
    /// For a gradient from `lossAndGradient`: the word-embedding rows it wrote (the batch's distinct
    /// ids, sorted; none with `freezeEncoder`) — every other row of that tensor is +0. nil: unknown.
    public var wordEmbeddingGradientRows: [Int]? = nil

    /// The word-embedding table is tensor 0 of the visiting order (`bert.embeddings.word_embeddings.weight`).
    public var rowSupports: [Int: [Int]] {
        get { wordEmbeddingGradientRows.map { [0: $0] } ?? [:] }
        set { wordEmbeddingGradientRows = newValue[0] }
    }

    /// A fresh head N(0, 0.02²) with zero bias, as BERT initializes it.
    /// - Throws: `.invalidArgument` for fewer than 2 labels.
    public init(encoder: EncoderModel, labels: [String], seed: UInt64) throws {
        guard labels.count >= 2 else { throw DecoderSpecError.invalidArgument(what: "labels \(labels)", reason: "need at least 2 classes") }
        var rng = SeededRNG(seed: seed)
        self.encoder = encoder
        self.labels = labels
        head = try Linear(inputSize: encoder.config.modelWidth, outputSize: labels.count, std: 0.02, rng: &rng)
    }

    public init(encoder: EncoderModel, head: Linear, labels: [String]) throws {
        guard head.inputSize == encoder.config.modelWidth, head.outputSize == labels.count else {
            throw DecoderSpecError.shapeMismatch(operation: "TokenClassifier head", expected: "[\(labels.count), \(encoder.config.modelWidth)]",
                                                 actual: "\(head.weight.shape)")
        }
        (self.encoder, self.head, self.labels) = (encoder, head, labels)
    }

    public mutating func visitParameters(prefix: String, _ body: (String, [Int], inout [Float]) throws -> Void) rethrows {
        try encoder.visitParameters(prefix: join(prefix, "bert"), body)
        try head.visitParameters(prefix: join(prefix, "classifier"), body)
        if crf != nil { try crf!.visitParameters(prefix: join(prefix, "crf"), body) }
    }

    /// Logits [ΣT, n_labels] for a packed batch.
    public func logits(_ batch: PackedBatch, path: KernelPath) throws -> Matrix {
        let (h, _) = try encoder.trainingForward(batch, path: path)
        return head.trainingForward(h, path: path)
    }

    /// Loss and gradient for one batch: forward, cross-entropy over `targets` (one per packed row,
    /// `loss.ignoreIndex` where no label), backward. `freezeEncoder` trains the head alone.
    public func lossAndGradient(_ batch: PackedBatch, targets: [Int], loss: CrossEntropyLoss, freezeEncoder: Bool = false,
                                path: KernelPath) throws -> (loss: Double, gradient: TokenClassifier, labelled: Int) {
        let (h, cache) = try encoder.trainingForward(batch, path: path)
        let z = head.trainingForward(h, path: path)
        var g = zeroGradient()
        let (value, dz, count): (Double, Matrix, Int)
        if let crf {
            (value, dz, count) = try crfLoss(crf, logits: z, batch: batch, targets: targets, ignoreIndex: loss.ignoreIndex, gradient: &g.crf!)
        } else {
            (value, dz, count) = try loss(logits: z, targets: targets, path: path)
        }
        let dh = head.backward(dz, input: h, gradient: &g.head, path: path, needInputGradient: !freezeEncoder)
        if !freezeEncoder {
            encoder.backward(dh, batch: batch, cache: cache, gradient: &g.encoder, path: path)
        }
        // The scatter-add wrote the rows of the batch's ids only (none with a frozen encoder).
        g.wordEmbeddingGradientRows = freezeEncoder ? [] : Array(Set(batch.ids)).sorted()
        return (value, g, count)
    }

    /// CRF loss: per sequence, the emissions are the logits at the labelled rows (in order);
    /// L = Σ_sequences NLL / (number of labelled rows), so its scale matches the mean cross-entropy.
    func crfLoss(_ crf: LinearChainCRF, logits z: Matrix, batch: PackedBatch, targets: [Int], ignoreIndex: Int,
                 gradient: inout LinearChainCRF) throws -> (Double, Matrix, Int) {
        let labelled = targets.filter { $0 != ignoreIndex }.count
        var dz = Matrix(rows: z.rows, cols: z.cols)
        guard labelled > 0 else { return (0, dz, 0) }
        var total = 0.0
        var sequenceGradient = crf.zeroGradient()
        for seg in batch.segments {
            let rows = seg.queries.filter { targets[$0] != ignoreIndex }
            guard !rows.isEmpty else { continue }
            var emissions = Matrix(rows: rows.count, cols: z.cols)
            for (i, r) in rows.enumerated() { for c in 0..<z.cols { emissions[i, c] = z[r, c] } }
            let (nll, dE) = try crf.negativeLogLikelihood(emissions, gold: rows.map { targets[$0] }, gradient: &sequenceGradient)
            total += nll
            for (i, r) in rows.enumerated() { for c in 0..<z.cols { dz[r, c] = dE[i, c] / Float(labelled) } }
        }
        let scale = 1 / Float(labelled)
        var flat = sequenceGradient.flattenedParameters()
        for i in flat.indices { flat[i] *= scale }
        var acc = gradient.flattenedParameters()
        for i in acc.indices { acc[i] += flat[i] }
        gradient.setFlattenedParameters(acc)
        return (total / Double(labelled), dz, labelled)
    }
}
