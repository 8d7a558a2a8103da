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
