// Multi-head attention forward with a cache, and its backward. See docs/training.md.
//
// Rows of several sequences may be packed into one matrix (length-packed batches): `segments`
// pairs each sequence's query rows with the key/value rows it may see, so the projections run
// as one big GEMM over all tokens while the T×T scores stay per sequence (no padding at all).
import Kernels
import Layers
import Masking
import PositionalEncoding
import TensorCore

/// One packed sequence: its query rows, the key/value rows it attends over, and which keys each
/// query sees — the `AttentionMask` of the segment (`mask`), as inference uses it:
///
///     visible(i, j) = (not causal or j ≤ i + (tk − tq)) and (no padding or j < keyValidLength)
///
/// with i, j relative to the segment (tq queries, tk keys): the queries of a causal segment are
/// the last tq of the tk positions. Padding masks are `keyValidLength`; causal is GPT's mask.
public struct AttentionSegment: Sendable, Equatable {
    public var queries: Range<Int>
    public var keys: Range<Int>
    public var causal: Bool
    public var keyValidLength: Int?
    public init(queries: Range<Int>, keys: Range<Int>, causal: Bool = false, keyValidLength: Int? = nil) {
        (self.queries, self.keys, self.causal, self.keyValidLength) = (queries, keys, causal, keyValidLength)
    }
    /// Self-attention over rows `range`.
    public static func selfAttention(_ range: Range<Int>, causal: Bool = false, validLength: Int? = nil) -> AttentionSegment {
        AttentionSegment(queries: range, keys: range, causal: causal, keyValidLength: validLength)
    }
    /// The position of the first query: tk − tq for a causal segment (its queries are the last
    /// tq of the tk positions), else 0 — the inference mask's query offset.
    public var firstQueryPosition: Int { causal ? keys.count - queries.count : 0 }
    /// The segment's mask over its [tq, tk] scores: `.causal(queryOffset: tk − tq)` when causal,
    /// `.keyPadding(validLength:)` when padded, both, or none.
    public var mask: AttentionMask {
        AttentionMask(isCausal: causal, queryOffset: keys.count - queries.count, keyValidLength: keyValidLength)
    }
}

public struct AttentionCache: Sendable {
    public var queryInput: Matrix
    public var memoryInput: Matrix
    public var q: Matrix, k: Matrix, v: Matrix
    /// Concat of the heads' outputs, [Tq, d] (the input of W_O).
    public var mixed: Matrix
    /// Softmax weights P per segment then head, each [tq, tk] row-major.
    public var probabilities: [[Float]]
    public var segments: [AttentionSegment]
}

extension MultiHeadAttention {
    /// Forward over packed rows: Q = Xq·W_Qᵀ + b_Q, K, V from `memory`, per segment and head
    /// P = softmax(Q_h K_hᵀ/√d_h + M), head = P·V_h, out = Concat(heads)·W_Oᵀ + b_O.
    ///
    /// Positions inside attention, per segment (positions restart at 0 in every packed sequence;
    /// queries of a causal segment start at tk − tq, as the inference mask's query offset): with
    /// RoPE, Q and K are rotated after the projections (the cache keeps them rotated); with ALiBi,
    /// head h's scaled scores get −m_h·|p_i − j| before the mask. Multi-head attention only
    /// (kvHeads = heads): grouped-query attention is not trained in this suite.
    public func trainingForward(_ x: Matrix, memory: Matrix, segments: [AttentionSegment], path: KernelPath) -> (Matrix, AttentionCache) {
        precondition(kvHeads == heads, "the training forward covers kvHeads = heads (got \(kvHeads) of \(heads))")
        // Each segment's rows are offsets into Q, K, V and the output taken through pointers below.
        for seg in segments {
            precondition(seg.queries.lowerBound >= 0 && seg.queries.upperBound <= x.rows && seg.keys.lowerBound >= 0 && seg.keys.upperBound <= memory.rows,
                         "attention segment \(seg.queries) → \(seg.keys) outside x [\(x.rows)] / memory [\(memory.rows)] rows")
        }
        var q = query.trainingForward(x, path: path)
        var k = key.trainingForward(memory, path: path)
        let v = value.trainingForward(memory, path: path)
        let d = modelWidth, dh = headWidth
        let scale = 1 / Float(dh).squareRoot()
        if case .rope(let rope) = positions {
            for seg in segments {
                RoPEBackward.rotate(&q, rows: seg.queries, from: seg.firstQueryPosition, rope, inverse: false, path: path)
                RoPEBackward.rotate(&k, rows: seg.keys, from: 0, rope, inverse: false, path: path)
            }
        }
        let slopes = positions == .alibi ? ALiBiKernel.slopes(heads: heads).map { Float($0) } : nil
        var mixed = Matrix(rows: x.rows, cols: d)
        var probabilities: [[Float]] = []
        probabilities.reserveCapacity(segments.count * heads)
        for seg in segments {
            let tq = seg.queries.count, tk = seg.keys.count
            let mask = seg.mask
            for h in 0..<heads {
                var p = [Float](repeating: 0, count: tq * tk)
                q.storage.withUnsafeBufferPointer { pq in
                    k.storage.withUnsafeBufferPointer { pk in
                        p.withUnsafeMutableBufferPointer { pp in
                            GEMM.sgemm(path, transB: true, m: tq, n: tk, k: dh, alpha: scale,
                                       a: pq.baseAddress! + seg.queries.lowerBound * d + h * dh, lda: d,
                                       b: pk.baseAddress! + seg.keys.lowerBound * d + h * dh, ldb: d, c: pp.baseAddress!, ldc: tk)
                        }
                    }
                }
                if let slopes {
                    let bias = ALiBiKernel.bias(slope: slopes[h], queries: tq, keys: tk, queryOffset: seg.firstQueryPosition)
                    for i in p.indices { p[i] += bias[i] }
                }
                // M: keys beyond the mask's visible prefix get −∞ (the loop bound the fused kernel uses).
                if mask.isCausal || mask.keyValidLength != nil {
                    for i in 0..<tq {
                        for j in mask.visibleKeyCount(query: i, keys: tk)..<tk { p[i * tk + j] = -.infinity }
                    }
                }
                p.withUnsafeMutableBufferPointer { pp in Softmax.rows(path, pp.baseAddress!, rows: tq, cols: tk) }
                p.withUnsafeBufferPointer { pp in
                    v.storage.withUnsafeBufferPointer { pv in
                        mixed.storage.withUnsafeMutableBufferPointer { pm in
                            GEMM.sgemm(path, m: tq, n: dh, k: tk, a: pp.baseAddress!, lda: tk,
                                       b: pv.baseAddress! + seg.keys.lowerBound * d + h * dh, ldb: d,
                                       c: pm.baseAddress! + seg.queries.lowerBound * d + h * dh, ldc: d)
                        }
                    }
                }
                probabilities.append(p)
            }
        }
        let out = output.trainingForward(mixed, path: path)
        return (out, AttentionCache(queryInput: x, memoryInput: memory, q: q, k: k, v: v, mixed: mixed,
                                    probabilities: probabilities, segments: segments))
    }

