import DecoderSpec
import Foundation
import SpecSupport
import Testing

/// The optimized AdamW update and gradient norm (16 lanes) against their scalar references and
/// against independent values: the closed-form update in Double and Σ g² in Double.
@Suite("AdamW and the gradient norm: optimized vs naive vs closed form")
struct AdamWPathSpecs {
    static func values(_ n: Int, seed: UInt64, scale: Float) -> [Float] {
        var rng = SeededRNG(seed: seed)
        return (0..<n).map { _ in rng.uniform(-scale, scale) }
    }

    /// Every lane takes the reference's operations in order (no FMA), so the optimized update is
    /// bitwise the naive one: over sizes around the 16-lane width and one above the 2¹⁶ threshold
    /// where `threads` > 1 cuts tensors into chunks, with decay (the matrix) and without (the vector).
    @Test("AdamW: optimized update is bitwise the naive one (odd sizes, decay and no decay, 1 and 2 threads)",
          arguments: [1, 15, 16, 17, 33, 70_003])
    func bitwise(size: Int) throws {
        for threads in [1, 2] {
            let w0 = Self.values(2 * size, seed: 1, scale: 2), b0 = Self.values(size, seed: 2, scale: 2)
            var results: [Pair] = []
            for path in [KernelPath.naive, .optimized] {
                var model = Pair(weight: w0, bias: b0)
                var opt = try AdamW(weightDecay: 0.1)
                for t in 0..<3 {
                    let g = Pair(weight: Self.values(2 * size, seed: 10 + UInt64(t), scale: 0.5), bias: Self.values(size, seed: 20 + UInt64(t), scale: 0.5))
                    opt.update(&model, gradient: g, learningRate: 1e-2 * Double(t + 1), threads: threads, path: path)
                }
                results.append(model)
            }
            let same = zip(results[0].weight + results[0].bias, results[1].weight + results[1].bias).allSatisfy { $0.bitPattern == $1.bitPattern }
            #expect(same, "size \(size), \(threads) thread(s): optimized AdamW differs from naive")
        }
    }

    /// The optimized update against AdamW by hand in Double (OptimizerSpecs.closedForm), on tensors
    /// long enough for the 16-lane loop (34 and 17 values). Tolerance as OptimizerSpecs' 4-step check:
    /// ~10 Float operations per step on θ = O(1), update terms ≤ η; 10⁻⁶ ≈ 10 ULPs of θ ≈ 1.
    @Test("AdamW, optimized: 4 steps equal the closed-form update in Double (vectors of 34 and 17 values)")
    func closedForm() throws {
        let w0 = Self.values(34, seed: 3, scale: 2), b0 = Self.values(17, seed: 4, scale: 2)
        let gw = (0..<4).map { Self.values(34, seed: 30 + UInt64($0), scale: 0.5) }, gb = (0..<4).map { Self.values(17, seed: 40 + UInt64($0), scale: 0.5) }
        let eta = [1e-2, 2e-2, 3e-2, 1e-2], lambda = 0.1
        var model = Pair(weight: w0, bias: b0)
        var opt = try AdamW(weightDecay: lambda)
        for t in 0..<4 { opt.update(&model, gradient: Pair(weight: gw[t], bias: gb[t]), learningRate: eta[t], path: .optimized) }
        let expectedW = OptimizerSpecs.closedForm(theta0: w0.doubles, gradients: gw.map(\.doubles), eta: eta, lambda: lambda, decays: true)
        let expectedB = OptimizerSpecs.closedForm(theta0: b0.doubles, gradients: gb.map(\.doubles), eta: eta, lambda: lambda, decays: false)
        let v = compare(model.weight, expectedW, .absolute(1e-6), "AdamW weights").and(compare(model.bias, expectedB, .absolute(1e-6), "AdamW bias"))
        #expect(v.passed, "\(v)")
    }

    /// The trainer clips inside the update's pass (`gradientScale:` = `GradientClipping.factor`)
    /// instead of a clipping pass of its own. Both multiply each g by the same Float factor, rounded
    /// once, so the result must be bitwise clip-then-update: on both paths, 1 and 2 threads, a size
    /// above the 2¹⁶ chunking threshold, 3 steps with norms above the threshold (clipped) and one
    /// below (factor exactly 1, the gradient untouched).
    @Test("AdamW with the clip factor in its pass is bitwise clipping then updating (naive, optimized; 1 and 2 threads)",
          arguments: [17, 70_003])
    func clipInsideUpdate(size: Int) throws {
        for path in [KernelPath.naive, .optimized] {
            for threads in [1, 2] {
                let w0 = Self.values(2 * size, seed: 7, scale: 2), b0 = Self.values(size, seed: 8, scale: 2)
                var separate = Pair(weight: w0, bias: b0), fused = separate
                var opt1 = try AdamW(weightDecay: 0.1), opt2 = opt1
                for t in 0..<4 {
                    // Steps 0–2: ‖g‖ ≫ 1 (clipped); step 3: ‖g‖ < 1 (factor 1).
                    let scale: Float = t == 3 ? 1e-4 : 0.5
                    let g = Pair(weight: Self.values(2 * size, seed: 50 + UInt64(t), scale: scale), bias: Self.values(size, seed: 60 + UInt64(t), scale: scale))
                    let norm = GradientClipping.globalNorm(g, threads: threads)
                    #expect((norm > 1) == (t < 3), "step \(t): ‖g‖ = \(norm) on the wrong side of the threshold")
                    var clipped = g
                    GradientClipping.clip(&clipped, maxNorm: 1, knownNorm: norm, threads: threads)
                    opt1.update(&separate, gradient: clipped, learningRate: 1e-2, threads: threads, path: path)
                    let factor = GradientClipping.factor(norm: norm, maxNorm: 1)
                    #expect((factor == 1) == (t == 3), "step \(t): factor \(factor)")
                    opt2.update(&fused, gradient: g, learningRate: 1e-2, threads: threads, path: path, gradientScale: factor)
                }
                let same = zip(separate.weight + separate.bias, fused.weight + fused.bias).allSatisfy { $0.bitPattern == $1.bitPattern }
                #expect(same, "size \(size), \(path), \(threads) thread(s): the fused clip differs from clip-then-update")
            }
        }
    }

