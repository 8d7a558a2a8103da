#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
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

/// A scalar type the packed GEMM can run on: its micro-tile shape, cache blocking, and
/// micro-kernel. Float and Double conform with concrete (non-generic) micro-kernels, so they are
/// fast even where the generic driver is not specialized (debug builds).
protocol PackedGEMMScalar: BinaryFloatingPoint, Sendable, SendableMetatype {
    /// Rows of the register tile (broadcast values of A per step).
    static var mr: Int { get }
    /// Columns of the register tile (one SIMD row of B per step).
    static var nr: Int { get }
    /// Cache blocking: MC rows of A (multiple of mr), KC inner steps, NC columns of B (multiple of nr).
    static var mc: Int { get }
    static var kc: Int { get }
    static var nc: Int { get }
    /// C[rows × cols] = α · Σ_p a[p·mr + i] · b[p·nr + j] + β · C  (β = 0: C is not read).
    static func microKernel(kc: Int, a: UnsafePointer<Self>, b: UnsafePointer<Self>,
                            c: UnsafeMutablePointer<Self>, ldc: Int, alpha: Self, beta: Self,
                            rows: Int, cols: Int)
}

/// The measured choice on AMD Zen 3 (AVX2 + FMA, 16 ymm registers): 6 × 16 Floats = 6 rows of
/// SIMD16<Float> (2 ymm each) = 12 accumulator registers, + 2 for the B row + 1 broadcast = 15 of
/// 16. Each k step does 2 loads, 6 broadcasts and 12 FMAs (192 FLOP): enough independent
/// accumulators (12) to cover the FMA latency (4 cycles) × throughput (2 per cycle) = 8.
extension Float: PackedGEMMScalar {
    static var mr: Int { 6 }
    static var nr: Int { 16 }
    static var mc: Int { 144 }   // Ap = 144 × 256 × 4 B = 144 KiB, half of a 512 KiB L2
    static var kc: Int { 256 }   // a B sliver = 256 × 16 × 4 B = 16 KiB, half of the 32 KiB L1d
    static var nc: Int { 4080 }  // Bp ≤ 256 × 4080 × 4 B ≈ 4 MiB, in the L3

    @inline(__always)
    static func microKernel(kc: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                            c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float,
                            rows: Int, cols: Int) {
        typealias V = SIMD16<Float>
        var c0 = V(), c1 = V(), c2 = V(), c3 = V(), c4 = V(), c5 = V()
        var pa = a
        var pb = UnsafeRawPointer(b)
        for _ in 0..<kc {
            let bv = pb.loadUnaligned(as: V.self)
            c0 = fmadd(c0, pa[0], bv)
            c1 = fmadd(c1, pa[1], bv)
            c2 = fmadd(c2, pa[2], bv)
            c3 = fmadd(c3, pa[3], bv)
            c4 = fmadd(c4, pa[4], bv)
            c5 = fmadd(c5, pa[5], bv)
            pa += 6
            pb += 16 * MemoryLayout<Float>.stride
        }
        if rows == 6 && cols == 16 {
            store(c0, c, alpha, beta); store(c1, c + ldc, alpha, beta)
            store(c2, c + 2 * ldc, alpha, beta); store(c3, c + 3 * ldc, alpha, beta)
            store(c4, c + 4 * ldc, alpha, beta); store(c5, c + 5 * ldc, alpha, beta)
        } else {
            let tile = [c0, c1, c2, c3, c4, c5]
            storeEdge(tile, c: c, ldc: ldc, alpha: alpha, beta: beta, rows: rows, cols: cols)
        }
    }

    @inline(__always)
    static func fmadd(_ acc: SIMD16<Float>, _ a: Float, _ b: SIMD16<Float>) -> SIMD16<Float> {
        #if DECODERSPEC_NATIVE
        // With -target-cpu native this is one vfmadd231ps per ymm half.
        return acc.addingProduct(SIMD16(repeating: a), b)
        #else
        // Without a target-CPU flag `addingProduct` would be 16 calls to fmaf; mul + add stays
        // vectorized (Swift does not contract it into an FMA: it emits no `contract` flag).
        return acc + SIMD16(repeating: a) * b
        #endif
    }

    @inline(__always)
    static func store(_ v: SIMD16<Float>, _ c: UnsafeMutablePointer<Float>, _ alpha: Float, _ beta: Float) {
        let raw = UnsafeMutableRawPointer(c)
        if beta == 0 {
            raw.storeBytes(of: alpha * v, as: SIMD16<Float>.self)
        } else {
            let old = UnsafeRawPointer(c).loadUnaligned(as: SIMD16<Float>.self)
            raw.storeBytes(of: beta == 1 ? alpha * v + old : alpha * v + beta * old, as: SIMD16<Float>.self)
        }
    }
}

