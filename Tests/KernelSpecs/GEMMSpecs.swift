import DecoderSpec
import GSLOracle
import SpecSupport
import Testing

// GEMM specs (docs/kernels.md). The oracle is `gsl_blas_dgemm` in Double on the same (Float)
// inputs, which are exactly representable in Double, so the reference is C to ~1e-16.
//
// Tolerance (Higham, "Accuracy and Stability of Numerical Algorithms", Thm 3.5 and §3.5): any
// order of summation of a K-term dot product satisfies |ŝ − s| ≤ γ_K · Σ|a_p||b_p|, γ_K ≈ K·u
// (u = ε/2). With the α scaling and the β·C update (two more roundings) each entry obeys
//     |Ĉ − C|_ij ≤ (K + 2) · ε · (|α|·(|A||B|)_ij + |β|·|C₀|_ij)        ε = 2⁻²³ (Float), 2⁻⁵² (Double)
// — c = 2 over the classic bound in units of u, for the FMA-or-not rounding of each step.
// The bound holds for every summation order (blocked, SIMD lanes, K slices), so naive, optimized
// and parallel must all meet it. (|A||B|) is itself computed by GSL on |A| and |B|.

/// A GEMM under test: (transA, transB, m, n, k, α, A, B, β, C₀) → C, dense row-major.
typealias GEMMImplementation<T> = (_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int,
                                   _ alpha: T, _ a: [T], _ b: [T], _ beta: T, _ c: [T]) -> [T]

/// The library's sgemm/dgemm for one variant, as a `GEMMImplementation` (through the checked API).
func librarySGEMM(_ v: KernelPath) -> GEMMImplementation<Float> {
    { tA, tB, m, n, k, alpha, a, b, beta, c in
        var c = c
        try! GEMM.sgemmChecked(v, transA: tA, transB: tB, m: m, n: n, k: k, alpha: alpha, a: a, b: b, beta: beta, c: &c)
        return c
    }
}

func libraryDGEMM(_ v: KernelPath) -> GEMMImplementation<Double> {
    { tA, tB, m, n, k, alpha, a, b, beta, c in
        var c = c
        try! GEMM.dgemmChecked(v, transA: tA, transB: tB, m: m, n: n, k: k, alpha: alpha, a: a, b: b, beta: beta, c: &c)
        return c
    }
}

/// Reusable check: `impl` computes α·op(A)·op(B) + β·C₀ within (K+2)·ε·(|α||A||B| + |β||C₀|) of
/// `gsl_blas_dgemm`, entries drawn uniformly from [−1, 1] with `seed`.
func checkGEMMAgainstGSL<T: BinaryFloatingPoint>(
    _ impl: GEMMImplementation<T>, m: Int, n: Int, k: Int, transA: Bool = false, transB: Bool = false,
    alpha: T = 1, beta: T = 0, seed: UInt
) -> Verdict {
    let rng = GSLRandom(seed: seed)
    let a = (0..<(m * k)).map { _ in T(Float(rng.uniform(-1, 1))) }
    let b = (0..<(k * n)).map { _ in T(Float(rng.uniform(-1, 1))) }
    let c0 = (0..<(m * n)).map { _ in T(Float(rng.uniform(-1, 1))) }
    // β = 0: C₀ is NaN, which BLAS semantics say must not be read.
    let cIn = beta == 0 ? [T](repeating: .nan, count: m * n) : c0
    let out = impl(transA, transB, m, n, k, alpha, a, b, beta, cIn)
    let ad = a.map(Double.init), bd = b.map(Double.init), cd = c0.map(Double.init)
    let context = "gemm \(m)×\(n)×\(k) transA=\(transA) transB=\(transB) α=\(alpha) β=\(beta) seed=\(seed)"
    guard k > 0 else {
        // k = 0: C = β·C₀ (0 when β = 0), no products at all: one rounded multiply in T, exactly.
        return compare(out, c0.map { beta == 0 ? 0 : beta * $0 }, .exact, context)
    }
    do {
        let ref = try GSL.dgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: Double(alpha),
                                a: ad, b: bd, beta: Double(beta), c: beta == 0 ? [] : cd)
        let absAB = try GSL.dgemm(transA: transA, transB: transB, m: m, n: n, k: k,
                                  a: ad.map(abs), b: bd.map(abs))
        let eps = Double(T.ulpOfOne)
        guard out.count == ref.count else { return .fail("length \(out.count) vs \(ref.count). \(context)") }
        var worst = -1, worstRatio = 0.0
        for i in ref.indices {
            let bound = Double(k + 2) * eps * (abs(Double(alpha)) * absAB[i] + abs(Double(beta)) * (beta == 0 ? 0 : abs(cd[i])))
            let err = abs(Double(out[i]) - ref[i])
            if !(err <= bound) {  // NaN fails too
                let r = err.isNaN ? .infinity : err / max(bound, .leastNonzeroMagnitude)
                if r > worstRatio || worst < 0 { worstRatio = r; worst = i }
            }
        }
        if worst >= 0 {
            return .fail("entry \(worst) (row \(worst / n), col \(worst % n)): expected \(ref[worst]), observed \(Double(out[worst])), outside (K+2)·ε·(|α||A||B|+|β||C₀|) by ×\(worstRatio). \(context)")
        }
        return .pass
    } catch {
        return .fail("GSL failed: \(error). \(context)")
    }
}

