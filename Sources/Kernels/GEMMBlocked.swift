#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CPrefetch
import Dispatch

// The optimized GEMM (docs/kernels.md, "How the optimized GEMM works").
//
// The classic Goto/BLIS structure:
//
//   for jc in 0..<n step NC                     ── a column panel of C and B
//     for pc in 0..<k step KC                   ── a slice of the inner dimension
//       pack B[pc..<pc+KC, jc..<jc+NC] → Bp     (KC × NC, in NR-wide slivers; stays in L3/L2)
//       for ic in 0..<m step MC
//         pack A[ic..<ic+MC, pc..<pc+KC] → Ap   (MC × KC, in MR-tall slivers; stays in L2)
//         for jr in 0..<NC step NR              ── one B sliver (KC × NR, stays in L1)
//           for ir in 0..<MC step MR
//             micro-kernel: C[MR × NR] = α · Ap_sliver · Bp_sliver + β' · C
//
// β' is the caller's β on the first KC slice and 1 afterwards (the later slices accumulate onto
// what the first one wrote). With β = 0 the first slice never reads C, as BLAS specifies.
//
// Packing copies op(A) and op(B) into the exact order the micro-kernel reads them, so the
// micro-kernel's loads are contiguous whatever the transposes and strides were, and edges are
// zero-padded to full MR × NR tiles (the padding is computed and then not stored).

/// One row of the register tile: a SIMD vector of NR scalars, with the two operations the
/// micro-kernel needs written for each concrete type. (Written generically, `SIMD.addingProduct`
/// is a loop over lanes, which LLVM does not vectorize for 32 lanes; on the concrete types below
/// it is one FMA per 512-bit or 256-bit register.)
protocol PackedRow: SIMD where Scalar: BinaryFloatingPoint {
    /// acc + a·b, a broadcast to every lane: one FMA per register in native builds, a multiply
    /// and an add otherwise (without a target-CPU flag an FMA would be a call to fmaf per lane).
    static func madd(_ acc: Self, _ a: Scalar, _ b: Self) -> Self
    /// s·v.
    static func scaled(_ v: Self, _ s: Scalar) -> Self
}

/// The scalars the packed GEMM runs on: the row operations written on concrete vector types
/// (where the compiler emits vector instructions for them), from which `PackedRow` is built.
protocol PackedScalar: BinaryFloatingPoint, SIMDScalar, Sendable {
    static func madd(_ acc: SIMD8<Self>, _ a: Self, _ b: SIMD8<Self>) -> SIMD8<Self>
    static func madd(_ acc: SIMD16<Self>, _ a: Self, _ b: SIMD16<Self>) -> SIMD16<Self>
    static func scaled(_ v: SIMD8<Self>, _ s: Self) -> SIMD8<Self>
    static func scaled(_ v: SIMD16<Self>, _ s: Self) -> SIMD16<Self>
}

extension Float: PackedScalar {
    @inline(__always)
    static func madd(_ acc: SIMD8<Float>, _ a: Float, _ b: SIMD8<Float>) -> SIMD8<Float> {
        #if DECODERSPEC_NATIVE
        return acc.addingProduct(SIMD8(repeating: a), b)
        #else
        return acc + SIMD8(repeating: a) * b
        #endif
    }
    @inline(__always)
    static func madd(_ acc: SIMD16<Float>, _ a: Float, _ b: SIMD16<Float>) -> SIMD16<Float> {
        #if DECODERSPEC_NATIVE
        return acc.addingProduct(SIMD16(repeating: a), b)
        #else
        return acc + SIMD16(repeating: a) * b
        #endif
    }
    @inline(__always) static func scaled(_ v: SIMD8<Float>, _ s: Float) -> SIMD8<Float> { s * v }
    @inline(__always) static func scaled(_ v: SIMD16<Float>, _ s: Float) -> SIMD16<Float> { s * v }
}

