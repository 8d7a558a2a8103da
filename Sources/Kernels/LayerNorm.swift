/// Layer normalization over the last axis. See docs/kernels.md and docs/layers.md.
///
///     μ = (1/d) Σ_j x_j,   σ² = (1/d) Σ_j (x_j − μ)²      (population variance: divide by d)
///     y_j = γ_j · (x_j − μ) / sqrt(σ² + ε) + β_j
///
/// Shapes: x and y are [rows, d] row-major; γ and β are [d].
public enum LayerNormKernel {
    public enum Variant: String, CaseIterable, Sendable {
        /// Two passes (mean, then variance about the mean), scalar, as the formula reads.
        case naive
        /// Identical to naive except: SIMD accumulation across the row. Summation order differs.
        case optimized
    }

    public static func forward(
        _ variant: Variant, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
        rows: Int, d: Int, gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, epsilon: Float
    ) {
        precondition(rows >= 0 && d >= 0, "LayerNorm sizes must be non-negative")
        if variant == .optimized {
            optimized(x: x, y: y, rows: rows, d: d, gamma: gamma, beta: beta, epsilon: epsilon)
            return
        }
        for r in 0..<rows {
            let xr = x + r * d, yr = y + r * d
            var mean: Float = 0
            for j in 0..<d { mean += xr[j] }
            mean /= Float(d)
            var variance: Float = 0
            for j in 0..<d { let c = xr[j] - mean; variance += c * c }
            variance /= Float(d)
            let inv = 1 / (variance + epsilon).squareRoot()
            for j in 0..<d { yr[j] = gamma[j] * ((xr[j] - mean) * inv) + beta[j] }
        }
    }

    /// Identical to naive except: the two sums (Σx and Σ(x − μ)²) accumulate in two SIMD16<Float>
    /// registers (32 partial sums, a different summation order), and the output pass runs 16
    /// lanes at a time. Same two-pass algorithm (no E[x²] − μ² cancellation).
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
            var q0 = V(), q1 = V()
            j = 0
            while j + 32 <= full {
                let c0 = VectorMath.load(xr + j) - mv, c1 = VectorMath.load(xr + j + 16) - mv
                q0 += c0 * c0
                q1 += c1 * c1
                j += 32
            }
            if j < full { let c0 = VectorMath.load(xr + j) - mv; q0 += c0 * c0 }
            var tailSq: Float = 0
            for t in full..<d { let c = xr[t] - mean; tailSq += c * c }
            let variance = ((q0 + q1).sum() + tailSq) / Float(d)
            let inv = 1 / (variance + epsilon).squareRoot()
            let iv = V(repeating: inv)
            j = 0
            while j < full {
                let c = (VectorMath.load(xr + j) - mv) * iv
                VectorMath.store(VectorMath.load(gamma + j) * c + VectorMath.load(beta + j), yr + j)
                j += 16
            }
            for t in full..<d { yr[t] = gamma[t] * ((xr[t] - mean) * inv) + beta[t] }
        }
    }
}
