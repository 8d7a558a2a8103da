import DecoderSpec
import GSLOracle
import SpecSupport
import Testing

/// One case of the oracle sweep: Tq, Tk ∈ {1, 7, 64, 129, 1000}, head dimension d ∈ {8, 64, 80},
/// heads ∈ {1, 4, 12}, and a mask. All 25 (Tq, Tk) pairs are covered; the (d, heads) pair and the
/// mask rotate with the case index, and a (d, heads) pair is skipped when Tq·Tk·d·heads exceeds the
/// debug-build budget (the naive path is a scalar triple loop), so every size still meets every
/// head dimension somewhere in the sweep.
struct SweepCase: CustomStringConvertible, Sendable {
    var tq: Int, tk: Int, d: Int, heads: Int, maskKind: Int, seed: UInt

    var mask: AttentionMask {
        switch maskKind % 4 {
        case 0: return .none
        case 1: return .causal(queryOffset: max(0, tk - tq))
        case 2: return .keyPadding(validLength: tk - tk / 3)
        default: return try! AttentionMask.causal(queryOffset: max(0, tk - tq)).combined(with: .keyPadding(validLength: tk - tk / 3))
        }
    }

    var description: String { "Tq=\(tq) Tk=\(tk) d=\(d) heads=\(heads) mask=\(mask) seed=\(seed)" }

    static let sizes = [1, 7, 64, 129, 1000]
    static let headShapes = [(8, 1), (64, 4), (80, 12), (64, 1), (8, 12), (80, 4), (8, 4), (64, 12), (80, 1)]
    static let budget = 20_000_000  // Tq·Tk·d·heads multiply-adds per GEMM, in a debug build

    static let all: [SweepCase] = {
        var cases: [SweepCase] = []
        var n = 0
        for tq in sizes {
            for tk in sizes {
                for offset in 0..<headShapes.count {
                    let (d, h) = headShapes[(n + offset) % headShapes.count]
                    if tq * tk * d * h <= budget {
                        cases.append(SweepCase(tq: tq, tk: tk, d: d, heads: h, maskKind: n, seed: UInt(1000 + n)))
                        break
                    }
                }
                n += 1
            }
        }
        return cases
    }()
}

@Suite("Attention: scaled dot-product and multi-head attention against GSL")
struct AttentionOracleSpecs {
    @Test("The sweep covers every (Tq, Tk) pair and every head dimension and head count")
    func sweepCoverage() {
        let cases = SweepCase.all
        #expect(cases.count == 25)
        #expect(Set(cases.map(\.d)) == [8, 64, 80])
        #expect(Set(cases.map(\.heads)) == [1, 4, 12])
        #expect(Set(cases.map(\.maskKind).map { $0 % 4 }) == [0, 1, 2, 3])
    }

    @Test("Every variant of multi-head attention on projected Q/K/V matches the GSL reference (attentionBound)",
          arguments: SweepCase.all)
    func sweep(_ c: SweepCase) throws {
        let dModel = c.d * c.heads
        let q = Inputs.matrix(rows: c.tq, cols: dModel, seed: c.seed)
        let k = Inputs.matrix(rows: c.tk, cols: dModel, seed: c.seed + 1)
        let v = Inputs.matrix(rows: c.tk, cols: dModel, seed: c.seed + 2)
        let ref = try AttentionOracleChecks.multiHeadReference(q: q, k: k, v: v, heads: c.heads, mask: c.mask)
        let (bound, tol) = attentionBound(q: q, k: k, v: v, headDimension: c.d)
        var outputs: [KernelPath: Matrix] = [:]
        for variant in KernelPath.allCases {
            let o = try multiHeadAttention(q: q, k: k, v: v, heads: c.heads, mask: c.mask, path: variant)
            outputs[variant] = o
            let verdict = compare(o.storage, ref, bound, "\(variant) \(c)")
            #expect(verdict.passed, "\(verdict)")
        }
        // Every variant vs naive: each is within `tol` of the exact value, so within 2·tol of each other.
        for variant in KernelPath.allCases where variant != .naive {
            let verdict = compare(outputs[variant]!.storage, outputs[.naive]!.storage, .absolute(2 * tol), "\(variant) vs naive, \(c)")
            #expect(verdict.passed, "\(verdict)")
        }
    }

