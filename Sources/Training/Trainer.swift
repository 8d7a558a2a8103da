// The one training loop (NER, translation): seeded shuffling, length-bucketed batches (by count or
// token budget), AdamW with warm-up/decay and clipping, a progress line, periodic validation with
// optional early stopping, atomic resumable checkpoints. See docs/training.md.
import Foundation
import IO
import TensorCore

/// What the loop trains: examples with a length, a loss-and-gradient for a batch of them, and a
/// validation metric. NER (`NERTask`) and translation (`TranslationTask`), recipes in the Applications module, are the two tasks.
public protocol TrainingTask {
    associatedtype Model: ParameterContainer
    var exampleCount: Int { get }
    /// Tokens in example i (used to bucket batches by length, and by a token budget).
    func length(of example: Int) -> Int
    /// Mean loss over the batch, its gradient (a `Model`-shaped value), and the tokens it read.
    func lossAndGradient(_ model: Model, examples: [Int]) throws -> (loss: Double, gradient: Model, tokens: Int)
    /// N, the count the mean loss of `lossAndGradient(examples:)` divides by (e.g. its labelled
    /// tokens), additive over examples: N(A ∪ B) = N(A) + N(B) for disjoint A, B. The trainer's data
    /// parallelism weighs shard k's mean by n_k/N (`DataParallel`). nil, the default: unknown, and
    /// every batch is computed by one call on one thread.
    func lossDenominator(examples: [Int]) -> Int?
    /// Called by the trainer before the loss of global step `step` (1, 2, …; a resumed run continues
    /// the count) is computed, so a task whose examples change from step to step keys them by the
    /// step alone — the MLM task's dynamic masking (`MaskedLMTask`), the same masks on any thread
    /// count and after a resume. Default: nothing.
    mutating func beginStep(_ step: Int)
    /// The validation metric on held-out data (e.g. valid entity F1, valid loss), run every
    /// `validateEvery` steps; nil when the task has no validation set.
    func validate(_ model: Model) throws -> Validation?
}

extension TrainingTask {
    /// Unknown: a task that does not say what its mean divides by trains on one thread.
    public func lossDenominator(examples: [Int]) -> Int? { nil }
    /// Examples that do not change with the step.
    public mutating func beginStep(_ step: Int) {}
}

/// One validation: a named metric, which direction is better, and a detail for the log.
public struct Validation: Sendable, Equatable {
    /// e.g. "valid entity F1", "valid loss".
    public var metric: String
    public var value: Double
    public var higherIsBetter: Bool
    /// Printed after the value, e.g. "P 0.91 R 0.90, token accuracy 0.98".
    public var detail: String

    public init(metric: String, value: Double, higherIsBetter: Bool, detail: String = "") {
        (self.metric, self.value, self.higherIsBetter, self.detail) = (metric, value, higherIsBetter, detail)
    }

    /// Strictly better than `best` (always, when there is none yet); NaN is never better.
    public func improves(on best: Double?) -> Bool {
        guard let best else { return !value.isNaN }
        return higherIsBetter ? value > best : value < best
    }

    public var line: String { String(format: "%@ %.4f", metric, value) + (detail.isEmpty ? "" : " (\(detail))") }
}

