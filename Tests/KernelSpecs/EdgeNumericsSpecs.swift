import DecoderSpec
import GSLOracle
import SpecSupport
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Numerics at the edges (docs/reliability.md): softmax, log-softmax and LayerNorm on inputs scaled by 10^k,
// k = −30…30, at ±1e30, ±Float.greatestFiniteMagnitude and subnormals, against a Double reference
// with GSL's exp/log/mean/variance. See docs/kernels.md "Edge numerics" and docs/tolerances.md.
//
// u = 2⁻²⁴ (Float unit roundoff), γ_n = n·u/(1 − n·u).

private let u = Double(Float.ulpOfOne) / 2
private func gamma(_ n: Int) -> Double { Double(n) * u / (1 - Double(n) * u) }
/// 2⁻¹²⁶: the optimized eˣ flushes results below this to 0 (and e^{x−μ} < 2⁻¹²⁶ ⇒ y < 2⁻¹²⁶).
private let flushFloor = Double(Float.leastNormalMagnitude)

/// The raw kernel (no validation): NaN in, NaN out — for the kernel-level conventions.
func rawKernelSoftmax(_ v: KernelPath, log: Bool = false) -> SoftmaxImplementation {
    { x, mask, rows, cols in
        var y = x
        y.withUnsafeMutableBufferPointer { py in
            if let mask {
                mask.withUnsafeBufferPointer { pm in
                    if log { Softmax.logRows(v, py.baseAddress!, rows: rows, cols: cols, mask: pm.baseAddress!) }
                    else { Softmax.rows(v, py.baseAddress!, rows: rows, cols: cols, mask: pm.baseAddress!) }
                }
            } else if log { Softmax.logRows(v, py.baseAddress!, rows: rows, cols: cols) }
            else { Softmax.rows(v, py.baseAddress!, rows: rows, cols: cols) }
        }
        return y
    }
}

// MARK: - Edge rows

/// One test row and what it exercises.
struct EdgeRow: Sendable {
    var label: String
    var values: [Float]
}

/// Rows at scale 10^k for one length n: random in [−1, 1]·10^k, all equal, one value 100× the
/// others, mixed signs with one dominant; values that overflow Float are clamped to ±FLT_MAX.
func edgeRows(length n: Int, exponent k: Int, seed: UInt) -> [EdgeRow] {
    let scale = pow(10.0, Double(k))
    func f(_ d: Double) -> Float {
        let big = Double(Float.greatestFiniteMagnitude)
        return Float(Swift.min(Swift.max(d, -big), big))
    }
    let rng = GSLRandom(seed: seed)
    let random = (0..<n).map { _ in f(rng.uniform(-1, 1) * scale) }
    var oneHuge = (0..<n).map { _ in f(rng.uniform(0, 1) * scale) }
    oneHuge[n / 2] = f(100 * scale)
    var dominantNegative = (0..<n).map { _ in f(-rng.uniform(0, 1) * scale) }
    dominantNegative[n - 1] = f(-1e-3 * scale)
    return [
        EdgeRow(label: "uniform[−1,1]·1e\(k)", values: random),
        EdgeRow(label: "all equal 1e\(k)", values: [Float](repeating: f(scale), count: n)),
        EdgeRow(label: "one 100× the rest, 1e\(k)", values: oneHuge),
        EdgeRow(label: "negative, one near 0, 1e\(k)", values: dominantNegative),
    ]
}

