// RMSNorm and the SwiGLU gate (docs/kernels.md, "RMSNorm" and "SwiGLU"; bounds in docs/tolerances.md).
import DecoderSpec
import GSLOracle
import SpecSupport
import Testing

func libraryRMSNorm(_ path: KernelPath) -> NormChecks.RMSNormFunction {
    { x, g, eps in try RMSNorm(gain: g, epsilon: eps)(x, path: path) }
}

func librarySwiGLU(_ path: KernelPath) -> NormChecks.GateFunction {
    { a, b in
        var out = a
        out.withUnsafeMutableBufferPointer { po in
            b.withUnsafeBufferPointer { pb in SwiGLUKernel.apply(path, gate: po.baseAddress!, up: pb.baseAddress!, out: po.baseAddress!, count: a.count) }
        }
        return out
    }
}

@Suite("RMSNorm against Σx² from GSL's dgemm")
struct RMSNormSpecs {
    @Test("Every path matches the Double reference over widths around the SIMD width and scales from 10⁻¹⁵ to 10²⁰",
          arguments: KernelPath.allCases)
    func againstGSL(path: KernelPath) {
        for (i, d) in [1, 2, 7, 15, 16, 17, 31, 32, 33, 64, 100, 768].enumerated() {
            for scale: Float in [1, 1e-15, 1e20] {
                let v = NormChecks.rmsNormMatchesGSL(libraryRMSNorm(path), rows: 3, d: d, scale: scale, seed: UInt(300 + i))
                #expect(v.passed, "\(path): \(v)")
            }
        }
    }

    @Test("Naive and optimized agree within the bound over many shapes (odd sizes included)")
    func naiveVersusOptimized() throws {
        for d in [1, 3, 16, 17, 32, 33, 48, 129] {
            for rows in [1, 5] {
                let x = Inputs.matrix(rows: rows, cols: d, seed: UInt(d + rows))
                let norm = try RMSNorm(gain: GSLRandom(seed: UInt(d)).floats(d, in: 0.5, 1.5))
                let naive = try norm(x, path: .naive), optimized = try norm(x, path: .optimized)
                // Both are within (d/2 + 8)·u relative of the exact value (NormChecks), so within twice that of each other.
                #expect(compare(optimized.storage, naive.storage, .relative(2 * (Double(d) / 2 + 8) * CheckSupport.unitRoundoff)).passed, "d \(d) rows \(rows)")
            }
        }
    }

    @Test("RMSNorm is LayerNorm without centring: for a zero-mean row with γ = g, β = 0 they agree")
    func zeroMeanEqualsLayerNorm() throws {
        let d = 24
        var row = GSLRandom(seed: 4).floats(d / 2, in: -2, 2)
        row += row.map { -$0 }  // mean exactly 0
        let x = try Matrix(rows: 1, cols: d, storage: row)
        let g = GSLRandom(seed: 5).floats(d, in: 0.5, 1.5)
        let rms = try RMSNorm(gain: g, epsilon: 1e-5)(x, path: .naive)
        let ln = try LayerNorm(gamma: g, beta: [Float](repeating: 0, count: d), epsilon: 1e-5)(x, path: .naive)
        #expect(compare(rms.storage, ln.storage.doubles, .relative(4 * CheckSupport.unitRoundoff)).passed)
    }

    @Test("Bad RMSNorm input is a typed error")
    func errors() throws {
        #expect(throws: DecoderSpecError.self) { try RMSNorm(gain: []) }
        #expect(throws: DecoderSpecError.self) { try RMSNorm(gain: [1], epsilon: 0) }
        #expect(throws: DecoderSpecError.self) { try RMSNorm(gain: [.nan]) }
        #expect(throws: DecoderSpecError.self) { try RMSNorm(width: 4)(Matrix(rows: 2, cols: 3)) }
        #expect(throws: DecoderSpecError.self) { try RMSNorm(width: 2)(Matrix(rows: 1, cols: 2, storage: [.infinity, 1])) }
    }
}

