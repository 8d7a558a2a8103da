import DecoderSpec
import GSLOracle
import SpecSupport
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Numerics at the edges (docs/reliability.md): sinusoidal PE at positions up to 10⁶ (d = 512 and 1024), both
// variants, against gsl_sf_sin / gsl_sf_cos in Double. See docs/positional-encoding.md, "Long positions".
//
// Error budget at position p after n recurrence steps (n = 0 for the naive kernel and for the
// first row of any table), before the final rounding to Float:
//   - angle: the kernel's ω_i = 1/pow(10000, 2i/d) is within ~2 Double ulps (pow, division) and
//     p·ω_i adds ½ ulp: |Δangle| ≤ 2.5·p·ω_i·2⁻⁵³ ≤ 2.5·10⁶·2⁻⁵³ ≈ 2.8e-10 (ω_0 = 1);
//   - the reference's ω_i = exp(−(2i/d)·log 10000) carries log 10000's rounding times 2i/d:
//     |Δangle| ≤ p·ω_i·(2i/d)·ln(10⁴)·2·2⁻⁵³ ≤ p·(2/e)·2⁻⁵³ ≈ 8e-11 (max of t·e^{−t}·2 at t = 1);
//   - sin/cos in Double: ≤ 1 ulp ≈ 1.1e-16; angle addition: ≤ (√5 + 1)·n·2⁻⁵³ ≈ 3.6e-12 per 10³ steps.
// So δ(p, n) ≤ 3.6e-10 + (√5 + 1)·n·2⁻⁵³ ≤ 6e-10 for p ≤ 10⁶, n ≤ 65,536; the rung
// mixed(1e-9, 2⁻²⁴) is one Float rounding (2⁻²⁴·|PE|) plus that δ with a ≥ 1.6× margin.
// The Float rounding itself (up to 2⁻²⁵ ≈ 3e-8) stays the dominant term: 50× δ at p = 10⁶.
private let longBound = Bound.mixed(absolute: 1e-9, relative: floatUnitRoundoff)

/// Positions of the sweep: powers of two up to 2¹⁹ and their neighbours, 999,999, 1,000,000,
/// and a seeded sample.
func longPositions(seed: UInt) -> [Int] {
    let rng = GSLRandom(seed: seed)
    let powers = (0...19).flatMap { k in [(1 << k) - 1, 1 << k, (1 << k) + 1] }
    return [0] + powers + [999_999, 1_000_000, (1 << 20) - 1] + (0..<16).map { _ in rng.int(below: 1_000_001) }
}

/// Largest |PE − GSL| over `rows` of `table` whose positions are `positions`, and how many
/// values differ from the correctly rounded Float(GSL) (the Double stage's δ made a rounding flip).
func worstAbsoluteError(_ table: Matrix, positions: [Int], dimension d: Int) throws -> (worst: Double, notCorrectlyRounded: Int, total: Int) {
    let omega = try gslFrequencies(d)
    var worst = 0.0, flips = 0
    for (r, p) in positions.enumerated() {
        let ref = try gslRow(p, omega)
        for j in 0..<d {
            worst = max(worst, abs(Double(table[r, j]) - ref[j]))
            if table[r, j] != Float(ref[j]) { flips += 1 }
        }
    }
    return (worst, flips, positions.count * d)
}

@Suite("Positional encoding at long positions (up to 10⁶), d = 512 and 1024, against GSL")
struct LongPositionSpecs {
    @Test("Rows at positions up to 10⁶ (incl. 999,999, 1,000,000, powers of two) match GSL within 2⁻²⁴·|PE| + 1e-9",
          arguments: KernelPath.allCases)
    func sampledPositions(variant: KernelPath) throws {
        for d in [512, 1024] {
            let pe = try SinusoidalPositionalEncoding(dimension: d, contextLength: SinusoidalPositionalEncoding.positionCeiling)
            let positions = longPositions(seed: UInt(d))
            let table = try pe.rows(at: positions, path: variant)
            let omega = try gslFrequencies(d)
            for (r, p) in positions.enumerated() {
                let v = compare(table.row(r), try gslRow(p, omega), longBound, "\(variant) d=\(d) pos=\(p) (sample seed \(d))")
                #expect(v.passed, "\(v)")
            }
            // The stated 1e-6 target, literally.
            let loose = compare(table.storage, try positions.flatMap { try gslRow($0, omega) }, .absolute(1e-6), "\(variant) d=\(d)")
            #expect(loose.passed, "\(loose)")
        }
    }

