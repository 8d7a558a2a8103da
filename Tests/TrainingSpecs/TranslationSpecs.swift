import DecoderSpec
import Foundation
import GSLOracle
import SpecSupport
import Testing

/// The encoder-decoder's training step: gradient of the whole model against GSL, training forward
/// against the inference path, and a tiny parallel fixture the model overfits.
@Suite("Translation: seq2seq backward vs gsl_deriv_central, teacher forcing, overfitting a fixture")
struct TranslationSpecs {
    let check = GradientCheck()

    static func tinyModel(seed: UInt64, placement: NormPlacement) throws -> EncoderDecoderModel {
        let config = EncoderDecoderConfig(sourceVocabularySize: 7, targetVocabularySize: 6, contextLength: 8, modelWidth: 4, heads: 2,
                                          encoderLayers: 1, decoderLayers: 1, feedForwardWidth: 6, activation: .gelu, placement: placement)
        var model = try EncoderDecoderModel.seeded(config, seed: seed)
        // GELU, not ReLU: a central difference with h = 1e-2 across a ReLU kink measures neither
        // one-sided slope. Scale the weights up (and move LayerNorm γ, β off 1, 0) so every path carries a gradient
        // well above Float noise, as ModelGradientSpecs does for the encoder.
        var rng = SeededRNG(seed: seed + 1)
        model.setFlattenedParameters(model.flattenedParameters().map { v in v == 1 || v == 0 ? v + rng.uniform(-0.3, 0.3) : v * 3 })
        return model
    }

    /// Two pairs of different lengths: packing, causal masks and per-pair cross-attention all matter.
    static let tinyBatch = try! Seq2SeqBatch(pairs: [(source: [3, 4, 5, 2], target: [3, 5]), (source: [6, 2], target: [4, 4, 5])],
                                             bos: TranslationTokens.bos, eos: TranslationTokens.eos)

    @Test("Teacher forcing: decoder input = <bos> + target, labels = target + <eos>, segments per pair")
    func teacherForcingLayout() throws {
        let b = Self.tinyBatch
        #expect(b.decoderInputs == [[1, 3, 5], [1, 4, 4, 5]])
        #expect(b.labels == [3, 5, 2, 4, 4, 5, 2])
        #expect(b.crossSegments == [AttentionSegment(queries: 0..<3, keys: 0..<4), AttentionSegment(queries: 3..<7, keys: 4..<6)])
        #expect(b.targetSegments.allSatisfy(\.causal) && !b.sourceSegments.contains(where: \.causal))
        #expect(throws: DecoderSpecError.self) { try Seq2SeqBatch(pairs: [(source: [], target: [1])], bos: 1, eos: 2) }
    }

    /// Checks the whole-model gradient of the label-smoothed loss, every parameter (both embedding
    /// tables, the tied head, encoder and decoder layers with cross-attention, final norms), with
    /// LossGradientCheck (GradientCheck.swift) on the naive path and on `TranslationTask`'s
    /// default `KernelPath.optimized` (what `decoder-spec train translate` runs). δL's premise is checked
    /// too: the loss on the two backends differs by at most δL.
    @Test("Whole encoder-decoder: every parameter through the label-smoothed loss; naive and train translate's backend",
          arguments: NormPlacement.allCases, [KernelPath.naive, .optimized])
    func wholeModelGradient(placement: NormPlacement, path: KernelPath) throws {
        let model = try Self.tinyModel(seed: 101, placement: placement)
        let loss = try CrossEntropyLoss(labelSmoothing: 0.1)
        let (value, grad, count) = try model.lossAndGradient(Self.tinyBatch, loss: loss, path: path)
        #expect(count == 7)
        let δL = lossNoiseBound(logits: try model.logits(Self.tinyBatch, path: path), labelledRows: Array(0..<count))
        let naiveValue = try model.lossAndGradient(Self.tinyBatch, loss: loss, path: .naive).loss
        #expect(abs(value - naiveValue) <= δL, "|L(\(path)) − L(naive)| = \(abs(value - naiveValue)) exceeds δL = \(δL)")
        let r = LossGradientCheck().run(parameters: model.flattenedParameters(), analytic: grad.flattenedParameters(), lossNoise: δL,
                                        name: "encoder-decoder (\(placement)), \(path)/\(path)") { p in
            var m = model
            m.setFlattenedParameters(p)
            return try! m.lossAndGradient(Self.tinyBatch, loss: loss, path: path).loss
        }
        #expect(r.verdict.passed, "\(r.verdict)")
    }

    /// The packed training forward must equal the inference path (`encode` + `decode`) per pair.
    /// Same formulas; the training LayerNorm keeps x̂ and the packed attention sums in another
    /// order, so values differ by a few Float roundings through 2 layers: 1e-4 absolute on logits
    /// of size O(1–10) is ≈ 100 ε·|z|, far below any real error (a mask slip changes them by O(1)).
    @Test("Packed training forward equals encode + decode per pair, both backends", arguments: KernelPath.allCases)
    func trainingForwardMatchesInference(path: KernelPath) throws {
        var model = try Self.tinyModel(seed: 103, placement: .pre)
        model.path = path
        let z = try model.logits(Self.tinyBatch, path: path)
        var row = 0
        for (s, input) in zip(Self.tinyBatch.sources, Self.tinyBatch.decoderInputs) {
            let reference = try model.decode(input, memory: model.encode(s))
            let observed = Array(z.storage[(row * z.cols)..<((row + input.count) * z.cols)])
            let v = compare(observed, reference.storage.map(Double.init), .mixed(absolute: 1e-4, relative: 1e-4), "pair starting at row \(row)")
            #expect(v.passed, "\(v)")
            row += input.count
        }
    }

