// Sequence classification (Sources/Training/SequenceClassifier.swift, Sources/Applications/Classification.swift):
// the whole-model gradient of both trunks through the head against gsl_deriv_central, the head
// reading the last real token (invariant under padding, with a foil that pools a pad row), the
// training forward against the inference forward, the baselines and the score against closed forms,
// the trainer on a learnable task, and the genre split of the real corpus. See docs/classification.md.
import DecoderSpec
import Foundation
import GSLOracle
import SpecSupport
import Testing

@Suite("Sequence classification: GPT-style and BERT-style heads, gradients vs gsl_deriv_central, padding, baselines, the genre split")
struct ClassificationSpecs {
    /// Three classes; pad id 6 (also an ordinary token, so only *trailing* 6s are padding).
    static let labels = ["a", "b", "c"]
    static let pad = 6

    /// One-layer trunks, as LanguageModelSpecs.tinyModel builds them (GELU, weights scaled up, γ and β
    /// moved off 1 and 0, so every parameter carries a gradient well above Float noise). One layer
    /// keeps the checks to seconds; the two-layer trunks' own backward passes are checked in
    /// LanguageModelSpecs and ModelGradientSpecs.
    static func decoder(seed: UInt64) throws -> DecoderOnlyModel {
        let config = TransformerConfig(vocabularySize: 7, contextLength: 8, modelWidth: 4, heads: 2, layers: 1, feedForwardWidth: 6, activation: .gelu)
        var model = try DecoderOnlyModel.seeded(config, seed: seed)
        var rng = SeededRNG(seed: seed + 1)
        model.setFlattenedParameters(model.flattenedParameters().map { v in v == 1 || v == 0 ? v + rng.uniform(-0.3, 0.3) : v * 3 })
        return model
    }

    static func encoder(seed: UInt64) throws -> EncoderModel {
        let config = TransformerConfig(vocabularySize: 7, contextLength: 8, tokenTypes: 2, modelWidth: 4, heads: 2, layers: 1, feedForwardWidth: 6,
                                       layerNormEpsilon: 1e-5, activation: .gelu)
        var model = try EncoderModel.seeded(config, seed: seed)
        var rng = SeededRNG(seed: seed + 1)
        model.setFlattenedParameters(model.flattenedParameters().map { v in v == 1 || v == 0 ? v + rng.uniform(-0.3, 0.3) : v * 10 })
        return model
    }

    /// A head with weights large enough that every trunk parameter's gradient stands above Float noise.
    static func classifier<T: SequenceTrunk>(_ trunk: T, pooling: SequencePooling, seed: UInt64) throws -> SequenceClassifier<T> {
        var c = try SequenceClassifier(trunk: trunk, labels: labels, pooling: pooling, seed: seed)
        var rng = SeededRNG(seed: seed + 7)
        c.head.weight.storage = c.head.weight.storage.map { _ in rng.uniform(-1, 1) }
        c.head.bias = c.head.bias!.map { _ in rng.uniform(-0.2, 0.2) }
        return c
    }

    /// Three sequences, the second right-padded with two pad tokens: packing, the key-padding mask
    /// and the pooled row all enter the loss.
    static let sequences = [[3, 1, 4, 1, 5], [2, 5, 3, 6, 6], [4, 2, 1]]
    static let targets = [0, 2, 1]

    /// LossGradientCheck (GradientCheck.swift) of every parameter, trunk and head, through the
    /// sequence-level cross-entropy; δL from the [B, C] logits, its premise (the loss on `path` and
    /// on the naive path within δL) checked too.
    static func checkWhole<T: SequenceTrunk>(_ model: SequenceClassifier<T>, path: KernelPath, name: String) throws -> LossGradientCheck.Result {
        let batch = try ClassificationBatch(sequences, padID: pad)
        let loss = try CrossEntropyLoss()
        let r0 = try model.lossAndGradient(batch, targets: targets, loss: loss, path: path)
        let δL = lossNoiseBound(logits: r0.logits, labelledRows: Array(targets.indices))
        let naive = try model.lossAndGradient(batch, targets: targets, loss: loss, path: .naive).loss
        #expect(abs(r0.loss - naive) <= δL, "\(name): |L(\(path)) − L(naive)| = \(abs(r0.loss - naive)) exceeds δL = \(δL)")
        return LossGradientCheck().run(parameters: model.flattenedParameters(), analytic: r0.gradient.flattenedParameters(), lossNoise: δL,
                                       name: "\(name), \(path)") { p in
            var m = model
            m.setFlattenedParameters(p)
            return try! m.lossAndGradient(batch, targets: targets, loss: loss, path: path).loss
        }
    }

