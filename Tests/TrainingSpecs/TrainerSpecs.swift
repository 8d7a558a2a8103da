import DecoderSpec
import Foundation
import SpecSupport
import Testing

/// The tiny NER setup shared by the loop and NER specs: fixture sentences, a seeded encoder.
enum TinyNER {
    static func setup(sentences: Int = 36, seed: UInt64 = 7) throws -> (model: TokenClassifier, examples: [NERExample]) {
        let tokenizer = try NERFixture.tokenizer()
        let data = NERFixture.sentences(count: sentences, seed: seed)
        let labels = NER.labels(data.map(\.tags))
        let examples = try NER.examples(data, tokenizer: tokenizer, labels: labels, maxLength: 32)
        let config = TransformerConfig(vocabularySize: NERFixture.vocabulary.count, contextLength: 32, tokenTypes: 2, modelWidth: 16, heads: 2, layers: 1,
                                       feedForwardWidth: 32, layerNormEpsilon: 1e-5, activation: .gelu)
        let encoder = try EncoderModel.seeded(config, seed: seed)
        return (try TokenClassifier(encoder: encoder, labels: labels, seed: seed), examples)
    }

    static func task(_ examples: [NERExample]) throws -> NERTask {
        NERTask(examples: examples, evaluation: examples, loss: try CrossEntropyLoss(), path: .optimized)
    }
}

/// The tiny translation setup: TranslationSpecs' reversed-and-mapped fixture pairs, a seeded
/// encoder-decoder, six held-out pairs for validation.
enum TinyTranslation {
    static func setup(seed: UInt64 = 5) throws -> (model: EncoderDecoderModel, task: TranslationTask) {
        let config = EncoderDecoderConfig(sourceVocabularySize: 19, targetVocabularySize: 19, contextLength: 16, modelWidth: 8, heads: 2,
                                          encoderLayers: 1, decoderLayers: 1, feedForwardWidth: 16, placement: .pre)
        let task = TranslationTask(pairs: TranslationSpecs.fixture(seed: 11), validation: Array(TranslationSpecs.fixture(seed: 12).prefix(6)),
                                   loss: try CrossEntropyLoss(labelSmoothing: 0.1), path: .optimized)
        return (try EncoderDecoderModel.seeded(config, seed: seed), task)
    }
}

/// The tasks the one loop serves, for specs parameterized over them.
enum TaskKind: String, CaseIterable, Sendable {
    case ner, translation
}

/// A task whose validation returns `values` in order (higher is better), after `alreadyRun` of them
/// (a resumed run continues the script): early stopping's decisions follow from the script alone.
struct ScriptedValidation<Inner: TrainingTask>: TrainingTask {
    var inner: Inner
    var values: [Double]
    final class Counter: @unchecked Sendable { var next = 0 }
    let counter = Counter()
    init(_ inner: Inner, values: [Double], alreadyRun: Int = 0) {
        (self.inner, self.values) = (inner, values)
        counter.next = alreadyRun
    }
    var exampleCount: Int { inner.exampleCount }
    func length(of example: Int) -> Int { inner.length(of: example) }
    func lossAndGradient(_ model: Inner.Model, examples: [Int]) throws -> (loss: Double, gradient: Inner.Model, tokens: Int) {
        try inner.lossAndGradient(model, examples: examples)
    }
    func validate(_ model: Inner.Model) throws -> Validation? {
        defer { counter.next += 1 }
        return Validation(metric: "scripted", value: values[counter.next], higherIsBetter: true)
    }
}

@Suite("Training loop: batches, progress, validation, early stopping, checkpoints, resume, non-finite stop")
struct TrainerSpecs {
    static func options(seed: UInt64 = 3) -> TrainingOptions {
        var o = TrainingOptions()
        o.epochs = 2
        o.batchSize = 8
        o.learningRate = 3e-3
        o.seed = seed
        o.bucketWindow = 2
        o.logEvery = 2
        return o
    }

