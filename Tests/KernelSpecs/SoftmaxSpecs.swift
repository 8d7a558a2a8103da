import DecoderSpec
import GSLOracle
import SpecSupport
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Softmax specs (docs/kernels.md). Reference: Double, with `gsl_sf_exp`, on the same Float inputs.
//
// Tolerance, per element, relative (u = 2⁻²⁴, the Float unit roundoff):
//   (R + n + 8) · u   where R = max |v − μ| over the row and n = cols:
//   - v − μ is one rounded Float subtraction: absolute error ≤ u·R, i.e. relative error ≤ u·R in e^{v−μ};
//   - eˣ: ≤ 3 ULPs = 6u (libm's expf and VectorMath.exp alike, specced below);
//   - Σ of n positive terms in any order: relative error ≤ (n − 1)·u;
//   - the final scaling 1/Σ and product: 2u.
// Absolute floor of 1e-30 for entries that underflow (e^{v−μ} < 2⁻¹²⁶ is flushed by the optimized exp).

/// A row softmax under test: (x, mask?, rows, cols) → y, row-major.
typealias SoftmaxImplementation = (_ x: [Float], _ mask: [Float]?, _ rows: Int, _ cols: Int) -> [Float]

func librarySoftmax(_ v: KernelPath, log: Bool = false) -> SoftmaxImplementation {
    { x, mask, rows, cols in
        let m = try! Matrix(rows: rows, cols: cols, storage: x)
        let mk = try! mask.map { try Matrix(rows: rows, cols: cols, storage: $0) }
        return try! (log ? m.logSoftmaxRows(mask: mk, path: v) : m.softmaxRows(mask: mk, path: v)).storage
    }
}

/// e^d in Double by GSL; below −700 GSL reports underflow, and the true value (< 1e−304) is 0 in Float.
func gslExp(_ d: Double) -> Double { d < -700 ? 0 : (try! GSL.exp(d)) }

/// The Double reference softmax (and log-softmax) of x + mask along rows, with GSL's exp and log.
func referenceSoftmax(_ x: [Float], _ mask: [Float]?, rows: Int, cols: Int, log: Bool = false) -> [Double] {
    var out = [Double](repeating: 0, count: rows * cols)
    for r in 0..<rows {
        let v = (0..<cols).map { Double(x[r * cols + $0]) + Double(mask?[r * cols + $0] ?? 0) }
        let mu = v.max() ?? -.infinity
        if v.contains { $0.isNaN } { for j in 0..<cols { out[r * cols + j] = .nan }; continue }
        if mu == -.infinity { for j in 0..<cols { out[r * cols + j] = log ? -.infinity : 0 }; continue }
        let e = v.map { gslExp($0 - mu) }
        let sum = e.reduce(0, +)
        let logZ = mu + (try! GSL.log(sum))
        for j in 0..<cols { out[r * cols + j] = log ? v[j] - logZ : e[j] / sum }
    }
    return out
}

/// Reusable check: `impl` equals the GSL reference within (R + n + 8)·u relative per element
/// (see the header). Catches a wrong axis (columns normalized), a missing max subtraction on
/// large logits, a wrong exp.
func checkSoftmaxAgainstGSL(_ impl: SoftmaxImplementation, rows: Int, cols: Int, range: Float = 8,
                            seed: UInt) -> Verdict {
    let x = GSLRandom(seed: seed).floats(rows * cols, in: -range, range)
    let got = impl(x, nil, rows, cols)
    let ref = referenceSoftmax(x, nil, rows: rows, cols: cols)
    let u = Double(Float.ulpOfOne) / 2
    let tol = (2 * Double(range) + Double(cols) + 8) * u
    return compare(got, ref, .mixed(absolute: 1e-30, relative: tol), "softmax \(rows)×\(cols) seed=\(seed)")
}

/// Reusable check: every row of `impl`'s output sums to 1 within (n + 2R + 10)·u (the per-element
/// relative bounds summed, plus the Double sum of the outputs).
func checkRowsSumToOne(_ impl: SoftmaxImplementation, rows: Int, cols: Int, seed: UInt) -> Verdict {
    let x = GSLRandom(seed: seed).floats(rows * cols, in: -8, 8)
    let y = impl(x, nil, rows, cols)
    let u = Double(Float.ulpOfOne) / 2
    let sums = (0..<rows).map { r in (0..<cols).reduce(0.0) { $0 + Double(y[r * cols + $1]) } }
    return compare(sums, [Double](repeating: 1, count: rows), .absolute((Double(cols) + 16 + 10) * u),
                   "row sums, \(rows)×\(cols) seed=\(seed)")
}

