import GSLOracle
import TensorCore

/// Checks of the sinusoidal positional encoding (docs/positional-encoding.md, docs/bug-zoo.md #1–3).
public enum PositionalEncodingChecks {
    /// ω_i = 10000^(−2i/d) = exp(−(2i/d)·log 10000), by GSL's exp and log.
    public static func frequencies(_ d: Int) throws -> [Double] {
        let log10000 = try GSL.log(10000)
        return try (0..<(d / 2)).map { i in try GSL.exp(-Double(2 * i) / Double(d) * log10000) }
    }

    /// The exact row PE(pos) in Double: (sin(pos·ω_i), cos(pos·ω_i)) pairs from gsl_sf_sin/cos.
    public static func row(_ pos: Int, frequencies omega: [Double]) throws -> [Double] {
        var row = [Double](repeating: 0, count: 2 * omega.count)
        for (i, w) in omega.enumerated() {
            let angle = Double(pos) * w
            row[2 * i] = try GSL.sin(angle)
            row[2 * i + 1] = try GSL.cos(angle)
        }
        return row
    }

    /// PE[pos, 2i] = sin(pos·ω_i), PE[pos, 2i+1] = cos(pos·ω_i), ω_i = 10000^(−2i/d), in Double with
    /// gsl_sf_sin / gsl_sf_cos; row-major [n, d].
    public static func reference(positions n: Int, dimension d: Int) throws -> [Double] {
        let omega = try frequencies(d)
        return try (0..<n).flatMap { try row($0, frequencies: omega) }
    }

    /// The table matches the GSL reference. Tolerance: each value is a Double sine rounded once to
    /// Float (≤ 2⁻²⁴·|PE|) plus the Double angle's own error (positions < 2¹⁰: < 1e-12) — so
    /// `mixed(absolute: 1e-10, relative: 2⁻²⁴)`, the library's documented contract.
    public static func tableMatchesGSL(_ table: (Int, Int) throws -> Matrix, positions n: Int, dimension d: Int) -> Verdict {
        CheckSupport.guarded("PE table \(n)×\(d)") {
            let t = try table(n, d)
            guard t.rows == n, t.cols == d else { return .fail("shape \(t.shape), expected [\(n), \(d)]") }
            return compare(t.storage, try reference(positions: n, dimension: d), .mixed(absolute: 1e-10, relative: CheckSupport.unitRoundoff),
                           "PE table vs GSL sin/cos, positions 0..<\(n), d = \(d) (index = pos·d + j)")
        }
    }

    /// The rotation property, whatever the frequencies: every (sin, cos) pair has unit norm and
    /// PE(p + k) is PE(p) rotated by the angle of PE(k) (PE(0) = (0, 1) per pair):
    ///     s_{p+k} = s_p·c_k + c_p·s_k,   c_{p+k} = c_p·c_k − s_p·s_k.
    /// Tolerance 8u absolute: three Float-rounded unit-size inputs, two products and a sum in Double.
    public static func rotationProperty(_ table: (Int, Int) throws -> Matrix, positions n: Int, dimension d: Int) -> Verdict {
        CheckSupport.guarded("PE rotation \(n)×\(d)") {
            let t = try table(n, d)
            guard t.rows == n, t.cols == d else { return .fail("shape \(t.shape), expected [\(n), \(d)]") }
            var observed: [Double] = [], expected: [Double] = []
            for p in 0..<n {
                for k in 0..<(n - p) {
                    for i in 0..<(d / 2) {
                        let sp = Double(t[p, 2 * i]), cp = Double(t[p, 2 * i + 1])
                        let sk = Double(t[k, 2 * i]), ck = Double(t[k, 2 * i + 1])
                        observed += [Double(t[p + k, 2 * i]), Double(t[p + k, 2 * i + 1]), sp * sp + cp * cp]
                        expected += [sp * ck + cp * sk, cp * ck - sp * sk, 1]
                    }
                }
            }
            return compare(observed, expected, .absolute(8 * CheckSupport.unitRoundoff), "PE(p+k) = R(k)·PE(p) and s²+c² = 1, d = \(d)")
        }
    }

    /// X' = X + P adds row p of the sinusoidal table to row p of X: on X = 0 the result is the GSL
    /// table (tolerance as `tableMatchesGSL`), its rows differ from one another, and on a seeded X it
    /// is X + P within 4u·(max|X| + 1) (two Float roundings of unit-size values).
    public static func addsOneRowPerPosition(_ add: (Matrix) throws -> Matrix, rows n: Int, dimension d: Int, seed: UInt) -> Verdict {
        CheckSupport.guarded("X + P, X [\(n), \(d)], seed \(seed)") {
            let ref = try reference(positions: n, dimension: d)
            let zeroOut = try add(Matrix(rows: n, cols: d))
            let onZeros = compare(zeroOut.storage, ref, .mixed(absolute: 1e-10, relative: CheckSupport.unitRoundoff),
                                  "0 + P vs the GSL table, rows 0..<\(n), d = \(d)")
            guard onZeros.passed else { return onZeros }
            for p in 1..<n where zeroOut.row(p) == zeroOut.row(0) {
                return .fail("rows 0 and \(p) of 0 + P are identical: positions are not encoded")
            }
            let x = CheckSupport.matrix(n, d, seed: seed)
            let out = try add(x)
            let expected = (0..<(n * d)).map { Double(x.storage[$0]) + ref[$0] }
            return compare(out.storage, expected, .absolute(4 * CheckSupport.unitRoundoff * 2), "X + P, seed \(seed)")
        }
    }
}
