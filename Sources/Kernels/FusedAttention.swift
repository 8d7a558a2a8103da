#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Fused, tiled scaled dot-product attention with an online softmax. See docs/attention.md
/// (the derivation) and docs/masking.md (masks as loop bounds).
///
///     O = softmax(Q·Kᵀ · scale + M) · V          Q [Tq, d_k], K [Tk, d_k], V [Tk, d_v], O [Tq, d_v]
///
/// Identical to the naive path (materialize S = Q·Kᵀ·scale + M [Tq, Tk], softmax each row, S·V)
/// except:
/// - the Tq×Tk matrix is never allocated: keys are visited in blocks of `keyBlock`, and for each
///   block every query block of `queryBlock` rows that can see it updates a running row maximum
///   m, a running sum l and an unnormalized output row O (the online softmax):
///       m' = max(m, max_j s_j),  l' = l·2^(m−m') + Σ_j 2^(s_j−m'),  O' = O·2^(m−m') + Σ_j 2^(s_j−m')·V_j
///   and O / l is the result (0 when l = 0: a fully masked row; NaN when a score overflowed
///   Float — ±∞ from a finite q·k — so the caller can tell; the public API then recomputes in Double);
/// - scores are kept in base 2 (s·log₂e) and exponentiated by a SIMD polynomial for 2^x instead
///   of `expf`; values below 2^−126 are flushed to 0;
/// - the causal and key-padding masks are loop bounds: query i visits keys
///   j < min(keyValidLength, i + causalOffset + 1); key blocks entirely above the diagonal are
///   skipped, and inside the diagonal block masked scores are set to −∞ (weight exactly 0);
/// - summation order differs (blocked dot products, per-block partial sums).
///
/// Extra memory: `workspaceBytes(queries:dk:)` = one packed Kᵀ block (d_k × keyBlock), one score
/// tile (queryBlock × keyBlock) and m, l per query — O(Tq + d_k), independent of Tk.
public enum FusedAttention {
    /// Query rows per register tile.
    public static let queryBlock = 6
    /// Keys per block (a multiple of 16, the micro-kernel's column width).
    public static let keyBlock = 256

    /// Bytes of scratch memory `forward` allocates for these sizes.
    public static func workspaceBytes(queries: Int, dk: Int) -> Int {
        (dk * keyBlock + queryBlock * keyBlock + 2 * queries + queryBlock) * MemoryLayout<Float>.stride
    }