/// Reusable check: softmax(x + c) = softmax(x) BITWISE, for x on the grid 2⁻¹⁰·ℤ ∩ [−8, 8] and
/// c = 64: every x + c and every difference (x + c) − (μ + c) is exact in Float, so a correct
/// max-subtracting implementation sees identical exponents. With c = 1000, an implementation that
/// does not subtract the max overflows eˣ.
func checkShiftInvariance(_ impl: SoftmaxImplementation, rows: Int, cols: Int, shift: Float, seed: UInt) -> Verdict {
    let rng = GSLRandom(seed: seed)
    let x = (0..<(rows * cols)).map { _ in Float(rng.int(below: 16 * 1024 + 1) - 8 * 1024) / 1024 }
    let a = impl(x, nil, rows, cols), b = impl(x.map { $0 + shift }, nil, rows, cols)
    return compare(b, a.map(Double.init), .exact, "softmax(x + \(shift)) vs softmax(x), \(rows)×\(cols) seed=\(seed)")
}

@Suite("Softmax and log-softmax: stable, masked, against gsl_sf_exp")
struct SoftmaxSpecs {
    /// Widths around the SIMD width (16) and the benchmark's 1024.
    static let widths = [1, 2, 7, 15, 16, 17, 33, 64, 100, 1024]

    @Test("Every variant matches the GSL reference within (R + n + 8)·u", arguments: KernelPath.allCases)
    func againstGSL(variant: KernelPath) {
        for (i, cols) in Self.widths.enumerated() {
            let v = checkSoftmaxAgainstGSL(librarySoftmax(variant), rows: 5, cols: cols, seed: UInt(10 + i))
            #expect(v.passed, "\(variant): \(v.message)")
            let wide = checkSoftmaxAgainstGSL(librarySoftmax(variant), rows: 3, cols: cols, range: 40, seed: UInt(30 + i))
            #expect(wide.passed, "\(variant) range ±40: \(wide.message)")
        }
    }

    @Test("Rows sum to 1; shift invariance holds bitwise (c = 64) and survives c = 1000",
          arguments: KernelPath.allCases)
    func properties(variant: KernelPath) {
        for (i, cols) in Self.widths.enumerated() {
            let s = checkRowsSumToOne(librarySoftmax(variant), rows: 4, cols: cols, seed: UInt(50 + i))
            #expect(s.passed, "\(variant): \(s.message)")
            let inv = checkShiftInvariance(librarySoftmax(variant), rows: 3, cols: cols, shift: 64, seed: UInt(70 + i))
            #expect(inv.passed, "\(variant): \(inv.message)")
            let big = checkShiftInvariance(librarySoftmax(variant), rows: 2, cols: cols, shift: 1000, seed: UInt(90 + i))
            #expect(big.passed, "\(variant): \(big.message)")
        }
    }

