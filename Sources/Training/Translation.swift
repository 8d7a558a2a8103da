// Translation trained from scratch: the data pipeline (book split, length filter, BPE per side
// trained on the training split), a token-budget training loop with a wall-clock cap, greedy and
// beam decoding, and BLEU beside a copy-source baseline. See docs/finetune-translation.md.
import Decoding
import Foundation
import IO
import Kernels
import Layers
import Metrics
import Models
import TensorCore
import Tokenizers

/// `<pad>`, `<bos>`, `<eos>` take ids 0, 1, 2 of both vocabularies.
public enum TranslationTokens {
    public static let special = ["<pad>", "<bos>", "<eos>"]
    public static let pad = 0, bos = 1, eos = 2
}

/// The documented split of the Bible corpus (book numbers 1 = Genesis … 66 = Revelation).
public enum TranslationSplit {
    /// Held out for test: Ruth (8), Jonah (32), 1 John (62) — narrative, prophecy and epistle.
    public static let testBooks: Set<Int> = [8, 32, 62]
    /// Held out for validation: Philemon (57) and Jude (65).
    public static let validBooks: Set<Int> = [57, 65]
}

/// A parallel corpus ready to train on: the split, one BPE per side (trained on `train` only)
/// and the pairs encoded (source + `<eos>`; target ids without specials).
public struct TranslationData: Sendable {
    public var train: [ParallelVerse]
    public var valid: [ParallelVerse]
    public var test: [ParallelVerse]
    public var sourceTokenizer: BPETokenizer
    public var targetTokenizer: BPETokenizer
    public var trainPairs: [(source: [Int], target: [Int])]

    /// - Parameters: `merges`: BPE merges per side (vocabulary = 3 specials + 256 bytes + merges);
    ///   `maxCharacters`: pairs with a longer side are dropped from every split; `maxTokens`:
    ///   training pairs longer than this (either side, in subwords, with specials) are dropped.
    public static func prepare(verses: [ParallelVerse], merges: Int, maxCharacters: Int = 300, maxTokens: Int = 128,
                               validBooks: Set<Int> = TranslationSplit.validBooks, testBooks: Set<Int> = TranslationSplit.testBooks) throws -> TranslationData {
        let (train, valid, test) = try BibleCorpus.split(verses, validBooks: validBooks, testBooks: testBooks, maxCharacters: maxCharacters)
        guard !train.isEmpty, !test.isEmpty else { throw DecoderSpecError.emptySequence(what: "training or test split") }
        let src = try BPETrainer.train(corpus: train.map(\.source), merges: merges, specialTokens: TranslationTokens.special)
        let tgt = try BPETrainer.train(corpus: train.map(\.target), merges: merges, specialTokens: TranslationTokens.special)
        var pairs: [(source: [Int], target: [Int])] = []
        for v in train {
            let s = src.encode(v.source) + [TranslationTokens.eos], t = tgt.encode(v.target)
            if s.count <= maxTokens && t.count + 1 <= maxTokens { pairs.append((s, t)) }
        }
        return TranslationData(train: train, valid: valid, test: test, sourceTokenizer: src, targetTokenizer: tgt, trainPairs: pairs)
    }

    /// Copy-source baseline: the hypothesis is the source sentence itself.
    public static func copyBaseline(_ verses: [ParallelVerse]) throws -> BLEUScore {
        try BLEU.corpus(hypotheses: verses.map(\.source), references: [verses.map(\.target)])
    }
}

public struct TranslationTrainingOptions: Sendable {
    public var steps = 1000
    /// Each batch holds pairs until Σ max(|source|, |target| + 1) would exceed this.
    public var batchTokens = 2000
    public var learningRate = 1e-3
    public var warmupSteps = 100
    public var weightDecay = 0.01
    public var labelSmoothing: Float = 0.1
    public var maxGradientNorm = 1.0
    public var seed: UInt64 = 42
    /// Stop (and keep the weights) after this much wall time; nil = no cap.
    public var maxSeconds: Double? = nil
    public var logEvery = 20
    public init() {}
}

public enum TranslationTrainer {
    /// Batches of one epoch: a seeded shuffle, sorted by length inside windows of 64 batches' worth
    /// of pairs (so batches hold similar lengths), cut at the token budget, then shuffled.
    public static func batches(_ pairs: [(source: [Int], target: [Int])], batchTokens: Int, seed: UInt64, epoch: Int) -> [[Int]] {
        var rng = SeededRNG(seed: seed &+ UInt64(epoch) &* 0x9E37_79B9)
        var order = Array(pairs.indices).shuffled(using: &rng)
        func size(_ i: Int) -> Int { max(pairs[i].source.count, pairs[i].target.count + 1) }
        let window = max(1, 64 * batchTokens / 40)
        var start = 0
        while start < order.count {
            let end = min(order.count, start + window)
            order[start..<end].sort { size($0) < size($1) }
            start = end
        }
        var out: [[Int]] = [], current: [Int] = [], tokens = 0
        for i in order {
            if !current.isEmpty && tokens + size(i) > batchTokens {
                out.append(current)
                (current, tokens) = ([], 0)
            }
            current.append(i)
            tokens += size(i)
        }
        if !current.isEmpty { out.append(current) }
        return out.shuffled(using: &rng)
    }

