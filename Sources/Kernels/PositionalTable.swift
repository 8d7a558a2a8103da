#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The sinusoidal positional-encoding table (Vaswani et al. 2017). See docs/positional-encoding.md.
///
///     ω_i           = 1 / 10000^(2i/d)                 i = 0 ..< d/2
///     PE[pos, 2i]   = sin(pos · ω_i)
///     PE[pos, 2i+1] = cos(pos · ω_i)
///
/// Output: `count` rows for positions `first ..< first + count`, each of `d` Floats, row-major,
/// written to `out` (row stride `d`). `d` must be even and ≥ 2, `first ≥ 0` (preconditions:
/// the public `SinusoidalPositionalEncoding` validates and throws).
///
/// Precision contract (both variants, specced in PositionalEncodingSpecs against GSL):
/// angles and sines are computed in Double and rounded to Float once, so every value is within
/// `2⁻²⁴·|PE| + 1e-10` of the exact value for positions ≤ 8192, and `2⁻²⁴·|PE| + 1e-9` up to the
/// ceiling 2²⁰ (the Double stage contributes ≤ ≈ 5.3·pos·2⁻⁵³). Computing the angle `pos·ω` in
/// Float instead (what a float32 framework does) rounds it to ulp(pos)/2 — 1.2e-4 at pos 2048,
/// 4.9e-4 at pos 8192 — and the sine inherits that error.
public enum PositionalTable {
    // Paths (`KernelPath`):
    // - `.naive`: the formula transcribed: for each (pos, i), one `pow`, one `sin`, one `cos`, in Double.
    // - `.optimized` (= `.parallel`): identical to naive except: the frequencies ω_i are computed once
    //   per table, only the first row uses `sin`/`cos`, and each later row is the previous row
    //   rotated by ω_i (angle addition, in Double):
    //       sin(a+ω) = sin a·cos ω + cos a·sin ω,   cos(a+ω) = cos a·cos ω − sin a·sin ω.
    //   Error of n rotation steps ≤ ≈ (√5 + 1)·n·2⁻⁵³ (a complex product's rounding plus the
    //   rounding of (cos ω, sin ω), per step; ≈ 3e-12 at n = 8192, ≈ 4e-10 at n = 2²⁰), far
    //   below Float rounding (2⁻²⁵ ≈ 3e-8); rows are a few multiply-adds per element and vectorize.

    /// Fills `out[r·d + j]` with PE[first + r, j] for r in 0..<count, j in 0..<d.
    public static func sinusoidal(
        _ path: KernelPath, first: Int, count: Int, dimension d: Int, into out: UnsafeMutablePointer<Float>
    ) {
        precondition(d >= 2 && d % 2 == 0, "sinusoidal PE needs an even dimension ≥ 2")
        precondition(first >= 0 && count >= 0, "positions must be non-negative")
        KernelRecorder.record(.positionalTable, path)
        switch path {
        case .naive: naive(first: first, count: count, d: d, out: out)
        case .optimized, .parallel: recurrence(first: first, count: count, d: d, out: out)
        }
    }

    /// ω_i = 1 / 10000^(2i/d) in Double, for i in 0..<d/2.
    public static func frequencies(dimension d: Int) -> [Double] {
        (0..<(d / 2)).map { i in 1.0 / pow(10000.0, Double(2 * i) / Double(d)) }
    }

    // MARK: naive

    static func naive(first: Int, count: Int, d: Int, out: UnsafeMutablePointer<Float>) {
        for r in 0..<count {
            let pos = Double(first + r)
            for i in 0..<(d / 2) {
                let angle = pos / pow(10000.0, Double(2 * i) / Double(d))
                out[r * d + 2 * i] = Float(sin(angle))
                out[r * d + 2 * i + 1] = Float(cos(angle))
            }
        }
    }

    // MARK: optimized

    static func recurrence(first: Int, count: Int, d: Int, out: UnsafeMutablePointer<Float>) {
        if count == 0 { return }
        let half = d / 2
        // State (s_i, c_i) = (sin, cos)(pos·ω_i) and the one-step rotation (sin ω_i, cos ω_i).
        let s = UnsafeMutablePointer<Double>.allocate(capacity: half)
        let c = UnsafeMutablePointer<Double>.allocate(capacity: half)
        let sinW = UnsafeMutablePointer<Double>.allocate(capacity: half)
        let cosW = UnsafeMutablePointer<Double>.allocate(capacity: half)
        defer { s.deallocate(); c.deallocate(); sinW.deallocate(); cosW.deallocate() }
        let p0 = Double(first)
        for i in 0..<half {
            let w = 1.0 / pow(10000.0, Double(2 * i) / Double(d))
            sinW[i] = sin(w)
            cosW[i] = cos(w)
            s[i] = sin(p0 * w)
            c[i] = cos(p0 * w)
        }
        writeRow(out, s, c, half)
        var row = out
        for _ in 1..<count {
            row += d
            rotate(s, c, sinW, cosW, half)
            writeRow(row, s, c, half)
        }
    }

    /// (s, c) ← (s·cos ω + c·sin ω, c·cos ω − s·sin ω), four lanes at a time.
    @inline(__always)
    static func rotate(_ s: UnsafeMutablePointer<Double>, _ c: UnsafeMutablePointer<Double>,
                       _ sinW: UnsafePointer<Double>, _ cosW: UnsafePointer<Double>, _ half: Int) {
        var i = 0
        while i + 4 <= half {
            let sv = UnsafeRawPointer(s + i).loadUnaligned(as: SIMD4<Double>.self)
            let cv = UnsafeRawPointer(c + i).loadUnaligned(as: SIMD4<Double>.self)
            let sw = UnsafeRawPointer(sinW + i).loadUnaligned(as: SIMD4<Double>.self)
            let cw = UnsafeRawPointer(cosW + i).loadUnaligned(as: SIMD4<Double>.self)
            UnsafeMutableRawPointer(s + i).storeBytes(of: sv * cw + cv * sw, as: SIMD4<Double>.self)
            UnsafeMutableRawPointer(c + i).storeBytes(of: cv * cw - sv * sw, as: SIMD4<Double>.self)
            i += 4
        }
        while i < half {
            let sv = s[i], cv = c[i]
            s[i] = sv * cosW[i] + cv * sinW[i]
            c[i] = cv * cosW[i] - sv * sinW[i]
            i += 1
        }
    }

    /// row[2i] = Float(s_i), row[2i+1] = Float(c_i).
    @inline(__always)
    static func writeRow(_ row: UnsafeMutablePointer<Float>, _ s: UnsafePointer<Double>,
                         _ c: UnsafePointer<Double>, _ half: Int) {
        var i = 0
        while i + 4 <= half {
            let sf = SIMD4<Float>(UnsafeRawPointer(s + i).loadUnaligned(as: SIMD4<Double>.self))
            let cf = SIMD4<Float>(UnsafeRawPointer(c + i).loadUnaligned(as: SIMD4<Double>.self))
            let interleaved = SIMD8<Float>(sf[0], cf[0], sf[1], cf[1], sf[2], cf[2], sf[3], cf[3])
            UnsafeMutableRawPointer(row + 2 * i).storeBytes(of: interleaved, as: SIMD8<Float>.self)
            i += 4
        }
        while i < half {
            row[2 * i] = Float(s[i])
            row[2 * i + 1] = Float(c[i])
            i += 1
        }
    }
}
