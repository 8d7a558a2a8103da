import DecoderSpec
import GSLOracle
import SpecSupport

/// The implementation under test of single-head attention: (Q, K, V, mask) → O.
typealias AttentionFunction = (Matrix, Matrix, Matrix, AttentionMask) throws -> Matrix
/// The implementation under test of attention weights: (Q, K, mask) → W [Tq, Tk].
typealias WeightsFunction = (Matrix, Matrix, AttentionMask) throws -> Matrix

/// Float's unit roundoff u = 2⁻²⁴ (half an ULP of 1).
let unitRoundoff = 0x1p-24

func sdpa(_ variant: KernelPath) -> AttentionFunction {
    { q, k, v, mask in try scaledDotProductAttention(q: q, k: k, v: v, mask: mask, path: variant) }
}

/// The weights of any attention implementation (V = I), the mask's independent reading, and the
/// GSL Double reference live in SpecSupport's `AttentionOracleChecks`, shared with the bug zoo.
func weights(of attention: @escaping AttentionFunction) -> WeightsFunction { AttentionOracleChecks.weights(of: attention) }

/// `AttentionOracleChecks.bound` (derived there) as a `Bound` and its value.
func attentionBound(q: Matrix, k: Matrix, v: Matrix, headDimension: Int? = nil) -> (bound: Bound, value: Double) {
    let tol = AttentionOracleChecks.bound(q: q, k: k, v: v, headDimension: headDimension)
    return (.absolute(tol), tol)
}

// MARK: - Reusable checks (each takes the implementation under test, returns a Verdict)

enum AttentionChecks {
    /// Self-attention without positional encoding is permutation-equivariant:
    /// f(P·X) = P·f(X). Summation order over keys changes with the permutation, so the bound is
    /// twice `attentionBound` (each side is within it of its exact value, and the exact values agree).
    static func permutationEquivariant(_ selfAttention: (Matrix) throws -> Matrix, x: Matrix, seed: UInt,
                                       context: String) -> Verdict {
        do {
            let rng = GSLRandom(seed: seed)
            var perm = Array(0..<x.rows)
            for i in stride(from: perm.count - 1, to: 0, by: -1) { perm.swapAt(i, rng.int(below: i + 1)) }
            var px = x
            for r in 0..<x.rows { for c in 0..<x.cols { px[r, c] = x[perm[r], c] } }
            let o = try selfAttention(x), po = try selfAttention(px)
            var permutedO = o
            for r in 0..<o.rows { for c in 0..<o.cols { permutedO[r, c] = o[perm[r], c] } }
            let tol = 2 * attentionBound(q: x, k: x, v: x).value
            return compare(po.storage, permutedO.storage, .absolute(tol), "f(PX) vs P f(X), permutation \(perm.prefix(8))…. \(context)")
        } catch { return .fail("threw \(error). \(context)") }
    }

    /// Attention of constant values is that constant: if every V row is c, every output row with a
    /// visible key is c (weights sum to 1). Bound: relative (2·Tk + 8)·u (sum of weights to 1 plus
    /// the products), stated as mixed so a row of c = 0 passes exactly.
    static func constantValuesPreserved(_ attention: AttentionFunction, q: Matrix, k: Matrix, mask: AttentionMask,
                                        context: String) -> Verdict {
        do {
            let c = Inputs.matrix(rows: 1, cols: 5, seed: 99, range: 0.5...2)
            var v = Matrix(rows: k.rows, cols: 5)
            for j in 0..<k.rows { for col in 0..<5 { v[j, col] = c[0, col] } }
            let o = try attention(q, k, v, mask)
            var expected: [Double] = []
            for i in 0..<q.rows {
                let any = (0..<k.rows).contains { AttentionOracleChecks.visible(mask, i, $0) }
                for col in 0..<5 { expected.append(any ? Double(c[0, col]) : 0) }
            }
            return compare(o.storage, expected, .relative(Double(2 * k.rows + 8) * unitRoundoff), "constant values. \(context)")
        } catch { return .fail("threw \(error). \(context)") }
    }

    /// Causal attention of the last Tq queries with `.causal(queryOffset: T − Tq)` over all T keys
    /// (a KV-cache step) equals the last Tq rows of full causal attention, bitwise (every row is
    /// computed by the same arithmetic in both).
    static func offsetMatchesFullCausal(_ attention: AttentionFunction, q: Matrix, k: Matrix, v: Matrix, newQueries tq: Int,
                                        context: String) -> Verdict {
        do {
            let t = q.rows
            let full = try attention(q, k, v, .causal())
            let qTail = AttentionOracleChecks.rowsFrom(q, t - tq)
            let part = try attention(qTail, k, v, .causal(queryOffset: t - tq))
            return compare(part.storage, Array(full.storage[((t - tq) * full.cols)...]), .exact,
                           "offset \(t - tq) rows vs full causal. \(context)")
        } catch { return .fail("threw \(error). \(context)") }
    }
}
