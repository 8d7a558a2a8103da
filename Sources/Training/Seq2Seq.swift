// The encoder-decoder's training step: teacher forcing over packed batches, the tied head,
// label-smoothed cross-entropy, and the whole backward (decoder with cross-attention, encoder,
// both embedding tables). See docs/training.md and docs/finetune-translation.md.
import Embedding
import Kernels
import Layers
import Models
import PositionalEncoding
import TensorCore

/// A batch of (source, target) pairs packed row after row (no padding rows, so no padded
/// position ever reaches the loss — the ignore-index is never needed for padding here).
///
/// Teacher forcing: for target y₁…y_m the decoder reads `<bos> y₁ … y_m` and is trained to
/// predict `y₁ … y_m <eos>` (label t is the token after input t).
///
///     encoder rows: source s at rows srcOffset[s] ..< srcOffset[s] + |x_s|   (bidirectional)
///     decoder rows: target s at rows tgtOffset[s] ..< tgtOffset[s] + m_s + 1 (causal)
///     cross-attention: decoder rows of s attend to encoder rows of s only
public struct Seq2SeqBatch: Sendable, Equatable {
    public var sources: [[Int]]
    public var decoderInputs: [[Int]]
    /// One label per packed decoder row.
    public var labels: [Int]
    public var sourceSegments: [AttentionSegment]
    public var targetSegments: [AttentionSegment]
    public var crossSegments: [AttentionSegment]

    /// - Throws: `.emptySequence` for no pairs or an empty source.
    public init(pairs: [(source: [Int], target: [Int])], bos: Int, eos: Int) throws {
        guard !pairs.isEmpty else { throw DecoderSpecError.emptySequence(what: "batch of sentence pairs") }
        (sources, decoderInputs, labels, sourceSegments, targetSegments, crossSegments) = ([], [], [], [], [], [])
        var s0 = 0, t0 = 0
        for (i, pair) in pairs.enumerated() {
            guard !pair.source.isEmpty else { throw DecoderSpecError.emptySequence(what: "source \(i) of the batch") }
            let input = [bos] + pair.target
            sources.append(pair.source)
            decoderInputs.append(input)
            labels.append(contentsOf: pair.target + [eos])
            let src = s0..<(s0 + pair.source.count), tgt = t0..<(t0 + input.count)
            sourceSegments.append(.selfAttention(src))
            targetSegments.append(.selfAttention(tgt, causal: true))
            crossSegments.append(AttentionSegment(queries: tgt, keys: src))
            s0 = src.upperBound
            t0 = tgt.upperBound
        }
    }

    public var sourceTokens: Int { sources.reduce(0) { $0 + $1.count } }
    public var targetTokens: Int { labels.count }
}

/// A model trained on `Seq2SeqBatch`es — the Transformer encoder-decoder (`EncoderDecoderModel`) and
/// the recurrent baseline (`GRUTranslationModel`, GRUSeq2Seq.swift). Each writes its own training
/// forward and backward; the translation task (`Seq2SeqTask`, Applications/Translation.swift) and the
/// gradient-only call below are written once for both.
public protocol Seq2SeqTrainable: ParameterContainer, Sendable {
    /// Mean (label-smoothed) cross-entropy over the batch's labels; with `wantGradient` its gradient
    /// (nil otherwise); the labelled rows; the logits [Σ(m+1), V_tgt].
    func lossAndGradient(_ batch: Seq2SeqBatch, loss: CrossEntropyLoss, path: KernelPath, wantGradient: Bool)
        throws -> (loss: Double, gradient: Self?, labelled: Int, logits: Matrix)
}

extension Seq2SeqTrainable {
    /// The loss, its gradient with respect to every parameter, and the labelled rows.
    public func lossAndGradient(_ batch: Seq2SeqBatch, loss: CrossEntropyLoss, path: KernelPath)
        throws -> (loss: Double, gradient: Self, labelled: Int)
    {
        let r = try lossAndGradient(batch, loss: loss, path: path, wantGradient: true)
        return (r.loss, r.gradient!, r.labelled)
    }
}

extension EncoderDecoderModel: Seq2SeqTrainable {}

extension EncoderDecoderModel: ParameterContainer {
    /// Names in the spirit of Hugging Face's Marian/BART checkpoints. The LM head has no tensor of
    /// its own: it is `decoder.embed_tokens.weight` (tied).
    public mutating func visitParameters(prefix: String, _ body: (String, [Int], inout [Float]) throws -> Void) rethrows {
        let d = config.modelWidth
        try body(join(prefix, "encoder.embed_tokens.weight"), [config.sourceVocabularySize, d], &sourceEmbedding.weight.storage)
        try body(join(prefix, "decoder.embed_tokens.weight"), [config.targetVocabularySize, d], &targetEmbedding.weight.storage)
        for i in encoderLayers.indices { try encoderLayers[i].visitParameters(prefix: join(prefix, "encoder.layers.\(i)"), body) }
        for i in decoderLayers.indices { try decoderLayers[i].visitParameters(prefix: join(prefix, "decoder.layers.\(i)"), body) }
        try encoderNorm.visitParameters(prefix: join(prefix, "encoder.layer_norm"), body)
        try decoderNorm.visitParameters(prefix: join(prefix, "decoder.layer_norm"), body)
    }
}

