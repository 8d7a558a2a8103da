import TensorCore

/// bfloat16: the top 16 bits of an IEEE binary32 — sign, the same 8-bit exponent, 7 stored
/// significand bits (8 with the implicit one). See docs/kernels.md ("bf16 weights").
///
///     widen(h) = Float(bitPattern: UInt32(h) << 16)             (exact)
///     round(x) = the bf16 value nearest x, ties to the one whose last significand bit is 0
///
/// A finite x whose rounded value is a finite normal bf16 has |round(x) − x| ≤ u·|x| with
/// u = 2⁻⁸ (the unit roundoff of an 8-bit significand: half the spacing 2⁻⁷ between 1 and the
/// next bf16), more tightly |round(x) − x| ≤ u/(1 + u)·|x|. In the subnormal range the error is at
/// most half the bf16 subnormal spacing, 2⁻¹³⁴, in absolute terms.
public enum BFloat16 {
    /// Round to nearest, ties to even, by the rule on the bits: keep the upper 16 bits and add one
    /// to them when the 16 dropped bits are more than half (0x8000) of the last kept bit, or
    /// exactly half and the kept part is odd. A carry out of the significand moves into the
    /// exponent, which is what rounding up to the next binade (or to ±∞ from above the largest
    /// finite bf16 plus half a spacing) means. NaN stays NaN (quiet, sign kept); ±∞ stays ±∞.
    @inline(__always)
    public static func round(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        if x.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }
        let kept = bits >> 16, dropped = bits & 0xFFFF
        let up = dropped > 0x8000 || (dropped == 0x8000 && kept & 1 == 1)
        return UInt16(truncatingIfNeeded: up ? kept + 1 : kept)
    }

    /// The Float a bf16 stands for (exact: every bf16 is a Float).
    @inline(__always)
    public static func widen(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }
}

/// A matrix stored as bf16, row-major [rows, cols]: a Linear weight [out, in] or the tied
/// embedding [V, d] rounded once, for the weight-only bf16 decode path (docs/decoding.md).
public struct BF16Matrix: Sendable, Equatable {
    public let rows: Int
    public let cols: Int
    public let storage: [UInt16]

    /// Every entry of `m` rounded to nearest, ties to even (`BFloat16.round`).
    public init(rounding m: Matrix) {
        rows = m.rows
        cols = m.cols
        storage = m.storage.map(BFloat16.round)
    }

    /// The rounded values as Floats, [rows, cols] (exact).
    public func widened() -> Matrix {
        try! Matrix(rows: rows, cols: cols, storage: storage.map(BFloat16.widen))
    }
}

/// The lane types the bf16 GEMV widens into: 16 bf16 values → 16 Floats by a zero-extension and
/// a 16-bit left shift per lane (vpmovzxwd + vpslld on x86).
package protocol BF16Lane: SIMD where Scalar == Float {
    static func widen(_ p: UnsafePointer<UInt16>) -> Self
}

extension SIMD8: BF16Lane where Scalar == Float {
    @inline(__always)
    package static func widen(_ p: UnsafePointer<UInt16>) -> SIMD8<Float> {
        let h = UnsafeRawPointer(p).loadUnaligned(as: SIMD8<UInt16>.self)
        return unsafeBitCast(SIMD8<UInt32>(truncatingIfNeeded: h) &<< 16, to: SIMD8<Float>.self)
    }
}

extension SIMD16: BF16Lane where Scalar == Float {
    @inline(__always)
    package static func widen(_ p: UnsafePointer<UInt16>) -> SIMD16<Float> {
        let h = UnsafeRawPointer(p).loadUnaligned(as: SIMD16<UInt16>.self)
        return unsafeBitCast(SIMD16<UInt32>(truncatingIfNeeded: h) &<< 16, to: SIMD16<Float>.self)
    }
}

