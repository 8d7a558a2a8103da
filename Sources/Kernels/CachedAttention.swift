#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CPrefetch
import TensorCore

/// How a KV cache stores its keys and values (docs/decoding.md, "bf16 KV cache").
public enum KVFormat: String, CaseIterable, Sendable {
    /// IEEE binary32: the projected keys and values as computed.
    case fp32
    /// bfloat16, each key and value rounded once when written (nearest, ties to even, relative
    /// error ≤ 2⁻⁸); attention reads them widened to Float, and every sum stays Float.
    case bf16

    /// Bytes per stored element.
    public var bytesPerElement: Int { self == .bf16 ? 2 : 4 }
}

/// What a cache row's element is stored as: `Float` itself, or `UInt16` holding bf16 bits. The
/// cached-attention kernel is written once over this protocol, so the Float and the bf16 cache
/// run the same loop (`CachedAttention`).
package protocol CacheElement {
    /// The Float the stored element stands for (exact).
    static func widen(_ x: Self) -> Float
    /// 2·N consecutive stored elements (N = V.scalarCount) as two Float vectors, in this element's
    /// slot order (`slot`): Float loads them as they lie (elements 0..<N, then N..<2N); bf16 as its
    /// even and odd elements (`BF16Lane.widenPairs`), the widening that needs no shuffle.
    static func loadBlock<V: CacheLane>(_ p: UnsafePointer<Self>) -> (V, V)
    /// The slot (0..<2N) that element b (0..<2N) of a block lands in after `loadBlock`.
    static func slot(_ b: Int, lanes: Int) -> Int
}

extension Float: CacheElement {
    @inline(__always) package static func widen(_ x: Float) -> Float { x }
    @inline(__always) package static func loadBlock<V: CacheLane>(_ p: UnsafePointer<Float>) -> (V, V) {
        (GEMV.load(p), GEMV.load(p + V.scalarCount))
    }
    @inline(__always) package static func slot(_ b: Int, lanes: Int) -> Int { b }
}

extension UInt16: CacheElement {
    @inline(__always) package static func widen(_ x: UInt16) -> Float { BFloat16.widen(x) }
    @inline(__always) package static func loadBlock<V: CacheLane>(_ p: UnsafePointer<UInt16>) -> (V, V) {
        let w = V.widenPairs(p)
        return (w.even, w.odd)
    }
    @inline(__always) package static func slot(_ b: Int, lanes: Int) -> Int { b % 2 == 0 ? b / 2 : lanes + b / 2 }
}

/// The lane types of the cached-attention kernel: the bf16 widening of the GEMV, a SIMD 2^x and
/// a pairwise horizontal sum.
package protocol CacheLane: BF16Lane {
    static func exp2NonPositive(_ x: Self) -> Self
    /// Σ of the lanes, halves added pairwise (log₂ N dependent adds instead of N).
    var pairwiseSum: Float { get }
}

extension SIMD8: CacheLane where Scalar == Float {
    @inline(__always) package static func exp2NonPositive(_ x: SIMD8<Float>) -> SIMD8<Float> { FusedAttention.exp2NonPositive(x) }
    @inline(__always) package var pairwiseSum: Float { let h = lowHalf + highHalf; let q = h.lowHalf + h.highHalf; return q[0] + q[1] }
}

extension SIMD16: CacheLane where Scalar == Float {
    @inline(__always) package static func exp2NonPositive(_ x: SIMD16<Float>) -> SIMD16<Float> { FusedAttention.exp2NonPositive(x) }
    @inline(__always) package var pairwiseSum: Float {
        let e = lowHalf + highHalf, h = e.lowHalf + e.highHalf, q = h.lowHalf + h.highHalf
        return q[0] + q[1]
    }
}

