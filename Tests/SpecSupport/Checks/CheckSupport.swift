// Shared helpers of the reusable checks (Tests/SpecSupport/Checks). Each check takes the
// implementation under test as a closure and returns a `Verdict`, so the same check runs against
// the real code (must pass) and against the bug-zoo variants (must fail). See docs/bug-zoo.md.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import GSLOracle
import TensorCore

public enum CheckSupport {
    /// u = 2⁻²⁴: the unit roundoff of Float (half an ulp of 1).
    public static let unitRoundoff = 0x1p-24

    /// e^x from GSL (the oracle), with exact 0 below e^−700 where gsl_sf_exp_e reports underflow.
    public static func exp(_ x: Double) -> Double {
        if x == -.infinity || x < -700 { return 0 }
        return (try? GSL.exp(x)) ?? Darwinless.exp(x)
    }

    public static func log(_ x: Double) -> Double { (try? GSL.log(x)) ?? Darwinless.log(x) }

    /// A seeded matrix from GSL's generator (independent of the library's RNG).
    static func matrix(_ rows: Int, _ cols: Int, seed: UInt, range: ClosedRange<Float> = -1...1) -> Matrix {
        Inputs.matrix(rows: rows, cols: cols, seed: seed, range: range)
    }

    /// Runs `body`, turning a thrown error into a failing verdict that names it.
    static func guarded(_ context: String, _ body: () throws -> Verdict) -> Verdict {
        do { return try body() } catch { return .fail("threw \(error). \(context)") }
    }

    /// Softmax of `z` in Double with the GSL exponential (−∞ entries get exactly 0).
    public static func softmax(_ z: [Double]) -> [Double] {
        let m = z.max() ?? 0
        if m == -.infinity { return z.map { _ in 0 } }
        let e = z.map { exp($0 - m) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }
}

/// libm, for the rare fallback when GSL reports a range error on a finite argument.
enum Darwinless {
    public static func exp(_ x: Double) -> Double {
        #if canImport(Glibc)
        return Glibc.exp(x)
        #else
        return Darwin.exp(x)
        #endif
    }
    public static func log(_ x: Double) -> Double {
        #if canImport(Glibc)
        return Glibc.log(x)
        #else
        return Darwin.log(x)
        #endif
    }
}
