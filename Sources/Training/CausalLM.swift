// The decoder-only language model's training step: next-token prediction over packed sequences,
// the tied head, cross-entropy, and the whole backward. See docs/training.md ("Causal language model").
import Embedding
import Kernels
import Layers
import Models
import PositionalEncoding
import TensorCore

extension DecoderOnlyModel: ParameterContainer {
    /// `wte`, `wpe` (learned positions only), `h.N.…` (each layer under the names `TransformerLayer` visits), `ln_f`: the
    /// names of training checkpoints. `save(directory:)` writes GPT-2's own layout for Hugging Face.
    public mutating func visitParameters(prefix: String, _ body: (String, [Int], inout [Float]) throws -> Void) rethrows {
        try body(join(prefix, "wte.weight"), [tokenEmbedding.weight.rows, tokenEmbedding.weight.cols], &tokenEmbedding.weight.storage)
        if let shape = positions.map({ [$0.weight.rows, $0.weight.cols] }) {  // learned positions only
            try body(join(prefix, "wpe.weight"), shape, &positions!.weight.storage)
        }
        for i in layers.indices { try layers[i].visitParameters(prefix: join(prefix, "h.\(i)"), body) }
        try finalNorm.visitParameters(prefix: join(prefix, "ln_f"), body)
    }
}

/// Token sequences (documents, or windows of one) packed row after row for causal-LM training.
/// Sequence s = x₀ … x_n gives n rows: input x_t predicts label x_{t+1}. Each sequence attends
/// (causally) to its own rows only, so no token ever sees another document.
public struct CausalLMBatch: Sendable, Equatable {
    /// The inputs x₀ … x_{n−1} of every sequence, packed (positions restart at 0 per sequence).
    public var inputs: PackedBatch
    /// One label per packed row: x₁ … x_n of every sequence.
    public var labels: [Int]

    /// - Throws: `.emptySequence` for no sequences, or a sequence of fewer than 2 tokens (nothing to predict).
    public init(sequences: [[Int]]) throws {
        for (s, seq) in sequences.enumerated() where seq.count < 2 {
            throw DecoderSpecError.emptySequence(what: "sequence \(s) of the batch has \(seq.count) token(s); next-token prediction needs 2 or more")
        }
        inputs = try PackedBatch(sequences.map { Array($0.dropLast()) })
        labels = sequences.flatMap { $0.dropFirst() }
    }
}

extension DecoderOnlyModel {
    /// Mean next-token cross-entropy over the batch's labels and, with `wantGradient`, its
    /// gradient with respect to every parameter. Also returns the logits [Σn, V].
    ///
    ///     h⁰ = E[x] (+ P[position]), or E[x]·√d + PE(position);  hˡ = Block_l(hˡ⁻¹)  (causal, within each sequence)
    ///     z  = LN_f(h^L)·Eᵀ,   L = CE(z, labels)
    ///
    /// P is the learned or the sinusoidal table (positions restart at 0 in every window); RoPE and
    /// ALiBi act inside the blocks' attention. Backward, in reverse: dU = dZ·E and dE += dZᵀ·U (the
    /// tied head); through LN_f and the blocks; then the scatter-adds dE[x_t] += dh⁰_t (·√d when scaled) and, for a
    /// learned table, dP[position_t] += dh⁰_t (the sinusoidal table has no parameters).
    public func lossAndGradient(_ batch: CausalLMBatch, loss: CrossEntropyLoss, path: KernelPath, wantGradient: Bool)
        throws -> (loss: Double, gradient: DecoderOnlyModel?, labelled: Int, logits: Matrix)
    {
        for seq in batch.inputs.sequences where seq.count > contextLength {
            throw DecoderSpecError.invalidArgument(what: "sequence of \(seq.count + 1) tokens",
                                                   reason: "more than context length \(contextLength) + 1 (the last token is only a label)")
        }
        let (top, caches) = try trainingForward(batch.inputs, path: path)
        let head = try TiedHeadLoss(top, norm: finalNorm, table: tokenEmbedding, loss: loss, targets: batch.labels, path: path)
        guard wantGradient else { return (head.loss, nil, head.labelled, head.logits) }

        var g = zeroGradient()
        let dTop = head.backward(norm: finalNorm, table: tokenEmbedding, normGradient: &g.finalNorm, tableGradient: &g.tokenEmbedding.weight,
                                 path: path)
        backward(dTop, inputs: batch.inputs, caches: caches, gradient: &g, path: path)
        return (head.loss, g, head.labelled, head.logits)
    }

    /// The trunk's training forward over packed rows: h⁰ = E[x] (+ P[position]), or E[x]·√d +
    /// PE(position); hˡ = Block_l(hˡ⁻¹), causal within each segment of `inputs` (a segment's key
    /// padding, if any, is applied too). Returns h^L [ΣT, d], before LN_f, and the blocks' caches.
    /// The language model's loss and the sequence classifier (`SequenceClassifier`) both start here.
    /// - Throws: `.invalidArgument` for a sequence longer than the context; `.idOutOfRange` for an id
    ///   outside the vocabulary.
    public func trainingForward(_ inputs: PackedBatch, path: KernelPath) throws -> (Matrix, [TransformerLayerCache]) {
        for seq in inputs.sequences where seq.count > contextLength {
            throw DecoderSpecError.invalidArgument(what: "sequence of \(seq.count) tokens", reason: "longer than the model's context of \(contextLength)")
        }
        var h = try tokenEmbedding.lookup(inputs.ids, scaled: scalesEmbeddings, path: path)  // h⁰
        if let table = try absolutePositionTable() {
            h.addInPlace(try EmbeddingTable(weight: table).lookup(inputs.positions, path: path))
        }
        return layers.trainingForward(h, segments: inputs.segments, path: path)
    }

    /// Backward of `trainingForward` from dL/dh^L [ΣT, d]: through the blocks, then the scatter-adds
    /// dE[x_t] += dh⁰_t (·√d when scaled) and, for a learned table, dP[position_t] += dh⁰_t (the
    /// sinusoidal table has no parameters). Accumulates into `g`.
    public func backward(_ dTop: Matrix, inputs: PackedBatch, caches: [TransformerLayerCache], gradient g: inout DecoderOnlyModel, path: KernelPath) {
        var noMemory: Matrix? = nil
        let dh = layers.backward(dTop, caches: caches, gradient: &g.layers, dMemory: &noMemory, path: path)
        EmbeddingTable.backward(ids: inputs.ids, dOut: dh, scale: scalesEmbeddings ? tokenEmbedding.scaleFactor : 1,
                                gradient: &g.tokenEmbedding.weight)
        if g.positions != nil {
            PositionalEncodingBackward.learned(positions: inputs.positions, dOut: dh, gradient: &g.positions!.weight)
        }
    }

    /// The table added to the token embeddings, [contextLength, d]: learned or sinusoidal; nil for
    /// the schemes without one.
    func absolutePositionTable() throws -> Matrix? {
        switch config.positionEncoding {
        case .learned:
            guard let positions else { throw DecoderSpecError.invalidArgument(what: "position table", reason: "a model with learned positions needs one") }
            return positions.weight
        case .sinusoidal:
            return try SinusoidalPositionalEncoding(dimension: config.modelWidth, contextLength: contextLength)
                .table(count: contextLength, startingAt: 0, path: path)
        case .none, .rope, .alibi:
            return nil
        }
    }
}