public struct TrainingOptions: Sendable {
    public var epochs: Int = 1
    /// Total optimizer steps; nil = `epochs` passes over the data. When set, epochs repeat (each
    /// reshuffled) until this many steps.
    public var steps: Int? = nil
    /// Examples per batch.
    public var batchSize: Int = 32
    /// Token budget per batch: when set, a batch takes examples while Σ length ≤ budget (one longer
    /// example is a batch alone), and `batchSize` is unused.
    public var batchTokens: Int? = nil
    public var learningRate: Double = 5e-5
    /// Fraction of all steps spent warming up linearly from 0.
    public var warmupFraction: Double = 0.1
    /// Warm-up steps; when set, overrides `warmupFraction` (capped at the total).
    public var warmupSteps: Int? = nil
    /// λ of AdamW; applied to matrices only (`AdamW.decays(shape:)`).
    public var weightDecay: Double = 0.01
    /// Clip the global gradient norm to this (0 = no clipping).
    public var maxGradientNorm: Double = 1
    public var seed: UInt64 = 42
    /// Examples are shuffled, then sorted by length inside windows of `bucketWindow` batches,
    /// so each batch holds sequences of similar length; the batches are then shuffled.
    public var bucketWindow: Int = 50
    /// Run the task's validation every this many steps (0 = never during training).
    public var validateEvery: Int = 0
    /// Early stopping: stop once this many validations in a row have not improved on the best
    /// (nil = off, the default; needs `validateEvery` > 0).
    public var patience: Int? = nil
    public var logEvery: Int = 20
    /// Write a checkpoint every this many steps (0 = only at the end) when `checkpoint` is set.
    public var checkpointEvery: Int = 0
    public var checkpoint: URL? = nil
    /// The progress log, JSON Lines (`TrainingLog`); nil: beside the checkpoint, if any.
    public var log: URL? = nil
    /// Stop after this many steps of the whole run (a simulated interruption, or a short run).
    public var stopAfterStep: Int? = nil
    /// Wall-time cap of this run, in seconds. The schedule then runs on whichever is further
    /// along, steps or time: the rate is taken at step max(s, ⌊S·elapsed/cap⌋), so a run slower
    /// than planned still decays to 0 at the cap. A capped run is not bit-reproducible.
    public var maxSeconds: Double? = nil
    /// Threads of each step: the batch is cut into this many shards of nearly equal token count,
    /// computed concurrently and combined (`DataParallel`); the gradient norm, clipping and AdamW
    /// update large tensors in that many chunks (bitwise as on one thread). A run is
    /// bit-reproducible for a given thread count; another count changes the rounding (not the
    /// mathematics). Tasks whose `lossDenominator` is nil use one thread.
    public var threads: Int = 1
    public init() {}

    /// - Throws: `.invalidArgument` naming the first out-of-range option.
    public func validate() throws {
        for (name, value) in [("epochs", epochs), ("batch size", batchSize), ("bucket window", bucketWindow), ("threads", threads)] {
            try Validate.positive(value, name)
        }
        for (name, value) in [("steps", steps), ("batch tokens", batchTokens), ("patience", patience)] {
            if let value { try Validate.positive(value, name) }
        }
        guard learningRate > 0, learningRate.isFinite else { throw DecoderSpecError.invalidArgument(what: "learning rate \(learningRate)", reason: "must be finite and > 0") }
        guard (0...1).contains(warmupFraction), (warmupSteps ?? 0) >= 0 else {
            throw DecoderSpecError.invalidArgument(what: "warm-up (fraction \(warmupFraction), steps \(warmupSteps.map(String.init) ?? "-"))", reason: "fraction must be in [0, 1], steps ≥ 0")
        }
        guard weightDecay >= 0, maxGradientNorm >= 0 else { throw DecoderSpecError.invalidArgument(what: "weight decay / max norm", reason: "must be ≥ 0") }
        guard validateEvery >= 0, checkpointEvery >= 0 else { throw DecoderSpecError.invalidArgument(what: "validate / checkpoint interval", reason: "must be ≥ 0") }
        guard patience == nil || validateEvery > 0 else {
            throw DecoderSpecError.invalidArgument(what: "patience \(patience!)", reason: "early stopping needs validation: set validateEvery > 0")
        }
        if let maxSeconds, !(maxSeconds > 0) { throw DecoderSpecError.invalidArgument(what: "wall-time cap \(maxSeconds) s", reason: "must be > 0") }
    }
}

public struct TrainingSummary: Sendable {
    /// How the run ended.
    public enum Ending: String, Sendable {
        case finished, stopAfterStep, earlyStopping, timeLimit
    }
    /// Steps taken by this call (a resumed run counts from its checkpoint).
    public var steps: Int
    /// The global step at the end, and the planned total.
    public var finalStep: Int
    public var totalSteps: Int
    public var losses: [Double]
    /// Mean loss of the last progress window (NaN when no step ran).
    public var lastLoggedLoss: Double
    public var tokens: Int
    public var seconds: Double
    /// Every validation of this call, with its global step.
    public var validations: [(step: Int, validation: Validation)]
    /// The best validation of the whole run (restored from the checkpoint on resume).
    public var best: (step: Int, value: Double)?
    public var ending: Ending
    public var tokensPerSecond: Double { seconds > 0 ? Double(tokens) / seconds : 0 }
}

