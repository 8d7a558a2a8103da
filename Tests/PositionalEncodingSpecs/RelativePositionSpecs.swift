// RoPE and ALiBi (docs/positional-encoding.md, "RoPE" and "ALiBi"; bounds in docs/tolerances.md).
import DecoderSpec
import Foundation
import GSLOracle
import SpecSupport
import Testing

/// The library's RoPE on one path, as a check's implementation under test.
func libraryRoPE(_ path: KernelPath) -> RoPEChecks.Rotary {
    { x, d, offset, base, convention in
        try RotaryEmbedding(headWidth: d, base: base, convention: convention).apply(to: x, positionOffset: offset, path: path)
    }
}

/// PyTorch's way, for the spec of the Float bound: θ_i and m·θ_i in Float, then sin/cos of the Float angle.
func floatAngleRoPE(_ x: Matrix, _ d: Int, _ offset: Int, _ base: Double, _ convention: RotaryEmbedding.Convention) -> Matrix {
    var y = x
    for r in 0..<x.rows {
        for h in 0..<(x.cols / d) {
            for i in 0..<(d / 2) {
                let angle = Float(offset + r) * Float(1 / pow(base, 2 * Double(i) / Double(d)))
                let (c, s) = (Float(cos(Double(angle))), Float(sin(Double(angle))))
                let (ia, ib) = RoPEKernel.pair(i, headWidth: d, convention)
                let (a, b) = (x[r, h * d + ia], x[r, h * d + ib])
                y[r, h * d + ia] = a * c - b * s
                y[r, h * d + ib] = a * s + b * c
            }
        }
    }
    return y
}

@Suite("RoPE against rotation matrices from gsl_sf_sin / gsl_sf_cos")
struct RoPESpecs {
    @Test("Every path, both conventions, matches the GSL rotation at positions up to 10⁵ and bases 10⁴, 5·10⁵",
          arguments: KernelPath.allCases)
    func againstGSL(path: KernelPath) {
        for convention in RotaryEmbedding.Convention.allCases {
            for (i, (offset, base)) in [(0, 10_000.0), (1_000, 10_000), (99_990, 10_000), (31_000, 500_000)].enumerated() {
                for d in [2, 8, 18, 64] {
                    let v = RoPEChecks.matchesGSL(libraryRoPE(path), rows: 10, heads: 3, headWidth: d, positionOffset: offset, base: base,
                                                  convention: convention, seed: UInt(100 + 10 * i + d))
                    #expect(v.passed, "\(path): \(v)")
                }
            }
        }
    }

    @Test("The Float-angle bound is the right one: Float angles pass it and fail the Double-angle bound at m ≈ 10⁵")
    func floatAngleBound() {
        let loose = RoPEChecks.matchesGSL(floatAngleRoPE, rows: 10, heads: 2, headWidth: 64, positionOffset: 99_990,
                                          convention: .halfSplit, seed: 7, angleUnitRoundoff: 2 * CheckSupport.unitRoundoff)
        #expect(loose.passed, "\(loose)")
        let tight = RoPEChecks.matchesGSL(floatAngleRoPE, rows: 10, heads: 2, headWidth: 64, positionOffset: 99_990, convention: .halfSplit, seed: 7)
        #expect(!tight.passed, "Float angles at m ≈ 10⁵ should miss the library's bound")
    }

    @Test("Naive and optimized are bitwise equal over widths around the SIMD width, heads and offsets")
    func naiveEqualsOptimized() throws {
        for convention in RotaryEmbedding.Convention.allCases {
            for d in [2, 4, 14, 16, 30, 32, 34, 62, 64, 66, 128] {
                for (heads, rows, offset) in [(1, 1, 0), (3, 7, 5), (2, 17, 4_093)] {
                    let x = Inputs.matrix(rows: rows, cols: heads * d, seed: UInt(d * 31 + heads))
                    let rope = try RotaryEmbedding(headWidth: d, convention: convention)
                    let naive = try rope.apply(to: x, positionOffset: offset, path: .naive)
                    let optimized = try rope.apply(to: x, positionOffset: offset, path: .optimized)
                    #expect(naive.storage == optimized.storage, "\(convention) d \(d) heads \(heads) rows \(rows) offset \(offset)")
                }
            }
        }
    }