    /// Computes O (rows `out + i·ldo`) from Q, K, V given by row pointers and row strides.
    ///
    /// - Parameters:
    ///   - q: query rows [tq, dk], row i at `q + i·ldq`.
    ///   - ldq: row stride of `q`.
    ///   - k: key rows [tk, dk], row stride `ldk`.
    ///   - ldk: row stride of `k`.
    ///   - v: value rows [tk, dv], row stride `ldv`.
    ///   - ldv: row stride of `v`.
    ///   - out: output rows [tq, dv], row stride `ldo`.
    ///   - ldo: row stride of `out`.
    ///   - tq: number of queries Tq.
    ///   - tk: number of keys Tk.
    ///   - dk: query/key width d_k.
    ///   - dv: value width d_v.
    ///   - scale: the factor applied to Q·Kᵀ (1/√d_k for scaled dot-product attention).
    ///   - causalOffset: `nil` for no causal mask; otherwise query i sees keys j ≤ i + causalOffset.
    ///   - keyValidLength: keys j ≥ keyValidLength are padding (pass `keys` for none).
    ///   - additive: optional additive bias [Tq, Tk] (row stride `ldm`), finite or −∞.
    ///   - ldm: row stride of `additive`.
    ///   - alibi: optional ALiBi bias (`ALiBiKernel`): score[i, j] −= slope·|queryOffset + i − j|,
    ///     computed per score (no [Tq, Tk] matrix).
    /// Preconditions (internal kernel; the public API validates): sizes ≥ 0, strides ≥ widths.
    public static func forward(
        q: UnsafePointer<Float>, ldq: Int, k: UnsafePointer<Float>, ldk: Int,
        v: UnsafePointer<Float>, ldv: Int, out: UnsafeMutablePointer<Float>, ldo: Int,
        queries tq: Int, keys tk: Int, dk: Int, dv: Int, scale: Float,
        causalOffset: Int?, keyValidLength: Int,
        additive: UnsafePointer<Float>? = nil, ldm: Int = 0,
        alibi: (slope: Float, queryOffset: Int)? = nil
    ) {
        precondition(tq >= 0 && tk >= 0 && dk >= 0 && dv >= 0, "FusedAttention sizes must be non-negative")
        precondition(ldq >= dk && ldk >= dk && ldv >= dv && ldo >= dv, "FusedAttention strides must cover the rows")
        if tq == 0 || dv == 0 { return }
        let qb = queryBlock, kb = keyBlock
        let log2e: Float = 1.442_695_040_888_963_4
        let scale2 = scale * log2e

        // Workspace: packed Kᵀ block [dk, kb], score tile [qb, kb], running max and sum per query,
        // and the per-row rescaling factors of the current tile.
        let floats = dk * kb + qb * kb + 2 * tq + qb
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, floats) * 4, alignment: 64)
        defer { raw.deallocate() }
        let base = raw.bindMemory(to: Float.self, capacity: max(1, floats))
        let kt = base
        let tile = kt + dk * kb
        let rowMax = tile + qb * kb
        let rowSum = rowMax + tq
        let alpha = rowSum + tq

        for i in 0..<tq {
            rowMax[i] = -.infinity
            rowSum[i] = 0
            let o = out + i * ldo
            for c in 0..<dv { o[c] = 0 }
        }

        let keyEnd = max(0, min(tk, keyValidLength))
        @inline(__always) func visible(_ i: Int) -> Int {
            var n = keyEnd
            if let off = causalOffset { n = min(n, i + min(off, keyEnd) + 1) }
            return max(0, n)
        }

        var j0 = 0
        while j0 < keyEnd {
            let bk = min(kb, keyEnd - j0)
            let bkPadded = (bk + 15) & ~15
            // Pack Kᵀ for this block: kt[p·kb + c] = K[j0 + c, p], zero past bk.
            // Eight keys at a time: one SIMD8 store per p instead of eight strided scalar stores.
            var c = 0
            while c + 8 <= bk {
                let r0 = k + (j0 + c) * ldk
                let r1 = r0 + ldk, r2 = r1 + ldk, r3 = r2 + ldk, r4 = r3 + ldk, r5 = r4 + ldk, r6 = r5 + ldk, r7 = r6 + ldk
                var dst = kt + c
                for p in 0..<dk {
                    store8(SIMD8<Float>(r0[p], r1[p], r2[p], r3[p], r4[p], r5[p], r6[p], r7[p]), dst)
                    dst += kb
                }
                c += 8
            }
            while c < bk {
                let kr = k + (j0 + c) * ldk
                for p in 0..<dk { kt[p &* kb &+ c] = kr[p] }
                c += 1
            }
            if bk < bkPadded { for p in 0..<dk { for c in bk..<bkPadded { kt[p * kb + c] = 0 } } }

            // The first query that can see key j0 (causal: i + off ≥ j0); earlier blocks are skipped.
            var i0 = 0
            if let off = causalOffset { i0 = max(0, j0 - off) }
            while i0 < tq {
                let bq = min(qb, tq - i0)
                // Columns any row of this tile can see (the last row sees the most): on the
                // diagonal, fewer than the block's width.
                let tileColumns = min(bkPadded, (max(0, min(bk, visible(i0 + bq - 1) - j0)) + 15) & ~15)
                if bq == qb {
                    scoreTile(q: q + i0 * ldq, ldq: ldq, rows: bq, kt: kt, kb: kb, columns: tileColumns, dk: dk,
                              scale: scale2, tile: tile)
                } else {  // a short tile (e.g. the single query of a KV-cache step): one row at a time
                    for r in 0..<bq {
                        scoreRow(q: q + (i0 + r) * ldq, kt: kt, kb: kb, columns: tileColumns, dk: dk, scale: scale2,
                                 out: tile + r * kb)
                    }
                }
                // Online-softmax update of each row; afterwards tile holds 2^(s − m') (0 where masked).
                var columnsUsed = 0
                for r in 0..<bq {
                    let i = i0 + r
                    let srow = tile + r * kb
                    let seen = min(bk, visible(i) - j0)
                    if seen <= 0 {
                        for c in 0..<tileColumns { srow[c] = 0 }
                        alpha[r] = 1
                        continue
                    }
                    if let additive {
                        let mrow = additive + i * ldm + j0
                        for c in 0..<seen { srow[c] += mrow[c] * log2e }
                    }
                    if let alibi {
                        let p = alibi.queryOffset + i - j0, slope2 = -alibi.slope * log2e
                        for c in 0..<seen { srow[c] += slope2 * Float(abs(p - c)) }
                    }
                    for c in seen..<tileColumns { srow[c] = -.infinity }
                    var mv = SIMD8<Float>(repeating: -.infinity)
                    var c = 0
                    while c < tileColumns {
                        let s = load8(srow + c)
                        mv.replace(with: s, where: s .> mv)
                        c += 8
                    }
                    let mOld = rowMax[i]
                    let mNew = max(mOld, mv.max())
                    if mNew == -.infinity {
                        // Every visible score is −∞: masked by the additive bias (nothing to add), or
                        // q·k overflowed Float to −∞ — then mark the row NaN (see the end), so the
                        // caller can recompute it (the public API does, in Double).
                        var overflowed = additive == nil
                        if let additive {
                            let mrow = additive + i * ldm + j0
                            for c in 0..<seen where mrow[c] != -.infinity { overflowed = true; break }
                        }
                        if overflowed { rowSum[i] = .nan }
                        for c in 0..<tileColumns { srow[c] = 0 }
                        alpha[r] = 1
                        continue
                    }
                    let a: Float = mOld == -.infinity ? 0 : exp2f(mOld - mNew)
                    let m8 = SIMD8<Float>(repeating: mNew)
                    var sum = SIMD8<Float>()
                    c = 0
                    while c < tileColumns {
                        let p = exp2NonPositive(load8(srow + c) - m8)
                        store8(p, srow + c)
                        sum += p
                        c += 8
                    }
                    rowSum[i] = rowSum[i] * a + sum.sum()
                    rowMax[i] = mNew
                    alpha[r] = a
                    columnsUsed = max(columnsUsed, seen)
                }
                valueTile(tile: tile, kb: kb, rows: bq, columns: columnsUsed, alpha: alpha,
                          v: v + j0 * ldv, ldv: ldv, dv: dv, out: out + i0 * ldo, ldo: ldo)
                i0 += bq
            }
            j0 += bk
        }

        // O = O / l; a row that saw no key has l = 0 and stays 0. A row whose scores overflowed
        // Float (l is NaN: +∞ − +∞ in 2^(s − m), or marked above) is all NaN — never a silent 0.
        for i in 0..<tq {
            let o = out + i * ldo
            let l = rowSum[i]
            if l > 0 {
                let inv = 1 / l
                for c in 0..<dv { o[c] *= inv }
            } else if l == 0 {
                for c in 0..<dv { o[c] = 0 }
            } else {
                for c in 0..<dv { o[c] = .nan }
            }
        }
    }

    /// tile[r·kb + c] = scale · Σ_p Q[r, p] · Kᵀ[p, c] for r < rows, c < columns (a multiple of 16).
    /// Micro-kernel: 6 query rows × 16 keys in twelve SIMD8 accumulators (+ 2 key vectors and one
    /// broadcast: 15 of the 16 AVX2 registers); rows ≥ `rows` alias the last real row and their
    /// results are not stored.
    @inline(__always)
    static func scoreTile(q: UnsafePointer<Float>, ldq: Int, rows: Int, kt: UnsafePointer<Float>, kb: Int,
                          columns: Int, dk: Int, scale: Float, tile: UnsafeMutablePointer<Float>) {
        let q0 = q
        let q1 = q + min(1, rows - 1) * ldq
        let q2 = q + min(2, rows - 1) * ldq
        let q3 = q + min(3, rows - 1) * ldq
        let q4 = q + min(4, rows - 1) * ldq
        let q5 = q + min(5, rows - 1) * ldq
        let s = SIMD8<Float>(repeating: scale)
        var c0 = 0
        while c0 < columns {
            var a = Tile6x16(repeating: SIMD8<Float>())
            var kp = kt + c0
            for p in 0..<dk {
                a.accumulate(q0[p], q1[p], q2[p], q3[p], q4[p], q5[p], times: load8(kp), load8(kp + 8))
                kp += kb
            }
            let t = tile + c0
            store8(a.r00 * s, t); store8(a.r01 * s, t + 8)
            if rows > 1 { store8(a.r10 * s, t + kb); store8(a.r11 * s, t + kb + 8) }
            if rows > 2 { store8(a.r20 * s, t + 2 * kb); store8(a.r21 * s, t + 2 * kb + 8) }
            if rows > 3 { store8(a.r30 * s, t + 3 * kb); store8(a.r31 * s, t + 3 * kb + 8) }
            if rows > 4 { store8(a.r40 * s, t + 4 * kb); store8(a.r41 * s, t + 4 * kb + 8) }
            if rows > 5 { store8(a.r50 * s, t + 5 * kb); store8(a.r51 * s, t + 5 * kb + 8) }
            c0 += 16
        }
    }

    /// One row of scores: out[c] = scale · Σ_p q[p] · Kᵀ[p, c] for c < columns (a multiple of 16),
    /// 64 columns at a time in eight independent SIMD8 accumulators (enough to hide FMA latency).
    /// Per element the same operations in the same order as `scoreTile`, so results are bitwise equal.
    @inline(__always)
    static func scoreRow(q: UnsafePointer<Float>, kt: UnsafePointer<Float>, kb: Int, columns: Int, dk: Int, scale: Float,
                         out: UnsafeMutablePointer<Float>) {
        let s = SIMD8<Float>(repeating: scale)
        var c0 = 0
        while c0 + 64 <= columns {
            var a = Row64(repeating: SIMD8<Float>())
            var kp = kt + c0
            for p in 0..<dk {
                a.accumulate(q[p], times: kp)
                kp += kb
            }
            a.store(to: out + c0, scaledBy: s)
            c0 += 64
        }
        while c0 < columns {
            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>()
            var kp = kt + c0
            for p in 0..<dk {
                let b = SIMD8<Float>(repeating: q[p])
                a0 = fmadd(b, load8(kp), a0); a1 = fmadd(b, load8(kp + 8), a1)
                kp += kb
            }
            store8(a0 * s, out + c0); store8(a1 * s, out + c0 + 8)
            c0 += 16
        }
    }

    /// O[r, :] = α_r · O[r, :] + Σ_{c < columns} P[r, c] · V[c, :] for r < rows.
    @inline(__always)
    static func valueTile(tile: UnsafePointer<Float>, kb: Int, rows: Int, columns: Int, alpha: UnsafePointer<Float>,
                          v: UnsafePointer<Float>, ldv: Int, dv: Int, out: UnsafeMutablePointer<Float>, ldo: Int) {
        if rows == 6 {
            let p0 = tile, p1 = tile + kb, p2 = tile + 2 * kb, p3 = tile + 3 * kb, p4 = tile + 4 * kb, p5 = tile + 5 * kb
            let o0 = out, o1 = out + ldo, o2 = out + 2 * ldo, o3 = out + 3 * ldo, o4 = out + 4 * ldo, o5 = out + 5 * ldo
            var d0 = 0
            while d0 + 16 <= dv {
                var a = Tile6x16(repeating: SIMD8<Float>())
                (a.r00, a.r01) = (load8(o0 + d0) * SIMD8(repeating: alpha[0]), load8(o0 + d0 + 8) * SIMD8(repeating: alpha[0]))
                (a.r10, a.r11) = (load8(o1 + d0) * SIMD8(repeating: alpha[1]), load8(o1 + d0 + 8) * SIMD8(repeating: alpha[1]))
                (a.r20, a.r21) = (load8(o2 + d0) * SIMD8(repeating: alpha[2]), load8(o2 + d0 + 8) * SIMD8(repeating: alpha[2]))
                (a.r30, a.r31) = (load8(o3 + d0) * SIMD8(repeating: alpha[3]), load8(o3 + d0 + 8) * SIMD8(repeating: alpha[3]))
                (a.r40, a.r41) = (load8(o4 + d0) * SIMD8(repeating: alpha[4]), load8(o4 + d0 + 8) * SIMD8(repeating: alpha[4]))
                (a.r50, a.r51) = (load8(o5 + d0) * SIMD8(repeating: alpha[5]), load8(o5 + d0 + 8) * SIMD8(repeating: alpha[5]))
                var vr = v + d0
                for c in 0..<columns {
                    a.accumulate(p0[c], p1[c], p2[c], p3[c], p4[c], p5[c], times: load8(vr), load8(vr + 8))
                    vr += ldv
                }
                store8(a.r00, o0 + d0); store8(a.r01, o0 + d0 + 8)
                store8(a.r10, o1 + d0); store8(a.r11, o1 + d0 + 8)
                store8(a.r20, o2 + d0); store8(a.r21, o2 + d0 + 8)
                store8(a.r30, o3 + d0); store8(a.r31, o3 + d0 + 8)
                store8(a.r40, o4 + d0); store8(a.r41, o4 + d0 + 8)
                store8(a.r50, o5 + d0); store8(a.r51, o5 + d0 + 8)
                d0 += 16
            }
            if d0 < dv {
                for r in 0..<6 {
                    valueRowTail(p: tile + r * kb, columns: columns, alpha: alpha[r], v: v, ldv: ldv,
                                 from: d0, dv: dv, o: out + r * ldo)
                }
            }
        } else {
            for r in 0..<rows {
                valueRowTail(p: tile + r * kb, columns: columns, alpha: alpha[r], v: v, ldv: ldv,
                             from: 0, dv: dv, o: out + r * ldo)
            }
        }
    }

    /// One row, columns d0..<dv of O: chunks of 64 (eight accumulators), then SIMD8 chunks, then
    /// scalars. Per element the same operations in the same order as the 6-row tile.
    @inline(__always)
    static func valueRowTail(p: UnsafePointer<Float>, columns: Int, alpha: Float, v: UnsafePointer<Float>, ldv: Int,
                             from d0: Int, dv: Int, o: UnsafeMutablePointer<Float>) {
        var d = d0
        let s = SIMD8<Float>(repeating: alpha)
        while d + 64 <= dv {  // eight independent accumulators: FMA latency hidden
            var a = Row64(loading: o + d, scaledBy: s)
            var vr = v + d
            for c in 0..<columns {
                a.accumulate(p[c], times: vr)
                vr += ldv
            }
            a.store(to: o + d)
            d += 64
        }
        while d + 8 <= dv {
            var acc = load8(o + d) * s
            var vr = v + d
            for c in 0..<columns {
                acc = fmadd(SIMD8<Float>(repeating: p[c]), load8(vr), acc)
                vr += ldv
            }
            store8(acc, o + d)
            d += 8
        }
        while d < dv {
            var acc = o[d] * alpha
            var vr = v + d
            for c in 0..<columns {
                acc = p[c] * vr[0] + acc
                vr += ldv
            }
            o[d] = acc
            d += 1
        }
    }

    /// 2^x for x ≤ 0 (−∞ allowed) in SIMD: x = n + f with n = round(x), f ∈ [−½, ½];
    /// 2^f = e^(f·ln 2) by its Taylor polynomial of degree 7 (truncation < 6·10⁻⁹ relative);
    /// 2^n is built in the exponent bits. Results below 2^−126 (including x = −∞) are 0.
    @inline(__always)
    public static func exp2NonPositive(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let floor = SIMD8<Float>(repeating: -126)
        let xc = x.replacing(with: floor, where: x .< floor)
        // Adding 1.5·2²³ rounds to an integer and leaves it in the low mantissa bits.
        let magic = SIMD8<Float>(repeating: 12_582_912)
        let t = xc + magic
        let n = t - magic
        let f = xc - n
        var poly = SIMD8<Float>(repeating: 1.525_273_4e-5)
        poly = fmadd(poly, f, SIMD8(repeating: 1.540_353_0e-4))
        poly = fmadd(poly, f, SIMD8(repeating: 1.333_355_8e-3))
        poly = fmadd(poly, f, SIMD8(repeating: 9.618_129_1e-3))
        poly = fmadd(poly, f, SIMD8(repeating: 5.550_410_9e-2))
        poly = fmadd(poly, f, SIMD8(repeating: 0.240_226_51))
        poly = fmadd(poly, f, SIMD8(repeating: 0.693_147_18))
        poly = fmadd(poly, f, SIMD8(repeating: 1))
        let bits = unsafeBitCast(t, to: SIMD8<UInt32>.self)
        let exponent = (bits &- 0x4B40_0000 &+ 127) &<< 23
        var result = poly * unsafeBitCast(exponent, to: SIMD8<Float>.self)
        result.replace(with: SIMD8<Float>(), where: x .< floor)
        return result
    }
}

