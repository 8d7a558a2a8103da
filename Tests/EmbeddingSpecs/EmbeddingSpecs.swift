import DecoderSpec
import GSLOracle
import SpecSupport
import Testing

/// Bit patterns, so "bitwise equal" is literal (−0 ≠ +0, NaN payloads compared).
func bits(_ m: Matrix) -> [UInt32] { m.storage.map(\.bitPattern) }

/// Reusable check: `lookup(ids)` returns row ids[t] of `table` at row t, times `scale`, with one
/// Float rounding: |out − E·s| ≤ u·|E·s| in Double, where s = Float(sqrt d) itself carries ≤ u
/// relative error (u = 2⁻²⁴) — so 2⁻²³ relative to E·sqrt(d) in exact arithmetic when scaled,
/// and exact when unscaled (a gather does no arithmetic).
func lookupMatchesTable(_ lookup: ([Int]) throws -> Matrix, table: Matrix, ids: [Int], scaled: Bool) -> Verdict {
    do {
        let out = try lookup(ids)
        guard out.shape == Shape(ids.count, table.cols) else {
            return .fail("shape \(out.shape), expected [\(ids.count), \(table.cols)]")
        }
        let root = Double(table.cols).squareRoot()
        let reference = ids.flatMap { id in table.row(id).map { Double($0) * (scaled ? root : 1) } }
        return compare(out.storage, reference, scaled ? .relative(0x1p-23) : .exact, "ids \(ids.prefix(8))…, d=\(table.cols)")
    } catch {
        return .fail("threw \(error)")
    }
}

/// Reusable check: `head(H)` equals H·Eᵀ computed by GSL's dgemm in Double, per element within
/// the standard dot-product bound |fl(h·e) − h·e| ≤ γ_d·Σ_j |h_j||e_j|, γ_d = d·u/(1 − d·u),
/// u = 2⁻²⁴ (Float inputs are exact in Double, so the reference is exact to ~1e-16).
func tiedHeadMatchesGSL(_ head: (Matrix) throws -> Matrix, table: Matrix, hidden: Matrix) -> Verdict {
    do {
        let logits = try head(hidden)
        let (t, v, d) = (hidden.rows, table.rows, table.cols)
        guard logits.shape == Shape(t, v) else { return .fail("logits \(logits.shape), expected [\(t), \(v)]") }
        let reference = try GSL.dgemm(transB: true, m: t, n: v, k: d, a: hidden.storage.doubles, b: table.storage.doubles)
        let u = 0x1p-24, gamma = Double(d) * u / (1 - Double(d) * u)
        for r in 0..<t {
            for c in 0..<v {
                let magnitude = (0..<d).reduce(0.0) { $0 + abs(Double(hidden[r, $1]) * Double(table[c, $1])) }
                let err = abs(Double(logits[r, c]) - reference[r * v + c])
                if !(err <= gamma * magnitude) {
                    return .fail("logit[\(r), \(c)]: expected \(reference[r * v + c]), observed \(logits[r, c]), |err| \(err) > γ_d·Σ|h||e| = \(gamma * magnitude)")
                }
            }
        }
        return .pass
    } catch {
        return .fail("threw \(error)")
    }
}

/// Reusable check: entries look like N(0, σ²): sample variance within 5σ_var of σ² (the variance
/// of a sample variance of n normals is 2σ⁴/(n − 1)) and mean within 5·σ/√n of 0.
func looksNormal(_ values: [Float], variance sigma2: Double) -> Verdict {
    let x = values.doubles, n = Double(values.count)
    let variance = GSL.sampleVariance(x), mean = GSL.mean(x)
    guard abs(variance - sigma2) <= 5 * (2 * sigma2 * sigma2 / (n - 1)).squareRoot() else {
        return .fail("sample variance \(variance), expected \(sigma2) (n = \(Int(n)))")
    }
    guard abs(mean) <= 5 * (sigma2 / n).squareRoot() else { return .fail("mean \(mean), expected 0 (n = \(Int(n)))") }
    return .pass
}

@Suite("Embedding: lookup, scaling, tied head, errors, naive vs optimized")
struct EmbeddingSpecs {
    @Test("Lookup returns the table's rows (exact) and sqrt(d)-scaled rows (2⁻²³ relative), every variant",
          arguments: KernelPath.allCases)
    func lookupRows(variant: KernelPath) throws {
        for (v, d, seed) in [(1, 1, 1), (10, 8, 2), (17, 33, 3), (50, 512, 4)] as [(Int, Int, UInt)] {
            let table = Inputs.matrix(rows: v, cols: d, seed: seed)
            let e = try EmbeddingTable(weight: table)
            let rng = GSLRandom(seed: seed)
            let ids = (0..<23).map { _ in rng.int(below: v) }
            for scaled in [false, true] {
                let check = lookupMatchesTable({ try e.lookup($0, scaled: scaled, path: variant) }, table: table, ids: ids, scaled: scaled)
                #expect(check.passed, "V=\(v) d=\(d) seed=\(seed) scaled=\(scaled): \(check)")
            }
        }
    }

