import DecoderSpec
import GSLOracle
import SpecSupport
import Testing

// LayerNorm, activations and the vector exp (docs/kernels.md).

/// A LayerNorm under test: (x, rows, d, γ, β, ε) → y, row-major.
typealias LayerNormImplementation = (_ x: [Float], _ rows: Int, _ d: Int, _ gamma: [Float], _ beta: [Float], _ epsilon: Float) -> [Float]

func libraryLayerNorm(_ v: KernelPath) -> LayerNormImplementation {
    { x, rows, d, gamma, beta, eps in
        try! Matrix(rows: rows, cols: d, storage: x).layerNorm(gamma: gamma, beta: beta, epsilon: eps, path: v).storage
    }
}

/// Reusable check: `impl` equals γ·(x − μ)/sqrt(σ² + ε) + β with μ = `gsl_stats_mean` and the
/// POPULATION variance (`gsl_stats_variance_with_fixed_mean`, divide by d), per element within
///     (d + 16)·u·(|γ_j|·(max_row|x| + |μ|)/sqrt(σ² + ε) + |β_j|)          u = 2⁻²⁴
/// (the mean's sum has relative error ≤ d·u of Σ|x|, the variance's likewise, the rest is a handful
/// of roundings). Catches the unbiased (n − 1) variance: that scales y − β by sqrt((d−1)/d), a
/// relative change of ≈ 1/(2d) ≫ d·u for every d below ~2900.
func checkLayerNormAgainstGSL(_ impl: LayerNormImplementation, rows: Int, d: Int, epsilon: Float = 1e-5,
                              offset: Float = 1, seed: UInt) -> Verdict {
    let rng = GSLRandom(seed: seed)
    let x = rng.floats(rows * d, in: -3 + offset, 3 + offset)
    let gamma = rng.floats(d, in: 0.5, 1.5), beta = rng.floats(d, in: -0.5, 0.5)
    let y = impl(x, rows, d, gamma, beta, epsilon)
    guard y.count == rows * d else { return .fail("output length \(y.count), expected \(rows * d)") }
    let u = Double(Float.ulpOfOne) / 2
    for r in 0..<rows {
        let row = Array(x[(r * d)..<((r + 1) * d)]).doubles
        let mu = GSL.mean(row)
        let variance = GSL.populationVariance(row, mean: mu)
        let sd = (variance + Double(epsilon)).squareRoot()
        let maxAbs = row.map(abs).max()!
        for j in 0..<d {
            let ref = Double(gamma[j]) * (row[j] - mu) / sd + Double(beta[j])
            let tol = Double(d + 16) * u * (abs(Double(gamma[j])) * (maxAbs + abs(mu)) / sd + abs(Double(beta[j])))
            let got = Double(y[r * d + j])
            if !(abs(got - ref) <= tol) {
                return .fail("row \(r), col \(j): expected \(ref), observed \(got), |error| \(abs(got - ref)) > \(tol) (d=\(d), ε=\(epsilon), seed=\(seed))")
            }
        }
    }
    return .pass
}

/// exact GELU reference in Double: x/2·(1 + erf(x/√2)) with `gsl_sf_erf`.
func geluReference(_ x: Double) -> Double { 0.5 * x * (1 + (try! GSL.erf(x / 2.0.squareRoot()))) }
/// tanh-GELU reference in Double with GSL's tanh (which saturates to ±1 for |u| ≥ 20).
func geluTanhReference(_ x: Double) -> Double {
    let u = (2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)
    return 0.5 * x * (1 + GSL.tanh(u))
}