/// Double: 6 × 8 = 6 rows of SIMD8<Double> (2 ymm each), the same register budget as Float.
extension Double: PackedGEMMScalar {
    static var mr: Int { 6 }
    static var nr: Int { 8 }
    static var mc: Int { 72 }    // Ap = 72 × 256 × 8 B = 144 KiB
    static var kc: Int { 256 }   // a B sliver = 256 × 8 × 8 B = 16 KiB
    static var nc: Int { 4080 }

    @inline(__always)
    static func microKernel(kc: Int, a: UnsafePointer<Double>, b: UnsafePointer<Double>,
                            c: UnsafeMutablePointer<Double>, ldc: Int, alpha: Double, beta: Double,
                            rows: Int, cols: Int) {
        typealias V = SIMD8<Double>
        var c0 = V(), c1 = V(), c2 = V(), c3 = V(), c4 = V(), c5 = V()
        var pa = a
        var pb = UnsafeRawPointer(b)
        for _ in 0..<kc {
            let bv = pb.loadUnaligned(as: V.self)
            c0 = fmadd(c0, pa[0], bv)
            c1 = fmadd(c1, pa[1], bv)
            c2 = fmadd(c2, pa[2], bv)
            c3 = fmadd(c3, pa[3], bv)
            c4 = fmadd(c4, pa[4], bv)
            c5 = fmadd(c5, pa[5], bv)
            pa += 6
            pb += 8 * MemoryLayout<Double>.stride
        }
        if rows == 6 && cols == 8 {
            store(c0, c, alpha, beta); store(c1, c + ldc, alpha, beta)
            store(c2, c + 2 * ldc, alpha, beta); store(c3, c + 3 * ldc, alpha, beta)
            store(c4, c + 4 * ldc, alpha, beta); store(c5, c + 5 * ldc, alpha, beta)
        } else {
            let tile = [c0, c1, c2, c3, c4, c5]
            storeEdge(tile, c: c, ldc: ldc, alpha: alpha, beta: beta, rows: rows, cols: cols)
        }
    }

    @inline(__always)
    static func fmadd(_ acc: SIMD8<Double>, _ a: Double, _ b: SIMD8<Double>) -> SIMD8<Double> {
        #if DECODERSPEC_NATIVE
        return acc.addingProduct(SIMD8(repeating: a), b)
        #else
        return acc + SIMD8(repeating: a) * b
        #endif
    }

    @inline(__always)
    static func store(_ v: SIMD8<Double>, _ c: UnsafeMutablePointer<Double>, _ alpha: Double, _ beta: Double) {
        let raw = UnsafeMutableRawPointer(c)
        if beta == 0 {
            raw.storeBytes(of: alpha * v, as: SIMD8<Double>.self)
        } else {
            let old = UnsafeRawPointer(c).loadUnaligned(as: SIMD8<Double>.self)
            raw.storeBytes(of: beta == 1 ? alpha * v + old : alpha * v + beta * old, as: SIMD8<Double>.self)
        }
    }
}

