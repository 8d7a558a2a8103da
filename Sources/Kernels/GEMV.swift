/// Matrix–vector product, the m = 1 case of GEMM: one row x [k] times op(B) → y [n]. See
/// docs/kernels.md ("GEMV").
///
///     y_j = α · Σ_p x_p · op(B)[p, j] + β · y_j
///
/// This is the shape of a KV-cached decoding step (one new token through every Linear layer).
/// There is no reuse of B to exploit, so the blocked GEMM's packing only adds a second pass over
/// the weights; this path streams B once, which makes it memory-bandwidth bound.
///
/// Identical to `GEMM.naive` with m = 1 except: SIMD8 accumulation (4 rows of B at a time when B
/// is stored [n, k]; row-wise axpy when B is stored [k, n]). Summation order differs.
enum GEMV {
    typealias V = SIMD8<Float>

    @inline(__always)
    static func fmadd(_ acc: V, _ a: V, _ b: V) -> V {
        #if DECODERSPEC_NATIVE
        return acc.addingProduct(a, b)
        #else
        return acc + a * b  // no target-CPU flag: keep it vectorized, not a call to fmaf
        #endif
    }

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> V {
        UnsafeRawPointer(p).loadUnaligned(as: V.self)
    }

    /// x [k] contiguous; B stored [n, k] with row stride ldb (op(B) = Bᵀ, a Linear weight).
    static func transposedB(n: Int, k: Int, alpha: Float, x: UnsafePointer<Float>, b: UnsafePointer<Float>, ldb: Int,
                            beta: Float, y: UnsafeMutablePointer<Float>) {
        let k8 = k & ~7
        @inline(__always) func finish(_ j: Int, _ acc: V, _ row: UnsafePointer<Float>) {
            var s = acc.sum()
            for p in k8..<k { s += x[p] * row[p] }
            y[j] = beta == 0 ? alpha * s : alpha * s + beta * y[j]
        }
        var j = 0
        while j + 4 <= n {
            let r0 = b + j * ldb, r1 = r0 + ldb, r2 = r1 + ldb, r3 = r2 + ldb
            var a0 = V(), a1 = V(), a2 = V(), a3 = V()
            var p = 0
            while p < k8 {
                let xv = load(x + p)
                a0 = fmadd(a0, xv, load(r0 + p))
                a1 = fmadd(a1, xv, load(r1 + p))
                a2 = fmadd(a2, xv, load(r2 + p))
                a3 = fmadd(a3, xv, load(r3 + p))
                p += 8
            }
            finish(j, a0, r0); finish(j + 1, a1, r1); finish(j + 2, a2, r2); finish(j + 3, a3, r3)
            j += 4
        }
        while j < n {
            let r = b + j * ldb
            var a = V()
            var p = 0
            while p < k8 { a = fmadd(a, load(x + p), load(r + p)); p += 8 }
            finish(j, a, r)
            j += 1
        }
    }

    /// x [k] contiguous; B stored [k, n] with row stride ldb: y = Σ_p x_p · B[p, :].
    static func plainB(n: Int, k: Int, alpha: Float, x: UnsafePointer<Float>, b: UnsafePointer<Float>, ldb: Int,
                       beta: Float, y: UnsafeMutablePointer<Float>) {
        let acc = UnsafeMutablePointer<Float>.allocate(capacity: n)
        defer { acc.deallocate() }
        acc.initialize(repeating: 0, count: n)
        let n8 = n & ~7
        for p in 0..<k {
            let xv = V(repeating: x[p])
            let row = b + p * ldb
            var j = 0
            while j < n8 {
                let r = UnsafeMutableRawPointer(acc + j)
                r.storeBytes(of: fmadd(r.loadUnaligned(as: V.self), xv, load(row + j)), as: V.self)
                j += 8
            }
            while j < n { acc[j] += x[p] * row[j]; j += 1 }
        }
        for j in 0..<n { y[j] = beta == 0 ? alpha * acc[j] : alpha * acc[j] + beta * y[j] }
    }

    /// The m = 1 entry point: gathers x from A (a row, or a column when transA) and dispatches.
    static func sgemv(transA: Bool, transB: Bool, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
                      b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>) {
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
        if transB {
            transposedB(n: n, k: k, alpha: alpha, x: x, b: b, ldb: ldb, beta: beta, y: c)
        } else {
            plainB(n: n, k: k, alpha: alpha, x: x, b: b, ldb: ldb, beta: beta, y: c)
        }
    }
}
