import DecoderSpec
import Foundation
import SpecSupport
import Testing

/// A tiny parameter container: a 2×(n/2) matrix "weight" (rank 2: decayed) and a vector "bias"
/// (rank 1: not decayed).
struct Pair: ParameterContainer, Equatable {
    var weight: [Float]
    var bias: [Float]
    mutating func visitParameters(prefix: String, _ body: (String, [Int], inout [Float]) throws -> Void) rethrows {
        try body("w.weight", weight.count % 2 == 0 ? [2, weight.count / 2] : [1, weight.count], &weight)
        try body("w.bias", [bias.count], &bias)
    }
}

@Suite("AdamW, clipping, schedule")
struct OptimizerSpecs {
    /// AdamW by hand in Double (Loshchilov & Hutter, Algorithm 2; torch.optim.AdamW):
    /// θ ← θ(1 − ηλ); m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; θ ← θ − η·(m/(1−β₁ᵗ))/(√(v/(1−β₂ᵗ)) + ε).
    static func closedForm(theta0: [Double], gradients: [[Double]], eta: [Double], lambda: Double, decays: Bool) -> [Double] {
        let (b1, b2, eps) = (0.9, 0.999, 1e-8)
        var theta = theta0
        var m = [Double](repeating: 0, count: theta.count), v = m
        for (t, g) in gradients.enumerated() {
            for i in theta.indices {
                if decays { theta[i] *= 1 - eta[t] * lambda }
                m[i] = b1 * m[i] + (1 - b1) * g[i]
                v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
                let mHat = m[i] / (1 - pow(b1, Double(t + 1))), vHat = v[i] / (1 - pow(b2, Double(t + 1)))
                theta[i] -= eta[t] * mHat / (vHat.squareRoot() + eps)
            }
        }
        return theta
    }

    /// AdamW run for 4 steps with fixed, varying gradients and rates vs the closed form (the
    /// weights decay, the bias does not). The same check on the update-rule mistakes is the bug
    /// zoo's "AdamW, varying gradients" (TrainingChecks.adamWVaryingGradients, #16).
    static func adamWCheck() -> Verdict {
        let w0: [Float] = [0.5, -1.25, 2, 0.01], b0: [Float] = [0.3, -0.7]
        let gw: [[Float]] = [[0.1, -0.2, 0.3, 1e-3], [0.05, 0.4, -0.3, -2e-3], [-0.2, 0.1, 0.2, 5e-3], [0.3, -0.1, 0.0, 1e-3]]
        let gb: [[Float]] = [[1, -1], [0.5, 0.25], [-0.5, 2], [0.1, 0.1]]
        let eta = [1e-2, 2e-2, 3e-2, 1e-2], lambda = 0.1
        var model = Pair(weight: w0, bias: b0)
        var opt = try! AdamW(weightDecay: lambda)
        for t in 0..<4 { opt.update(&model, gradient: Pair(weight: gw[t], bias: gb[t]), learningRate: eta[t]) }
        let expectedW = closedForm(theta0: w0.doubles, gradients: gw.map(\.doubles), eta: eta, lambda: lambda, decays: true)
        let expectedB = closedForm(theta0: b0.doubles, gradients: gb.map(\.doubles), eta: eta, lambda: lambda, decays: false)
        // Float arithmetic of ~10 operations per step, 4 steps, on values O(1): the update terms are
        // ≤ η ≈ 3e-2 and carry a relative error of a few ε; 1e-6 absolute is ≈ 10 ULPs of θ ≈ 1.
        return compare(model.weight, expectedW, .absolute(1e-6), "AdamW weights")
            .and(compare(model.bias, expectedB, .absolute(1e-6), "AdamW bias (no decay)"))
    }

    @Test("AdamW (decoupled decay, bias correction) equals the closed-form update for 4 steps")
    func adamW() {
        let v = Self.adamWCheck()
        #expect(v.passed, "\(v)")
    }