    @Test("Whole GPT-style classifier: decoder-only trunk + last-token head, every parameter, through the loss (padded batch)",
          arguments: [KernelPath.naive, .parallel])
    func decoderGradient(path: KernelPath) throws {
        let r = try Self.checkWhole(Self.classifier(Self.decoder(seed: 301), pooling: .last, seed: 302), path: path, name: "decoder + last-token head")
        #expect(r.verdict.passed, "\(r.verdict)")
    }

    @Test("Whole BERT-style classifier: encoder trunk + mean or [CLS] head, every parameter, through the loss (padded batch)",
          arguments: zip([SequencePooling.mean, .first], [KernelPath.naive, .parallel]))
    func encoderGradient(pooling: SequencePooling, path: KernelPath) throws {
        let r = try Self.checkWhole(Self.classifier(Self.encoder(seed: 311), pooling: pooling, seed: 312), path: path, name: "encoder + \(pooling) head")
        #expect(r.verdict.passed, "\(r.verdict)")
    }

    /// The padding property as a reusable check: each sequence's logits in a batch where it is
    /// right-padded with 1 … 3 pad tokens equal its logits alone, unpadded. Exact: every kernel
    /// computes a row from that row alone, a padded key's softmax weight is exp(−∞) = 0 exactly, and
    /// adding exact zeros changes no sum. `logits(sequences, padID)` is the implementation under test.
    static func paddingInvariance(_ logits: ([[Int]], Int?) throws -> Matrix) throws -> Verdict {
        let plain = [[3, 1, 4, 1, 5], [2, 5, 3], [4, 2, 1, 2]]
        for extra in 1...3 {
            let padded = plain.enumerated().map { s, seq in seq + [Int](repeating: pad, count: (s + extra) % 4) }
            let z = try logits(padded, pad)
            for (s, seq) in plain.enumerated() {
                let alone = try logits([seq], pad)
                if z.row(s) != alone.row(0) {
                    return .fail("sequence \(s) padded with \((s + extra) % 4) pad tokens: logits \(z.row(s)), alone \(alone.row(0))")
                }
            }
        }
        return Verdict(passed: true, message: "logits invariant under right padding")
    }

    @Test("The head reads the last real token: logits invariant under right padding (GPT-style last, BERT-style mean and [CLS]), every path",
          arguments: KernelPath.allCases)
    func paddingInvariant(path: KernelPath) throws {
        let gpt = try Self.classifier(Self.decoder(seed: 321), pooling: .last, seed: 322)
        let v1 = try Self.paddingInvariance { try gpt.logits(ClassificationBatch($0, padID: $1), path: path) }
        #expect(v1.passed, "GPT-style: \(v1)")
        for pooling in [SequencePooling.mean, .first] {
            let bert = try Self.classifier(Self.encoder(seed: 323), pooling: pooling, seed: 324)
            let v2 = try Self.paddingInvariance { try bert.logits(ClassificationBatch($0, padID: $1), path: path) }
            #expect(v2.passed, "BERT-style \(pooling): \(v2)")
        }
    }