extension Double: PackedScalar {
    @inline(__always)
    static func madd(_ acc: SIMD8<Double>, _ a: Double, _ b: SIMD8<Double>) -> SIMD8<Double> {
        #if DECODERSPEC_NATIVE
        return acc.addingProduct(SIMD8(repeating: a), b)
        #else
        return acc + SIMD8(repeating: a) * b
        #endif
    }
    @inline(__always)
    static func madd(_ acc: SIMD16<Double>, _ a: Double, _ b: SIMD16<Double>) -> SIMD16<Double> {
        #if DECODERSPEC_NATIVE
        return acc.addingProduct(SIMD16(repeating: a), b)
        #else
        return acc + SIMD16(repeating: a) * b
        #endif
    }
    @inline(__always) static func scaled(_ v: SIMD8<Double>, _ s: Double) -> SIMD8<Double> { s * v }
    @inline(__always) static func scaled(_ v: SIMD16<Double>, _ s: Double) -> SIMD16<Double> { s * v }
}

extension SIMD8: PackedRow where Scalar: PackedScalar {
    @inline(__always) static func madd(_ acc: Self, _ a: Scalar, _ b: Self) -> Self { Scalar.madd(acc, a, b) }
    @inline(__always) static func scaled(_ v: Self, _ s: Scalar) -> Self { Scalar.scaled(v, s) }
}

extension SIMD16: PackedRow where Scalar: PackedScalar {
    @inline(__always) static func madd(_ acc: Self, _ a: Scalar, _ b: Self) -> Self { Scalar.madd(acc, a, b) }
    @inline(__always) static func scaled(_ v: Self, _ s: Scalar) -> Self { Scalar.scaled(v, s) }
}

/// 32 lanes as two 16-lane halves (a generic 32-lane `addingProduct` is not vectorized).
extension SIMD32: PackedRow where Scalar: PackedScalar {
    @inline(__always)
    static func madd(_ acc: Self, _ a: Scalar, _ b: Self) -> Self {
        Self(lowHalf: Scalar.madd(acc.lowHalf, a, b.lowHalf), highHalf: Scalar.madd(acc.highHalf, a, b.highHalf))
    }
    @inline(__always)
    static func scaled(_ v: Self, _ s: Scalar) -> Self {
        Self(lowHalf: Scalar.scaled(v.lowHalf, s), highHalf: Scalar.scaled(v.highHalf, s))
    }
}

/// A register tile and its cache blocking: MR rows of one `Row` vector (NR = Row.scalarCount
/// columns) accumulate an MR × NR block of C. The one micro-kernel below is generic over it.
protocol GEMMTileShape {
    associatedtype Scalar: PackedScalar
    associatedtype Row: PackedRow where Row.Scalar == Scalar
    /// Rows of the register tile (broadcast values of A per step), 1…14.
    static var mr: Int { get }
    /// Cache blocking: MC rows of A (multiple of mr), KC inner steps, NC columns of B (multiple of nr).
    static var mc: Int { get }
    static var kc: Int { get }
    static var nc: Int { get }
}

extension GEMMTileShape {
    /// Columns of the register tile: one `Row` vector.
    static var nr: Int { Row.scalarCount }
}

// The tiles (docs/kernels.md, "Tile shape per CPU"). Register counts are for the native build.

/// 16 × 256-bit registers (AVX2 + FMA): 6 rows of SIMD16<Float> (2 ymm each) = 12 accumulators
/// + 2 for the B row + 1 broadcast = 15 of 16. Also the tile of every non-x86 or non-native build.
enum FloatTile256: GEMMTileShape {
    typealias Scalar = Float
    typealias Row = SIMD16<Float>
    static var mr: Int { 6 }
    static var mc: Int { 144 }   // Ap = 144 × 256 × 4 B = 144 KiB, within a 512 KiB L2
    static var kc: Int { 256 }   // a B sliver = 256 × 16 × 4 B = 16 KiB, half of a 32 KiB L1d
    static var nc: Int { 4080 }  // Bp ≤ 256 × 4080 × 4 B ≈ 4 MiB, in the L3
}

