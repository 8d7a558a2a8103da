// The training loop: seeded shuffling, length-bucketed batches, AdamW with warm-up/decay and
// clipping, a progress line, periodic evaluation, atomic resumable checkpoints. See docs/training.md.
import Foundation
import IO
import TensorCore

/// What the loop trains: examples with a length, and a loss-and-gradient for a batch of them.
public protocol TrainingTask {
    associatedtype Model: ParameterContainer
    var exampleCount: Int { get }
    /// Tokens in example i (used to bucket batches by length).
    func length(of example: Int) -> Int
    /// Mean loss over the batch, its gradient (a `Model`-shaped value), and the tokens it read.
    func lossAndGradient(_ model: Model, examples: [Int]) throws -> (loss: Double, gradient: Model, tokens: Int)
    /// One line of evaluation (e.g. "valid F1 0.91"), run every `evaluateEvery` steps and at the end.
    func evaluate(_ model: Model) throws -> String
}

public struct TrainingOptions: Sendable {
    public var epochs: Int = 1
    /// Examples per batch.
    public var batchSize: Int = 32
    public var learningRate: Double = 5e-5
    /// Fraction of all steps spent warming up linearly from 0.
    public var warmupFraction: Double = 0.1
    public var weightDecay: Double = 0.01
    /// Clip the global gradient norm to this (0 = no clipping).
    public var maxGradientNorm: Double = 1
    public var seed: UInt64 = 42
    /// Examples are shuffled, then sorted by length inside windows of `bucketWindow` batches,
    /// so each batch holds sequences of similar length; the batches are then shuffled.
    public var bucketWindow: Int = 50
    public var evaluateEvery: Int = 0
    public var logEvery: Int = 20
    /// Write a checkpoint every this many steps (0 = only at the end) when `checkpoint` is set.
    public var checkpointEvery: Int = 0
    public var checkpoint: URL? = nil
    /// Stop after this many steps of the whole run (a simulated interruption, or a short run).
    public var stopAfterStep: Int? = nil
    public init() {}

    /// - Throws: `.invalidArgument` naming the first out-of-range option.
    public func validate() throws {
        for (name, value) in [("epochs", epochs), ("batch size", batchSize), ("bucket window", bucketWindow)] {
            try Validate.positive(value, name)
        }
        guard learningRate > 0, learningRate.isFinite else { throw DecoderSpecError.invalidArgument(what: "learning rate \(learningRate)", reason: "must be finite and > 0") }
        guard (0...1).contains(warmupFraction) else { throw DecoderSpecError.invalidArgument(what: "warm-up fraction \(warmupFraction)", reason: "must be in [0, 1]") }
        guard weightDecay >= 0, maxGradientNorm >= 0 else { throw DecoderSpecError.invalidArgument(what: "weight decay / max norm", reason: "must be ≥ 0") }
    }
}

public struct TrainingSummary: Sendable {
    public var steps: Int
    public var losses: [Double]
    public var tokens: Int
    public var seconds: Double
    public var evaluations: [String]
    public var tokensPerSecond: Double { seconds > 0 ? Double(tokens) / seconds : 0 }
}

/// Seeded batch order: epoch e's batches depend only on (seed, e), so step s always sees the same
/// examples — what makes a resumed run identical to an uninterrupted one.
public struct BatchPlan: Sendable {
    public let lengths: [Int]
    public let batchSize: Int
    public let seed: UInt64
    public let bucketWindow: Int
    public var stepsPerEpoch: Int { (lengths.count + batchSize - 1) / batchSize }

    /// Preconditions: batchSize ≥ 1 and bucketWindow ≥ 1 (`TrainingOptions.validate()` checks both
    /// before the trainer builds a plan).
    public init(lengths: [Int], batchSize: Int, seed: UInt64, bucketWindow: Int) {
        precondition(batchSize >= 1 && bucketWindow >= 1, "BatchPlan needs batchSize ≥ 1 and bucketWindow ≥ 1")
        (self.lengths, self.batchSize, self.seed, self.bucketWindow) = (lengths, batchSize, seed, bucketWindow)
    }

