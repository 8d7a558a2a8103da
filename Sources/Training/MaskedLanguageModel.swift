// Masked-language-model pre-training's two pieces (Devlin et al. 2019, §3.1 "Task #1: Masked LM";
// the self-supervised pre-training of Docs 002 and 003): BERT's masking procedure and the MLM head
// with its loss and backward. See docs/training.md ("Masked-LM pre-training").
import Embedding
import Kernels
import Layers
import Models
import TensorCore

/// BERT's masking procedure. Each position whose id is not in `protected` (`[CLS]`, `[SEP]`,
/// padding) is selected independently with probability p = 0.15; a selected position's input
/// becomes
///
///     [MASK]                           with probability 0.8
///     a random id, uniform in 0 ..< V  with probability 0.1   (may equal the original)
///     the original id                  with probability 0.1
///
/// and its label is the original id; every other label is the ignore index −100. (As Hugging Face's
/// `DataCollatorForLanguageModeling`: Bernoulli selection, the random id drawn from the whole vocabulary.)
public struct MLMMasking: Sendable, Equatable {
    public var selectProbability: Double
    public var maskFraction: Double
    public var randomFraction: Double

    /// - Throws: `.invalidArgument` unless every probability is in [0, 1] and mask + random ≤ 1.
    public init(selectProbability: Double = 0.15, maskFraction: Double = 0.8, randomFraction: Double = 0.1) throws {
        for (name, v) in [("selection probability", selectProbability), ("mask fraction", maskFraction), ("random fraction", randomFraction)]
        where !(v >= 0 && v <= 1) {
            throw DecoderSpecError.invalidArgument(what: "MLM \(name) \(v)", reason: "must be in [0, 1]")
        }
        guard maskFraction + randomFraction <= 1 else {
            throw DecoderSpecError.invalidArgument(what: "MLM mask fraction \(maskFraction) + random fraction \(randomFraction)", reason: "must be ≤ 1")
        }
        (self.selectProbability, self.maskFraction, self.randomFraction) = (selectProbability, maskFraction, randomFraction)
    }

    /// (inputs, labels), both [T]. Draws two uniforms per unprotected position (selection, then
    /// the 80/10/10 choice) and one more for a random id, from `rng`.
    /// - Throws: `.idOutOfRange` for an id or `maskID` outside 0 ..< `vocabularySize`.
    public func apply(_ ids: [Int], maskID: Int, vocabularySize: Int, protected: Set<Int>,
                      rng: inout SeededRNG) throws -> (inputs: [Int], labels: [Int]) {
        for (t, id) in (ids + [maskID]).enumerated() where id < 0 || id >= vocabularySize {
            throw DecoderSpecError.idOutOfRange(id: id, position: t, vocabularySize: vocabularySize)
        }
        var inputs = ids, labels = [Int](repeating: CrossEntropyLoss.defaultIgnoreIndex, count: ids.count)
        for (t, id) in ids.enumerated() where !protected.contains(id) {
            guard rng.uniform() < selectProbability else { continue }
            labels[t] = id
            let u = rng.uniform()
            if u < maskFraction {
                inputs[t] = maskID
            } else if u < maskFraction + randomFraction {
                inputs[t] = Int(rng.uniform() * Double(vocabularySize))
            }
        }
        return (inputs, labels)
    }
}

/// BERT's MLM head (`cls.predictions`), its decoder tied to the word embedding E [V, d]:
///
///     u = h·W_tᵀ + b_t,   a = GELU(u),   t = LN(a),   z = t·Eᵀ + b      [T, V]
///     L = mean over labelled rows r of −log softmax(z_r)[y_r]             (`CrossEntropyLoss`)
///
/// h [T, d] are the encoder's last hidden states.
public struct MaskedLMHead: Sendable, Equatable, ParameterContainer {
    /// W_t [d, d], b_t [d] (`transform.dense`).
    public var transform: Linear
    /// `transform.LayerNorm`.
    public var norm: LayerNorm
    /// b [V] (`bias`).
    public var bias: [Float]
    public var activation: Activation.Function

