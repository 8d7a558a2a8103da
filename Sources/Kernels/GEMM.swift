/// General matrix multiply, `C = α·op(A)·op(B) + β·C`, row-major. See docs/kernels.md.
///
/// Shapes: op(A) is [m, k], op(B) is [k, n], C is [m, n]. With `transA`, A is stored [k, m];
/// with `transB`, B is stored [n, k] — the layout of a PyTorch `Linear` weight ([out, in]),
/// so `x · Wᵀ` is `transB: true`. `lda`, `ldb`, `ldc` are row strides (elements).
public enum GEMM {
    // Paths (`KernelPath`, whose doc has the table for every kernel):
    // - `.naive`: the triple loop of the definition: C[i,j] = β·C[i,j] + α·Σ_p A[i,p]·B[p,j].
    // - `.optimized`: identical to naive except: panels of A and B are packed, the loops are
    //   cache-blocked, and a register-blocked SIMD micro-kernel accumulates a tile of C (its shape
    //   chosen for the build's vector width: `GEMMTile`). Summation order differs. Single-precision products with one row (m = 1) take the streaming `GEMV` path.
    // - `.parallel`: identical to optimized except: C is cut into one column (or row) block per
    //   core, each computed by the optimized path on its own thread (`DispatchQueue.concurrentPerform`).

    /// Single precision. Internal entry point: sizes are preconditions, not errors.
    public static func sgemm(
        _ path: KernelPath, transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        sgemm(path, tile: .selected, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
              a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
    }

    /// `sgemm` on a given register tile (`GEMMTile`): the specs check every tile whatever the
    /// build selected, and the benchmark times the other tile beside the selected one.
    package static func sgemm(
        _ path: KernelPath, tile: GEMMTile, transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0, "GEMM sizes must be non-negative")
        KernelRecorder.recordGEMM(path, .init(transA: transA, transB: transB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc, accumulate: beta != 0))
        if m == 1 && path != .naive {
            // One row — a KV-cached decoding step: B has no reuse to pack for, so stream it once.
            GEMV.sgemv(transA: transA, transB: transB, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                       beta: beta, c: c)
            return
        }
        switch (path, tile) {
        case (.naive, _):
            naive(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                  b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        case (.optimized, .avx2):
            blocked(FloatTile256.self, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                    b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        case (.optimized, .avx512):
            blocked(FloatTile512.self, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                    b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        case (.parallel, .avx2):
            parallel(FloatTile256.self, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                     b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        case (.parallel, .avx512):
            parallel(FloatTile512.self, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                     b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        }
    }

    /// Double precision, same contract as `sgemm`.
    public static func dgemm(
        _ path: KernelPath, transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int, alpha: Double = 1,
        a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
        beta: Double = 0, c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        dgemm(path, tile: .selected, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
              a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
    }

    /// `dgemm` on a given register tile (see the `sgemm` overload with `tile:`).
    package static func dgemm(
        _ path: KernelPath, tile: GEMMTile, transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int, alpha: Double = 1,
        a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
        beta: Double = 0, c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0, "GEMM sizes must be non-negative")
        KernelRecorder.record(.gemm, path)
        switch (path, tile) {
        case (.naive, _):
            naive(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                  b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        case (.optimized, .avx2):
            blocked(DoubleTile256.self, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                    b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        case (.optimized, .avx512):
            blocked(DoubleTile512.self, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                    b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        case (.parallel, .avx2):
            parallel(DoubleTile256.self, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                     b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        case (.parallel, .avx512):
            parallel(DoubleTile512.self, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                     b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        }
    }

    /// The definition, transcribed: for each (i, j), a dot product over p.
    static func naive<T: BinaryFloatingPoint>(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: T,
        a: UnsafePointer<T>, lda: Int, b: UnsafePointer<T>, ldb: Int,
        beta: T, c: UnsafeMutablePointer<T>, ldc: Int
    ) {
        for i in 0..<m {
            for j in 0..<n {
                var sum: T = 0
                for p in 0..<k {
                    let aip = transA ? a[p * lda + i] : a[i * lda + p]
                    let bpj = transB ? b[j * ldb + p] : b[p * ldb + j]
                    sum += aip * bpj
                }
                // β = 0 means "overwrite": C's old contents (maybe NaN) are not read, as in BLAS.
                c[i * ldc + j] = beta == 0 ? alpha * sum : alpha * sum + beta * c[i * ldc + j]
            }
        }
    }
}

import TensorCore

extension Matrix {
    /// `op(self) · op(other)` with shape checks; the safe face of `GEMM.sgemm`.
    /// - Throws: `.shapeMismatch` when the inner dimensions differ.
    public func matmul(_ other: Matrix, transposeSelf: Bool = false, transposeOther: Bool = false,
                       path: KernelPath = .optimized) throws -> Matrix {
        let (m, k1) = transposeSelf ? (cols, rows) : (rows, cols)
        let (k2, n) = transposeOther ? (other.cols, other.rows) : (other.rows, other.cols)
        guard k1 == k2 else {
            throw DecoderSpecError.shapeMismatch(
                operation: "matmul(A\(transposeSelf ? "ᵀ" : ""), B\(transposeOther ? "ᵀ" : ""))",
                expected: "inner dimensions equal (A is \(shape), B is \(other.shape))",
                actual: "\(k1) vs \(k2)")
        }
        var out = Matrix(rows: m, cols: n)
        if m == 0 || n == 0 || k1 == 0 { return out }
        storage.withUnsafeBufferPointer { pa in
            other.storage.withUnsafeBufferPointer { pb in
                out.storage.withUnsafeMutableBufferPointer { pc in
                    GEMM.sgemm(path, transA: transposeSelf, transB: transposeOther, m: m, n: n, k: k1,
                               a: pa.baseAddress!, lda: cols, b: pb.baseAddress!, ldb: other.cols,
                               c: pc.baseAddress!, ldc: n)
                }
            }
        }
        return out
    }
}