    static func scratch() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("training-specs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test("Batch plan: every example exactly once per epoch, seeded, length-bucketed")
    func batchPlan() {
        let lengths = (0..<50).map { ($0 * 37) % 23 + 1 }
        let plan = BatchPlan(lengths: lengths, batchSize: 4, seed: 9, bucketWindow: 3)
        let e0 = plan.batches(epoch: 0), e1 = plan.batches(epoch: 1)
        #expect(e0.joined().sorted() == Array(0..<50) && e1.joined().sorted() == Array(0..<50))
        #expect(e0 == BatchPlan(lengths: lengths, batchSize: 4, seed: 9, bucketWindow: 3).batches(epoch: 0), "not reproducible")
        #expect(e0 != e1, "epochs should be reshuffled")
        #expect(e0.count == plan.batchCount(epoch: 0))
        // Bucketing: the spread of lengths inside a batch is far below a random batch's.
        let spread = e0.map { b in b.map { lengths[$0] }.max()! - b.map { lengths[$0] }.min()! }.reduce(0, +)
        let unsorted = BatchPlan(lengths: lengths, batchSize: 4, seed: 9, bucketWindow: 1).batches(epoch: 0)
        let spread1 = unsorted.map { b in b.map { lengths[$0] }.max()! - b.map { lengths[$0] }.min()! }.reduce(0, +)
        #expect(spread < spread1, "bucketed spread \(spread) vs window-1 \(spread1)")
    }

    @Test("Token-budget batches: every example once per epoch, Σ length ≤ budget unless one example alone, seeded")
    func tokenBudgetPlan() {
        let lengths = (0..<60).map { ($0 * 37) % 23 + 1 } + [40]  // one example longer than the budget
        let plan = BatchPlan(lengths: lengths, size: .tokens(30), seed: 9, bucketWindow: 3)
        for epoch in 0..<3 {
            let batches = plan.batches(epoch: epoch)
            #expect(batches.joined().sorted() == Array(lengths.indices), "epoch \(epoch)")
            #expect(batches.count == plan.batchCount(epoch: epoch))
            for b in batches {
                let total = b.reduce(0) { $0 + lengths[$1] }
                #expect(total <= 30 || b.count == 1, "batch \(b) holds \(total) tokens")
            }
        }
        #expect(plan.batches(epoch: 1) == BatchPlan(lengths: lengths, size: .tokens(30), seed: 9, bucketWindow: 3).batches(epoch: 1))
        #expect(plan.batches(epoch: 0) != plan.batches(epoch: 1))
    }

    /// The options and the untrained model and task of each kind: 10 steps in all (NER: 36
    /// sentences, batches of 8, 2 epochs; translation: 20 pairs in token budgets of 30, 10 steps).
    static func resumeSetup(_ kind: TaskKind) throws -> (options: TrainingOptions, run: (TrainingOptions, @escaping (String) -> Void) throws -> (summary: TrainingSummary, parameters: [Float]), initial: [Float]) {
        var o = Self.options()
        o.validateEvery = 5
        switch kind {
        case .ner:
            let (initial, examples) = try TinyNER.setup()
            let task = try TinyNER.task(examples)
            return (o, { options, progress in
                var model = initial  // a fresh process: the parameters must come from the checkpoint
                let summary = try Trainer.train(&model, task: task, options: options, progress: progress)
                return (summary, model.flattenedParameters())
            }, initial.flattenedParameters())
        case .translation:
            let (initial, task) = try TinyTranslation.setup()
            o.steps = 10
            o.batchTokens = 30
            return (o, { options, progress in
                var model = initial
                let summary = try Trainer.train(&model, task: task, options: options, progress: progress)
                return (summary, model.flattenedParameters())
            }, initial.flattenedParameters())
        }
    }

    @Test("Resume: k steps, 'kill', resume from the checkpoint, N − k steps = N steps straight, bitwise — NER and translation",
          arguments: TaskKind.allCases)
    func resumeIsBitwiseIdentical(kind: TaskKind) throws {
        let (options, run, initial) = try Self.resumeSetup(kind)
        var lines: [String] = []
        let (summary, straight) = try run(options) { lines.append($0) }
        #expect(summary.steps == 10 && summary.totalSteps == 10 && summary.ending == .finished)
        // The progress line names step, loss, throughput and ETA; validation (step 5, 10) rides on it.
        #expect(lines.contains { $0.hasPrefix("step 10/10") && $0.contains("loss") && $0.contains("tok/s") && $0.contains("ETA") }, "\(lines)")
        let metric = kind == .ner ? "valid entity F1" : "valid loss"
        #expect(lines.filter { $0.hasPrefix("step ") && $0.contains(metric) }.count == 2, "\(lines)")
        #expect(summary.validations.map(\.step) == [5, 10])

        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        var o = options
        o.checkpoint = dir.appendingPathComponent("ckpt.safetensors")
        o.stopAfterStep = 4
        let first = try run(o) { _ in }
        #expect(first.summary.ending == .stopAfterStep && first.summary.finalStep == 4)
        o.stopAfterStep = nil
        var resumeLines: [String] = []
        let (rest, resumed) = try run(o) { resumeLines.append($0) }
        #expect(rest.steps == 6)
        #expect(resumeLines.first?.contains("resumed") == true)
        var otherSeed = o
        otherSeed.seed = 4
        #expect(throws: DecoderSpecError.self, "resuming with another seed must be refused") { _ = try run(otherSeed) { _ in } }
        var otherBatches = o
        if kind == .ner { otherBatches.batchSize = 4 } else { otherBatches.batchTokens = 40 }
        #expect(throws: DecoderSpecError.self, "resuming with another batch plan must be refused") { _ = try run(otherBatches) { _ in } }
        #expect(straight.map(\.bitPattern) == resumed.map(\.bitPattern), "\(kind): resumed parameters differ from the uninterrupted run")
        #expect(straight != initial)
        // Atomic writes: no temporary file is left beside the checkpoint (only the log and the
        // run's lock file, which stays: the lock itself dies with its holder).
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        #expect(files == ["ckpt.log.jsonl", "ckpt.safetensors", "ckpt.safetensors.lock"])
    }

    @Test("The JSON Lines log: one entry per progress line, its loss the mean of the steps since the last, validations at their steps; a cut last line is ignored")
    func progressLog() throws {
        let (initial, examples) = try TinyNER.setup()
        let script = [0.50, 0.60, 0.55, 0.58, 0.70]
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        var o = Self.options()
        o.validateEvery = 2
        o.logEvery = 3
        o.log = dir.appendingPathComponent("run.jsonl")
        var model = initial
        var lines: [String] = []
        let summary = try Trainer.train(&model, task: ScriptedValidation(try TinyNER.task(examples), values: script), options: o) { lines.append($0) }
        let entries = try TrainingLog.read(contentsOf: o.log!)
        #expect(entries.count == lines.filter { $0.hasPrefix("step ") }.count)
        var previous = 0
        for e in entries {
            let window = summary.losses[previous..<e.step]
            #expect(abs(e.loss - window.reduce(0, +) / Double(window.count)) <= 1e-8 * abs(e.loss), "step \(e.step)")   // %.9g
            previous = e.step
        }
        #expect(entries.compactMap { $0.validation?.value } == Array(script.prefix(summary.validations.count)))
        #expect(entries.compactMap { $0.validation == nil ? nil : $0.step } == summary.validations.map(\.step))
        // A kill mid-write leaves a cut last line: ignored. A malformed line elsewhere is an error naming it.
        let text = try String(contentsOf: o.log!, encoding: .utf8)
        try (text + "{\"step\":99,\"ep").write(to: o.log!, atomically: true, encoding: .utf8)
        #expect(try TrainingLog.read(contentsOf: o.log!) == entries)
        try ("garbage\n" + text).write(to: o.log!, atomically: true, encoding: .utf8)
        #expect(throws: DecoderSpecError.malformedFile(path: o.log!.path, location: "line 1", reason: "not a training-log entry")) {
            try TrainingLog.read(contentsOf: o.log!)
        }
        // Bytes that are not UTF-8 (a Latin-1 "é") are a malformed file, not a missing one.
        try (Data(text.utf8) + [0xE9, 0x0A]).write(to: o.log!)
        #expect(throws: DecoderSpecError.malformedFile(path: o.log!.path, location: "the whole file", reason: "not UTF-8 text (a training log is JSON Lines)")) {
            try TrainingLog.read(contentsOf: o.log!)
        }
        try FileManager.default.removeItem(at: o.log!)
        #expect(throws: DecoderSpecError.missingFile(path: o.log!.path, hint: "A training run with --checkpoint (or TrainingOptions.log) writes it.")) {
            try TrainingLog.read(contentsOf: o.log!)
        }
    }

    /// Script 0.50, 0.60, 0.55, 0.58, 0.70 at steps 2, 4, 6, 8, 10 with patience 2: the best is 0.60
    /// at step 4; steps 6 and 8 do not improve on it, so training stops at step 8 (0.70 is never seen).
    @Test("Early stopping: patience 2 stops at the second validation without a new best; resumed mid-way, it stops at the same step with the same weights")
    func earlyStopping() throws {
        let (initial, examples) = try TinyNER.setup()
        let script = [0.50, 0.60, 0.55, 0.58, 0.70]
        var o = Self.options()
        o.validateEvery = 2
        o.patience = 2
        var straight = initial
        var lines: [String] = []
        let summary = try Trainer.train(&straight, task: ScriptedValidation(try TinyNER.task(examples), values: script), options: o) { lines.append($0) }
        #expect(summary.ending == .earlyStopping && summary.finalStep == 8 && summary.steps == 8, "\(summary.ending) at \(summary.finalStep)")
        #expect(summary.validations.map(\.validation.value) == Array(script.prefix(4)))
        #expect(summary.best?.step == 4 && summary.best?.value == 0.60)
        #expect(lines.contains { $0.hasPrefix("early stopping at step 8") }, "\(lines)")

        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        o.checkpoint = dir.appendingPathComponent("ckpt.safetensors")
        o.stopAfterStep = 6  // three validations done: best 0.60 at 4, one without improvement
        var resumed = initial
        _ = try Trainer.train(&resumed, task: ScriptedValidation(try TinyNER.task(examples), values: script), options: o) { _ in }
        o.stopAfterStep = nil
        resumed = initial
        let rest = try Trainer.train(&resumed, task: ScriptedValidation(try TinyNER.task(examples), values: script, alreadyRun: 3), options: o) { _ in }
        #expect(rest.ending == .earlyStopping && rest.finalStep == 8 && rest.steps == 2, "resumed: \(rest.ending) at \(rest.finalStep)")
        #expect(rest.best?.step == 4 && rest.best?.value == 0.60)
        #expect(straight.flattenedParameters().map(\.bitPattern) == resumed.flattenedParameters().map(\.bitPattern))
        // The stopped run's checkpoint says so: running again trains nothing.
        var again = initial
        let none = try Trainer.train(&again, task: ScriptedValidation(try TinyNER.task(examples), values: script, alreadyRun: 4), options: o) { _ in }
        #expect(none.steps == 0 && none.ending == .earlyStopping)
        #expect(again.flattenedParameters().map(\.bitPattern) == straight.flattenedParameters().map(\.bitPattern))
        // Early stopping without validation is refused.
        var noValidation = Self.options()
        noValidation.patience = 2
        var untouched = initial
        #expect(throws: DecoderSpecError.self) { try Trainer.train(&untouched, task: try TinyNER.task(examples), options: noValidation) { _ in } }
    }

    @Test("A non-finite loss stops training with a message; no NaN reaches the weights or the checkpoint")
    func nonFiniteStops() throws {
        let r = try LossSpikeSpecs.run { SpikedTask(inner: $0, spikeStep: 3, loss: .nan) }  // LossSpikeSpecs.swift
        let message = try #require(r.message, "training with a NaN loss did not stop")
        #expect(message.contains("step 3") && message.contains("no weights written"), "\(message)")
        #expect(r.model.flattenedParameters().allSatisfy { $0.isFinite })
        #expect(r.checkpointStep == 2)
        #expect(r.restored.flattenedParameters().map(\.bitPattern) == r.model.flattenedParameters().map(\.bitPattern))
    }
}

