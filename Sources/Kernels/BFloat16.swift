import CPrefetch
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

    /// y = x · Ŵᵀ for one row x [1, cols] through `BF16GEMV` → y [1, rows] (a decoding step's
    /// Linear or tied head). Callers check x's shape with a typed error first; the precondition keeps
    /// the unsafe loop in bounds in release builds too.
    public func timesRow(_ x: Matrix, path: KernelPath) -> Matrix {
        precondition(x.rows == 1 && x.cols == cols, "BF16Matrix.timesRow: x \(x.shape) for Ŵ [\(rows), \(cols)]")
        var y = Matrix(rows: 1, cols: rows)
        x.storage.withUnsafeBufferPointer { px in
            storage.withUnsafeBufferPointer { pw in
                y.storage.withUnsafeMutableBufferPointer { py in
                    BF16GEMV.multiply(path, n: rows, k: cols, x: px.baseAddress!, w: pw.baseAddress!, y: py.baseAddress!)
                }
            }
        }
        return y
    }
}

/// The lane types the bf16 GEMV widens into. 2·N bf16 values are loaded as N UInt32 (little-endian:
/// the low half of word i is element 2i, the high half element 2i + 1); shifting each word left by 16
/// gives the Floats of the even elements, masking off its low half those of the odd ones — exact,
/// and plain lane-wise integer operations (`vpslld`, `vpandd`), which the compiler keeps in
/// registers. (A lane-wise UInt16 → UInt32 conversion, the other way to widen, compiled to a call
/// per vector and ran slower than the Float GEMV.)
package protocol BF16Lane: SIMD where Scalar == Float {
    /// Elements p[0], p[2], … (even) and p[1], p[3], … (odd) of 2·scalarCount bf16 values, as Floats.
    static func widenPairs(_ p: UnsafePointer<UInt16>) -> (even: Self, odd: Self)
}

extension SIMD8: BF16Lane where Scalar == Float {
    @inline(__always)
    package static func widenPairs(_ p: UnsafePointer<UInt16>) -> (even: SIMD8<Float>, odd: SIMD8<Float>) {
        let v = UnsafeRawPointer(p).loadUnaligned(as: SIMD8<UInt32>.self)
        return (unsafeBitCast(v &<< SIMD8<UInt32>(repeating: 16), to: SIMD8<Float>.self),
                unsafeBitCast(v & SIMD8<UInt32>(repeating: 0xFFFF_0000), to: SIMD8<Float>.self))
    }
}

extension SIMD16: BF16Lane where Scalar == Float {
    @inline(__always)
    package static func widenPairs(_ p: UnsafePointer<UInt16>) -> (even: SIMD16<Float>, odd: SIMD16<Float>) {
        let v = UnsafeRawPointer(p).loadUnaligned(as: SIMD16<UInt32>.self)
        return (unsafeBitCast(v &<< SIMD16<UInt32>(repeating: 16), to: SIMD16<Float>.self),
                unsafeBitCast(v & SIMD16<UInt32>(repeating: 0xFFFF_0000), to: SIMD16<Float>.self))
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

    /// 4 rows at a time; each step takes 2·N weights of a row as their even and odd elements
    /// (`BF16Lane.widenPairs`) against x split the same way once per call, into separate
    /// accumulators, and asks (`decoderspec_prefetch`) for the lines of the next 4 rows, 2·N·4·2
    /// bytes per step, so the next group is on its way while this one is summed: without it the
    /// loop read about 9 GB/s from DRAM where the Float GEMV reads about 14 (docs/kernels.md).
    /// Each row's two accumulators are added, then summed pairwise (`CacheLane.pairwiseSum`).
    /// Summation order differs from the naive loop.
    @inline(__always)
    static func streamed<V: CacheLane>(_: V.Type, n: Int, k: Int, x: UnsafePointer<Float>, w: UnsafePointer<UInt16>,
                                       y: UnsafeMutablePointer<Float>) {
        let lanes = V.scalarCount, block = 2 * lanes
        let kv = k - k % block
        // x regrouped per block of 2N: its N even-position entries, then its N odd-position ones.
        let xs = UnsafeMutablePointer<Float>.allocate(capacity: max(kv, 1))
        defer { xs.deallocate() }
        var b = 0
        while b < kv {
            for i in 0..<lanes { xs[b + i] = x[b + 2 * i]; xs[b + lanes + i] = x[b + 2 * i + 1] }
            b += block
        }
        @inline(__always) func finish(_ j: Int, _ even: V, _ odd: V, _ row: UnsafePointer<UInt16>) {
            var s = (even + odd).pairwiseSum
            for p in kv..<k { s += BFloat16.widen(row[p]) * x[p] }
            y[j] = s
        }
        let linesPerStep = 8 * block / 64  // 4 rows × 2N weights × 2 bytes, in 64-byte lines
        var j = 0
        while j + 4 <= n {
            let r0 = w + j * k, r1 = r0 + k, r2 = r1 + k, r3 = r2 + k
            let next = UnsafeRawPointer(r3 + k)  // the next group's 4 rows: 8k bytes, contiguous
            var e0 = V(), e1 = V(), e2 = V(), e3 = V(), o0 = V(), o1 = V(), o2 = V(), o3 = V()
            var p = 0
            while p < kv {
                for line in 0..<linesPerStep { decoderspec_prefetch(next + (8 &* p &+ 64 &* line)) }
                let xe: V = GEMV.load(xs + p), xo: V = GEMV.load(xs + (p &+ lanes))
                let w0 = V.widenPairs(r0 + p), w1 = V.widenPairs(r1 + p), w2 = V.widenPairs(r2 + p), w3 = V.widenPairs(r3 + p)
                e0 = GEMV.fmadd(e0, xe, w0.even); o0 = GEMV.fmadd(o0, xo, w0.odd)
                e1 = GEMV.fmadd(e1, xe, w1.even); o1 = GEMV.fmadd(o1, xo, w1.odd)
                e2 = GEMV.fmadd(e2, xe, w2.even); o2 = GEMV.fmadd(o2, xo, w2.odd)
                e3 = GEMV.fmadd(e3, xe, w3.even); o3 = GEMV.fmadd(o3, xo, w3.odd)
                p &+= block
            }
            finish(j, e0, o0, r0); finish(j + 1, e1, o1, r1); finish(j + 2, e2, o2, r2); finish(j + 3, e3, o3, r3)
            j += 4
        }
        while j < n {
            let r = w + j * k
            var e = V(), o = V()
            var p = 0
            while p < kv {
                let wr = V.widenPairs(r + p)
                e = GEMV.fmadd(e, GEMV.load(xs + p), wr.even)
                o = GEMV.fmadd(o, GEMV.load(xs + p + lanes), wr.odd)
                p += block
            }
            finish(j, e, o, r)
            j += 1
        }
    }
}
