import DecoderSpec
import GSLOracle
import SpecSupport
import Testing

/// bf16 rounding (round to nearest, ties to even) against bit patterns worked out by hand and
/// against an independent rule (the nearer of the two bf16 neighbours, by Double distance), and the
/// bf16 GEMV against GSL dgemm on the rounded weights.
@Suite("bf16: rounding (RNE) and the weight-only GEMV")
struct BFloat16Specs {
    /// Independent reference: the two bf16 values around a finite x are its truncation t (the top
    /// 16 bits) and the next bf16 away from zero t' (t's pattern + 1, which is ±∞ past the largest
    /// finite bf16, counted as ±2¹²⁸ as IEEE 754's overflow rule does). The nearer one in Double
    /// wins; at equal distance, the one whose pattern is even.
    static func reference(_ x: Float) -> UInt16 {
        let t = UInt16(x.bitPattern >> 16)
        let lo = Double(Float(bitPattern: UInt32(t) << 16))
        if lo == Double(x) { return t }
        let next = t &+ 1
        let hiFloat = Float(bitPattern: UInt32(next) << 16)
        let hi = hiFloat.isInfinite ? (x < 0 ? -0x1p128 : 0x1p128) : Double(hiFloat)
        let dLo = abs(Double(x) - lo), dHi = abs(hi - Double(x))
        if dLo < dHi { return t }
        if dHi < dLo { return next }
        return t & 1 == 0 ? t : next
    }

    @Test("exact bit patterns: ties to even, subnormals, ±∞, NaN, the largest finite values")
    func bitPatterns() {
        // (input bits, expected bf16 bits), each worked out by hand from the definition.
        let cases: [(UInt32, UInt16, String)] = [
            (0x3F80_0000, 0x3F80, "1 is a bf16"),
            (0x3F80_8000, 0x3F80, "1 + 2⁻⁸: a tie between 1 (even) and 1 + 2⁻⁷ (odd) → 1"),
            (0x3F81_8000, 0x3F82, "1 + 3·2⁻⁸: a tie between 1 + 2⁻⁷ (odd) and 1 + 2·2⁻⁷ (even) → up"),
            (0x3F80_8001, 0x3F81, "just above the tie → up"),
            (0x3F80_7FFF, 0x3F80, "just below the tie → down"),
            (0xBF80_8000, 0xBF80, "−(1 + 2⁻⁸): ties to even in magnitude, sign kept"),
            (0x3FFF_FFFF, 0x4000, "just below 2: rounds up into the next binade (carry into the exponent)"),
            (0x0000_0000, 0x0000, "+0"),
            (0x8000_0000, 0x8000, "−0"),
            (0x0000_0001, 0x0000, "smallest Float subnormal 2⁻¹⁴⁹ → +0 (below half of bf16's 2⁻¹³³)"),
            (0x0000_8000, 0x0000, "2⁻¹³⁴: a tie between 0 (even) and 2⁻¹³³ → 0"),
            (0x0001_8000, 0x0002, "3·2⁻¹³⁴: a tie between 2⁻¹³³ (odd) and 2·2⁻¹³³ → up"),
            (0x0000_8001, 0x0001, "just above half the smallest bf16 subnormal → 2⁻¹³³"),
            (0x007F_FFFF, 0x0080, "largest Float subnormal → the smallest normal bf16 2⁻¹²⁶"),
            (0x7F7F_7FFF, 0x7F7F, "below the largest finite bf16 plus half a spacing → the largest finite bf16"),
            (0x7F7F_8000, 0x7F80, "(2 − 2⁻⁸)·2¹²⁷: a tie between 0x7F7F (odd) and 2¹²⁸ → +∞"),
            (0x7F7F_FFFF, 0x7F80, "the largest finite Float → +∞"),
            (0xFF7F_FFFF, 0xFF80, "−(largest finite Float) → −∞"),
            (0x7F80_0000, 0x7F80, "+∞"),
            (0xFF80_0000, 0xFF80, "−∞"),
        ]
        for (bits, expected, what) in cases {
            let got = BFloat16.round(Float(bitPattern: bits))
            #expect(got == expected, "\(what): round(0x\(String(bits, radix: 16))) = 0x\(String(got, radix: 16)), expected 0x\(String(expected, radix: 16))")
        }
        // NaN stays NaN, whatever its payload: a signalling NaN whose payload sits in the dropped
        // bits (0x7F800001) would become +∞ under plain truncation.
        for bits: UInt32 in [0x7FC0_0000, 0xFFC0_0000, 0x7F80_0001, 0xFF80_0001, 0x7FFF_FFFF] {
            let h = BFloat16.round(Float(bitPattern: bits))
            #expect(BFloat16.widen(h).isNaN, "NaN 0x\(String(bits, radix: 16)) → 0x\(String(h, radix: 16))")
            #expect(h >> 15 == UInt16(bits >> 31), "NaN keeps its sign")
        }
        #expect(BFloat16.widen(0x3F80) == 1 && BFloat16.widen(0xC000) == -2 && BFloat16.widen(0x0001) == 0x1p-133)
    }

