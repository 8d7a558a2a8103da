// Minimal references for the training bugs (#16 AdamW, #17 label smoothing / ignored positions).
//
// THE REFERENCE FOR THE ZOO ONLY UNTIL THE REAL MODULE LANDS: the `Training` module (branch
// `training`: `AdamW`, `CrossEntropyLoss`) was not mergeable when the zoo was written (its HEAD
// declares a TrainingSpecs target without sources). These two functions transcribe the same
// formulas in Double so bugs #16 and #17 are caught against a real implementation; when Training
// is merged, `Variant.correct` of #16/#17 should wrap `AdamW.update` / `CrossEntropyLoss` instead.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TensorCore

/// Adam hyper-parameters: η, β₁, β₂, ε, weight decay λ.
public struct AdamHyperparameters: Sendable, Equatable {
    public var learningRate: Double
    public var beta1: Double
    public var beta2: Double
    public var epsilon: Double
    public var weightDecay: Double
    public init(learningRate: Double = 1e-2, beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8, weightDecay: Double = 0.1) {
        (self.learningRate, self.beta1, self.beta2, self.epsilon, self.weightDecay) = (learningRate, beta1, beta2, epsilon, weightDecay)
    }
}

public enum ZooReference {
    /// AdamW (Loshchilov & Hutter, Algorithm 2; `torch.optim.AdamW`), in Double:
    ///
    ///     θ ← θ − η·λ·θ                                   (decoupled decay)
    ///     m ← β₁m + (1 − β₁)g,   v ← β₂v + (1 − β₂)g²
    ///     m̂ = m/(1 − β₁ᵗ),       v̂ = v/(1 − β₂ᵗ)
    ///     θ ← θ − η·m̂/(√v̂ + ε)
    ///
    /// - Throws: `.shapeMismatch` when a gradient's length differs from θ's.
    public static func adamW(theta: [Double], gradients: [[Double]], hyper h: AdamHyperparameters) throws -> [Double] {
        try adam(theta: theta, gradients: gradients, hyper: h, biasCorrection: true, decoupled: true)
    }

    /// The shared loop; the zoo's #16 variants switch off one ingredient each.
    static func adam(theta: [Double], gradients: [[Double]], hyper h: AdamHyperparameters,
                     biasCorrection: Bool, decoupled: Bool) throws -> [Double] {
        var theta = theta
        var m = [Double](repeating: 0, count: theta.count), v = m
        for (index, g) in gradients.enumerated() {
            guard g.count == theta.count else {
                throw DecoderSpecError.shapeMismatch(operation: "Adam step \(index + 1)", expected: "gradient of \(theta.count) values", actual: "\(g.count)")
            }
            let t = Double(index + 1)
            let c1 = biasCorrection ? 1 - pow(h.beta1, t) : 1
            let c2 = biasCorrection ? 1 - pow(h.beta2, t) : 1
            for i in theta.indices {
                var gi = g[i]
                if decoupled { theta[i] -= h.learningRate * h.weightDecay * theta[i] } else { gi += h.weightDecay * theta[i] }
                m[i] = h.beta1 * m[i] + (1 - h.beta1) * gi
                v[i] = h.beta2 * v[i] + (1 - h.beta2) * gi * gi
                theta[i] -= h.learningRate * (m[i] / c1) / ((v[i] / c2).squareRoot() + h.epsilon)
            }
        }
        return theta
    }

    /// Label-smoothed cross-entropy with an ignore index, in Double:
    ///
    ///     p = softmax(zᵢ),  q = (1 − ε)·onehot(yᵢ) + ε/C,  ℓᵢ = −Σ_c q_c log p_c
    ///     L = (1/N) Σ_{i: yᵢ ≠ ignore} ℓᵢ        (N = number of non-ignored rows; L = 0 when N = 0)
    ///
    /// - Throws: `.shapeMismatch` when targets and rows differ; `.idOutOfRange` for a target outside 0..<C.
    public static func crossEntropy(logits: Matrix, targets: [Int], ignoreIndex: Int, labelSmoothing eps: Double) throws -> Double {
        try smoothedLoss(logits: logits, targets: targets, ignoreIndex: ignoreIndex, eps: eps, smoothIgnored: false, countIgnored: false)
    }

    static func smoothedLoss(logits: Matrix, targets: [Int], ignoreIndex: Int, eps: Double,
                             smoothIgnored: Bool, countIgnored: Bool) throws -> Double {
        guard targets.count == logits.rows else {
            throw DecoderSpecError.shapeMismatch(operation: "cross-entropy", expected: "\(logits.rows) targets", actual: "\(targets.count)")
        }
        let c = logits.cols
        for (i, t) in targets.enumerated() where t != ignoreIndex && (t < 0 || t >= c) {
            throw DecoderSpecError.idOutOfRange(id: t, position: i, vocabularySize: c)
        }
        var total = 0.0
        var n = 0
        for (i, t) in targets.enumerated() {
            let z = logits.row(i).map(Double.init)
            let mu = z.max()!
            let logZ = mu + log(z.reduce(0) { $0 + exp($1 - mu) })
            let logP = z.map { $0 - logZ }
            let smooth = -logP.reduce(0, +) / Double(c)  // −(1/C) Σ_c log p_c
            if t == ignoreIndex {
                if smoothIgnored { total += eps * smooth }
                if countIgnored { n += 1 }
                continue
            }
            total += (1 - eps) * (-logP[t]) + eps * smooth
            n += 1
        }
        return n == 0 ? 0 : total / Double(n)
    }
}
