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
/// Conventions (specced in KernelSpecs, EdgeNumericsSpecs):
/// - A fully masked row (every x + M = −∞) yields all zeros: "attend to nothing", never NaN.
/// - A NaN anywhere in a row makes that whole row NaN (NaN in, NaN out; nothing is hidden).
///   A +∞ in x + M also gives a NaN row here (∞ − ∞); the checked `Matrix.softmaxRows` rejects
///   NaN/+∞ with a typed error instead.
/// - Every finite row is safe at any scale (±1e30, ±Float.greatestFiniteMagnitude, subnormals):
///   x − μ ≤ 0 cannot overflow (−∞ when it would, whose eˣ is exactly 0), Σ ≥ 1 (the max term is
///   e⁰ = 1), so 1/Σ never overflows.
public enum Softmax {
    // Paths (`KernelPath`): `.naive` is three passes per row (max, exp-and-sum, divide), scalar;
    // `.optimized` and `.parallel` are identical to naive except: SIMD passes and a vectorized exp polynomial.

    /// In place over `rows` rows of `cols` contiguous values (row stride `cols`).
    /// `mask`, when given, has the same layout and is added before the max.
    public static func rows(
        _ path: KernelPath, _ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int,
        mask: UnsafePointer<Float>? = nil
    ) {
        precondition(rows >= 0 && cols >= 0, "softmax sizes must be non-negative")
        KernelRecorder.record(.softmax, path)
        switch path {
        case .naive:
            for r in 0..<rows { naiveRow(x + r * cols, cols: cols, mask: mask.map { $0 + r * cols }) }
        case .optimized, .parallel:
            for r in 0..<rows { optimizedRow(x + r * cols, cols: cols, mask: mask.map { $0 + r * cols }, log: false) }
        }
    }

    /// log-softmax in place: y = (x + M − μ) − log Σ exp(x + M − μ). A fully masked row gives −∞.
    ///
    /// The parenthesization matters at large scale: (v − μ) − log Σ keeps log Σ ∈ [0, log n]
    /// against a difference that is exactly 0 at the max, whereas v − (μ + log Σ) rounds
    /// μ + log Σ back to μ once |μ| ≫ log n (at |μ| = 1e30 the whole −log n term would vanish).
    public static func logRows(
        _ path: KernelPath, _ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int,
        mask: UnsafePointer<Float>? = nil
    ) {
        precondition(rows >= 0 && cols >= 0, "log-softmax sizes must be non-negative")
        KernelRecorder.record(.logSoftmax, path)
        if path != .naive {
            for r in 0..<rows { optimizedRow(x + r * cols, cols: cols, mask: mask.map { $0 + r * cols }, log: true) }
            return
        }
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
            let logSum = logf(sum)
            for j in 0..<cols { row[j] = (row[j] - mu) - logSum }
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

    /// The optimized row: identical to the naive row except that each pass runs 16 lanes at a time
    /// (SIMD16<Float>), the max is a compare-and-select, eˣ is `VectorMath.exp` (≤ 2 ULPs) and
    /// the sum is accumulated in 16 partial sums (a different summation order). The tail of the
    /// row goes through the same vector code padded with −∞ (whose eˣ is exactly 0).
    static func optimizedRow(_ row: UnsafeMutablePointer<Float>, cols: Int, mask: UnsafePointer<Float>?, log: Bool) {
        typealias V = SIMD16<Float>
        let full = cols / 16 * 16, tail = cols - full
        // Pass 1: v = x + M (written back when masked), running max, NaN detection.
        var mx = V(repeating: -.infinity)
        var nan = SIMDMask<SIMD16<Int32>>(repeating: false)
        var j = 0
        while j < full {
            var v = VectorMath.load(row + j)
            if let mask {
                v += VectorMath.load(mask + j)
                VectorMath.store(v, row + j)
            }
            nan = nan .| (v .!= v)
            mx = mx.replacing(with: v, where: v .> mx)
            j += 16
        }
        if tail > 0 {
            var v = VectorMath.loadPartial(row + full, tail, pad: -.infinity)
            if let mask {
                v += VectorMath.loadPartial(mask + full, tail, pad: 0)
                VectorMath.storePartial(v, row + full, tail)
            }
            nan = nan .| (v .!= v)
            mx = mx.replacing(with: v, where: v .> mx)
        }
        if any(nan) { for j in 0..<cols { row[j] = .nan }; return }
        let mu = mx.max()
        if mu == -.infinity {
            // Fully masked: softmax → all zeros; log-softmax → all −∞ (already there).
            if !log { for j in 0..<cols { row[j] = 0 } }
            return
        }
        let muV = V(repeating: mu)
        // Pass 2: e = exp(v − μ) (stored for softmax), sum in 16 lanes.
        var sum = V()
        j = 0
        while j < full {
            let e = VectorMath.exp(VectorMath.load(row + j) - muV)
            if !log { VectorMath.store(e, row + j) }
            sum += e
            j += 16
        }
        if tail > 0 {
            let e = VectorMath.exp(VectorMath.loadPartial(row + full, tail, pad: -.infinity) - muV)
            if !log { VectorMath.storePartial(e, row + full, tail) }
            sum += e
        }
        let total = sum.sum()
        // Pass 3: normalize (softmax: × 1/Σ; log-softmax: (v − μ) − log Σ, see `logRows`).
        let s = log ? V(repeating: logf(total)) : V(repeating: 1 / total)
        j = 0
        while j < full {
            let v = VectorMath.load(row + j)
            VectorMath.store(log ? (v - muV) - s : v * s, row + j)
            j += 16
        }
        for j in full..<cols { row[j] = log ? (row[j] - mu) - s[0] : row[j] * s[0] }
    }
}