/// Hand-picked rows: ±1e30 logits, the Float extremes, subnormals.
func specialRows(length n: Int) -> [EdgeRow] {
    let big = Float.greatestFiniteMagnitude, tiny = Float.leastNonzeroMagnitude
    func alternating(_ a: Float, _ b: Float) -> [Float] { (0..<n).map { $0 % 2 == 0 ? a : b } }
    func withOne(_ fill: Float, _ at: Float) -> [Float] { var r = [Float](repeating: fill, count: n); r[n / 3] = at; return r }
    return [
        EdgeRow(label: "±1e30 alternating", values: alternating(1e30, -1e30)),
        EdgeRow(label: "one +1e30 among 0", values: withOne(0, 1e30)),
        EdgeRow(label: "one −1e30 among 0", values: withOne(0, -1e30)),
        EdgeRow(label: "±FLT_MAX alternating", values: alternating(big, -big)),
        EdgeRow(label: "all FLT_MAX", values: [Float](repeating: big, count: n)),
        EdgeRow(label: "all −FLT_MAX", values: [Float](repeating: -big, count: n)),
        EdgeRow(label: "one FLT_MAX among −FLT_MAX", values: withOne(-big, big)),
        EdgeRow(label: "subnormal 1e-40 and 0", values: alternating(1e-40, 0)),
        EdgeRow(label: "±leastNonzeroMagnitude", values: alternating(tiny, -tiny)),
        EdgeRow(label: "one 1e-40 among −1e-40", values: withOne(-1e-40, 1e-40)),
        EdgeRow(label: "1e30 and 1e30 + ulp", values: alternating(1e30, Float(1e30).nextUp)),
    ]
}

let edgeLengths = [1, 7, 8, 9, 1000]

// MARK: - Softmax

/// Reusable check: softmax (or log-softmax) of each row against the max-subtracted Double
/// reference with `gsl_sf_exp`/`gsl_sf_log`, per element, plus rows summing to 1 (softmax) and
/// no NaN anywhere. Derivation of the per-element bound for a row v of length n, μ = max v:
///   - v_j − μ is one Float subtraction: absolute error ≤ u·|v_j − μ|, so e^{v_j−μ} has relative
///     error ≤ u·|v_j − μ| (plus O(u²));
///   - eˣ: ≤ 3 ULPs = 6u relative (expf and VectorMath.exp, specced in KernelSpecs);
///   - Σ_l e_l: each term's relative error is ≤ u·t·e^{−t} ≤ u/e weighted (t = |v_l − μ|, and
///     Σ ≥ 1 because the max term is e⁰), so n terms give ≤ n·u/e, plus 6u for exp and (n − 1)·u
///     for the summation in any order: ε_Σ ≤ (1.37·n + 6)·u;
///   - the scaling by 1/Σ: 2 roundings.
///   softmax:     |y_j − ref_j| ≤ ref_j·(u·|v_j − μ| + 6u + ε_Σ + 2u) + 2⁻¹²⁶   (flush of e^{x} < 2⁻¹²⁶)
///   log-softmax: |y_j − ref_j| ≤ u·|v_j − μ| + ε_Σ + 2u·log n + u·|ref_j|        ((v − μ) − log Σ)
///   Σ_j y_j:     |Σ y − 1| ≤ γ_{n+1} + n·2⁻¹²⁶   (y_j = ê_j·fl(1/Σ̂) with Σ̂ the sum of the same
///                ê_j: the exp error cancels; only summation and the two roundings remain)
/// A reference beyond Float's range (log-softmax of −FLT_MAX next to +FLT_MAX is −6.8e38) must be
/// −∞: the correctly rounded Float of the true value.
func checkSoftmaxEdges(_ impl: SoftmaxImplementation, rows edgeRows: [EdgeRow], log: Bool) -> Verdict {
    for row in edgeRows {
        let n = row.values.count
        let y = impl(row.values, nil, 1, n)
        let v = row.values.map(Double.init)
        let mu = v.max()!
        let e = v.map { gslExp($0 - mu) }
        let sum = e.reduce(0, +)
        let logSum = try! GSL.log(sum)
        let epsSum = (1.37 * Double(n) + 6) * u
        for j in 0..<n {
            let got = Double(y[j])
            if got.isNaN { return .fail("\(row.label) (n=\(n)): NaN at \(j)") }
            let t = abs(v[j] - mu)
            if log {
                let ref = (v[j] - mu) - logSum
                if Float(ref).isInfinite {
                    if got != Double(Float(ref)) { return .fail("\(row.label) (n=\(n)) log at \(j): expected \(Float(ref)), observed \(got)") }
                    continue
                }
                let tol = u * t + epsSum + 2 * u * Swift.max(logSum, 0) + u * abs(ref)
                if !(abs(got - ref) <= tol) {
                    return .fail("\(row.label) (n=\(n)) log-softmax at \(j): expected \(ref), observed \(got), |error| \(abs(got - ref)) > \(tol)")
                }
            } else {
                let ref = e[j] / sum
                let tol = ref * (u * t + 8 * u + epsSum) + flushFloor
                if !(abs(got - ref) <= tol) {
                    return .fail("\(row.label) (n=\(n)) softmax at \(j): expected \(ref), observed \(got), |error| \(abs(got - ref)) > \(tol)")
                }
            }
        }
        if !log {
            let total = y.reduce(0.0) { $0 + Double($1) }
            let tol = gamma(n + 1) + Double(n) * flushFloor
            if !(abs(total - 1) <= tol) { return .fail("\(row.label) (n=\(n)): Σy = \(total), |Σy − 1| > \(tol)") }
        }
    }
    return .pass
}