    @Test("A long optimized window ending at 10⁶ (up to 32,767 rotation steps) stays within 2⁻²⁴·|PE| + 1e-9 of GSL")
    func longRecurrence() throws {
        for (d, count) in [(512, 32_768), (1024, 4096)] {
            let first = 1_000_000 - (count - 1)
            let table = try SinusoidalPositionalEncoding(dimension: d, contextLength: SinusoidalPositionalEncoding.positionCeiling)
                .table(count: count, startingAt: first)
            let rng = GSLRandom(seed: 31)
            let rows = [0, 1, count / 2, count - 2, count - 1] + (0..<12).map { _ in rng.int(below: count) }
            let omega = try gslFrequencies(d)
            for r in rows {
                let v = compare(table.row(r), try gslRow(first + r, omega), longBound,
                                "optimized d=\(d) window \(first)..<\(first + count), row \(r) (pos \(first + r)), sample seed 31")
                #expect(v.passed, "\(v)")
            }
        }
    }

    @Test("The long-position rung can fail: float32 angles, and a Float recurrence, miss it at 10⁶")
    func checkCanFail() throws {
        let omega = try gslFrequencies(512)
        // Angles rounded to Float (a float32 framework): error up to ulp(10⁶)/2 = 0.031 rad.
        let float32Row: [Float] = omega.flatMap { w -> [Float] in
            let angle = Float(1_000_000) * Float(w)
            return [Float(sin(Double(angle))), Float(cos(Double(angle)))]
        }
        #expect(!compare(float32Row, try gslRow(1_000_000, omega), longBound).passed)
        // The rotation recurrence in Float from position 999,000 over 1,000 steps: ~1000·2⁻²⁴ drift.
        var s = omega.map { Float(sin(999_000 * $0)) }, c = omega.map { Float(cos(999_000 * $0)) }
        let sw = omega.map { Float(sin($0)) }, cw = omega.map { Float(cos($0)) }
        for _ in 0..<1000 {
            for i in omega.indices { (s[i], c[i]) = (s[i] * cw[i] + c[i] * sw[i], c[i] * cw[i] - s[i] * sw[i]) }
        }
        let floatRecurrence = omega.indices.flatMap { [s[$0], c[$0]] }
        #expect(!compare(floatRecurrence, try gslRow(1_000_000, omega), longBound).passed)
    }

    @Test("Report: worst |PE − GSL| at long positions (printed, for docs/reliability.md)")
    func report() throws {
        for variant in KernelPath.allCases {
            for d in [512, 1024] {
                let positions = longPositions(seed: UInt(d))
                let pe = try SinusoidalPositionalEncoding(dimension: d, contextLength: SinusoidalPositionalEncoding.positionCeiling)
                let e = try worstAbsoluteError(pe.rows(at: positions, path: variant), positions: positions, dimension: d)
                print(String(format: "PE %@ d=%d sampled positions ≤ 1e6: max |err| %.3g; %d of %d values not the correctly rounded Float",
                             variant.rawValue, d, e.worst, e.notCorrectlyRounded, e.total))
            }
        }
        let count = 32_768, first = 1_000_000 - (count - 1)
        let table = try SinusoidalPositionalEncoding(dimension: 512, contextLength: SinusoidalPositionalEncoding.positionCeiling)
            .table(count: count, startingAt: first)
        let rows = Array(stride(from: 0, to: count, by: 1024)) + [count - 1]
        let sub = try Matrix(rows: rows.count, cols: 512, storage: rows.flatMap { table.row($0) })
        let e = try worstAbsoluteError(sub, positions: rows.map { first + $0 }, dimension: 512)
        print(String(format: "PE optimized d=512 window of %d rows ending at 1e6: max |err| %.3g; %d of %d values not the correctly rounded Float",
                     count, e.worst, e.notCorrectlyRounded, e.total))
    }
}