    /// Backward of multi-head attention, per segment and head (S = scores, P = softmax(S + M)):
    ///
    ///     dP   = dHead · V_hᵀ                       [tq, tk]
    ///     dV_h += Pᵀ · dHead                        [tk, d_h]
    ///     dS   = P ⊙ (dP − rowsum(dP ⊙ P))          (softmax backward; masked entries have P = 0 → dS = 0)
    ///     dQ_h += dS · K_h / √d_h,   dK_h += dSᵀ · Q_h / √d_h
    ///
    /// then the four Linear backwards. Returns (d query input, d memory input); for self-attention
    /// the caller adds the two.
    public func backward(_ dOut: Matrix, cache c: AttentionCache, gradient g: inout MultiHeadAttention, path: KernelPath) -> (dx: Matrix, dMemory: Matrix) {
        let dMixed = output.backward(dOut, input: c.mixed, gradient: &g.output, path: path)
        let d = modelWidth, dh = headWidth
        precondition(c.q.cols == d && c.k.cols == d && c.v.cols == d && c.k.rows == c.v.rows && c.probabilities.count == c.segments.count * heads,
                     "attention backward: cache of Q \(c.q.shape), K \(c.k.shape), V \(c.v.shape), \(c.probabilities.count) weight blocks for \(c.segments.count) segments × \(heads) heads")
        for (s, seg) in c.segments.enumerated() {
            precondition(seg.queries.lowerBound >= 0 && seg.queries.upperBound <= Swift.min(c.q.rows, dMixed.rows) && seg.keys.lowerBound >= 0 && seg.keys.upperBound <= c.k.rows
                         && c.probabilities[s * heads ..< (s + 1) * heads].allSatisfy { $0.count == seg.queries.count * seg.keys.count },
                         "attention backward: segment \(seg.queries) → \(seg.keys) does not fit the cache")
        }
        let scale = 1 / Float(dh).squareRoot()
        var dq = Matrix(rows: c.q.rows, cols: d), dk = Matrix(rows: c.k.rows, cols: d), dv = Matrix(rows: c.v.rows, cols: d)
        var index = 0
        for seg in c.segments {
            let tq = seg.queries.count, tk = seg.keys.count
            let qOff = seg.queries.lowerBound * d, kOff = seg.keys.lowerBound * d
            var dp = [Float](repeating: 0, count: tq * tk)
            for h in 0..<heads {
                let p = c.probabilities[index]
                index += 1
                dMixed.storage.withUnsafeBufferPointer { pdm in
                    c.v.storage.withUnsafeBufferPointer { pv in
                        dp.withUnsafeMutableBufferPointer { pdp in
                            GEMM.sgemm(path, transB: true, m: tq, n: tk, k: dh, a: pdm.baseAddress! + qOff + h * dh, lda: d,
                                       b: pv.baseAddress! + kOff + h * dh, ldb: d, c: pdp.baseAddress!, ldc: tk)
                        }
                    }
                    p.withUnsafeBufferPointer { pp in
                        dv.storage.withUnsafeMutableBufferPointer { pdv in
                            GEMM.sgemm(path, transA: true, m: tk, n: dh, k: tq, a: pp.baseAddress!, lda: tk,
                                       b: pdm.baseAddress! + qOff + h * dh, ldb: d, beta: 1, c: pdv.baseAddress! + kOff + h * dh, ldc: d)
                        }
                    }
                }
                // dS = P ⊙ (dP − Σ_j dP_j P_j), in place in dp.
                p.withUnsafeBufferPointer { pp in
                    dp.withUnsafeMutableBufferPointer { pdp in
                        for i in 0..<tq {
                            let pr = pp.baseAddress! + i * tk, dr = pdp.baseAddress! + i * tk
                            var dot: Float = 0
                            for j in 0..<tk { dot += dr[j] * pr[j] }
                            for j in 0..<tk { dr[j] = pr[j] * (dr[j] - dot) }
                        }
                    }
                }
                dp.withUnsafeBufferPointer { pds in
                    c.k.storage.withUnsafeBufferPointer { pk in
                        dq.storage.withUnsafeMutableBufferPointer { pdq in
                            GEMM.sgemm(path, m: tq, n: dh, k: tk, alpha: scale, a: pds.baseAddress!, lda: tk,
                                       b: pk.baseAddress! + kOff + h * dh, ldb: d, beta: 1, c: pdq.baseAddress! + qOff + h * dh, ldc: d)
                        }
                    }
                    c.q.storage.withUnsafeBufferPointer { pq in
                        dk.storage.withUnsafeMutableBufferPointer { pdk in
                            GEMM.sgemm(path, transA: true, m: tk, n: dh, k: tq, alpha: scale, a: pds.baseAddress!, lda: tk,
                                       b: pq.baseAddress! + qOff + h * dh, ldb: d, beta: 1, c: pdk.baseAddress! + kOff + h * dh, ldc: d)
                        }
                    }
                }
            }
        }
        if case .rope(let rope) = positions {  // dQ, dK were taken with respect to the rotated Q, K: rotate them back
            for seg in c.segments {
                RoPEBackward.rotate(&dq, rows: seg.queries, from: seg.firstQueryPosition, rope, inverse: true, path: path)
                RoPEBackward.rotate(&dk, rows: seg.keys, from: 0, rope, inverse: true, path: path)
            }
        }
        let dx = query.backward(dq, input: c.queryInput, gradient: &g.query, path: path)
        var dMemory = key.backward(dk, input: c.memoryInput, gradient: &g.key, path: path)
        dMemory.addInPlace(value.backward(dv, input: c.memoryInput, gradient: &g.value, path: path))
        return (dx, dMemory)
    }
}