/// Worst error of `impl` on `rows`, in units of the row's reference scale (for the report).
func worstSoftmaxError(_ impl: SoftmaxImplementation, rows: [EdgeRow], log: Bool) -> Double {
    var worst = 0.0
    for row in rows {
        let n = row.values.count
        let y = impl(row.values, nil, 1, n)
        let v = row.values.map(Double.init)
        let mu = v.max()!
        let e = v.map { gslExp($0 - mu) }
        let sum = e.reduce(0, +)
        for j in 0..<n {
            let ref = log ? (v[j] - mu) - (try! GSL.log(sum)) : e[j] / sum
            if Float(ref).isInfinite { continue }
            // softmax: absolute (y ∈ [0, 1]); log-softmax: relative to max(1, |ref|).
            worst = Swift.max(worst, abs(Double(y[j]) - ref) / (log ? Swift.max(1, abs(ref)) : 1))
        }
    }
    return worst
}

@Suite("Edge numerics: softmax and log-softmax at 1e-30…1e30, FLT_MAX and subnormals")
struct SoftmaxEdgeSpecs {
    static let implementations: [(String, KernelPath, Bool)] =
        KernelPath.allCases.flatMap { v in [("checked \(v)", v, true), ("raw \(v)", v, false)] }

    @Test("Scaled rows 10^k, k = −30…30, lengths 1, 7, 8, 9, 1000: softmax and log-softmax match GSL; Σy = 1; no NaN",
          arguments: KernelPath.allCases)
    func scaled(variant: KernelPath) {
        for n in edgeLengths {
            let rows = (-30...30).flatMap { edgeRows(length: n, exponent: $0, seed: UInt(1000 + n + $0)) }
            for log in [false, true] {
                for (name, impl) in [("checked", librarySoftmax(variant, log: log)), ("raw", rawKernelSoftmax(variant, log: log))] {
                    let v = checkSoftmaxEdges(impl, rows: rows, log: log)
                    #expect(v.passed, "\(name) \(variant) log=\(log): \(v.message)")
                }
            }
        }
    }

    @Test("±1e30, ±FLT_MAX, subnormals, near-ties at 1e30: softmax and log-softmax match GSL",
          arguments: KernelPath.allCases)
    func special(variant: KernelPath) {
        for n in edgeLengths where n > 1 {
            for log in [false, true] {
                for (name, impl) in [("checked", librarySoftmax(variant, log: log)), ("raw", rawKernelSoftmax(variant, log: log))] {
                    let v = checkSoftmaxEdges(impl, rows: specialRows(length: n), log: log)
                    #expect(v.passed, "\(name) \(variant) log=\(log): \(v.message)")
                }
            }
        }
    }

