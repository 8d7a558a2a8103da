#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Row softmax with an optional additive mask. See docs/kernels.md.
///
///     y[r, j] = exp(x[r, j] + M[r, j] − μ_r) / Σ_l exp(x[r, l] + M[r, l] − μ_r),
///     μ_r = max_l (x[r, l] + M[r, l])
///
/// Subtracting the row maximum μ_r changes nothing mathematically (softmax is shift-invariant)
/// and keeps every exponent ≤ 0, so nothing overflows.
///
/// Conventions (specced in KernelSpecs):
/// - A fully masked row (every x + M = −∞) yields all zeros: "attend to nothing", never NaN.
/// - A NaN anywhere in a row makes that whole row NaN (NaN in, NaN out; nothing is hidden).
public enum Softmax {
    public enum Variant: String, CaseIterable, Sendable {
        /// Three passes per row (max, exp-and-sum, divide), scalar.
        case naive
        /// Identical to naive except: SIMD passes and a vectorized exp polynomial.
        case optimized
    }

    /// In place over `rows` rows of `cols` contiguous values (row stride `cols`).
    /// `mask`, when given, has the same layout and is added before the max.
    public static func rows(
        _ variant: Variant, _ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int,
        mask: UnsafePointer<Float>? = nil
    ) {
        // TODO(issue 3): optimized path.
        for r in 0..<rows { naiveRow(x + r * cols, cols: cols, mask: mask.map { $0 + r * cols }) }
    }

    /// log-softmax in place: y = x + M − μ − log Σ exp(x + M − μ). A fully masked row gives −∞.
    public static func logRows(
        _ variant: Variant, _ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int,
        mask: UnsafePointer<Float>? = nil
    ) {
        for r in 0..<rows {
            let row = x + r * cols
            let m = mask.map { $0 + r * cols }
            var mu = -Float.infinity
            var sawNaN = false
            for j in 0..<cols {
                let v = row[j] + (m?[j] ?? 0)
                row[j] = v
                if v.isNaN { sawNaN = true }
                if v > mu { mu = v }
            }
            if sawNaN { for j in 0..<cols { row[j] = .nan }; continue }
            if mu == -.infinity { continue }  // fully masked: all −∞ already
            var sum: Float = 0
            for j in 0..<cols { sum += expf(row[j] - mu) }
            let logZ = mu + logf(sum)
            for j in 0..<cols { row[j] -= logZ }
        }
    }

    static func naiveRow(_ row: UnsafeMutablePointer<Float>, cols: Int, mask: UnsafePointer<Float>?) {
        var mu = -Float.infinity
        var sawNaN = false
        for j in 0..<cols {
            let v = row[j] + (mask?[j] ?? 0)
            row[j] = v
            if v.isNaN { sawNaN = true }
            if v > mu { mu = v }
        }
        if sawNaN { for j in 0..<cols { row[j] = .nan }; return }
        if mu == -.infinity { for j in 0..<cols { row[j] = 0 }; return }
        var sum: Float = 0
        for j in 0..<cols {
            let e = expf(row[j] - mu)
            row[j] = e
            sum += e
        }
        let inv = 1 / sum
        for j in 0..<cols { row[j] *= inv }
    }
}
