#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Rotary position embedding (RoPE, Su et al. 2021, "RoFormer"). See docs/positional-encoding.md, "RoPE".
///
/// Each head's vector x ∈ ℝ^{d_head} (d_head even) at position m is split into d_head/2 pairs
/// (a_i, b_i), and pair i is rotated by the angle m·θ_i:
///
///     θ_i = base^(−2i/d_head),   i = 0 ..< d_head/2               (base = 10000 in RoFormer and LLaMA)
///     a'_i = a_i·cos(m·θ_i) − b_i·sin(m·θ_i)
///     b'_i = a_i·sin(m·θ_i) + b_i·cos(m·θ_i)
///
/// Which coordinates form pair i is the `RoPEConvention`:
/// - `.interleaved`: (a_i, b_i) = (x_{2i}, x_{2i+1}) — the RoFormer paper and Meta's LLaMA code
///   (`torch.view_as_complex` over adjacent pairs);
/// - `.halfSplit`: (a_i, b_i) = (x_i, x_{i + d_head/2}) — Hugging Face's `rotate_half`.
/// The two give the same attention scores once the weights of W_Q and W_K are permuted
/// (`RoPEKernel.halfSplitToInterleaved`); without that permutation they do not.
///
/// Shapes: x is [rows, heads·d_head] row-major (all heads side by side); row r is at position
/// `positionOffset + r`; every head of a row gets the same rotation.
///
/// Precision: angles m·θ_i and their sin/cos are computed in Double and rounded once to Float, so
/// every table entry is within 1/2 ULP and the rotation adds a few Float roundings, at any position.
/// In Float the angle alone would carry an error of up to m·θ_i·2u (u = 2⁻²⁴: θ_i and the product
/// each rounded) — 0.012 rad at m = 10⁵ — and in fp16 (u = 2⁻¹¹) a whole radian by m = 2048
/// (docs/tolerances.md, "RoPE").
public enum RoPEKernel {
    // Paths (`KernelPath`):
    // - `.naive`: for every row, head and pair: θ_i = pow(base, −2i/d), sin and cos of m·θ_i in
    //   Double, the 2×2 rotation in Float — the formula as it reads.
    // - `.optimized` (= `.parallel`): identical to naive except: θ_i once per call and
    //   sin/cos(m·θ_i) once per row (shared by every head), the rotation 16 pairs at a time
    //   (SIMD16; interleaved pairs split into even and odd lanes). Bitwise equal to naive: the same
    //   table values, the same Float operations per element (a·c − b·s and a·s + b·c, unfused).

    public enum Convention: String, CaseIterable, Sendable {
        /// Pairs (x_{2i}, x_{2i+1}): RoFormer, Meta's LLaMA.
        case interleaved
        /// Pairs (x_i, x_{i+d/2}): Hugging Face's `rotate_half`.
        case halfSplit
    }

    /// θ_i = base^(−2i/d) in Double, i = 0 ..< d/2.
    public static func frequencies(headWidth d: Int, base: Double) -> [Double] {
        (0..<(d / 2)).map { i in pow(base, -2 * Double(i) / Double(d)) }
    }

    /// The coordinates of pair i in a head of width d: (a, b).
    @inline(__always)
    public static func pair(_ i: Int, headWidth d: Int, _ convention: Convention) -> (Int, Int) {
        convention == .interleaved ? (2 * i, 2 * i + 1) : (i, i + d / 2)
    }

    /// Rotates x [rows, heads·d] in place (see the type's formula). Preconditions (internal kernel;
    /// `RotaryEmbedding` validates): d even and > 0, heads > 0, positionOffset ≥ 0.
    public static func rotate(_ path: KernelPath, _ x: UnsafeMutablePointer<Float>, rows: Int, heads: Int, headWidth d: Int,
                              positionOffset: Int, base: Double, convention: Convention) {
        precondition(rows >= 0 && heads > 0 && d > 0 && d % 2 == 0 && positionOffset >= 0, "RoPE sizes")
        KernelRecorder.record(.rope, path)
        if path != .naive {
            optimized(x, rows: rows, heads: heads, headWidth: d, positionOffset: positionOffset, base: base, convention: convention)
            return
        }
        let width = heads * d
        for r in 0..<rows {
            let m = Double(positionOffset + r)
            for h in 0..<heads {
                let head = x + r * width + h * d
                for i in 0..<(d / 2) {
                    let theta = pow(base, -2 * Double(i) / Double(d))
                    let c = Float(cos(m * theta)), s = Float(sin(m * theta))
                    let (ia, ib) = pair(i, headWidth: d, convention)
                    let a = head[ia], b = head[ib]
                    head[ia] = a * c - b * s
                    head[ib] = a * s + b * c
                }
            }
        }
    }

