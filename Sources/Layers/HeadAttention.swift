import Kernels
import TensorCore

/// Per-head scaled dot-product attention on projected Q, K, V [T, d_model] (heads side by side).
///
///     head_h = softmax(Q_h K_hᵀ / sqrt(d_head) + M) V_h,   M[i, j] = −∞ unless
///              j ≤ i + causalOffset (when causal) and j < keyValidLength (when given)
///
/// A query with no visible key gets a zero row (the Softmax convention).
enum HeadAttention {
    static func attend(q: Matrix, k: Matrix, v: Matrix, heads: Int, causalOffset: Int?, keyValidLength: Int?,
                       backend: Backend) throws -> Matrix {
        guard q.cols == k.cols, k.shape == v.shape, q.cols % heads == 0 else {
            throw DecoderSpecError.shapeMismatch(operation: "multi-head attention", expected: "Q [Tq, d], K and V [Tk, d], heads | d",
                                                 actual: "Q \(q.shape), K \(k.shape), V \(v.shape), heads \(heads)")
        }
        guard q.rows > 0, k.rows > 0 else {
            throw DecoderSpecError.emptySequence(what: q.rows == 0 ? "queries" : "keys/values (memory)")
        }
        let tq = q.rows, tk = k.rows, d = q.cols, dh = d / heads
        var out = Matrix(rows: tq, cols: d)
        let scale = 1 / Float(dh).squareRoot()
        var scores = [Float](repeating: 0, count: tq * tk)
        for h in 0..<heads {
            // scores = Q_h K_hᵀ · scale
            q.storage.withUnsafeBufferPointer { pq in
                k.storage.withUnsafeBufferPointer { pk in
                    scores.withUnsafeMutableBufferPointer { ps in
                        GEMM.sgemm(backend.gemm, transB: true, m: tq, n: tk, k: dh, alpha: scale,
                                   a: pq.baseAddress! + h * dh, lda: d, b: pk.baseAddress! + h * dh, ldb: d,
                                   c: ps.baseAddress!, ldc: tk)
                    }
                }
            }
            for i in 0..<tq {
                var visible = tk
                if let n = keyValidLength { visible = min(visible, n) }
                if let o = causalOffset { visible = min(visible, i + o + 1) }
                for j in max(0, visible)..<tk { scores[i * tk + j] = -.infinity }
            }
            scores.withUnsafeMutableBufferPointer { ps in
                Softmax.rows(backend.softmax, ps.baseAddress!, rows: tq, cols: tk)
            }
            // out_h = weights · V_h
            scores.withUnsafeBufferPointer { ps in
                v.storage.withUnsafeBufferPointer { pv in
                    out.storage.withUnsafeMutableBufferPointer { po in
                        GEMM.sgemm(backend.gemm, m: tq, n: dh, k: tk, a: ps.baseAddress!, lda: tk,
                                   b: pv.baseAddress! + h * dh, ldb: d, c: po.baseAddress! + h * dh, ldc: d)
                    }
                }
            }
        }
        return out
    }
}
