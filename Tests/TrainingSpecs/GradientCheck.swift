import DecoderSpec
import GSLOracle
import SpecSupport
import Testing

/// The gradient check, reusable against any backward (the real ones must pass it, the
/// deliberately wrong ones must fail it).
///
/// Method: the library computes in Float. The scalar loss is the projection L(θ) = Σᵢ Gᵢ·Yᵢ(θ) of
/// the layer's Float output Y onto a fixed random G, summed in Double, so its only rounding is
/// the Float rounding of Y. `gsl_deriv_central` (GSL.derivative) differentiates θ_k ↦ L in Double
/// with step h = 1e-2 (its 5-point rule has truncation error O(h⁴·f⁽⁵⁾), negligible here).
///
/// Tolerance, per component: |analytic − numeric| ≤ a + 1e-2·|numeric|, with
/// a = 32·ε_Float·S/h where S = Σᵢ|Gᵢ·Yᵢ|: each Yᵢ carries a relative Float error of a few ε
/// (≲ 8ε for these short sums), the central difference divides the noise of L (≤ 8ε·S) by
/// h, and GSL's rule combines 4 evaluations (factor ≤ 4/3+… ≈ 4). Relative 1e-2 covers the
/// Float rounding of the analytic gradient itself and the Float quantization of θ ± h.
/// For a whole model's loss use `LossGradientCheck` (below): its error model is per component.
struct GradientCheck {
    var step: Double = 1e-2
    var relative: Double = 1e-2

    /// `parameters`: the values to perturb; `output(θ)`: the Float outputs given θ;
    /// `weights`: G; `analytic`: the backward's dL/dθ for L = Σ G·Y.
    func run(parameters: [Float], weights: [Double], analytic: [Float], name: String,
             output: @escaping ([Float]) -> [Float]) -> (verdict: Verdict, worstRelative: Double) {
        let base = output(parameters)
        let scaleSum = zip(base, weights).reduce(0.0) { $0 + abs(Double($1.0) * $1.1) }
        let absolute = 32 * Double(Float.ulpOfOne) * scaleSum / step
        var numeric: [Double] = []
        for k in parameters.indices {
            let r = try! GSL.derivative(at: Double(parameters[k]), step: step) { x in
                var p = parameters
                p[k] = Float(x)
                let y = output(p)
                var s = 0.0
                for i in y.indices { s += Double(y[i]) * weights[i] }
                return s
            }
            numeric.append(r.value)
        }
        var worst = 0.0, significant = 0
        for k in numeric.indices where abs(numeric[k]) > absolute * 10 {
            significant += 1
            worst = max(worst, abs(Double(analytic[k]) - numeric[k]) / abs(numeric[k]))
        }
        // One line per check, for docs/training.md's table of measured errors.
        print(String(format: "gradient check %@: %d components, %d above 10× the floor %.1e; worst relative error %.2e",
                     name, numeric.count, significant, absolute, worst))
        let v = compare(analytic, numeric, .mixed(absolute: absolute, relative: relative),
                        "\(name): gradient check, h = \(step), absolute floor \(absolute)")
        return (v, worst)
    }
}

/// The whole-model check: θ ↦ L(θ), the training loss, returned in Double (never rounded to
/// Float). Error model (docs/tolerances.md, "Whole-model gradient checks"):
///
/// - Noise: the computed loss is L̃ = L + η with |η| ≤ δL (`lossNoiseBound`, from the Float logits),
///   and θ_k ± h is rounded to Float, moving L by ≤ |∂L/∂θ_k|·u·(|θ_k| + h). GSL's 5-point rule
///   r₅ = [8(L̃(θ+h/2) − L̃(θ−h/2)) − (L̃(θ+h) − L̃(θ−h))]/(6h) carries ≤ 3·noise/h of it.
/// - GSL is told that noise: it estimates rounding as DBL_EPSILON·|f|, so f is handed over as
///   noise/DBL_EPSILON + L̃ (same derivative; the offset's own rounding is ≤ noise/2). Its abserr is
///   then trunc + round = |r₅ − r₃|/h + 6·noise/h, and its step optimisation (h_opt =
///   h·(round/2·trunc)^⅓, taken only when it lowers that estimate) balances the two honestly.
/// - Steps: GSL from each of `steps` (4e-2, 2e-2, 1e-2); the estimate of step i is its abserr plus
///   |D(hᵢ) − D(hᵢ₊₁)| (the change to the next, smaller step: catches a step outside the h²
///   regime, where |r₅ − r₃| can be small by accident); the smallest estimate wins.
/// - Tolerance of component k: that estimate + `analyticRelative`·|analytic_k| (the Float rounding
///   of the backward, 10⁻⁴ ≫ the measured naive-vs-optimized spread ≤ 2·10⁻⁴ of the tolerance).
/// - Significance: a component whose |numeric| ≥ 10× its tolerance has its relative error checked
///   to ≤ 10 %; at least `minimumSignificantFraction` (50 %) of all components must be, or the
///   check fails as untestable.
struct LossGradientCheck {
    /// GSL's start steps (largest first); its own step optimisation may shrink each, never enlarge.
    var steps: [Double] = [4e-2, 2e-2, 1e-2]
    /// Budget for the rounding of the analytic (Float) gradient, relative to |analytic|.
    var analyticRelative: Double = 1e-4
    /// Required fraction of components with |numeric| ≥ 10 × their tolerance.
    var minimumSignificantFraction: Double = 0.5