    @Test("round(x) is the nearer bf16 neighbour (ties to even), for 2²⁰ bit patterns spread over every binade and both signs")
    func matchesReference() {
        var mismatches = 0, first = ""
        var bits: UInt32 = 0
        // A stride of 4093 (odd, so every low-16-bit residue and both signs are visited), plus the
        // patterns around every tie.
        var patterns: [UInt32] = []
        for _ in 0..<(1 << 20) { patterns.append(bits); bits &+= 4093 }
        for upper: UInt32 in stride(from: 0, to: 0x1_0000, by: 97) {
            for low: UInt32 in [0x7FFF, 0x8000, 0x8001] { patterns.append(upper << 16 | low) }
        }
        for b in patterns {
            let x = Float(bitPattern: b)
            guard !x.isNaN else { continue }
            let got = BFloat16.round(x), want = Self.reference(x)
            if got != want {
                mismatches += 1
                if first.isEmpty { first = "0x\(String(b, radix: 16)): 0x\(String(got, radix: 16)) vs reference 0x\(String(want, radix: 16))" }
            }
        }
        #expect(mismatches == 0, "\(mismatches) mismatches, first \(first)")
    }

    @Test("relative error ≤ u/(1+u) with u = 2⁻⁸ in the normal range; ≤ 2⁻¹³⁴ absolute among subnormals; 2⁻⁹ is not a bound")
    func errorBound() {
        let u = 0x1p-8
        var worst = 0.0, failures: [String] = []
        var bits: UInt32 = 1
        for _ in 0..<(1 << 20) {
            bits &+= 4099
            let x = Float(bitPattern: bits)
            guard x.isFinite, x != 0 else { continue }
            let r = BFloat16.widen(BFloat16.round(x))
            guard r.isFinite else { continue }  // overflow to ±∞ is the rounding's other outcome, covered above
            let err = abs(Double(r) - Double(x))
            if abs(x) >= Float.leastNormalMagnitude {
                let rel = err / abs(Double(x))
                worst = max(worst, rel)
                if rel > u / (1 + u) { failures.append("x = \(x): relative error \(rel)") }
            } else if err > 0x1p-134 {
                failures.append("subnormal x = \(x): error \(err)")
            }
        }
        #expect(failures.isEmpty, "\(failures.count) over the bound, first \(failures.first ?? "")")
        // The bound is attained up to Float's grid: x = 1 + 2⁻⁸ − 2⁻²³ rounds down to 1 with
        // relative error ≈ 2⁻⁸, twice 2⁻⁹.
        let x = Float(bitPattern: 0x3F80_7FFF)
        let rel = abs(Double(BFloat16.widen(BFloat16.round(x))) - Double(x)) / Double(x)
        #expect(rel > 0x1p-9 && rel <= u / (1 + u), "witness: \(rel)")
        #expect(worst > 0x1p-9, "the sampled worst case \(worst) exceeds 2⁻⁹")
    }

    static let shapes: [(n: Int, k: Int)] = [(1, 1), (3, 5), (5, 7), (7, 17), (9, 23), (6, 31), (13, 33), (4, 100), (70, 255), (33, 775)]

