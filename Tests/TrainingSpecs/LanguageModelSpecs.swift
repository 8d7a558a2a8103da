import DecoderSpec
import Foundation
import GSLOracle
import SpecSupport
import Testing

/// The decoder-only language model's training step (backward against GSL, training forward against
/// the inference forward), its data pipeline (windows, the book split on the real corpus) and the
/// n-gram baselines (closed forms). See docs/language-model.md.
@Suite("Language model: causal-LM backward vs gsl_deriv_central, windows, n-gram baselines, the Bible split")
struct LanguageModelSpecs {
    static func tinyModel(seed: UInt64, positions: PositionEncodingScheme = .learned) throws -> DecoderOnlyModel {
        let config = TransformerConfig(vocabularySize: 7, contextLength: 8, modelWidth: 4, heads: 2, layers: 2, feedForwardWidth: 6,
                                       activation: .gelu, positionEncoding: positions)
        var model = try DecoderOnlyModel.seeded(config, seed: seed)
        // As TranslationSpecs.tinyModel: GELU (no kink for the central difference), weights scaled up
        // and γ, β moved off 1, 0 so every parameter carries a gradient well above Float noise.
        var rng = SeededRNG(seed: seed + 1)
        model.setFlattenedParameters(model.flattenedParameters().map { v in v == 1 || v == 0 ? v + rng.uniform(-0.3, 0.3) : v * 3 })
        return model
    }

    /// Two windows of different lengths: packing, the causal mask within each and the position restart all matter.
    static let tinyBatch = try! CausalLMBatch(sequences: [[3, 1, 4, 1, 5], [2, 6, 5]])

    @Test("CausalLMBatch: labels are the inputs shifted by one; positions restart per window; each window is its own segment")
    func layout() throws {
        let b = Self.tinyBatch
        #expect(b.inputs.sequences == [[3, 1, 4, 1], [2, 6]])
        #expect(b.labels == [1, 4, 1, 5, 6, 5])
        #expect(b.inputs.positions == [0, 1, 2, 3, 0, 1])
        #expect(b.inputs.segments == [.selfAttention(0..<4), .selfAttention(4..<6)])
        #expect(throws: DecoderSpecError.self) { try CausalLMBatch(sequences: [[3, 1], [4]]) }
        #expect(throws: DecoderSpecError.self) { try CausalLMBatch(sequences: []) }
    }

    /// LossGradientCheck (GradientCheck.swift): every parameter of a 2-layer decoder-only model (token
    /// table = tied head, the learned position table, both blocks, ln_f) through the next-token loss,
    /// for every position scheme (RoPE's rotation and ALiBi's bias inside both blocks' attention) on
    /// the optimized path `train lm` runs, and the learned one on the naive path too; δL's premise
    /// (two paths' losses within δL) as well.
    @Test("Whole decoder-only LM: every parameter through the next-token loss, every position scheme",
          arguments: zip([PositionEncodingScheme.learned, .learned, .none, .sinusoidal, .rope, .alibi],
                         [KernelPath.naive, .optimized, .optimized, .optimized, .optimized, .optimized]))
    func wholeModelGradient(positions: PositionEncodingScheme, path: KernelPath) throws {
        let model = try Self.tinyModel(seed: 201, positions: positions)
        let loss = try CrossEntropyLoss()
        let r0 = try model.lossAndGradient(Self.tinyBatch, loss: loss, path: path, wantGradient: true)
        #expect(r0.labelled == 6)
        let δL = lossNoiseBound(logits: r0.logits, labelledRows: Array(0..<r0.labelled))
        let naive = try model.lossAndGradient(Self.tinyBatch, loss: loss, path: .naive, wantGradient: false).loss
        #expect(abs(r0.loss - naive) <= δL, "|L(\(path)) − L(naive)| = \(abs(r0.loss - naive)) exceeds δL = \(δL)")
        let r = LossGradientCheck().run(parameters: model.flattenedParameters(), analytic: r0.gradient!.flattenedParameters(), lossNoise: δL,
                                        name: "decoder-only LM, \(positions) positions, \(path)") { p in
            var m = model
            m.setFlattenedParameters(p)
            return try! m.lossAndGradient(Self.tinyBatch, loss: loss, path: path, wantGradient: false).loss
        }
        #expect(r.verdict.passed, "\(r.verdict)")
    }