/// Reusable check: `impl` and `reference` agree within 2·(K+2)·ε·(|α||A||B| + |β||C₀|) (each is
/// within the bound of the exact product), here with strided storage: lda, ldb, ldc exceed the
/// row lengths by `pad`, and the padding must come back untouched.
func checkGEMMStrided(
    _ variant: KernelPath, m: Int, n: Int, k: Int, transA: Bool, transB: Bool, pad: Int, seed: UInt
) -> Verdict {
    let rng = GSLRandom(seed: seed)
    let (ar, ac) = transA ? (k, m) : (m, k)
    let (br, bc) = transB ? (n, k) : (k, n)
    let lda = ac + pad, ldb = bc + pad, ldc = n + pad
    let a = rng.floats(ar * lda), b = rng.floats(br * ldb)
    let c0 = rng.floats(m * ldc)
    func run(_ v: KernelPath) -> [Float] {
        var c = c0
        c.withUnsafeMutableBufferPointer { pc in
            GEMM.sgemm(v, transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda,
                       b: b, ldb: ldb, beta: 2, c: pc.baseAddress!, ldc: ldc)
        }
        return c
    }
    let got = run(variant), ref = run(.naive)
    let context = "strided \(m)×\(n)×\(k) lda=\(lda) ldb=\(ldb) ldc=\(ldc) transA=\(transA) transB=\(transB) seed=\(seed)"
    for i in 0..<m {
        for j in n..<ldc where got[i * ldc + j] != c0[i * ldc + j] {
            return .fail("padding at row \(i), col \(j) was overwritten. \(context)")
        }
    }
    // |A|,|B|,|C₀| ≤ 1, α = 0.5, β = 2: (|α||A||B| + |β||C₀|)_ij ≤ 0.5·K + 2.
    let bound = 2 * Double(k + 2) * Double(Float.ulpOfOne) * (0.5 * Double(k) + 2)
    return compare(got, ref, .absolute(bound), context)
}

@Suite("GEMM: C = α·op(A)·op(B) + β·C against gsl_blas_dgemm")
struct GEMMSpecs {
    /// Sizes from 1 to 512 plus shapes that exercise every edge of the blocking: m not a multiple of
    /// MR = 6 or 14, n not a multiple of NR = 16 or 32 (Float) / 8 or 16 (Double), K > KC = 256 (several K slices,
    /// β applied once), m > MC, n > NC = 4080 (several column panels), and for `.parallel` (≥ 2·10⁶
    /// multiply-adds) both its column split (n ≥ m) and its row split (n < m).
    static let shapes: [(m: Int, n: Int, k: Int)] = [
        (1, 1, 1), (3, 5, 7), (17, 33, 65), (64, 64, 64), (255, 257, 129), (512, 512, 512),
        (7, 15, 300), (2, 4100, 3), (300, 20, 400), (1, 37, 1), (37, 1, 2),
        // `.parallel` paths: column split (m small, or two NC panels), row split (n < m).
        (5, 700, 600), (60, 4100, 10),
    ]
    /// Shapes on which the naive (unspecialized, debug-built) loop is quick.
    static let smallShapes = shapes.filter { $0.m * $0.n * $0.k <= 300_000 }