    @Test("bf16 GEMV y = Ŵ·x, every path and width, vs GSL dgemm on the rounded weights", arguments: GEMVWidth.allCases)
    func gemv(width: GEMVWidth) throws {
        for (n, k) in Self.shapes {
            let seed = UInt(n * 313 + k)
            let x = Inputs.matrix(rows: 1, cols: k, seed: seed).storage
            let w = Inputs.matrix(rows: n, cols: k, seed: seed + 1)
            let h = BF16Matrix(rounding: w)
            let rounded = h.storage.map { Double(BFloat16.widen($0)) }
            // Exact (to Double) Σ_p ŵ_jp x_p: GSL on the rounded weights, so only summation order differs.
            let ref = try GSL.dgemm(transB: true, m: 1, n: n, k: k, a: x.doubles, b: rounded)
            // |fl(Σ ŵ x) − Σ ŵ x| ≤ γ_k Σ |ŵ x| for any summation order (products rounded or fused),
            // γ_k = k·u/(1 − k·u) ≤ (k + 2)·ε with ε = 2⁻²³ = 2u; per output j.
            let scale = (0..<n).map { j in (0..<k).reduce(0.0) { $0 + abs(rounded[j * k + $1] * Double(x[$1])) } }
            for path in KernelPath.allCases {
                var y = [Float](repeating: .nan, count: n)
                x.withUnsafeBufferPointer { px in
                    h.storage.withUnsafeBufferPointer { pw in
                        y.withUnsafeMutableBufferPointer { py in
                            BF16GEMV.multiply(path, width: width, n: n, k: k, x: px.baseAddress!, w: pw.baseAddress!, y: py.baseAddress!)
                        }
                    }
                }
                for j in 0..<n {
                    let bound = Double(k + 2) * Double(Float.ulpOfOne) * scale[j]
                    #expect(abs(Double(y[j]) - ref[j]) <= bound, "n=\(n) k=\(k) j=\(j) \(path) \(width): \(y[j]) vs \(ref[j]), bound \(bound)")
                }
            }
        }
    }

    /// The per-layer error of the weight-only bf16 path against the Float path on the same input:
    ///
    ///     |ŷ_j − y_j| ≤ |Σ (ŵ − w) x| + |fl-error of ŷ| + |fl-error of y|
    ///               ≤ u_b Σ|w x| + γ_k (Σ|ŵ x| + Σ|w x|),     u_b = 2⁻⁸,  γ_k ≤ (k + 2)·ε
    ///
    /// (|ŵ − w| ≤ u_b |w| per weight; the bias is added in Float to both and cancels to one more
    /// rounding each, ε·|ŷ_j| + ε·|y_j| — included.)
    @Test("Linear with bf16 weights: |ŷ − y| within u_b·Σ|w x| + γ_k(Σ|ŵ x| + Σ|w x|) of the Float Linear, one row and several")
    func linearBound() throws {
        var rng = SeededRNG(seed: 11)
        for (n, k) in [(7, 17), (48, 192), (192, 48), (64, 775)] {
            let lin = try Linear(inputSize: k, outputSize: n, std: 0.5, bias: true, rng: &rng)
            var lin2 = lin
            lin2.bias = (0..<n).map { Float($0) * 0.01 - 0.1 }
            let bf = lin2.roundingWeightToBF16()
            #expect(bf.weightBF16 != nil && lin2.weightBF16 == nil)
            let x = Inputs.matrix(rows: 3, cols: k, seed: UInt(n + k))
            for path in KernelPath.allCases {
                let y = try lin2(x, path: path)
                let yRows = try (0..<3).map { try bf(x.rows($0..<($0 + 1)), path: path) }   // one row: the bf16 GEMV
                let yAll = try bf(x, path: path)                                              // three rows: Float GEMM on Ŵ
                for t in 0..<3 {
                    for j in 0..<n {
                        var sw = 0.0, sh = 0.0
                        for p in 0..<k {
                            let xv = Double(x.storage[t * k + p])
                            sw += abs(Double(lin2.weight.storage[j * k + p]) * xv)
                            sh += abs(Double(bf.weight.storage[j * k + p]) * xv)
                        }
                        let yv = Double(y.storage[t * n + j])
                        for (what, got) in [("one row", Double(yRows[t].storage[j])), ("three rows", Double(yAll.storage[t * n + j]))] {
                            let eps = Double(Float.ulpOfOne)
                            let bound = 0x1p-8 * sw + Double(k + 2) * eps * (sh + sw) + eps * (abs(got) + abs(yv))
                            #expect(abs(got - yv) <= bound, "\(n)×\(k) \(path) \(what) t=\(t) j=\(j): |Δ| \(abs(got - yv)) > \(bound)")
                        }
                    }
                }
            }
        }
        // Changing the weight drops the stale bf16 copy.
        var changed = try Linear(inputSize: 4, outputSize: 2, rng: &rng).roundingWeightToBF16()
        changed.weight.storage[0] += 1
        #expect(changed.weightBF16 == nil)
    }
}
