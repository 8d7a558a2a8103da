// Continued masked-LM pre-training: the whole model (encoder + tied MLM head) through the MLM loss
// against gsl_deriv_central, the loss at a uniform decoder = ln V, the task's loss against the
// closed-form cross-entropy of the ungathered logits, dynamic masking keyed by (seed, step, example),
// exact data parallelism, bitwise resume, and the saved directory read back.
// Sources/Training/MaskedLanguageModel.swift, Sources/Applications/MaskedLM.swift.
import DecoderSpec
import Foundation
import GSLOracle
import SpecSupport
import Testing

@Suite("Masked-LM pre-training: the whole model's gradient, ln V at a uniform decoder, dynamic masking, data parallelism, resume, save/load")
struct MaskedLMPretrainingSpecs {
    /// [PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3, [MASK] 4, words 5 … 11.
    static let vocabulary = 12, width = 4
    static let protected: Set<Int> = [0, 1, 2, 3, 4]
    static let sequences: [[Int]] = [[2, 5, 6, 7, 8, 9, 3], [2, 10, 11, 3], [2, 7, 5, 11, 6, 3]]

    static let config = TransformerConfig(vocabularySize: vocabulary, contextLength: 8, tokenTypes: 2, modelWidth: width, heads: 2, layers: 2,
                                          feedForwardWidth: 8, layerNormEpsilon: 1e-5, activation: .gelu)

    /// A tiny encoder with weights larger than BERT's 0.02 (as ModelGradientSpecs.tinyClassifier, so
    /// every path carries a gradient above Float noise) and a head with non-trivial W_t, b_t, γ, β, b.
    static func tinyModel(seed: UInt64) throws -> MaskedLanguageModel {
        var encoder = try EncoderModel.seeded(config, seed: seed)
        var rng = SeededRNG(seed: seed + 1)
        encoder.setFlattenedParameters(encoder.flattenedParameters().map { v in v == 1 || v == 0 ? v + rng.uniform(-0.3, 0.3) : v * 10 })
        var head = try MaskedLMHead.seeded(modelWidth: width, vocabularySize: vocabulary, std: 0.5, epsilon: 1e-5, rng: &rng)
        head.setFlattenedParameters(head.flattenedParameters().map { $0 + rng.uniform(-0.3, 0.3) })
        return try MaskedLanguageModel(encoder: encoder, head: head)
    }

    /// Selection probability 0.5 (not 0.15) so that three short sequences have several labelled rows.
    static func task(path: KernelPath, step: Int = 3) throws -> MaskedLMTask {
        var task = try MaskedLMTask(sequences: sequences, evaluation: sequences, masking: MLMMasking(selectProbability: 0.5), maskID: 4,
                                    vocabularySize: vocabulary, protected: protected, seed: 17, evaluationSeed: 5, path: path)
        task.beginStep(step)
        return task
    }

    static func maskedBatch(_ task: MaskedLMTask) throws -> (PackedBatch, [Int]) {
        let masked = try task.sequences.indices.map { try task.masked(task.sequences[$0], seed: task.seed, step: task.step, example: $0) }
        return (try PackedBatch(masked.map(\.inputs)), masked.flatMap(\.labels))
    }

    @Test("Whole model (encoder + MLM head, E tied) through the MLM loss: every parameter against gsl_deriv_central; naive and parallel",
          arguments: [KernelPath.naive, .parallel])
    func wholeModelGradient(path: KernelPath) throws {
        let task = try Self.task(path: path), model = try Self.tinyModel(seed: 91)
        let all = Array(task.sequences.indices)
        let (batch, labels) = try Self.maskedBatch(task)
        let (z, rows) = try model.logits(batch, labels: labels, path: path)
        #expect(rows.count >= 5, "the fixture should select several positions, selected \(rows.count)")
        let δL = lossNoiseBound(logits: z, labelledRows: Array(rows.indices))
        let r = try task.lossAndGradient(model, examples: all)
        var naiveTask = task
        naiveTask.path = .naive
        let naive = try naiveTask.lossAndGradient(model, examples: all).loss
        #expect(abs(r.loss - naive) <= δL, "premise of δL: |L(\(path)) − L(naive)| = \(abs(r.loss - naive)) exceeds \(δL)")
        let check = LossGradientCheck().run(parameters: model.flattenedParameters(), analytic: r.gradient.flattenedParameters(), lossNoise: δL,
                                            name: "MLM encoder + tied head, \(path)") { p in
            var m = model
            m.setFlattenedParameters(p)
            return try! task.lossAndGradient(m, examples: all).loss
        }
        #expect(check.verdict.passed, "\(check.verdict)")
    }

