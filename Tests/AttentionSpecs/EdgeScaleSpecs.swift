import DecoderSpec
import GSLOracle
import SpecSupport
import Testing

// Numerics at the edges (docs/reliability.md): scaled dot-product attention with Q, K scaled by 10^a
// (scores ~ 10^{2a}, beyond FLT_MAX for a ≥ 20) and V by 10^b (subnormal 1e-40 up to 3e38),
// naive and fused, unmasked / causal / padded / with fully masked rows, against the Double GSL
// reference (`AttentionOracleChecks.reference`). See docs/attention.md "Edge numerics".

private let u = unitRoundoff
private func gammaN(_ n: Int) -> Double { Double(n) * u / (1 - Double(n) * u) }

/// Worst |error| / bound seen in the first-order regime, per variant (for the report).
final class EdgeRatio: @unchecked Sendable { var worst = 0.0 }

/// How one output row was judged (for the report).
enum EdgeRowRegime: String, CaseIterable, Sendable {
    case fullyMasked = "fully masked (must be exactly 0)"
    case oneHot = "one-hot (gap > 2E + 104: must equal V_top)"
    case firstOrder = "first-order bound"
    case illConditioned = "ill-conditioned (2E > 0.1: convex hull only)"
}

/// Reusable check of one attention implementation on one input, per output element, against
/// the Double reference softmax(Q·Kᵀ/√d + M)·V. For query row i with visible keys j:
///   A_ij = Σ_p |q_ip·k_jp|/√d,  s_ij = Σ_p q_ip·k_jp/√d,
///   E_i  = γ_{d+4}·max_j A_ij + 2u·max_j |s_ij|
/// bounds the Float score error (d-term dot product, the 1/√d or log₂e·/√d scaling, and the
/// fused kernel's s − m and base-2 conversion, which round relative to |s|). Then:
///   - fully masked row: O_i = 0 exactly;
///   - one-hot: if the top score beats the next by more than 2E_i + 104 (e^{−104} < 2⁻¹⁵⁰), both
///     the Float and the true weights are 1 at the top and underflow elsewhere: |O_ic − V_top,c| ≤
///     2u·|V_top,c| + Tk·e^{−104}·max_j|V_jc|;
///   - first order (2E_i ≤ 0.1): each weight's relative error ≤ e^{2E} − 1 ≤ 2.2·E_i, plus exp,
///     Tk-term sum, division and block rescalings (3Tk + 8)·u, so
///     |ΔO_ic| ≤ (2.2·E_i + (3Tk + 8)·u)·Σ_j w_ij|V_jc| + Tk·2⁻¹²⁶·max_j|V_jc| + Tk·2⁻¹⁴⁹
///     (weights below 2⁻¹²⁶ are flushed by the fused 2^x; subnormal products round absolutely);
///   - otherwise the scores' own Float rounding can reorder near-ties: only "finite and inside the
///     convex hull of the visible V rows" is required (and the row is counted as ill-conditioned).
/// Always: no NaN, no ±∞.
func checkAttentionEdges(_ attention: AttentionFunction, q: Matrix, k: Matrix, v: Matrix, mask: AttentionMask,
                         regimes: inout [EdgeRowRegime: Int], ratio: EdgeRatio = EdgeRatio(), context: String) -> Verdict {
    let o: Matrix
    do { o = try attention(q, k, v, mask) } catch { return .fail("threw \(error). \(context)") }
    let ref: [Double]
    do { ref = try AttentionOracleChecks.reference(q: q, k: k, v: v, mask: mask) } catch { return .fail("reference threw \(error)") }
    let (tq, tk, d, dv) = (q.rows, k.rows, q.cols, v.cols)
    let sqrtD = Double(d).squareRoot()
    for i in 0..<tq {
        let visible = (0..<tk).filter { j in AttentionOracleChecks.visible(mask, i, j) && mask.additive?[i, j] != -.infinity }
        let row = (0..<dv).map { Double(o[i, $0]) }
        if row.contains(where: { !$0.isFinite }) { return .fail("non-finite output in row \(i): \(row). \(context)") }
        if visible.isEmpty {
            regimes[.fullyMasked, default: 0] += 1
            if row.contains(where: { $0 != 0 }) { return .fail("fully masked row \(i) is \(row), not 0. \(context)") }
            continue
        }
        var s: [Double] = [], a: [Double] = []
        for j in visible {
            var dot = 0.0, abssum = 0.0
            for p in 0..<d { let t = Double(q[i, p]) * Double(k[j, p]); dot += t; abssum += abs(t) }
            s.append(dot / sqrtD); a.append(abssum / sqrtD)
        }
        let e = gammaN(d + 4) * a.max()! + 2 * u * s.map(abs).max()!
        let sorted = s.sorted(by: >)
        let gap = sorted.count > 1 ? sorted[0] - sorted[1] : .infinity
        let top = visible[s.firstIndex(of: sorted[0])!]
        let w = s.map { x -> Double in let t = x - sorted[0]; return t < -700 ? 0 : (try! GSL.exp(t)) }
        let wsum = w.reduce(0, +)
        for c in 0..<dv {
            let vc = visible.map { Double(v[$0, c]) }
            let maxV = vc.map(abs).max()!
            let got = row[c], want = ref[i * dv + c]
            let tol: Double
            if gap > 2 * e + 104 {
                regimes[.oneHot, default: 0] += c == 0 ? 1 : 0
                let vt = Double(v[top, c])
                tol = 2 * u * abs(vt) + Double(tk) * 6.8e-46 * maxV
                if !(abs(got - vt) <= tol) { return .fail("row \(i) col \(c) one-hot: expected V_top = \(vt), observed \(got). \(context)") }
                continue
            } else if 2 * e <= 0.1 {
                regimes[.firstOrder, default: 0] += c == 0 ? 1 : 0
                let weighted = zip(w, vc).reduce(0.0) { $0 + $1.0 / wsum * abs($1.1) }
                tol = (2.2 * e + Double(3 * tk + 8) * u) * weighted + Double(tk) * 0x1p-126 * maxV + Double(tk) * 0x1p-149
            } else {
                regimes[.illConditioned, default: 0] += c == 0 ? 1 : 0
                let lo = vc.min()!, hi = vc.max()!
                let slack = 2 * u * maxV
                if !(got >= lo - slack && got <= hi + slack) {
                    return .fail("row \(i) col \(c) (ill-conditioned, E = \(e)): \(got) outside the convex hull [\(lo), \(hi)]. \(context)")
                }
                continue
            }
            if tol > 0 { ratio.worst = Swift.max(ratio.worst, abs(got - want) / tol) }
            if !(abs(got - want) <= tol) {
                return .fail("row \(i) col \(c): expected \(want), observed \(got), |error| \(abs(got - want)) > \(tol) (E = \(e)). \(context)")
            }
        }
    }
    return .pass
}

