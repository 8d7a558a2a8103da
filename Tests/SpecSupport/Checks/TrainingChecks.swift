import Foundation
import GSLOracle
import TensorCore

/// Checks of the optimizer and the loss (docs/training.md, docs/bug-zoo.md #16–17).
public enum TrainingChecks {
    public typealias Hyper = (learningRate: Double, beta1: Double, beta2: Double, epsilon: Double, weightDecay: Double)

    /// AdamW against its closed form. With a constant gradient g the bias-corrected moments are
    /// exactly m̂ = g and v̂ = g², so every step is θ ← (1 − ηλ)θ − η·s with s = g/(|g| + ε), and
    ///     θ_T = (1 − ηλ)^T·θ₀ − η·s·Σ_{j<T} (1 − ηλ)^j.
    /// `run` maps (θ₀, gradients per step, (η, β₁, β₂, ε, λ)) to θ_T. The coordinates include g = 0
    /// (pure decoupled decay). Tolerance: `floatAdamBound` (a Float implementation; a Double one
    /// is far inside it).
    public static func adamWClosedForm(_ run: ([Double], [[Double]], Hyper) throws -> [Double], steps: Int = 5) -> Verdict {
        let h: Hyper = (1e-2, 0.9, 0.999, 1e-8, 0.1)
        let theta0 = [0.5, -1.0, 2.0, 0.3, -0.7]
        let g = [0.5, -0.25, 0, 1e-3, 2.0]
        let decay = 1 - h.learningRate * h.weightDecay
        var geometric = 0.0, power = 1.0
        for _ in 0..<steps { geometric += power; power *= decay }
        let expected = theta0.indices.map { i -> Double in
            let s = g[i] / (abs(g[i]) + h.epsilon)
            return power * theta0[i] - h.learningRate * s * geometric
        }
        return CheckSupport.guarded("AdamW, \(steps) steps of g = \(g)") {
            compare(try run(theta0, Array(repeating: g, count: steps), h), expected, floatAdamBound(theta0, h, steps),
                    "AdamW closed form: θ_T = (1−ηλ)^T θ₀ − η·g/(|g|+ε)·Σ(1−ηλ)^j, η = 0.01, λ = 0.1, T = \(steps)")
        }
    }

    /// AdamW over 4 steps of varying gradients (and signs), against the update computed by hand in
    /// Double (Loshchilov & Hutter, Algorithm 2; torch.optim.AdamW):
    ///     θ ← θ(1 − ηλ); m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; θ ← θ − η·(m/(1−β₁ᵗ))/(√(v/(1−β₂ᵗ)) + ε).
    /// Unlike the constant-gradient closed form, m̂ ≠ g here, so the moments' recurrences are
    /// exercised. Tolerance: `floatAdamBound`.
    public static func adamWVaryingGradients(_ run: ([Double], [[Double]], Hyper) throws -> [Double]) -> Verdict {
        let h: Hyper = (2e-2, 0.9, 0.999, 1e-8, 0.1)
        let theta0 = [0.5, -1.25, 2, 0.01]
        let gradients = [[0.1, -0.2, 0.3, 1e-3], [0.05, 0.4, -0.3, -2e-3], [-0.2, 0.1, 0.2, 5e-3], [0.3, -0.1, 0.0, 1e-3]]
        var theta = theta0
        var m = [Double](repeating: 0, count: theta.count), v = m
        for (t, g) in gradients.enumerated() {
            let c1 = 1 - pow(h.beta1, Double(t + 1)), c2 = 1 - pow(h.beta2, Double(t + 1))
            for i in theta.indices {
                theta[i] *= 1 - h.learningRate * h.weightDecay
                m[i] = h.beta1 * m[i] + (1 - h.beta1) * g[i]
                v[i] = h.beta2 * v[i] + (1 - h.beta2) * g[i] * g[i]
                theta[i] -= h.learningRate * (m[i] / c1) / ((v[i] / c2).squareRoot() + h.epsilon)
            }
        }
        return CheckSupport.guarded("AdamW, 4 steps of varying gradients") {
            compare(try run(theta0, gradients, h), theta, floatAdamBound(theta0, h, gradients.count),
                    "AdamW, 4 varying gradients: the update by hand in Double, η = 0.02, λ = 0.1")
        }
    }

    /// The forward error of T Float AdamW steps, absolute: per step the decay θ·Float(1 − ηλ) and the
    /// final subtraction round θ three times (3u·|θ|), and the step η·m̂/(√v̂ + ε) carries ≤ 4t + 4
    /// roundings relative (the moments' recurrences, sqrt, divide, the Float η/c₁ and 1/√c₂) ≤ 20u·η
    /// for t ≤ 4; plus θ₀'s own rounding to Float. So (3T + 1)·u·max|θ| + 20·T·u·η (≈ 2e-6 here,
    /// against differences of 0.04–0.2 for the classic mistakes).
    static func floatAdamBound(_ theta0: [Double], _ h: Hyper, _ steps: Int) -> Bound {
        let u = CheckSupport.unitRoundoff
        let maxTheta = theta0.map { abs($0) }.max() ?? 0
        return .absolute(Double(3 * steps + 1) * u * maxTheta + Double(20 * steps) * u * h.learningRate)
    }