    /// The check can fail: a head that takes the last row whatever it holds (the `hidden[:, -1]` of
    /// a padded batch, here the batch built without its pad id), and a mean over the pad rows too.
    @Test("Foils: pooling the last row (a pad token) or averaging over the pad rows is caught")
    func paddingFoils() throws {
        let gpt = try Self.classifier(Self.decoder(seed: 321), pooling: .last, seed: 322)
        #expect(try !Self.paddingInvariance { sequences, _ in try gpt.logits(ClassificationBatch(sequences), path: .naive) }.passed)
        let bert = try Self.classifier(Self.encoder(seed: 323), pooling: .mean, seed: 324)
        #expect(try !Self.paddingInvariance { sequences, _ in try bert.logits(ClassificationBatch(sequences), path: .naive) }.passed)
    }

    /// The packed training forward against the inference forward (itself checked against the Double
    /// reference in WholeModelSpecs): z = W·p + b with p = LN_f(hiddenStates)[last] for the decoder,
    /// the mean or first row of `hiddenStates` for the encoder, recomputed here in Double from the
    /// inference hidden states. Budget 1e-4 (mixed), TranslationSpecs' and LanguageModelSpecs'.
    @Test("Training logits equal W·pool(inference hidden states) + b, per sequence", arguments: KernelPath.allCases)
    func matchesInference(path: KernelPath) throws {
        func expected(_ rows: Matrix, pick: SequencePooling, head: Linear) -> [Double] {
            let d = rows.cols
            let p: [Double] = (0..<d).map { c in
                switch pick {
                case .last: return Double(rows[rows.rows - 1, c])
                case .first: return Double(rows[0, c])
                case .mean: return (0..<rows.rows).reduce(0.0) { $0 + Double(rows[$1, c]) } / Double(rows.rows)
                }
            }
            return (0..<head.outputSize).map { k in (0..<d).reduce(Double(head.bias![k])) { $0 + Double(head.weight[k, $1]) * p[$1] } }
        }
        var decoder = try Self.decoder(seed: 331)
        decoder.path = path
        let gpt = try Self.classifier(decoder, pooling: .last, seed: 332)
        var encoder = try Self.encoder(seed: 333)
        encoder.path = path
        let bert = try Self.classifier(encoder, pooling: .mean, seed: 334)
        let batch = try ClassificationBatch(Self.sequences, padID: Self.pad)
        let zg = try gpt.logits(batch, path: path), zb = try bert.logits(batch, path: path)
        for (s, n) in batch.lengths.enumerated() {
            let ids = Array(Self.sequences[s].prefix(n))
            let hg = try decoder.finalNorm(decoder.hiddenStates(ids), path: path)
            let vg = compare(zg.row(s), expected(hg, pick: .last, head: gpt.head), .mixed(absolute: 1e-4, relative: 1e-4), "GPT-style sequence \(s)")
            #expect(vg.passed, "\(vg)")
            let vb = compare(zb.row(s), expected(try encoder.hiddenStates(ids), pick: .mean, head: bert.head), .mixed(absolute: 1e-4, relative: 1e-4),
                             "BERT-style sequence \(s)")
            #expect(vb.passed, "\(vb)")
        }
    }

    @Test("Batches: trailing pad tokens are padding, a pad id inside a sequence is a token; bad input is a typed error")
    func batchLayout() throws {
        let b = try ClassificationBatch([[3, 6, 1, 6, 6], [2, 5]], padID: 6)
        #expect(b.lengths == [3, 2])
        #expect(b.rows.segments == [.selfAttention(0..<5, validLength: 3), .selfAttention(5..<7)])
        #expect(throws: DecoderSpecError.self) { try ClassificationBatch([[6, 6]], padID: 6) }
        #expect(throws: DecoderSpecError.self) { try ClassificationBatch([]) }
        let gpt = try Self.classifier(Self.decoder(seed: 341), pooling: .last, seed: 342)
        #expect(throws: DecoderSpecError.self) { try gpt.logits(ClassificationBatch([[1, 2, 3, 4, 5, 1, 2, 3, 4]]), path: .naive) }  // context 8
        #expect(throws: DecoderSpecError.self) { try gpt.lossAndGradient(ClassificationBatch([[1, 2]]), targets: [0, 1], loss: CrossEntropyLoss(), path: .naive) }
        #expect(throws: DecoderSpecError.self) { try gpt.lossAndGradient(ClassificationBatch([[1, 2]]), targets: [3], loss: CrossEntropyLoss(), path: .naive) }
        #expect(throws: DecoderSpecError.self) { try SequenceClassifier(trunk: Self.decoder(seed: 1), labels: ["x"], pooling: .last, seed: 1) }
        #expect(throws: DecoderSpecError.self) { try SequenceClassifier(trunk: Self.decoder(seed: 1), labels: ["x", "x"], pooling: .last, seed: 1) }
    }