    @Test("⟨RoPE(q, m), RoPE(k, n)⟩ depends only on m − n, both conventions")
    func relativeProperty() {
        for convention in RotaryEmbedding.Convention.allCases {
            let v = RoPEChecks.scoreDependsOnlyOnOffset(libraryRoPE(.optimized), headWidth: 32, convention: convention,
                                                        pairs: [(0, 0), (5, 2), (2, 5), (100, 37)], shifts: [1, 17, 1_000, 50_000], seed: 9)
            #expect(v.passed, "\(v)")
        }
    }

    @Test("Half-split weights on interleaved code: wrong without the permutation, identical scores with it")
    func conventionsAndPermutation() throws {
        var rng = SeededRNG(seed: 11)
        let d = 16, heads = 2, width = d * heads
        let halfSplit = try RotaryEmbedding(headWidth: d, convention: .halfSplit)
        let interleaved = try RotaryEmbedding(headWidth: d, convention: .interleaved)
        let wq = rng.normalMatrix(rows: width, cols: width, std: 0.5), wk = rng.normalMatrix(rows: width, cols: width, std: 0.5)
        let x = Inputs.matrix(rows: 9, cols: width, seed: 12)
        func scores(_ rope: RotaryEmbedding, _ wq: Matrix, _ wk: Matrix) throws -> [Double] {
            let q = try rope.apply(to: x.matmul(wq, transposeOther: true, path: .naive)), k = try rope.apply(to: x.matmul(wk, transposeOther: true, path: .naive))
            var s: [Double] = []
            for h in 0..<heads {
                let qs = AttentionOracleChecks.slice(q, h * d, d), ks = AttentionOracleChecks.slice(k, h * d, d)
                s += try GSL.dgemm(transB: true, m: x.rows, n: x.rows, k: d, a: qs.storage.doubles, b: ks.storage.doubles)
            }
            return s
        }
        let reference = try scores(halfSplit, wq, wk)
        let permuted = try scores(interleaved, halfSplit.permutedRows(wq, to: .interleaved), halfSplit.permutedRows(wk, to: .interleaved))
        // The permuted run rotates the same pairs by the same Float c, s: the rotated vectors are a
        // permutation of the reference's, bit for bit, and the Double dot products sum the same products.
        let maxScore = reference.map(abs).max()!
        #expect(compare(permuted, reference, .absolute(1e-12 * maxScore)).passed)
        let unpermuted = try scores(interleaved, wq, wk)
        #expect(!compare(unpermuted, reference, .absolute(0.01 * maxScore)).passed, "skipping the permutation should change the scores")
        #expect(RoPEKernel.halfSplitToInterleaved(headWidth: 6) == [0, 3, 1, 4, 2, 5])
        #expect(RoPEKernel.interleavedToHalfSplit(headWidth: 6) == [0, 2, 4, 1, 3, 5])
        // Round trip: half-split → interleaved → half-split is the identity.
        #expect(try interleaved.permutedRows(halfSplit.permutedRows(wq, to: .interleaved), to: .halfSplit) == wq)
    }

    @Test("Bad RoPE input is a typed error")
    func errors() throws {
        #expect(throws: DecoderSpecError.self) { try RotaryEmbedding(headWidth: 7) }
        #expect(throws: DecoderSpecError.self) { try RotaryEmbedding(headWidth: 8, base: 1) }
        #expect(throws: DecoderSpecError.self) { try RotaryEmbedding(headWidth: 8).apply(to: Matrix(rows: 2, cols: 12)) }
        #expect(throws: DecoderSpecError.self) { try RotaryEmbedding(headWidth: 8).apply(to: Matrix(rows: 2, cols: 8), positionOffset: -1) }
        #expect(throws: DecoderSpecError.self) { try RotaryEmbedding(headWidth: 8).apply(to: Matrix(rows: 2, cols: 8), positionOffset: Int.max) }
        #expect(throws: DecoderSpecError.self) { try RotaryEmbedding(headWidth: 8).permutedRows(Matrix(rows: 6, cols: 4), to: .interleaved) }
    }
}