    public init(transform: Linear, norm: LayerNorm, bias: [Float], activation: Activation.Function = .gelu) throws {
        guard transform.inputSize == transform.outputSize, norm.gamma.count == transform.outputSize else {
            throw DecoderSpecError.shapeMismatch(operation: "MaskedLMHead", expected: "W_t [d, d] and LayerNorm of width d",
                                                 actual: "W_t \(transform.weight.shape), LayerNorm [\(norm.gamma.count)]")
        }
        (self.transform, self.norm, self.bias, self.activation) = (transform, norm, bias, activation)
    }

    /// W_t ~ N(0, std²), b_t = 0, γ = 1, β = 0, b = 0.
    public static func seeded(modelWidth d: Int, vocabularySize v: Int, std: Float = 0.02, epsilon: Float = 1e-12,
                              rng: inout SeededRNG) throws -> MaskedLMHead {
        try Validate.positive(v, "vocabulary size")
        return try MaskedLMHead(transform: Linear(inputSize: d, outputSize: d, std: std, rng: &rng), norm: LayerNorm(width: d, epsilon: epsilon),
                                bias: [Float](repeating: 0, count: v))
    }

    /// BERT names under `prefix` (`cls.predictions` in a checkpoint).
    public mutating func visitParameters(prefix: String, _ body: (String, [Int], inout [Float]) throws -> Void) rethrows {
        try transform.visitParameters(prefix: join(prefix, "transform.dense"), body)
        try norm.visitParameters(prefix: join(prefix, "transform.LayerNorm"), body)
        try body(join(prefix, "bias"), [bias.count], &bias)
    }

    /// The forward with what the backward needs: (logits z [T, V], u, a, LayerNorm cache).
    func forward(_ h: Matrix, embedding: EmbeddingTable, path: KernelPath) throws -> (Matrix, Matrix, Matrix, LayerNormCache) {
        guard h.cols == transform.inputSize, embedding.dimension == transform.outputSize, embedding.vocabularySize == bias.count else {
            throw DecoderSpecError.shapeMismatch(operation: "MaskedLMHead", expected: "h [T, \(transform.inputSize)], E [\(bias.count), \(transform.outputSize)]",
                                                 actual: "h \(h.shape), E \(embedding.weight.shape)")
        }
        let u = transform.trainingForward(h, path: path)
        var a = u
        a.storage.withUnsafeMutableBufferPointer { p in
            if p.count > 0 { Activation.apply(activation, path, p.baseAddress!, count: p.count) }
        }
        let (t, cache) = norm.trainingForward(a)
        var z = try embedding.tiedLogits(t, path: path)
        z.addRowVector(bias)
        return (z, u, t, cache)
    }

    /// Logits z [T, V].
    public func logits(_ h: Matrix, embedding: EmbeddingTable, path: KernelPath = .optimized) throws -> Matrix {
        try forward(h, embedding: embedding, path: path).0
    }

    /// The loss over the labelled rows (`labels[t]` = ignore index elsewhere) and its gradients:
    /// the head's, the tied table's dE (from the decoder side only) and dL/dh [T, d], by
    ///
    ///     dz = CE′;  db = Σ_t dz_t;  dt = dz·E, dE += dzᵀ·t;  da = LN′(dt);  du = da ⊙ GELU′(u);
    ///     dW_t += duᵀ·h, db_t += Σ_t du_t, dh = du·W_t
    public func lossAndGradient(_ h: Matrix, labels: [Int], embedding: EmbeddingTable, loss: CrossEntropyLoss,
                                path: KernelPath = .optimized) throws -> (loss: Double, head: MaskedLMHead, embedding: Matrix, hidden: Matrix, count: Int) {
        var dE = Matrix(rows: embedding.vocabularySize, cols: embedding.dimension)
        let r = try lossAndGradient(h, labels: labels, embedding: embedding, loss: loss, path: path, addingTo: &dE)
        return (r.loss, r.head, dE, r.hidden, r.count)
    }