    /// The batches of epoch `epoch`: shuffle; sort by length within windows of `bucketWindow`
    /// batches; cut into batches; shuffle the batches.
    public func batches(epoch: Int) -> [[Int]] {
        var rng = SeededRNG(seed: seed &+ 0x9E37_79B9_7F4A_7C15 &* UInt64(epoch + 1))
        var order = Array(lengths.indices)
        order.shuffle(using: &rng)
        let window = batchSize * bucketWindow
        var sorted: [Int] = []
        var start = 0
        while start < order.count {
            let chunk = order[start..<min(order.count, start + window)]
            sorted.append(contentsOf: chunk.sorted { (lengths[$0], $0) < (lengths[$1], $1) })
            start += window
        }
        var out: [[Int]] = []
        start = 0
        while start < sorted.count {
            out.append(Array(sorted[start..<min(sorted.count, start + batchSize)]))
            start += batchSize
        }
        out.shuffle(using: &rng)
        return out
    }
}

/// A training checkpoint: parameters, AdamW moments and the step, in one safetensors file
/// (`param/NAME`, `adam.m/NAME`, `adam.v/NAME`; metadata `step`, `seed`), written atomically.
public enum TrainingCheckpoint {
    public static let format = "decoder-spec-training-checkpoint-1"

    public static func write<M: ParameterContainer>(_ model: M, optimizer: AdamW, step: Int, seed: UInt64, to url: URL) throws {
        var tensors: [(name: String, shape: [Int], values: [Float])] = []
        var copy = model
        var index = 0
        copy.visitParameters(prefix: "") { name, shape, values in
            tensors.append(("param/" + name, shape, values))
            if index < optimizer.m.count {
                tensors.append(("adam.m/" + name, shape, optimizer.m[index]))
                tensors.append(("adam.v/" + name, shape, optimizer.v[index]))
            }
            index += 1
        }
        try SafeTensorsFile.write(tensors, metadata: ["format": format, "step": String(step), "seed": String(seed),
                                                       "optimizerStep": String(optimizer.step)], to: url)
    }

    /// Reads a checkpoint into `model` (every tensor by name and shape) and `optimizer`; returns the step.
    /// - Throws: `.malformedFile` naming the file and the missing or mis-shaped tensor.
    public static func read<M: ParameterContainer>(from url: URL, into model: inout M, optimizer: inout AdamW) throws -> Int {
        let file = try SafeTensorsFile.read(contentsOf: url)
        guard file.metadata["format"] == format, let step = Int(file.metadata["step"] ?? ""),
              let optimizerStep = Int(file.metadata["optimizerStep"] ?? "") else {
            throw DecoderSpecError.malformedFile(path: url.path, location: "header", reason: "not a \(format) file (metadata \(file.metadata))")
        }
        var m: [[Float]] = [], v: [[Float]] = []
        var failure: Error? = nil
        model.visitParameters(prefix: "") { name, shape, values in
            guard failure == nil else { return }
            do {
                let (s, p) = try file.floats("param/" + name)
                guard s == shape else {
                    throw DecoderSpecError.malformedFile(path: url.path, location: "tensor param/\(name)", reason: "shape \(Shape(s)), model expects \(Shape(shape))")
                }
                try Validate.finite(p, "tensor param/\(name) of \(url.path)")
                values = p
                if file.tensors["adam.m/" + name] != nil {
                    m.append(try file.floats("adam.m/" + name).values)
                    v.append(try file.floats("adam.v/" + name).values)
                }
            } catch { failure = error }
        }
        if let failure { throw failure }
        optimizer.restore(step: optimizerStep, m: m, v: v)
        return step
    }
}

