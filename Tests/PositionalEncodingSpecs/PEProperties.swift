// Reusable checks of a positional-encoding table. Each takes the implementation under test as a
// closure `(positions, d) -> Matrix` (rows 0 ..< positions, shape [positions, d]) and returns a
// `Verdict`, so the same check runs against the library (must pass) and against the source
// documents' formulas in `PositionalEncodingErrata` (must fail). See docs/positional-encoding.md.
import DecoderSpec
import GSLOracle
import SpecSupport

typealias PEImplementation = @Sendable (_ positions: Int, _ d: Int) -> Matrix

/// Float unit roundoff u = 2⁻²⁴: |fl(x) − x| ≤ u·|x| for round-to-nearest.
let floatUnitRoundoff = 0x1p-24
/// Largest Float rounding error of a value in [−1, 1]: half an ulp of [0.5, 1) = 2⁻²⁵ ≈ 2.98e-8.
let peRoundingError = 0x1p-25
/// Error budget of the Double stage (angle pos·ω_i, sin/cos or the angle-addition recurrence)
/// before the final rounding to Float: a few Double ulps of an angle ≤ 2²⁰ plus ≈ 3.3·n·2⁻⁵³
/// for n recurrence steps — ≤ 1e-11 for n ≤ 8192, stated with a 10× margin.
let peDoubleStageError = 1e-10

/// The oracle rung for PE values: correctly rounded to Float from a Double value within 1e-10 of
/// the truth. A float32 angle (PyTorch's way) misses it by 1e-4 at pos 2048 — and must fail.
let peOracleBound = Bound.mixed(absolute: peDoubleStageError, relative: floatUnitRoundoff)

/// ω_i and the exact rows come from SpecSupport (`PositionalEncodingChecks.frequencies/row`), shared
/// with the bug zoo.
func gslFrequencies(_ d: Int) throws -> [Double] { try PositionalEncodingChecks.frequencies(d) }
func gslRow(_ pos: Int, _ omega: [Double]) throws -> [Double] { try PositionalEncodingChecks.row(pos, frequencies: omega) }

/// Rows `rows` of `table` equal GSL's sin/cos within `bound`.
func checkAgainstGSL(_ table: Matrix, rows: [Int], bound: Bound = peOracleBound, label: String) -> Verdict {
    do {
        let omega = try gslFrequencies(table.cols)
        var verdict = Verdict.pass
        for p in rows {
            let v = compare(table.row(p), try gslRow(p, omega), bound, "\(label): row pos=\(p) of \(table.shape)")
            verdict = verdict.and(v)
            if !verdict.passed { return verdict }
        }
        return verdict
    } catch {
        return .fail("GSL failed: \(error)")
    }
}

/// PE(0) = [0, 1, 0, 1, …] exactly: sin 0 = 0 and cos 0 = 1 are exact in every precision.
func originIsZeroOne(_ pe: PEImplementation, d: Int) -> Verdict {
    let table = pe(1, d)
    let expected = (0..<d).map { $0 % 2 == 0 ? 0.0 : 1.0 }
    return compare(table.row(0), expected, .exact, "PE(0), d=\(d)")
}

/// PE(p + k) = R_k · PE(p), with R_k block-diagonal: on the pair (PE[2i], PE[2i+1]) = (sin a, cos a)
///
///     [ sin(a + kω) ]   [  cos kω   sin kω ] [ sin a ]
///     [ cos(a + kω) ] = [ −sin kω   cos kω ] [ cos a ]
///
/// R_k is built from GSL sin/cos of k·ω_i in Double. Bound: R_k is orthogonal, so it maps the
/// Float rounding error of the pair (‖·‖ ≤ √2·2⁻²⁵) to at most √2·2⁻²⁵ per component; PE(p+k)
/// carries its own 2⁻²⁵; plus the Double stage of both: |error| ≤ (1 + √2)·2⁻²⁵ + 2e-10.
func rotationProperty(_ pe: PEImplementation, positions n: Int, d: Int, starts: [Int], shifts: [Int]) -> Verdict {
    let table = pe(n, d)
    let bound = Bound.absolute((1 + 2.0.squareRoot()) * peRoundingError + 2 * peDoubleStageError)
    do {
        let omega = try gslFrequencies(d)
        for k in shifts {
            let rotation = try omega.map { w in (c: try GSL.cos(Double(k) * w), s: try GSL.sin(Double(k) * w)) }
            for p in starts where p + k < n {
                let x = table.row(p)
                var rotated = [Double](repeating: 0, count: d)
                for (i, r) in rotation.enumerated() {
                    let s = Double(x[2 * i]), c = Double(x[2 * i + 1])
                    rotated[2 * i] = r.c * s + r.s * c
                    rotated[2 * i + 1] = -r.s * s + r.c * c
                }
                let v = compare(table.row(p + k), rotated, bound, "PE(\(p)+\(k)) vs R_\(k)·PE(\(p)), d=\(d)")
                if !v.passed { return v }
            }
        }
        return .pass
    } catch {
        return .fail("GSL failed: \(error)")
    }
}