    @Test("The check can fail: the gradient without the tied table's share (E's gradient zeroed) is rejected")
    func untiedGradientFails() throws {
        let task = try Self.task(path: .naive), model = try Self.tinyModel(seed: 91)
        let all = Array(task.sequences.indices)
        var g = try task.lossAndGradient(model, examples: all).gradient
        g.encoder.wordEmbedding.weight.storage = g.encoder.wordEmbedding.weight.storage.map { _ in 0 }
        let (batch, labels) = try Self.maskedBatch(task)
        let (z, rows) = try model.logits(batch, labels: labels, path: .naive)
        let check = LossGradientCheck().run(parameters: model.flattenedParameters(), analytic: g.flattenedParameters(),
                                            lossNoise: lossNoiseBound(logits: z, labelledRows: Array(rows.indices)), name: "MLM without dE") { p in
            var m = model
            m.setFlattenedParameters(p)
            return try! task.lossAndGradient(m, examples: all).loss
        }
        #expect(!check.verdict.passed)
    }

    /// The model with every row of E equal to row 5 and every head bias `b`: each position's logits
    /// are then one value repeated V times, softmax is uniform, and the loss is ln V at any masking.
    static func uniformDecoder(_ model: MaskedLanguageModel, bias: Float = 0.25) -> MaskedLanguageModel {
        var m = model
        let e = m.encoder.wordEmbedding.weight.row(5)
        for r in 0..<vocabulary { for j in 0..<width { m.encoder.wordEmbedding.weight[r, j] = e[j] } }
        m.head.bias = [Float](repeating: bias, count: vocabulary)
        return m
    }

    /// |L − ln V| allowed. Naive path: each logit is the same scalar loop over the same numbers, so the
    /// V logits of a row are bitwise equal, expf(0) = 1 exactly, and only the Double arithmetic of the
    /// loss rounds: ≤ 4·(n + 2)·2⁻⁵³·(max|z| + ln V) for the mean of n rows. Other paths may sum the
    /// d products of a logit in another order per column: logits of a row then spread by
    /// δ ≤ 2γ_d·S + 2u·(S + |b|), γ_d = d·u/(1 − d·u), u = 2⁻²⁴, S = Σ_k (|γ_k|·√d + |β_k|)·|e_k| (a LayerNorm
    /// output has |x̂_k| < √d); L is within δ of ln V, plus the Float expf of numbers ≠ 0 (≤ 2 ulps of 1
    /// each, so the sum's log moves ≤ 2·2⁻²⁴).
    static func lnVTolerance(_ m: MaskedLanguageModel, path: KernelPath, rows n: Int, maxLogit: Double) -> Double {
        let doubleRounding = 4 * Double(n + 2) * 0x1p-53 * (maxLogit + Foundation.log(Double(vocabulary)))
        guard path != .naive else { return doubleRounding }
        let u = 0x1p-24, d = Double(width)
        let e = m.encoder.wordEmbedding.weight.row(5).map { Double(abs($0)) }
        let s = (0..<width).reduce(0.0) { acc, k in
            acc + (Double(abs(m.head.norm.gamma[k])) * d.squareRoot() + Double(abs(m.head.norm.beta[k]))) * e[k]
        }
        let gamma = d * u / (1 - d * u)
        return 2 * gamma * s + 2 * u * (s + Double(abs(m.head.bias[0]))) + 2 * u + doubleRounding
    }

