import ArgumentParser
import DecoderSpec
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The options of the one training loop that every training command shares (`finetune ner`,
/// `train translate`, `train lm`): resumable checkpoints, periodic validation and early stopping, plus the
/// learning-rate and label-smoothing range checks. See docs/finetune-translation.md.
struct TrainingLoopOptions: ParsableArguments {
    @Option(help: "Resumable training checkpoint file (safetensors; resumed when present).") var checkpoint: String?
    @Option(name: .customLong("checkpoint-every"), help: "Steps between checkpoints (0 = at the end).") var checkpointEvery: Int = 0
    @Option(name: .customLong("stop-after"), help: "Stop after this global step (with --checkpoint: resume later; a resumed run with --stop-after equal to the checkpoint's step only evaluates).") var stopAfter: Int?
    @Option(name: .customLong("eval-every"), help: "Steps between validations during training (finetune ner: entity F1 on the valid split; train translate and train lm: cross-entropy per token on the valid books; 0 = none).") var evalEvery: Int = 0
    @Option(help: "Progress log, JSON Lines: one entry per progress line (default: beside --checkpoint, NAME.log.jsonl).") var log: String?
    @Option(help: "Early stopping: stop after this many validations without a better validation score (needs --eval-every; off by default).") var patience: Int?
    @Option(help: "Threads per training step: the batch is cut into this many shards of nearly equal token count, computed concurrently and combined (a run is bit-reproducible for a given count; default: the active cores).") var threads: Int = TrainingLoopOptions.defaultThreads

    /// The machine's active cores (`ProcessInfo.activeProcessorCount`): the default of `--threads`.
    static var defaultThreads: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// Options out of range are command-line errors (exit 64), checked before any file is read.
    func validate() throws {
        try requireNonNegative(["--checkpoint-every": checkpointEvery, "--stop-after": stopAfter, "--eval-every": evalEvery])
        try requirePositive(["--patience": patience, "--threads": threads])
        if patience != nil && evalEvery == 0 { throw ValidationError("--patience needs --eval-every N > 0 (early stopping watches the validations)") }
    }

    /// Copies these options into the trainer's options (and keeps freed memory for reuse:
    /// `keepFreedMemoryForReuse`).
    func apply(to options: inout TrainingOptions) {
        keepFreedMemoryForReuse()
        options.validateEvery = evalEvery
        options.patience = patience
        options.checkpoint = checkpoint.map { URL(fileURLWithPath: $0) }
        options.log = log.map { URL(fileURLWithPath: $0) }
        options.checkpointEvery = checkpointEvery
        options.stopAfterStep = stopAfter
        options.threads = threads
    }
}

/// The model-size, tokenizer and optimizer options of the commands that train from scratch
/// (`train translate`, `train lm`). Left out, `--model-dim`, `--steps`, `--batch-tokens` and `--warmup`
/// take the command's default (named in the help).
struct FromScratchOptions: ParsableArguments {
    @Option(name: .customLong("model-dim"), help: "d_model (default: translate 192, lm 128).") var modelDim: Int?
    @Option(help: "Layers (translate: encoder and decoder each).") var layers = 2
    @Option(help: "Attention heads.") var heads = 4
    @Option(name: .customLong("ff-dim"), help: "Feed-forward width (default 4·d_model).") var ffDim: Int?
    @Option(help: "BPE merges (vocabulary = 256 bytes + merges; translate: per side, + 3 specials).") var merges = 2000
    @Option(help: "Optimizer steps (default: translate 5000, lm 1000).") var steps: Int?
    @Option(name: .customLong("batch-tokens"), help: "Token budget per batch (default: translate 2000, lm 4096).") var batchTokens: Int?
    @Option(help: "Peak learning rate (linear warm-up, then linear decay to 0).") var lr = 1e-3
    @Option(help: "Warm-up steps (default: translate 200, lm 100).") var warmup: Int?
    @Option(help: "Seed for initialization and batching.") var seed: UInt64 = 42
    @Option(name: .customLong("max-minutes"), help: "Stop training after this much wall time.") var maxMinutes: Double?

    /// Options out of range are command-line errors (exit 64), checked before the data is read.
    func validate() throws {
        try requireNonNegative(["--merges": merges, "--warmup": warmup])
        try requirePositive(["--model-dim": modelDim, "--layers": layers, "--heads": heads, "--ff-dim": ffDim, "--steps": steps,
                             "--batch-tokens": batchTokens])
        if let maxMinutes, !(maxMinutes > 0) { throw ValidationError("--max-minutes \(maxMinutes) must be > 0") }
        try requireRates(lr: lr, labelSmoothing: 0)
    }

    /// d_model: `--model-dim`, or the command's default.
    func modelWidth(default d: Int) -> Int { modelDim ?? d }

    /// The trainer's options from these (`--steps`, `--batch-tokens` and `--warm-up` defaulting to the command's).
    func trainingOptions(steps defaultSteps: Int, batchTokens defaultBatchTokens: Int, warmup defaultWarmup: Int) -> TrainingOptions {
        var options = TrainingOptions()
        options.steps = steps ?? defaultSteps
        options.batchTokens = batchTokens ?? defaultBatchTokens
        options.learningRate = lr
        options.warmupSteps = warmup ?? defaultWarmup
        options.seed = seed
        options.maxSeconds = maxMinutes.map { $0 * 60 }
        return options
    }
}

/// Throws a command-line error unless `lr` is finite and > 0 and label smoothing ε is in [0, 1).
func requireRates(lr: Double, labelSmoothing: Float) throws {
    guard lr.isFinite, lr > 0 else { throw ValidationError("--lr \(lr) must be finite and > 0") }
    guard labelSmoothing >= 0, labelSmoothing < 1 else { throw ValidationError("--label-smoothing \(labelSmoothing) must be in [0, 1)") }
}

/// Every training step allocates model-sized gradients (one per shard: 88 MB for MiniLM) and frees
/// them. glibc serves blocks above its mmap threshold with fresh mappings and unmaps them on free, so
/// each step page-faults them in again; served from the heap with trimming off, freed blocks are
/// reused. Measured on 8 MiniLM fine-tuning steps on one thread: system time 0.94 → 0.31 s,
/// training 11.3 → 9.8 s (docs/training.md). Peak memory is kept, not returned to the kernel.
/// (`mallopt` is looked up at run time: Swift's Glibc module does not export malloc.h; its
/// parameters M_MMAP_MAX = −4 and M_TRIM_THRESHOLD = −1 are glibc's ABI.)
func keepFreedMemoryForReuse() {
    #if canImport(Glibc)
    typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
    guard let symbol = dlsym(nil, "mallopt") else { return }  // RTLD_DEFAULT
    let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
    _ = mallopt(-4, 0)  // M_MMAP_MAX: no block from mmap
    _ = mallopt(-1, Int32.max)  // M_TRIM_THRESHOLD: keep freed heap
    #endif
}