extension EncoderDecoderModel {
    /// E[ids]·sqrt(d) + PE(position within its own sequence), for sequences packed row after row.
    func packedEmbedding(_ table: EmbeddingTable, _ sequences: [[Int]], path: KernelPath) throws -> Matrix {
        for seq in sequences where seq.count > config.contextLength {
            throw DecoderSpecError.invalidArgument(what: "sequence of \(seq.count) tokens", reason: "longer than context length \(config.contextLength)")
        }
        var x = try table.lookup(sequences.flatMap { $0 }, scaled: true, path: path)
        let d = config.modelWidth
        var row = 0
        for seq in sequences {
            let pe = try positions.table(count: seq.count, startingAt: 0, path: path)
            for i in 0..<(seq.count * d) { x.storage[row * d + i] += pe.storage[i] }
            row += seq.count
        }
        return x
    }

    /// Teacher-forced logits [Σ(m+1), V_tgt] for a packed batch (the training forward without caches).
    public func logits(_ batch: Seq2SeqBatch, path: KernelPath) throws -> Matrix {
        try lossAndGradient(batch, loss: CrossEntropyLoss(), path: path, wantGradient: false).logits
    }

    /// Mean (label-smoothed) cross-entropy over the batch's labels and, with `wantGradient`, its
    /// gradient with respect to every parameter (nil without: validation and `logits` stop after the
    /// loss); also the labelled rows and the logits [Σ(m+1), V_tgt].
    ///
    ///     memory = LN_enc(Encoder(E_src[x]·√d + PE))
    ///     u      = LN_dec(Decoder(E_tgt[<bos> y]·√d + PE, memory))
    ///     logits = u·E_tgtᵀ,   L = CE_ε(logits, y <eos>)
    ///
    /// Backward, in reverse: dU = dZ·E_tgt and dE_tgt += dZᵀ·u (head); through LN_dec and the
    /// decoder layers, which also accumulate dMemory from every cross-attention; the target
    /// scatter-add dE_tgt[y_t] += √d·dX_t (the tied table gets both contributions); then LN_enc,
    /// the encoder layers, and dE_src[x_t] += √d·dX_t. Sinusoidal positions have no parameters.
    public func lossAndGradient(_ batch: Seq2SeqBatch, loss: CrossEntropyLoss, path: KernelPath, wantGradient: Bool)
        throws -> (loss: Double, gradient: EncoderDecoderModel?, labelled: Int, logits: Matrix)
    {
        // Encoder.
        let (h, encoderCaches) = encoderLayers.trainingForward(try packedEmbedding(sourceEmbedding, batch.sources, path: path),
                                                               segments: batch.sourceSegments, path: path)
        let (memory, encoderNormCache) = encoderNorm.trainingForward(h)
        // Decoder (the layers are causal; cross-attention reads each pair's own source rows).
        let (y, decoderCaches) = decoderLayers.trainingForward(try packedEmbedding(targetEmbedding, batch.decoderInputs, path: path),
                                                               segments: batch.targetSegments, memory: memory,
                                                               memorySegments: batch.crossSegments, path: path)
        let head = try TiedHeadLoss(y, norm: decoderNorm, table: targetEmbedding, loss: loss, targets: batch.labels, path: path)
        guard wantGradient else { return (head.loss, nil, head.labelled, head.logits) }

        var g = zeroGradient()
        let dTop = head.backward(norm: decoderNorm, table: targetEmbedding, normGradient: &g.decoderNorm,
                                 tableGradient: &g.targetEmbedding.weight, path: path)
        var dMemory: Matrix? = nil
        let dy = decoderLayers.backward(dTop, caches: decoderCaches, gradient: &g.decoderLayers, dMemory: &dMemory, path: path)
        let scale = targetEmbedding.scaleFactor
        EmbeddingTable.backward(ids: batch.decoderInputs.flatMap { $0 }, dOut: dy, scale: scale, gradient: &g.targetEmbedding.weight)
        let dMemoryNormed = encoderNorm.backward(dMemory ?? Matrix(rows: memory.rows, cols: memory.cols), cache: encoderNormCache,
                                                 gradient: &g.encoderNorm)
        var noMemory: Matrix? = nil
        let dh = encoderLayers.backward(dMemoryNormed, caches: encoderCaches, gradient: &g.encoderLayers, dMemory: &noMemory, path: path)
        EmbeddingTable.backward(ids: batch.sources.flatMap { $0 }, dOut: dh, scale: sourceEmbedding.scaleFactor, gradient: &g.sourceEmbedding.weight)
        return (head.loss, g, head.labelled, head.logits)
    }
}