/// Attention of one new query over a KV cache, every head in one pass over the cached rows — the
/// decoding step's attention. See docs/decoding.md ("bf16 KV cache").
///
///     O_h = Σ_{j < Tk} p_hj · V_j[g],   p_hj = 2^(s_hj − m_h) / Σ_j 2^(s_hj − m_h),   g = ⌊h / (H / H_kv)⌋
///     s_hj = log₂e · (scale · q_h·K_j[g] − slope_h·(position − j))
///
/// K and V are read in their stored element type (`CacheElement`: Float, or bf16 widened in
/// registers), row by row — each row [H_kv·d_h] is contiguous, so the cache streams from memory in
/// order, every head's slice of a row used while it is in the core's cache — with the rows 8
/// positions further asked for ahead of the loads (`decoderspec_prefetch`); nothing is packed.
/// Identical to `FusedAttention.forward` on the widened K and V, one head at a time, except: no
/// tiling (the scores of all heads in a scratch block, then an exact two-pass softmax per head:
/// the maximum first, then 2^(s − m) with the same SIMD polynomial); summation order differs. A
/// head whose scores overflowed Float (a non-finite maximum) is all NaN, so the caller can
/// recompute it (the public API does, in Double).
package enum CachedAttention {
    /// Raw entry point (preconditions, not errors: the callers validate). q [heads·dk]; k, v rows
    /// [keys, kvHeads·dk] with row stride `ld` (≥ kvHeads·dk); out [heads·dk]; the query is at
    /// `position` (≥ keys − 1) and sees every key; alibi slopes, one per head, or nil. Specialized
    /// for both element types (a caller in another module would otherwise run generic code).
    @_specialize(where E == Float)
    @_specialize(where E == UInt16)
    package static func forward<E: CacheElement>(
        _: E.Type, width: GEMVWidth = GEMVWidth.inUse,
        q: UnsafePointer<Float>, k: UnsafePointer<E>, v: UnsafePointer<E>, ld: Int, out: UnsafeMutablePointer<Float>,
        heads: Int, kvHeads: Int, keys n: Int, dk: Int, scale: Float, position: Int, alibi: UnsafePointer<Float>?
    ) {
        switch width {
        case .avx2: forward(E.self, SIMD8<Float>.self, q: q, k: k, v: v, ld: ld, out: out, heads: heads, kvHeads: kvHeads, keys: n, dk: dk,
                            scale: scale, position: position, alibi: alibi)
        case .avx512: forward(E.self, SIMD16<Float>.self, q: q, k: k, v: v, ld: ld, out: out, heads: heads, kvHeads: kvHeads, keys: n, dk: dk,
                              scale: scale, position: position, alibi: alibi)
        }
    }

    @inline(__always)
    static func forward<E: CacheElement, V: CacheLane>(
        _: E.Type, _: V.Type,
        q: UnsafePointer<Float>, k: UnsafePointer<E>, v: UnsafePointer<E>, ld: Int, out: UnsafeMutablePointer<Float>,
        heads: Int, kvHeads: Int, keys n: Int, dk: Int, scale: Float, position: Int, alibi: UnsafePointer<Float>?
    ) {
        precondition(heads > 0 && kvHeads > 0 && heads % kvHeads == 0 && n >= 0 && dk >= 0 && ld >= kvHeads * dk && position >= n - 1,
                     "CachedAttention: heads, sizes and the row stride must fit")
        if dk == 0 { return }
        let lanes = V.scalarCount, block = 2 * lanes, group = heads / kvHeads
        let dkv = dk - dk % block
        let log2e: Float = 1.442_695_040_888_963_4
        let s2 = scale * log2e
        // Scratch: q per head in slot order, scaled; the scores of every head (rows padded to a whole
        // vector); O per head in slot order; each head's maximum.
        let padded = (n + lanes - 1) / lanes * lanes
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: heads * (dkv + padded + dk + 1) + 1)
        defer { scratch.deallocate() }
        let qs = scratch, scores = qs + heads * dkv, acc = scores + heads * padded, maxima = acc + heads * dk
        for h in 0..<heads {
            var b0 = 0
            while b0 < dkv {
                for b in 0..<block { qs[h * dkv + b0 + E.slot(b, lanes: lanes)] = q[h * dk + b0 + b] * s2 }
                b0 += block
            }
            maxima[h] = -.infinity
        }
        let rowBytes = kvHeads * dk * MemoryLayout<E>.stride, ahead = 8  // rows in flight ahead of the loads
        // Scores, base 2, row by row: s_hj = log₂e·scale·q_h·K_j[g] (− log₂e·slope_h·(position − j)).
        for j in 0..<n {
            let kr = k + j * ld
            let pf = UnsafeRawPointer(k + (j + ahead) * ld)
            var line = 0
            while line < rowBytes { decoderspec_prefetch(pf + line); line &+= 64 }
            for h in 0..<heads {
                let kh = kr + (h / group) * dk, qh = qs + h * dkv
                var a0 = V(), a1 = V()
                var p = 0
                while p < dkv {
                    let (x0, x1): (V, V) = E.loadBlock(kh + p)
                    a0 = GEMV.fmadd(a0, GEMV.load(qh + p), x0)
                    a1 = GEMV.fmadd(a1, GEMV.load(qh + (p &+ lanes)), x1)
                    p &+= block
                }
                var s = (a0 + a1).pairwiseSum
                while p < dk { s += q[h * dk + p] * s2 * E.widen(kh[p]); p &+= 1 }
                if let alibi { s += -alibi[h] * log2e * Float(position - j) }
                scores[h * padded + j] = s
                maxima[h] = max(maxima[h], s)
            }
        }
        // p_hj = 2^(s_hj − m_h), l_h = Σ_j p_hj (padding lanes past n are −∞ → 0); O_h starts at 0.
        for h in 0..<heads {
            let row = scores + h * padded, m = maxima[h]
            for c in 0..<dk { acc[h * dk + c] = 0 }
            guard m.isFinite else { continue }  // overflowed: marked below
            for j in n..<padded { row[j] = -.infinity }
            let mv = V(repeating: m)
            var sum = V()
            var j = 0
            while j < n {
                let e = V.exp2NonPositive(GEMV.load(row + j) - mv)
                UnsafeMutableRawPointer(row + j).storeBytes(of: e, as: V.self)
                sum += e
                j &+= lanes
            }
            maxima[h] = sum.pairwiseSum  // from here on: l_h
        }
        // O_h += p_hj · V_j[g], row by row (every head's accumulators stay in L1: heads·dk Floats).
        for j in 0..<n {
            let vr = v + j * ld
            let pf = UnsafeRawPointer(v + (j + ahead) * ld)
            var line = 0
            while line < rowBytes { decoderspec_prefetch(pf + line); line &+= 64 }
            for h in 0..<heads {
                let p = scores[h * padded + j], vh = vr + (h / group) * dk, ah = acc + h * dk
                let pv = V(repeating: p)
                var c0 = 0
                while c0 < dkv {
                    let (x0, x1): (V, V) = E.loadBlock(vh + c0)
                    let r0 = UnsafeMutableRawPointer(ah + c0), r1 = UnsafeMutableRawPointer(ah + (c0 &+ lanes))
                    r0.storeBytes(of: GEMV.fmadd(r0.loadUnaligned(as: V.self), pv, x0), as: V.self)
                    r1.storeBytes(of: GEMV.fmadd(r1.loadUnaligned(as: V.self), pv, x1), as: V.self)
                    c0 &+= block
                }
                while c0 < dk { ah[c0] += p * E.widen(vh[c0]); c0 &+= 1 }
            }
        }
        // O_h / l_h, back from slot order to column order; NaN for a head whose scores overflowed.
        for h in 0..<heads {
            let o = out + h * dk, ah = acc + h * dk
            guard n > 0 else { for c in 0..<dk { o[c] = 0 }; continue }
            guard maxima[h].isFinite, maxima[h] > 0 else { for c in 0..<dk { o[c] = .nan }; continue }
            let inv = 1 / maxima[h]
            var c0 = 0
            while c0 < dkv {
                for b in 0..<block { o[c0 + b] = ah[c0 + E.slot(b, lanes: lanes)] * inv }
                c0 += block
            }
            for c in dkv..<dk { o[c] = ah[c] * inv }
        }
    }
}