    /// The same, adding the decoder side's dE to `dE` [V, d] (the tied table's gradient, already
    /// holding or about to receive the input side's scatter-add) instead of a fresh matrix.
    public func lossAndGradient(_ h: Matrix, labels: [Int], embedding: EmbeddingTable, loss: CrossEntropyLoss,
                                path: KernelPath, addingTo dE: inout Matrix) throws -> (loss: Double, head: MaskedLMHead, hidden: Matrix, count: Int) {
        let (z, u, t, cache) = try forward(h, embedding: embedding, path: path)
        let (value, dz, count) = try loss(logits: z, targets: labels, path: path)
        var g = zeroGradient()
        for r in 0..<dz.rows { for c in 0..<dz.cols { g.bias[c] += dz[r, c] } }
        let dt = embedding.tiedLogitsBackward(dz, hidden: t, gradient: &dE, path: path)
        var du = norm.backward(dt, cache: cache, gradient: &g.norm)
        for i in du.storage.indices { du.storage[i] *= Activation.derivative(activation, u.storage[i]) }
        let dh = transform.backward(du, input: h, gradient: &g.transform, path: path)
        return (value, g, dh, count)
    }

    /// W_t = I, b_t = 0, γ = 1, β = 0, b = 0: t = LN(GELU(h)), so the logits start as
    /// LN(GELU(h))·Eᵀ — the encoder's output read against the word embeddings, no random projection
    /// in between. The initialisation `decoder-spec pretrain mlm` uses when the checkpoint has no
    /// `cls.predictions.*` (all-MiniLM-L6-v2 has none; docs/pretraining.md compares it with
    /// `seeded`'s N(0, 0.02²) on the held-out loss).
    public static func identity(modelWidth d: Int, vocabularySize v: Int, epsilon: Float = 1e-12) throws -> MaskedLMHead {
        try Validate.positive(v, "vocabulary size")
        try Validate.positive(d, "model width")
        var w = Matrix(rows: d, cols: d)
        for i in 0..<d { w[i, i] = 1 }
        return try MaskedLMHead(transform: Linear(weight: w, bias: [Float](repeating: 0, count: d)), norm: LayerNorm(width: d, epsilon: epsilon),
                                bias: [Float](repeating: 0, count: v))
    }
}

/// BERT for masked-LM pre-training (Hugging Face's `BertForMaskedLM`): the encoder and the MLM
/// head, the head's decoder tied to the encoder's word embedding E — one tensor,
/// `bert.embeddings.word_embeddings.weight`, read at the input and at the output:
///
///     H = Encoder(x̃)  [ΣT, d]     x̃: the masked inputs (`MLMMasking`), packed sequences
///     S = { t : y_t ≠ −100 }      the selected positions
///     L = (1/|S|) Σ_{t∈S} −log softmax(MLMHead(H_t))[y_t]
///     dE = (input side: scatter-add of dL/dx̃) + (decoder side: dzᵀ·t)
///
/// The head runs on the rows of S only (≈ 15 % of the tokens): the other rows' logits carry no loss
/// and no gradient, so gathering S first changes the cost, not the value — the [|S|, V] products are
/// the dearest part of a step (2·V·d flops a row and product, V = 30 522). See docs/pretraining.md.
public struct MaskedLanguageModel: ParameterContainer, Sendable {
    public var encoder: EncoderModel
    public var head: MaskedLMHead

    /// - Throws: `.shapeMismatch` unless the head is of the encoder's width d and vocabulary V.
    public init(encoder: EncoderModel, head: MaskedLMHead) throws {
        let (d, v) = (encoder.config.modelWidth, encoder.config.vocabularySize)
        guard head.transform.inputSize == d, head.bias.count == v else {
            throw DecoderSpecError.shapeMismatch(operation: "MaskedLanguageModel", expected: "an MLM head of width \(d) and vocabulary \(v)",
                                                 actual: "width \(head.transform.inputSize), vocabulary \(head.bias.count)")
        }
        (self.encoder, self.head) = (encoder, head)
    }