    /// The packed training forward must equal `forward` (the inference path, itself checked against
    /// the Double reference in WholeModelSpecs) per window; the 1e-4 budget is TranslationSpecs'.
    @Test("Packed training logits equal the inference forward per window, every path and position scheme",
          arguments: KernelPath.allCases, PositionEncodingScheme.allCases)
    func trainingForwardMatchesInference(path: KernelPath, positions: PositionEncodingScheme) throws {
        var model = try Self.tinyModel(seed: 203, positions: positions)
        model.path = path
        let z = try model.lossAndGradient(Self.tinyBatch, loss: CrossEntropyLoss(), path: path, wantGradient: false).logits
        var row = 0
        for input in Self.tinyBatch.inputs.sequences {
            let reference = try model.forward(input)
            let observed = Array(z.storage[(row * z.cols)..<((row + input.count) * z.cols)])
            let v = compare(observed, reference.storage.map(Double.init), .mixed(absolute: 1e-4, relative: 1e-4), "window at row \(row)")
            #expect(v.passed, "\(v)")
            row += input.count
        }
    }

    /// Length extrapolation evaluates a copy with a longer context: within the training length it must
    /// compute exactly what the model does (same weights, same positions), and a learned table, which
    /// has no rows beyond its own, must refuse.
    @Test("A longer context changes nothing within the training length; learned positions refuse it",
          arguments: PositionEncodingScheme.allCases)
    func extendingContext(positions: PositionEncodingScheme) throws {
        let model = try Self.tinyModel(seed: 205, positions: positions)
        guard positions != .learned else {
            #expect(throws: DecoderSpecError.self) { try model.extendingContext(to: 16) }
            return
        }
        let longer = try model.extendingContext(to: 32)
        let ids = [3, 1, 4, 1, 5, 6, 2, 6]
        #expect(try longer.forward(ids).storage == model.forward(ids).storage)
        #expect(try longer.forward(ids + ids + ids).rows == 24)
        #expect(throws: DecoderSpecError.self) { try model.forward(ids + ids) }
    }

    @Test("Windows: at most context + 1 tokens, cut inside one document, every token but a document's first a label exactly once")
    func windows() throws {
        var rng = SeededRNG(seed: 5)
        for context in [1, 2, 3, 7, 64] {
            let documents = (0..<20).map { d in (0..<Int(rng.next() % 30)).map { 1000 * d + $0 } }
            let w = try LanguageModelData.windows(documents, context: context)
            #expect(w.allSatisfy { $0.count >= 2 && $0.count <= context + 1 })
            #expect(w.allSatisfy { Set($0.map { $0 / 1000 }).count == 1 }, "a window spans two documents")
            let labels = w.flatMap { $0.dropFirst() }
            #expect(labels.sorted() == documents.flatMap { $0.dropFirst() }.sorted())
        }
        #expect(throws: DecoderSpecError.self) { try LanguageModelData.windows([[1, 2]], context: 0) }
    }

    /// Closed forms on a corpus small enough to count by hand: train "1 2 1 2" (N = 4, V = 3),
    /// scored on the window [1, 2, 2] (labels 2 and 2, previous tokens 1 and 2).
    @Test("n-gram baselines: add-one unigram and interpolated bigram equal their hand-computed closed forms")
    func baselines() {
        let train = [[1, 2, 1, 2]], window = [[1, 2, 2]]
        // P(2) = (2 + 1)/(4 + 3) = 3/7 for both labels: perplexity 7/3.
        let baseline = NGramBaseline(train: train, vocabularySize: 3)
        #expect(abs(baseline.unigramPerplexity(window) - 7.0 / 3) < 1e-12)
        // P(2|1) = λ·2/2 + (1−λ)·3/7; P(2|2) = λ·0/1 + (1−λ)·3/7 (2 precedes a token once, never 2).
        let λ = 0.6, p1 = λ + (1 - λ) * 3 / 7, p2 = (1 - λ) * 3 / 7
        let expected = exp(-(log(p1) + log(p2)) / 2)
        #expect(abs(baseline.bigramPerplexity(window, lambda: λ) - expected) < 1e-12)
    }