    @Test("The check can fail: a lookup that is off by one row, or forgets the scale, is caught")
    func checkCanFail() throws {
        let table = Inputs.matrix(rows: 6, cols: 4, seed: 9)
        let e = try EmbeddingTable(weight: table)
        let offByOne: ([Int]) throws -> Matrix = { ids in try e.lookup(ids.map { min($0 + 1, 5) }) }
        #expect(!lookupMatchesTable(offByOne, table: table, ids: [0, 1, 2], scaled: false).passed)
        let unscaled: ([Int]) throws -> Matrix = { try e.lookup($0, scaled: false) }
        #expect(!lookupMatchesTable(unscaled, table: table, ids: [0, 1, 2], scaled: true).passed)
    }

    @Test("Optimized gather is bitwise equal to naive over many shapes (d = 1, 7, 8, 9, 33, 512 …)")
    func optimizedVsNaive() throws {
        for d in [1, 2, 7, 8, 9, 15, 16, 17, 33, 64, 100, 512] {
            for v in [1, 3, 37] {
                let seed = UInt(d * 100 + v)
                let e = try EmbeddingTable(weight: Inputs.matrix(rows: v, cols: d, seed: seed, range: -3...3))
                let rng = GSLRandom(seed: seed)
                for t in [1, 2, 5, 64] {
                    let ids = (0..<t).map { _ in rng.int(below: v) }
                    for scaled in [false, true] {
                        let a = try e.lookup(ids, scaled: scaled, path: .naive)
                        let b = try e.lookup(ids, scaled: scaled, path: .optimized)
                        #expect(bits(a) == bits(b), "d=\(d) V=\(v) T=\(t) scaled=\(scaled) seed=\(seed)")
                    }
                }
            }
        }
    }