/// Seeded batch order: epoch e's batches depend only on (seed, e), so step s always sees the same
/// examples — what makes a resumed run identical to an uninterrupted one.
public struct BatchPlan: Sendable, CustomStringConvertible {
    /// How a batch is cut.
    public enum Size: Sendable, Equatable {
        /// A fixed number of examples (the last batch of an epoch may be smaller).
        case examples(Int)
        /// Examples while Σ length ≤ the budget; an example longer than the budget is a batch alone.
        case tokens(Int)
    }
    public let lengths: [Int]
    public let size: Size
    public let seed: UInt64
    public let bucketWindow: Int

    /// Preconditions: the batch size or budget ≥ 1 and bucketWindow ≥ 1 (`TrainingOptions.validate()`
    /// checks them before the trainer builds a plan).
    public init(lengths: [Int], size: Size, seed: UInt64, bucketWindow: Int) {
        switch size {
        case .examples(let n), .tokens(let n): precondition(n >= 1, "BatchPlan needs a batch size or token budget ≥ 1")
        }
        precondition(bucketWindow >= 1, "BatchPlan needs bucketWindow ≥ 1")
        (self.lengths, self.size, self.seed, self.bucketWindow) = (lengths, size, seed, bucketWindow)
    }

    public init(lengths: [Int], batchSize: Int, seed: UInt64, bucketWindow: Int) {
        self.init(lengths: lengths, size: .examples(batchSize), seed: seed, bucketWindow: bucketWindow)
    }

    /// Examples per sorting window: `bucketWindow` batches' worth — batchSize·W, or for a token
    /// budget B, W·B / (mean length) rounded down (at least 1).
    var window: Int {
        switch size {
        case .examples(let n): return n * bucketWindow
        case .tokens(let budget):
            let total = lengths.reduce(0) { $0 + max(1, $1) }
            return max(1, bucketWindow * budget * lengths.count / max(1, total))
        }
    }

    /// The epoch (from 0) that step `step` (from 0; the next one to take) belongs to, and that
    /// epoch's first step: epochs follow each other, each of `batchCount(epoch:)` steps.
    public func epoch(containing step: Int) -> (epoch: Int, start: Int) {
        var epoch = 0, start = 0
        while step - start >= batchCount(epoch: epoch) {
            start += batchCount(epoch: epoch)
            epoch += 1
        }
        return (epoch, start)
    }

    /// Batches in epoch `epoch` (computed without cutting them for a fixed batch size).
    public func batchCount(epoch: Int) -> Int {
        if case .examples(let n) = size { return (lengths.count + n - 1) / n }
        return batches(epoch: epoch).count
    }

    /// The batches of epoch `epoch`: shuffle; sort by length within windows of `bucketWindow`
    /// batches; cut into batches; shuffle the batches.
    public func batches(epoch: Int) -> [[Int]] {
        var rng = SeededRNG(seed: seed &+ 0x9E37_79B9_7F4A_7C15 &* UInt64(epoch + 1))
        var order = Array(lengths.indices)
        order.shuffle(using: &rng)
        let window = self.window
        var sorted: [Int] = []
        var start = 0
        while start < order.count {
            let chunk = order[start..<min(order.count, start + window)]
            sorted.append(contentsOf: chunk.sorted { (lengths[$0], $0) < (lengths[$1], $1) })
            start += window
        }
        var out: [[Int]] = []
        switch size {
        case .examples(let batchSize):
            start = 0
            while start < sorted.count {
                out.append(Array(sorted[start..<min(sorted.count, start + batchSize)]))
                start += batchSize
            }
        case .tokens(let budget):
            var current: [Int] = [], tokens = 0
            for i in sorted {
                if !current.isEmpty && tokens + lengths[i] > budget {
                    out.append(current)
                    (current, tokens) = ([], 0)
                }
                current.append(i)
                tokens += lengths[i]
            }
            if !current.isEmpty { out.append(current) }
        }
        out.shuffle(using: &rng)
        return out
    }

