@preconcurrency import CGSL

/// Double-precision reference values computed with the GNU Scientific Library.
///
/// The oracle is what the specs, benchmarks and notebooks compare the library against; the
/// library itself never links GSL. Every call checks GSL's status and throws `GSLError` instead of
/// letting GSL's default handler abort the process (it is switched off once, on first use).
public enum GSL {
    /// GSL's default error handler calls abort(); turn it off exactly once, before any call.
    /// A `static let` initializer runs once, thread-safely, the first time it is read.
    static let handlerOff: Bool = {
        gsl_set_error_handler_off()
        return true
    }()

    @inline(__always) static func ready() { _ = handlerOff }

    /// `call` is an autoclosure: the description is built only on failure, not on every call.
    static func check(_ status: Int32, _ call: @autoclosure () -> String) throws(GSLError) {
        guard status == Int32(GSL_SUCCESS) else {
            throw GSLError(call: call(), status: status, message: String(cString: gsl_strerror(status)))
        }
    }

    // MARK: Elementary functions (gsl_sf_*_e, with GSL's own error estimate)

    /// sin(x) by `gsl_sf_sin_e`.
    public static func sin(_ x: Double) throws(GSLError) -> Double { try sf(x, "gsl_sf_sin_e", gsl_sf_sin_e) }
    /// cos(x) by `gsl_sf_cos_e`.
    public static func cos(_ x: Double) throws(GSLError) -> Double { try sf(x, "gsl_sf_cos_e", gsl_sf_cos_e) }
    /// exp(x) by `gsl_sf_exp_e`. Overflow (x > ~709.78) is an error, as in GSL.
    public static func exp(_ x: Double) throws(GSLError) -> Double { try sf(x, "gsl_sf_exp_e", gsl_sf_exp_e) }
    /// erf(x) by `gsl_sf_erf_e`.
    public static func erf(_ x: Double) throws(GSLError) -> Double { try sf(x, "gsl_sf_erf_e", gsl_sf_erf_e) }
    /// log(x) by `gsl_sf_log_e` (x > 0).
    public static func log(_ x: Double) throws(GSLError) -> Double { try sf(x, "gsl_sf_log_e", gsl_sf_log_e) }
    /// tanh(x) via exp: (e^{2x} − 1)/(e^{2x} + 1), with `gsl_expm1` for accuracy near 0.
    public static func tanh(_ x: Double) -> Double {
        ready()
        // For |x| ≥ 20, tanh(x) rounds to ±1 in Double (1 − tanh 20 ≈ 8e-18 < ulp(1)/2), and
        // expm1(2|x|) would overflow to ∞/∞ = NaN beyond |x| ≈ 355.
        if Swift.abs(x) >= 20 { return x < 0 ? -1 : 1 }
        let e = gsl_expm1(2 * Swift.abs(x))
        let t = e / (e + 2)
        return x < 0 ? -t : t
    }

    private static func sf(
        _ x: Double, _ name: String, _ f: (Double, UnsafeMutablePointer<gsl_sf_result>?) -> Int32
    ) throws(GSLError) -> Double {
        ready()
        var result = gsl_sf_result()
        try check(f(x, &result), "\(name)(\(x))")
        return result.val
    }

    // MARK: BLAS

    /// C = alpha·op(A)·op(B) + beta·C with `gsl_blas_dgemm`, row-major.
    /// - Parameters: `a` is [m, k] (or [k, m] when `transA`), `b` is [k, n] (or [n, k] when
    ///   `transB`), `c` is [m, n] and may be empty when `beta == 0`.
    public static func dgemm(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
        alpha: Double = 1, a: [Double], b: [Double], beta: Double = 0, c: [Double] = []
    ) throws(GSLError) -> [Double] {
        ready()
        guard m > 0, n > 0, k > 0, a.count == m * k, b.count == k * n, c.isEmpty || c.count == m * n else {
            throw GSLError(call: "dgemm", status: Int32(GSL_EBADLEN), message: "sizes m=\(m) n=\(n) k=\(k) do not match buffers a=\(a.count) b=\(b.count) c=\(c.count)")
        }
        var a = a, b = b
        var out = c.isEmpty ? [Double](repeating: 0, count: m * n) : c
        let status: Int32 = a.withUnsafeMutableBufferPointer { pa in
            b.withUnsafeMutableBufferPointer { pb in
                out.withUnsafeMutableBufferPointer { pc in
                    var va = transA ? gsl_matrix_view_array(pa.baseAddress, k, m) : gsl_matrix_view_array(pa.baseAddress, m, k)
                    var vb = transB ? gsl_matrix_view_array(pb.baseAddress, n, k) : gsl_matrix_view_array(pb.baseAddress, k, n)
                    var vc = gsl_matrix_view_array(pc.baseAddress, m, n)
                    return gsl_blas_dgemm(transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                                          alpha, &va.matrix, &vb.matrix, beta, &vc.matrix)
                }
            }
        }
        try check(status, "gsl_blas_dgemm")
        return out
    }