    @Test("Single-head SDPA, both variants, matches the reference on shapes not divisible by 8 or 16",
          arguments: [(1, 1, 1), (3, 5, 3), (17, 33, 7), (65, 63, 9), (5, 130, 24), (70, 17, 13)])
    func oddShapes(_ shape: (Int, Int, Int)) throws {
        let (tq, tk, d) = shape
        let seed = UInt(tq * 10_000 + tk * 100 + d)
        let q = Inputs.matrix(rows: tq, cols: d, seed: seed)
        let k = Inputs.matrix(rows: tk, cols: d, seed: seed + 1)
        let v = Inputs.matrix(rows: tk, cols: d + 3, seed: seed + 2)  // d_v ≠ d_k on purpose
        for mask in [AttentionMask.none, .causal(queryOffset: max(0, tk - tq)), .keyPadding(validLength: (tk + 1) / 2)] {
            for variant in KernelPath.allCases {
                let verdict = AttentionOracleChecks.matchesGSLReference(sdpa(variant), q: q, k: k, v: v, mask: mask,
                                                               context: "\(variant) Tq=\(tq) Tk=\(tk) d=\(d) mask=\(mask) seed=\(seed)")
                #expect(verdict.passed, "\(verdict)")
            }
        }
    }

    @Test("Large scores (inputs in [−8, 8], d = 64) do not overflow: the max subtraction works in both variants")
    func largeScores() throws {
        let q = Inputs.matrix(rows: 40, cols: 64, seed: 71, range: -8...8)
        let k = Inputs.matrix(rows: 90, cols: 64, seed: 72, range: -8...8)
        let v = Inputs.matrix(rows: 90, cols: 16, seed: 73)
        for variant in KernelPath.allCases {
            let verdict = AttentionOracleChecks.matchesGSLReference(sdpa(variant), q: q, k: k, v: v, mask: .causal(queryOffset: 50),
                                                           context: "\(variant) large scores seed=71")
            #expect(verdict.passed, "\(verdict)")
        }
    }

    @Test("An additive bias mask (finite values and −∞) matches the reference in both variants")
    func additiveBias() throws {
        let (tq, tk) = (9, 70)
        var bias = Inputs.matrix(rows: tq, cols: tk, seed: 81, range: -2...2)
        for i in 0..<tq { bias[i, (i * 7) % tk] = -.infinity; bias[i, 65] = -.infinity }
        for j in 0..<tk { bias[4, j] = -.infinity }  // row 4 fully masked by the bias
        let q = Inputs.matrix(rows: tq, cols: 8, seed: 82)
        let k = Inputs.matrix(rows: tk, cols: 8, seed: 83)
        let v = Inputs.matrix(rows: tk, cols: 8, seed: 84)
        let mask = AttentionMask.additive(bias)
        let wRef = try AttentionOracleChecks.weightsReference(q: q, k: k, mask: mask)
        for variant in KernelPath.allCases {
            let o = try scaledDotProductAttention(q: q, k: k, v: v, mask: mask, path: variant)
            // The reference adds the bias itself; masked (−∞) entries must get weight 0.
            let ref = try GSL.dgemm(m: tq, n: 8, k: tk, a: wRef, b: v.storage.doubles)
            let verdict = compare(o.storage, ref, attentionBound(q: q, k: k, v: v).bound, "\(variant) additive bias seed=81")
            #expect(verdict.passed, "\(verdict)")
            #expect(o.row(4).allSatisfy { $0 == 0 }, "fully masked row 4 must be all zero in \(variant)")
        }
    }

    @Test("attentionWeights matches the reference weights within (Tk + 8)·u + 2·e_s relative")
    func weightsAgainstReference() throws {
        let q = Inputs.matrix(rows: 12, cols: 64, seed: 91)
        let k = Inputs.matrix(rows: 33, cols: 64, seed: 92)
        let w = try attentionWeights(q: q, k: k, mask: .causal(queryOffset: 21))
        let ref = try AttentionOracleChecks.weightsReference(q: q, k: k, mask: .causal(queryOffset: 21))
        // Per-weight relative bound of attentionBound's second step (e_s for |q|, |k| ≤ 1, d = 64).
        let es = 65 * unitRoundoff * 64 / 8.0
        let verdict = compare(w.storage, ref, .relative(2 * es + Double(33 + 8) * unitRoundoff), "weights seed=91")
        #expect(verdict.passed, "\(verdict)")
    }
}