    static func optimized(_ x: UnsafeMutablePointer<Float>, rows: Int, heads: Int, headWidth d: Int,
                          positionOffset: Int, base: Double, convention: Convention) {
        typealias V = SIMD16<Float>
        typealias H = SIMD8<Float>
        let half = d / 2
        let theta = frequencies(headWidth: d, base: base)
        // Per row: cos and sin of the half pairs, padded to a multiple of 16 so every SIMD load is whole.
        let padded = (half + 15) & ~15
        let table = UnsafeMutablePointer<Float>.allocate(capacity: 2 * padded)
        defer { table.deallocate() }
        let cosRow = table, sinRow = table + padded
        for i in half..<padded { cosRow[i] = 1; sinRow[i] = 0 }
        let width = heads * d
        for r in 0..<rows {
            let m = Double(positionOffset + r)
            for i in 0..<half {
                cosRow[i] = Float(cos(m * theta[i]))
                sinRow[i] = Float(sin(m * theta[i]))
            }
            for h in 0..<heads {
                let head = x + r * width + h * d
                switch convention {
                case .halfSplit:
                    var i = 0
                    while i + 16 <= half {
                        let a = VectorMath.load(head + i), b = VectorMath.load(head + half + i)
                        let c = VectorMath.load(cosRow + i), s = VectorMath.load(sinRow + i)
                        VectorMath.store(a * c - b * s, head + i)
                        VectorMath.store(a * s + b * c, head + half + i)
                        i += 16
                    }
                    while i < half {
                        let a = head[i], b = head[half + i], c = cosRow[i], s = sinRow[i]
                        head[i] = a * c - b * s
                        head[half + i] = a * s + b * c
                        i += 1
                    }
                case .interleaved:
                    var i = 0
                    while i + 8 <= half {
                        let v = VectorMath.load(head + 2 * i)
                        let a = v.evenHalf, b = v.oddHalf
                        let c = H(cosRow[i], cosRow[i + 1], cosRow[i + 2], cosRow[i + 3],
                                  cosRow[i + 4], cosRow[i + 5], cosRow[i + 6], cosRow[i + 7])
                        let s = H(sinRow[i], sinRow[i + 1], sinRow[i + 2], sinRow[i + 3],
                                  sinRow[i + 4], sinRow[i + 5], sinRow[i + 6], sinRow[i + 7])
                        var out = V()
                        out.evenHalf = a * c - b * s
                        out.oddHalf = a * s + b * c
                        VectorMath.store(out, head + 2 * i)
                        i += 8
                    }
                    while i < half {
                        let a = head[2 * i], b = head[2 * i + 1], c = cosRow[i], s = sinRow[i]
                        head[2 * i] = a * c - b * s
                        head[2 * i + 1] = a * s + b * c
                        i += 1
                    }
                }
            }
        }
    }

    /// The permutation of one head's coordinates that turns the half-split layout into the
    /// interleaved one: interleaved coordinate k holds half-split coordinate `perm[k]`, i.e.
    /// perm[2i] = i, perm[2i+1] = i + d/2. Applied to the output rows of W_Q and W_K of every head
    /// (Meta's LLaMA → Hugging Face conversion applies its inverse), a half-split checkpoint runs
    /// on interleaved code with identical scores.
    public static func halfSplitToInterleaved(headWidth d: Int) -> [Int] {
        (0..<d).map { k in k % 2 == 0 ? k / 2 : k / 2 + d / 2 }
    }

    /// The inverse permutation: half-split coordinate k holds interleaved coordinate `perm[k]`
    /// (perm[i] = 2i, perm[i + d/2] = 2i + 1) — what Hugging Face's LLaMA conversion script applies.
    public static func interleavedToHalfSplit(headWidth d: Int) -> [Int] {
        (0..<d).map { k in k < d / 2 ? 2 * k : 2 * (k - d / 2) + 1 }
    }
}