@inline(__always)
private func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
private func load8(_ p: UnsafeMutablePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
private func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}

/// a·b + c. With `-target-cpu native` (DECODERSPEC_NATIVE) a fused multiply-add; without it,
/// separate multiply and add (a flag-free build would otherwise call `fmaf` per lane).
@inline(__always)
private func fmadd(_ a: SIMD8<Float>, _ b: SIMD8<Float>, _ c: SIMD8<Float>) -> SIMD8<Float> {
    #if DECODERSPEC_NATIVE
    return c.addingProduct(a, b)
    #else
    return a * b + c
    #endif
}

/// The register tile of both products of the fused attention (scores S = Q·Kᵀ and the update
/// O += P·V): 6 rows × 16 columns as twelve SIMD8 accumulators (+ 2 column vectors and a broadcast:
/// 15 of the 16 AVX2 registers), updated by one rank-1 step per inner index.
struct Tile6x16 {
    var r00, r01, r10, r11, r20, r21, r30, r31, r40, r41, r50, r51: SIMD8<Float>

    @inline(__always)
    init(repeating v: SIMD8<Float>) {
        (r00, r01, r10, r11, r20, r21, r30, r31, r40, r41, r50, r51) = (v, v, v, v, v, v, v, v, v, v, v, v)
    }