    struct Result {
        var verdict: Verdict
        var worstRelative: Double
        var worstErrorOverTolerance: Double
        var significantFraction: Double
        var numeric: [Double]
        var tolerance: [Double]
    }

    func run(parameters θ: [Float], analytic: [Float], lossNoise δL: Double, name: String,
             loss: @escaping ([Float]) -> Double) -> Result {
        let u = 0x1p-24
        var numeric: [Double] = [], tolerance: [Double] = []
        for k in θ.indices {
            let a = Double(analytic[k])
            // GSL at each step of the ladder; each told the true noise level through the offset.
            let results = steps.map { step in
                // Noise of one evaluation: the loss's rounding, plus f'·(Float(x) − x).
                let noise = δL + abs(a) * u * (abs(Double(θ[k])) + step)
                let offset = noise / Double.ulpOfOne
                return try! GSL.derivative(at: Double(θ[k]), step: step) { x in
                    var p = θ
                    p[k] = Float(x)
                    return offset + loss(p)
                }
            }
            // Error estimate of step i: GSL's abserr plus the change to the next, smaller step.
            var r: (value: Double, abserr: Double) = (0, .infinity)
            for i in 0..<(results.count - 1) {
                let estimate = results[i].abserr + abs(results[i].value - results[i + 1].value)
                if estimate < r.abserr { r = (results[i].value, estimate) }
            }
            numeric.append(r.value)
            tolerance.append(r.abserr + analyticRelative * abs(a))
        }
        var worst = 0.0, worstRatio = 0.0, worstIndex = 0, failures = 0, significant = 0
        for k in θ.indices {
            let e = abs(Double(analytic[k]) - numeric[k])
            if e > tolerance[k] || !e.isFinite { failures += 1 }
            if e / tolerance[k] > worstRatio { worstRatio = e / tolerance[k]; worstIndex = k }
            if abs(numeric[k]) >= 10 * tolerance[k] {
                significant += 1
                worst = max(worst, e / abs(numeric[k]))
            }
        }
        let fraction = Double(significant) / Double(θ.count)
        let sortedTolerance = tolerance.sorted()
        print(String(format: "gradient check %@: %d components, %d (%.0f%%) with |numeric| ≥ 10× tolerance (median tolerance %.1e); worst relative error %.2e; worst |Δ|/tolerance %.2f",
                     name, θ.count, significant, 100 * fraction, sortedTolerance[sortedTolerance.count / 2], worst, worstRatio))
        let context = "\(name): whole-model gradient check, δL = \(δL), GSL start steps \(steps)"
        var verdict = Verdict(passed: true, message: "\(context): all \(θ.count) components within tolerance")
        if failures > 0 {
            verdict = .fail("\(context): \(failures) of \(θ.count) components out of tolerance; worst k = \(worstIndex): analytic \(analytic[worstIndex]), numeric \(numeric[worstIndex]), tolerance \(tolerance[worstIndex])")
        } else if fraction < minimumSignificantFraction {
            verdict = .fail("\(context): only \(significant) of \(θ.count) components have |numeric| ≥ 10× tolerance (need \(minimumSignificantFraction))")
        }
        return Result(verdict: verdict, worstRelative: worst, worstErrorOverTolerance: worstRatio, significantFraction: fraction,
                      numeric: numeric, tolerance: tolerance)
    }
}

/// δL, the bound on the rounding of a loss accumulated in Double from Float logits z [rows, C]:
/// L is a mean over the N labelled rows r of a log-sum-exp loss (cross-entropy, smoothed or not,
/// or a CRF NLL), whose gradient rows satisfy Σ_c |∂L/∂z_rc| ≤ 2/N. A logit off by ≤ κu·|z_rc| and
/// a Float exp off by ≤ κu in each row's log-sum-exp give
///
///     δL = κ·u·(1 + (2/N)·Σ_r max_c |z_rc|),   κ = 2 (the logit's own rounding and the error it
///     inherits from its O(1) LayerNorm input), u = 2⁻²⁴.
///
/// The specs check its premise on every run: L on the training KernelPath and on the naive one (two
/// independent rounding sequences) differ by ≤ δL.
func lossNoiseBound(logits z: Matrix, labelledRows: [Int]) -> Double {
    let u = 0x1p-24, kappa = 2.0
    let n = Double(labelledRows.count)
    let s = labelledRows.reduce(0.0) { acc, r in acc + Double(z.row(r).map { abs($0) }.max()!) } * 2 / n
    return kappa * u * (s + 1)
}

/// G: fixed Gaussian weights for the projection loss.
func projectionWeights(_ count: Int, seed: UInt) -> [Double] {
    let rng = GSLRandom(seed: seed)
    return (0..<count).map { _ in rng.gaussian() }
}

extension Matrix {
    func withStorage(_ s: [Float]) -> Matrix { try! Matrix(rows: rows, cols: cols, storage: s) }
}

func matrixFromWeights(_ g: [Double], rows: Int, cols: Int) -> Matrix {
    try! Matrix(rows: rows, cols: cols, storage: g.map { Float($0) })
}