/// 32 × 512-bit registers (AVX-512): 14 rows of SIMD32<Float> (2 zmm each) = 28 accumulators
/// + 2 for the B row + 1 broadcast = 31 of 32. Blocking for a 48 KiB L1d / 2 MiB L2 core: MC = 84
/// (Ap = 84 × 512 × 4 B = 168 KiB, in the L2), KC = 512 (a B sliver = 512 × 32 × 4 B = 64 KiB, fed
/// from L2; k ≤ 512 in one slice, so C is never re-read), NC = 4096; 84 × 512 measured 4–6 % faster
/// than the earlier 168 × 384 at n = 512 and 1024 (docs/kernels.md, "SGEMM against OpenBLAS").
enum FloatTile512: GEMMTileShape {
    typealias Scalar = Float
    typealias Row = SIMD32<Float>
    static var mr: Int { 14 }
    static var mc: Int { GEMMBlocking.floatMC }
    static var kc: Int { GEMMBlocking.floatKC }
    static var nc: Int { 4096 }
}

/// Double on 16 × 256-bit registers: 6 rows of SIMD8<Double> (2 ymm each), the Float budget.
enum DoubleTile256: GEMMTileShape {
    typealias Scalar = Double
    typealias Row = SIMD8<Double>
    static var mr: Int { 6 }
    static var mc: Int { 72 }    // Ap = 72 × 256 × 8 B = 144 KiB
    static var kc: Int { 256 }   // a B sliver = 256 × 8 × 8 B = 16 KiB
    static var nc: Int { 4080 }
}

/// Double on 32 × 512-bit registers: 14 rows of SIMD16<Double> (2 zmm each, 8 lanes per zmm).
enum DoubleTile512: GEMMTileShape {
    typealias Scalar = Double
    typealias Row = SIMD16<Double>
    static var mr: Int { 14 }
    static var mc: Int { GEMMBlocking.doubleMC }
    static var kc: Int { GEMMBlocking.doubleKC }
    static var nc: Int { 4096 }
}

/// The 512-bit tiles' cache blocking (see `FloatTile512`). Variables only so a developer can
/// sweep them from the benchmark (`GEMM_BLOCKING=MC,KC make bench SUITES=kernels`, Float only,
/// set before any GEMM runs); the library never changes them. MC must be a multiple of 14.
package enum GEMMBlocking {
    nonisolated(unsafe) package static var floatMC = 84, floatKC = 512
    nonisolated(unsafe) static var doubleMC = 84, doubleKC = 256
}

/// Which register tile the packed GEMM uses: chosen when the library is built, from the CPU the
/// native build targets (the Makefile passes `-DDECODERSPEC_AVX512` beside `-target-cpu native`
/// when the CPU has AVX-512 F/BW/DQ/VL). Both tiles are compiled into every build, so the specs
/// check both and the benchmark can time the other one beside the selected one.
package enum GEMMTile: String, CaseIterable, Sendable {
    /// 6 × 16 Float / 6 × 8 Double: 12 accumulator registers of 256 bits (AVX2 + FMA).
    case avx2
    /// 14 × 32 Float / 14 × 16 Double: 28 accumulator registers of 512 bits (AVX-512).
    case avx512

    /// The build's choice.
    package static var selected: GEMMTile {
        #if DECODERSPEC_AVX512
        return .avx512
        #else
        return .avx2
        #endif
    }

    /// (MR, NR) of the single-precision tile.
    package var floatShape: (mr: Int, nr: Int) {
        switch self {
        case .avx2: (FloatTile256.mr, FloatTile256.nr)
        case .avx512: (FloatTile512.mr, FloatTile512.nr)
        }
    }

    /// (MR, NR) of the double-precision tile.
    package var doubleShape: (mr: Int, nr: Int) {
        switch self {
        case .avx2: (DoubleTile256.mr, DoubleTile256.nr)
        case .avx512: (DoubleTile512.mr, DoubleTile512.nr)
        }
    }
}

