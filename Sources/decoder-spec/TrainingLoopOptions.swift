import ArgumentParser
import DecoderSpec
import Foundation

/// The options of the one training loop that every training command shares (`finetune ner`,
/// `train translate`): resumable checkpoints, periodic validation and early stopping, plus the
/// learning-rate and label-smoothing range checks. See docs/finetune-translation.md.
struct TrainingLoopOptions: ParsableArguments {
    @Option(help: "Resumable training checkpoint file (safetensors; resumed when present).") var checkpoint: String?
    @Option(name: .customLong("checkpoint-every"), help: "Steps between checkpoints (0 = at the end).") var checkpointEvery: Int = 0
    @Option(name: .customLong("stop-after"), help: "Stop after this global step (with --checkpoint: resume later; a resumed run with --stop-after equal to the checkpoint's step only evaluates).") var stopAfter: Int?
    @Option(name: .customLong("eval-every"), help: "Steps between validations during training (finetune ner: entity F1 on the valid split; train translate: cross-entropy per token on the valid books; 0 = none).") var evalEvery: Int = 0
    @Option(help: "Progress log, JSON Lines: one entry per progress line (default: beside --checkpoint, NAME.log.jsonl).") var log: String?
    @Option(help: "Early stopping: stop after this many validations without a better validation score (needs --eval-every; off by default).") var patience: Int?

    /// Options out of range are command-line errors (exit 64), checked before any file is read.
    func validate() throws {
        try requireNonNegative(["--checkpoint-every": checkpointEvery, "--stop-after": stopAfter, "--eval-every": evalEvery])
        try requirePositive(["--patience": patience])
        if patience != nil && evalEvery == 0 { throw ValidationError("--patience needs --eval-every N > 0 (early stopping watches the validations)") }
    }

    /// Copies these options into the trainer's options.
    func apply(to options: inout TrainingOptions) {
        options.validateEvery = evalEvery
        options.patience = patience
        options.checkpoint = checkpoint.map { URL(fileURLWithPath: $0) }
        options.log = log.map { URL(fileURLWithPath: $0) }
        options.checkpointEvery = checkpointEvery
        options.stopAfterStep = stopAfter
    }
}

/// Throws a command-line error unless `lr` is finite and > 0 and label smoothing ε is in [0, 1).
func requireRates(lr: Double, labelSmoothing: Float) throws {
    guard lr.isFinite, lr > 0 else { throw ValidationError("--lr \(lr) must be finite and > 0") }
    guard labelSmoothing >= 0, labelSmoothing < 1 else { throw ValidationError("--label-smoothing \(labelSmoothing) must be in [0, 1)") }
}