    @Test("Special values survive the gather kernel bitwise: −0, ±Inf, NaN, subnormals (the table itself rejects non-finite weights)")
    func specialValues() throws {
        let special: [Float] = [-0.0, .infinity, -.infinity, .nan, .leastNonzeroMagnitude, -.greatestFiniteMagnitude, 1, 2, 3]
        let ids = [0, 0]
        for variant in KernelPath.allCases {
            for scale: Float in [1, 2] {
                var out = [Float](repeating: 7, count: 2 * special.count)
                special.withUnsafeBufferPointer { table in
                    ids.withUnsafeBufferPointer { idp in
                        out.withUnsafeMutableBufferPointer { o in
                            EmbeddingGather.gather(variant, table: table.baseAddress!, vocabularySize: 1, dimension: special.count,
                                                   ids: idp, scale: scale, into: o.baseAddress!)
                        }
                    }
                }
                // x · 1 is x bitwise (a quiet NaN keeps its payload); x · 2 is exact for these values.
                let expected = special.map { ($0 * scale).bitPattern }
                #expect(out.map(\.bitPattern) == expected + expected, "\(variant) scale \(scale)")
            }
        }
        #expect(throws: DecoderSpecError.nonFinite(what: "embedding table [1, 9]", index: 1, value: .infinity)) {
            try EmbeddingTable(vocabularySize: 1, dimension: special.count, storage: special)
        }
    }

    @Test("Out-of-range id is a typed error naming the id, its position and V", arguments: [-1, 10, 11, Int.max])
    func idOutOfRange(bad: Int) throws {
        let e = try EmbeddingTable.seeded(vocabularySize: 10, dimension: 4, seed: 0)
        do {
            _ = try e.lookup([1, 2, bad, 3])
            Issue.record("id \(bad) accepted")
        } catch let error as DecoderSpecError {
            #expect(error == .idOutOfRange(id: bad, position: 2, vocabularySize: 10))
            #expect(error.description.contains("token id \(bad) at position 2"), "\(error)")
            #expect(error.description.contains("vocabulary of 10"), "\(error)")
        }
    }

    @Test("Empty sequence and wrong table shapes are typed errors naming what is wrong")
    func shapeErrors() throws {
        let e = try EmbeddingTable.seeded(vocabularySize: 10, dimension: 4, seed: 0)
        #expect(throws: DecoderSpecError.emptySequence(what: "token ids X")) { try e.lookup([]) }
        do {
            _ = try EmbeddingTable(vocabularySize: 3, dimension: 4, storage: [Float](repeating: 0, count: 11))
            Issue.record("11 elements accepted for [3, 4]")
        } catch let error as DecoderSpecError {
            #expect(error.description.contains("[3, 4]") && error.description.contains("11 elements"), "\(error)")
        }
        #expect(throws: DecoderSpecError.self) { try EmbeddingTable(weight: Matrix(rows: 0, cols: 4)) }
        #expect(throws: DecoderSpecError.self) { try EmbeddingTable(weight: Matrix(rows: 4, cols: 0)) }
        #expect(throws: DecoderSpecError.self) { try EmbeddingTable.seeded(vocabularySize: 0, dimension: 4, seed: 1) }
        // Sizes whose product overflows, or is absurdly large, are errors rather than traps.
        #expect(throws: DecoderSpecError.self) { try EmbeddingTable.seeded(vocabularySize: Int.max, dimension: 4, seed: 1) }
        #expect(throws: DecoderSpecError.self) { try EmbeddingTable.seeded(vocabularySize: 1 << 20, dimension: 1 << 20, seed: 1) }
        #expect(throws: DecoderSpecError.self) { try EmbeddingTable(vocabularySize: Int.max, dimension: 2, storage: [1]) }
        do {
            _ = try e.tiedLogits(Matrix(rows: 2, cols: 5))
            Issue.record("H of width 5 accepted for d = 4")
        } catch let error as DecoderSpecError {
            #expect(error.description.contains("[2, 5]") && error.description.contains("[10, 4]"), "\(error)")
        }
    }

    @Test("Tied head logits = H·Eᵀ matches GSL dgemm per element within γ_d·Σ|h||e|; an untied head fails")
    func tiedHead() throws {
        for (v, d, t) in [(1, 1, 1), (10, 8, 3), (37, 33, 5), (100, 64, 7)] {
            let e = try EmbeddingTable(weight: Inputs.matrix(rows: v, cols: d, seed: UInt(v)))
            let h = Inputs.matrix(rows: t, cols: d, seed: UInt(v + 1))
            for variant in KernelPath.allCases {
                let verdict = tiedHeadMatchesGSL({ try e.tiedLogits($0, path: variant) }, table: e.weight, hidden: h)
                #expect(verdict.passed, "\(variant) V=\(v) d=\(d) T=\(t) seeds \(v), \(v + 1): \(verdict)")
            }
        }
        // The check can fail: a head with its own (untied) weights, and a head that forgets to
        // transpose (scores with E's columns, only possible when V == d).
        let e = try EmbeddingTable(weight: Inputs.matrix(rows: 8, cols: 8, seed: 5))
        let other = try EmbeddingTable(weight: Inputs.matrix(rows: 8, cols: 8, seed: 6))
        let h = Inputs.matrix(rows: 3, cols: 8, seed: 7)
        #expect(!tiedHeadMatchesGSL({ try other.tiedLogits($0) }, table: e.weight, hidden: h).passed)
        #expect(!tiedHeadMatchesGSL({ try $0.matmul(e.weight) }, table: e.weight, hidden: h).passed)
    }

    @Test("Weight tying: looking up token v and scoring it with the head uses the same row E_v")
    func tyingSharesTheRow() throws {
        // logits(E[X])[t, v] = ⟨E_{x_t}, E_v⟩: on the diagonal v = x_t it is ‖E_{x_t}‖², so changing
        // row E_v changes both the input vector of v and the head's score for v.
        var e = try EmbeddingTable.seeded(vocabularySize: 5, dimension: 16, seed: 3)
        let x = try e.lookup([2])
        let before = try e.tiedLogits(x)
        let norm2 = x.row(0).reduce(0.0) { $0 + Double($1) * Double($1) }
        #expect(abs(Double(before[0, 2]) - norm2) <= 16 * 0x1p-24 * norm2)
        e.weight[2, 0] += 1
        let after = try e.tiedLogits(try e.lookup([2]))
        #expect(after[0, 2] != before[0, 2])
        #expect(after[0, 4] != before[0, 4])  // the input row changed, so every score changed
    }

    @Test("Seeded init: reproducible, seed-dependent, entries N(0, 1/d) (sample variance within 5σ)")
    func seededInit() throws {
        let a = try EmbeddingTable.seeded(vocabularySize: 200, dimension: 64, seed: 42)
        let b = try EmbeddingTable.seeded(vocabularySize: 200, dimension: 64, seed: 42)
        let c = try EmbeddingTable.seeded(vocabularySize: 200, dimension: 64, seed: 43)
        #expect(a == b)
        #expect(a != c)
        let v = looksNormal(a.weight.storage, variance: 1.0 / 64)
        #expect(v.passed, "seed 42: \(v)")
        // The check can fail: N(0, 1) entries (PyTorch's nn.Embedding default) and uniform [−1, 1).
        var rng = SeededRNG(seed: 42)
        #expect(!looksNormal(rng.normalMatrix(rows: 200, cols: 64, std: 1).storage, variance: 1.0 / 64).passed)
        #expect(!looksNormal(Inputs.matrix(rows: 200, cols: 64, seed: 42).storage, variance: 1.0 / 64).passed)
    }
}
