#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The SwiGLU gate (Shazeer 2020, "GLU Variants Improve Transformer"; LLaMA's FFN). See docs/kernels.md, "SwiGLU".
///
///     SiLU(a) = a·σ(a) = a / (1 + e^(−a)),      h = SiLU(a) ⊙ b
///     SwiGLU FFN(x) = W₂ (SiLU(W₁x) ⊙ W₃x)      (a = W₁x, the gate; b = W₃x, the up projection)
///
/// This kernel is the elementwise h; the three matrix products are GEMMs (`SwiGLUFeedForward`).
public enum SwiGLUKernel {
    // Paths (`KernelPath`):
    // - `.naive`: a / (1 + expf(−a)) · b per element with libm's expf.
    // - `.optimized` (= `.parallel`): identical to naive except: 16 lanes at a time with
    //   `VectorMath.exp` (≤ 3 ULPs) instead of expf.

    /// out[i] = SiLU(gate[i]) · up[i] for i < count (out may alias gate or up).
    public static func apply(_ path: KernelPath, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
                             out: UnsafeMutablePointer<Float>, count: Int) {
        precondition(count >= 0, "SwiGLU count must be non-negative")
        KernelRecorder.record(.swiGLU, path)
        if path == .naive {
            for i in 0..<count { out[i] = gate[i] / (1 + expf(-gate[i])) * up[i] }
            return
        }
        typealias V = SIMD16<Float>
        var i = 0
        while i + 16 <= count {
            let a = VectorMath.load(gate + i)
            VectorMath.store(a / (1 + VectorMath.exp(-a)) * VectorMath.load(up + i), out + i)
            i += 16
        }
        if i < count {
            let a = VectorMath.loadPartial(gate + i, count - i, pad: 0)
            VectorMath.storePartial(a / (1 + VectorMath.exp(-a)) * VectorMath.loadPartial(up + i, count - i, pad: 0), out + i, count - i)
        }
    }
}