    /// 20 pairs "word sequence → reversed sequence with each word mapped to another vocabulary".
    /// Written here, not by the library: source word i ↔ target word (i * 7) % 16, reversed.
    static func fixture(seed: UInt64) -> [(source: [Int], target: [Int])] {
        var rng = SeededRNG(seed: seed)
        let special = TranslationTokens.special.count
        return (0..<20).map { _ in
            let n = 2 + Int(rng.next() % 4)
            let words = (0..<n).map { _ in Int(rng.next() % 16) }
            return (words.map { $0 + special } + [TranslationTokens.eos], words.reversed().map { ($0 * 7) % 16 + special })
        }
    }

    @Test("A tiny model overfits 20 reversed-and-mapped pairs: greedy and beam-3 decoding reproduce every target")
    func overfitFixture() throws {
        let config = EncoderDecoderConfig(sourceVocabularySize: 19, targetVocabularySize: 19, contextLength: 16, modelWidth: 24, heads: 2,
                                          encoderLayers: 1, decoderLayers: 1, feedForwardWidth: 48, placement: .pre)
        try Self.expectOverfits(EncoderDecoderModel.seeded(config, seed: 5), steps: 200, learningRate: 5e-3) {
            Translator(model: $0, sourceTokenizer: $1, targetTokenizer: $1)
        }
    }

    /// Trains `model` on the 20 fixture pairs (seed 11) with the one loop (`Seq2SeqTask`, seed 17)
    /// and expects greedy and beam-3 decoding to reproduce every target; the Transformer's and the
    /// GRU's overfit specs.
    static func expectOverfits<T: TranslatorProtocol>(_ initial: T.Model, steps: Int, learningRate: Double,
                                                      translator: (T.Model, BPETokenizer) -> T) throws where T.Model: Seq2SeqTrainable {
        let pairs = fixture(seed: 11)
        var model = initial
        var options = TrainingOptions()
        options.steps = steps
        options.batchTokens = 60
        options.bucketWindow = 64
        options.learningRate = learningRate
        options.warmupSteps = 30
        options.weightDecay = 0
        options.seed = 17
        options.logEvery = 1000
        let task = Seq2SeqTask<T.Model>(pairs: pairs, loss: try CrossEntropyLoss(labelSmoothing: 0.1))
        let result = try Trainer.train(&model, task: task, options: options) { _ in }
        // The fixture is already ids; the tokenizers are unused placeholders.
        let bytes = try BPETrainer.train(corpus: [], merges: 0, specialTokens: TranslationTokens.special)
        let translator = translator(model, bytes)
        var wrong: [String] = []
        for (i, p) in pairs.enumerated() {
            let out = try translator.translate(ids: p.source, beams: 1)
            if out != p.target { wrong.append("pair \(i): expected \(p.target), got \(out)") }
            let beam = try translator.translate(ids: p.source, beams: 3)
            if beam != p.target { wrong.append("pair \(i) (beam 3): expected \(p.target), got \(beam)") }
        }
        #expect(wrong.isEmpty, "seed 5/17, \(result.steps) steps, final loss \(result.lastLoggedLoss): \(wrong.joined(separator: "; "))")
    }

    @Test("Save and load round-trip the weights and both tokenizers")
    func saveLoad() throws {
        let verses = (0..<6).map { i in
            ParallelVerse(book: i < 4 ? 1 : 8, chapter: 1, verse: i, source: "in the beginning \(i) God", target: "au commencement \(i) Dieu")
        }
        let data = try TranslationData.prepare(verses: verses, merges: 20, validBooks: [], testBooks: [8])
        #expect(data.train.count == 4 && data.test.count == 2)
        let config = EncoderDecoderConfig(sourceVocabularySize: data.sourceTokenizer.tokens.count, targetVocabularySize: data.targetTokenizer.tokens.count,
                                          contextLength: 32, modelWidth: 8, heads: 2, encoderLayers: 1, decoderLayers: 1, feedForwardWidth: 8, placement: .pre)
        let translator = Translator(model: try EncoderDecoderModel.seeded(config, seed: 1), sourceTokenizer: data.sourceTokenizer, targetTokenizer: data.targetTokenizer)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("translation-spec-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try translator.save(to: dir)
        let loaded = try Translator.load(directory: dir)
        #expect(loaded.model.flattenedParameters() == translator.model.flattenedParameters())
        #expect(loaded.sourceTokenizer.tokens == translator.sourceTokenizer.tokens)
        #expect(try loaded.translate("in the beginning 1 God", beams: 2) == translator.translate("in the beginning 1 God", beams: 2))
        // The evaluation on 3 threads translates each verse as one call on this thread does.
        let concurrent = try translator.evaluate(verses, beams: 2, threads: 3)
        #expect(try concurrent.hypotheses == verses.map { try translator.translate($0.source, beams: 2) })
        // The copy baseline on a split where source == target scores 100.
        let same = [ParallelVerse(book: 1, chapter: 1, verse: 1, source: "a b c d e", target: "a b c d e")]
        // (Double rounding of exp(Σ log pₙ/4) with every pₙ = 1: within 1e-9.)
        #expect(abs(try TranslationData.copyBaseline(same).score - 100) < 1e-9)
    }
}