extension Matrix {
    /// self += other (same shape; a precondition — internal plumbing of the backward passes).
    public mutating func addInPlace(_ other: Matrix) {
        precondition(shape == other.shape, "addInPlace \(shape) vs \(other.shape)")
        storage.withUnsafeMutableBufferPointer { p in
            other.storage.withUnsafeBufferPointer { o in
                for i in 0..<p.count { p[i] += o[i] }
            }
        }
    }
}

/// RoPE in the backward pass. y = R(mθ)·x per pair is a rotation, so dx = R(mθ)ᵀ·dy = R(−mθ)·dy;
/// R(−φ) = C·R(φ)·C with C = diag(1, −1) on each pair (negate the pair's second element, rotate
/// forward, negate again), so the forward kernel serves both directions.
enum RoPEBackward {
    /// Rotates rows `rows` of x [·, heads·d_h] to positions first ..< first + rows.count, or back
    /// (`inverse`). Segments are packed sequences: their row ranges do not overlap.
    static func rotate(_ x: inout Matrix, rows: Range<Int>, from first: Int, _ rope: RotaryEmbedding, inverse: Bool, path: KernelPath) {
        let dh = rope.headWidth, cols = x.cols, heads = cols / dh
        precondition(cols % dh == 0 && rows.lowerBound >= 0 && rows.upperBound <= x.rows, "RoPE rows \(rows) of \(x.shape), d_head \(dh)")
        guard !rows.isEmpty else { return }
        x.storage.withUnsafeMutableBufferPointer { p in
            let base = p.baseAddress! + rows.lowerBound * cols
            func conjugate() {
                for r in 0..<rows.count {
                    for h in 0..<heads {
                        for i in 0..<(dh / 2) { base[r * cols + h * dh + RoPEKernel.pair(i, headWidth: dh, rope.convention).1].negate() }
                    }
                }
            }
            if inverse { conjugate() }
            RoPEKernel.rotate(path, base, rows: rows.count, heads: heads, headWidth: dh, positionOffset: first, base: rope.base,
                              convention: rope.convention)
            if inverse { conjugate() }
        }
    }
}