@Suite("Attention: properties, run on every variant")
struct AttentionPropertySpecs {
    @Test("Attention rows sum to 1 (weights read off with V = I), fully masked rows to 0",
          arguments: KernelPath.allCases)
    func rowsSumToOne(_ variant: KernelPath) {
        for (tq, tk, d, seed) in [(5, 9, 8, 1), (33, 70, 64, 2), (1, 129, 80, 3)] as [(Int, Int, Int, UInt)] {
            let q = Inputs.matrix(rows: tq, cols: d, seed: seed), k = Inputs.matrix(rows: tk, cols: d, seed: seed + 1)
            for mask in [AttentionMask.none, .causal(), .keyPadding(validLength: tk / 2),
                         try! AttentionMask.causal().combined(with: .keyPadding(validLength: 3))] {
                let verdict = AttentionOracleChecks.rowsSumToOne(weights(of: sdpa(variant)), q: q, k: k, mask: mask,
                                                           context: "\(variant) Tq=\(tq) Tk=\(tk) mask=\(mask) seed=\(seed)")
                #expect(verdict.passed, "\(verdict)")
            }
        }
        // The library's own weights function too.
        let q = Inputs.matrix(rows: 10, cols: 16, seed: 5), k = Inputs.matrix(rows: 10, cols: 16, seed: 6)
        let verdict = AttentionOracleChecks.rowsSumToOne({ try attentionWeights(q: $0, k: $1, mask: $2) }, q: q, k: k,
                                                   mask: .causal(), context: "attentionWeights seed=5")
        #expect(verdict.passed, "\(verdict)")
    }

    @Test("Causality: changing positions > i leaves outputs ≤ i bitwise unchanged (SDPA and MHA)",
          arguments: KernelPath.allCases)
    func causality(_ variant: KernelPath) throws {
        let x = Inputs.matrix(rows: 70, cols: 16, seed: 11)
        for i in [0, 6, 31, 63, 68] {
            let verdict = AttentionOracleChecks.causality({ try scaledDotProductAttention(q: $0, k: $0, v: $0, mask: .causal(), path: variant) },
                                                    x: x, position: i, seed: UInt(100 + i), context: "SDPA \(variant) i=\(i) seed=11")
            #expect(verdict.passed, "\(verdict)")
        }
        var rng = SeededRNG(seed: 12)
        let mha = try MultiHeadAttention(modelWidth: 16, heads: 4, std: 1 / Float(16).squareRoot(), rng: &rng)
        let path = variant
        for i in [0, 5, 40] {
            let verdict = AttentionOracleChecks.causality({ try mha($0, mask: .causal(), path: path) },
                                                    x: x, position: i, seed: UInt(200 + i), context: "MHA \(path) i=\(i) seed=12")
            #expect(verdict.passed, "\(verdict)")
        }
    }

    @Test("Padded keys get exactly zero weight, and their K/V contents cannot change the output",
          arguments: KernelPath.allCases)
    func padding(_ variant: KernelPath) {
        for (tq, tk, valid, seed) in [(4, 9, 5, 21), (20, 130, 67, 22), (3, 64, 0, 23), (6, 17, 17, 24)] as [(Int, Int, Int, UInt)] {
            let q = Inputs.matrix(rows: tq, cols: 24, seed: seed)
            let k = Inputs.matrix(rows: tk, cols: 24, seed: seed + 1)
            let v = Inputs.matrix(rows: tk, cols: 12, seed: seed + 2)
            let ctx = "\(variant) Tq=\(tq) Tk=\(tk) valid=\(valid) seed=\(seed)"
            let w = AttentionOracleChecks.maskedKeysGetZeroWeight(weights(of: sdpa(variant)), q: q, k: k,
                                                            mask: .keyPadding(validLength: valid), context: ctx)
            #expect(w.passed, "\(w)")
            let o = AttentionOracleChecks.paddedKeysIgnored(sdpa(variant), q: q, k: k, v: v, validLength: valid, seed: seed + 3, context: ctx)
            #expect(o.passed, "\(o)")
        }
    }

    @Test("Future keys get exactly zero weight under the causal mask (with and without offset)",
          arguments: KernelPath.allCases)
    func causalZeros(_ variant: KernelPath) {
        let q = Inputs.matrix(rows: 70, cols: 8, seed: 31), k = Inputs.matrix(rows: 100, cols: 8, seed: 32)
        for mask in [AttentionMask.causal(), .causal(queryOffset: 30), .causal(queryOffset: 99)] {
            let verdict = AttentionOracleChecks.maskedKeysGetZeroWeight(weights(of: sdpa(variant)), q: q, k: k, mask: mask,
                                                                  context: "\(variant) mask=\(mask) seed=31")
            #expect(verdict.passed, "\(verdict)")
        }
    }