    /// The update with a gradient scale s against AdamW by hand in Double on the gradients s·g: the
    /// one added rounding (s·g in Float, ≤ u relative) moves m̂/√v̂ by ≲ 2u, far inside the 10⁻⁶
    /// absolute tolerance of `closedForm` (derived there).
    @Test("AdamW with a gradient scale equals the closed-form update on the scaled gradients, in Double")
    func scaledClosedForm() throws {
        let w0 = Self.values(34, seed: 9, scale: 2), b0 = Self.values(17, seed: 10, scale: 2)
        let gw = (0..<4).map { Self.values(34, seed: 70 + UInt64($0), scale: 3) }, gb = (0..<4).map { Self.values(17, seed: 80 + UInt64($0), scale: 3) }
        let eta = [1e-2, 2e-2, 3e-2, 1e-2], lambda = 0.1, s: [Float] = [0.25, 0.1, 1, 0.5]
        for path in [KernelPath.naive, .optimized] {
            var model = Pair(weight: w0, bias: b0)
            var opt = try AdamW(weightDecay: lambda)
            for t in 0..<4 { opt.update(&model, gradient: Pair(weight: gw[t], bias: gb[t]), learningRate: eta[t], path: path, gradientScale: s[t]) }
            let expectedW = OptimizerSpecs.closedForm(theta0: w0.doubles, gradients: (0..<4).map { t in gw[t].map { Double($0) * Double(s[t]) } },
                                                      eta: eta, lambda: lambda, decays: true)
            let expectedB = OptimizerSpecs.closedForm(theta0: b0.doubles, gradients: (0..<4).map { t in gb[t].map { Double($0) * Double(s[t]) } },
                                                      eta: eta, lambda: lambda, decays: false)
            let v = compare(model.weight, expectedW, .absolute(1e-6), "\(path) weights").and(compare(model.bias, expectedB, .absolute(1e-6), "\(path) bias"))
            #expect(v.passed, "\(v)")
        }
    }

    /// ‖g‖² against Σ Double(g)² (exact to 2⁻⁵³ per term here). Nonnegative terms: a Float sum of k
    /// squares is within (k + 1)·u of the exact (u = 2⁻²⁴; k − 1 additions and the squares' roundings),
    /// so the optimized norm² (16 lanes of ≤ 64 squares per 1024-block, lanes and blocks in Double) is
    /// within 65u·S and the naive one (1024 squares per block) within 1025u·S; the norm within half.
    /// Sizes around the lane width and the block of 1024; one tensor of 10²⁰'s, whose Float squares
    /// overflow, must be measured (Double fallback) on both paths.
    @Test("Gradient norm, naive and optimized vs Σ g² in Double: odd sizes, block edges, an overflowing block",
          arguments: [0, 1, 15, 17, 1023, 1024, 1025, 5000])
    func norm(size: Int) {
        let u = 0x1p-24
        let g = Pair(weight: Self.values(2 * size, seed: 5, scale: 3), bias: Self.values(size, seed: 6, scale: 1e-3))
        let exact = (g.weight + g.bias).reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        for (path, k) in [(KernelPath.naive, 1025.0), (.optimized, 65.0)] {
            for threads in [1, 2] {
                let n = GradientClipping.globalNorm(g, threads: threads, path: path)
                #expect(abs(n - exact) <= k * u / 2 * exact + 1e-300, "size \(size) \(path) \(threads)T: ‖g‖ \(n) vs \(exact)")
            }
        }
        let big = Pair(weight: [Float](repeating: 1e20, count: 2 * max(size, 1)), bias: [1])
        let f = Double(Float(1e20)), bigExact = (Double(2 * max(size, 1)) * f * f + 1).squareRoot()
        for path in [KernelPath.naive, .optimized] {
            let n = GradientClipping.globalNorm(big, path: path)
            #expect(n.isFinite && abs(n - bigExact) <= 1e-12 * bigExact, "overflowing block, \(path): \(n) vs \(bigExact)")
        }
    }
}
