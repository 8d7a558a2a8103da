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
        // TODO(issue 3): optimized path.
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
}
