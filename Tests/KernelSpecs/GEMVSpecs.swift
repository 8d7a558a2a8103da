import DecoderSpec
import GSLOracle
import SpecSupport
import Testing

/// The m = 1 path of GEMM (a decoding step's shape) against GSL dgemm and against the naive loop.
@Suite("GEMM with one row (GEMV): every variant vs GSL and vs naive")
struct GEMVSpecs {
    static let shapes: [(n: Int, k: Int)] = [(1, 1), (3, 5), (7, 8), (8, 7), (17, 33), (64, 64), (129, 255), (2304, 768)]

    @Test("y = α·x·op(B) + β·y for m = 1, every transpose, every variant", arguments: KernelPath.allCases)
    func oneRow(variant: KernelPath) throws {
        for (n, k) in Self.shapes {
            for transA in [false, true] {
                for transB in [false, true] {
                    for (alpha, beta): (Float, Float) in [(1, 0), (0.5, 2)] {
                        // The GPT-2 shape runs once, in the layout a Linear layer uses (debug-build time).
                        if n * k > 100_000 && (transA || !transB || beta != 0) { continue }
                        let seed = UInt(n * 131 + k)
                        let x = Inputs.matrix(rows: 1, cols: k, seed: seed).storage          // A: [1, k] or [k, 1]
                        let b = Inputs.matrix(rows: transB ? n : k, cols: transB ? k : n, seed: seed + 1).storage
                        var c = Inputs.matrix(rows: 1, cols: n, seed: seed + 2).storage
                        let c0 = c
                        x.withUnsafeBufferPointer { px in
                            b.withUnsafeBufferPointer { pb in
                                c.withUnsafeMutableBufferPointer { pc in
                                    GEMM.sgemm(variant, transA: transA, transB: transB, m: 1, n: n, k: k, alpha: alpha,
                                               a: px.baseAddress!, lda: transA ? 1 : k, b: pb.baseAddress!, ldb: transB ? k : n,
                                               beta: beta, c: pc.baseAddress!, ldc: n)
                                }
                            }
                        }
                        let ab = try GSL.dgemm(transB: transB, m: 1, n: n, k: k, a: x.doubles, b: b.doubles)
                        let ref = zip(ab, c0).map { Double(alpha) * $0 + Double(beta) * Double($1) }
                        // Reduction bound: |error| ≤ (k + 2)·ε·(|α|·Σ_p |x_p B_pj| + |β c_j|) ≤ (k + 2)·ε·(|α|·k + |β|)
                        // for entries in [−1, 1].
                        let bound = Double(k + 2) * Double(Float.ulpOfOne) * (Double(alpha) * Double(k) + Double(beta))
                        let v = compare(c, ref, .absolute(bound), "n=\(n) k=\(k) transA=\(transA) transB=\(transB) α=\(alpha) β=\(beta) \(variant)")
                        #expect(v.passed, "\(v.message)")
                    }
                }
            }
        }
    }

    /// Both vector widths (whatever the build selected), at lengths k and n that 16 and 8 do not
    /// divide (the SIMD loop's tail and the last < 4 rows), against GSL dgemm.
    @Test("GEMV at each vector width (SIMD8 and SIMD16 lanes) vs GSL, ragged lengths", arguments: GEMVWidth.allCases)
    func eachWidth(width: GEMVWidth) throws {
        let shapes: [(n: Int, k: Int)] = [(1, 1), (5, 7), (6, 15), (7, 17), (9, 23), (3, 31), (13, 33), (11, 47), (70, 100), (35, 775)]
        for (n, k) in shapes {
            for transB in [false, true] {
                for (alpha, beta): (Float, Float) in [(1, 0), (0.5, 2)] {
                    let seed = UInt(n * 977 + k)
                    let x = Inputs.matrix(rows: 1, cols: k, seed: seed).storage
                    let b = Inputs.matrix(rows: transB ? n : k, cols: transB ? k : n, seed: seed + 1).storage
                    var c = Inputs.matrix(rows: 1, cols: n, seed: seed + 2).storage
                    let c0 = c
                    x.withUnsafeBufferPointer { px in
                        b.withUnsafeBufferPointer { pb in
                            c.withUnsafeMutableBufferPointer { pc in
                                GEMV.sgemv(width: width, transA: false, transB: transB, n: n, k: k, alpha: alpha, a: px.baseAddress!, lda: k,
                                           b: pb.baseAddress!, ldb: transB ? k : n, beta: beta, c: pc.baseAddress!)
                            }
                        }
                    }
                    let ab = try GSL.dgemm(transB: transB, m: 1, n: n, k: k, a: x.doubles, b: b.doubles)
                    let ref = zip(ab, c0).map { Double(alpha) * $0 + Double(beta) * Double($1) }
                    // The same reduction bound as above: (k + 2)·ε·(|α|·k + |β|) for entries in [−1, 1].
                    let bound = Double(k + 2) * Double(Float.ulpOfOne) * (Double(alpha) * Double(k) + Double(beta))
                    let v = compare(c, ref, .absolute(bound), "n=\(n) k=\(k) transB=\(transB) α=\(alpha) β=\(beta) \(width)")
                    #expect(v.passed, "\(v.message)")
                }
            }
        }
    }

    @Test("β = 0 overwrites C without reading it (NaN in C does not leak), as BLAS specifies")
    func betaZeroDoesNotRead() {
        let x: [Float] = [1, 2, 3], b: [Float] = [1, 0, 0, 0, 1, 0, 0, 0, 1]
        for variant in KernelPath.allCases {
            var c: [Float] = [.nan, .nan, .nan]
            x.withUnsafeBufferPointer { px in
                b.withUnsafeBufferPointer { pb in
                    c.withUnsafeMutableBufferPointer { pc in
                        GEMM.sgemm(variant, transB: true, m: 1, n: 3, k: 3, a: px.baseAddress!, lda: 3, b: pb.baseAddress!, ldb: 3,
                                   beta: 0, c: pc.baseAddress!, ldc: 3)
                    }
                }
            }
            #expect(c == [1, 2, 3], "\(variant)")
        }
    }
}