/// Reusable check for a GELU-like activation against a Double reference, per element within
///     |x|/2 · 3·10⁻⁷ + 4·ulp(y)
/// The factor 1 ± erf (or 1 ± tanh) is computed to an absolute 1.5·10⁻⁷ (A&S 7.1.26 in the
/// optimized path; erff/tanhf's ≤ 1 ULP of a value near 1 plus the rounding of the sum in the
/// naive one), doubled for margin; ×|x|/2 carries it to y; 4 ULPs cover the final products.
/// An absolute bound scaled by |x| is the honest one: 1 + erf(x/√2) cancels for x ≪ 0 in the naive
/// formula, so neither a pure relative nor a pure ULP bound holds there.
func checkActivationAgainstReference(_ impl: ([Float]) -> [Float], _ reference: (Double) -> Double,
                                     name: String) -> Verdict {
    var xs: [Float] = [0, -0.0, 1e-30, -1e-30, 1e-5, -1e-5, 0.5, -0.5, 1, -1, 3, -3, 5.5, -5.5, 9.9, -9.9, 30, -30]
    let rng = GSLRandom(seed: 77)
    xs += rng.floats(997, in: -10, 10)
    let y = impl(xs)
    for (i, x) in xs.enumerated() {
        let ref = reference(Double(x))
        let tol = abs(Double(x)) / 2 * 3e-7 + 4 * Double(Float(ref).ulp)
        if !(abs(Double(y[i]) - ref) <= tol) {
            return .fail("\(name)(\(x)) at index \(i): expected \(ref), observed \(y[i]), |error| \(abs(Double(y[i]) - ref)) > \(tol)")
        }
    }
    return .pass
}

func libraryActivation(_ f: Activation.Function, _ v: KernelPath) -> ([Float]) -> [Float] {
    { xs in try! Matrix(rows: 1, cols: xs.count, storage: xs).activated(f, path: v).storage }
}

@Suite("LayerNorm against gsl_stats_mean / population variance")
struct LayerNormSpecs {
    @Test("Every variant matches the GSL reference over widths around the SIMD width",
          arguments: KernelPath.allCases)
    func againstGSL(variant: KernelPath) {
        for (i, d) in [1, 2, 7, 15, 16, 17, 31, 32, 33, 64, 100, 768].enumerated() {
            let v = checkLayerNormAgainstGSL(libraryLayerNorm(variant), rows: 3, d: d, seed: UInt(20 + i))
            #expect(v.passed, "\(variant): \(v.message)")
            // A large offset (mean ≫ spread) is where a one-pass E[x²] − μ² would cancel.
            let off = checkLayerNormAgainstGSL(libraryLayerNorm(variant), rows: 2, d: d, offset: 100, seed: UInt(40 + i))
            #expect(off.passed, "\(variant) offset 100: \(off.message)")
        }
    }

    @Test("With γ = 1, β = 0 each output row has mean 0 and population variance σ²/(σ² + ε)",
          arguments: KernelPath.allCases)
    func normalizes(variant: KernelPath) {
        let d = 50, rows = 4
        let x = GSLRandom(seed: 3).floats(rows * d, in: -2, 6)
        let y = libraryLayerNorm(variant)(x, rows, d, [Float](repeating: 1, count: d), [Float](repeating: 0, count: d), 1e-3)
        for r in 0..<rows {
            let xr = Array(x[(r * d)..<((r + 1) * d)]).doubles, yr = Array(y[(r * d)..<((r + 1) * d)]).doubles
            let m = GSL.mean(yr)
            let s2 = GSL.populationVariance(xr, mean: GSL.mean(xr))
            // Outputs are O(1) with (d + 16)·u error each: mean within that, variance within 2×.
            #expect(abs(m) <= 66 * 6e-8 * 3, "row \(r) mean \(m)")
            #expect(abs(GSL.populationVariance(yr, mean: m) - s2 / (s2 + 1e-3)) <= 2 * 66 * 6e-8 * 3)
        }
    }