/// Writes the `rows × cols` corner of a register tile (edge tiles), scalar.
@inline(never)
func storeEdge<V: SIMD>(_ tile: [V], c: UnsafeMutablePointer<V.Scalar>, ldc: Int, alpha: V.Scalar,
                        beta: V.Scalar, rows: Int, cols: Int) where V.Scalar: BinaryFloatingPoint {
    for i in 0..<rows {
        let ci = c + i * ldc
        for j in 0..<cols {
            let v = alpha * tile[i][j]
            ci[j] = beta == 0 ? v : v + beta * ci[j]
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
    @inline(__always)
    static func packA<T: PackedGEMMScalar>(_ dst: UnsafeMutablePointer<T>, transA: Bool, a: UnsafePointer<T>,
                                           lda: Int, i0: Int, p0: Int, mc: Int, kc: Int) {
        let mr = T.mr
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
            } else {
                // A stored [m, k]: op(A)[i, p] = a[i·lda + p], contiguous in p.
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
    @inline(__always)
    static func packB<T: PackedGEMMScalar>(_ dst: UnsafeMutablePointer<T>, transB: Bool, b: UnsafePointer<T>,
                                           ldb: Int, p0: Int, j0: Int, kc: Int, nc: Int) {
        let nr = T.nr
        var t = 0
        while t < nc {
            let cols = min(nr, nc - t)
            let d = dst + t * kc
            if transB {
                // B stored [n, k]: op(B)[p, j] = b[j·ldb + p], contiguous in p.
                for j in 0..<cols {
                    let src = b + (j0 + t + j) * ldb + p0
                    for p in 0..<kc { d[p * nr + j] = src[p] }
                }
                for j in cols..<nr { for p in 0..<kc { d[p * nr + j] = 0 } }
            } else {
                // B stored [k, n]: op(B)[p, j] = b[p·ldb + j], contiguous in j.
                for p in 0..<kc {
                    let src = b + (p0 + p) * ldb + j0 + t
                    let dp = d + p * nr
                    for j in 0..<cols { dp[j] = src[j] }
                    for j in cols..<nr { dp[j] = 0 }
                }
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

    /// The packed, cache-blocked GEMM (single thread). See the loop nest at the top of this file.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func blocked<T: PackedGEMMScalar>(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: T,
        a: UnsafePointer<T>, lda: Int, b: UnsafePointer<T>, ldb: Int,
        beta: T, c: UnsafeMutablePointer<T>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        if k == 0 || alpha == 0 { scale(m: m, n: n, beta: beta, c: c, ldc: ldc); return }
        let mr = T.mr, nr = T.nr
        let ncMax = min(T.nc, (n + nr - 1) / nr * nr)
        let kcMax = min(T.kc, k)
        let mcMax = min(T.mc, (m + mr - 1) / mr * mr)
        let ap = UnsafeMutableRawPointer.allocate(byteCount: mcMax * kcMax * MemoryLayout<T>.stride, alignment: 64)
            .bindMemory(to: T.self, capacity: mcMax * kcMax)
        let bp = UnsafeMutableRawPointer.allocate(byteCount: kcMax * ncMax * MemoryLayout<T>.stride, alignment: 64)
            .bindMemory(to: T.self, capacity: kcMax * ncMax)
        defer { ap.deallocate(); bp.deallocate() }

        var jc = 0
        while jc < n {
            let nc = min(T.nc, n - jc)
            var pc = 0
            while pc < k {
                let kc = min(T.kc, k - pc)
                let betaSlice = pc == 0 ? beta : 1
                packB(bp, transB: transB, b: b, ldb: ldb, p0: pc, j0: jc, kc: kc, nc: nc)
                var ic = 0
                while ic < m {
                    let mc = min(T.mc, m - ic)
                    packA(ap, transA: transA, a: a, lda: lda, i0: ic, p0: pc, mc: mc, kc: kc)
                    var jr = 0
                    while jr < nc {
                        let cols = min(nr, nc - jr)
                        let bSliver = UnsafePointer(bp + jr * kc)
                        var ir = 0
                        while ir < mc {
                            let rows = min(mr, mc - ir)
                            T.microKernel(kc: kc, a: UnsafePointer(ap + ir * kc), b: bSliver,
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
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func parallel<T: PackedGEMMScalar>(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: T,
        a: UnsafePointer<T>, lda: Int, b: UnsafePointer<T>, ldb: Int,
        beta: T, c: UnsafeMutablePointer<T>, ldc: Int
    ) {
        let workers = coreCount
        if workers <= 1 || m * n * k < 2_000_000 || alpha == 0 {
            blocked(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                    b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            return
        }
        if n >= m || m < 2 * T.mr {
            columnSplit(workers: workers, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                        a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        } else {
            rowSplit(workers: workers, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                     a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        }
    }

    /// Row blocks of C (multiples of MR), one `blocked` call per core: for tall, narrow C.
    static func rowSplit<T: PackedGEMMScalar>(
        workers: Int, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: T,
        a: UnsafePointer<T>, lda: Int, b: UnsafePointer<T>, ldb: Int,
        beta: T, c: UnsafeMutablePointer<T>, ldc: Int
    ) {
        let unit = T.mr
        let blocks = min(workers, (m + unit - 1) / unit)
        let per = ((m + blocks - 1) / blocks + unit - 1) / unit * unit
        let ptrs = SendablePointers(a: a, b: b, c: c)
        DispatchQueue.concurrentPerform(iterations: blocks) { t in
            let start = t * per
            let size = min(per, m - start)
            if size <= 0 { return }
            let aOffset = transA ? start : start * lda
            blocked(transA: transA, transB: transB, m: size, n: n, k: k, alpha: alpha,
                    a: ptrs.a + aOffset, lda: lda, b: ptrs.b, ldb: ldb,
                    beta: beta, c: ptrs.c + start * ldc, ldc: ldc)
        }
    }

    /// Column blocks of C (multiples of NR), one `blocked` call per core: for short, wide C.
    static func columnSplit<T: PackedGEMMScalar>(
        workers: Int, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: T,
        a: UnsafePointer<T>, lda: Int, b: UnsafePointer<T>, ldb: Int,
        beta: T, c: UnsafeMutablePointer<T>, ldc: Int
    ) {
        let unit = T.nr
        let blocks = min(workers, (n + unit - 1) / unit)
        let per = ((n + blocks - 1) / blocks + unit - 1) / unit * unit
        let ptrs = SendablePointers(a: a, b: b, c: c)
        DispatchQueue.concurrentPerform(iterations: blocks) { t in
            let start = t * per
            let size = min(per, n - start)
            if size <= 0 { return }
            let bOffset = transB ? start * ldb : start
            blocked(transA: transA, transB: transB, m: m, n: size, k: k, alpha: alpha,
                    a: ptrs.a, lda: lda, b: ptrs.b + bOffset, ldb: ldb,
                    beta: beta, c: ptrs.c + start, ldc: ldc)
        }
    }
}