    @Test("The edge check can fail: no max subtraction, and log-softmax as v − (μ + log Σ), are caught")
    func checkCanFail() {
        // exp(x)/Σexp(x) in Float: e^{1e30} = +∞ → NaN.
        let unshifted: SoftmaxImplementation = { x, _, _, cols in
            let e = x.map { expf($0) }
            let s = e.reduce(0, +)
            return e.map { $0 / s }
        }
        #expect(!checkSoftmaxEdges(unshifted, rows: specialRows(length: 9), log: false).passed)
        // The pre-fix parenthesization: at μ = 1e30, μ + log Σ rounds to μ and −log n vanishes.
        let oldLog: SoftmaxImplementation = { x, _, _, cols in
            let mu = x.max()!
            let logZ = mu + logf(x.reduce(Float(0)) { $0 + expf($1 - mu) })
            return x.map { $0 - logZ }
        }
        let rows = [EdgeRow(label: "all equal 1e30", values: [Float](repeating: 1e30, count: 1000))]
        #expect(!checkSoftmaxEdges(oldLog, rows: rows, log: true).passed)
        #expect(checkSoftmaxEdges(oldLog, rows: [EdgeRow(label: "moderate", values: [0.5, -1, 2])], log: true).passed)
    }

    @Test("Checked API: NaN or +∞ in x or in the mask, and a finite x + M overflowing to +∞ → .nonFinite, never a NaN row",
          arguments: KernelPath.allCases)
    func checkedRejects(variant: KernelPath) throws {
        let big = Float.greatestFiniteMagnitude
        for log in [false, true] {
            func run(_ x: [Float], _ m: [Float]?) throws -> Matrix {
                let a = try Matrix(rows: 2, cols: 3, storage: x)
                let mk = try m.map { try Matrix(rows: 2, cols: 3, storage: $0) }
                return try log ? a.logSoftmaxRows(mask: mk, path: variant) : a.softmaxRows(mask: mk, path: variant)
            }
            for bad in [Float.nan, .infinity] {
                do {
                    _ = try run([0, 1, 2, 3, bad, 5], nil)
                    Issue.record("\(bad) in x did not throw")
                } catch let e as DecoderSpecError {
                    #expect(e.description == "non-finite value \(Double(bad)) in \(log ? "logSoftmaxRows" : "softmaxRows") input x [2, 3] at flat index 4")
                }
                #expect(throws: DecoderSpecError.self) { _ = try run([0, 1, 2, 3, 4, 5], [0, 0, bad, 0, 0, 0]) }
            }
            // FLT_MAX + FLT_MAX = +∞ in Float: the row's softmax is undefined there → typed error naming row 1.
            do {
                _ = try run([0, 1, 2, big, 0, 1], [0, 0, 0, big, 0, 0])
                Issue.record("x + M overflow did not throw (log=\(log))")
            } catch let e as DecoderSpecError {
                #expect(e.description.contains("row 1") && e.description.contains("overflows"), "\(e)")
            }
            // −∞ is a legal logit (weight 0) and a fully −∞ row is "fully masked".
            let y = try run([-.infinity, 0, 1, -.infinity, -.infinity, -.infinity], nil)
            #expect(!y.storage.contains { $0.isNaN })
            #expect(log ? y[1, 0] == -.infinity && y[1, 2] == -.infinity : y[1, 0] == 0 && y[1, 2] == 0 && y[0, 0] == 0)
        }
    }

    @Test("Report: worst errors per regime (softmax absolute, log-softmax relative to max(1, |ref|)) (printed, for docs/reliability.md)")
    func report() {
        for variant in KernelPath.allCases {
            for log in [false, true] {
                var line = "softmax \(variant) log=\(log):"
                for (name, ks) in [("1e-30…1e-10", -30 ... -10), ("1e-9…1e9", -9...9), ("1e10…1e30", 10...30)] {
                    let rows = ks.flatMap { k in edgeLengths.flatMap { edgeRows(length: $0, exponent: k, seed: UInt(1000 + $0 + k)) } }
                    line += String(format: " %@ %.3g;", name, worstSoftmaxError(rawKernelSoftmax(variant, log: log), rows: rows, log: log))
                }
                let special = edgeLengths.filter { $0 > 1 }.flatMap { specialRows(length: $0) }
                line += String(format: " special %.3g", worstSoftmaxError(rawKernelSoftmax(variant, log: log), rows: special, log: log))
                print(line)
            }
        }
    }
}