    /// Trains with AdamW, global-norm clipping and linear warm-up then linear decay to 0 at
    /// `options.steps`. With a wall-time cap the schedule runs on whichever is further along,
    /// steps or time: the rate is taken at step max(k, ⌊n·elapsed/cap⌋), so a run that is slower
    /// than planned still decays to 0 at the cap instead of stopping at a high rate. Prints `step k/n  loss  lr  tok/s  ETA` every `logEvery` steps.
    /// - Returns: steps done, the last logged mean loss, seconds.
    public static func train(_ model: inout EncoderDecoderModel, pairs: [(source: [Int], target: [Int])], options: TranslationTrainingOptions,
                             compute: Compute = .optimized, progress: (String) -> Void) throws -> (steps: Int, loss: Double, seconds: Double) {
        guard !pairs.isEmpty else { throw DecoderSpecError.emptySequence(what: "training pairs") }
        try Validate.positive(options.steps, "steps")
        try Validate.positive(options.batchTokens, "batch tokens")
        let loss = try CrossEntropyLoss(labelSmoothing: options.labelSmoothing)
        let schedule = try LinearSchedule(peak: options.learningRate, warmupSteps: min(options.warmupSteps, options.steps), totalSteps: options.steps)
        var optimizer = try AdamW(weightDecay: options.weightDecay)
        let clock = ContinuousClock()
        let started = clock.now
        var epoch = 0, plan = batches(pairs, batchTokens: options.batchTokens, seed: options.seed, epoch: 0), cursor = 0
        var windowLoss = 0.0, windowSteps = 0, lastLoss = Double.nan, tokens = 0
        var step = 0
        while step < options.steps {
            if cursor == plan.count {
                epoch += 1
                plan = batches(pairs, batchTokens: options.batchTokens, seed: options.seed, epoch: epoch)
                cursor = 0
            }
            let batch = try Seq2SeqBatch(pairs: plan[cursor].map { pairs[$0] }, bos: TranslationTokens.bos, eos: TranslationTokens.eos)
            cursor += 1
            var (value, gradient, _) = try model.lossAndGradient(batch, loss: loss, compute: compute)
            let norm = GradientClipping.globalNorm(gradient)
            guard value.isFinite, norm.isFinite else {
                throw DecoderSpecError.nonFinite(what: "translation training at step \(step + 1) (loss \(value), gradient norm \(norm))", index: step + 1,
                                                 value: value.isFinite ? norm : value)
            }
            if options.maxGradientNorm > 0 { GradientClipping.clip(&gradient, maxNorm: options.maxGradientNorm, knownNorm: norm) }
            let elapsed = (clock.now - started).seconds
            let timeStep = options.maxSeconds.map { Int(Double(options.steps) * min(1, elapsed / $0)) } ?? 0
            let scheduleStep = max(step, timeStep)
            optimizer.update(&model, gradient: gradient, learningRate: schedule.learningRate(at: scheduleStep))
            step += 1
            tokens += batch.sourceTokens + batch.targetTokens
            windowLoss += value
            windowSteps += 1
            let seconds = (clock.now - started).seconds
            let outOfTime = options.maxSeconds.map { seconds >= $0 } ?? false
            if step % max(1, options.logEvery) == 0 || step == options.steps || outOfTime {
                lastLoss = windowLoss / Double(windowSteps)
                let eta = seconds / Double(step) * Double(options.steps - step)
                progress(String(format: "step %d/%d  epoch %d  loss %.4f  lr %.2e  %.0f tok/s  elapsed %@  ETA %@", step, options.steps, epoch + 1,
                                lastLoss, schedule.learningRate(at: scheduleStep), Double(tokens) / max(seconds, 1e-9),
                                Trainer.formatDuration(seconds), Trainer.formatDuration(eta)))
                (windowLoss, windowSteps) = (0, 0)
            }
            if outOfTime {
                progress("stopped at the wall-time cap after step \(step)")
                break
            }
        }
        return (step, lastLoss, (clock.now - started).seconds)
    }
}

/// A trained translator: the model and both tokenizers.
public struct Translator: Sendable {
    public var model: EncoderDecoderModel
    public var sourceTokenizer: BPETokenizer
    public var targetTokenizer: BPETokenizer

    public init(model: EncoderDecoderModel, sourceTokenizer: BPETokenizer, targetTokenizer: BPETokenizer) {
        (self.model, self.sourceTokenizer, self.targetTokenizer) = (model, sourceTokenizer, targetTokenizer)
    }