    @Test("Logits of ±1e30 and −∞ masks: exact zeros where masked, the GSL reference elsewhere",
          arguments: KernelPath.allCases)
    func extremes(variant: KernelPath) throws {
        let impl = librarySoftmax(variant)
        // ±1e30: the 1e30 entry takes all the mass; with two of them, half each.
        let cols = 19
        var x = GSLRandom(seed: 5).floats(2 * cols)
        x[3] = 1e30; x[7] = -1e30; x[cols + 2] = 1e30; x[cols + 18] = 1e30
        let y = impl(x, nil, 2, cols)
        var expected = [Double](repeating: 0, count: 2 * cols)
        expected[3] = 1; expected[cols + 2] = 0.5; expected[cols + 18] = 0.5
        #expect(compare(y, expected, .exact, "±1e30 logits").passed, "\(compare(y, expected, .exact))")
        // Causal −∞ mask on 6 × 21: masked entries exactly 0, the rest equal to the reference.
        let (r, c) = (6, 21)
        let xs = GSLRandom(seed: 6).floats(r * c, in: -4, 4)
        let mask = (0..<(r * c)).map { i in (i % c) > (i / c) + 10 ? -Float.infinity : 0 }
        let got = impl(xs, mask, r, c)
        let ref = referenceSoftmax(xs, mask, rows: r, cols: c)
        let u = Double(Float.ulpOfOne) / 2
        let v = compare(got, ref, .mixed(absolute: 1e-30, relative: (8 + Double(c) + 8) * u), "causal mask \(r)×\(c)")
        #expect(v.passed, "\(variant): \(v.message)")
        for i in 0..<(r * c) where mask[i] == -.infinity { #expect(got[i] == 0, "masked entry \(i) = \(got[i])") }
    }

    @Test("A fully masked row gives all zeros (softmax) / all −∞ (log-softmax), never NaN; other rows unaffected",
          arguments: KernelPath.allCases)
    func fullyMasked(variant: KernelPath) {
        for cols in [1, 5, 16, 37] {
            let x = GSLRandom(seed: 8).floats(3 * cols)
            var mask = [Float](repeating: 0, count: 3 * cols)
            for j in 0..<cols { mask[cols + j] = -.infinity }
            let y = librarySoftmax(variant)(x, mask, 3, cols)
            #expect(y[cols..<(2 * cols)].allSatisfy { $0 == 0 }, "\(variant) cols=\(cols): \(Array(y[cols..<(2 * cols)]))")
            #expect(!y.contains { $0.isNaN })
            let ly = librarySoftmax(variant, log: true)(x, mask, 3, cols)
            #expect(ly[cols..<(2 * cols)].allSatisfy { $0 == -.infinity })
            let ref = referenceSoftmax(x, mask, rows: 3, cols: cols)
            #expect(compare(y, ref, .mixed(absolute: 1e-30, relative: (2 + Double(cols) + 8) * 6e-8)).passed)
        }
    }

    // The raw kernel's convention; the checked `softmaxRows` throws instead (EdgeNumericsSpecs).
    @Test("Kernel: NaN in a row makes that row NaN (softmax and log-softmax); other rows are unaffected",
          arguments: KernelPath.allCases)
    func nanPropagates(variant: KernelPath) {
        for cols in [1, 9, 16, 40] {
            var x = GSLRandom(seed: 9).floats(3 * cols)
            x[cols + cols / 2] = .nan
            for log in [false, true] {
                let y = rawKernelSoftmax(variant, log: log)(x, nil, 3, cols)
                #expect(y[cols..<(2 * cols)].allSatisfy { $0.isNaN }, "\(variant) log=\(log) cols=\(cols)")
                #expect(!y[0..<cols].contains { $0.isNaN } && !y[(2 * cols)...].contains { $0.isNaN })
            }
        }
    }

    @Test("log-softmax matches v − μ − log Σ e^{v−μ} (GSL) within (R + n + 8)·u·(|ref| + 1)",
          arguments: KernelPath.allCases)
    func logSoftmax(variant: KernelPath) {
        for (i, cols) in Self.widths.enumerated() {
            let x = GSLRandom(seed: UInt(110 + i)).floats(4 * cols, in: -8, 8)
            let got = librarySoftmax(variant, log: true)(x, nil, 4, cols)
            let ref = referenceSoftmax(x, nil, rows: 4, cols: cols, log: true)
            // Absolute errors: u·R from v − μ, ~n·u from log Σ (relative error of Σ), u·|y| for the
            // last subtraction.
            let tol = (16 + Double(cols) + 8) * Double(Float.ulpOfOne) / 2
            let v = compare(got, ref, .mixed(absolute: tol, relative: tol), "log-softmax cols=\(cols)")
            #expect(v.passed, "\(variant): \(v.message)")
        }
    }

    @Test("The softmax checks can fail: a column-axis softmax, a softmax without max subtraction")
    func checksCanFail() {
        // Normalizes along columns instead of rows (a wrong axis).
        let wrongAxis: SoftmaxImplementation = { x, mask, rows, cols in
            let t = try! Matrix(rows: rows, cols: cols, storage: x).transposed()
            return try! t.softmaxRows(path: .naive).transposed().storage
        }
        #expect(!checkSoftmaxAgainstGSL(wrongAxis, rows: 5, cols: 7, seed: 1).passed)
        #expect(!checkRowsSumToOne(wrongAxis, rows: 5, cols: 7, seed: 2).passed)
        // e^x / Σ e^x without subtracting the max: overflows at large logits.
        let noMax: SoftmaxImplementation = { x, _, rows, cols in
            var y = x
            for r in 0..<rows {
                var s: Float = 0
                for j in 0..<cols { y[r * cols + j] = expf(x[r * cols + j]); s += y[r * cols + j] }
                for j in 0..<cols { y[r * cols + j] /= s }
            }
            return y
        }
        #expect(!checkShiftInvariance(noMax, rows: 2, cols: 9, shift: 1000, seed: 3).passed)
    }

    @Test("Mask of the wrong shape is a typed error naming both shapes")
    func maskShape() throws {
        let x = Inputs.matrix(rows: 3, cols: 4, seed: 1)
        #expect(throws: DecoderSpecError.self) { try x.softmaxRows(mask: Matrix(rows: 4, cols: 3)) }
        do {
            _ = try x.logSoftmaxRows(mask: Matrix(rows: 3, cols: 5))
            Issue.record("no error")
        } catch let e as DecoderSpecError {
            #expect(e.description.contains("[3, 4]") && e.description.contains("[3, 5]"), "\(e)")
        }
    }
}