/// The micro-kernel, for every tile: C[rows × cols] = α · Σ_p a[p·MR + i] · b[p·NR + j] + β · C
/// (β = 0: C is not read). `a` is an MR-tall packed sliver, `b` an NR-wide one, both `kc` steps
/// long. Each step loads one B row, broadcasts MR values of A and does MR FMAs (a rank-1
/// update); the accumulators past MR are dead code once the tile is known (specialization).
@inline(__always)
func microKernel<Tile: GEMMTileShape>(
    _: Tile.Type, kc: Int, a: UnsafePointer<Tile.Scalar>, b: UnsafePointer<Tile.Scalar>,
    c: UnsafeMutablePointer<Tile.Scalar>, ldc: Int, alpha: Tile.Scalar, beta: Tile.Scalar,
    rows: Int, cols: Int
) {
    typealias V = Tile.Row
    let mr = Tile.mr
    var c0 = V(), c1 = V(), c2 = V(), c3 = V(), c4 = V(), c5 = V(), c6 = V()
    var c7 = V(), c8 = V(), c9 = V(), c10 = V(), c11 = V(), c12 = V(), c13 = V()
    // Ask for the C tile's lines (each row's first and last element: the one or two lines of
    // an NR-wide row) before the k loop, so they arrive during its KC steps instead of
    // stalling the stores after it — most where C's rows are far apart (n = 1,536: 0.87–0.88× →
    // 1.01–1.04× OpenBLAS; docs/kernels.md, "SGEMM at 512 and the training's shapes"). A prefetch
    // never faults, so the last element of an edge row may lie past C.
    for r in 0..<rows { decoderspec_prefetch(c + r &* ldc); decoderspec_prefetch(c + (r &* ldc &+ (Tile.nr - 1))) }
    var pa = a
    var pb = UnsafeRawPointer(b)
    for _ in 0..<kc {
        let bv = pb.loadUnaligned(as: V.self)
        c0 = V.madd(c0, pa[0], bv)
        if mr > 1 { c1 = V.madd(c1, pa[1], bv) }
        if mr > 2 { c2 = V.madd(c2, pa[2], bv) }
        if mr > 3 { c3 = V.madd(c3, pa[3], bv) }
        if mr > 4 { c4 = V.madd(c4, pa[4], bv) }
        if mr > 5 { c5 = V.madd(c5, pa[5], bv) }
        if mr > 6 { c6 = V.madd(c6, pa[6], bv) }
        if mr > 7 { c7 = V.madd(c7, pa[7], bv) }
        if mr > 8 { c8 = V.madd(c8, pa[8], bv) }
        if mr > 9 { c9 = V.madd(c9, pa[9], bv) }
        if mr > 10 { c10 = V.madd(c10, pa[10], bv) }
        if mr > 11 { c11 = V.madd(c11, pa[11], bv) }
        if mr > 12 { c12 = V.madd(c12, pa[12], bv) }
        if mr > 13 { c13 = V.madd(c13, pa[13], bv) }
        pa += mr
        pb += MemoryLayout<V>.stride
    }
    if rows == mr && cols == Tile.nr {
        storeRow(c0, c, alpha, beta)
        if mr > 1 { storeRow(c1, c + ldc, alpha, beta) }
        if mr > 2 { storeRow(c2, c + 2 * ldc, alpha, beta) }
        if mr > 3 { storeRow(c3, c + 3 * ldc, alpha, beta) }
        if mr > 4 { storeRow(c4, c + 4 * ldc, alpha, beta) }
        if mr > 5 { storeRow(c5, c + 5 * ldc, alpha, beta) }
        if mr > 6 { storeRow(c6, c + 6 * ldc, alpha, beta) }
        if mr > 7 { storeRow(c7, c + 7 * ldc, alpha, beta) }
        if mr > 8 { storeRow(c8, c + 8 * ldc, alpha, beta) }
        if mr > 9 { storeRow(c9, c + 9 * ldc, alpha, beta) }
        if mr > 10 { storeRow(c10, c + 10 * ldc, alpha, beta) }
        if mr > 11 { storeRow(c11, c + 11 * ldc, alpha, beta) }
        if mr > 12 { storeRow(c12, c + 12 * ldc, alpha, beta) }
        if mr > 13 { storeRow(c13, c + 13 * ldc, alpha, beta) }
    } else {
        storeEdge(c0, c, alpha, beta, cols)
        if rows > 1 { storeEdge(c1, c + ldc, alpha, beta, cols) }
        if rows > 2 { storeEdge(c2, c + 2 * ldc, alpha, beta, cols) }
        if rows > 3 { storeEdge(c3, c + 3 * ldc, alpha, beta, cols) }
        if rows > 4 { storeEdge(c4, c + 4 * ldc, alpha, beta, cols) }
        if rows > 5 { storeEdge(c5, c + 5 * ldc, alpha, beta, cols) }
        if rows > 6 { storeEdge(c6, c + 6 * ldc, alpha, beta, cols) }
        if rows > 7 { storeEdge(c7, c + 7 * ldc, alpha, beta, cols) }
        if rows > 8 { storeEdge(c8, c + 8 * ldc, alpha, beta, cols) }
        if rows > 9 { storeEdge(c9, c + 9 * ldc, alpha, beta, cols) }
        if rows > 10 { storeEdge(c10, c + 10 * ldc, alpha, beta, cols) }
        if rows > 11 { storeEdge(c11, c + 11 * ldc, alpha, beta, cols) }
        if rows > 12 { storeEdge(c12, c + 12 * ldc, alpha, beta, cols) }
        if rows > 13 { storeEdge(c13, c + 13 * ldc, alpha, beta, cols) }
    }
}