    /// Closed forms on a corpus small enough to count by hand (α = 1):
    /// class 0: "a a b", "a c"; class 1: "b b". V = {a, b, c}; counts: class 0 a 3, b 1, c 1 (5);
    /// class 1 b 2 (2). π = (2/3, 1/3); θ₀ = (4, 2, 2)/8; θ₁ = (1, 3, 1)/5.
    @Test("Naive Bayes: log joint equals the hand-computed closed form; unseen words skipped; majority class; macro-F1 by hand")
    func baselines() throws {
        let nb = try NaiveBayesBaseline(documents: ["a a b", "A, c!", "b b"], labels: [0, 0, 1], classes: 2)
        let j = nb.logJoint("a b zzz b")
        let e0 = log(2.0 / 3) + log(4.0 / 8) + 2 * log(2.0 / 8), e1 = log(1.0 / 3) + log(1.0 / 5) + 2 * log(3.0 / 5)
        #expect(abs(j[0] - e0) < 1e-12 && abs(j[1] - e1) < 1e-12, "log joint \(j) vs closed form \([e0, e1])")
        #expect(nb.predict("a b zzz b") == (e0 > e1 ? 0 : 1))
        #expect(nb.predict("b b b") == 1 && nb.predict("a") == 0)
        #expect(try MajorityClassBaseline(trainLabels: [2, 1, 2, 0, 1]).label == 1)  // tie 1 vs 2: the lower index
        // gold a a b c, predicted a b b b: P/R/F1 a = 1/.5/(2/3), b = 1/3/1/.5, c = 0/0/0 → macro F1 (2/3 + 1/2 + 0)/3.
        let s = try ClassificationScore(gold: [0, 0, 1, 2], predicted: [0, 1, 1, 1], labels: ["a", "b", "c"])
        #expect(s.accuracy == 0.5)
        #expect(abs(s.macroF1 - (2.0 / 3 + 0.5) / 3) < 1e-12)
        #expect(throws: DecoderSpecError.self) { try NaiveBayesBaseline(documents: ["a"], labels: [2], classes: 2) }
        #expect(throws: DecoderSpecError.self) { try NaiveBayesBaseline(documents: ["a"], labels: [0], classes: 2, alpha: 0) }
        #expect(throws: DecoderSpecError.self) { try ClassificationScore(gold: [0], predicted: [0, 1], labels: ["a", "b"]) }
        #expect(throws: DecoderSpecError.self) { try MajorityClassBaseline(trainLabels: []) }
    }

