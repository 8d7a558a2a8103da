import DecoderSpec
import Foundation
import GSLOracle
import SpecSupport
import Testing

/// The recurrent baseline's training step: backpropagation through time of the GRU cell and of the
/// whole GRU encoder-decoder (attention included) against `gsl_deriv_central`, its data-parallel
/// step, and the fixture `TranslationSpecs` overfits.
@Suite("GRU translation: BPTT vs gsl_deriv_central (cell and whole model), data parallelism, overfitting a fixture")
struct GRUTranslationSpecs {
    /// Ragged sequences (lengths 3, 1, 4, 2) so the packing, the carry of sequences that end early
    /// and h_0 all matter. Checks dW, dU, db, dx and dh_0 of L = Σ G·H over every state.
    @Test("GRU cell: BPTT over a packed batch of ragged sequences, every parameter, input and initial state", arguments: KernelPath.allCases)
    func cellBackward(path: KernelPath) throws {
        let (n, h) = (3, 4)
        let packing = try GRUPacking(lengths: [3, 1, 4, 2])
        let cell = try GRUCell(inputWeight: Inputs.matrix(rows: 3 * h, cols: n, seed: 801, range: -1.2...1.2),
                               hiddenWeight: Inputs.matrix(rows: 3 * h, cols: h, seed: 802, range: -1.2...1.2),
                               bias: Inputs.matrix(rows: 1, cols: 3 * h, seed: 803, range: -0.5...0.5).storage)
        let x = Inputs.matrix(rows: packing.rowCount, cols: n, seed: 804, range: -1.5...1.5)
        let h0 = Inputs.matrix(rows: packing.counts[0], cols: h, seed: 805, range: -0.8...0.8)
        let G = projectionWeights(packing.rowCount * h, seed: 806)
        let trace = try cell.trainingForward(x, packing: packing, initial: h0, path: path)
        var gradient = cell.zeroGradient()
        let (dx, dh0) = cell.backward(matrixFromWeights(G, rows: packing.rowCount, cols: h), trace: trace, gradient: &gradient, path: path)
        let sizes = (cell: cell.parameterCount, x: x.storage.count)
        let θ = cell.flattenedParameters() + x.storage + h0.storage
        let analytic = gradient.flattenedParameters() + dx.storage + dh0.storage
        let r = GradientCheck().run(parameters: θ, weights: G, analytic: analytic, name: "GRU cell BPTT, \(path)") { p in
            var c = cell
            c.setFlattenedParameters(Array(p[0..<sizes.cell]))
            let xs = x.withStorage(Array(p[sizes.cell..<(sizes.cell + sizes.x)]))
            let hs = h0.withStorage(Array(p[(sizes.cell + sizes.x)...]))
            return try! c.trainingForward(xs, packing: packing, initial: hs, path: path).states.storage
        }
        #expect(r.verdict.passed, "\(r.verdict)")
    }

    /// A tiny GRU translator whose weights are scaled up (and zero biases moved off 0) so every path
    /// carries a gradient well above Float noise, as `TranslationSpecs.tinyModel` does.
    static func tinyModel(seed: UInt64, path: KernelPath = .optimized) throws -> GRUTranslationModel {
        var model = try GRUTranslationModel.seeded(GRUTranslationConfig(sourceVocabularySize: 7, targetVocabularySize: 6, embeddingWidth: 3,
                                                                        hiddenWidth: 4, contextLength: 8), seed: seed, path: path)
        var rng = SeededRNG(seed: seed + 1)
        model.setFlattenedParameters(model.flattenedParameters().map { $0 == 0 ? rng.uniform(-0.3, 0.3) : $0 * 2 })
        return model
    }

    /// Every parameter (both tables, both GRUs, W_o, b_o) through the label-smoothed loss of
    /// `TranslationSpecs.tinyBatch` — the Transformer's batch — with `LossGradientCheck`; δL's
    /// premise checked: the loss on the two backends differs by at most δL.
    @Test("Whole GRU encoder-decoder: every parameter through attention, both recurrences and the label-smoothed loss",
          arguments: [KernelPath.naive, .optimized])
    func wholeModelGradient(path: KernelPath) throws {
        let model = try Self.tinyModel(seed: 111)
        let batch = TranslationSpecs.tinyBatch
        let loss = try CrossEntropyLoss(labelSmoothing: 0.1)
        let (value, grad, count) = try model.lossAndGradient(batch, loss: loss, path: path)
        #expect(count == 7)
        let δL = lossNoiseBound(logits: try model.logits(batch, path: path), labelledRows: Array(0..<count))
        let naiveValue = try model.lossAndGradient(batch, loss: loss, path: .naive).loss
        #expect(abs(value - naiveValue) <= δL, "|L(\(path)) − L(naive)| = \(abs(value - naiveValue)) exceeds δL = \(δL)")
        let r = LossGradientCheck().run(parameters: model.flattenedParameters(), analytic: grad.flattenedParameters(), lossNoise: δL,
                                        name: "GRU encoder-decoder, \(path)") { p in
            var m = model
            m.setFlattenedParameters(p)
            return try! m.lossAndGradient(batch, loss: loss, path: path).loss
        }
        #expect(r.verdict.passed, "\(r.verdict)")
    }

    /// The count the GRU step's mean divides by, as data parallelism weighs shards by it (the
    /// two-thread step itself: `DataParallelSpecs.moreTasks`, DataParallelTaskSpecs.swift).
    @Test("lossDenominator = the labels the GRU step's loss divides by (target + <eos> of each pair)")
    func lossDenominatorIsLabels() throws {
        let (task, model) = try DataParallelSpecs.gruSetup()
        let batch = try Seq2SeqBatch(pairs: task.pairs, bos: TranslationTokens.bos, eos: TranslationTokens.eos)
        #expect(batch.labels.count == task.pairs.reduce(0) { $0 + $1.target.count + 1 })
        #expect(task.lossDenominator(examples: [0, 1, 2]) == batch.labels.count)
        #expect(try model.lossAndGradient(batch, loss: task.loss, path: .optimized).labelled == batch.labels.count)
    }

    @Test("A small GRU translator overfits the 20 reversed-and-mapped pairs: greedy and beam-3 decoding reproduce every target")
    func overfitFixture() throws {
        let config = GRUTranslationConfig(sourceVocabularySize: 19, targetVocabularySize: 19, embeddingWidth: 16, hiddenWidth: 32, contextLength: 16)
        try TranslationSpecs.expectOverfits(GRUTranslationModel.seeded(config, seed: 5), steps: 300, learningRate: 1e-2) {
            GRUTranslator(model: $0, sourceTokenizer: $1, targetTokenizer: $1)
        }
    }
}
