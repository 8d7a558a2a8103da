/// Matrix–vector product, the m = 1 case of GEMM: one row x [k] times op(B) → y [n]. See
/// docs/kernels.md ("GEMV").
///
///     y_j = α · Σ_p x_p · op(B)[p, j] + β · y_j
///
/// This is the shape of a KV-cached decoding step (one new token through every Linear layer).
/// There is no reuse of B to exploit, so the blocked GEMM's packing only adds a second pass over
/// the weights; this path streams B once, which makes it memory-bandwidth bound.
///
/// Identical to `GEMM.naive` with m = 1 except: SIMD accumulation at the build's vector width
/// (`GEMV.Lane`: SIMD16<Float>, one zmm, on an AVX-512 build; SIMD8<Float>, one ymm, otherwise),
/// 4 rows of B at a time when B is stored [n, k]; row-wise axpy when B is stored [k, n].
/// Summation order differs. One implementation, generic over the lane type, serves both widths,
/// so the specs check both on every machine (`GEMVWidth`).
package enum GEMV {

    @inline(__always)
    static func fmadd<V: SIMD>(_ acc: V, _ a: V, _ b: V) -> V where V.Scalar == Float {
        #if DECODERSPEC_NATIVE
        return acc.addingProduct(a, b)
        #else
        return acc + a * b  // no target-CPU flag: keep it vectorized, not a call to fmaf
        #endif
    }

    @inline(__always)
    static func load<V: SIMD>(_ p: UnsafePointer<Float>) -> V where V.Scalar == Float {
        UnsafeRawPointer(p).loadUnaligned(as: V.self)
    }

    /// x [k] contiguous; B stored [n, k] with row stride ldb (op(B) = Bᵀ, a Linear weight).
    @inline(__always)
    static func transposedB<V: SIMD>(_: V.Type, n: Int, k: Int, alpha: Float, x: UnsafePointer<Float>, b: UnsafePointer<Float>,
                                     ldb: Int, beta: Float, y: UnsafeMutablePointer<Float>) where V.Scalar == Float {
        let w = V.scalarCount
        let kv = k - k % w
        @inline(__always) func finish(_ j: Int, _ acc: V, _ row: UnsafePointer<Float>) {
            var s = acc.sum()
            for p in kv..<k { s += x[p] * row[p] }
            y[j] = beta == 0 ? alpha * s : alpha * s + beta * y[j]
        }
        var j = 0
        while j + 4 <= n {
            let r0 = b + j * ldb, r1 = r0 + ldb, r2 = r1 + ldb, r3 = r2 + ldb
            var a0 = V(), a1 = V(), a2 = V(), a3 = V()
            var p = 0
            while p < kv {
                let xv: V = load(x + p)
                a0 = fmadd(a0, xv, load(r0 + p))
                a1 = fmadd(a1, xv, load(r1 + p))
                a2 = fmadd(a2, xv, load(r2 + p))
                a3 = fmadd(a3, xv, load(r3 + p))
                p += w
            }
            finish(j, a0, r0); finish(j + 1, a1, r1); finish(j + 2, a2, r2); finish(j + 3, a3, r3)
            j += 4
        }
        while j < n {
            let r = b + j * ldb
            var a = V()
            var p = 0
            while p < kv { a = fmadd(a, load(x + p), load(r + p)); p += w }
            finish(j, a, r)
            j += 1
        }
    }

    /// x [k] contiguous; B stored [k, n] with row stride ldb: y = Σ_p x_p · B[p, :].
    @inline(__always)
    static func plainB<V: SIMD>(_: V.Type, n: Int, k: Int, alpha: Float, x: UnsafePointer<Float>, b: UnsafePointer<Float>, ldb: Int,
                                beta: Float, y: UnsafeMutablePointer<Float>) where V.Scalar == Float {
        let acc = UnsafeMutablePointer<Float>.allocate(capacity: n)
        defer { acc.deallocate() }
        acc.initialize(repeating: 0, count: n)
        let w = V.scalarCount
        let nv = n - n % w
        for p in 0..<k {
            let xv = V(repeating: x[p])
            let row = b + p * ldb
            var j = 0
            while j < nv {
                let r = UnsafeMutableRawPointer(acc + j)
                r.storeBytes(of: fmadd(r.loadUnaligned(as: V.self), xv, load(row + j)), as: V.self)
                j += w
            }
            while j < n { acc[j] += x[p] * row[j]; j += 1 }
        }
        for j in 0..<n { y[j] = beta == 0 ? alpha * acc[j] : alpha * acc[j] + beta * y[j] }
    }

    /// The m = 1 entry point: gathers x from A (a row, or a column when transA) and dispatches.
    static func sgemv(transA: Bool, transB: Bool, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
                      b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>) {
        sgemv(width: GEMVWidth.inUse, transA: transA, transB: transB, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
              beta: beta, c: c)
    }

    /// `sgemv` at a given vector width: the specs check both widths whatever the build selected.
    package static func sgemv(width: GEMVWidth, transA: Bool, transB: Bool, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>,
                              lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>) {
        if k == 0 {
            for j in 0..<n { c[j] = beta == 0 ? 0 : beta * c[j] }
            return
        }
        let x: UnsafePointer<Float>
        var gathered: UnsafeMutablePointer<Float>?
        if transA && lda != 1 {
            let g = UnsafeMutablePointer<Float>.allocate(capacity: k)
            for p in 0..<k { g[p] = a[p * lda] }
            gathered = g
            x = UnsafePointer(g)
        } else {
            x = a
        }
        defer { gathered?.deallocate() }
        switch (width, transB) {
        case (.avx2, true): transposedB(SIMD8<Float>.self, n: n, k: k, alpha: alpha, x: x, b: b, ldb: ldb, beta: beta, y: c)
        case (.avx512, true): transposedB(SIMD16<Float>.self, n: n, k: k, alpha: alpha, x: x, b: b, ldb: ldb, beta: beta, y: c)
        case (.avx2, false): plainB(SIMD8<Float>.self, n: n, k: k, alpha: alpha, x: x, b: b, ldb: ldb, beta: beta, y: c)
        case (.avx512, false): plainB(SIMD16<Float>.self, n: n, k: k, alpha: alpha, x: x, b: b, ldb: ldb, beta: beta, y: c)
        }
    }
}

/// The GEMV's vector width: chosen when the library is built, as the GEMM's tile is (`GEMMTile`):
/// 512-bit lanes on an AVX-512 build (`-DDECODERSPEC_AVX512`), 256-bit otherwise. Both are
/// compiled into every build.
package enum GEMVWidth: String, CaseIterable, Sendable {
    /// SIMD8<Float>: one ymm per accumulator.
    case avx2
    /// SIMD16<Float>: one zmm per accumulator.
    case avx512

    /// The build's choice.
    package static var selected: GEMVWidth {
        #if DECODERSPEC_AVX512
        return .avx512
        #else
        return .avx2
        #endif
    }

    /// The width GEMM's one-row path and `BF16GEMV.multiply` run: `selected`, unless the benchmark
    /// sets the other one to time both widths in one run (nothing else writes it).
    nonisolated(unsafe) package static var inUse: GEMVWidth = .selected
}
