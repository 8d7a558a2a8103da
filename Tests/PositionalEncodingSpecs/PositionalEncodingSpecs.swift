import DecoderSpec
import GSLOracle
import SpecSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The library's sinusoidal table as a `PEImplementation`.
func library(_ variant: KernelPath) -> PEImplementation {
    { n, d in try! SinusoidalPositionalEncoding(dimension: d, contextLength: max(n, 1)).table(count: n, startingAt: 0, path: variant) }
}

/// A float32-angle implementation (what `torch.arange(..).float() * div_term` does): the angle
/// pos·ω is rounded to Float before sin/cos. Not library code — a foil proving the oracle rung
/// can fail: its error is ulp(pos)/2 ≈ 1.2e-4 at pos 2048.
let float32Angles: PEImplementation = { n, d in
    var m = Matrix(rows: n, cols: d)
    for p in 0..<n {
        for i in 0..<(d / 2) {
            let w = Float(1.0 / pow(10000.0, Double(2 * i) / Double(d)))
            let angle = Float(p) * w
            m[p, 2 * i] = sinf(angle)
            m[p, 2 * i + 1] = cosf(angle)
        }
    }
    return m
}

/// Tables shared by several tests (computed once; the optimized path is fast even in debug).
enum Tables {
    static let big = try! SinusoidalPositionalEncoding(dimension: 1024, contextLength: 8192).table(count: 8192)
    static let medium = try! SinusoidalPositionalEncoding(dimension: 512, contextLength: 2048).table(count: 2048)
}

@Suite("Positional encoding: sinusoidal table against GSL, naive vs optimized, properties, errors")
struct PositionalEncodingSpecs {
    @Test("PE(0) = [0, 1, 0, 1, …] exactly, every variant", arguments: KernelPath.allCases)
    func origin(variant: KernelPath) {
        for d in [2, 6, 64, 1024] {
            let v = originIsZeroOne(library(variant), d: d)
            #expect(v.passed, "\(variant) d=\(d): \(v)")
        }
    }

    @Test("Optimized 2048×512 matches GSL sin/cos in Double on every element (2⁻²⁴ relative + 1e-10)")
    func gslFullSweep() {
        // Every row of the table. Bound: peOracleBound (one Float rounding of a Double value).
        let v = checkAgainstGSL(Tables.medium, rows: Array(0..<2048), label: "optimized 2048×512")
        #expect(v.passed, "\(v)")
    }

    @Test("Optimized 8192×1024 matches GSL on sampled rows, incl. the last (2⁻²⁴ relative + 1e-10)")
    func gslBigSampled() {
        // Seeded sample of rows (printed on failure) plus the edges; every column of each row.
        let rng = GSLRandom(seed: 2024)
        let rows = [0, 1, 2, 3, 1023, 1024, 2047, 2048, 4095, 4096, 8190, 8191] + (0..<48).map { _ in rng.int(below: 8192) }
        let v = checkAgainstGSL(Tables.big, rows: rows, label: "optimized 8192×1024, sample seed 2024")
        #expect(v.passed, "\(v)")
    }

    @Test("Naive matches GSL on sampled positions up to 8191, d up to 1024 (2⁻²⁴ relative + 1e-10)")
    func gslNaiveSampled() throws {
        for d in [2, 8, 126, 512, 1024] {
            let pe = try SinusoidalPositionalEncoding(dimension: d, contextLength: 8192)
            let positions = [0, 1, 5, 100, 2047, 4000, 8191]
            let table = try pe.rows(at: positions, path: .naive)
            let omega = try gslFrequencies(d)
            for (r, p) in positions.enumerated() {
                let v = compare(table.row(r), try gslRow(p, omega), peOracleBound, "naive pos=\(p) d=\(d)")
                #expect(v.passed, "\(v)")
            }
        }
    }

    @Test("At the position ceiling 2²⁰ (a 2²⁰-step recurrence) values stay within 2⁻²⁴·|PE| + 1e-9 of GSL")
    func ceiling() {
        // Double-stage budget at n = 2²⁰: (√5 + 1)·n·2⁻⁵³ (recurrence) + 2·n·2⁻⁵³ (angle) ≈ 6e-10 < 1e-9.
        let n = SinusoidalPositionalEncoding.positionCeiling
        let table = try! SinusoidalPositionalEncoding(dimension: 8, contextLength: n).table(count: n)
        let rng = GSLRandom(seed: 77)
        let rows = Array((n - 8)..<n) + (0..<24).map { _ in rng.int(below: n) }
        let v = checkAgainstGSL(table, rows: rows, bound: .mixed(absolute: 1e-9, relative: floatUnitRoundoff),
                                label: "optimized 2²⁰×8, sample seed 77")
        #expect(v.passed, "\(v)")
    }