    /// The trainer on a corpus with a rule to learn (token t+1 = (t + 3) mod 7 after a random start):
    /// after the first token everything is determined, so held-out perplexity must fall far below the
    /// uniform guess (7) and the add-one unigram baseline (≈ 7 too: every token is equally frequent).
    @Test("The trainer fits a learnable corpus: held-out perplexity far below the uniform guess and the unigram baseline")
    func fitsLearnableCorpus() throws {
        var rng = SeededRNG(seed: 9)
        func document() -> [Int] { let s = Int(rng.next() % 7); return (0..<8).map { (s + 3 * $0) % 7 } }
        let train = (0..<64).map { _ in document() }, valid = (0..<8).map { _ in document() }
        var model = try DecoderOnlyModel.seeded(TransformerConfig(vocabularySize: 7, contextLength: 8, modelWidth: 16, heads: 2, layers: 1), seed: 3)
        var options = TrainingOptions()
        options.steps = 60
        options.batchSize = 16
        options.learningRate = 1e-2
        options.warmupSteps = 5
        options.logEvery = 1000
        _ = try Trainer.train(&model, task: LanguageModelTask(windows: train), options: options, progress: { _ in })
        let perplexity = exp(try LanguageModelTask.meanLoss(model, windows: valid, path: .optimized).loss)
        let unigram = NGramBaseline(train: train, vocabularySize: 7).unigramPerplexity(valid)
        #expect(perplexity < 1.5 && unigram > 6, "perplexity \(perplexity), unigram \(unigram) (uniform 7)")
    }

    /// On the fetched corpus: chapters are documents and the split is by book, so the held-out splits
    /// have exactly those books' chapter counts (Ruth 4, Jonah 4, 1 John 5; Philemon 1, Jude 1 — the
    /// canonical counts, of 1,189 chapters in all), and no held-out verse text is in a training chapter.
    @Test("The Bible as a language-modelling corpus: chapters as documents, split by book",
          .enabled(if: FileManager.default.fileExists(atPath: bibleDatabase.path), "real data not fetched: run scripts/fetch-data"))
    func bibleSplit() throws {
        let verses = try BibleCorpus.verses(database: Self.bibleDatabase, version: "4")
        let split = try BibleCorpus.split(verses, validBooks: TranslationSplit.validBooks, testBooks: TranslationSplit.testBooks)
        let train = LanguageModelData.chapters(split.train), valid = LanguageModelData.chapters(split.valid)
        let test = LanguageModelData.chapters(split.test)
        #expect(test.count == 13 && valid.count == 2 && train.count == 1189 - 15)
        let trainText = Set(split.train.map(\.source))
        #expect(!(split.valid + split.test).contains { trainText.contains($0.source) && $0.source.count > 80 },
                "a long held-out verse is also a training verse")
    }

    /// `LanguageModel.checkTrainedVocabulary`'s premise and its scope. The premise: `BPETrainer.train`
    /// without special tokens (what `train lm` runs) gives the 256 byte symbols in byte order, then one
    /// token per distinct merge result — every token past the bytes produced by a merge, so the check
    /// passes, and it refuses the same vocabulary with the last merge dropped. The scope: Hugging
    /// Face's GPT-2 layout (byte symbols in `bytes_to_unicode` order, "!" first) with
    /// `<|endoftext|>`, which no merge produces, is accepted, as GPT-2 directories must be.
    @Test("Trained BPE vocabularies are bytes + one token per merge (checkTrainedVocabulary passes, and refuses a dropped merge); GPT-2's layout keeps the looser rule")
    func trainedVocabularyIsReachable() throws {
        let corpus = ["In the beginning God created the heaven and the earth.", "And the earth was without form, and void; and darkness was upon the face of the deep."]
        let trained = try BPETrainer.train(corpus: corpus, merges: 30, minFrequency: 1)
        #expect(trained.merges.count == 30)
        #expect(trained.tokens.count == 256 + Set(trained.merges.map { $0.0 + $0.1 }).count)
        #expect((0..<256).allSatisfy { trained.tokens[$0] == String(ByteLevel.byteToScalar[$0]) })
        let dir = URL(fileURLWithPath: "/nonexistent/lm")
        try LanguageModel.checkTrainedVocabulary(trained, directory: dir)
        let cut = try BPETokenizer(tokens: trained.tokens, merges: Array(trained.merges.dropLast()))
        #expect(throws: DecoderSpecError.self) { try LanguageModel.checkTrainedVocabulary(cut, directory: dir) }
        // GPT-2's order: the printable bytes first ("!" … "~", "¡" … "¬", "®" … "ÿ"), then the rest.
        let printable = Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF)
        let gpt2Order = (printable + (0..<256).filter { !printable.contains($0) }).map { String(ByteLevel.byteToScalar[$0]) }
        let gpt2 = try BPETokenizer(tokens: gpt2Order + ["Ġt", "<|endoftext|>"], merges: [("Ġ", "t")])
        try LanguageModel.checkTrainedVocabulary(gpt2, directory: dir)
    }

    static var bibleDatabase: URL {
        BibleCorpus.defaultDatabase(root: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent())
    }
}