/// C row = α·v + β·C row (β = 0: C is not read; β = 1: one multiply-add).
@inline(__always)
func storeRow<V: PackedRow>(_ v: V, _ c: UnsafeMutablePointer<V.Scalar>, _ alpha: V.Scalar, _ beta: V.Scalar) {
    let raw = UnsafeMutableRawPointer(c)
    if beta == 0 {
        raw.storeBytes(of: V.scaled(v, alpha), as: V.self)
    } else {
        let old = UnsafeRawPointer(c).loadUnaligned(as: V.self)
        raw.storeBytes(of: V.madd(beta == 1 ? old : V.scaled(old, beta), alpha, v), as: V.self)
    }
}

/// Writes the first `cols` entries of one tile row (edge tiles), scalar: C[j] = α·v[j] + β·C[j]
/// (β = 0: C is not read). Read through the row's bytes: a SIMD32 lane subscript is slow.
@inline(never)
func storeEdge<V: SIMD>(_ v: V, _ c: UnsafeMutablePointer<V.Scalar>, _ alpha: V.Scalar, _ beta: V.Scalar,
                        _ cols: Int) where V.Scalar: BinaryFloatingPoint {
    withUnsafeBytes(of: v) { raw in
        let p = raw.bindMemory(to: V.Scalar.self)
        for j in 0..<cols {
            let x = alpha * p[j]
            c[j] = beta == 0 ? x : x + beta * c[j]
        }
    }
}

/// Pointers handed to worker threads. The threads write disjoint column (or row) blocks of C.
struct SendablePointers<T>: @unchecked Sendable {
    let a: UnsafePointer<T>, b: UnsafePointer<T>, c: UnsafeMutablePointer<T>
}

