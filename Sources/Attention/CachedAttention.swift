import Kernels
import Masking
import TensorCore

/// Multi-head causal attention of new query rows over a KV cache's keys and values, stored as
/// Float or bf16 (`CacheRows`, `KVFormat`) — the attention of a decoding step. See
/// docs/decoding.md ("bf16 KV cache").
///
///     head_h = softmax(Q_h K_gᵀ/√d_h + M) V_g,   g = ⌊h·H_kv/H⌋,   M = causal(queryOffset) (+ ALiBi)
///
/// with K and V the cached rows as the Floats they stand for (a bf16 cache's rows widened,
/// exactly). The same result as `multiHeadAttention(q:k:v:heads:kvHeads:mask:alibiSlopes:path:)`
/// with `mask: .causal(queryOffset:)` on `keys.matrix`, `values.matrix`:
/// `.naive` is that call; `.optimized` (= `.parallel`, one core) runs one query row through
/// `CachedAttention` (every head in one pass over the rows, each K and V row read once, in its
/// stored format, nothing packed) and
/// several rows (a prompt) through the fused kernel on the Float rows (a bf16 cache widened first).
/// A result that overflowed Float is recomputed in Double, as in `multiHeadAttention`.
/// - Parameters: q [Tq, H·d_h]; keys, values [Tk, H_kv·d_h], rows already checked finite when they
///   were appended; queryOffset = Tk − Tq (query i is at absolute position queryOffset + i).
/// - Throws: `.emptySequence`, `.shapeMismatch` (K, V widths or lengths), `.invalidArgument`
///   (heads, kvHeads, ALiBi slopes, queryOffset), `.nonFinite` (Q).
public func cachedMultiHeadAttention(q: Matrix, keys: CacheRows, values: CacheRows, heads: Int, kvHeads: Int? = nil, queryOffset: Int,
                                     alibiSlopes: [Float]? = nil, path: KernelPath = .optimized) throws -> Matrix {
    let operation = "cachedMultiHeadAttention(Q, cached K, V)"
    try Validate.positive(heads, "heads")
    let kvHeads = kvHeads ?? heads
    guard kvHeads > 0, heads % kvHeads == 0 else {
        throw DecoderSpecError.invalidArgument(what: "kvHeads = \(kvHeads)", reason: "must be positive and divide heads = \(heads)")
    }
    guard q.rows > 0 else { throw DecoderSpecError.emptySequence(what: "queries Q \(q.shape) in \(operation)") }
    guard q.cols > 0, q.cols % heads == 0 else {
        throw DecoderSpecError.invalidArgument(what: "heads = \(heads)", reason: "must divide d_model (Q is \(q.shape))")
    }
    let width = q.cols / heads * kvHeads
    guard keys.cols == width, values.cols == width, keys.rows == values.rows, keys.format == values.format else {
        throw DecoderSpecError.shapeMismatch(operation: operation, expected: "K and V [Tk, kvHeads·d_head] = [Tk, \(width)] for Q \(q.shape)",
                                             actual: "K [\(keys.rows), \(keys.cols)] \(keys.format), V [\(values.rows), \(values.cols)] \(values.format)")
    }
    guard queryOffset >= 0, queryOffset + q.rows == keys.rows else {
        throw DecoderSpecError.invalidArgument(what: "query offset \(queryOffset) for \(q.rows) queries", reason: "must be Tk − Tq = \(keys.rows - q.rows)")
    }
    if let alibiSlopes {
        guard alibiSlopes.count == heads, alibiSlopes.allSatisfy(\.isFinite) else {
            throw DecoderSpecError.invalidArgument(what: "ALiBi slopes (\(alibiSlopes.count))", reason: "need \(heads) finite values, one per head")
        }
    }
    try Validate.finite(q.storage[...], "queries Q \(q.shape)")
    let mask = AttentionMask.causal(queryOffset: queryOffset)
    guard path != .naive, q.rows == 1 else {
        return try multiHeadAttention(q: q, k: keys.matrix, v: values.matrix, heads: heads, kvHeads: kvHeads, mask: mask,
                                      alibiSlopes: alibiSlopes, path: path, trustedKeyRows: keys.rows)
    }
    KernelRecorder.record(.attention, path)
    let dk = q.cols / heads, scale = 1 / Float(dk).squareRoot()
    var out = Matrix(rows: 1, cols: q.cols)
    func run<E: CacheElement>(_ k: UnsafePointer<E>, _ v: UnsafePointer<E>) {
        q.storage.withUnsafeBufferPointer { pq in
            out.storage.withUnsafeMutableBufferPointer { po in
                func call(_ slopes: UnsafePointer<Float>?) {
                    CachedAttention.forward(E.self, q: pq.baseAddress!, k: k, v: v, ld: width, out: po.baseAddress!, heads: heads, kvHeads: kvHeads,
                                            keys: keys.rows, dk: dk, scale: scale, position: queryOffset, alibi: slopes)
                }
                if let alibiSlopes { alibiSlopes.withUnsafeBufferPointer { call($0.baseAddress!) } } else { call(nil) }
            }
        }
    }
    switch keys.format {
    case .fp32:
        keys.floats.withUnsafeBufferPointer { pk in values.floats.withUnsafeBufferPointer { pv in run(pk.baseAddress!, pv.baseAddress!) } }
    case .bf16:
        keys.halves.withUnsafeBufferPointer { pk in values.halves.withUnsafeBufferPointer { pv in run(pk.baseAddress!, pv.baseAddress!) } }
    }
    if Validate.allFinite(out.storage) { return out }
    // Overflow (a score beyond Float): the Double recomputation on the widened rows.
    return AttentionKernels.wide(q: q, k: keys.matrix, v: values.matrix,
                                 heads: .init(query: heads, keyValue: kvHeads, alibiSlopes: alibiSlopes), mask: mask)
}