/// Q, K ~ U[−1, 1]·10^a, V ~ U[−1, 1]·10^b (clamped to ±FLT_MAX; b = −40 gives subnormals).
func edgeInputs(tq: Int, tk: Int, d: Int, dv: Int, a: Int, b: Int, seed: UInt) -> (Matrix, Matrix, Matrix) {
    let rng = GSLRandom(seed: seed)
    func m(_ r: Int, _ c: Int, _ e: Int) -> Matrix {
        let scale = pow10(e)
        let big = Double(Float.greatestFiniteMagnitude)
        return try! Matrix(rows: r, cols: c, storage: (0..<(r * c)).map { _ in Float(Swift.min(Swift.max(rng.uniform(-1, 1) * scale, -big), big)) })
    }
    return (m(tq, d, a), m(tk, d, a), m(tk, dv, b))
}

private func pow10(_ e: Int) -> Double { e >= 0 ? (0..<e).reduce(1.0) { x, _ in x * 10 } : 1 / pow10(-e) }

let qkExponents = [-30, -20, -10, -5, -2, -1, 0, 1, 2, 3, 5, 10, 15, 19, 20, 25, 30]
let vExponents = [-40, -30, 0, 30, 38]

/// The masks of the table: none, causal, padding, and an additive mask whose row 1 is all −∞.
func edgeMasks(tq: Int, tk: Int) -> [(String, AttentionMask)] {
    var additive = Matrix(rows: tq, cols: tk)
    for j in 0..<tk { additive[1, j] = -.infinity }
    return [("none", .none), ("causal", .causal(queryOffset: tk - tq)), ("padding", AttentionMask(keyValidLength: tk - 2)),
            ("fully masked row 1", .additive(additive))]
}

