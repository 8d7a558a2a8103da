// Masked-language-model pre-training's two pieces (Devlin et al. 2019, §3.1 "Task #1: Masked LM";
// the self-supervised pre-training of Docs 002 and 003): BERT's masking procedure and the MLM head
// with its loss and backward. See docs/training.md ("Masked-LM pre-training").
import Embedding
import Kernels
import Layers
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
        let (z, u, t, cache) = try forward(h, embedding: embedding, path: path)
        let (value, dz, count) = try loss(logits: z, targets: labels)
        var g = zeroGradient()
        for r in 0..<dz.rows { for c in 0..<dz.cols { g.bias[c] += dz[r, c] } }
        var dE = Matrix(rows: embedding.vocabularySize, cols: embedding.dimension)
        let dt = embedding.tiedLogitsBackward(dz, hidden: t, gradient: &dE, path: path)
        var du = norm.backward(dt, cache: cache, gradient: &g.norm)
        for i in du.storage.indices { du.storage[i] *= Activation.derivative(activation, u.storage[i]) }
        let dh = transform.backward(du, input: h, gradient: &g.transform, path: path)
        return (value, g, dE, dh, count)
    }
}