@Suite("ALiBi slopes and bias against their closed forms")
struct ALiBiSpecs {
    @Test("Slopes equal 2^(−8h/n) for powers of two and the reference code's interleaving otherwise (n = 1 … 64)")
    func slopes() throws {
        let v = ALiBiChecks.slopesMatchClosedForm({ try ALiBi.slopes(heads: $0) }, heads: Array(1...64))
        #expect(v.passed, "\(v)")
        // The published examples: 8 heads start at 1/2 with ratio 1/2; 12 heads append 2^(−0.5), 2^(−1.5), …
        #expect(try ALiBi.slopes(heads: 8) == [0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625, 0.0078125, 0.00390625])
        #expect(try ALiBi.slopes(heads: 12)[8] == Float(0.5.squareRoot()))
    }

    @Test("Bias is −m·|i + offset − j| exactly (an integer times a slope: one rounding), and zero on the diagonal")
    func bias() throws {
        for (slope, offset) in [(Float(0.5), 0), (0.0078125, 3), (Float(0.5.squareRoot()), 40)] {
            let b = try ALiBi.bias(slope: slope, queries: 5, keys: 50, queryOffset: offset)
            let ref = (0..<5).flatMap { i in (0..<50).map { j in -Double(slope) * Double(abs(i + offset - j)) } }
            #expect(compare(b.storage, ref, .ulps(0.5)).passed)
        }
        #expect(throws: DecoderSpecError.self) { try ALiBi.slopes(heads: 0) }
        #expect(throws: DecoderSpecError.self) { try ALiBi.bias(slope: .nan, queries: 1, keys: 1) }
    }

    @Test("ALiBi logits depend only on distance: with equal q and k rows, weights of a query over keys at the same distance are equal, on every path",
          arguments: KernelPath.allCases)
    func distanceOnly(path: KernelPath) throws {
        // Identical keys (and queries): q·k is the same for every pair, so the logits are c − m·(i − j):
        // the weight of key j seen from query i depends only on i − j — row i is row i+1 shifted.
        let t = 12, d = 8, heads = 4
        let row = GSLRandom(seed: 5).floats(d * heads, in: -1, 1)
        let x = try Matrix(rows: t, cols: d * heads, storage: (0..<t).flatMap { _ in row })
        let v = Inputs.matrix(rows: t, cols: d * heads, seed: 6)
        let slopes = try ALiBi.slopes(heads: heads)
        let out = try multiHeadAttention(q: x, k: x, v: v, heads: heads, mask: .causal(), alibiSlopes: slopes, path: path)
        // Reference: per head, weights ∝ 2^... computed in Double from the distance alone.
        for h in 0..<heads {
            for i in 0..<t {
                let logits = (0...i).map { j in -Double(slopes[h]) * Double(i - j) }
                let w = CheckSupport.softmax(logits)
                for c in 0..<d {
                    let expected = (0...i).reduce(0.0) { $0 + w[$1] * Double(v[$1, h * d + c]) }
                    // The attention bound, plus the bias: −m·(i − j) rounded once and scaled by log₂e in the fused
                    // kernel (3u relative on a logit ≤ m·i), which moves a weight by ≤ 2·3u·m·i relative.
                    let bound = AttentionOracleChecks.bound(q: x, k: x, v: v, headDimension: d) + 6 * CheckSupport.unitRoundoff * Double(i) * Double(slopes[h])
                    #expect(abs(Double(out[i, h * d + c]) - expected) <= bound, "\(path) head \(h) row \(i) col \(c)")
                }
            }
        }
    }
}