extension GEMM {
    /// Packs op(A)[i0..<i0+mc, p0..<p0+kc] into MR-tall slivers: sliver s, step p, row r at
    /// dst[s·MR·kc + p·MR + r]; rows past `mc` are zero.
    ///
    /// Both layouts loop p outside and the MR rows inside, so every store is contiguous (MR
    /// values); for A stored [m, k] that reads MR rows in step, each sequentially. (Rows outside,
    /// i.e. strided stores of one row at a time, packed 2–2.4× slower: docs/kernels.md.)
    @inline(__always)
    static func packA<Tile: GEMMTileShape>(_: Tile.Type, _ dst: UnsafeMutablePointer<Tile.Scalar>, transA: Bool, a: UnsafePointer<Tile.Scalar>,
                                           lda: Int, i0: Int, p0: Int, mc: Int, kc: Int) {
        let mr = Tile.mr
        var s = 0
        while s < mc {
            let rows = min(mr, mc - s)
            let d = dst + s * kc
            if transA {
                // A stored [k, m]: op(A)[i, p] = a[p·lda + i], contiguous in i.
                for p in 0..<kc {
                    let src = a + (p0 + p) * lda + i0 + s
                    let dp = d + p * mr
                    for r in 0..<rows { dp[r] = src[r] }
                    for r in rows..<mr { dp[r] = 0 }
                }
            } else if rows == mr {
                // A stored [m, k]: op(A)[i, p] = a[i·lda + p], contiguous in p; a full sliver.
                let src = a + (i0 + s) * lda + p0
                for p in 0..<kc {
                    let dp = d + p * mr
                    for r in 0..<mr { dp[r] = src[r &* lda &+ p] }
                }
            } else {
                for r in 0..<rows {
                    let src = a + (i0 + s + r) * lda + p0
                    for p in 0..<kc { d[p * mr + r] = src[p] }
                }
                for r in rows..<mr { for p in 0..<kc { d[p * mr + r] = 0 } }
            }
            s += mr
        }
    }

    /// Packs op(B)[p0..<p0+kc, j0..<j0+nc] into NR-wide slivers: sliver t, step p, column j at
    /// dst[t·NR·kc + p·NR + j]; columns past `nc` are zero.
    ///
    /// B stored [k, n]: p outside, so each row of B is read once, front to back, one NR-wide
    /// vector copy per sliver (sliver-outside read each row in NR-wide pieces 4 KiB apart, 1.4–1.6×
    /// slower). B stored [n, k]: p outside and the NR columns inside for a full sliver, so stores
    /// are contiguous, as in `packA`.
    @inline(__always)
    static func packB<Tile: GEMMTileShape>(_: Tile.Type, _ dst: UnsafeMutablePointer<Tile.Scalar>, transB: Bool, b: UnsafePointer<Tile.Scalar>,
                                           ldb: Int, p0: Int, j0: Int, kc: Int, nc: Int) {
        typealias Row = Tile.Row
        let nr = Tile.nr
        if !transB {
            // B stored [k, n]: op(B)[p, j] = b[p·ldb + j], contiguous in j.
            let full = nc / nr * nr
            for p in 0..<kc {
                let src = b + (p0 + p) * ldb + j0
                var t = 0
                while t < full {
                    let v = UnsafeRawPointer(src + t).loadUnaligned(as: Row.self)
                    UnsafeMutableRawPointer(dst + t * kc + p * nr).storeBytes(of: v, as: Row.self)
                    t += nr
                }
                if t < nc {
                    let dp = dst + t * kc + p * nr
                    for j in 0..<(nc - t) { dp[j] = src[t + j] }
                    for j in (nc - t)..<nr { dp[j] = 0 }
                }
            }
            return
        }
        var t = 0
        while t < nc {
            let cols = min(nr, nc - t)
            let d = dst + t * kc
            // B stored [n, k]: op(B)[p, j] = b[j·ldb + p], contiguous in p.
            if cols == nr {
                let src = b + (j0 + t) * ldb + p0
                for p in 0..<kc {
                    let dp = d + p * nr
                    for j in 0..<nr { dp[j] = src[j &* ldb &+ p] }
                }
            } else {
                for j in 0..<cols {
                    let src = b + (j0 + t + j) * ldb + p0
                    for p in 0..<kc { d[p * nr + j] = src[p] }
                }
                for j in cols..<nr { for p in 0..<kc { d[p * nr + j] = 0 } }
            }
            t += nr
        }
    }

    /// C = β·C without reading C when β = 0 (the k = 0 or α = 0 case).
    static func scale<T: BinaryFloatingPoint>(m: Int, n: Int, beta: T, c: UnsafeMutablePointer<T>, ldc: Int) {
        for i in 0..<m {
            let ci = c + i * ldc
            for j in 0..<n { ci[j] = beta == 0 ? 0 : beta * ci[j] }
        }
    }