    /// Single-precision GEMM by GSL's reference CBLAS (`cblas_sgemm` of libgslcblas), row-major,
    /// raw pointers. This is the "GSL" column of the benchmarks, not an oracle.
    public static func sgemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Double-precision GEMM by GSL's reference CBLAS, raw pointers (benchmarks).
    public static func dgemmRaw(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Double,
        a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
        beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        cblas_dgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    // MARK: Statistics

    /// Arithmetic mean by `gsl_stats_mean`.
    public static func mean(_ x: [Double]) -> Double {
        ready()
        return x.withUnsafeBufferPointer { gsl_stats_mean($0.baseAddress, 1, $0.count) }
    }

    /// Population variance (divide by n) about `mean`, by `gsl_stats_variance_with_fixed_mean`.
    /// This is LayerNorm's variance.
    public static func populationVariance(_ x: [Double], mean: Double) -> Double {
        ready()
        return x.withUnsafeBufferPointer { gsl_stats_variance_with_fixed_mean($0.baseAddress, 1, $0.count, mean) }
    }

    /// Sample variance (divide by n − 1) by `gsl_stats_variance` — torch.var's default, and the
    /// wrong one for LayerNorm.
    public static func sampleVariance(_ x: [Double]) -> Double {
        ready()
        return x.withUnsafeBufferPointer { gsl_stats_variance($0.baseAddress, 1, $0.count) }
    }

    // MARK: Calculus

    /// df/dx at `x` by `gsl_deriv_central` with step `h`; returns the value and GSL's error estimate.
    public static func derivative(at x: Double, step h: Double = 1e-4, _ f: @escaping (Double) -> Double)
        throws(GSLError) -> (value: Double, abserr: Double)
    {
        ready()
        final class Box { let f: (Double) -> Double; init(_ f: @escaping (Double) -> Double) { self.f = f } }
        let box = Box(f)
        let params = Unmanaged.passRetained(box).toOpaque()
        defer { Unmanaged<Box>.fromOpaque(params).release() }
        var function = gsl_function(
            function: { x, p in Unmanaged<Box>.fromOpaque(p!).takeUnretainedValue().f(x) }, params: params)
        var result = 0.0, abserr = 0.0
        try check(gsl_deriv_central(&function, x, h, &result, &abserr), "gsl_deriv_central")
        return (result, abserr)
    }

    // MARK: Distributions

    /// Upper tail Q(x; ν) = P(χ²_ν > x) by `gsl_cdf_chisq_Q` — the p-value of a chi-square test.
    public static func chiSquareQ(_ x: Double, degreesOfFreedom nu: Double) -> Double {
        ready()
        return gsl_cdf_chisq_Q(x, nu)
    }

    /// The lower quantile x with P(χ²_ν ≤ x) = p, by `gsl_cdf_chisq_Pinv` — e.g. the factor of a
    /// one-sided upper confidence bound on a standard deviation estimated from ν samples.
    public static func chiSquareQuantile(_ p: Double, degreesOfFreedom nu: Double) -> Double {
        ready()
        return gsl_cdf_chisq_Pinv(p, nu)
    }
}

/// A GSL call that returned a non-success status.
public struct GSLError: Error, CustomStringConvertible, Sendable {
    public let call: String
    public let status: Int32
    public let message: String
    public var description: String { "\(call) failed with GSL status \(status): \(message)" }
}

/// A reproducible uniform generator from GSL (`gsl_rng_mt19937`), independent of the library's own
/// RNG, so test inputs do not share a generator with the code under test.
public final class GSLRandom {
    private let rng: UnsafeMutablePointer<gsl_rng>
    public let seed: UInt

    public init(seed: UInt) {
        GSL.ready()
        self.seed = seed
        rng = gsl_rng_alloc(gsl_rng_mt19937)!
        gsl_rng_set(rng, seed)
    }
    deinit { gsl_rng_free(rng) }

    /// Uniform in [0, 1).
    public func uniform() -> Double { gsl_rng_uniform(rng) }
    /// Uniform in [lo, hi).
    public func uniform(_ lo: Double, _ hi: Double) -> Double { lo + (hi - lo) * gsl_rng_uniform(rng) }
    /// N(0, σ²) by `gsl_ran_gaussian`.
    public func gaussian(sigma: Double = 1) -> Double { gsl_ran_gaussian(rng, sigma) }
    /// `count` floats uniform in [lo, hi).
    public func floats(_ count: Int, in lo: Float = -1, _ hi: Float = 1) -> [Float] {
        (0..<count).map { _ in Float(uniform(Double(lo), Double(hi))) }
    }
    /// An integer uniform in 0..<n.
    public func int(below n: Int) -> Int { Int(gsl_rng_uniform_int(rng, UInt(n))) }
}