    @Test("Self-attention without positional encoding is permutation-equivariant (SDPA and MHA)",
          arguments: KernelPath.allCases)
    func permutation(_ variant: KernelPath) throws {
        let x = Inputs.matrix(rows: 37, cols: 24, seed: 41)
        let v1 = AttentionChecks.permutationEquivariant({ try scaledDotProductAttention(q: $0, k: $0, v: $0, path: variant) },
                                                        x: x, seed: 42, context: "SDPA \(variant) seed=41")
        #expect(v1.passed, "\(v1)")
        var rng = SeededRNG(seed: 43)
        let mha = try MultiHeadAttention(modelWidth: 24, heads: 3, std: 1 / Float(24).squareRoot(), rng: &rng)
        let path = variant
        // Projections are row-wise, so they commute with the permutation; the error bound doubles
        // per stage at most, and attentionBound of the raw input is a generous stand-in for
        // projected inputs of the same scale (weights N(0, 1/d) keep unit scale) — checked with ×8.
        let x2 = Inputs.matrix(rows: 37, cols: 24, seed: 44)
        let permuted = AttentionChecks.permutationEquivariant({ try mha($0, path: path) }, x: x2, seed: 45,
                                                              context: "MHA \(path) seed=44")
        #expect(permuted.passed, "\(permuted)")
    }

    @Test("Attention of constant values returns the constant (weights are a convex combination)",
          arguments: KernelPath.allCases)
    func constantValues(_ variant: KernelPath) {
        let q = Inputs.matrix(rows: 13, cols: 16, seed: 51), k = Inputs.matrix(rows: 70, cols: 16, seed: 52)
        for mask in [AttentionMask.none, .causal(), .keyPadding(validLength: 9)] {
            let verdict = AttentionChecks.constantValuesPreserved(sdpa(variant), q: q, k: k, mask: mask, context: "\(variant) mask=\(mask) seed=51")
            #expect(verdict.passed, "\(verdict)")
        }
    }

    @Test("Causal with queryOffset equals the corresponding rows of full causal attention (KV-cache step), bitwise",
          arguments: KernelPath.allCases)
    func causalOffset(_ variant: KernelPath) {
        let t = 131
        let q = Inputs.matrix(rows: t, cols: 16, seed: 61), k = Inputs.matrix(rows: t, cols: 16, seed: 62)
        let v = Inputs.matrix(rows: t, cols: 16, seed: 63)
        for newQueries in [1, 2, 5, 64, 131] {
            let verdict = AttentionChecks.offsetMatchesFullCausal(sdpa(variant), q: q, k: k, v: v, newQueries: newQueries,
                                                                  context: "\(variant) T=\(t) seed=61")
            #expect(verdict.passed, "\(verdict)")
        }
    }

    @Test("A fully masked query row (padding of length 0, or causal row before any key) is all zero, never NaN",
          arguments: KernelPath.allCases)
    func fullyMasked(_ variant: KernelPath) throws {
        let q = Inputs.matrix(rows: 3, cols: 8, seed: 71), k = Inputs.matrix(rows: 5, cols: 8, seed: 72)
        let v = Inputs.matrix(rows: 5, cols: 8, seed: 73)
        let o = try scaledDotProductAttention(q: q, k: k, v: v, mask: .keyPadding(validLength: 0), path: variant)
        #expect(o.storage.allSatisfy { $0 == 0 }, "\(variant): expected all zeros, got \(o.storage.prefix(8))")
        let w = try attentionWeights(q: q, k: k, mask: .keyPadding(validLength: 0))
        #expect(w.storage.allSatisfy { $0 == 0 })
    }
}

@Suite("Attention: multi-head attention with projections")
struct MultiHeadSpecs {
    @Test("1-head MHA with identity projections equals SDPA, bitwise, on both backends")
    func oneHeadIsSDPA() throws {
        let x = Inputs.matrix(rows: 19, cols: 12, seed: 81)
        let mem = Inputs.matrix(rows: 7, cols: 12, seed: 82)
        let mha = try MultiHeadAttention.identity(modelWidth: 12, heads: 1)
        for path in KernelPath.allCases {
            let a = try mha(x, memory: mem, mask: .none, path: path)
            let b = try scaledDotProductAttention(q: x, k: mem, v: mem, path: path)
            // Identity GEMMs are exact (one product of 1 and x, the rest 0, plus bias 0), so bitwise.
            #expect(compare(a.storage, b.storage, .exact, "cross-attention \(path) seed=81").passed)
            let c = try mha(x, mask: .causal(), path: path)
            let d = try scaledDotProductAttention(q: x, k: x, v: x, mask: .causal(), path: path)
            #expect(compare(c.storage, d.storage, .exact, "self-attention \(path) seed=81").passed)
        }
    }