    @Test("The LayerNorm check can fail: the unbiased (n − 1) variance and a missing ε are caught")
    func checkCanFail() {
        let unbiased: LayerNormImplementation = { x, rows, d, gamma, beta, eps in
            var y = x
            for r in 0..<rows {
                let row = Array(x[(r * d)..<((r + 1) * d)]).doubles
                let mu = GSL.mean(row), sd = (GSL.sampleVariance(row) + Double(eps)).squareRoot()
                for j in 0..<d { y[r * d + j] = Float(Double(gamma[j]) * (row[j] - mu) / sd + Double(beta[j])) }
            }
            return y
        }
        #expect(!checkLayerNormAgainstGSL(unbiased, rows: 2, d: 8, seed: 1).passed)
        #expect(!checkLayerNormAgainstGSL(unbiased, rows: 2, d: 768, seed: 2).passed)
        let noEpsilon: LayerNormImplementation = { x, rows, d, gamma, beta, _ in
            libraryLayerNorm(.naive)(x, rows, d, gamma, beta, .leastNormalMagnitude)
        }
        // ε = 0.5 is visible: sqrt(σ² + ε) vs sqrt(σ²) with σ² ≈ 3.
        #expect(!checkLayerNormAgainstGSL(noEpsilon, rows: 2, d: 16, epsilon: 0.5, seed: 3).passed)
    }

    @Test("Bad ε (NaN, ±∞, 0, negative), γ/β of the wrong length, an empty axis → typed errors")
    func errors() {
        let x = Inputs.matrix(rows: 2, cols: 4, seed: 1)
        let ones = [Float](repeating: 1, count: 4), zeros = [Float](repeating: 0, count: 4)
        for eps in [Float.nan, .infinity, -.infinity] {
            #expect(throws: DecoderSpecError.self) {
                try x.layerNorm(gamma: ones, beta: zeros, epsilon: eps)
            }
        }
        do { _ = try x.layerNorm(gamma: ones, beta: zeros, epsilon: .infinity); Issue.record("no error") }
        catch let e as DecoderSpecError { #expect(e == .nonFinite(what: "LayerNorm ε", index: 0, value: .infinity)) }
        catch { Issue.record("\(error)") }
        for eps: Float in [0, -1e-5] {
            #expect(throws: DecoderSpecError.self) { try x.layerNorm(gamma: ones, beta: zeros, epsilon: eps) }
        }
        do { _ = try x.layerNorm(gamma: [1, 1, 1], beta: zeros); Issue.record("no error") }
        catch let e as DecoderSpecError { #expect(e.description.contains("[4]") && e.description.contains("[3]"), "\(e)") }
        catch { Issue.record("\(error)") }
        #expect(throws: DecoderSpecError.self) { try x.layerNorm(gamma: ones, beta: [0]) }
        #expect(throws: DecoderSpecError.self) { try Matrix(rows: 3, cols: 0).layerNorm(gamma: [], beta: []) }
    }
}

@Suite("Activations: ReLU, exact GELU against gsl_sf_erf, tanh GELU against GSL's tanh")
struct ActivationSpecs {
    @Test("Exact GELU, every variant, within |x|/2·3e-7 + 4 ULPs of x/2·(1 + erf(x/√2)) (GSL)",
          arguments: KernelPath.allCases)
    func gelu(variant: KernelPath) {
        let v = checkActivationAgainstReference(libraryActivation(.gelu, variant), geluReference, name: "gelu")
        #expect(v.passed, "\(variant): \(v.message)")
    }

    @Test("tanh GELU, every variant, within |x|/2·3e-7 + 4 ULPs of the GSL-tanh reference",
          arguments: KernelPath.allCases)
    func geluTanh(variant: KernelPath) {
        let v = checkActivationAgainstReference(libraryActivation(.geluTanh, variant), geluTanhReference, name: "geluTanh")
        #expect(v.passed, "\(variant): \(v.message)")
    }

    @Test("The activation check can fail: tanh-GELU is not exact GELU, and a sigmoid-GELU is neither")
    func checkCanFail() {
        #expect(!checkActivationAgainstReference(libraryActivation(.geluTanh, .naive), geluReference, name: "tanh as exact").passed)
        let sigmoidGELU: ([Float]) -> [Float] = { $0.map { x in x / (1 + Float(try! GSL.exp(-1.702 * Double(x)))) } }
        #expect(!checkActivationAgainstReference(sigmoidGELU, geluReference, name: "x·σ(1.702x)").passed)
    }

