import DecoderSpec
import Foundation
import SpecSupport
import Testing

/// A tiny parameter container: one "weight" (decayed) and one "bias" (not decayed).
struct Pair: ParameterContainer, Equatable {
    var weight: [Float]
    var bias: [Float]
    mutating func visitParameters(prefix: String, _ body: (String, [Int], inout [Float]) throws -> Void) rethrows {
        try body("w.weight", [weight.count], &weight)
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

    /// The reusable check: `variant` run for 4 steps with fixed gradients vs the closed form.
    static func adamWCheck(_ variant: AdamW.Variant) -> Verdict {
        let w0: [Float] = [0.5, -1.25, 2, 0.01], b0: [Float] = [0.3, -0.7]
        let gw: [[Float]] = [[0.1, -0.2, 0.3, 1e-3], [0.05, 0.4, -0.3, -2e-3], [-0.2, 0.1, 0.2, 5e-3], [0.3, -0.1, 0.0, 1e-3]]
        let gb: [[Float]] = [[1, -1], [0.5, 0.25], [-0.5, 2], [0.1, 0.1]]
        let eta = [1e-2, 2e-2, 3e-2, 1e-2], lambda = 0.1
        var model = Pair(weight: w0, bias: b0)
        var opt = try! AdamW(weightDecay: lambda, variant: variant)
        for t in 0..<4 { opt.update(&model, gradient: Pair(weight: gw[t], bias: gb[t]), learningRate: eta[t]) }
        let expectedW = closedForm(theta0: w0.doubles, gradients: gw.map(\.doubles), eta: eta, lambda: lambda, decays: true)
        let expectedB = closedForm(theta0: b0.doubles, gradients: gb.map(\.doubles), eta: eta, lambda: lambda, decays: false)
        // Float arithmetic of ~10 operations per step, 4 steps, on values O(1): the update terms are
        // ≤ η ≈ 3e-2 and carry a relative error of a few ε; 1e-6 absolute is ≈ 10 ULPs of θ ≈ 1.
        return compare(model.weight, expectedW, .absolute(1e-6), "AdamW \(variant) weights")
            .and(compare(model.bias, expectedB, .absolute(1e-6), "AdamW \(variant) bias (no decay)"))
    }

    @Test("AdamW (decoupled decay, bias correction) equals the closed-form update for 4 steps")
    func adamW() {
        let v = Self.adamWCheck(.decoupled)
        #expect(v.passed, "\(v)")
    }

    @Test("Adam + L2 (coupled) and no-bias-correction differ and fail the same check",
          arguments: [AdamW.Variant.coupledL2, .noBiasCorrection])
    func wrongVariantsFail(variant: AdamW.Variant) {
        #expect(!Self.adamWCheck(variant).passed, "\(variant) passed the AdamW closed-form check")
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