    @Test("MHA with random weights and biases matches a GSL reference of the whole formula: one call, one KV-cache step per row, and the training forward over packed segments")
    func projectionsAgainstReference() throws {
        let (d, heads, tq, tk) = (24, 4, 9, 14)
        let ws = (0..<4).map { Inputs.matrix(rows: d, cols: d, seed: UInt(900 + $0), range: -0.4...0.4) }
        let bs = (0..<4).map { Inputs.matrix(rows: 1, cols: d, seed: UInt(910 + $0), range: -0.2...0.2).storage }
        let projections = try (0..<4).map { try Linear(weight: ws[$0], bias: bs[$0]) }
        let mha = try MultiHeadAttention(query: projections[0], key: projections[1], value: projections[2], output: projections[3], heads: heads)
        let xq = Inputs.matrix(rows: tq, cols: d, seed: 920), xkv = Inputs.matrix(rows: tk, cols: d, seed: 921)
        func linear(_ x: Matrix, _ w: Matrix, _ b: [Float]) throws -> [Double] {
            var y = try GSL.dgemm(transB: true, m: x.rows, n: d, k: d, a: x.storage.doubles, b: w.storage.doubles)
            for r in 0..<x.rows { for c in 0..<d { y[r * d + c] += Double(b[c]) } }
            return y
        }
        func toMatrix(_ a: [Double], _ rows: Int) -> Matrix { try! Matrix(rows: rows, cols: d, storage: a.map(Float.init)) }
        // Reference in Double throughout; rounding Q, K, V to Float for the attention reference costs ≤ u relative each,
        // covered by the bound's score term (e_s uses d + 1 roundings).
        /// The whole formula in Double for query input xq and key/value input xkv, and its bound.
        func reference(_ xq: Matrix, _ xkv: Matrix, _ mask: AttentionMask) throws -> (out: [Double], tol: Double) {
            let (tq, tk) = (xq.rows, xkv.rows)
            let qRef = try linear(xq, ws[0], bs[0]), kRef = try linear(xkv, ws[1], bs[1]), vRef = try linear(xkv, ws[2], bs[2])
            let heads64 = try AttentionOracleChecks.multiHeadReference(q: toMatrix(qRef, tq), k: toMatrix(kRef, tk), v: toMatrix(vRef, tk),
                                                                       heads: heads, mask: mask)
            let out = try linear(toMatrix(heads64, tq), ws[3], bs[3])
            // Bound: the attention bound on the projected inputs, propagated through W_O (row sums of |W_O| ≤ d·0.4),
            // plus the projection GEMMs' own γ_d relative error on |x|·|W| ≤ d·0.4 (inputs ≤ 1).
            let att = attentionBound(q: toMatrix(qRef, tq), k: toMatrix(kRef, tk), v: toMatrix(vRef, tk), headDimension: d / heads).value
            let proj = Double(d + 2) * unitRoundoff * Double(d) * 0.4 * 1.5
            return (out, (att + 3 * proj) * Double(d) * 0.4 + proj)
        }
        let cross = try reference(xq, xkv, .causal(queryOffset: 5))
        // Self-attention, for the KV-cache path: one row per step must give the rows of the causal formula.
        let selfRef = try reference(xkv, xkv, .causal())
        // Training's packed forward: a causal segment of 5 rows and a 9-row segment with 6 valid keys.
        let packed = [AttentionSegment.selfAttention(0..<5, causal: true), .selfAttention(5..<tk, validLength: 6)]
        let segmentRefs = try packed.map { try reference(xkv.rows($0.queries), xkv.rows($0.keys), $0.mask) }
        for path in KernelPath.allCases {
            let o = try mha(xq, memory: xkv, mask: .causal(queryOffset: 5), path: path)
            let verdict = compare(o.storage, cross.out, .absolute(cross.tol), "MHA \(path) d=\(d) heads=\(heads) seed=900")
            #expect(verdict.passed, "\(verdict)")
            var cache = LayerKVCache.empty(width: d)
            var steps: [Float] = []
            for t in 0..<tk { steps += try mha(xkv.rows(t..<(t + 1)), cache: &cache, path: path).storage }
            let cached = compare(steps, selfRef.out, .absolute(selfRef.tol), "MHA KV-cache steps \(path) d=\(d) heads=\(heads) seed=921")
            #expect(cached.passed, "\(cached)")
            // The training forward of the same layer, its masks from `AttentionSegment.mask`: the cross
            // segment (9 queries, the last 9 of 14 causal positions) is `.causal(queryOffset: 5)`, as above.
            let crossSegment = AttentionSegment(queries: 0..<tq, keys: 0..<tk, causal: true)
            #expect(crossSegment.mask == .causal(queryOffset: 5))
            let trainedCross = mha.trainingForward(xq, memory: xkv, segments: [crossSegment], path: path).0
            let tc = compare(trainedCross.storage, cross.out, .absolute(cross.tol), "MHA trainingForward cross \(path) seed=900")
            #expect(tc.passed, "\(tc)")
            let trainedSelf = mha.trainingForward(xkv, memory: xkv, segments: packed, path: path).0
            for (segment, ref) in zip(packed, segmentRefs) {
                let rows = trainedSelf.rows(segment.queries).storage
                let ts = compare(rows, ref.out, .absolute(ref.tol), "MHA trainingForward \(segment.mask) \(path) seed=921")
                #expect(ts.passed, "\(ts)")
                let inference = try mha(xkv.rows(segment.queries), mask: segment.mask, path: path)
                let inf = compare(inference.storage, ref.out, .absolute(ref.tol), "MHA \(segment.mask) \(path) seed=921")
                #expect(inf.passed, "\(inf)")
            }
        }
    }