    @Test("Invariant: decoder rows all equal (and equal biases) ⇒ the task's MLM loss is ln V at every step's masking; naive, optimized, parallel",
          arguments: [KernelPath.naive, .optimized, .parallel])
    func uniformDecoderGivesLnV(path: KernelPath) throws {
        let model = Self.uniformDecoder(try Self.tinyModel(seed: 91))
        let lnV = Foundation.log(Double(Self.vocabulary))
        for step in 1...4 {
            let task = try Self.task(path: path, step: step)
            let r = try task.lossAndGradient(model, examples: Array(task.sequences.indices))
            let (batch, labels) = try Self.maskedBatch(task)
            let (z, rows) = try model.logits(batch, labels: labels, path: path)
            let tol = Self.lnVTolerance(model, path: path, rows: rows.count, maxLogit: Double(z.storage.map { abs($0) }.max() ?? 0))
            #expect(abs(r.loss - lnV) <= tol, "step \(step), \(path): L = \(r.loss), ln V = \(lnV), |Δ| = \(abs(r.loss - lnV)) > \(tol)")
        }
    }

    @Test("The invariant can fail: one decoder row scaled ×3 moves the loss off ln V by more than the tolerance")
    func unequalRowFails() throws {
        var model = Self.uniformDecoder(try Self.tinyModel(seed: 91))
        for j in 0..<Self.width { model.encoder.wordEmbedding.weight[7, j] *= 3 }
        let task = try Self.task(path: .naive)
        let r = try task.lossAndGradient(model, examples: Array(task.sequences.indices))
        let (batch, labels) = try Self.maskedBatch(task)
        let (z, rows) = try model.logits(batch, labels: labels, path: .naive)
        let tol = Self.lnVTolerance(Self.uniformDecoder(model), path: .optimized, rows: rows.count, maxLogit: Double(z.storage.map { abs($0) }.max()!))
        #expect(abs(r.loss - Foundation.log(Double(Self.vocabulary))) > tol, "L = \(r.loss)")
    }

    @Test("The task's loss = the closed-form cross-entropy (Double) of the full, ungathered logits at the positions MLMMasking selected with the (seed, step, example) generator")
    func taskLossMatchesClosedForm() throws {
        let task = try Self.task(path: .naive, step: 2), model = try Self.tinyModel(seed: 93)
        // The masks derived here from the public recipe, not from the task.
        var inputs: [[Int]] = [], labels: [Int] = []
        for (i, ids) in task.sequences.enumerated() {
            var rng = SeededRNG(seed: MaskedLMTask.maskingSeed(17, step: 2, example: i))
            let m = try MLMMasking(selectProbability: 0.5).apply(ids, maskID: 4, vocabularySize: Self.vocabulary, protected: Self.protected, rng: &rng)
            inputs.append(m.inputs)
            labels += m.labels
        }
        let batch = try PackedBatch(inputs)
        let (h, _) = try model.encoder.trainingForward(batch, path: .naive)
        let z = try model.head.logits(h, embedding: model.encoder.wordEmbedding, path: .naive)
        let expected = ModelGradientSpecs.referenceLoss((0..<z.rows).map { z.row($0).doubles }, labels, smoothing: 0, ignore: -100)
        let r = try task.lossAndGradient(model, examples: [0, 1, 2])
        // Float logits, Double accumulation on both sides: a few ULPs of the per-row terms (as the CE spec).
        #expect(Bound.relative(1e-6).allows(r.loss, expected), "task \(r.loss) vs closed form \(expected)")
        let selected = labels.filter { $0 != -100 }.count
        #expect(task.lossDenominator(examples: [0, 1, 2]) == selected && r.tokens == batch.tokenCount)
        #expect(selected >= 5)
    }

