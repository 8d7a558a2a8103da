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
        let config = EncoderConfig(vocabularySize: NERFixture.vocabulary.count, maxPositions: 32, modelWidth: 16, heads: 2, layers: 1,
                                   feedForwardWidth: 32, layerNormEpsilon: 1e-5)
        let encoder = try EncoderModel.seeded(config, seed: seed)
        return (try TokenClassifier(encoder: encoder, labels: labels, seed: seed), examples)
    }

    static func task(_ examples: [NERExample]) throws -> NERTask {
        NERTask(examples: examples, evaluation: examples, loss: try CrossEntropyLoss(), compute: .optimized)
    }
}

@Suite("Training loop: batches, progress, checkpoints, resume, non-finite stop")
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
        #expect(e0.count == plan.stepsPerEpoch)
        // Bucketing: the spread of lengths inside a batch is far below a random batch's.
        let spread = e0.map { b in b.map { lengths[$0] }.max()! - b.map { lengths[$0] }.min()! }.reduce(0, +)
        let unsorted = BatchPlan(lengths: lengths, batchSize: 4, seed: 9, bucketWindow: 1).batches(epoch: 0)
        let spread1 = unsorted.map { b in b.map { lengths[$0] }.max()! - b.map { lengths[$0] }.min()! }.reduce(0, +)
        #expect(spread < spread1, "bucketed spread \(spread) vs window-1 \(spread1)")
    }

    @Test("Resume: k steps, 'kill', resume from the checkpoint, N − k steps = N steps straight, bitwise")
    func resumeIsBitwiseIdentical() throws {
        let (initial, examples) = try TinyNER.setup()
        let task = try TinyNER.task(examples)
        var straight = initial
        var lines: [String] = []
        let summary = try Trainer.train(&straight, task: task, options: Self.options()) { lines.append($0) }
        #expect(summary.steps == 10)
        // The progress line names step, loss, throughput and ETA.
        #expect(lines.contains { $0.hasPrefix("step 10/10") && $0.contains("loss") && $0.contains("tok/s") && $0.contains("ETA") }, "\(lines)")

        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        var o = Self.options()
        o.checkpoint = dir.appendingPathComponent("ckpt.safetensors")
        o.stopAfterStep = 4
        var first = initial
        _ = try Trainer.train(&first, task: task, options: o) { _ in }
        o.stopAfterStep = nil
        var resumed = initial  // a fresh process: the parameters must come from the checkpoint
        var resumeLines: [String] = []
        let rest = try Trainer.train(&resumed, task: task, options: o) { resumeLines.append($0) }
        #expect(rest.steps == 6)
        #expect(resumeLines.first?.contains("resumed") == true)
        var otherSeed = o
        otherSeed.seed = 4
        var untouched = initial
        #expect(throws: DecoderSpecError.self, "resuming with another seed must be refused") {
            try Trainer.train(&untouched, task: task, options: otherSeed) { _ in }
        }
        let a = straight.flattenedParameters(), b = resumed.flattenedParameters()
        #expect(a.map(\.bitPattern) == b.map(\.bitPattern), "resumed parameters differ from the uninterrupted run")
        #expect(a != initial.flattenedParameters())
        // Atomic writes: no temporary file is left beside the checkpoint.
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(files == ["ckpt.safetensors"])
    }

    @Test("A non-finite loss stops training with a message; no NaN reaches the weights or the checkpoint")
    func nonFiniteStops() throws {
        let (initial, examples) = try TinyNER.setup()
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        var o = Self.options()
        o.checkpoint = dir.appendingPathComponent("ckpt.safetensors")
        o.checkpointEvery = 1
        var model = initial
        let task = SpikedTask(inner: try TinyNER.task(examples), spikeStep: 3, loss: .nan)  // LossSpikeSpecs.swift
        do {
            _ = try Trainer.train(&model, task: task, options: o) { _ in }
            Issue.record("training with a NaN loss did not stop")
        } catch let error as DecoderSpecError {
            let message = error.description
            let named = message.contains("step 3") && message.contains("no weights written")
            #expect(named, "\(message)")
        }
        #expect(model.flattenedParameters().allSatisfy { $0.isFinite })
        var restored = initial
        var opt = try AdamW()
        let step = try TrainingCheckpoint.read(from: o.checkpoint!, into: &restored, optimizer: &opt)
        #expect(step == 2)
        #expect(restored.flattenedParameters().map(\.bitPattern) == model.flattenedParameters().map(\.bitPattern))
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
        let before = try NER.evaluate(model, examples, compute: .optimized).report
        var o = TrainerSpecs.options(seed: 5)
        o.epochs = 12
        o.learningRate = 1e-2
        o.warmupFraction = 0.05
        let summary = try Trainer.train(&model, task: task, options: o) { _ in }
        let after = try NER.evaluate(model, examples, compute: .optimized).report
        #expect(before.f1 < 0.5, "untrained F1 \(before.f1)")
        #expect(after.f1 == 1.0, "CRF \(withCRF): F1 \(after.f1) after \(summary.steps) steps; losses \(summary.losses.suffix(5))")
        let head = summary.losses.prefix(5).reduce(0, +) / 5, tail = summary.losses.suffix(5).reduce(0, +) / 5
        #expect(tail < head / 4, "loss fell only from \(head) to \(tail)")
    }
}