    @Test("Every variant, Float, meets the (K+2)·ε bound against GSL over the shape sweep", arguments: KernelPath.allCases)
    func sgemmSweep(variant: KernelPath) {
        for (i, s) in Self.shapes.enumerated() where variant != .naive || s.m * s.n * s.k <= 300_000 {
            let v = checkGEMMAgainstGSL(librarySGEMM(variant), m: s.m, n: s.n, k: s.k, seed: UInt(100 + i))
            #expect(v.passed, "\(variant): \(v.message)")
        }
    }

    @Test("Every variant, Double, meets the (K+2)·ε bound against GSL", arguments: KernelPath.allCases)
    func dgemmSweep(variant: KernelPath) {
        for (i, s) in Self.shapes.enumerated() where s.m * s.n * s.k <= (variant == .naive ? 300_000 : 9_000_000) {
            let v = checkGEMMAgainstGSL(libraryDGEMM(variant), m: s.m, n: s.n, k: s.k, seed: UInt(200 + i))
            #expect(v.passed, "\(variant): \(v.message)")
        }
    }

    @Test("All four transpose combinations, every variant, Float and Double",
          arguments: [(false, false), (true, false), (false, true), (true, true)])
    func transposes(tA: Bool, tB: Bool) {
        for variant in KernelPath.allCases {
            for (i, s) in [(17, 33, 65), (13, 7, 3), (255, 257, 129)].enumerated()
            where variant != .naive || s.0 * s.1 * s.2 <= 300_000 {
                let vf = checkGEMMAgainstGSL(librarySGEMM(variant), m: s.0, n: s.1, k: s.2, transA: tA, transB: tB,
                                             alpha: 1, beta: 0, seed: UInt(300 + i))
                #expect(vf.passed, "\(variant): \(vf.message)")
                let vd = checkGEMMAgainstGSL(libraryDGEMM(variant), m: s.0, n: s.1, k: s.2, transA: tA, transB: tB,
                                             alpha: 1, beta: 0, seed: UInt(400 + i))
                #expect(vd.passed, "\(variant): \(vd.message)")
            }
        }
    }

    @Test("α and β: scaling, accumulation, β = 0 never reads C (C₀ = NaN), k = 0 gives β·C₀")
    func alphaBeta() {
        let cases: [(Float, Float)] = [(0.75, -1.5), (-2, 1), (1, 0), (0.5, 0), (0, 3)]
        for variant in KernelPath.allCases {
            for (i, (alpha, beta)) in cases.enumerated() {
                for s in [(5, 19, 11), (40, 70, 300)] where variant != .naive || s.0 * s.1 * s.2 <= 300_000 {
                    let v = checkGEMMAgainstGSL(librarySGEMM(variant), m: s.0, n: s.1, k: s.2, transA: i % 2 == 1,
                                                alpha: alpha, beta: beta, seed: UInt(500 + i))
                    #expect(v.passed, "\(variant): \(v.message)")
                    let vd = checkGEMMAgainstGSL(libraryDGEMM(variant), m: s.0, n: s.1, k: s.2, transB: i % 2 == 0,
                                                 alpha: Double(alpha), beta: Double(beta), seed: UInt(600 + i))
                    #expect(vd.passed, "\(variant): \(vd.message)")
                }
            }
            for beta: Float in [0, 2.5] {
                let v = checkGEMMAgainstGSL(librarySGEMM(variant), m: 4, n: 9, k: 0, beta: beta, seed: 700)
                #expect(v.passed, "\(variant) k = 0: \(v.message)")
            }
        }
    }