    @Test("Dynamic masking: a function of (seed, step, example) — the same at a step whatever the batch, another at the next step; lossDenominator additive")
    func dynamicMasking() throws {
        let a = try Self.task(path: .naive, step: 5), b = try Self.task(path: .naive, step: 6)
        let masksA = try (0..<3).map { try a.masked(a.sequences[$0], seed: a.seed, step: 5, example: $0) }
        let again = try (0..<3).map { try a.masked(a.sequences[$0], seed: a.seed, step: 5, example: $0) }
        let masksB = try (0..<3).map { try b.masked(b.sequences[$0], seed: b.seed, step: 6, example: $0) }
        #expect(masksA.map(\.labels) == again.map(\.labels) && masksA.map(\.inputs) == again.map(\.inputs))
        #expect(masksA.map(\.labels) != masksB.map(\.labels), "step 5 and step 6 drew the same masks")
        for t in [a, b] {
            let whole = t.lossDenominator(examples: [0, 1, 2])!
            #expect(whole == t.lossDenominator(examples: [1])! + t.lossDenominator(examples: [2, 0])!)
        }
        // Protected ids are never selected: [CLS] and [SEP] keep label −100 at every step.
        for step in 1...20 {
            let t = try Self.task(path: .naive, step: step)
            for (i, ids) in t.sequences.enumerated() {
                let m = try t.masked(ids, seed: t.seed, step: step, example: i)
                #expect(m.labels.first == -100 && m.labels.last == -100 && m.inputs.first == 2 && m.inputs.last == 3)
            }
        }
    }

    @Test("Trainer: 2 steps, checkpoint, resume for 2 more = 4 steps straight, bitwise (the masks follow the global step); the held-out loss falls")
    func resume() throws {
        let initial = try Self.tinyModel(seed: 95)
        let task = try Self.task(path: .optimized, step: 0)
        var options = TrainingOptions()
        (options.steps, options.batchSize, options.learningRate, options.seed, options.warmupSteps) = (4, 2, 1e-2, 7, 0)
        var straight = initial
        _ = try Trainer.train(&straight, task: task, options: options) { _ in }
        let dir = try TrainerSpecs.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        options.checkpoint = dir.appendingPathComponent("mlm.safetensors")
        options.stopAfterStep = 2
        var resumed = initial
        _ = try Trainer.train(&resumed, task: task, options: options) { _ in }
        options.stopAfterStep = nil
        _ = try Trainer.train(&resumed, task: task, options: options) { _ in }
        #expect(straight.flattenedParameters().map(\.bitPattern) == resumed.flattenedParameters().map(\.bitPattern))
        #expect(straight.flattenedParameters() != initial.flattenedParameters())
        // Over 40 steps on the three sequences the held-out (fixed-mask) loss must fall.
        options.checkpoint = nil
        options.steps = 40
        var trained = initial
        _ = try Trainer.train(&trained, task: task, options: options) { _ in }
        let before = try task.heldOutLoss(initial, sequences: task.evaluation), after = try task.heldOutLoss(trained, sequences: task.evaluation)
        #expect(before.selected == after.selected && before.selected > 0)
        #expect(after.loss < before.loss, "held-out MLM loss \(before.loss) → \(after.loss)")
        // Its batches on 3 threads (one sequence each): the same bits as on one, and the selected
        // positions the masks define, counted here from the masks themselves.
        var threaded = task
        threaded.evaluationThreads = 3
        let one = try task.heldOutLoss(trained, sequences: task.evaluation, batchSize: 1)
        let three = try threaded.heldOutLoss(trained, sequences: task.evaluation, batchSize: 1)
        #expect(three.loss.bitPattern == one.loss.bitPattern && three.selected == one.selected)
        let selected = try task.evaluation.indices.reduce(0) { n, i in
            try n + task.masked(task.evaluation[i], seed: task.evaluationSeed, step: 0, example: i).labels.filter { $0 != task.loss.ignoreIndex }.count
        }
        #expect(three.selected == selected && after.selected == selected)
    }