/// ⟨PE(p), PE(q)⟩ = Σ_i cos((p − q)·ω_i) depends only on p − q: compared with ⟨PE(p+s), PE(q+s)⟩.
/// Bound: with elementwise errors |e| ≤ δ = 2⁻²⁵ + 1e-10 and ‖PE‖ = √(d/2), one computed dot is
/// within √2·δ·d + d·δ² of the exact one (Cauchy–Schwarz; dots summed in Double), so two differ
/// by at most 2·(√2·δ·d + d·δ²).
func innerProductDependsOnlyOnOffset(_ pe: PEImplementation, positions n: Int, d: Int,
                                     pairs: [(Int, Int)], shifts: [Int]) -> Verdict {
    let table = pe(n, d)
    let delta = peRoundingError + peDoubleStageError
    let tolerance = 2 * (2.0.squareRoot() * delta * Double(d) + Double(d) * delta * delta)
    func dot(_ a: Int, _ b: Int) -> Double {
        zip(table.row(a), table.row(b)).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
    }
    for (p, q) in pairs {
        let base = dot(p, q)
        for s in shifts where p + s < n && q + s < n {
            let shifted = dot(p + s, q + s)
            if !(abs(shifted - base) <= tolerance) {
                return .fail("⟨PE(\(p)),PE(\(q))⟩ = \(base) but ⟨PE(\(p + s)),PE(\(q + s))⟩ = \(shifted) (|Δ| \(abs(shifted - base)) > \(tolerance)), d=\(d)")
            }
        }
    }
    return .pass
}

/// ‖PE(p)‖² = Σ_i (sin² + cos²) = d/2 for every p. Bound as for one dot: √2·δ·d + d·δ².
func normIsHalfDimension(_ pe: PEImplementation, positions n: Int, d: Int, rows: [Int]) -> Verdict {
    let table = pe(n, d)
    let delta = peRoundingError + peDoubleStageError
    let tolerance = 2.0.squareRoot() * delta * Double(d) + Double(d) * delta * delta
    for p in rows where p < n {
        let norm2 = table.row(p).reduce(0.0) { $0 + Double($1) * Double($1) }
        if !(abs(norm2 - Double(d) / 2) <= tolerance) {
            return .fail("‖PE(\(p))‖² = \(norm2), expected d/2 = \(Double(d) / 2) within \(tolerance), d=\(d)")
        }
    }
    return .pass
}

/// Distinct positions get distinct rows (the encoding is injective on 0 ..< n).
func positionsAreDistinct(_ pe: PEImplementation, positions n: Int, d: Int) -> Verdict {
    let table = pe(n, d)
    var seen: [[Float]: Int] = [:]
    for p in 0..<n {
        let row = table.row(p)
        if let q = seen[row] { return .fail("PE(\(q)) == PE(\(p)) exactly (d=\(d)): positions collapse") }
        seen[row] = p
    }
    return .pass
}

/// All properties together, as one verdict — what an erratum must fail.
func allProperties(_ pe: PEImplementation, positions n: Int = 256, d: Int = 64) -> [String: Verdict] {
    [
        "PE(0)=[0,1,…]": originIsZeroOne(pe, d: d),
        "rotation": rotationProperty(pe, positions: n, d: d, starts: [0, 1, 7, 100], shifts: [1, 3, 50]),
        "⟨PE(p),PE(q)⟩ depends on p−q": innerProductDependsOnlyOnOffset(
            pe, positions: n, d: d, pairs: [(0, 1), (3, 10), (20, 5)], shifts: [1, 2, 37, 100]),
        "‖PE‖²=d/2": normIsHalfDimension(pe, positions: n, d: d, rows: [0, 1, 2, 17, 200]),
        "GSL oracle": checkAgainstGSL(pe(n, d), rows: [0, 1, 2, 17, 200], label: "implementation"),
    ]
}
