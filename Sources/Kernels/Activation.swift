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
    public enum Variant: String, CaseIterable, Sendable {
        case naive
        /// Identical to naive except: SIMD, with vectorized erf/tanh approximations.
        case optimized
    }

    public enum Function: String, CaseIterable, Sendable {
        case relu, gelu, geluTanh
    }

    /// In place over `count` contiguous values.
    public static func apply(_ function: Function, _ variant: Variant, _ x: UnsafeMutablePointer<Float>, count: Int) {
        // TODO(issue 3): optimized path.
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
}
