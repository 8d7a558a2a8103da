// The source documents' PE formulas (Sources/Errata/PositionalEncodingErrata.swift) run through
// the same checks as the library. These specs pass because the defects are real.
import DecoderSpec
import SpecSupport
import Testing

@Suite("Errata: the source documents' positional encodings fail the properties")
struct PositionalEncodingErrataSpecs {
    let doc000: PEImplementation = { n, d in PositionalEncodingErrata.doc000Formula(positions: n, dimension: d) }
    let doc002: PEImplementation = { n, d in PositionalEncodingErrata.doc002Formula(positions: n, dimension: d) }
    let doc004: PEImplementation = { n, d in PositionalEncodingErrata.doc004Formula(positions: n, dimension: d) }
    let doc000Code: PEImplementation = { n, d in PositionalEncodingErrata.doc000Code(positions: n, dimension: d) }

    /// True when every row's d values are identical (no dimension index).
    func allColumnsEqual(_ m: Matrix) -> Bool {
        (0..<m.rows).allSatisfy { r in m.row(r).allSatisfy { $0 == m[r, 0] } }
    }

    @Test("Doc 000 p_t = sin(2πt/10000) + cos(2πt/10000): every dimension equal; fails every property")
    func doc000Formula() {
        let m = doc000(300, 64)
        #expect(allColumnsEqual(m))
        #expect(m[0, 0] == 1 && m[0, 1] == 1, "PE(0) is [1, 1, …], not [0, 1, …]")
        for (name, v) in allProperties(doc000) { #expect(!v.passed, "doc 000 unexpectedly passes \(name)") }
    }

    @Test("Doc 002 PE(i) = sin(2πi/d) + cos(2πi/d): every dimension equal and period d_model")
    func doc002Formula() {
        let d = 64
        let m = doc002(3 * d, d)
        #expect(allColumnsEqual(m))
        // Period d_model: positions i and i + d get the same value (up to sin/cos rounding of
        // 2π(i+d)/d vs 2πi/d in Double, then one Float rounding: ≤ 2 Float ulps of values ≤ √2).
        let v = compare(m.row(5 + d), m.row(5).map(Double.init), .absolute(2 * Double(Float(1.5).ulp)), "PE(5+d) vs PE(5)")
        #expect(v.passed, "period d: \(v)")
        #expect(m.row(5) != m.row(6))
        for (name, v) in allProperties(doc002) { #expect(!v.passed, "doc 002 unexpectedly passes \(name)") }
    }

    @Test("Doc 004 sin(2π/10000·pos/1024·i/d) + cos(…(i+1)/d): no (sin, cos) pairs, no rotation")
    func doc004Formula() {
        for (name, v) in allProperties(doc004) { #expect(!v.passed, "doc 004 unexpectedly passes \(name)") }
        // Its largest angle over 2048 positions is 2π·2047/(10000·1024) ≈ 1.3e-3 rad, so every row is
        // within 1.3e-3 of the all-ones vector plus cos terms ≈ 1: positions are nearly identical.
        let m = doc004(2048, 64)
        let spread = m.storage.map { abs(Double($0) - 1) }.max()!
        #expect(spread < 2e-3, "doc 004 rows should all be ≈ 1; spread \(spread)")
    }

    @Test("Doc 000 code: frequency from the position, so rows from p ≈ 10 on all equal PE(0)")
    func doc000CodeFrequency() {
        let m = doc000Code(64, 16)
        // One frequency per row: all even columns equal, all odd columns equal.
        for r in 0..<64 {
            #expect(stride(from: 0, to: 16, by: 2).allSatisfy { m[r, $0] == m[r, 0] })
            #expect(stride(from: 1, to: 16, by: 2).allSatisfy { m[r, $0] == m[r, 1] })
        }
        // The angle p·10^(−4·⌊p/2⌋) is < 1e-18 from p = 10 (rows within 1e-18 of PE(0), cos
        // rounds to exactly 1), and from p = 24 it is below Float's smallest subnormal, so the
        // rows are exactly [0, 1, 0, 1, …] = PE(0) — the positions collapse.
        for p in 10..<64 { #expect(m.row(p).enumerated().allSatisfy { $0.offset % 2 == 0 ? $0.element < 1e-18 : $0.element == 1 }, "row \(p)") }
        for p in 24..<64 { #expect(m.row(p) == m.row(0), "row \(p) should equal PE(0) exactly") }
        #expect(!positionsAreDistinct(doc000Code, positions: 64, d: 16).passed)
        #expect(!rotationProperty(doc000Code, positions: 64, d: 16, starts: [0, 1, 2], shifts: [1, 2]).passed)
        #expect(!innerProductDependsOnlyOnOffset(doc000Code, positions: 64, d: 16, pairs: [(0, 1)], shifts: [2]).passed)
        #expect(!checkAgainstGSL(m, rows: [1, 2, 3], label: "doc 000 code").passed)
        // (It does pass PE(0) and the norm: sin² + cos² = 1 per pair. Those two checks alone
        // would not catch it — the rotation and offset checks do.)
        #expect(originIsZeroOne(doc000Code, d: 16).passed)
        #expect(normIsHalfDimension(doc000Code, positions: 64, d: 16, rows: [0, 5, 40]).passed)
    }

    @Test("Doc 000 code: torch.cat instead of + doubles the width; E[X] + P keeps it")
    func doc000Concatenation() throws {
        let d = 8
        let e = Inputs.matrix(rows: 5, cols: d, seed: 3)
        let p = try SinusoidalPositionalEncoding(dimension: d).table(count: 5)
        let cat = PositionalEncodingErrata.doc000Concatenate(e, p)
        #expect(cat.shape == Shape(5, 2 * d))
        let sum = try addPositions(e, p)
        #expect(sum.shape == Shape(5, d))
        // The concatenated rows do not equal E[X] + P in any d columns: position is not mixed in.
        #expect(Array(cat.storage[0..<d]) == e.row(0))
        #expect(e.row(0) != sum.row(0))
        // A layer built for d_model (here the PE's own add) rejects the concatenated width.
        #expect(throws: DecoderSpecError.self) { try SinusoidalPositionalEncoding(dimension: d).add(to: cat) }
    }
}