@Suite("SwiGLU against gsl_sf_exp")
struct SwiGLUSpecs {
    @Test("SiLU(a)·b on every path matches a·b/(1 + e^(−a)), including saturated tails", arguments: KernelPath.allCases)
    func againstGSL(path: KernelPath) {
        let v = NormChecks.swiGLUMatchesGSL(librarySwiGLU(path), seed: 21)
        #expect(v.passed, "\(path): \(v)")
    }

    @Test("Naive and optimized agree over lengths around the SIMD width")
    func naiveVersusOptimized() throws {
        for n in [1, 7, 15, 16, 17, 31, 33, 100] {
            let a = GSLRandom(seed: UInt(n)).floats(n, in: -10, 10), b = GSLRandom(seed: UInt(n + 1)).floats(n, in: -2, 2)
            let naive = try librarySwiGLU(.naive)(a, b), optimized = try librarySwiGLU(.optimized)(a, b)
            // Each within 8 ULPs of the exact value (NormChecks.swiGLUMatchesGSL): 16 of each other.
            #expect(compare(optimized, naive.map { Double($0) }, .ulps(16)).passed, "n \(n)")
        }
    }

    @Test("The SwiGLU FFN is W₂(SiLU(W₁x) ⊙ W₃x): against a Double reference from GSL's dgemm", arguments: KernelPath.allCases)
    func feedForward(path: KernelPath) throws {
        var rng = SeededRNG(seed: 8)
        let (d, f, t) = (12, 20, 5)
        let ffn = try SwiGLUFeedForward(modelWidth: d, feedForwardWidth: f, std: 0.3, rng: &rng)
        let x = Inputs.matrix(rows: t, cols: d, seed: 9)
        let y = try ffn(x, path: path)
        let a = try GSL.dgemm(transB: true, m: t, n: f, k: d, a: x.storage.doubles, b: ffn.gate.weight.storage.doubles)
        let b = try GSL.dgemm(transB: true, m: t, n: f, k: d, a: x.storage.doubles, b: ffn.up.weight.storage.doubles)
        let h = zip(a, b).map { $0 / (1 + CheckSupport.exp(-$0)) * $1 }
        let ref = try GSL.dgemm(transB: true, m: t, n: d, k: f, a: h, b: ffn.down.weight.storage.doubles)
        // First order, u = 2⁻²⁴: a, b within (d + 1)·u·Σ|x||w| (≤ (d + 1)·u·d·max|x|·max|w|); the gate's
        // own 8 ULPs; the down projection's (f + 1)·u relative to Σ|h||w₂|, plus Σ|w₂|·(error of h).
        let maxX = Double(x.storage.map(abs).max()!)
        let (maxW1, maxW3, maxW2) = (ffn.gate.weight.storage.map(abs).max()!, ffn.up.weight.storage.map(abs).max()!, ffn.down.weight.storage.map(abs).max()!)
        let (maxA, maxB) = (a.map(abs).max()!, b.map(abs).max()!)
        let u = CheckSupport.unitRoundoff
        let ea = Double(d + 1) * u * Double(d) * maxX * Double(maxW1), eb = Double(d + 1) * u * Double(d) * maxX * Double(maxW3)
        // |∂(SiLU(a)·b)/∂a| ≤ 1.1·|b|, |∂/∂b| ≤ |a|.
        let eh = 1.1 * maxB * ea + maxA * eb + 8 * u * maxA * maxB
        let maxH = h.map(abs).max()!
        let tol = Double(f) * Double(maxW2) * (eh + Double(f + 1) * u * maxH)
        #expect(compare(y.storage, ref, .absolute(tol), "SwiGLU FFN \(path)").passed)
        #expect(throws: DecoderSpecError.self) {
            try SwiGLUFeedForward(gate: ffn.gate, up: ffn.down, down: ffn.down)
        }
    }
}