/// Rows of a KV cache's keys or values, [rows, cols], stored as Float or as bf16 (`KVFormat`):
/// appended one decoding step at a time (amortized O(cols) per row, as `Matrix.appendRows`),
/// rounded once when written in bf16.
public struct CacheRows: Sendable, Equatable {
    public let format: KVFormat
    public let cols: Int
    public private(set) var rows: Int
    /// The rows as Floats (fp32; empty in bf16).
    package private(set) var floats: [Float]
    /// The rows as bf16 bits (bf16; empty in fp32).
    package private(set) var halves: [UInt16]

    public init(cols: Int, format: KVFormat) {
        (self.cols, self.format, rows, floats, halves) = (cols, format, 0, [], [])
    }

    /// Rows of `m`, rounded to bf16 in that format.
    public init(_ m: Matrix, format: KVFormat) {
        self.init(cols: m.cols, format: format)
        append(m)
    }

    /// Appends the rows of `m` (its width must be `cols`: a precondition, the callers check it).
    /// - Returns: false, appending nothing, when a bf16 row would hold ±∞ (a finite Float beyond
    ///   the largest bf16, ≈ 3.39·10³⁸, rounds to ∞).
    @discardableResult
    public mutating func append(_ m: Matrix) -> Bool {
        precondition(m.cols == cols, "CacheRows.append: rows of width \(m.cols) to a cache of width \(cols)")
        switch format {
        case .fp32:
            floats.append(contentsOf: m.storage)
        case .bf16:
            let rounded = m.storage.map(BFloat16.round)
            guard rounded.allSatisfy({ BFloat16.widen($0).isFinite }) else { return false }
            halves.append(contentsOf: rounded)
        }
        rows += m.rows
        return true
    }

    /// Keeps the first `count` rows.
    public mutating func truncate(to count: Int) {
        let keep = Swift.min(Swift.max(count, 0), rows)
        switch format {
        case .fp32: floats.removeLast((rows - keep) * cols)
        case .bf16: halves.removeLast((rows - keep) * cols)
        }
        rows = keep
    }

    /// The rows as a Float matrix: fp32 shares the storage (no copy), bf16 widens (exact).
    public var matrix: Matrix {
        try! Matrix(rows: rows, cols: cols, storage: format == .fp32 ? floats : halves.map(BFloat16.widen))
    }

    /// Bytes the stored rows occupy.
    public var bytes: Int { rows * cols * format.bytesPerElement }
}