// MARK: - LayerNorm

/// Reusable check: LayerNorm of each row against γ·(x − μ)/sqrt(σ² + ε) + β with μ, σ² from
/// `gsl_stats_mean` / `gsl_stats_variance_with_fixed_mean` in Double. With x̂_j = (x_j − μ)/s,
/// s = sqrt(σ² + ε) (Double), the per-element bound is
///     |y_j − ref_j| ≤ |γ_j|·[γ_{d+12}·(1 + |x̂_j|) + γ_{d+1}·γ_d·mean|x|/s + 4·2⁻¹⁴⁹/s] + u·|ref_j| + 2⁻¹⁴⁹
/// Derivation for the optimized (corrected two-pass) kernel; the naive one sums in Double and
/// meets it with room to spare:
///   - μ̂ = fl(Σx/d) is off by e₀ ≤ γ_d·mean|x|; the correction δ = Σ fl(x − μ̂)/d leaves
///     e₁ ≤ γ_d·σ + γ_{d+1}·γ_d·mean|x| (the large term becomes second order in u);
///   - ((x_j − μ̂) − δ): 2 roundings of |x_j − μ| (+ e₁); σ̂² relative error ≤ γ_{d+3}, so
///     1/sqrt(σ̂² + ε) has ≤ (d/2 + 5)·u; × inv, × γ, + β: 3 more roundings;
///   - subnormal inputs: μ̂ and δ are rounded to the subnormal grid (≤ 2·2⁻¹⁴⁹ each), × inv;
///     the output's own rounding near 0 is ≤ 2⁻¹⁵⁰.
/// Independent of the scale of x: this is what "scale-invariant up to ε" means numerically.
func checkLayerNormEdges(_ impl: LayerNormImplementation, rows: [EdgeRow], epsilon: Float = 1e-5, seed: UInt) -> Verdict {
    let tinyest = Double(Float.leastNonzeroMagnitude)
    for row in rows {
        let d = row.values.count
        let rng = GSLRandom(seed: seed + UInt(d))
        let g = rng.floats(d, in: 0.5, 1.5), b = rng.floats(d, in: -0.5, 0.5)
        let y = impl(row.values, 1, d, g, b, epsilon)
        let x = row.values.map(Double.init)
        let mu = GSL.mean(x)
        let s = (GSL.populationVariance(x, mean: mu) + Double(epsilon)).squareRoot()
        let meanAbs = x.reduce(0) { $0 + abs($1) } / Double(d)
        for j in 0..<d {
            let xhat = (x[j] - mu) / s
            let ref = Double(g[j]) * xhat + Double(b[j])
            let got = Double(y[j])
            let tol = abs(Double(g[j])) * (gamma(d + 12) * (1 + abs(xhat)) + gamma(d + 1) * gamma(d) * meanAbs / s + 4 * tinyest / s)
                + u * abs(ref) + tinyest
            if !(abs(got - ref) <= tol) {
                return .fail("\(row.label) (d=\(d), ε=\(epsilon)) at \(j): expected \(ref), observed \(got), |error| \(abs(got - ref)) > \(tol)")
            }
        }
    }
    return .pass
}

/// Rows for LayerNorm at 10^k: random about 0, random about an offset 1000× the spread (|μ| ≫ σ),
/// constant rows (σ = 0: y = β).
func layerNormRows(width d: Int, exponent k: Int, seed: UInt) -> [EdgeRow] {
    let scale = pow(10.0, Double(k))
    let rng = GSLRandom(seed: seed)
    func f(_ v: Double) -> Float { Float(Swift.min(Swift.max(v, -3.4e38), 3.4e38)) }
    return [
        EdgeRow(label: "uniform[−1,1]·1e\(k)", values: (0..<d).map { _ in f(rng.uniform(-1, 1) * scale) }),
        EdgeRow(label: "1e\(k)·(1000 + uniform[−1,1])", values: (0..<d).map { _ in f((1000 + rng.uniform(-1, 1)) * scale / 1000) }),
        EdgeRow(label: "constant 1e\(k)", values: [Float](repeating: f(scale), count: d)),
    ]
}

