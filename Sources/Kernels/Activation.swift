#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Pointwise activations. See docs/kernels.md.
///
///     ReLU(x)      = max(0, x)
///     GELU(x)      = x · Φ(x) = x/2 · (1 + erf(x/√2))                      (exact; BERT's "gelu")
///     GELU_tanh(x) = x/2 · (1 + tanh(√(2/π) · (x + 0.044715 x³)))           (GPT-2's "gelu_new")
public enum Activation {
    // Paths (`KernelPath`): `.naive` is the formula with libm's erf/tanh; `.optimized` and
    // `.parallel` are identical to naive except: SIMD, with vectorized erf/tanh approximations.

    public enum Function: String, CaseIterable, Sendable {
        case relu, gelu, geluTanh
    }

    /// In place over `count` contiguous values.
    public static func apply(_ function: Function, _ path: KernelPath, _ x: UnsafeMutablePointer<Float>, count: Int) {
        precondition(count >= 0, "activation count must be non-negative")
        KernelRecorder.record(.activation, path)
        if path != .naive { optimized(function, x, count: count); return }
        switch function {
        case .relu:
            for i in 0..<count { x[i] = x[i] < 0 ? 0 : x[i] }  // NaN stays NaN
        case .gelu:
            let invSqrt2 = Float(1 / 2.0.squareRoot())
            for i in 0..<count { x[i] = 0.5 * x[i] * (1 + erff(x[i] * invSqrt2)) }
        case .geluTanh:
            let c = Float((2 / Double.pi).squareRoot())
            for i in 0..<count {
                let v = x[i]
                x[i] = 0.5 * v * (1 + tanhf(c * (v + 0.044715 * v * v * v)))
            }
        }
    }

    /// Identical to naive except: 16 lanes at a time (SIMD16<Float>), and
    /// - ReLU: compare-and-select (bitwise equal to naive, NaN and −0 preserved);
    /// - GELU: 1 + erf(x/√2) by `VectorMath.onePlusErfScaled` (A&S 7.1.26, |Δerf| ≤ 1.5·10⁻⁷,
    ///   computed as erfc for x < 0, so no cancellation in the negative tail);
    /// - GELU_tanh: the identity ½x(1 + tanh u) = x / (1 + e^{−2u}) with `VectorMath.exp`
    ///   (again no cancellation for x < 0).
    static func optimized(_ function: Function, _ x: UnsafeMutablePointer<Float>, count: Int) {
        typealias V = SIMD16<Float>
        switch function {
        case .relu:
            VectorMath.map(x, count: count) { $0.replacing(with: 0, where: $0 .< 0) }
        case .gelu:
            VectorMath.map(x, count: count) { v in 0.5 * v * VectorMath.onePlusErfScaled(v) }
        case .geluTanh:
            let c = Float((2 / Double.pi).squareRoot())
            VectorMath.map(x, count: count) { v in
                let u = c * (v + 0.044715 * v * v * v)
                return v / (1 + VectorMath.exp(-2 * u))
            }
        }
    }
}