    /// The length of the K slices: k cut into the fewest slices of at most `kc` steps, ⌈k/kc⌉,
    /// of near-equal length: ⌈k/⌈k/kc⌉⌉ each, the last shorter by less than the slice count
    /// (k = 1,229 at KC = 512: 410 + 410 + 409, not 512 + 512 + 205, whose last slice reads and
    /// writes all of C again for only 205 steps). k ≥ 1, kc ≥ 1.
    package static func sliceLength(_ k: Int, max kc: Int) -> Int {
        let slices = (k + kc - 1) / kc
        return (k + slices - 1) / slices
    }

    /// The packed, cache-blocked GEMM (single thread). See the loop nest at the top of this file.
    @_specialize(where Tile == FloatTile256)
    @_specialize(where Tile == FloatTile512)
    @_specialize(where Tile == DoubleTile256)
    @_specialize(where Tile == DoubleTile512)
    static func blocked<Tile: GEMMTileShape>(
        _ tile: Tile.Type, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Tile.Scalar,
        a: UnsafePointer<Tile.Scalar>, lda: Int, b: UnsafePointer<Tile.Scalar>, ldb: Int,
        beta: Tile.Scalar, c: UnsafeMutablePointer<Tile.Scalar>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        if k == 0 || alpha == 0 { scale(m: m, n: n, beta: beta, c: c, ldc: ldc); return }
        let mr = Tile.mr, nr = Tile.nr
        let ncMax = min(Tile.nc, (n + nr - 1) / nr * nr)
        let kcMax = min(Tile.kc, k)
        let mcMax = min(Tile.mc, (m + mr - 1) / mr * mr)
        let ap = UnsafeMutableRawPointer.allocate(byteCount: mcMax * kcMax * MemoryLayout<Tile.Scalar>.stride, alignment: 64)
            .bindMemory(to: Tile.Scalar.self, capacity: mcMax * kcMax)
        let bp = UnsafeMutableRawPointer.allocate(byteCount: kcMax * ncMax * MemoryLayout<Tile.Scalar>.stride, alignment: 64)
            .bindMemory(to: Tile.Scalar.self, capacity: kcMax * ncMax)
        defer { ap.deallocate(); bp.deallocate() }

        let kcStep = sliceLength(k, max: Tile.kc)
        var jc = 0
        while jc < n {
            let nc = min(Tile.nc, n - jc)
            var pc = 0
            while pc < k {
                let kc = min(kcStep, k - pc)
                let betaSlice: Tile.Scalar = pc == 0 ? beta : 1
                packB(Tile.self, bp, transB: transB, b: b, ldb: ldb, p0: pc, j0: jc, kc: kc, nc: nc)
                var ic = 0
                while ic < m {
                    let mc = min(Tile.mc, m - ic)
                    packA(Tile.self, ap, transA: transA, a: a, lda: lda, i0: ic, p0: pc, mc: mc, kc: kc)
                    var jr = 0
                    while jr < nc {
                        let cols = min(nr, nc - jr)
                        let bSliver = UnsafePointer(bp + jr * kc)
                        var ir = 0
                        while ir < mc {
                            let rows = min(mr, mc - ir)
                            microKernel(Tile.self, kc: kc, a: UnsafePointer(ap + ir * kc), b: bSliver,
                                        c: c + (ic + ir) * ldc + jc + jr, ldc: ldc,
                                        alpha: alpha, beta: betaSlice, rows: rows, cols: cols)
                            ir += mr
                        }
                        jr += nr
                    }
                    ic += mc
                }
                pc += kc
            }
            jc += nc
        }
    }

    /// Worker count for `.parallel`: the online cores.
    static var coreCount: Int {
        #if canImport(Glibc) || canImport(Darwin)
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        #else
        return 1
        #endif
    }