let layerNormWidths = [1, 7, 16, 33, 768]

/// The textbook Float formula (the pre-fix kernel): overflows in Σ(x − μ)² once |x − μ| ≳ 1.8e19.
func floatTextbookLayerNorm(_ x: [Float], _ rows: Int, _ d: Int, _ gamma: [Float], _ beta: [Float], _ eps: Float) -> [Float] {
    var y = x
    for r in 0..<rows {
        let row = x[(r * d)..<((r + 1) * d)]
        let mean = row.reduce(Float(0), +) / Float(d)
        let variance = row.reduce(Float(0)) { $0 + ($1 - mean) * ($1 - mean) } / Float(d)
        let inv = 1 / (variance + eps).squareRoot()
        for j in 0..<d { y[r * d + j] = gamma[j] * ((x[r * d + j] - mean) * inv) + beta[j] }
    }
    return y
}

@Suite("Edge numerics: LayerNorm at 1e-30…1e30, FLT_MAX and subnormals")
struct LayerNormEdgeSpecs {
    @Test("Scaled rows 10^k, k = −30…30 (and ±FLT_MAX/2): every variant matches GSL in Double; no NaN",
          arguments: KernelPath.allCases)
    func scaled(variant: KernelPath) {
        for d in layerNormWidths {
            var rows = (-30...30).flatMap { layerNormRows(width: d, exponent: $0, seed: UInt(500 + d + $0)) }
            let big = Float.greatestFiniteMagnitude / 2
            rows.append(EdgeRow(label: "±FLT_MAX/2", values: (0..<d).map { $0 % 2 == 0 ? big : -big }))
            rows.append(EdgeRow(label: "FLT_MAX and 0", values: (0..<d).map { $0 % 3 == 0 ? Float.greatestFiniteMagnitude : 0 }))
            rows.append(EdgeRow(label: "subnormals", values: (0..<d).map { Float($0 % 5) * 1e-41 }))
            rows.append(EdgeRow(label: "±leastNonzeroMagnitude", values: (0..<d).map { $0 % 2 == 0 ? .leastNonzeroMagnitude : -.leastNonzeroMagnitude }))
            let v = checkLayerNormEdges(libraryLayerNorm(variant), rows: rows, seed: UInt(d))
            #expect(v.passed, "\(variant): \(v.message)")
        }
    }

    @Test("ε-dominated regime (σ² ≤ 1e-20 ≪ ε = 1e-5): y = γ·(x − μ)/sqrt(ε) + β within σ²/(2ε) relative + the bound",
          arguments: KernelPath.allCases)
    func epsilonDominated(variant: KernelPath) {
        // Closed form: 1/sqrt(σ² + ε) = (1/sqrt ε)·(1 − σ²/(2ε) + …), so replacing it by 1/sqrt ε
        // changes γ·x̂ by ≤ σ²/(2ε)·|γ·x̂| ≤ 5e-16 relative here — far below the Float bound.
        for d in layerNormWidths {
            for k in -30 ... -10 {
                let x = GSLRandom(seed: UInt(900 + k + d)).floats(d, in: -1, 1).map { $0 * Float(pow(10.0, Double(k))) }
                let g = [Float](repeating: 1.25, count: d), b = [Float](repeating: 0.5, count: d)
                let y = libraryLayerNorm(variant)(x, 1, d, g, b, 1e-5)
                let xd = x.map(Double.init), mu = GSL.mean(xd), s2 = GSL.populationVariance(xd, mean: mu)
                let eps = Double(Float(1e-5)), rootEps = eps.squareRoot()
                let closed = xd.map { 1.25 * ($0 - mu) / rootEps + 0.5 }
                // The edge bound (with s = sqrt ε; the γ² term is negligible: mean|x| ≤ 1e-10),
                // plus the closed form's own truncation σ²/(2ε)·|γ·x̂| ≤ σ²/(2ε)·1.25·√d.
                let maxHat = xd.map { abs($0 - mu) / rootEps }.max()!
                let tol = 1.25 * (gamma(d + 12) * (1 + maxHat) + 4 * Double(Float.leastNonzeroMagnitude) / rootEps)
                    + u * 1.5 + Double(Float.leastNonzeroMagnitude) + s2 / (2 * eps) * 1.25 * maxHat
                let v = compare(y, closed, .absolute(tol), "\(variant) d=\(d) scale 1e\(k)")
                #expect(v.passed, "\(v.message)")
            }
        }
    }

