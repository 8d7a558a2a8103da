/// Root-mean-square layer normalization (Zhang & Sennrich 2019; LLaMA, T5). See docs/kernels.md, "RMSNorm".
///
///     rms(x) = sqrt((1/d) Σ_j x_j² + ε),    y_j = g_j · x_j / rms(x)
///
/// No mean is subtracted and there is no bias β: LayerNorm without re-centring. Shapes: x and y
/// are [rows, d] row-major, g is [d].
///
/// Edge numerics: every finite row gives the Double result within a few Float roundings at any
/// scale (x² can overflow Float for |x| ≳ 1.8·10¹⁹: such a row is redone in Double).
public enum RMSNormKernel {
    // Paths (`KernelPath`):
    // - `.naive`: one pass of Σx² in Double, y_j = g_j·x_j/rms in Double, rounded once — the formula.
    // - `.optimized` (= `.parallel`): identical to naive except: Σx² in Float over two SIMD16
    //   accumulators (32 partial sums, a different order), y = (g·x)·(1/rms) 16 lanes at a time;
    //   a row whose Float Σx² is not finite is redone by the naive row routine.

    public static func forward(_ path: KernelPath, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                               rows: Int, d: Int, gain: UnsafePointer<Float>, epsilon: Float) {
        precondition(rows >= 0 && d > 0, "RMSNorm sizes")
        KernelRecorder.record(.rmsNorm, path)
        for r in 0..<rows {
            let xr = x + r * d, yr = y + r * d
            if path == .naive || !optimizedRow(xr, yr, d: d, gain: gain, epsilon: epsilon) {
                naiveRow(xr, yr, d: d, gain: gain, epsilon: epsilon)
            }
        }
    }

    static func naiveRow(_ xr: UnsafePointer<Float>, _ yr: UnsafeMutablePointer<Float>, d: Int, gain: UnsafePointer<Float>, epsilon: Float) {
        var sumSquares: Double = 0
        for j in 0..<d { sumSquares += Double(xr[j]) * Double(xr[j]) }
        let rms = (sumSquares / Double(d) + Double(epsilon)).squareRoot()
        for j in 0..<d { yr[j] = Float(Double(gain[j]) * Double(xr[j]) / rms) }
    }

    /// false when Σx² overflowed Float (nothing written).
    @inline(__always)
    static func optimizedRow(_ xr: UnsafePointer<Float>, _ yr: UnsafeMutablePointer<Float>, d: Int, gain: UnsafePointer<Float>,
                             epsilon: Float) -> Bool {
        typealias V = SIMD16<Float>
        var s0 = V(), s1 = V()
        var j = 0
        while j + 32 <= d {
            let a = VectorMath.load(xr + j), b = VectorMath.load(xr + j + 16)
            s0 = VectorMath.madd(a, a, s0)
            s1 = VectorMath.madd(b, b, s1)
            j += 32
        }
        if j + 16 <= d { let a = VectorMath.load(xr + j); s0 = VectorMath.madd(a, a, s0); j += 16 }
        if j < d { let a = VectorMath.loadPartial(xr + j, d - j, pad: 0); s1 = VectorMath.madd(a, a, s1) }
        let sum = (s0 + s1).sum()
        guard sum.isFinite else { return false }
        let inv = 1 / (sum / Float(d) + epsilon).squareRoot()
        let vInv = V(repeating: inv)
        j = 0
        while j + 16 <= d {
            VectorMath.store(VectorMath.load(gain + j) * VectorMath.load(xr + j) * vInv, yr + j)
            j += 16
        }
        while j < d { yr[j] = gain[j] * xr[j] * inv; j += 1 }
        return true
    }
}