@Suite("Edge numerics: attention with Q/K at 1e-30…1e30 (scores beyond FLT_MAX) and V from subnormal to 3e38")
struct AttentionEdgeScaleSpecs {
    @Test("Naive and fused, every mask: match the Double reference where Float can, one-hot where the gap is decisive, never NaN",
          arguments: KernelPath.allCases)
    func table(variant: KernelPath) {
        var regimes: [EdgeRowRegime: Int] = [:]
        let ratio = EdgeRatio()
        for (shapeIndex, (tq, tk, d)) in [(5, 9, 16), (3, 7, 3), (4, 300, 8)].enumerated() {
            for (mi, (maskName, mask)) in edgeMasks(tq: tq, tk: tk).enumerated() {
                for a in qkExponents {
                    for b in vExponents where tk < 300 || b == 0 || b == 38 {
                        let seed = UInt(10_000 + shapeIndex * 1000 + mi * 100 + (a + 40) * 2 + (b + 40))
                        let (q, k, v) = edgeInputs(tq: tq, tk: tk, d: d, dv: 5, a: a, b: b, seed: seed)
                        let verdict = checkAttentionEdges(sdpa(variant), q: q, k: k, v: v, mask: mask, regimes: &regimes, ratio: ratio,
                                                          context: "\(variant) Tq=\(tq) Tk=\(tk) d=\(d) mask \(maskName) Q,K·1e\(a) V·1e\(b) seed \(seed)")
                        #expect(verdict.passed, "\(verdict.message)")
                    }
                }
            }
        }
        print("attention edge rows (\(variant)): " + EdgeRowRegime.allCases.map { "\($0.rawValue): \(regimes[$0, default: 0])" }.joined(separator: "; ")
              + String(format: "; worst first-order |error|/bound %.3g", ratio.worst))
    }

    @Test("Scores beyond FLT_MAX (Q, K at 1e25): weights still sum to 1 (0 for a fully masked row) and equal the Double reference",
          arguments: KernelPath.allCases)
    func overflowWeights(variant: KernelPath) throws {
        let (q, k, _) = edgeInputs(tq: 4, tk: 6, d: 8, dv: 1, a: 25, b: 0, seed: 77)
        for (name, mask) in edgeMasks(tq: 4, tk: 6) {
            let viaV = try weights(of: sdpa(variant))(q, k, mask)
            let direct = try attentionWeights(q: q, k: k, mask: mask)
            let ref = try AttentionOracleChecks.weightsReference(q: q, k: k, mask: mask)
            for w in [viaV, direct] {
                #expect(!w.storage.contains { !$0.isFinite }, "\(variant) \(name)")
                // Scores ~1e50 apart: every weight is exactly 0 or 1 in Float and in the reference.
                #expect(compare(w.storage, ref, .absolute(2 * u), "\(variant) mask \(name)").passed)
            }
        }
    }

