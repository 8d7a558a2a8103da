#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Vectorized elementary functions for the optimized kernels, 16 Floats at a time
/// (SIMD16<Float>: two ymm registers on AVX2, four xmm without a target-CPU flag).
/// See docs/kernels.md, "Vector math". Accuracy is specced in KernelSpecs against GSL.
public enum VectorMath {
    public typealias V = SIMD16<Float>

    /// a · b + c: one FMA with native code generation, mul + add otherwise (never a libm call).
    @inline(__always)
    static func madd(_ a: V, _ b: V, _ c: V) -> V {
        #if DECODERSPEC_NATIVE
        return c.addingProduct(a, b)
        #else
        return a * b + c
        #endif
    }

    /// eˣ: x = n·ln2 + r with n = round(x/ln2), |r| ≤ ln2/2 (Cody–Waite reduction), e^r by a
    /// degree-6 polynomial (Horner, 6 multiply-adds), 2ⁿ by writing n + 127 into the exponent bits.
    /// The coefficients are a relative-error minimax fit of e^r on [−ln2/2, ln2/2] (iteratively
    /// reweighted least squares on 2,000 Chebyshev nodes, rounded to Float; max relative error of
    /// the polynomial 1.7·10⁻⁸ ≈ 0.15 ULP), so the result is within ~2 ULPs of eˣ after rounding.
    ///
    /// Accuracy: specced at ≤ 3 Float ULPs vs `gsl_sf_exp` on [−87, 88].
    /// Conventions: x < −87.336 (where eˣ would be subnormal) → exactly 0, so e^{−∞} = 0;
    /// x > 88 is clamped to 88 (≈ 1.65·10³⁸: the kernels only pass x ≤ 0 or saturate anyway);
    /// NaN → NaN. No branches: the out-of-range lanes are computed (maybe as garbage) and then
    /// replaced by a compare-and-select.
    @inline(__always)
    public static func exp(_ x: V) -> V {
        let hi: Float = 88.0, lo: Float = -87.336_55
        let xc = x.replacing(with: hi, where: x .> hi)
        // n = round(x / ln 2): adding 1.5·2²³ rounds to an integer in the low mantissa bits.
        let magic: Float = 12_582_912
        let t = madd(xc, V(repeating: 1.442_695_04), V(repeating: magic))
        let n = t - magic
        // r = x − n·ln2 in two pieces: ln2_hi = 0.693359375 has 9 significant bits, so n·ln2_hi
        // is exact and so is the subtraction (Sterbenz); ln2_lo corrects the rest.
        var r = madd(n, V(repeating: -0.693_359_375), xc)
        r = madd(n, V(repeating: 2.121_944_4e-4), r)
        var p = V(repeating: 0.001_383_683_993_481_099_6)
        p = madd(p, r, V(repeating: 0.008_374_815_806_746_483))
        p = madd(p, r, V(repeating: 0.041_668_225_079_774_86))
        p = madd(p, r, V(repeating: 0.166_664_198_040_962_22))
        p = madd(p, r, V(repeating: 0.499_999_910_593_032_84))
        p = madd(p, r, V(repeating: 1))
        p = madd(p, r, V(repeating: 1))
        // 2ⁿ: (bits(t) << 23) = n << 23 (the magic's own bits shift out), + the bits of 1.0.
        let bits = (unsafeBitCast(t, to: SIMD16<UInt32>.self) &<< 23) &+ 0x3F80_0000
        let result = p * unsafeBitCast(bits, to: V.self)
        return result.replacing(with: 0, where: x .< lo)
    }

    /// 1 + erf(x/√2) = 2·Φ(x), the factor in exact GELU, without cancellation for x < 0:
    /// with z = |x|/√2, erfc(z) ≈ t·(a₁ + t·(a₂ + … + t·a₅))·e^{−z²}, t = 1/(1 + p·z)
    /// (Abramowitz & Stegun 7.1.26, |error| ≤ 1.5·10⁻⁷), then 2 − erfc(z) for x ≥ 0, erfc(z) else.
    @inline(__always)
    public static func onePlusErfScaled(_ x: V) -> V {
        let absX = unsafeBitCast(unsafeBitCast(x, to: SIMD16<UInt32>.self) & 0x7FFF_FFFF, to: V.self)
        let z = absX * 0.707_106_77
        let t = 1 / madd(z, V(repeating: 0.327_591_1), V(repeating: 1))
        var poly = V(repeating: 1.061_405_429)
        poly = madd(poly, t, V(repeating: -1.453_152_027))
        poly = madd(poly, t, V(repeating: 1.421_413_741))
        poly = madd(poly, t, V(repeating: -0.284_496_736))
        poly = madd(poly, t, V(repeating: 0.254_829_592))
        let q = poly * t * VectorMath.exp(V() - z * z)
        return (2 - q).replacing(with: q, where: x .< 0)
    }

    /// Loads `count` < 16 values, the rest of the vector filled with `pad`.
    @inline(__always)
    static func loadPartial(_ p: UnsafePointer<Float>, _ count: Int, pad: Float) -> V {
        var v = V(repeating: pad)
        for i in 0..<count { v[i] = p[i] }
        return v
    }

    @inline(__always)
    static func storePartial(_ v: V, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
        for i in 0..<count { p[i] = v[i] }
    }

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }

    @inline(__always)
    static func store(_ v: V, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self)
    }

    /// Applies `f` to `count` values in place, 16 at a time; the tail goes through the same `f`
    /// on a padded vector, so every element sees exactly the same arithmetic.
    @inline(__always)
    static func map(_ x: UnsafeMutablePointer<Float>, count: Int, pad: Float = 0, _ f: (V) -> V) {
        var i = 0
        while i + 16 <= count {
            store(f(load(x + i)), x + i)
            i += 16
        }
        if i < count { storePartial(f(loadPartial(x + i, count - i, pad: pad)), x + i, count - i) }
    }
}

extension VectorMath {
    /// eˣ over an array (for specs and notebooks): the same code the kernels run.
    public static func exp(_ xs: [Float]) -> [Float] {
        var out = xs
        if xs.isEmpty { return out }
        out.withUnsafeMutableBufferPointer { map($0.baseAddress!, count: xs.count) { exp($0) } }
        return out
    }
}