    /// A rule only attention can carry to the pooled row: the class is the FIRST token mod 3, the
    /// rest is noise. A causal model must move it to the last token; the encoder's mean must single
    /// it out. Majority accuracy ≈ 1/3; the trained models must reach ≥ 0.9 on held-out sequences.
    @Test("The trainer fits a learnable task with both trunks: held-out accuracy ≥ 0.9, majority ≈ 1/3")
    func fitsLearnableTask() throws {
        var rng = SeededRNG(seed: 17)
        func sample() -> ([Int], Int) {
            let seq = (0..<Int(3 + rng.next() % 4)).map { _ in Int(rng.next() % 6) }
            return (seq, seq[0] % 3)
        }
        let train = (0..<192).map { _ in sample() }, held = (0..<96).map { _ in sample() }
        var options = TrainingOptions()
        options.steps = 100
        options.batchSize = 16
        options.learningRate = 1e-2
        options.warmupSteps = 10
        options.logEvery = 1000
        func accuracy<T: SequenceTrunk>(_ trunk: T, pooling: SequencePooling) throws -> Double {
            var model = try SequenceClassifier(trunk: trunk, labels: Self.labels, pooling: pooling, seed: 5)
            let task = try SequenceClassificationTask<T>(sequences: train.map(\.0), targets: train.map(\.1), loss: CrossEntropyLoss())
            _ = try Trainer.train(&model, task: task, options: options, progress: { _ in })
            return try ClassificationScore(gold: held.map(\.1), predicted: model.predict(held.map(\.0), path: .optimized), labels: Self.labels).accuracy
        }
        let small = TransformerConfig(vocabularySize: 6, contextLength: 8, modelWidth: 16, heads: 2, layers: 1)
        let gpt = try accuracy(DecoderOnlyModel.seeded(small, seed: 3), pooling: .last)
        let bert = try accuracy(EncoderModel.seeded(TransformerConfig(vocabularySize: 6, contextLength: 8, tokenTypes: 1, modelWidth: 16, heads: 2,
                                                                      layers: 1, layerNormEpsilon: 1e-5, activation: .gelu), seed: 4), pooling: .mean)
        let majority = try ClassificationScore(gold: held.map(\.1), predicted: MajorityClassBaseline(trainLabels: train.map(\.1)).predict(held.count),
                                               labels: Self.labels).accuracy
        print(String(format: "learnable task: held-out accuracy GPT-style %.3f, BERT-style %.3f, majority %.3f", gpt, bert, majority))
        #expect(gpt >= 0.9 && bert >= 0.9, "held-out accuracy: GPT-style \(gpt), BERT-style \(bert), majority \(majority)")
        #expect(majority < 0.5)
    }

    @Test("The genre table covers the 66 books in the usual grouping (5 / 12 / 5 / 17 + Revelation / 4 + Acts / 21)")
    func genreTable() {
        var books: [BibleGenre: Int] = [:]
        for b in 1...66 { books[BibleGenre.of(book: b)!, default: 0] += 1 }
        #expect(books == [.law: 5, .history: 12, .wisdom: 5, .prophets: 18, .gospels: 5, .epistles: 21])
        #expect(BibleGenre.of(book: 0) == nil && BibleGenre.of(book: 67) == nil)
        #expect(BibleGenre.validBooks.isDisjoint(with: BibleGenre.testBooks))
        for genre in BibleGenre.allCases {
            let valid = BibleGenre.validBooks.filter { BibleGenre.of(book: $0) == genre }, test = BibleGenre.testBooks.filter { BibleGenre.of(book: $0) == genre }
            let train = (1...66).filter { BibleGenre.of(book: $0) == genre && !valid.contains($0) && !test.contains($0) }
            #expect(!valid.isEmpty && !test.isEmpty && !train.isEmpty, "\(genre): train \(train), valid \(valid), test \(test)")
        }
    }

    @Test("The real genre split: no book in two splits, every genre in every split, labels from the table",
          .enabled(if: FileManager.default.fileExists(atPath: LanguageModelSpecs.bibleDatabase.path), "real data not fetched: run scripts/fetch-data"))
    func realSplit() throws {
        let verses = try BibleCorpus.verses(database: LanguageModelSpecs.bibleDatabase, version: "4")
        let data = try GenreData.prepare(verses: verses)
        let books = [data.train, data.valid, data.test].map { Set($0.map(\.book)) }
        #expect(books[0].isDisjoint(with: books[1]) && books[0].isDisjoint(with: books[2]) && books[1].isDisjoint(with: books[2]))
        #expect(books[1] == BibleGenre.validBooks && books[2] == BibleGenre.testBooks && books[0].count == 66 - 16)
        #expect(data.train.count + data.valid.count + data.test.count == verses.count)
        for split in [data.train, data.valid, data.test] {
            #expect(GenreData.classCounts(split).allSatisfy { $0 > 0 })
            #expect(split.allSatisfy { BibleGenre.allCases[$0.label] == BibleGenre.of(book: $0.book) })
        }
    }
}