@Suite("NER head: alignment, fixture fit")
struct NERSpecs {
    @Test("WordPiece alignment: first sub-token carries the word's label, others and [CLS]/[SEP] are ignored")
    func alignment() throws {
        let tokenizer = try NERFixture.tokenizer()
        let labels = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
        // IOB1 input (I-PER starting a chunk) is converted to IOB2.
        let ex = try NER.examples([(words: ["kowalska", "visited", "washington"], tags: ["I-PER", "O", "I-LOC"])],
                                  tokenizer: tokenizer, labels: labels, maxLength: 32)[0]
        #expect(ex.gold == ["B-PER", "O", "B-LOC"])
        let pieces = ex.ids.map { NERFixture.vocabulary[$0] }
        #expect(pieces == ["[CLS]", "kowal", "##ska", "visited", "wash", "##ington", "[SEP]"])
        #expect(ex.targets == [-100, 3, -100, 0, 1, -100, -100])
        #expect(ex.firstPiece == [1, 3, 4])
        // Truncation keeps [SEP] and predicts O for the cut words.
        let cut = try NER.examples([(words: ["kowalska", "visited", "washington"], tags: ["B-PER", "O", "B-LOC"])],
                                   tokenizer: tokenizer, labels: labels, maxLength: 4)[0]
        #expect(cut.ids.count == 4 && cut.firstPiece == [1, nil, nil])
        #expect(throws: DecoderSpecError.self) {
            try NER.examples([(words: ["john"], tags: ["B-ORG"])], tokenizer: tokenizer, labels: labels, maxLength: 8)
        }
    }

    @Test("The head and a tiny seeded encoder fit the fixture: entity F1 = 1.0 on its training set", arguments: [false, true])
    func fixtureFit(withCRF: Bool) throws {
        var (model, examples) = try TinyNER.setup()
        if withCRF { model.crf = try LinearChainCRF(tagCount: model.labels.count) }
        let task = try TinyNER.task(examples)
        let before = try NER.evaluate(model, examples, path: .optimized).report
        var o = TrainerSpecs.options(seed: 5)
        o.epochs = 12
        o.learningRate = 1e-2
        o.warmupFraction = 0.05
        let summary = try Trainer.train(&model, task: task, options: o) { _ in }
        let after = try NER.evaluate(model, examples, path: .optimized).report
        #expect(before.f1 < 0.5, "untrained F1 \(before.f1)")
        #expect(after.f1 == 1.0, "CRF \(withCRF): F1 \(after.f1) after \(summary.steps) steps; losses \(summary.losses.suffix(5))")
        // Batches computed concurrently (one sentence each, 3 threads): the gold tags again (F1 = 1), and
        // the one-thread predictions of the same batches.
        let concurrent = try NER.predict(model, examples, path: .optimized, batchSize: 1, threads: 3)
        #expect(try Conlleval.evaluate(gold: examples.map(\.gold), predicted: concurrent).f1 == 1.0)
        #expect(try concurrent == NER.predict(model, examples, path: .optimized, batchSize: 1))
        let head = summary.losses.prefix(5).reduce(0, +) / 5, tail = summary.losses.suffix(5).reduce(0, +) / 5
        #expect(tail < head / 4, "loss fell only from \(head) to \(tail)")
    }
}