    /// row_r += x_r · (b0, b1) for the six rows (one fused multiply-add per accumulator).
    @inline(__always)
    mutating func accumulate(_ x0: Float, _ x1: Float, _ x2: Float, _ x3: Float, _ x4: Float, _ x5: Float,
                             times b0: SIMD8<Float>, _ b1: SIMD8<Float>) {
        // One row per line: broadcast x_r, then its two FMAs.
        let c0 = SIMD8<Float>(repeating: x0); r00 = fmadd(c0, b0, r00); r01 = fmadd(c0, b1, r01)
        let c1 = SIMD8<Float>(repeating: x1); r10 = fmadd(c1, b0, r10); r11 = fmadd(c1, b1, r11)
        let c2 = SIMD8<Float>(repeating: x2); r20 = fmadd(c2, b0, r20); r21 = fmadd(c2, b1, r21)
        let c3 = SIMD8<Float>(repeating: x3); r30 = fmadd(c3, b0, r30); r31 = fmadd(c3, b1, r31)
        let c4 = SIMD8<Float>(repeating: x4); r40 = fmadd(c4, b0, r40); r41 = fmadd(c4, b1, r41)
        let c5 = SIMD8<Float>(repeating: x5); r50 = fmadd(c5, b0, r50); r51 = fmadd(c5, b1, r51)
    }
}

