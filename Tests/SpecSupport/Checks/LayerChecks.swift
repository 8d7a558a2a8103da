import GSLOracle
import Kernels
import TensorCore

/// Checks of LayerNorm and the activations (docs/layers.md, docs/kernels.md, docs/bug-zoo.md #9–10).
public enum LayerChecks {
    /// LayerNorm matches a Double reference built from gsl_stats_mean and the POPULATION variance
    /// (÷ d): y = γ(x − μ)/√(σ² + ε) + β. Tolerance per row: (4d + 16)·u·(max|γ|·max|x̂| + max|β|) —
    /// the d-term mean and variance sums (≤ d·u relative each, the variance error entering x̂ halved
    /// by the square root) plus a few roundings of the final multiply-add.
    public static func layerNormMatchesGSL(_ layerNorm: (Matrix, [Float], [Float], Float) throws -> Matrix,
                                           rows: Int, dimension d: Int, seed: UInt) -> Verdict {
        let context = "LayerNorm x [\(rows), \(d)], seed \(seed)"
        return CheckSupport.guarded(context) {
            let x = CheckSupport.matrix(rows, d, seed: seed, range: -3...3)
            let gb = CheckSupport.matrix(2, d, seed: seed + 1, range: -2...2)
            let gamma = gb.row(0), beta = gb.row(1)
            let eps: Float = 1e-5
            let y = try layerNorm(x, gamma, beta, eps)
            guard y.shape == x.shape else { return .fail("shape \(y.shape), expected \(x.shape). \(context)") }
            var expected: [Double] = []
            var tolerance = 0.0
            let maxGamma = Double(gamma.map { abs($0) }.max()!), maxBeta = Double(beta.map { abs($0) }.max()!)
            for r in 0..<rows {
                let row = x.row(r).map(Double.init)
                let mu = GSL.mean(row)
                let variance = GSL.populationVariance(row, mean: mu)
                let inv = 1 / (variance + Double(eps)).squareRoot()
                let xhat = row.map { ($0 - mu) * inv }
                for j in 0..<d { expected.append(Double(gamma[j]) * xhat[j] + Double(beta[j])) }
                let maxHat = xhat.map { abs($0) }.max()!
                tolerance = max(tolerance, Double(4 * d + 16) * CheckSupport.unitRoundoff * (maxGamma * maxHat + maxBeta))
            }
            return compare(y.storage, expected, .absolute(tolerance), "LayerNorm vs gsl_stats (population variance). \(context)")
        }
    }

    /// x in [−5, 5] on a 0.05 grid plus a few values near 0.
    static let activationGrid: [Float] = (0...200).map { Float(-5 + 0.05 * Double($0)) } + [1e-3, -1e-3, 0.3, -0.7]

    /// Compares y with a Double reference under a per-element bound a·u·|ref| + b·u·|x|·(1 + |inner|).
    static func activationVerdict(_ x: [Float], _ y: [Float], _ ref: [Double], inner: [Double], _ what: String) -> Verdict {
        guard y.count == x.count else { return .fail("\(what): \(y.count) outputs for \(x.count) inputs") }
        let u = CheckSupport.unitRoundoff
        var worst = -1, worstExcess = 0.0
        for i in x.indices {
            let allowed = 4 * u * abs(ref[i]) + 4 * u * abs(Double(x[i])) * (1 + abs(inner[i]))
            let err = abs(Double(y[i]) - ref[i])
            if !(err <= allowed) && (worst < 0 || err - allowed > worstExcess) { worst = i; worstExcess = err - allowed }
        }
        if worst < 0 { return .pass }
        return .fail("\(what): at x = \(x[worst]) expected \(ref[worst]), observed \(y[worst]) (error exceeds the bound by \(worstExcess))")
    }

    /// "gelu" is exact: GELU(x) = x/2·(1 + erf(x/√2)) against gsl_sf_erf. Bound: 4u·|ref| (the final
    /// roundings) + 4u·|x| (erff's few-ulp error on a unit-size value, times x/2, and the rounding of
    /// x/√2 through erf' ≤ 2/√π).
    public static func geluMatchesErf(_ activation: (Activation.Function, [Float]) throws -> [Float]) -> Verdict {
        CheckSupport.guarded("gelu on [−5, 5]") {
            let x = activationGrid
            let y = try activation(.gelu, x)
            let ref = try x.map { v -> Double in let d = Double(v); return 0.5 * d * (1 + (try GSL.erf(d / 2.0.squareRoot()))) }
            return activationVerdict(x, y, ref, inner: x.map { _ in 0 }, "gelu vs 0.5x(1 + gsl_sf_erf(x/√2))")
        }
    }

    /// "gelu_new" is the tanh form: x/2·(1 + tanh(√(2/π)(x + 0.044715x³))) against GSL's tanh.
    /// Bound as `geluMatchesErf`, with the inner argument's rounding (relative u of |inner|) added.
    public static func geluTanhMatchesTanh(_ activation: (Activation.Function, [Float]) throws -> [Float]) -> Verdict {
        CheckSupport.guarded("gelu_new on [−5, 5]") {
            let x = activationGrid
            let y = try activation(.geluTanh, x)
            let c = (2 / Double.pi).squareRoot()
            let inner = x.map { v -> Double in let d = Double(v); return c * (d + 0.044715 * d * d * d) }
            let ref = x.indices.map { 0.5 * Double(x[$0]) * (1 + GSL.tanh(inner[$0])) }
            return activationVerdict(x, y, ref, inner: inner, "gelu_new vs 0.5x(1 + tanh(√(2/π)(x + 0.044715x³)))")
        }
    }
}
