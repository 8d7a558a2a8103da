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

/// Attention of a few new queries over a KV cache, one query row and one head at a time — the
/// decoding step's attention. See docs/decoding.md ("bf16 KV cache").
///
///     O_i = Σ_{j < n_i} p_ij · V_j,   p_ij = 2^(s_ij − m_i) / Σ_j 2^(s_ij − m_i),
///     s_ij = log₂e · (scale · q_i·K_j − slope·|pos_i − j|),   n_i = min(Tk, i + causalOffset + 1)
///
/// K and V are read in their stored element type (`CacheElement`: Float, or bf16 widened in
/// registers), each row once per query, the rows 8 positions further asked for ahead of the loads
/// (`decoderspec_prefetch`); nothing is packed. Identical to `FusedAttention.forward`
/// on the widened K and V except: no query/key tiling (one query row at a time, the scores of its
/// n_i keys in a scratch row, then an exact two-pass softmax: the maximum first, then 2^(s − m)
/// with the same SIMD polynomial); summation order differs. A row whose scores overflowed Float
/// (a non-finite maximum) is all NaN, so the caller can recompute it (the public API does, in Double).
package enum CachedAttention {
    /// Raw entry point (preconditions, not errors: the callers validate). q rows [tq, ≥ dk] stride
    /// ldq; k, v rows [tk, …] strides ldk, ldv; out rows stride ldo; query i sees keys
    /// j ≤ i + causalOffset; alibi: score −= slope·|queryOffset + i − j|. Specialized for both
    /// element types (a caller in another module would otherwise run the unspecialized generic code).
    @_specialize(where E == Float)
    @_specialize(where E == UInt16)
    package static func forward<E: CacheElement>(
        _: E.Type, width: GEMVWidth = GEMVWidth.inUse,
        q: UnsafePointer<Float>, ldq: Int, k: UnsafePointer<E>, ldk: Int, v: UnsafePointer<E>, ldv: Int,
        out: UnsafeMutablePointer<Float>, ldo: Int, queries tq: Int, keys tk: Int, dk: Int, dv: Int, scale: Float,
        causalOffset: Int, alibi: (slope: Float, queryOffset: Int)?
    ) {
        switch width {
        case .avx2: forward(E.self, SIMD8<Float>.self, q: q, ldq: ldq, k: k, ldk: ldk, v: v, ldv: ldv, out: out, ldo: ldo, queries: tq,
                            keys: tk, dk: dk, dv: dv, scale: scale, causalOffset: causalOffset, alibi: alibi)
        case .avx512: forward(E.self, SIMD16<Float>.self, q: q, ldq: ldq, k: k, ldk: ldk, v: v, ldv: ldv, out: out, ldo: ldo, queries: tq,
                              keys: tk, dk: dk, dv: dv, scale: scale, causalOffset: causalOffset, alibi: alibi)
        }
    }

    @inline(__always)
    static func forward<E: CacheElement, V: CacheLane>(
        _: E.Type, _: V.Type,
        q: UnsafePointer<Float>, ldq: Int, k: UnsafePointer<E>, ldk: Int, v: UnsafePointer<E>, ldv: Int,
        out: UnsafeMutablePointer<Float>, ldo: Int, queries tq: Int, keys tk: Int, dk: Int, dv: Int, scale: Float,
        causalOffset: Int, alibi: (slope: Float, queryOffset: Int)?
    ) {
        precondition(tq >= 0 && tk >= 0 && dk >= 0 && dv >= 0 && ldq >= dk && ldk >= dk && ldv >= dv && ldo >= dv,
                     "CachedAttention: sizes must be non-negative and strides cover the rows")
        if tq == 0 || dv == 0 { return }
        let lanes = V.scalarCount, block = 2 * lanes
        let dkv = dk - dk % block, dvv = dv - dv % block
        let log2e: Float = 1.442_695_040_888_963_4
        let s2 = scale * log2e
        // Scratch: q of one row in slot order, scores of one row (padded to a whole vector), O in slot order.
        let scoreCount = (tk + lanes - 1) / lanes * lanes
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(1, dkv + scoreCount + dv))
        defer { scratch.deallocate() }
        let qs = scratch, scores = scratch + dkv, acc = scores + scoreCount
        for i in 0..<tq {
            let o = out + i * ldo
            let n = max(0, min(tk, i + causalOffset + 1))
            if n == 0 { for c in 0..<dv { o[c] = 0 }; continue }
            let qi = q + i * ldq
            var b0 = 0
            while b0 < dkv {
                for b in 0..<block { qs[b0 + E.slot(b, lanes: lanes)] = qi[b0 + b] * s2 }
                b0 += block
            }
            // Scores, base 2: s_j = log₂e·scale·q·K_j (− log₂e·slope·|pos − j|); their maximum.
            let slope2 = -(alibi?.slope ?? 0) * log2e, position = (alibi?.queryOffset ?? 0) + i
            var m = -Float.infinity
            let keyBytes = dk * MemoryLayout<E>.stride, ahead = 8  // rows in flight ahead of the loads
            for j in 0..<n {
                let kr = k + j * ldk
                let pf = UnsafeRawPointer(kr + ahead * ldk)
                var line = 0
                while line < keyBytes { decoderspec_prefetch(pf + line); line &+= 64 }
                var a0 = V(), a1 = V()
                var p = 0
                while p < dkv {
                    let (x0, x1): (V, V) = E.loadBlock(kr + p)
                    a0 = GEMV.fmadd(a0, GEMV.load(qs + p), x0)
                    a1 = GEMV.fmadd(a1, GEMV.load(qs + p + lanes), x1)
                    p &+= block
                }
                var s = (a0 + a1).pairwiseSum
                while p < dk { s += qi[p] * s2 * E.widen(kr[p]); p &+= 1 }
                if alibi != nil { s += slope2 * Float(abs(position - j)) }
                scores[j] = s
                m = max(m, s)
            }
            if !m.isFinite {  // q·K overflowed Float (±∞) or NaN: mark the row for the caller's recomputation
                for c in 0..<dv { o[c] = .nan }
                continue
            }
            // p_j = 2^(s_j − m), l = Σ p_j (padding lanes past n are −∞ → 0).
            for j in n..<((n + lanes - 1) / lanes * lanes) { scores[j] = -.infinity }
            let mv = V(repeating: m)
            var sum = V()
            var j = 0
            while j < n {
                let e = V.exp2NonPositive(GEMV.load(scores + j) - mv)
                UnsafeMutableRawPointer(scores + j).storeBytes(of: e, as: V.self)
                sum += e
                j &+= lanes
            }
            let l = sum.pairwiseSum
            // O = Σ_j p_j V_j, a block of 2N columns at a time (two keys in flight: four accumulators),
            // the rows `ahead` further asked for.
            let blockBytes = block * MemoryLayout<E>.stride
            var c0 = 0
            while c0 < dvv {
                var e0 = V(), e1 = V(), f0 = V(), f1 = V()
                var j = 0
                while j + 2 <= n {
                    let r0 = v + j * ldv + c0, r1 = r0 + ldv
                    let pf = UnsafeRawPointer(r0 + ahead * ldv)
                    var line = 0
                    while line < blockBytes { decoderspec_prefetch(pf + line); decoderspec_prefetch(pf + ldv * MemoryLayout<E>.stride + line); line &+= 64 }
                    let p0 = V(repeating: scores[j]), p1 = V(repeating: scores[j + 1])
                    let (x0, x1): (V, V) = E.loadBlock(r0)
                    let (y0, y1): (V, V) = E.loadBlock(r1)
                    e0 = GEMV.fmadd(e0, p0, x0); e1 = GEMV.fmadd(e1, p0, x1)
                    f0 = GEMV.fmadd(f0, p1, y0); f1 = GEMV.fmadd(f1, p1, y1)
                    j &+= 2
                }
                if j < n {
                    let p0 = V(repeating: scores[j])
                    let (x0, x1): (V, V) = E.loadBlock(v + j * ldv + c0)
                    e0 = GEMV.fmadd(e0, p0, x0); e1 = GEMV.fmadd(e1, p0, x1)
                }
                UnsafeMutableRawPointer(acc + c0).storeBytes(of: e0 + f0, as: V.self)
                UnsafeMutableRawPointer(acc + c0 + lanes).storeBytes(of: e1 + f1, as: V.self)
                c0 &+= block
            }
            for c in dvv..<dv {
                var s: Float = 0
                for j in 0..<n { s += scores[j] * E.widen(v[j * ldv + c]) }
                acc[c] = s
            }
            // O / l, back from slot order to column order.
            let inv = 1 / l
            c0 = 0
            while c0 < dvv {
                for b in 0..<block { o[c0 + b] = acc[c0 + E.slot(b, lanes: lanes)] * inv }
                c0 += block
            }
            for c in dvv..<dv { o[c] = acc[c] * inv }
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