    /// `bert.*` (the encoder's Hugging Face names) and `cls.predictions.*`: BertForMaskedLM's names.
    public mutating func visitParameters(prefix: String, _ body: (String, [Int], inout [Float]) throws -> Void) rethrows {
        try encoder.visitParameters(prefix: join(prefix, "bert"), body)
        try head.visitParameters(prefix: join(prefix, "cls.predictions"), body)
    }

    /// The rows of S and their labels.
    func selected(_ labels: [Int], ignoreIndex: Int) -> (rows: [Int], labels: [Int]) {
        let rows = labels.indices.filter { labels[$0] != ignoreIndex }
        return (rows, rows.map { labels[$0] })
    }

    /// The MLM logits [|S|, V] at the selected rows (in order) and S.
    /// - Throws: `.shapeMismatch` unless there is one label per packed row; the encoder's errors.
    public func logits(_ batch: PackedBatch, labels: [Int], ignoreIndex: Int = CrossEntropyLoss.defaultIgnoreIndex,
                       path: KernelPath) throws -> (logits: Matrix, rows: [Int]) {
        try requireLabels(labels, batch)
        let (h, _) = try encoder.trainingForward(batch, path: path)
        let (rows, _) = selected(labels, ignoreIndex: ignoreIndex)
        return (try head.logits(h.gatheringRows(rows), embedding: encoder.wordEmbedding, path: path), rows)
    }

    func requireLabels(_ labels: [Int], _ batch: PackedBatch) throws {
        guard labels.count == batch.tokenCount else {
            throw DecoderSpecError.shapeMismatch(operation: "MaskedLanguageModel labels", expected: "one label per packed token (\(batch.tokenCount))",
                                                 actual: "\(labels.count) labels")
        }
    }

    /// The mean loss over S and, with `wantGradient`, the whole model's gradient (nil otherwise):
    /// forward, head on the rows of S, the head's backward (dE of the decoder side into the
    /// gradient's word-embedding table), dL/dH scattered back to the rows of S (0 elsewhere), the
    /// encoder's backward. |S| = 0: loss 0, zero gradient.
    public func lossAndGradient(_ batch: PackedBatch, labels: [Int], loss: CrossEntropyLoss, path: KernelPath,
                                wantGradient: Bool = true) throws -> (loss: Double, gradient: MaskedLanguageModel?, labelled: Int) {
        try requireLabels(labels, batch)
        let (rows, targets) = selected(labels, ignoreIndex: loss.ignoreIndex)
        guard !rows.isEmpty else { return (0, wantGradient ? zeroGradient() : nil, 0) }
        let (h, cache) = try encoder.trainingForward(batch, path: path)
        let hs = h.gatheringRows(rows)
        guard wantGradient else {
            let z = try head.logits(hs, embedding: encoder.wordEmbedding, path: path)
            let (value, _, count) = try loss(logits: z, targets: targets, path: path)
            return (value, nil, count)
        }
        var g = zeroGradient()
        let r = try head.lossAndGradient(hs, labels: targets, embedding: encoder.wordEmbedding, loss: loss, path: path,
                                         addingTo: &g.encoder.wordEmbedding.weight)
        g.head = r.head
        var dH = Matrix(rows: h.rows, cols: h.cols)
        for (i, row) in rows.enumerated() { for j in 0..<h.cols { dH[row, j] = r.hidden[i, j] } }
        encoder.backward(dH, batch: batch, cache: cache, gradient: &g.encoder, path: path)
        return (r.loss, g, r.count)
    }
}

extension Matrix {
    /// The rows `rows` of self, in that order: [rows.count, cols].
    func gatheringRows(_ rows: [Int]) -> Matrix {
        var out = Matrix(rows: rows.count, cols: cols)
        for (i, r) in rows.enumerated() { for j in 0..<cols { out[i, j] = self[r, j] } }
        return out
    }
}
