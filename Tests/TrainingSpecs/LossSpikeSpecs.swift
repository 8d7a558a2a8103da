import DecoderSpec
import Foundation
import GSLOracle
import SpecSupport
import Testing

// Numerics at the edges (docs/reliability.md): a loss spike in training. `TrainerSpecs.nonFiniteStops` covers
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
    func validate(_ model: TokenClassifier) throws -> Validation? { nil }
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

    @Test("A finite spike (gradient ×1e30 at step 3) is measured in Double, clipped, and training goes on — never NaN weights")
    func finiteSpike() throws {
        let r = try Self.run { SpikedTask(inner: $0, spikeStep: 3, loss: 1e6, gradientScale: 1e30) }
        #expect(r.message == nil, "the finite spike should be clipped, not stop training: \(r.message ?? "")")
        #expect(r.model.flattenedParameters().allSatisfy { $0.isFinite }, "\(r.message ?? "trained to the end")")
        #expect(r.restored.flattenedParameters().allSatisfy { $0.isFinite })
    }

    @Test("The global gradient norm of entries 3e30 and 4e30 is 5e30 (Float squares would overflow), and ∞ only for a non-finite entry")
    func globalNormOfASpike() throws {
        var crf = try LinearChainCRF(tagCount: 1)
        crf.transitions.storage = [3e30]
        crf.start = [4e30]
        crf.end = [0]
        // ‖g‖ = sqrt(9e60 + 16e60) = 5e30; the inputs are Float-rounded, so compare to the exact norm of
        // the stored values within a few Double ulps.
        let exact = (Double(Float(3e30)) * Double(Float(3e30)) + Double(Float(4e30)) * Double(Float(4e30))).squareRoot()
        let norm = GradientClipping.globalNorm(crf)
        #expect(abs(norm - exact) <= 4 * exact.ulp, "\(norm) vs \(exact)")
        crf.end = [.infinity]
        #expect(GradientClipping.globalNorm(crf) == .infinity)
    }
}

@Suite("Training LayerNorm at the edges")
struct TrainingLayerNormEdgeSpecs {
    @Test("trainingForward's y is bitwise the naive kernel's (GSL-checked at every scale in EdgeNumericsSpecs) for rows ×1e-30 … ×1e30, constant rows and subnormals")
    func matchesNaiveKernel() throws {
        let d = 37
        let gamma = Inputs.matrix(rows: 1, cols: d, seed: 81, range: 0.5...1.5).storage
        let beta = Inputs.matrix(rows: 1, cols: d, seed: 82).storage
        let ln = try LayerNorm(gamma: gamma, beta: beta, epsilon: 1e-5)
        let base = Inputs.matrix(rows: 1, cols: d, seed: 83).storage
        var rows: [[Float]] = [-30, -20, -10, 0, 10, 20, 30].map { k in base.map { $0 * Float(pow(10.0, Double(k))) } }
        rows.append([Float](repeating: 1e5, count: d))
        rows.append([Float](repeating: -7, count: d))
        rows.append(base.map { $0 * Float.leastNonzeroMagnitude * 1000 })
        rows.append(base.map { $0 + 1000 })
        let x = try Matrix(rows)
        let (y, cache) = ln.trainingForward(x)
        let reference = try x.layerNorm(gamma: gamma, beta: beta, epsilon: 1e-5, path: .naive)
        #expect(y.storage.map(\.bitPattern) == reference.storage.map(\.bitPattern))
        #expect(y.storage.allSatisfy(\.isFinite) && cache.normalized.storage.allSatisfy(\.isFinite) && cache.reciprocalStd.allSatisfy(\.isFinite))
        // A constant row normalizes to exactly 0, so y = β.
        #expect(Array(y.storage[(7 * d)..<(8 * d)]) == beta && Array(y.storage[(8 * d)..<(9 * d)]) == beta)
    }
}