public enum Trainer {
    /// Trains `model` on `task`. Resumes from `options.checkpoint` when that file exists.
    ///
    /// Each step: batch → loss and gradient → stop if the loss or the gradient norm is not finite
    /// (nothing is updated or written) → clip → AdamW at the scheduled rate → progress line.
    /// - Throws: `.nonFinite` naming the step and the loss; checkpoint and task errors.
    public static func train<T: TrainingTask>(_ model: inout T.Model, task: T, options: TrainingOptions,
                                              progress: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) })
        throws -> TrainingSummary
    {
        try options.validate()
        let lengths = (0..<task.exampleCount).map(task.length(of:))
        guard !lengths.isEmpty else { throw DecoderSpecError.emptySequence(what: "training examples") }
        let plan = BatchPlan(lengths: lengths, batchSize: options.batchSize, seed: options.seed, bucketWindow: options.bucketWindow)
        let totalSteps = plan.stepsPerEpoch * options.epochs
        let schedule = try LinearSchedule(peak: options.learningRate, warmupSteps: Int(Double(totalSteps) * options.warmupFraction),
                                          totalSteps: totalSteps)
        var optimizer = try AdamW(weightDecay: options.weightDecay)
        var step = 0
        if let url = options.checkpoint, FileManager.default.fileExists(atPath: url.path) {
            // Resuming with another seed would replay other batches: refuse rather than diverge silently.
            let saved = try SafeTensorsFile.read(contentsOf: url).metadata["seed"]
            guard saved == String(options.seed) else {
                throw DecoderSpecError.invalidArgument(what: "seed \(options.seed) for checkpoint \(url.path)",
                                                       reason: "the checkpoint was written with seed \(saved ?? "?"); resume with the same seed or remove it")
            }
            step = try TrainingCheckpoint.read(from: url, into: &model, optimizer: &optimizer)
            progress("resumed from \(url.path) at step \(step)")
        }
        let last = min(totalSteps, options.stopAfterStep ?? totalSteps)
        var summary = TrainingSummary(steps: 0, losses: [], tokens: 0, seconds: 0, evaluations: [])
        let clock = ContinuousClock()
        let started = clock.now
        var windowLoss = 0.0, windowSteps = 0
        var epochBatches: (epoch: Int, batches: [[Int]])? = nil
        while step < last {
            let epoch = step / plan.stepsPerEpoch
            if epochBatches?.epoch != epoch { epochBatches = (epoch, plan.batches(epoch: epoch)) }
            let examples = epochBatches!.batches[step % plan.stepsPerEpoch]
            var (loss, gradient, tokens) = try task.lossAndGradient(model, examples: examples)
            let norm = GradientClipping.globalNorm(gradient)
            guard loss.isFinite, norm.isFinite else {
                throw DecoderSpecError.nonFinite(
                    what: "training at step \(step + 1) (loss \(loss), gradient norm \(norm)); stopped before updating, no weights written",
                    index: step + 1, value: loss.isFinite ? norm : loss)
            }
            if options.maxGradientNorm > 0 { GradientClipping.clip(&gradient, maxNorm: options.maxGradientNorm, knownNorm: norm) }
            optimizer.update(&model, gradient: gradient, learningRate: schedule.learningRate(at: step))
            step += 1
            summary.steps += 1
            summary.tokens += tokens
            summary.losses.append(loss)
            windowLoss += loss
            windowSteps += 1
            if step % max(1, options.logEvery) == 0 || step == last {
                let seconds = (clock.now - started).seconds
                let rate = Double(summary.tokens) / max(seconds, 1e-9)
                let eta = seconds / Double(summary.steps) * Double(last - step)
                progress(String(format: "step %d/%d  epoch %d  loss %.4f  lr %.2e  %.0f tok/s  ETA %@", step, totalSteps, epoch + 1,
                                windowLoss / Double(windowSteps), schedule.learningRate(at: step - 1), rate, formatDuration(eta)))
                windowLoss = 0
                windowSteps = 0
            }
            if options.evaluateEvery > 0 && step % options.evaluateEvery == 0 && step < last {
                let line = try task.evaluate(model)
                summary.evaluations.append(line)
                progress("step \(step): \(line)")
            }
            if let url = options.checkpoint, options.checkpointEvery > 0, step % options.checkpointEvery == 0 {
                try TrainingCheckpoint.write(model, optimizer: optimizer, step: step, seed: options.seed, to: url)
            }
        }
        summary.seconds = (clock.now - started).seconds
        if let url = options.checkpoint {
            try TrainingCheckpoint.write(model, optimizer: optimizer, step: step, seed: options.seed, to: url)
        }
        return summary
    }

    static func formatDuration(_ s: Double) -> String {
        guard s.isFinite else { return "?" }
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%dh%02dm", t / 3600, t % 3600 / 60) : String(format: "%dm%02ds", t / 60, t % 60)
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