    @Test("Optimized and parallel equal naive within the bound on strided storage; padding untouched")
    func strided() {
        for variant in [KernelPath.optimized, .parallel] {
            for (i, (tA, tB)) in [(false, false), (true, false), (false, true), (true, true)].enumerated() {
                let v = checkGEMMStrided(variant, m: 23, n: 35, k: 41, transA: tA, transB: tB, pad: 3, seed: UInt(800 + i))
                #expect(v.passed, "\(variant): \(v.message)")
            }
        }
    }

    @Test("Every variant vs naive on small shapes (each within the bound of the exact product)")
    func variantsAgreeWithNaive() {
        for (i, s) in Self.smallShapes.enumerated() {
            let rng = GSLRandom(seed: UInt(900 + i))
            let a = rng.floats(s.m * s.k), b = rng.floats(s.k * s.n)
            let zero = [Float](repeating: 0, count: s.m * s.n)
            let ref = librarySGEMM(.naive)(false, false, s.m, s.n, s.k, 1, a, b, 0, zero)
            for variant in KernelPath.allCases {
                let got = librarySGEMM(variant)(false, false, s.m, s.n, s.k, 1, a, b, 0, zero)
                // Both within (K+2)·ε·K of the exact value (|a|, |b| ≤ 1): their distance within twice that.
                let bound = 2 * Double(s.k + 2) * Double(Float.ulpOfOne) * Double(s.k)
                let v = compare(got, ref, .absolute(bound), "\(variant) vs naive \(s) seed=\(900 + i)")
                #expect(v.passed, "\(v.message)")
            }
        }
    }

    /// Shapes around one register tile's edges and the blocking's: M = MR − 1, MR, MR + 1, 2·MR + 1
    /// and past MC (84, 144 or 168 rows); N = NR ± 1, 2·NR + 3; K = 1, KC − 1, KC, KC + 1, 2·KC + 1 for
    /// KC = 256 (the AVX2 tile's, and Double's), KC = 384 (the AVX-512 Float tile's before) and
    /// KC = 512 (the AVX-512 Float tile's now).
    static func tileEdgeShapes(mr: Int, nr: Int) -> [(m: Int, n: Int, k: Int)] {
        [(mr - 1, nr + 1, 1), (mr, nr, 255), (mr + 1, nr - 1, 256), (2 * mr + 1, 2 * nr + 3, 257),
         (3 * mr - 1, nr, 513), (1, 2 * nr - 1, 37), (12 * mr + 1, nr + 5, 19), (2, 3, 2),
         (mr + 2, nr + 2, 383), (2 * mr - 1, nr, 385), (3, 2 * nr + 1, 769),
         (mr - 2, nr + 4, 511), (7 * mr + 1, nr - 3, 512), (4, 2 * nr, 1025)]
    }

    /// `GEMM.sgemm` / `GEMM.dgemm` on `path` with `tile`, row-major and unpadded, as the checker calls it.
    static func sgemm(_ path: KernelPath, tile: GEMMTile) -> GEMMImplementation<Float> {
        { tA, tB, m, n, k, alpha, a, b, beta, c in
            var c = c
            c.withUnsafeMutableBufferPointer { pc in
                GEMM.sgemm(path, tile: tile, transA: tA, transB: tB, m: m, n: n, k: k, alpha: alpha, a: a,
                           lda: tA ? m : k, b: b, ldb: tB ? k : n, beta: beta, c: pc.baseAddress!, ldc: n)
            }
            return c
        }
    }

    static func dgemm(_ path: KernelPath, tile: GEMMTile) -> GEMMImplementation<Double> {
        { tA, tB, m, n, k, alpha, a, b, beta, c in
            var c = c
            c.withUnsafeMutableBufferPointer { pc in
                GEMM.dgemm(path, tile: tile, transA: tA, transB: tB, m: m, n: n, k: k, alpha: alpha, a: a,
                           lda: tA ? m : k, b: b, ldb: tB ? k : n, beta: beta, c: pc.baseAddress!, ldc: n)
            }
            return c
        }
    }