    /// `.parallel`, identical to `blocked` except that C is cut into as many blocks as there are
    /// cores — column blocks (multiples of NR) when n ≥ m, row blocks (multiples of MR)
    /// otherwise — and each block is one `blocked` call on its own thread
    /// (`DispatchQueue.concurrentPerform`), with its own pack buffers: one fork/join per call.
    /// Each block repacks the panel of A (or B) it shares with the others — a few percent at the
    /// measured sizes. Products under 2·10⁶ multiply-adds stay on one thread.
    ///
    /// Measured against the alternative of sharing one packed B panel between the cores and
    /// handing out row chunks (two fork/joins per panel): in the same quiet minute on this machine
    /// (2-thread FMA peak 1.99× one core), this split gave 1.6–2.0× `.optimized`, the shared-panel
    /// version 1.3–1.5× (docs/kernels.md).
    @_specialize(where Tile == FloatTile256)
    @_specialize(where Tile == FloatTile512)
    @_specialize(where Tile == DoubleTile256)
    @_specialize(where Tile == DoubleTile512)
    static func parallel<Tile: GEMMTileShape>(
        _ tile: Tile.Type, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Tile.Scalar,
        a: UnsafePointer<Tile.Scalar>, lda: Int, b: UnsafePointer<Tile.Scalar>, ldb: Int,
        beta: Tile.Scalar, c: UnsafeMutablePointer<Tile.Scalar>, ldc: Int
    ) {
        let workers = coreCount
        if workers <= 1 || m * n * k < 2_000_000 || alpha == 0 {
            blocked(tile, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                    b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            return
        }
        if n >= m || m < 2 * Tile.mr {
            columnSplit(tile, workers: workers, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                        a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        } else {
            rowSplit(tile, workers: workers, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                     a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        }
    }

    /// Row blocks of C (multiples of MR), one `blocked` call per core: for tall, narrow C.
    static func rowSplit<Tile: GEMMTileShape>(
        _ tile: Tile.Type, workers: Int, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Tile.Scalar,
        a: UnsafePointer<Tile.Scalar>, lda: Int, b: UnsafePointer<Tile.Scalar>, ldb: Int,
        beta: Tile.Scalar, c: UnsafeMutablePointer<Tile.Scalar>, ldc: Int
    ) {
        let unit = Tile.mr
        let blocks = min(workers, (m + unit - 1) / unit)
        let per = ((m + blocks - 1) / blocks + unit - 1) / unit * unit
        let ptrs = SendablePointers<Tile.Scalar>(a: a, b: b, c: c)
        DispatchQueue.concurrentPerform(iterations: blocks) { t in
            let start = t * per
            let size = min(per, m - start)
            if size <= 0 { return }
            let aOffset = transA ? start : start * lda
            blocked(tile, transA: transA, transB: transB, m: size, n: n, k: k, alpha: alpha,
                    a: ptrs.a + aOffset, lda: lda, b: ptrs.b, ldb: ldb,
                    beta: beta, c: ptrs.c + start * ldc, ldc: ldc)
        }
    }

    /// Column blocks of C (multiples of NR), one `blocked` call per core: for short, wide C.
    static func columnSplit<Tile: GEMMTileShape>(
        _ tile: Tile.Type, workers: Int, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Tile.Scalar,
        a: UnsafePointer<Tile.Scalar>, lda: Int, b: UnsafePointer<Tile.Scalar>, ldb: Int,
        beta: Tile.Scalar, c: UnsafeMutablePointer<Tile.Scalar>, ldc: Int
    ) {
        let unit = Tile.nr
        let blocks = min(workers, (n + unit - 1) / unit)
        let per = ((n + blocks - 1) / blocks + unit - 1) / unit * unit
        let ptrs = SendablePointers<Tile.Scalar>(a: a, b: b, c: c)
        DispatchQueue.concurrentPerform(iterations: blocks) { t in
            let start = t * per
            let size = min(per, n - start)
            if size <= 0 { return }
            let bOffset = transB ? start * ldb : start
            blocked(tile, transA: transA, transB: transB, m: m, n: size, k: k, alpha: alpha,
                    a: ptrs.a, lda: lda, b: ptrs.b + bOffset, ldb: ldb,
                    beta: beta, c: ptrs.c + start, ldc: ldc)
        }
    }
}