    /// Decoupled weight decay: with zero gradients AdamW only decays, θ_T = (1 − ηλ)^T·θ₀ (Adam + L2
    /// would feed λθ through 1/(√v̂ + ε) and move θ by ≈ η per step instead).
    public static func zeroGradientOnlyDecays(_ run: ([Double], [[Double]], Hyper) throws -> [Double], steps: Int = 5) -> Verdict {
        let h: Hyper = (1e-2, 0.9, 0.999, 1e-8, 0.1)
        let theta0 = [0.5, -1.0, 2.0]
        var power = 1.0
        for _ in 0..<steps { power *= 1 - h.learningRate * h.weightDecay }
        return CheckSupport.guarded("AdamW with g = 0") {
            compare(try run(theta0, Array(repeating: [0, 0, 0], count: steps), h), theta0.map { $0 * power },
                    floatAdamBound(theta0, h, steps), "zero gradient: θ_T = (1 − ηλ)^T θ₀")
        }
    }

    /// A loss computed from Float logits with Float `expf` terms (≤ 1 ulp each) summed and logged in
    /// Double: log Z is off by ≤ 2u, each log p_c too, and ℓ = −Σ q_c log p_c (Σ q_c = 1) by ≤ 2u;
    /// ε stored as a Float moves q by ≤ u·ε per class, ≤ u·ε·Σ|log p_c| ≤ 8u here. Bound: 16u absolute
    /// (≈ 1e-6, against differences of 0.15–0.85 for the padding mistakes).
    static let lossBound = Bound.absolute(16 * CheckSupport.unitRoundoff)

    /// ℓ = −Σ_c q_c log p_c with q = (1 − ε)·onehot + ε/C, mean over `rows`, in Double (GSL log/exp).
    static func referenceLoss(_ logits: Matrix, _ targets: [Int], rows: [Int], eps: Double) -> Double {
        var total = 0.0
        for i in rows {
            let z = logits.row(i).map(Double.init)
            let p = CheckSupport.softmax(z)
            let c = Double(z.count)
            for k in z.indices { total -= ((k == targets[i] ? 1 - eps : 0) + eps / c) * CheckSupport.log(p[k]) }
        }
        return total / Double(rows.count)
    }

    /// With nothing ignored, the label-smoothed loss equals its closed form (ε = 0.1, 5 classes).
    /// `loss` maps (logits, targets, ignoreIndex, ε) to the mean loss. Tolerance `lossBound`.
    public static func lossMatchesClosedForm(_ loss: (Matrix, [Int], Int, Double) throws -> Double) -> Verdict {
        let z = CheckSupport.matrix(4, 5, seed: 21, range: -3...3)
        let t = [1, 3, 0, 4]
        return CheckSupport.guarded("smoothed CE, no ignored rows") {
            compare([try loss(z, t, -100, 0.1)], [referenceLoss(z, t, rows: Array(0..<4), eps: 0.1)], lossBound,
                    "label-smoothed cross-entropy (ε = 0.1) vs closed form")
        }
    }

    /// Ignored positions (target = ignoreIndex) do not count: the loss equals the closed form over
    /// the other rows only (mean over them), for ε = 0 and ε = 0.1, and other logits in the ignored
    /// rows leave it unchanged.
    public static func ignoredPositionsDoNotCount(_ loss: (Matrix, [Int], Int, Double) throws -> Double) -> Verdict {
        let z = CheckSupport.matrix(6, 5, seed: 22, range: -3...3)
        let t = [1, -100, 3, -100, 0, 4]
        let valid = [0, 2, 4, 5]
        for eps in [0.0, 0.1] {
            let v = CheckSupport.guarded("CE with ignored rows, ε = \(eps)") { () -> Verdict in
                let got = try loss(z, t, -100, eps)
                let r = compare([got], [referenceLoss(z, t, rows: valid, eps: eps)], lossBound,
                                "ε = \(eps): rows 1 and 3 are ignored (-100); the mean is over the 4 others")
                guard r.passed else { return r }
                var z2 = z
                for c in 0..<5 { z2[1, c] = 7 * Float(c); z2[3, c] = -4 }
                return compare([try loss(z2, t, -100, eps)], [got], .exact, "ε = \(eps): logits of ignored rows changed the loss")
            }
            if !v.passed { return v }
        }
        return .pass
    }
}
