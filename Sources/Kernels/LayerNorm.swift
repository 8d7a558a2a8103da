/// Layer normalization over the last axis. See docs/kernels.md and docs/layers.md.
///
///     μ = (1/d) Σ_j x_j,   σ² = (1/d) Σ_j (x_j − μ)²      (population variance: divide by d)
///     y_j = γ_j · (x_j − μ) / sqrt(σ² + ε) + β_j
///
/// Shapes: x and y are [rows, d] row-major; γ and β are [d].
///
/// Edge numerics (specced in KernelSpecs/EdgeNumericsSpecs, docs/kernels.md "Edge numerics"):
/// every finite row gives the Double result within a few Float roundings, at any scale — from
/// subnormals to ±Float.greatestFiniteMagnitude. LayerNorm is scale-invariant up to ε, so
/// nothing about the result is large even when x is: (x − μ)/sqrt(σ² + ε) has magnitude ≤ √d.
/// - σ² ≫ ε: y = γ·(x − μ)/σ + β, independent of the scale of x.
/// - σ² ≪ ε (tiny inputs, or a constant row): y ≈ γ·(x − μ)/sqrt(ε) + β; a constant row gives β.
public enum LayerNormKernel {
    // Paths (`KernelPath`):
    // - `.naive`: two passes (mean, then variance about the mean), scalar, as the formula reads — with
    //   the sums in Double, so neither Σx nor Σ(x − μ)² can overflow (Float inputs are ≤ 3.4e38,
    //   their squares ≤ 1.2e77 ≪ Double's 1.8e308) and μ is exact enough for any row.
    // - `.optimized` (= `.parallel`): identical to naive except: Float SIMD sums (32 partial sums, a
    //   different order), a corrected mean (μ̂ + Σ(x − μ̂)/d, Chan–Golub–LeVeque), and rows whose
    //   Float σ² overflows (|x − μ| ≳ 1.8e19, or Σx > FLT_MAX) redone by the Double row routine.

    public static func forward(
        _ path: KernelPath, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
        rows: Int, d: Int, gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, epsilon: Float
    ) {
        precondition(rows >= 0 && d >= 0, "LayerNorm sizes must be non-negative")
        KernelRecorder.record(.layerNorm, path)
        if path != .naive {
            optimized(x: x, y: y, rows: rows, d: d, gamma: gamma, beta: beta, epsilon: epsilon)
            return
        }
        for r in 0..<rows {
            doubleRow(x + r * d, y + r * d, d: d, gamma: gamma, beta: beta, epsilon: epsilon)
        }
    }

    /// One row of the literal formula with Double sums and Double normalization; only the final
    /// y_j is rounded to Float. Overflow-free for every finite Float row.
    static func doubleRow(_ xr: UnsafePointer<Float>, _ yr: UnsafeMutablePointer<Float>, d: Int,
                          gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, epsilon: Float) {
        let (mean, inv) = doubleStatistics(xr, d: d, epsilon: epsilon)
        for j in 0..<d { yr[j] = Float(Double(gamma[j]) * ((Double(xr[j]) - mean) * inv) + Double(beta[j])) }
    }

    /// μ and 1/sqrt(σ² + ε) of one row of d values, two passes in Double (the naive path's
    /// statistics; training's forward uses the same, so it matches this kernel bit for bit).
    public static func doubleStatistics(_ xr: UnsafePointer<Float>, d: Int, epsilon: Float) -> (mean: Double, inverseStd: Double) {
        var mean: Double = 0
        for j in 0..<d { mean += Double(xr[j]) }
        mean /= Double(d)
        var variance: Double = 0
        for j in 0..<d { let c = Double(xr[j]) - mean; variance += c * c }
        variance /= Double(d)
        return (mean, 1 / (variance + Double(epsilon)).squareRoot())
    }

    /// Identical to naive except: the sums (Σx, then Σc and Σc² with c = x − μ̂) accumulate in two
    /// SIMD16<Float> registers each (32 partial sums, a different summation order); the mean is
    /// corrected by δ = Σc/d and the variance is (Σc² − (Σc)²/d)/d (the corrected two-pass
    /// algorithm: μ̂'s rounding error, up to ~d·u·max|x|, would otherwise swamp a small spread
    /// about a large mean); the output is γ·((x − μ̂)·inv − δ·inv) + β, 16 lanes at a time.
    /// A row whose Float σ² is not finite (overflow of Σx or of c², at |x| ≳ 1.8e19) is redone by
    /// `doubleRow`, so the fast path costs one branch per row and large scales stay correct.
    static func optimized(
        x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
        rows: Int, d: Int, gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, epsilon: Float
    ) {
        typealias V = SIMD16<Float>
        let full = d / 16 * 16
        for r in 0..<rows {
            let xr = x + r * d, yr = y + r * d
            var s0 = V(), s1 = V()
            var j = 0
            while j + 32 <= full {
                s0 += VectorMath.load(xr + j)
                s1 += VectorMath.load(xr + j + 16)
                j += 32
            }
            if j < full { s0 += VectorMath.load(xr + j) }
            var tailSum: Float = 0
            for t in full..<d { tailSum += xr[t] }
            let mean = ((s0 + s1).sum() + tailSum) / Float(d)
            let mv = V(repeating: mean)
            var q0 = V(), q1 = V(), c0s = V(), c1s = V()
            j = 0
            while j + 32 <= full {
                let c0 = VectorMath.load(xr + j) - mv, c1 = VectorMath.load(xr + j + 16) - mv
                c0s += c0
                c1s += c1
                q0 += c0 * c0
                q1 += c1 * c1
                j += 32
            }
            if j < full { let c0 = VectorMath.load(xr + j) - mv; c0s += c0; q0 += c0 * c0 }
            var tailSq: Float = 0, tailC: Float = 0
            for t in full..<d { let c = xr[t] - mean; tailC += c; tailSq += c * c }
            let sumC = (c0s + c1s).sum() + tailC
            let delta = sumC / Float(d)
            // Σc² − (Σc)²/d ≥ 0 in exact arithmetic; clamp a rounding below 0 (a NaN stays NaN).
            var variance = (((q0 + q1).sum() + tailSq) - sumC * delta) / Float(d)
            if variance < 0 { variance = 0 }
            guard variance.isFinite else {
                doubleRow(xr, yr, d: d, gamma: gamma, beta: beta, epsilon: epsilon)
                continue
            }
            let inv = 1 / (variance + epsilon).squareRoot()
            // x̂ = (x − μ̂)·inv − δ·inv: one multiply-add per element, the same count as without
            // the correction (−δ·inv is a per-row scalar).
            let shift = -(delta * inv)
            let iv = V(repeating: inv), sv = V(repeating: shift)
            j = 0
            while j < full {
                let c = VectorMath.madd(VectorMath.load(xr + j) - mv, iv, sv)
                VectorMath.store(VectorMath.madd(VectorMath.load(gamma + j), c, VectorMath.load(beta + j)), yr + j)
                j += 16
            }
            for t in full..<d { yr[t] = gamma[t] * ((xr[t] - mean) * inv + shift) + beta[t] }
        }
    }
}