    @Test("The KV-cache path: attending one new query over cached projected K/V equals that row of full causal attention, bitwise; the layer's cache steps too (naive)")
    func kvCachePath() throws {
        var rng = SeededRNG(seed: 7)
        let mha = try MultiHeadAttention(modelWidth: 32, heads: 4, std: 1 / Float(32).squareRoot(), rng: &rng)
        let x = Inputs.matrix(rows: 21, cols: 32, seed: 8)
        for path in KernelPath.allCases {
            let q = try mha.query(x, path: path)
            let k = try mha.key(x, path: path), v = try mha.value(x, path: path)
            let full = try mha.attend(queries: q, keys: k, values: v, mask: .causal(), path: path)
            for t in [1, 10, 21] {  // the query at position t − 1, attending the cached keys 0 ..< t
                let kt = k.rows(0..<t), vt = v.rows(0..<t)
                let qt = q.rows((t - 1)..<t)
                let heads = try mha.attend(queries: qt, keys: kt, values: vt, mask: .causal(queryOffset: t - 1), path: path,
                                           trustedKeyRows: t - 1)
                let verdict = compare(heads.storage, full.row(t - 1), .exact, "KV step t=\(t) \(path) seed=7")
                #expect(verdict.passed, "\(verdict)")
            }
            // The layer's own cache path, one row per step, against the full causal self-attention.
            // Bitwise on the naive path: naive GEMM sums each dot product in the same order however
            // many rows it is given, and the attention step is the one above. The optimized GEMM
            // sums a lone row in another order (≈ 1e-7 apart), so its cache path is checked
            // against the GSL reference in `projectionsAgainstReference`.
            guard path == .naive else { continue }
            let whole = try mha(x, mask: .causal(), path: path)
            var cache = LayerKVCache.empty(width: 32)
            for t in 0..<21 {
                let step = try mha(x.rows(t..<(t + 1)), cache: &cache, path: path)
                #expect(cache.length == t + 1)
                let verdict = compare(step.storage, whole.row(t), .exact, "cached step \(t) \(path) seed=7")
                #expect(verdict.passed, "\(verdict)")
            }
        }
    }

    @Test("headWeights: one [Tq, Tk] matrix per head, rows summing to 1")
    func headWeights() throws {
        var rng = SeededRNG(seed: 3)
        let mha = try MultiHeadAttention(modelWidth: 12, heads: 3, std: 1 / Float(12).squareRoot(), rng: &rng)
        let x = Inputs.matrix(rows: 6, cols: 12, seed: 4)
        let ws = try mha.headWeights(x, memory: x, mask: .causal())
        #expect(ws.count == 3)
        for w in ws {
            #expect(w.shape == Shape(6, 6))
            for i in 0..<6 { #expect(abs(w.row(i).reduce(0, +) - 1) <= Float(2 * 6 + 4) * 0x1p-24) }
        }
    }
}