    @Test("Save: a BERT directory in BertForMaskedLM's names that EncoderModel.load and MaskedLanguageModel.load read back bitwise; without cls.predictions the head is fresh")
    func saveAndLoad() throws {
        let model = try Self.tinyModel(seed: 97)
        let dir = try TrainerSpecs.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = dir.appendingPathComponent("source"), out = dir.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        try Data(Self.config.huggingFaceJSON(schema: .bert).utf8).write(to: source.appendingPathComponent("config.json"))
        let tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + (5..<Self.vocabulary).map { "w\($0)" }
        try Data((tokens.joined(separator: "\n") + "\n").utf8).write(to: source.appendingPathComponent("vocab.txt"))
        try model.save(to: out, copyingFrom: source)
        let names = try SafeTensorsFile.read(contentsOf: out.appendingPathComponent("model.safetensors")).names
        #expect(names.contains("bert.embeddings.word_embeddings.weight") && names.contains("cls.predictions.transform.dense.weight")
                && names.contains("cls.predictions.bias") && !names.contains { $0.contains("decoder") })
        let (loaded, headLoaded) = try MaskedLanguageModel.load(directory: out) { _, _, _ in
            Issue.record("the saved head should be loaded, not initialised")
            return try MaskedLMHead.identity(modelWidth: Self.width, vocabularySize: Self.vocabulary)
        }
        #expect(headLoaded)
        #expect(loaded.flattenedParameters().map(\.bitPattern) == model.flattenedParameters().map(\.bitPattern))
        let encoder = try EncoderModel.load(directory: out)
        #expect(encoder.flattenedParameters().map(\.bitPattern) == model.encoder.flattenedParameters().map(\.bitPattern))
        // The encoder alone (no cls.predictions): the head comes from `fresh`.
        var bare = model.encoder
        var tensors: [(name: String, shape: [Int], values: [Float])] = []
        bare.visitParameters(prefix: "") { n, s, v in tensors.append((n, s, v)) }
        try SafeTensorsFile.write(tensors, to: source.appendingPathComponent("model.safetensors"))
        let (fresh, freshLoaded) = try MaskedLanguageModel.load(directory: source) { d, v, eps in try MaskedLMHead.identity(modelWidth: d, vocabularySize: v, epsilon: eps) }
        let identity = try MaskedLMHead.identity(modelWidth: Self.width, vocabularySize: Self.vocabulary, epsilon: 1e-5)
        #expect(!freshLoaded && fresh.head == identity)
    }

    @Test("The identity head: t = LN(GELU(h)) exactly (W_t = I, b_t = 0), logits = t·Eᵀ")
    func identityHead() throws {
        let head = try MaskedLMHead.identity(modelWidth: 6, vocabularySize: 5, epsilon: 1e-5)
        let table = try EmbeddingTable(weight: Inputs.matrix(rows: 5, cols: 6, seed: 3))
        let h = Inputs.matrix(rows: 3, cols: 6, seed: 4, range: -2...2)
        let z = try head.logits(h, embedding: table, path: .naive)
        // Reference in Double from the formula: GELU (erf form), LayerNorm (γ = 1, β = 0), dot with each row.
        for r in 0..<3 {
            let a = h.row(r).map { x -> Double in let x = Double(x); return 0.5 * x * (1 + erf(x / 2.0.squareRoot())) }
            let mean = a.reduce(0, +) / 6, variance = a.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / 6
            let t = a.map { ($0 - mean) / (variance + 1e-5).squareRoot() }
            for c in 0..<5 {
                let expected = zip(t, table.weight.row(c)).reduce(0) { $0 + $1.0 * Double($1.1) }
                // A handful of Float operations on O(1) values (GELU, LayerNorm, a 6-term dot): 1e-5 absolute.
                #expect(abs(Double(z[r, c]) - expected) <= 1e-5, "row \(r) col \(c): \(z[r, c]) vs \(expected)")
            }
        }
    }
}