    @Test("Every register tile (AVX2 6×16 / 6×8, AVX-512 14×32 / 14×16), Float and Double, optimized and parallel, meets the bound around the tile's edges",
          arguments: GEMMTile.allCases)
    func everyTile(tile: GEMMTile) {
        for path in [KernelPath.optimized, .parallel] {
            let (sgemm, dgemm) = (Self.sgemm(path, tile: tile), Self.dgemm(path, tile: tile))
            let (fmr, fnr) = tile.floatShape, (dmr, dnr) = tile.doubleShape
            for (i, s) in Self.tileEdgeShapes(mr: fmr, nr: fnr).enumerated() {
                // Cycle through the transposes and (α, β) so every combination meets an edge tile.
                let v = checkGEMMAgainstGSL(sgemm, m: s.m, n: s.n, k: s.k, transA: i % 2 == 1, transB: i % 4 >= 2,
                                            alpha: i % 3 == 0 ? 1 : -0.75, beta: i % 3 == 2 ? 1.5 : (i % 3 == 1 ? 1 : 0),
                                            seed: UInt(1000 + i))
                #expect(v.passed, "\(tile) \(path) Float: \(v.message)")
            }
            for (i, s) in Self.tileEdgeShapes(mr: dmr, nr: dnr).enumerated() {
                let v = checkGEMMAgainstGSL(dgemm, m: s.m, n: s.n, k: s.k, transA: i % 4 >= 2, transB: i % 2 == 1,
                                            alpha: i % 3 == 0 ? 1 : 0.5, beta: i % 3 == 2 ? -2 : (i % 3 == 1 ? 1 : 0),
                                            seed: UInt(1100 + i))
                #expect(v.passed, "\(tile) \(path) Double: \(v.message)")
            }
        }
        // `.parallel` past its 2·10⁶ multiply-add threshold: the column split (n ≥ m) and the row split.
        for (i, s) in [(2 * tile.floatShape.mr + 3, 3 * tile.floatShape.nr + 7, 1100), (700, 29, 130)].enumerated() {
            let split: GEMMImplementation<Float> = { tA, tB, m, n, k, alpha, a, b, beta, c in
                var c = c
                c.withUnsafeMutableBufferPointer { pc in
                    GEMM.sgemm(.parallel, tile: tile, transA: tA, transB: tB, m: m, n: n, k: k, alpha: alpha, a: a,
                               lda: tA ? m : k, b: b, ldb: tB ? k : n, beta: beta, c: pc.baseAddress!, ldc: n)
                }
                return c
            }
            let v = checkGEMMAgainstGSL(split, m: s.0, n: s.1, k: s.2, beta: 1, seed: UInt(1200 + i))
            #expect(v.passed, "\(tile) parallel split: \(v.message)")
        }
    }