/// One row × 64 columns as eight SIMD8 accumulators (enough independent chains to hide FMA
/// latency): the single-row counterpart of `Tile6x16`, for both products.
struct Row64 {
    var a0, a1, a2, a3, a4, a5, a6, a7: SIMD8<Float>

    @inline(__always)
    init(repeating v: SIMD8<Float>) { (a0, a1, a2, a3, a4, a5, a6, a7) = (v, v, v, v, v, v, v, v) }

    /// a_i = s ⊙ row[8i ..< 8i + 8].
    @inline(__always)
    init(loading row: UnsafePointer<Float>, scaledBy s: SIMD8<Float>) {
        (a0, a1, a2, a3) = (load8(row) * s, load8(row + 8) * s, load8(row + 16) * s, load8(row + 24) * s)
        (a4, a5, a6, a7) = (load8(row + 32) * s, load8(row + 40) * s, load8(row + 48) * s, load8(row + 56) * s)
    }

    /// a_i += x · b[8i ..< 8i + 8].
    @inline(__always)
    mutating func accumulate(_ x: Float, times b: UnsafePointer<Float>) {
        let c = SIMD8<Float>(repeating: x)
        a0 = fmadd(c, load8(b), a0); a1 = fmadd(c, load8(b + 8), a1)
        a2 = fmadd(c, load8(b + 16), a2); a3 = fmadd(c, load8(b + 24), a3)
        a4 = fmadd(c, load8(b + 32), a4); a5 = fmadd(c, load8(b + 40), a5)
        a6 = fmadd(c, load8(b + 48), a6); a7 = fmadd(c, load8(b + 56), a7)
    }

    @inline(__always)
    func store(to out: UnsafeMutablePointer<Float>) {
        store8(a0, out); store8(a1, out + 8); store8(a2, out + 16); store8(a3, out + 24)
        store8(a4, out + 32); store8(a5, out + 40); store8(a6, out + 48); store8(a7, out + 56)
    }

    @inline(__always)
    func store(to out: UnsafeMutablePointer<Float>, scaledBy s: SIMD8<Float>) {
        store8(a0 * s, out); store8(a1 * s, out + 8); store8(a2 * s, out + 16); store8(a3 * s, out + 24)
        store8(a4 * s, out + 32); store8(a5 * s, out + 40); store8(a6 * s, out + 48); store8(a7 * s, out + 56)
    }
}