    /// "examples 8, window 2" or "tokens 2000, window 64": stored in checkpoints, so a resume with
    /// another plan (which would replay other batches) is refused.
    public var description: String {
        switch size {
        case .examples(let n): return "examples \(n), window \(bucketWindow), \(lengths.count) examples"
        case .tokens(let n): return "tokens \(n), window \(bucketWindow), \(lengths.count) examples"
        }
    }
}

/// The best validation so far and how many validations since it: early stopping's state, kept
/// in the checkpoint so a resumed run stops where an uninterrupted one would.
struct ValidationRecord: Equatable {
    var best: Double? = nil
    var bestStep = 0
    var sinceBest = 0
    var stoppedEarly = false

    mutating func record(_ v: Validation, step: Int, patience: Int?) {
        if v.improves(on: best) {
            (best, bestStep, sinceBest) = (v.value, step, 0)
        } else {
            sinceBest += 1
        }
        if let patience, sinceBest >= patience { stoppedEarly = true }
    }

    /// Checkpoint metadata (Double's description round-trips exactly).
    var metadata: [String: String] {
        var out = ["validation.sinceBest": String(sinceBest), "validation.stoppedEarly": String(stoppedEarly)]
        if let best { (out["validation.best"], out["validation.bestStep"]) = ("\(best)", String(bestStep)) }
        return out
    }

    init() {}
    init(metadata: [String: String]) {
        best = metadata["validation.best"].flatMap(Double.init)
        bestStep = metadata["validation.bestStep"].flatMap { Int($0) } ?? 0
        sinceBest = metadata["validation.sinceBest"].flatMap { Int($0) } ?? 0
        stoppedEarly = metadata["validation.stoppedEarly"] == "true"
    }

    /// The record of a checkpoint at `step`, its counts checked: the best's step in 0...step, the
    /// validations since it in 0...step (at most one per step), each a number when present.
    /// - Throws: `.malformedFile` naming the file and the field.
    init(checkpoint file: SafeTensorsFile, step: Int) throws {
        self.init(metadata: file.metadata)
        for (key, value) in [("validation.bestStep", bestStep), ("validation.sinceBest", sinceBest)] {
            guard let text = file.metadata[key] else { continue }
            guard Int(text) != nil, (0...step).contains(value) else {
                throw DecoderSpecError.malformedFile(path: file.path, location: "metadata \(key)", reason: "\(text) is not a count in 0...\(step) (the checkpoint's step)")
            }
        }
        if let text = file.metadata["validation.best"], best?.isNaN ?? true {
            throw DecoderSpecError.malformedFile(path: file.path, location: "metadata validation.best", reason: "\(text) is not a number (a NaN validation is never a best)")
        }
    }
}