    @Test("ReLU is max(0, x) bitwise for every variant; NaN stays NaN, −0 stays −0; all lengths around 16",
          arguments: KernelPath.allCases)
    func relu(variant: KernelPath) {
        for n in [1, 15, 16, 17, 33, 100] {
            var xs = GSLRandom(seed: UInt(n)).floats(n, in: -2, 2)
            xs[0] = .nan
            if n > 2 { xs[1] = -0.0; xs[2] = -.infinity }
            let y = libraryActivation(.relu, variant)(xs)
            for i in 0..<n {
                let x = xs[i]
                let expected: Float = x.isNaN ? .nan : (x < 0 ? 0 : x)
                #expect(y[i].bitPattern == expected.bitPattern || (x.isNaN && y[i].isNaN), "relu(\(x)) = \(y[i])")
            }
        }
    }

    @Test("Optimized GELU equals naive within the two bounds, over lengths not divisible by 16")
    func optimizedVsNaive() {
        for f in [Activation.Function.gelu, .geluTanh] {
            for n in [1, 3, 16, 17, 31, 257] {
                let xs = GSLRandom(seed: UInt(n + 1000)).floats(n, in: -8, 8)
                let a = libraryActivation(f, .naive)(xs), b = libraryActivation(f, .optimized)(xs)
                for i in 0..<n {
                    let tol = 2 * (abs(Double(xs[i])) / 2 * 3e-7 + 4 * Double(max(a[i].magnitude, b[i].magnitude).ulp))
                    #expect(abs(Double(a[i]) - Double(b[i])) <= tol, "\(f)(\(xs[i])): naive \(a[i]) optimized \(b[i])")
                }
            }
        }
    }
}

@Suite("Vector exp (the optimized kernels' eˣ) against gsl_sf_exp")
struct VectorExpSpecs {
    @Test("≤ 3 Float ULPs on [−87, 88]; e^{−∞} = 0, e^{0} = 1, NaN → NaN, x < −87.34 → 0")
    func accuracy() {
        var xs = stride(from: -87.0, through: 88.0, by: 0.0137).map { Float($0) }
        xs += GSLRandom(seed: 4).floats(5000, in: -1, 1) + [0, -0.0, 1e-8, -1e-8, 0.34657, -0.34657]
        let y = VectorMath.exp(xs)
        let ref = xs.map { try! GSL.exp(Double($0)) }
        let worst = maxULPError(y, ref)
        #expect(compare(y, ref, .ulps(3), "VectorMath.exp").passed, "worst \(worst.ulps) ULPs at x = \(xs[worst.index])")
        let special = VectorMath.exp([-.infinity, 0, .nan, -88, -1000, -1e30])
        #expect(special[0] == 0 && special[1] == 1 && special[2].isNaN && special[3] == 0 && special[4] == 0 && special[5] == 0)
    }
}

@Suite("Checked GEMM entry points: bad sizes and buffers are typed errors")
struct GEMMErrorSpecs {
    @Test("Negative sizes and wrong buffer lengths throw DecoderSpecError naming the shape")
    func errors() {
        var c = [Float](repeating: 0, count: 6)
        #expect(throws: DecoderSpecError.invalidArgument(what: "GEMM size m", reason: "must be non-negative, got -2")) {
            try GEMM.sgemmChecked(.optimized, m: -2, n: 3, k: 1, a: [], b: [1, 2, 3], c: &c)
        }
        #expect(throws: DecoderSpecError.self) { try GEMM.sgemmChecked(.naive, m: 2, n: 3, k: -1, a: [], b: [], c: &c) }
        do {
            try GEMM.sgemmChecked(.parallel, transA: true, m: 2, n: 3, k: 4, a: [Float](repeating: 1, count: 7),
                                  b: [Float](repeating: 1, count: 12), c: &c)
            Issue.record("no error")
        } catch let e as DecoderSpecError {
            #expect(e.description.contains("[4, 2]") && e.description.contains("7 elements"), "\(e)")
        } catch { Issue.record("\(error)") }
        var cd = [Double](repeating: 0, count: 5)
        #expect(throws: DecoderSpecError.self) {
            try GEMM.dgemmChecked(.optimized, m: 2, n: 3, k: 1, a: [1, 2], b: [1, 2, 3], c: &cd)
        }
    }
}