    /// Weight decay by tensor rank. With a zero gradient, m = v = 0 and the adaptive step is
    /// η·0/(0 + ε) = 0, so one AdamW step is pure decay: every matrix (rank ≥ 2) becomes exactly
    /// θ·Float(1 − ηλ) and every vector (rank 1) stays bitwise as it was. The encoder-decoder's final
    /// norms (`encoder.layer_norm`, `decoder.layer_norm`) are vectors whose names BERT's rule
    /// ("bias" / "LayerNorm") does not match, so name-based decay scaled them; the NER model with a
    /// CRF adds the CRF's start/end vectors and its transition matrix.
    @Test("Weight decay by rank: a zero-gradient step scales every matrix by (1 − ηλ) and leaves every vector — biases, norms, the final norms — untouched")
    func weightDecayByRank() throws {
        var translation = try EncoderDecoderModel.seeded(EncoderDecoderConfig(sourceVocabularySize: 7, targetVocabularySize: 6, contextLength: 8, modelWidth: 4,
                                                                              heads: 2, encoderLayers: 1, decoderLayers: 1, feedForwardWidth: 6), seed: 3)
        // Move γ, β off 1, 0 so "unchanged" cannot be met by accident.
        translation.setFlattenedParameters(translation.flattenedParameters().enumerated().map { $1 + Float($0 % 7) * 0.01 })
        var (ner, _) = try TinyNER.setup()
        ner.crf = try LinearChainCRF(tagCount: ner.labels.count)
        ner.setFlattenedParameters(ner.flattenedParameters().enumerated().map { $1 + Float($0 % 5) * 0.01 + 0.1 })
        let (eta, lambda) = (0.1, 0.5)
        let factor = Float(1 - eta * lambda)
        func check<M: ParameterContainer>(_ model: M, mustHoldVectors names: [String]) throws {
            var stepped = model
            var opt = try AdamW(weightDecay: lambda)
            opt.update(&stepped, gradient: model.zeroGradient(), learningRate: eta)
            var before: [String: (shape: [Int], values: [Float])] = [:]
            var copy = model
            copy.visitParameters(prefix: "") { n, s, v in before[n] = (s, v) }
            var vectors: [String] = [], matrices = 0
            stepped.visitParameters(prefix: "") { name, shape, after in
                let old = before[name]!.values
                if shape.count >= 2 {
                    matrices += 1
                    #expect(after.map(\.bitPattern) == old.map { ($0 * factor).bitPattern }, "matrix \(name) \(shape) not decayed by (1 − ηλ)")
                } else {
                    vectors.append(name)
                    #expect(after.map(\.bitPattern) == old.map(\.bitPattern), "vector \(name) \(shape) changed: decayed")
                }
            }
            #expect(matrices > 0)
            for name in names { #expect(vectors.contains(name), "\(name) is not among the model's vectors \(vectors)") }
        }
        try check(translation, mustHoldVectors: ["encoder.layer_norm.weight", "encoder.layer_norm.bias", "decoder.layer_norm.weight",
                                                 "decoder.layer_norm.bias"])
        try check(ner, mustHoldVectors: ["crf.start_transitions", "crf.end_transitions", "bert.embeddings.LayerNorm.weight", "classifier.bias"])
    }

    @Test("Clipping by global norm: scaled to the max norm when above, untouched below")
    func clipping() {
        var g = Pair(weight: [3, 0, 0], bias: [4])  // ‖g‖ = 5
        let before = GradientClipping.clip(&g, maxNorm: 1)
        #expect(before == 5)
        // torch's factor maxNorm/(‖g‖ + 1e-6): the new norm is 1 − 2e-7, within Float rounding.
        #expect(Bound.relative(1e-6).allows(GradientClipping.globalNorm(g), 5 / (5 + 1e-6)))
        #expect(Bound.relative(1e-6).allows(Double(g.weight[0] / g.bias[0]), 0.75), "direction changed")
        var small = Pair(weight: [0.3], bias: [0.4])
        GradientClipping.clip(&small, maxNorm: 1)
        #expect(small == Pair(weight: [0.3], bias: [0.4]))
    }

    @Test("Linear warm-up then linear decay: closed-form values")
    func schedule() throws {
        let s = try LinearSchedule(peak: 1e-3, warmupSteps: 10, totalSteps: 110)
        let expected: [(Int, Double)] = [(0, 0), (5, 5e-4), (10, 1e-3), (60, 5e-4), (110, 0), (200, 0)]
        for (step, lr) in expected { #expect(abs(s.learningRate(at: step) - lr) < 1e-15, "step \(step)") }
        #expect(throws: DecoderSpecError.self) { try LinearSchedule(peak: 1e-3, warmupSteps: 20, totalSteps: 10) }
    }
}
