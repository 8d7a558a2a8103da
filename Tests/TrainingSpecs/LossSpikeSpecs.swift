import DecoderSpec
import Foundation
import GSLOracle
import SpecSupport
import Testing

// Numerics at the edges (issue 8): a loss spike in training. `TrainerSpecs.nonFiniteStops` covers
// a NaN loss; these cover the other ways a spike shows up — a +∞ loss, a finite loss with a
// non-finite gradient, and a finite but enormous gradient — and check the same contract: the loop
// stops with a message naming the step (or, for a finite spike, clips it), and no NaN/±∞ ever
// reaches the weights or the checkpoint on disk.

/// A task whose step `spikeStep` (1-based) returns `loss` and a gradient with `value` at flat
/// parameter index 0 (scaled ×`scale` everywhere when given).
struct SpikedTask: TrainingTask {
    var inner: NERTask
    var spikeStep: Int
    var loss: Double?
    var gradientValue: Float?
    var gradientScale: Float?
    final class Counter: @unchecked Sendable { var calls = 0 }
    let counter = Counter()
    var exampleCount: Int { inner.exampleCount }
    func length(of example: Int) -> Int { inner.length(of: example) }
    func lossAndGradient(_ model: TokenClassifier, examples: [Int]) throws -> (loss: Double, gradient: TokenClassifier, tokens: Int) {
        counter.calls += 1
        var r = try inner.lossAndGradient(model, examples: examples)
        guard counter.calls == spikeStep else { return r }
        if let loss { r.loss = loss }
        if let scale = gradientScale { r.gradient.setFlattenedParameters(r.gradient.flattenedParameters().map { $0 * scale }) }
        if let value = gradientValue { r.gradient.setFlattenedParameter(0, to: value) }
        return r
    }
    func evaluate(_ model: TokenClassifier) throws -> String { "" }
}

@Suite("Training with a loss spike: stop with a message, never write NaN weights")
struct LossSpikeSpecs {
    /// Runs `task` with a checkpoint every step; returns the error message (nil if training
    /// finished), the model after the run, and the checkpoint's step and weights.
    static func run(_ make: (NERTask) -> SpikedTask) throws -> (message: String?, model: TokenClassifier, checkpointStep: Int, restored: TokenClassifier) {
        let (initial, examples) = try TinyNER.setup()
        let dir = try TrainerSpecs.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        var o = TrainerSpecs.options()
        o.checkpoint = dir.appendingPathComponent("ckpt.safetensors")
        o.checkpointEvery = 1
        var model = initial
        var message: String? = nil
        do { _ = try Trainer.train(&model, task: make(try TinyNER.task(examples)), options: o) { _ in } }
        catch let error as DecoderSpecError { message = error.description }
        var restored = initial
        var opt = try AdamW()
        let step = try TrainingCheckpoint.read(from: o.checkpoint!, into: &restored, optimizer: &opt)
        return (message, model, step, restored)
    }

    @Test("+∞ loss at step 3: stops naming the step and the loss; weights and checkpoint (step 2) finite and equal")
    func infiniteLoss() throws {
        let r = try Self.run { SpikedTask(inner: $0, spikeStep: 3, loss: .infinity) }
        let m = try #require(r.message, "training with a +∞ loss did not stop")
        #expect(m.contains("step 3") && m.contains("inf") && m.contains("no weights written"), "\(m)")
        #expect(r.model.flattenedParameters().allSatisfy { $0.isFinite })
        #expect(r.checkpointStep == 2)
        #expect(r.restored.flattenedParameters().map(\.bitPattern) == r.model.flattenedParameters().map(\.bitPattern))
    }

    @Test("Finite loss but a +∞ / NaN gradient entry at step 3: stops naming the gradient norm; nothing non-finite written")
    func nonFiniteGradient() throws {
        for bad in [Float.infinity, .nan] {
            let r = try Self.run { SpikedTask(inner: $0, spikeStep: 3, loss: 1e30, gradientValue: bad) }
            let m = try #require(r.message, "training with a \(bad) gradient did not stop")
            #expect(m.contains("step 3") && m.contains("gradient norm") && m.contains("no weights written"), "\(m)")
            #expect(r.model.flattenedParameters().allSatisfy { $0.isFinite })
            #expect(r.checkpointStep == 2)
            #expect(r.restored.flattenedParameters().map(\.bitPattern) == r.model.flattenedParameters().map(\.bitPattern))
        }
    }

    @Test("A finite spike (gradient ×1e30 at step 3): either clipped and training goes on, or stopped with a message — never NaN weights")
    func finiteSpike() throws {
        let r = try Self.run { SpikedTask(inner: $0, spikeStep: 3, loss: 1e6, gradientScale: 1e30) }
        if let m = r.message { #expect(m.contains("step 3"), "\(m)") }
        #expect(r.model.flattenedParameters().allSatisfy { $0.isFinite }, "\(r.message ?? "trained to the end")")
        #expect(r.restored.flattenedParameters().allSatisfy { $0.isFinite })
        print("finite gradient spike ×1e30: \(r.message ?? "clipped; trained to the end (checkpoint step \(r.checkpointStep))")")
    }
}