/// y = W·x with W stored as bf16 [n, k] (a Linear weight [out, in]), x and y in Float:
///
///     y_j = Σ_p widen(W[j, p]) · x_p
///
/// Each weight is read as 2 bytes instead of 4 — the decode step's bound is bytes of weights per
/// token — and widened to Float in registers; every product and sum is in Float.
/// Paths: `.naive` is the loop of the formula, in order p = 0, 1, …; `.optimized` and `.parallel`
/// (the same: one core) differ only in accumulating 4 rows at a time in SIMD lanes of the build's
/// width (`GEMVWidth`), so only the summation order differs.
public enum BF16GEMV {
    /// Raw-buffer entry point: sizes are preconditions. x [k], w [n·k] row stride k, y [n] (overwritten).
    public static func multiply(_ path: KernelPath, n: Int, k: Int, x: UnsafePointer<Float>, w: UnsafePointer<UInt16>,
                                y: UnsafeMutablePointer<Float>) {
        multiply(path, width: GEMVWidth.inUse, n: n, k: k, x: x, w: w, y: y)
    }

    /// `multiply` at a given vector width (the specs check both on every machine).
    package static func multiply(_ path: KernelPath, width: GEMVWidth, n: Int, k: Int, x: UnsafePointer<Float>,
                                 w: UnsafePointer<UInt16>, y: UnsafeMutablePointer<Float>) {
        precondition(n >= 0 && k >= 0, "GEMV sizes must be non-negative")
        KernelRecorder.record(.gemm, path)
        switch (path, width) {
        case (.naive, _): naive(n: n, k: k, x: x, w: w, y: y)
        case (_, .avx2): streamed(SIMD8<Float>.self, n: n, k: k, x: x, w: w, y: y)
        case (_, .avx512): streamed(SIMD16<Float>.self, n: n, k: k, x: x, w: w, y: y)
        }
    }

    /// The formula: one dot product per output, left to right.
    static func naive(n: Int, k: Int, x: UnsafePointer<Float>, w: UnsafePointer<UInt16>, y: UnsafeMutablePointer<Float>) {
        for j in 0..<n {
            var s: Float = 0
            for p in 0..<k { s += BFloat16.widen(w[j * k + p]) * x[p] }
            y[j] = s
        }
    }

    @inline(__always)
    static func streamed<V: BF16Lane>(_: V.Type, n: Int, k: Int, x: UnsafePointer<Float>, w: UnsafePointer<UInt16>,
                                      y: UnsafeMutablePointer<Float>) {
        let lanes = V.scalarCount
        let kv = k - k % lanes
        @inline(__always) func finish(_ j: Int, _ acc: V, _ row: UnsafePointer<UInt16>) {
            var s = acc.sum()
            for p in kv..<k { s += BFloat16.widen(row[p]) * x[p] }
            y[j] = s
        }
        var j = 0
        while j + 4 <= n {
            let r0 = w + j * k, r1 = r0 + k, r2 = r1 + k, r3 = r2 + k
            var a0 = V(), a1 = V(), a2 = V(), a3 = V()
            var p = 0
            while p < kv {
                let xv: V = GEMV.load(x + p)
                a0 = GEMV.fmadd(a0, xv, V.widen(r0 + p))
                a1 = GEMV.fmadd(a1, xv, V.widen(r1 + p))
                a2 = GEMV.fmadd(a2, xv, V.widen(r2 + p))
                a3 = GEMV.fmadd(a3, xv, V.widen(r3 + p))
                p += lanes
            }
            finish(j, a0, r0); finish(j + 1, a1, r1); finish(j + 2, a2, r2); finish(j + 3, a3, r3)
            j += 4
        }
        while j < n {
            let r = w + j * k
            var a = V()
            var p = 0
            while p < kv { a = GEMV.fmadd(a, GEMV.load(x + p), V.widen(r + p)); p += lanes }
            finish(j, a, r)
            j += 1
        }
    }
}