    @Test("Every value is within 1e-6 of float64 — and well within it")
    func statedTarget() {
        // The stated target is 1e-6 absolute; the oracle rung above is ~30× tighter. This spec
        // states the target literally for the 2048×512 table and the sampled 8192×1024 rows.
        let a = checkAgainstGSL(Tables.medium, rows: Array(stride(from: 0, to: 2048, by: 7)), bound: .absolute(1e-6), label: "2048×512")
        let b = checkAgainstGSL(Tables.big, rows: [8191, 6000, 4097], bound: .absolute(1e-6), label: "8192×1024")
        #expect(a.passed, "\(a)")
        #expect(b.passed, "\(b)")
    }

    @Test("The oracle rung fails a float32-angle table (error ≈ ulp(pos)/2): the check can fail")
    func float32AnglesFail() {
        let v = checkAgainstGSL(float32Angles(2049, 64), rows: [2048], label: "float32 angles")
        #expect(!v.passed)
        let loose = checkAgainstGSL(float32Angles(2049, 64), rows: [2048], bound: .absolute(1e-6), label: "float32 angles, 1e-6")
        #expect(!loose.passed, "float32 angles should miss even 1e-6 at pos 2048")
    }

    @Test("Optimized equals naive within 2⁻²³ relative + 1e-9, shapes incl. d=2, odd pair counts, offsets")
    func optimizedVsNaive() throws {
        // Both are one Float rounding of Double values within 1e-10 of the truth, so they differ
        // by at most 2u·|PE| + 2e-10 (u = 2⁻²⁴); the absolute term absorbs the u² cross term.
        let bound = Bound.mixed(absolute: 1e-9, relative: 0x1p-23)
        for d in [2, 4, 6, 8, 10, 14, 16, 34, 64, 130, 512] {
            for count in [1, 2, 7, 100] {
                for first in [0, 1, 999, 8000] {
                    let naive = try SinusoidalPositionalEncoding(dimension: d).table(count: count, startingAt: first, path: .naive)
                    let fast = try SinusoidalPositionalEncoding(dimension: d).table(count: count, startingAt: first, path: .optimized)
                    let v = compare(fast.storage, naive.storage, bound, "d=\(d) count=\(count) first=\(first)")
                    #expect(v.passed, "\(v)")
                }
            }
        }
    }

    @Test("A window starting at `first` equals the same rows of the full table (offset consistency)")
    func windowConsistency() throws {
        let pe = try SinusoidalPositionalEncoding(dimension: 64, contextLength: 600)
        let full = try pe.table(count: 600)
        let window = try pe.table(count: 100, startingAt: 500)
        let bound = Bound.mixed(absolute: 1e-9, relative: 0x1p-23)  // both sides on the oracle rung
        let v = compare(window.storage, Array(full.storage[(500 * 64)...]), bound, "window 500..<600")
        #expect(v.passed, "\(v)")
    }

    @Test("Rotation PE(p+k) = R_k·PE(p) with R_k from GSL, up to 8192×1024 (optimized) and 512×64 (naive)")
    func rotation() {
        let big: PEImplementation = { n, d in precondition(n == 8192 && d == 1024); return Tables.big }
        let v = rotationProperty(big, positions: 8192, d: 1024, starts: [0, 1, 333, 4000, 8000], shifts: [1, 2, 17, 191])
        #expect(v.passed, "\(v)")
        for variant in KernelPath.allCases {
            let w = rotationProperty(library(variant), positions: 512, d: 64, starts: [0, 5, 300], shifts: [1, 7, 200])
            #expect(w.passed, "\(variant): \(w)")
        }
    }

    @Test("⟨PE(p),PE(q)⟩ depends only on p − q (both variants; 8192×1024 optimized)")
    func innerProducts() {
        let big: PEImplementation = { _, _ in Tables.big }
        let v = innerProductDependsOnlyOnOffset(big, positions: 8192, d: 1024,
                                                pairs: [(0, 1), (10, 3), (100, 2000), (5000, 4999)], shifts: [1, 64, 3000])
        #expect(v.passed, "\(v)")
        for variant in KernelPath.allCases {
            let w = innerProductDependsOnlyOnOffset(library(variant), positions: 300, d: 34,
                                                    pairs: [(0, 1), (9, 4)], shifts: [1, 2, 250])
            #expect(w.passed, "\(variant): \(w)")
        }
    }

    @Test("‖PE(p)‖² = d/2 (both variants; 8192×1024 optimized)")
    func norms() {
        let big: PEImplementation = { _, _ in Tables.big }
        #expect(normIsHalfDimension(big, positions: 8192, d: 1024, rows: [0, 1, 4095, 8191]).passed)
        for variant in KernelPath.allCases {
            let v = normIsHalfDimension(library(variant), positions: 200, d: 10, rows: Array(0..<200))
            #expect(v.passed, "\(variant): \(v)")
        }
    }

