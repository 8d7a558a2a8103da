// What each task's mean loss divides by, for the trainer's data parallelism (`DataParallel`):
// shard k's mean is weighed by n_k/N, so the combined loss and gradient are the whole batch's.
// Each count is the one the task's loss itself uses: the rows whose target is not the ignore index.
// (The translation tasks' count is in `Seq2SeqTask`, Translation.swift, the masked LM's in MaskedLM.swift.)
import Training

extension NERTask {
    /// The labelled sub-tokens (targets ≠ the ignore index: each word's first sub-token): the mean
    /// cross-entropy, and the CRF's Σ NLL, both divide by it (`TokenClassifier.lossAndGradient`).
    public func lossDenominator(examples indices: [Int]) -> Int? {
        indices.reduce(0) { n, i in n + examples[i].targets.reduce(0) { $0 + ($1 != loss.ignoreIndex ? 1 : 0) } }
    }
}

extension LanguageModelTask {
    /// The labels x₁ … x_n of every window (its tokens after the first), not equal to the ignore
    /// index of the task's loss (`CrossEntropyLoss()`'s default).
    public func lossDenominator(examples: [Int]) -> Int? {
        examples.reduce(0) { n, i in
            n + windows[i].dropFirst().reduce(0) { $0 + ($1 != CrossEntropyLoss.defaultIgnoreIndex ? 1 : 0) }
        }
    }
}

extension SequenceClassificationTask {
    /// The sequences whose target is not the ignore index: the mean cross-entropy over the [B, C]
    /// logits of `SequenceClassifier.lossAndGradient` divides by it (one row per sequence). Without
    /// it the protocol's default (nil) made every `finetune classify --threads K` run on one thread.
    public func lossDenominator(examples: [Int]) -> Int? {
        examples.reduce(0) { n, i in n + (targets[i] != loss.ignoreIndex ? 1 : 0) }
    }
}