    /// Target ids (without `<eos>`) for source ids (ending with `<eos>`): greedy when `beams` = 1.
    public func translate(ids source: [Int], beams: Int = 1, maxNewTokens: Int? = nil) throws -> [Int] {
        try Validate.positive(beams, "beams")
        let limit = min(model.config.maxLength - 1, maxNewTokens ?? (2 * source.count + 10))
        let decoder = try model.conditioned(on: source)
        let config = GenerationConfig(maxNewTokens: max(1, limit), stopTokens: [TranslationTokens.eos])
        let generation = try Generator.generate(decoder, prompt: [TranslationTokens.bos],
                                                strategy: beams == 1 ? .greedy : .beam(BeamConfig(width: beams)), config: config)
        return generation.tokens.filter { $0 != TranslationTokens.eos }
    }

    public func translate(_ text: String, beams: Int = 1) throws -> String {
        var ids = sourceTokenizer.encode(text)
        if ids.count + 1 > model.config.maxLength { ids = Array(ids.prefix(model.config.maxLength - 1)) }
        let out = try translate(ids: ids + [TranslationTokens.eos], beams: beams)
        return try targetTokenizer.decode(out.filter { $0 >= TranslationTokens.special.count }).trimmingCharacters(in: .whitespaces)
    }

    /// Saves `model.safetensors`, `config.json`, `source/` and `target/` tokenizers (each file atomically).
    public func save(to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var m = model
        var tensors: [(name: String, shape: [Int], values: [Float])] = []
        m.visitParameters(prefix: "") { n, s, v in tensors.append((n, s, v)) }
        try SafeTensorsFile.write(tensors, metadata: ["format": "decoder-spec-translation-1"], to: directory.appendingPathComponent("model.safetensors"))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(model.config), to: directory.appendingPathComponent("config.json"))
        for (name, tok) in [("source", sourceTokenizer), ("target", targetTokenizer)] {
            let sub = directory.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
            try tok.write(to: sub)
        }
    }

    public static func load(directory: URL) throws -> Translator {
        let configURL = directory.appendingPathComponent("config.json")
        guard let data = FileManager.default.contents(atPath: configURL.path) else { throw DecoderSpecError.missingFile(path: configURL.path, hint: "Train one with `decoder-spec train translate --data DIR --output DIR` (the data comes from `make fetch-data`).") }
        let config: EncoderDecoderConfig
        do {
            config = try JSONDecoder().decode(EncoderDecoderConfig.self, from: data)
        } catch let error as DecodingError {
            throw DecoderSpecError.malformedFile(path: configURL.path, location: JSONDecoding.location(error), reason: JSONDecoding.reason(error))
        }
        var model = try EncoderDecoderModel.seeded(config, seed: 0)
        let file = try SafeTensorsFile.read(contentsOf: directory.appendingPathComponent("model.safetensors"))
        try model.visitParameters(prefix: "") { name, shape, v in
            let (s, values) = try file.floats(name)
            guard s == shape else {
                throw DecoderSpecError.shapeMismatch(operation: "loading \(name)", expected: "\(shape)", actual: "\(s)")
            }
            try Validate.finite(values, "tensor \(name) of \(directory.appendingPathComponent("model.safetensors").path)")
            v = values
        }
        return Translator(model: model, sourceTokenizer: try BPETokenizer.load(directory: directory.appendingPathComponent("source")),
                          targetTokenizer: try BPETokenizer.load(directory: directory.appendingPathComponent("target")))
    }

    /// Corpus BLEU of this translator's output on `verses` (greedy when beams = 1).
    public func evaluate(_ verses: [ParallelVerse], beams: Int) throws -> (score: BLEUScore, hypotheses: [String]) {
        let hyps = try verses.map { try translate($0.source, beams: beams) }
        return (try BLEU.corpus(hypotheses: hyps, references: [verses.map(\.target)]), hyps)
    }
}

/// Turns Foundation's `DecodingError` for a config file into the location and reason of a
/// `DecoderSpecError.malformedFile` (e.g. "key heads", "missing key (expected Int)").
enum JSONDecoding {
    static func location(_ error: DecodingError) -> String {
        let path: [CodingKey]
        switch error {
        case let .keyNotFound(key, context): path = context.codingPath + [key]
        case let .typeMismatch(_, context), let .valueNotFound(_, context), let .dataCorrupted(context): path = context.codingPath
        @unknown default: path = []
        }
        return path.isEmpty ? "top level" : "key " + path.map(\.stringValue).joined(separator: ".")
    }

    static func reason(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound: return "missing key"
        case let .typeMismatch(type, _): return "expected a value of type \(type)"
        case let .valueNotFound(type, _): return "expected a value of type \(type), found null"
        case let .dataCorrupted(context): return "not valid JSON (\(context.debugDescription))"
        @unknown default: return "cannot decode"
        }
    }
}