    @Test("All properties pass for the library at the default check size")
    func allPropertiesPass() {
        for variant in KernelPath.allCases {
            for (name, v) in allProperties(library(variant)) { #expect(v.passed, "\(variant) \(name): \(v)") }
            #expect(positionsAreDistinct(library(variant), positions: 2048, d: 16).passed)
        }
    }

    // MARK: Errors and conventions

    @Test("Odd or too small d_model is a typed error naming d", arguments: [1, 3, 7, 513, 0, -2])
    func oddDimension(d: Int) {
        do {
            _ = try SinusoidalPositionalEncoding(dimension: d)
            Issue.record("d=\(d) accepted")
        } catch let error as DecoderSpecError {
            #expect(error.description.contains("d_model \(d)"), "\(error)")
        } catch { Issue.record("unexpected \(error)") }
    }

    @Test("Negative, oversized and empty position ranges are typed errors naming the positions")
    func positionErrors() throws {
        let pe = try SinusoidalPositionalEncoding(dimension: 8, contextLength: 100)
        let cases: [(Int, Int, String)] = [(1, -1, "position -1"), (1, 100, "100..<101"), (10, 95, "95..<105"), (0, 0, "empty")]
        for (count, first, needle) in cases {
            do {
                _ = try pe.table(count: count, startingAt: first)
                Issue.record("count \(count) first \(first) accepted")
            } catch let error as DecoderSpecError {
                #expect(error.description.contains(needle), "\(error)")
            }
        }
        #expect(throws: DecoderSpecError.self) { try pe.rows(at: [3, -4]) }
        // Extreme values are errors, not overflow traps.
        #expect(throws: DecoderSpecError.self) { try pe.table(count: 1, startingAt: Int.max) }
        #expect(throws: DecoderSpecError.self) { try pe.table(count: Int.max, startingAt: 1) }
        #expect(throws: DecoderSpecError.self) { try pe.table(count: 5, startingAt: Int.min) }
        let wide = try SinusoidalPositionalEncoding(dimension: 1 << 40, contextLength: 1 << 20)
        #expect(throws: DecoderSpecError.self) { try wide.table(count: 1 << 20) }
        #expect(throws: DecoderSpecError.self) { try LearnedPositionalEncoding.seeded(contextLength: Int.max, dimension: 2, seed: 0) }
        #expect(throws: DecoderSpecError.self) { try SinusoidalPositionalEncoding(dimension: 8, contextLength: (1 << 20) + 1) }
        #expect(throws: DecoderSpecError.self) { try SinusoidalPositionalEncoding(dimension: 8, contextLength: 0) }
        // The last valid window is accepted.
        #expect(try pe.table(count: 5, startingAt: 95).rows == 5)
    }

    @Test("X' = E[X] + P: exact Float sums, and a width mismatch names both shapes")
    func addition() throws {
        let pe = try SinusoidalPositionalEncoding(dimension: 6, contextLength: 16)
        let e = Inputs.matrix(rows: 4, cols: 6, seed: 11)
        let x = try pe.add(to: e, startingAt: 3)
        let p = try pe.table(count: 4, startingAt: 3)
        // a + b of two Floats is exact in Double, so Float(Double(a) + Double(b)) is the correctly
        // rounded Float sum: the bound is exact.
        let reference = zip(e.storage, p.storage).map { Double(Float(Double($0) + Double($1))) }
        let v = compare(x.storage, reference, .exact, "E[X]+P seed 11")
        #expect(v.passed, "\(v)")
        do {
            _ = try pe.add(to: Matrix(rows: 4, cols: 5))
            Issue.record("width 5 accepted for d=6")
        } catch let error as DecoderSpecError {
            #expect(error.description.contains("[4, 5]") && error.description.contains("6"), "\(error)")
        }
        #expect(throws: DecoderSpecError.self) { try addPositions(e, Matrix(rows: 3, cols: 6)) }
        #expect(throws: DecoderSpecError.self) { try pe.add(to: Inputs.matrix(rows: 17, cols: 6, seed: 1)) }
    }

    @Test("Learned table: rows are the weight's rows, seeded init is reproducible, ranges are checked")
    func learned() throws {
        let a = try LearnedPositionalEncoding.seeded(contextLength: 32, dimension: 8, seed: 5)
        let b = try LearnedPositionalEncoding.seeded(contextLength: 32, dimension: 8, seed: 5)
        let c = try LearnedPositionalEncoding.seeded(contextLength: 32, dimension: 8, seed: 6)
        #expect(a.weight == b.weight)
        #expect(a.weight != c.weight)
        let window = try a.table(count: 3, startingAt: 29)
        for r in 0..<3 { #expect(window.row(r) == a.weight.row(29 + r)) }
        #expect(throws: DecoderSpecError.self) { try a.table(count: 4, startingAt: 29) }
        #expect(throws: DecoderSpecError.self) { try a.table(count: 1, startingAt: -1) }
        #expect(throws: DecoderSpecError.self) { try LearnedPositionalEncoding(weight: Matrix(rows: 0, cols: 8)) }
        // A learned table has no formula, so it fails the sinusoidal properties (a sanity check
        // that they discriminate).
        let learnedImpl: PEImplementation = { n, d in try! LearnedPositionalEncoding.seeded(contextLength: n, dimension: d, seed: 1).table(count: n) }
        #expect(!originIsZeroOne(learnedImpl, d: 8).passed)
        #expect(!rotationProperty(learnedImpl, positions: 16, d: 8, starts: [0], shifts: [1]).passed)
    }
}