    @Test("The edge check can fail: the textbook Float formula gives NaN/garbage at 1e20 and FLT_MAX")
    func checkCanFail() {
        let rows = layerNormRows(width: 33, exponent: 20, seed: 1)
        #expect(!checkLayerNormEdges(floatTextbookLayerNorm, rows: rows, seed: 1).passed)
        #expect(checkLayerNormEdges(floatTextbookLayerNorm, rows: [layerNormRows(width: 33, exponent: 0, seed: 1)[0]], seed: 1).passed)
    }

    @Test("Checked API: NaN/±∞ in x, γ or β → .nonFinite naming the argument")
    func checkedRejects() throws {
        let ones = [Float](repeating: 1, count: 3), zeros = [Float](repeating: 0, count: 3)
        for bad in [Float.nan, .infinity, -.infinity] {
            let x = try Matrix(rows: 2, cols: 3, storage: [0, 1, 2, 3, bad, 5])
            do {
                _ = try x.layerNorm(gamma: ones, beta: zeros)
                Issue.record("\(bad) in x did not throw")
            } catch let e as DecoderSpecError {
                #expect(e.description == "non-finite value \(Double(bad)) in layerNorm input x [2, 3] at flat index 4")
            }
            let ok = try Matrix(rows: 1, cols: 3, storage: [0, 1, 2])
            #expect(throws: DecoderSpecError.self) { _ = try ok.layerNorm(gamma: [1, bad, 1], beta: zeros) }
            #expect(throws: DecoderSpecError.self) { _ = try ok.layerNorm(gamma: ones, beta: [bad, 0, 0]) }
        }
    }

    @Test("Report: worst error / bound per regime (printed, for docs/reliability.md)")
    func report() {
        let implementations: [(String, LayerNormImplementation)] = KernelPath.allCases.map { ("\($0)", libraryLayerNorm($0)) }
            + [("textbook Float (pre-fix formula)", floatTextbookLayerNorm)]
        for (variant, impl) in implementations {
            var line = "layernorm \(variant):"
            for (name, ks) in [("1e-30…1e-10", -30 ... -10), ("1e-9…1e9", -9...9), ("1e10…1e30", 10...30)] {
                var worst = 0.0, worstOffset = 0.0
                for d in layerNormWidths {
                    for k in ks {
                        for (ri, row) in layerNormRows(width: d, exponent: k, seed: UInt(500 + d + k)).enumerated() {
                            let g = [Float](repeating: 1, count: d), b = [Float](repeating: 0, count: d)
                            let y = impl(row.values, 1, d, g, b, 1e-5)
                            let x = row.values.map(Double.init), mu = GSL.mean(x)
                            let sd = (GSL.populationVariance(x, mean: mu) + Double(Float(1e-5))).squareRoot()
                            for j in 0..<d {
                                let err = abs(Double(y[j]) - (x[j] - mu) / sd)
                                if ri == 1 { worstOffset = Swift.max(worstOffset, err.isNaN ? .infinity : err) }
                                else { worst = Swift.max(worst, err.isNaN ? .infinity : err) }
                            }
                        }
                    }
                }
                line += String(format: " %@ max|err| %.3g (offset rows |μ| ≈ 1000σ: %.3g);", name, worst, worstOffset)
            }
            print(line)
        }
    }
}