    @Test("K is cut into the fewest slices of at most KC steps, of near-equal length (KC = 256, 384, 512; k = 1…2,600)")
    func sliceLengths() {
        for kc in [256, 384, 512] {
            for k in 1...2600 {
                let step = GEMM.sliceLength(k, max: kc)
                let slices = (k + step - 1) / step
                let last = k - (slices - 1) * step
                // The fewest slices possible is ⌈k/KC⌉; equal lengths differ by less than one step per slice.
                #expect(step <= kc && slices == (k + kc - 1) / kc && last >= 1 && step - last < slices,
                        "k \(k), KC \(kc): step \(step), \(slices) slices, last \(last)")
            }
        }
    }

    @Test("Uneven K slices (k = 1,229, the training's tokens per step: 410 + 410 + 409 at KC = 512, 4 × 246 + 245 at 256; k = KC + 2; 2·KC + 5), every tile, β applied once",
          arguments: GEMMTile.allCases)
    func unevenSlices(tile: GEMMTile) {
        let (fmr, fnr) = tile.floatShape, (dmr, dnr) = tile.doubleShape
        let fkc = tile == .avx512 ? 512 : 256
        let floatShapes = [(2 * fmr + 3, fnr + 7, 1229, true, false, Float(1.5)), (fmr - 1, 2 * fnr + 1, fkc + 2, false, true, 1),
                           (fmr + 1, fnr, 2 * fkc + 5, false, false, 0)]
        for (i, s) in floatShapes.enumerated() {
            let v = checkGEMMAgainstGSL(Self.sgemm(.optimized, tile: tile), m: s.0, n: s.1, k: s.2, transA: s.3, transB: s.4, alpha: 0.75, beta: s.5, seed: UInt(1300 + i))
            #expect(v.passed, "\(tile) Float: \(v.message)")
        }
        let doubleShapes = [(2 * dmr + 3, dnr + 7, 1229, false, true, -2.0), (dmr + 1, dnr - 1, 256 + 2, true, true, 1), (dmr, 2 * dnr, 2 * 256 + 5, true, false, 0)]
        for (i, s) in doubleShapes.enumerated() {
            let v = checkGEMMAgainstGSL(Self.dgemm(.optimized, tile: tile), m: s.0, n: s.1, k: s.2, transA: s.3, transB: s.4, alpha: 0.75, beta: s.5, seed: UInt(1400 + i))
            #expect(v.passed, "\(tile) Double: \(v.message)")
        }
    }

    @Test("The GEMM check can fail: a GEMM that drops the last k term, or ignores β, is caught")
    func checkCanFail() {
        let dropsLastTerm: GEMMImplementation<Float> = { tA, tB, m, n, k, alpha, a, b, beta, c in
            // Treats K as K − 1 by zeroing the last column of A (a classic off-by-one).
            var a2 = a
            if !tA { for i in 0..<m { a2[i * k + k - 1] = 0 } }
            return librarySGEMM(.optimized)(tA, tB, m, n, k, alpha, a2, b, beta, c)
        }
        #expect(!checkGEMMAgainstGSL(dropsLastTerm, m: 17, n: 33, k: 65, seed: 1).passed)
        let ignoresBeta: GEMMImplementation<Float> = { tA, tB, m, n, k, alpha, a, b, _, c in
            librarySGEMM(.optimized)(tA, tB, m, n, k, alpha, a, b, 0, c)
        }
        #expect(!checkGEMMAgainstGSL(ignoresBeta, m: 17, n: 33, k: 65, alpha: 1, beta: 1, seed: 2).passed)
        let swapsTranspose: GEMMImplementation<Float> = { tA, tB, m, n, k, alpha, a, b, beta, c in
            librarySGEMM(.optimized)(tA, !tB, m, n, k, alpha, a, b, beta, c)
        }
        #expect(!checkGEMMAgainstGSL(swapsTranspose, m: 16, n: 16, k: 16, seed: 3).passed)
    }

    @Test("Matrix.matmul agrees with GSL for every variant and throws on an inner-dimension mismatch")
    func matmul() throws {
        let a = Inputs.matrix(rows: 9, cols: 21, seed: 31), b = Inputs.matrix(rows: 21, cols: 18, seed: 32)
        let ref = try GSL.dgemm(m: 9, n: 18, k: 21, a: a.storage.doubles, b: b.storage.doubles)
        for variant in KernelPath.allCases {
            let c = try a.matmul(b, path: variant)
            #expect(c.shape == Shape(9, 18))
            // (K+2)·ε·K with |a|,|b| ≤ 1.
            let v = compare(c.storage, ref, .absolute(23 * Double(Float.ulpOfOne) * 21), "matmul \(variant)")
            #expect(v.passed, "\(v.message)")
            let ct = try a.transposed().matmul(b.transposed(), transposeSelf: true, transposeOther: true, path: variant)
            #expect(compare(ct.storage, ref, .absolute(23 * Double(Float.ulpOfOne) * 21), "matmul ᵀᵀ \(variant)").passed)
        }
        #expect(throws: DecoderSpecError.self) { try a.matmul(a) }
    }
}
