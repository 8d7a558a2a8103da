// The source documents' attention formulas, verbatim, so their defects can be shown executably.
// The documents: docs/sources.md; specs in Tests/AttentionSpecs (AttentionErrataSpecs); discussion in docs/attention.md.
import Attention
import Kernels
import Masking
import TensorCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the source documents say attention computes, transcribed as written. Each one is wrong;
/// the specs run the same property checks as for the real attention and expect them to FAIL.
public enum AttentionErrata {
    // MARK: Doc 004 — unnormalized weight

    /// Doc 004 (§4, 案例分析), verbatim:
    ///
    ///     a_{i,j} = \frac{e^{Q_{pe}_i \cdot K_{pe}_j / \sqrt{d_{model}}}}{\sqrt{d_{model}}}
    ///
    /// i.e. a_ij = exp(q_i·k_j/√d)/√d. The division by √d replaces the softmax's division by
    /// Σ_l exp(q_i·k_l/√d): rows do not sum to 1 (their sum depends on the scores and on Tk), so the
    /// output is not a weighted average of the values. Masked entries (−∞) give exp(−∞) = 0.
    /// Shapes: q [Tq, d], k [Tk, d] → [Tq, Tk].
    public static let doc004Formula = #"a_{i,j} = \frac{e^{Q_{pe}_i \cdot K_{pe}_j / \sqrt{d_{model}}}}{\sqrt{d_{model}}}"#

    public static func doc004Weights(q: Matrix, k: Matrix, mask: AttentionMask = .none) throws -> Matrix {
        guard q.cols == k.cols else {
            throw DecoderSpecError.shapeMismatch(operation: "AttentionErrata.doc004Weights", expected: "equal d", actual: "Q \(q.shape), K \(k.shape)")
        }
        let m = try mask.materialize(queries: q.rows, keys: k.rows)
        let sqrtD = Float(q.cols).squareRoot()
        var a = try q.matmul(k, transposeOther: true, path: .naive)
        for idx in a.storage.indices {
            a.storage[idx] = expf(a.storage[idx] / sqrtD + m.storage[idx]) / sqrtD
        }
        return a
    }

    /// Doc 004's weights applied to V as attention is: o_i = Σ_j a_ij v_j. [Tq, d_v].
    public static func doc004Attention(q: Matrix, k: Matrix, v: Matrix, mask: AttentionMask = .none) throws -> Matrix {
        try doc004Weights(q: q, k: k, mask: mask).matmul(v, path: .naive)
    }

    // MARK: Doc 000 — the snippet scales V; the prose adds V

    /// Doc 000 (§3.2.3), verbatim (full block in `doc000Snippet`; `attn_mask` is the causal
    /// mask, triu with diagonal=1 — correct in intent; `attn_bias` is never used):
    ///
    ///     attn_query = query * self.attn_in_scale
    ///     attn_key = key * self.attn_in_scale
    ///     attn_value = value * self.attn_in_scale
    ///     attn_weights = torch.bmm(attn_query, attn_key.transpose(1, 2))
    ///     attn_weights = attn_weights.masked_fill_(attn_mask, float('-inf'))
    ///     attn_weights = softmax(attn_weights, dim=-1)
    ///     attn_context = torch.bmm(attn_weights, attn_value)
    ///
    /// `attn_in_scale` is not defined there; the only value that makes the scores right is
    /// d^(−1/4) (scaling both Q and K by it gives QKᵀ/√d). Scaling V by the same factor multiplies
    /// the output by d^(−1/4): the weights are right, the output is not Attention(Q, K, V).
    public static let doc000Snippet = """
        import torch
        from torch import softmax

        # 定义注意力机制
        attn_mask = torch.triu(torch.ones(batch_size, max_len, max_len).to(device), diagonal=1)
        attn_bias = torch.zeros(batch_size, max_len, max_len).to(device)
        attn_query = query * self.attn_in_scale
        attn_key = key * self.attn_in_scale
        attn_value = value * self.attn_in_scale
        attn_weights = torch.bmm(attn_query, attn_key.transpose(1, 2))
        attn_weights = attn_weights.masked_fill_(attn_mask, float('-inf'))
        attn_weights = softmax(attn_weights, dim=-1)
        attn_context = torch.bmm(attn_weights, attn_value)
        """

    /// The snippet, transcribed: q, k, v [T, d] scaled by `inScale` (default d^(−1/4)). [Tq, d_v].
    public static func doc000Snippet(q: Matrix, k: Matrix, v: Matrix, mask: AttentionMask = .none,
                                     inScale: Float? = nil) throws -> Matrix {
        let s = inScale ?? 1 / Float(q.cols).squareRoot().squareRoot()
        var attnQuery = q, attnKey = k, attnValue = v
        for i in attnQuery.storage.indices { attnQuery.storage[i] *= s }
        for i in attnKey.storage.indices { attnKey.storage[i] *= s }
        for i in attnValue.storage.indices { attnValue.storage[i] *= s }
        var attnWeights = try attnQuery.matmul(attnKey, transposeOther: true, path: .naive)
        let m = try mask.materialize(queries: q.rows, keys: k.rows)  // masked_fill_(…, -inf)
        let (rows, cols) = (attnWeights.rows, attnWeights.cols)
        attnWeights.storage.withUnsafeMutableBufferPointer { w in
            m.storage.withUnsafeBufferPointer { Softmax.rows(.naive, w.baseAddress!, rows: rows, cols: cols, mask: $0.baseAddress!) }
        }
        return try attnWeights.matmul(attnValue, path: .naive)
    }

    /// Doc 000 (§3.2.3), step 4, verbatim: "将注意力向量与值向量相加，得到最终的注意力向量。"
    /// ("add the attention vector to the value vectors to get the final attention vector").
    public static let doc000Prose = "将注意力向量与值向量相加，得到最终的注意力向量。"

    /// The prose, transcribed: Attention(Q, K, V) + V. Only defined when Tq = Tk (one value vector
    /// per output row, i.e. self-attention); otherwise a shape error.
    public static func doc000Prose(q: Matrix, k: Matrix, v: Matrix, mask: AttentionMask = .none) throws -> Matrix {
        guard q.rows == v.rows else {
            throw DecoderSpecError.shapeMismatch(operation: "AttentionErrata.doc000Prose (attention + V)",
                                                 expected: "Tq = Tk (output [Tq, d_v] added to V [Tk, d_v])",
                                                 actual: "Tq = \(q.rows), V \(v.shape)")
        }
        var o = try scaledDotProductAttention(q: q, k: k, v: v, mask: mask, path: .naive)
        for i in o.storage.indices { o.storage[i] += v.storage[i] }
        return o
    }
}
