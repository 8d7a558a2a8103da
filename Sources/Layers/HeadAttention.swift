import Attention
import Kernels
import Masking
import TensorCore

/// The attention core of `AttentionLayer`: per-head scaled dot-product attention on projected
/// Q, K, V [T, d_model] (heads side by side), on the backend's attention kernel.
///
///     head_h = softmax(Q_h K_hᵀ / sqrt(d_head) + M) V_h,   M[i, j] = −∞ unless
///              j ≤ i + causalOffset (when causal) and j < keyValidLength (when given)
///
/// A query with no visible key gets a zero row (docs/masking.md).
enum HeadAttention {
    /// `cachedRows`: leading rows of K and V already validated (the KV cache before this step).
    static func attend(q: Matrix, k: Matrix, v: Matrix, heads: Int, causalOffset: Int?, keyValidLength: Int?,
                       backend: Backend, cachedRows: Int = 0) throws -> Matrix {
        let mask = AttentionMask(isCausal: causalOffset != nil, queryOffset: causalOffset ?? 0, keyValidLength: keyValidLength)
        return try multiHeadAttention(q: q, k: k, v: v, heads: heads, mask: mask, variant: backend.attention, cachedRows: cachedRows)
    }
}