    @Test("V near FLT_MAX: the fused kernel's unnormalized Σ p_j·V_j would overflow; the result is still the convex combination")
    func valuesNearMax() throws {
        // Every score equal (Q = 0): O = mean of the V rows, which fits in Float.
        let q = Matrix(rows: 2, cols: 4), k = Matrix(rows: 8, cols: 4)
        let v = try Matrix(rows: 8, cols: 2, storage: (0..<16).map { $0 % 2 == 0 ? 3e38 : -3e38 })
        for variant in KernelPath.allCases {
            let o = try scaledDotProductAttention(q: q, k: k, v: v, path: variant)
            #expect(compare(o.storage, [3e38, -3e38, 3e38, -3e38], .relative(4 * u), "\(variant)").passed, "\(o.storage)")
        }
    }

    @Test("Multi-head at Q/K 1e25 (every head overflows): finite and equal to per-head attention")
    func multiHeadOverflow() throws {
        let (q, k, v) = edgeInputs(tq: 3, tk: 5, d: 8, dv: 8, a: 25, b: 2, seed: 5)
        for variant in KernelPath.allCases {
            let mh = try multiHeadAttention(q: q, k: k, v: v, heads: 2, mask: .causal(queryOffset: 2), path: variant)
            #expect(!mh.storage.contains { !$0.isFinite })
            for h in 0..<2 {
                let one = try scaledDotProductAttention(q: AttentionOracleChecks.slice(q, 4 * h, 4), k: AttentionOracleChecks.slice(k, 4 * h, 4),
                                                        v: AttentionOracleChecks.slice(v, 4 * h, 4), mask: .causal(queryOffset: 2), path: variant)
                #expect(AttentionOracleChecks.slice(mh, 4 * h, 4).storage == one.storage, "\(variant) head \(h)")
            }
        }
    }

    @Test("The edge check can fail: Float scores without the Double fallback give NaN at Q/K 1e20; a wrong scale is caught")
    func checkCanFail() {
        var regimes: [EdgeRowRegime: Int] = [:]
        // The pre-fix public path: the Float kernel's result, no fallback (weights via naive softmax).
        let floatOnly: AttentionFunction = { q, k, v, mask in
            var s = try q.matmul(k, transposeOther: true, path: .naive)
            let r = Float(q.cols).squareRoot()
            for i in s.storage.indices { s.storage[i] /= r }
            let m = try mask.materialize(queries: q.rows, keys: k.rows)
            let w = try s.softmaxRowsUnchecked(mask: m)
            return try w.matmul(v, path: .naive)
        }
        let (q, k, v) = edgeInputs(tq: 5, tk: 9, d: 16, dv: 5, a: 20, b: 0, seed: 1)
        #expect(!checkAttentionEdges(floatOnly, q: q, k: k, v: v, mask: .none, regimes: &regimes, context: "float-only").passed)
        let (q0, k0, v0) = edgeInputs(tq: 5, tk: 9, d: 16, dv: 5, a: 0, b: 0, seed: 1)
        #expect(checkAttentionEdges(floatOnly, q: q0, k: k0, v: v0, mask: .none, regimes: &regimes, context: "float-only, scale 1").passed)
        // √d scaling forgotten: caught in the first-order regime.
        let unscaled: AttentionFunction = { q, k, v, mask in
            try scaledDotProductAttention(q: q.scaled(by: Float(q.cols).squareRoot()), k: k, v: v, mask: mask)
        }
        #expect(!checkAttentionEdges(unscaled, q: q0, k: k0, v: v0, mask: .none, regimes: &regimes, context: "unscaled").passed)
    }
}

extension Matrix {
    /// The raw softmax kernel over rows with an additive mask (NaN rows pass through), as the
    /// pre-fix attention path ran it.
    func softmaxRowsUnchecked(mask: Matrix) throws -> Matrix {
        var out = self
        let (r, c) = (rows, cols)
        out.storage.withUnsafeMutableBufferPointer { p in
            mask.storage.withUnsafeBufferPointer { m in Softmax.rows(.naive, p.baseAddress!, rows: r, cols: c, mask: m.baseAddress!) }
        }
        return out
    }

    func scaled(by f: Float) -> Matrix {
        var out = self
        for i in out.storage.indices { out.storage[i] *= f }
        return out
    }
}