public enum Trainer {
    /// Trains `model` on `task`: the one loop of every task (NER, translation, the language model). Resumes from
    /// `options.checkpoint` when that file exists.
    ///
    /// Each step: batch → loss and gradient (over `options.threads` shards, `DataParallel`) → stop
    /// if the loss or the gradient norm is not finite (nothing is updated or written) → clip →
    /// AdamW at the scheduled rate → every
    /// `validateEvery` steps the task's validation (early stopping after `patience` validations
    /// without a new best) → progress line (and its JSON Lines entry, `TrainingLog`) → checkpoint
    /// every `checkpointEvery` steps.
    /// - Throws: `.nonFinite` naming the step and the loss; `.invalidArgument` for a checkpoint
    ///   written with another seed or batch plan, or one whose lock another run holds
    ///   (`TrainingCheckpoint.lock`); checkpoint and task errors.
    public static func train<T: TrainingTask>(_ model: inout T.Model, task: T, options: TrainingOptions,
                                              progress: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) })
        throws -> TrainingSummary
    {
        try options.validate()
        var task = task
        let lengths = (0..<task.exampleCount).map(task.length(of:))
        guard !lengths.isEmpty else { throw DecoderSpecError.emptySequence(what: "training examples") }
        let plan = BatchPlan(lengths: lengths, size: options.batchTokens.map { .tokens($0) } ?? .examples(options.batchSize),
                             seed: options.seed, bucketWindow: options.bucketWindow)
        let totalSteps = options.steps ?? (0..<options.epochs).reduce(0) { $0 + plan.batchCount(epoch: $1) }
        let warmup = min(totalSteps, options.warmupSteps ?? Int(Double(totalSteps) * options.warmupFraction))
        let schedule = try LinearSchedule(peak: options.learningRate, warmupSteps: warmup, totalSteps: totalSteps)
        var optimizer = try AdamW(weightDecay: options.weightDecay)
        var step = 0
        var record = ValidationRecord()
        // One run per checkpoint: the lock is held until this function returns; the kernel releases
        // it when the process dies, so a killed run never blocks the next.
        let lock = try options.checkpoint.map(TrainingCheckpoint.lock)
        defer { lock?.unlock() }
        if let url = options.checkpoint, FileManager.default.fileExists(atPath: url.path) {
            let file = try SafeTensorsFile.read(contentsOf: url)
            // Resuming with another seed or batch plan would replay other batches: refuse rather than diverge silently.
            let saved = file.metadata["seed"]
            guard saved == String(options.seed) else {
                throw DecoderSpecError.invalidArgument(what: "seed \(options.seed) for checkpoint \(url.path)",
                                                       reason: "the checkpoint was written with seed \(saved ?? "?"); resume with the same seed or remove it")
            }
            if let savedPlan = file.metadata["batches"], savedPlan != plan.description {
                throw DecoderSpecError.invalidArgument(what: "batches \"\(plan.description)\" for checkpoint \(url.path)",
                                                       reason: "the checkpoint was written with batches \"\(savedPlan)\"; resume with the same batch options and data or remove it")
            }
            // Everything is checked before the model and optimizer are assigned. The step can be at most
            // this run's total (a larger one would also keep the epoch search below running), and the
            // epoch stored with it must be the one it lies in.
            var loaded = model, restored = optimizer
            let resumed = try TrainingCheckpoint.read(file, into: &loaded, optimizer: &restored, maxStep: totalSteps)
            let resumedRecord = try ValidationRecord(checkpoint: file, step: resumed)
            if let stored = file.metadata["epoch"], Int(stored) != plan.epoch(containing: resumed).epoch {
                throw DecoderSpecError.malformedFile(path: file.path, location: "metadata epoch",
                                                     reason: "epoch \(stored), but step \(resumed) of this run's batches (\(plan.description)) lies in epoch \(plan.epoch(containing: resumed).epoch)")
            }
            (model, optimizer, step, record) = (loaded, restored, resumed, resumedRecord)
            progress("resumed from \(url.path) at step \(step)" + (record.best.map { String(format: " (best validation %.4f at step %d)", $0, record.bestStep) } ?? ""))
        }
        let last = min(totalSteps, options.stopAfterStep ?? totalSteps)
        // A fresh run starts its log; a resumed one appends (TrainingLog.read keeps the last entry per step).
        let logURL = TrainingLog.url(for: options)
        var freshLog = step == 0
        var summary = TrainingSummary(steps: 0, finalStep: step, totalSteps: totalSteps, losses: [], lastLoggedLoss: .nan, tokens: 0, seconds: 0,
                                      validations: [], best: nil, ending: .finished)
        let clock = ContinuousClock()
        let started = clock.now
        var windowLoss = 0.0, windowSteps = 0
        // The epoch holding `step`, its first step and its batches.
        var (epoch, epochStart) = plan.epoch(containing: step)
        var batches = plan.batches(epoch: epoch)
        // The loop's state stored beside the weights: the batch plan, the epoch of the next step, early stopping.
        func state() -> [String: String] {
            let next = step - epochStart >= batches.count ? epoch + 1 : epoch
            return record.metadata.merging(["batches": plan.description, "epoch": String(next)]) { $1 }
        }
        if record.stoppedEarly {
            progress("the checkpoint stopped early at step \(step); nothing to train")
            summary.ending = .earlyStopping
        }
        while step < last && !record.stoppedEarly {
            if step - epochStart == batches.count {
                epochStart += batches.count
                epoch += 1
                batches = plan.batches(epoch: epoch)
            }
            let examples = batches[step - epochStart]
            task.beginStep(step + 1)
            let (loss, gradient, tokens, squares) = try DataParallel.step(task, model: model, examples: examples, threads: options.threads)
            // Split batches bring the norm from the combination's pass; one call reads the gradient again.
            let norm = squares.map { $0.squareRoot() } ?? GradientClipping.globalNorm(gradient, threads: options.threads)
            guard loss.isFinite, norm.isFinite else {
                throw DecoderSpecError.nonFinite(
                    what: "training at step \(step + 1) (loss \(loss), gradient norm \(norm)); stopped before updating, no weights written",
                    index: step + 1, value: loss.isFinite ? norm : loss)
            }
            // Clipping as `GradientClipping.clip` would, applied inside the update's pass (bitwise the same;
            // the gradient is neither read nor written by a pass of its own).
            let clipFactor = options.maxGradientNorm > 0 ? GradientClipping.factor(norm: norm, maxNorm: options.maxGradientNorm) : 1
            var scheduleStep = step
            if let cap = options.maxSeconds {
                scheduleStep = max(step, Int(Double(totalSteps) * min(1, (clock.now - started).seconds / cap)))
            }
            let rate = schedule.learningRate(at: scheduleStep)
            optimizer.update(&model, gradient: gradient, learningRate: rate, threads: options.threads, gradientScale: clipFactor)
            step += 1
            summary.steps += 1
            summary.tokens += tokens
            summary.losses.append(loss)
            windowLoss += loss
            windowSteps += 1
            var validation: Validation? = nil
            if options.validateEvery > 0 && step % options.validateEvery == 0, let v = try task.validate(model) {
                validation = v
                summary.validations.append((step, v))
                record.record(v, step: step, patience: options.patience)
            }
            let seconds = (clock.now - started).seconds
            let outOfTime = options.maxSeconds.map { seconds >= $0 } ?? false
            if step % max(1, options.logEvery) == 0 || step == last || validation != nil || outOfTime {
                summary.lastLoggedLoss = windowLoss / Double(windowSteps)
                let eta = seconds / Double(summary.steps) * Double(last - step)
                var line = String(format: "step %d/%d  epoch %d  loss %.4f  lr %.2e  %.0f tok/s  elapsed %@  ETA %@", step, totalSteps, epoch + 1,
                                  summary.lastLoggedLoss, rate, Double(summary.tokens) / max(seconds, 1e-9), formatDuration(seconds), formatDuration(eta))
                if let validation {
                    line += "  |  " + validation.line + String(format: "  best %.4f at step %d", record.best ?? .nan, record.bestStep)
                }
                progress(line)
                if let url = logURL {
                    try TrainingLog.append(.init(step: step, epoch: epoch + 1, loss: summary.lastLoggedLoss, learningRate: rate,
                                                 tokens: summary.tokens, seconds: seconds,
                                                 validation: validation.map { ($0.metric, $0.value) }), to: url, fresh: freshLog)
                    freshLog = false
                }
                (windowLoss, windowSteps) = (0, 0)
            }
            if let url = options.checkpoint, options.checkpointEvery > 0, step % options.checkpointEvery == 0 {
                try TrainingCheckpoint.write(model, optimizer: optimizer, step: step, seed: options.seed, state: state(), to: url)
            }
            if record.stoppedEarly {
                progress("early stopping at step \(step): no improvement on the best validation (\(record.best.map { String(format: "%.4f", $0) } ?? "none") at step \(record.bestStep)) in \(record.sinceBest) validations")
                summary.ending = .earlyStopping
            } else if outOfTime {
                progress("stopped at the wall-time cap after step \(step)")
                summary.ending = .timeLimit
                break
            }
        }
        if summary.ending == .finished && step < totalSteps { summary.ending = .stopAfterStep }
        summary.finalStep = step
        summary.best = record.best.map { (record.bestStep, $0) }
        summary.seconds = (clock.now - started).seconds
        if let url = options.checkpoint {
            try TrainingCheckpoint.write(model, optimizer: optimizer, step: step, seed: options.seed, state: state(), to: url)
        }
        return summary
    }

    /// A duration for a progress line: "0m08s" below an hour, "1h02m" above, "?" when not finite.
    public static func formatDuration(_ s: Double) -> String {
        guard s.isFinite else { return "?" }
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%dh%02dm", t / 3600, t % 3600 / 60) : String(format: "%dm%02ds", t / 60, t % 60)
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
