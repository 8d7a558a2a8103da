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
    /// Query rows per register tile of the build's tile (`FusedAttentionTile.selected`): 6 on the
    /// 256-bit tile, 14 on the 512-bit one.
    public static var queryBlock: Int { FusedAttentionTile.selected.queryBlock }
    /// Keys per block of the build's tile: 256 on the 256-bit tile, 512 on the 512-bit one (a
    /// multiple of the tile's column width; docs/attention.md has the measurements).
    public static var keyBlock: Int { FusedAttentionTile.selected.keyBlock }

    /// Bytes of scratch memory `forward` allocates for these sizes (the build's tile).
    public static func workspaceBytes(queries: Int, dk: Int) -> Int {
        workspaceBytes(tile: .selected, queries: queries, dk: dk)
    }

    /// Bytes of scratch memory `forward(tile:…)` allocates for these sizes.
    package static func workspaceBytes(tile: FusedAttentionTile, queries: Int, dk: Int) -> Int {
        let qb = tile.queryBlock, kb = tile.keyBlock
        return (dk * kb + qb * kb + 2 * queries + qb) * MemoryLayout<Float>.stride
    }

    /// Computes O (rows `out + i·ldo`) from Q, K, V given by row pointers and row strides, on the
    /// build's register tile (`FusedAttentionTile.selected`).
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
        forward(tile: .selected, q: q, ldq: ldq, k: k, ldk: ldk, v: v, ldv: ldv, out: out, ldo: ldo,
                queries: tq, keys: tk, dk: dk, dv: dv, scale: scale, causalOffset: causalOffset,
                keyValidLength: keyValidLength, additive: additive, ldm: ldm, alibi: alibi)
    }

    /// `forward` on a given register tile: both tiles are compiled into every build, so the specs
    /// check both and the benchmark times the other one beside the selected one.
    package static func forward(
        tile: FusedAttentionTile,
        q: UnsafePointer<Float>, ldq: Int, k: UnsafePointer<Float>, ldk: Int,
        v: UnsafePointer<Float>, ldv: Int, out: UnsafeMutablePointer<Float>, ldo: Int,
        queries tq: Int, keys tk: Int, dk: Int, dv: Int, scale: Float,
        causalOffset: Int?, keyValidLength: Int,
        additive: UnsafePointer<Float>? = nil, ldm: Int = 0,
        alibi: (slope: Float, queryOffset: Int)? = nil
    ) {
        switch tile {
        case .avx2:
            forward(AttentionTile256.self, q: q, ldq: ldq, k: k, ldk: ldk, v: v, ldv: ldv, out: out, ldo: ldo,
                    queries: tq, keys: tk, dk: dk, dv: dv, scale: scale, causalOffset: causalOffset,
                    keyValidLength: keyValidLength, additive: additive, ldm: ldm, alibi: alibi)
        case .avx512:
            forward(AttentionTile512.self, q: q, ldq: ldq, k: k, ldk: ldk, v: v, ldv: ldv, out: out, ldo: ldo,
                    queries: tq, keys: tk, dk: dk, dv: dv, scale: scale, causalOffset: causalOffset,
                    keyValidLength: keyValidLength, additive: additive, ldm: ldm, alibi: alibi)
        }
    }

    /// The kernel, generic over the register tile (one implementation for both widths; the
    /// specialization for each tile is compiled into every build).
    @_specialize(where S == AttentionTile256)
    @_specialize(where S == AttentionTile512)
    static func forward<S: AttentionTileShape>(
        _: S.Type,
        q: UnsafePointer<Float>, ldq: Int, k: UnsafePointer<Float>, ldk: Int,
        v: UnsafePointer<Float>, ldv: Int, out: UnsafeMutablePointer<Float>, ldo: Int,
        queries tq: Int, keys tk: Int, dk: Int, dv: Int, scale: Float,
        causalOffset: Int?, keyValidLength: Int,
        additive: UnsafePointer<Float>?, ldm: Int,
        alibi: (slope: Float, queryOffset: Int)?
    ) {
        typealias V = S.V
        precondition(tq >= 0 && tk >= 0 && dk >= 0 && dv >= 0, "FusedAttention sizes must be non-negative")
        precondition(ldq >= dk && ldk >= dk && ldv >= dv && ldo >= dv, "FusedAttention strides must cover the rows")
        if tq == 0 || dv == 0 { return }
        let qb = S.rows, kb = S.keyBlock
        let w = V.scalarCount, cw = 2 * w  // a tile is qb rows × cw columns (two vectors per row)
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
            let bkPadded = (bk + cw - 1) / cw * cw
            // Pack Kᵀ for this block in panels of cw keys (as the GEMM packs B): key c of the block,
            // component p at kt[(c / cw)·dk·cw + p·cw + c % cw]; each panel is contiguous, so the
            // score tile reads dk·cw consecutive floats. Zero past bk.
            // Eight keys at a time: one SIMD8 store per p instead of eight strided scalar stores.
            var c = 0
            while c + 8 <= bk {
                let r0 = k + (j0 + c) * ldk
                let r1 = r0 + ldk, r2 = r1 + ldk, r3 = r2 + ldk, r4 = r3 + ldk, r5 = r4 + ldk, r6 = r5 + ldk, r7 = r6 + ldk
                var dst = kt + (c / cw) * dk * cw + c % cw
                for p in 0..<dk {
                    store8(SIMD8<Float>(r0[p], r1[p], r2[p], r3[p], r4[p], r5[p], r6[p], r7[p]), dst)
                    dst += cw
                }
                c += 8
            }
            while c < bkPadded {
                let dst = kt + (c / cw) * dk * cw + c % cw
                if c < bk {
                    let kr = k + (j0 + c) * ldk
                    for p in 0..<dk { dst[p &* cw] = kr[p] }
                } else {
                    for p in 0..<dk { dst[p &* cw] = 0 }
                }
                c += 1
            }

            // The first query that can see key j0 (causal: i + off ≥ j0); earlier blocks are skipped.
            var i0 = 0
            if let off = causalOffset { i0 = max(0, j0 - off) }
            while i0 < tq {
                let bq = min(qb, tq - i0)
                // Columns any row of this tile can see (the last row sees the most): on the
                // diagonal, fewer than the block's width.
                let tileColumns = min(bkPadded, (max(0, min(bk, visible(i0 + bq - 1) - j0)) + cw - 1) / cw * cw)
                if bq == qb {
                    scoreTile(S.self, q: q + i0 * ldq, ldq: ldq, rows: bq, kt: kt, kb: kb, columns: tileColumns, dk: dk,
                              scale: scale2, tile: tile)
                } else {  // a short tile (e.g. the single query of a KV-cache step): one row at a time
                    for r in 0..<bq {
                        scoreRow(S.self, q: q + (i0 + r) * ldq, kt: kt, columns: tileColumns, dk: dk, scale: scale2,
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
                    var mv = S.splat(-.infinity)
                    var c = 0
                    while c < tileColumns {
                        mv = S.maximum(mv, S.load(srow + c))
                        c += w
                    }
                    let mOld = rowMax[i]
                    let mNew = max(mOld, S.horizontalMax(mv))
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
                    let mSplat = S.splat(mNew)
                    var sum = V()
                    c = 0
                    while c < tileColumns {
                        let p = S.exp2NonPositive(S.sub(S.load(srow + c), mSplat))
                        S.store(p, srow + c)
                        sum = S.add(sum, p)
                        c += w
                    }
                    rowSum[i] = rowSum[i] * a + S.horizontalSum(sum)
                    rowMax[i] = mNew
                    alpha[r] = a
                    columnsUsed = max(columnsUsed, seen)
                }
                valueTile(S.self, tile: tile, kb: kb, rows: bq, columns: columnsUsed, alpha: alpha,
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

    /// tile[r·kb + c] = scale · Σ_p Q[r, p] · Kᵀ[p, c] for r < rows, c < columns (a multiple of the
    /// tile width cw = 2·V.scalarCount), Kᵀ packed in panels of cw keys (see `forward`).
    /// Micro-kernel: S.rows query rows × cw keys in 2·S.rows vector accumulators (6 × 16 in twelve
    /// ymm, or 14 × 32 in twenty-eight zmm), one rank-1 update per p; rows ≥ `rows` alias the last
    /// real row and their results are not stored.
    @inline(__always)
    static func scoreTile<S: AttentionTileShape>(_: S.Type, q: UnsafePointer<Float>, ldq: Int, rows: Int,
                                                 kt: UnsafePointer<Float>, kb: Int, columns: Int, dk: Int, scale: Float,
                                                 tile: UnsafeMutablePointer<Float>) {
        typealias V = S.V
        let mr = S.rows, w = V.scalarCount, cw = 2 * w
        let offsets = RowOffsets(rows: rows, stride: ldq)
        let s = S.splat(scale)
        var c0 = 0
        while c0 < columns {
            var a = TileAccumulators<S>()
            var kp = kt + c0 * dk  // panel c0 / cw starts at (c0 / cw)·dk·cw = c0·dk
            for p in 0..<dk {
                a.accumulate(mr, q + p, offsets, S.load(kp), S.load(kp + w))
                kp += cw
            }
            a.store(mr, rows: rows, to: tile + c0, kb, scaledBy: s)
            c0 += cw
        }
    }

    /// One row of scores: out[c] = scale · Σ_p q[p] · Kᵀ[p, c] for c < columns (a multiple of cw),
    /// four panels (8 vectors) at a time in eight independent accumulators (enough to hide FMA
    /// latency), then one panel at a time. Per element the same operations in the same order as
    /// `scoreTile`, so results are bitwise equal.
    @inline(__always)
    static func scoreRow<S: AttentionTileShape>(_: S.Type, q: UnsafePointer<Float>, kt: UnsafePointer<Float>,
                                                columns: Int, dk: Int, scale: Float, out: UnsafeMutablePointer<Float>) {
        typealias V = S.V
        let w = V.scalarCount, cw = 2 * w, panel = dk * cw
        let s = S.splat(scale)
        var c0 = 0
        while c0 + 4 * cw <= columns {
            var a = Row8<S>()
            var kp = kt + c0 * dk
            for p in 0..<dk {
                let x = S.splat(q[p])
                a.a0 = S.fmadd(x, S.load(kp), a.a0); a.a1 = S.fmadd(x, S.load(kp + w), a.a1)
                a.a2 = S.fmadd(x, S.load(kp + panel), a.a2); a.a3 = S.fmadd(x, S.load(kp + panel + w), a.a3)
                a.a4 = S.fmadd(x, S.load(kp + 2 * panel), a.a4); a.a5 = S.fmadd(x, S.load(kp + 2 * panel + w), a.a5)
                a.a6 = S.fmadd(x, S.load(kp + 3 * panel), a.a6); a.a7 = S.fmadd(x, S.load(kp + 3 * panel + w), a.a7)
                kp += cw
            }
            a.store(to: out + c0, scaledBy: s)
            c0 += 4 * cw
        }
        while c0 < columns {
            var a0 = V(), a1 = V()
            var kp = kt + c0 * dk
            for p in 0..<dk {
                let x = S.splat(q[p])
                a0 = S.fmadd(x, S.load(kp), a0); a1 = S.fmadd(x, S.load(kp + w), a1)
                kp += cw
            }
            S.store(S.mul(a0, s), out + c0); S.store(S.mul(a1, s), out + c0 + w)
            c0 += cw
        }
    }

    /// O[r, :] = α_r · O[r, :] + Σ_{c < columns} P[r, c] · V[c, :] for r < rows.
    /// Full tiles (rows = S.rows): S.rows × cw columns of O at a time in 2·S.rows accumulators,
    /// then the columns past the last multiple of cw row by row.
    @inline(__always)
    static func valueTile<S: AttentionTileShape>(_: S.Type, tile: UnsafePointer<Float>, kb: Int, rows: Int, columns: Int,
                                                 alpha: UnsafePointer<Float>, v: UnsafePointer<Float>, ldv: Int, dv: Int,
                                                 out: UnsafeMutablePointer<Float>, ldo: Int) {
        typealias V = S.V
        let mr = S.rows, w = V.scalarCount, cw = 2 * w
        if rows == mr {
            let offsets = RowOffsets(rows: mr, stride: kb)
            var d0 = 0
            while d0 + cw <= dv {
                var a = TileAccumulators<S>(mr, loading: out + d0, ldo, scaledBy: alpha)
                var vr = v + d0
                for c in 0..<columns {
                    a.accumulate(mr, tile + c, offsets, S.load(vr), S.load(vr + w))
                    vr += ldv
                }
                a.store(mr, to: out + d0, ldo)
                d0 += cw
            }
            if d0 < dv {
                for r in 0..<mr {
                    valueRowTail(S.self, p: tile + r * kb, columns: columns, alpha: alpha[r], v: v, ldv: ldv,
                                 from: d0, dv: dv, o: out + r * ldo)
                }
            }
        } else {
            for r in 0..<rows {
                valueRowTail(S.self, p: tile + r * kb, columns: columns, alpha: alpha[r], v: v, ldv: ldv,
                             from: 0, dv: dv, o: out + r * ldo)
            }
        }
    }

    /// One row, columns d0..<dv of O: chunks of 8 vectors (eight accumulators), then of 4, then
    /// single vectors, then scalars. Per element the same operations in the same order as the tile.
    @inline(__always)
    static func valueRowTail<S: AttentionTileShape>(_: S.Type, p: UnsafePointer<Float>, columns: Int, alpha: Float,
                                                    v: UnsafePointer<Float>, ldv: Int, from d0: Int, dv: Int,
                                                    o: UnsafeMutablePointer<Float>) {
        typealias V = S.V
        let w = V.scalarCount
        var d = d0
        let s = S.splat(alpha)
        while d + 8 * w <= dv {  // eight independent accumulators: FMA latency hidden
            var a = Row8<S>(loading: o + d, scaledBy: s)
            var vr = v + d
            for c in 0..<columns {
                a.accumulate(p[c], times: vr)
                vr += ldv
            }
            a.store(to: o + d)
            d += 8 * w
        }
        if d + 4 * w <= dv {  // four (d_v = 64 on the 512-bit tile)
            var a0 = S.mul(S.load(o + d), s), a1 = S.mul(S.load(o + d + w), s)
            var a2 = S.mul(S.load(o + d + 2 * w), s), a3 = S.mul(S.load(o + d + 3 * w), s)
            var vr = v + d
            for c in 0..<columns {
                let x = S.splat(p[c])
                a0 = S.fmadd(x, S.load(vr), a0); a1 = S.fmadd(x, S.load(vr + w), a1)
                a2 = S.fmadd(x, S.load(vr + 2 * w), a2); a3 = S.fmadd(x, S.load(vr + 3 * w), a3)
                vr += ldv
            }
            S.store(a0, o + d); S.store(a1, o + d + w); S.store(a2, o + d + 2 * w); S.store(a3, o + d + 3 * w)
            d += 4 * w
        }
        while d + w <= dv {
            var acc = S.mul(S.load(o + d), s)
            var vr = v + d
            for c in 0..<columns {
                acc = S.fmadd(S.splat(p[c]), S.load(vr), acc)
                vr += ldv
            }
            S.store(acc, o + d)
            d += w
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
        poly = fmadd8(poly, f, SIMD8(repeating: 1.540_353_0e-4))
        poly = fmadd8(poly, f, SIMD8(repeating: 1.333_355_8e-3))
        poly = fmadd8(poly, f, SIMD8(repeating: 9.618_129_1e-3))
        poly = fmadd8(poly, f, SIMD8(repeating: 5.550_410_9e-2))
        poly = fmadd8(poly, f, SIMD8(repeating: 0.240_226_51))
        poly = fmadd8(poly, f, SIMD8(repeating: 0.693_147_18))
        poly = fmadd8(poly, f, SIMD8(repeating: 1))
        let bits = unsafeBitCast(t, to: SIMD8<UInt32>.self)
        let exponent = (bits &- 0x4B40_0000 &+ 127) &<< 23
        var result = poly * unsafeBitCast(exponent, to: SIMD8<Float>.self)
        result.replace(with: SIMD8<Float>(), where: x .< floor)
        return result
    }

    /// The same 2^x on sixteen lanes (one zmm in an AVX-512 build), lane for lane the same
    /// operations as the SIMD8 version, so both tiles give bitwise-equal weights. Written twice on
    /// purpose: one version generic over `SIMD` (Scalar == Float) resolves `.<`, `replacing` and the
    /// bit casts to the protocol's per-lane code, and the causal attention measured 62–71 GFLOP/s with
    /// it against 105–124 with these two (`make bench SUITES=attention`, the same day).
    @inline(__always)
    public static func exp2NonPositive(_ x: SIMD16<Float>) -> SIMD16<Float> {
        let floor = SIMD16<Float>(repeating: -126)
        let xc = x.replacing(with: floor, where: x .< floor)
        let magic = SIMD16<Float>(repeating: 12_582_912)
        let t = xc + magic
        let n = t - magic
        let f = xc - n
        var poly = SIMD16<Float>(repeating: 1.525_273_4e-5)
        poly = fmadd16(poly, f, SIMD16(repeating: 1.540_353_0e-4))
        poly = fmadd16(poly, f, SIMD16(repeating: 1.333_355_8e-3))
        poly = fmadd16(poly, f, SIMD16(repeating: 9.618_129_1e-3))
        poly = fmadd16(poly, f, SIMD16(repeating: 5.550_410_9e-2))
        poly = fmadd16(poly, f, SIMD16(repeating: 0.240_226_51))
        poly = fmadd16(poly, f, SIMD16(repeating: 0.693_147_18))
        poly = fmadd16(poly, f, SIMD16(repeating: 1))
        let bits = unsafeBitCast(t, to: SIMD16<UInt32>.self)
        let exponent = (bits &- 0x4B40_0000 &+ 127) &<< 23
        var result = poly * unsafeBitCast(exponent, to: SIMD16<Float>.self)
        result.replace(with: SIMD16<Float>(), where: x .< floor)
        return result
    }
}

/// Which register tile the fused attention uses: chosen when the library is built, by the same
/// flag as the GEMM's (`GEMMTile`): `-DDECODERSPEC_AVX512`, which the Makefile passes beside
/// `-target-cpu native` on a CPU with AVX-512. Both are compiled into every build.
package enum FusedAttentionTile: String, CaseIterable, Sendable {
    /// 6 query rows × 16 keys: twelve SIMD8<Float> accumulators (ymm), 15 of 16 AVX2 registers.
    case avx2
    /// 14 query rows × 32 keys: twenty-eight SIMD16<Float> accumulators (zmm), 31 of 32 registers.
    case avx512

    /// The build's choice.
    package static var selected: FusedAttentionTile {
        #if DECODERSPEC_AVX512
        return .avx512
        #else
        return .avx2
        #endif
    }

    /// Query rows per tile.
    package var queryBlock: Int {
        switch self {
        case .avx2: AttentionTile256.rows
        case .avx512: AttentionTile512.rows
        }
    }

    /// Keys per block (the packed Kᵀ block and the score tile's width).
    package var keyBlock: Int {
        switch self {
        case .avx2: AttentionTile256.keyBlock
        case .avx512: AttentionTile512.keyBlock
        }
    }

    /// Keys per tile (two vectors).
    package var columns: Int {
        switch self {
        case .avx2: 2 * AttentionTile256.V.scalarCount
        case .avx512: 2 * AttentionTile512.V.scalarCount
        }
    }
}

/// A register tile of the fused attention: `rows` query rows of two `V` vectors each, and the
/// vector operations the kernel needs, written on the concrete vector type (where the compiler
/// emits one instruction per register; written generically over `SIMD`, some would be loops over
/// lanes — see `PackedRow` in GEMMBlocked.swift).
protocol AttentionTileShape {
    associatedtype V: SIMD where V.Scalar == Float
    /// Query rows (1…14).
    static var rows: Int { get }
    /// Keys per block (a multiple of 2·V.scalarCount).
    static var keyBlock: Int { get }
    static func load(_ p: UnsafePointer<Float>) -> V
    static func store(_ v: V, _ p: UnsafeMutablePointer<Float>)
    static func splat(_ x: Float) -> V
    /// a·b + c (fused in native builds, see `fmadd8`).
    static func fmadd(_ a: V, _ b: V, _ c: V) -> V
    static func mul(_ a: V, _ b: V) -> V
    static func add(_ a: V, _ b: V) -> V
    static func sub(_ a: V, _ b: V) -> V
    /// b where b > a, else a (a NaN in b is ignored).
    static func maximum(_ a: V, _ b: V) -> V
    static func horizontalMax(_ v: V) -> Float
    static func horizontalSum(_ v: V) -> Float
    static func exp2NonPositive(_ x: V) -> V
}

/// 6 × 16: twelve ymm accumulators + 2 key vectors + 1 broadcast = 15 of the 16 AVX2 registers.
enum AttentionTile256: AttentionTileShape {
    typealias V = SIMD8<Float>
    static var rows: Int { 6 }
    static var keyBlock: Int { 256 }  // 64 → 512 measured, 256 fastest (docs/attention.md)
    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }
    @inline(__always) static func store(_ v: V, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self) }
    @inline(__always) static func splat(_ x: Float) -> V { V(repeating: x) }
    @inline(__always) static func fmadd(_ a: V, _ b: V, _ c: V) -> V { fmadd8(a, b, c) }
    @inline(__always) static func mul(_ a: V, _ b: V) -> V { a * b }
    @inline(__always) static func add(_ a: V, _ b: V) -> V { a + b }
    @inline(__always) static func sub(_ a: V, _ b: V) -> V { a - b }
    @inline(__always) static func maximum(_ a: V, _ b: V) -> V { a.replacing(with: b, where: b .> a) }
    @inline(__always) static func horizontalMax(_ v: V) -> Float { v.max() }
    @inline(__always) static func horizontalSum(_ v: V) -> Float { v.sum() }
    @inline(__always) static func exp2NonPositive(_ x: V) -> V { FusedAttention.exp2NonPositive(x) }
}

/// 14 × 32: twenty-eight zmm accumulators + 2 key vectors + 1 broadcast = 31 of the 32 AVX-512
/// registers (the GEMM's 512-bit tile). The same operations, lane for lane, on SIMD16.
enum AttentionTile512: AttentionTileShape {
    typealias V = SIMD16<Float>
    static var rows: Int { 14 }
    static var keyBlock: Int { 512 }  // 5–8 % faster than 256 at T = 512…4096 (docs/attention.md)
    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }
    @inline(__always) static func store(_ v: V, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self) }
    @inline(__always) static func splat(_ x: Float) -> V { V(repeating: x) }
    @inline(__always) static func fmadd(_ a: V, _ b: V, _ c: V) -> V { fmadd16(a, b, c) }
    @inline(__always) static func mul(_ a: V, _ b: V) -> V { a * b }
    @inline(__always) static func add(_ a: V, _ b: V) -> V { a + b }
    @inline(__always) static func sub(_ a: V, _ b: V) -> V { a - b }
    @inline(__always) static func maximum(_ a: V, _ b: V) -> V { a.replacing(with: b, where: b .> a) }
    @inline(__always) static func horizontalMax(_ v: V) -> Float { v.max() }
    @inline(__always) static func horizontalSum(_ v: V) -> Float { v.sum() }
    @inline(__always) static func exp2NonPositive(_ x: V) -> V { FusedAttention.exp2NonPositive(x) }
}

/// The offsets of the tile's rows from row 0 (o_r, r = 1…13).
struct RowOffsets {
    var o1, o2, o3, o4, o5, o6, o7, o8, o9, o10, o11, o12, o13: Int
    /// o_r = min(r, rows − 1)·stride: rows past `rows` alias the last real row.
    @inline(__always)
    init(rows: Int, stride: Int) {
        o1 = min(1, rows - 1) * stride
        o2 = min(2, rows - 1) * stride
        o3 = min(3, rows - 1) * stride
        o4 = min(4, rows - 1) * stride
        o5 = min(5, rows - 1) * stride
        o6 = min(6, rows - 1) * stride
        o7 = min(7, rows - 1) * stride
        o8 = min(8, rows - 1) * stride
        o9 = min(9, rows - 1) * stride
        o10 = min(10, rows - 1) * stride
        o11 = min(11, rows - 1) * stride
        o12 = min(12, rows - 1) * stride
        o13 = min(13, rows - 1) * stride
    }
}

/// The 2·rows accumulators of a register tile (a_r, b_r: row r's two vectors); rows past the
/// tile's `mr` are dead code once the tile is known (specialization), as in the GEMM micro-kernel.
struct TileAccumulators<S: AttentionTileShape> {
    typealias V = S.V
    var a0, b0, a1, b1, a2, b2, a3, b3, a4, b4, a5, b5, a6, b6, a7, b7, a8, b8, a9, b9, a10, b10, a11, b11, a12, b12, a13, b13: V
    @inline(__always)
    init() {
        let z = V()
        (a0, b0) = (z, z)
        (a1, b1) = (z, z)
        (a2, b2) = (z, z)
        (a3, b3) = (z, z)
        (a4, b4) = (z, z)
        (a5, b5) = (z, z)
        (a6, b6) = (z, z)
        (a7, b7) = (z, z)
        (a8, b8) = (z, z)
        (a9, b9) = (z, z)
        (a10, b10) = (z, z)
        (a11, b11) = (z, z)
        (a12, b12) = (z, z)
        (a13, b13) = (z, z)
    }

    /// Row r += x[o_r] · (k0, k1) for r < mr: one broadcast and two FMAs per row.
    @inline(__always)
    mutating func accumulate(_ mr: Int, _ x: UnsafePointer<Float>, _ o: RowOffsets, _ k0: V, _ k1: V) {
        let x0 = S.splat(x[0]); a0 = S.fmadd(x0, k0, a0); b0 = S.fmadd(x0, k1, b0)
        if mr > 1 { let x1 = S.splat(x[o.o1]); a1 = S.fmadd(x1, k0, a1); b1 = S.fmadd(x1, k1, b1) }
        if mr > 2 { let x2 = S.splat(x[o.o2]); a2 = S.fmadd(x2, k0, a2); b2 = S.fmadd(x2, k1, b2) }
        if mr > 3 { let x3 = S.splat(x[o.o3]); a3 = S.fmadd(x3, k0, a3); b3 = S.fmadd(x3, k1, b3) }
        if mr > 4 { let x4 = S.splat(x[o.o4]); a4 = S.fmadd(x4, k0, a4); b4 = S.fmadd(x4, k1, b4) }
        if mr > 5 { let x5 = S.splat(x[o.o5]); a5 = S.fmadd(x5, k0, a5); b5 = S.fmadd(x5, k1, b5) }
        if mr > 6 { let x6 = S.splat(x[o.o6]); a6 = S.fmadd(x6, k0, a6); b6 = S.fmadd(x6, k1, b6) }
        if mr > 7 { let x7 = S.splat(x[o.o7]); a7 = S.fmadd(x7, k0, a7); b7 = S.fmadd(x7, k1, b7) }
        if mr > 8 { let x8 = S.splat(x[o.o8]); a8 = S.fmadd(x8, k0, a8); b8 = S.fmadd(x8, k1, b8) }
        if mr > 9 { let x9 = S.splat(x[o.o9]); a9 = S.fmadd(x9, k0, a9); b9 = S.fmadd(x9, k1, b9) }
        if mr > 10 { let x10 = S.splat(x[o.o10]); a10 = S.fmadd(x10, k0, a10); b10 = S.fmadd(x10, k1, b10) }
        if mr > 11 { let x11 = S.splat(x[o.o11]); a11 = S.fmadd(x11, k0, a11); b11 = S.fmadd(x11, k1, b11) }
        if mr > 12 { let x12 = S.splat(x[o.o12]); a12 = S.fmadd(x12, k0, a12); b12 = S.fmadd(x12, k1, b12) }
        if mr > 13 { let x13 = S.splat(x[o.o13]); a13 = S.fmadd(x13, k0, a13); b13 = S.fmadd(x13, k1, b13) }
    }

    /// Row r → out + r·ld (two vectors) scaled by s, for r < rows (≤ mr).
    @inline(__always)
    func store(_ mr: Int, rows: Int, to out: UnsafeMutablePointer<Float>, _ ld: Int, scaledBy s: V) {
        let w = V.scalarCount
        S.store(S.mul(a0, s), out + 0 * ld); S.store(S.mul(b0, s), out + 0 * ld + w)
        if mr > 1 && rows > 1 { S.store(S.mul(a1, s), out + 1 * ld); S.store(S.mul(b1, s), out + 1 * ld + w) }
        if mr > 2 && rows > 2 { S.store(S.mul(a2, s), out + 2 * ld); S.store(S.mul(b2, s), out + 2 * ld + w) }
        if mr > 3 && rows > 3 { S.store(S.mul(a3, s), out + 3 * ld); S.store(S.mul(b3, s), out + 3 * ld + w) }
        if mr > 4 && rows > 4 { S.store(S.mul(a4, s), out + 4 * ld); S.store(S.mul(b4, s), out + 4 * ld + w) }
        if mr > 5 && rows > 5 { S.store(S.mul(a5, s), out + 5 * ld); S.store(S.mul(b5, s), out + 5 * ld + w) }
        if mr > 6 && rows > 6 { S.store(S.mul(a6, s), out + 6 * ld); S.store(S.mul(b6, s), out + 6 * ld + w) }
        if mr > 7 && rows > 7 { S.store(S.mul(a7, s), out + 7 * ld); S.store(S.mul(b7, s), out + 7 * ld + w) }
        if mr > 8 && rows > 8 { S.store(S.mul(a8, s), out + 8 * ld); S.store(S.mul(b8, s), out + 8 * ld + w) }
        if mr > 9 && rows > 9 { S.store(S.mul(a9, s), out + 9 * ld); S.store(S.mul(b9, s), out + 9 * ld + w) }
        if mr > 10 && rows > 10 { S.store(S.mul(a10, s), out + 10 * ld); S.store(S.mul(b10, s), out + 10 * ld + w) }
        if mr > 11 && rows > 11 { S.store(S.mul(a11, s), out + 11 * ld); S.store(S.mul(b11, s), out + 11 * ld + w) }
        if mr > 12 && rows > 12 { S.store(S.mul(a12, s), out + 12 * ld); S.store(S.mul(b12, s), out + 12 * ld + w) }
        if mr > 13 && rows > 13 { S.store(S.mul(a13, s), out + 13 * ld); S.store(S.mul(b13, s), out + 13 * ld + w) }
    }

    /// Row r ← α_r · (out + r·ld)[0 ..< 2w], for r < mr.
    @inline(__always)
    init(_ mr: Int, loading o: UnsafePointer<Float>, _ ld: Int, scaledBy alpha: UnsafePointer<Float>) {
        self.init()
        let w = V.scalarCount
        let s0 = S.splat(alpha[0]); a0 = S.mul(S.load(o + 0 * ld), s0); b0 = S.mul(S.load(o + 0 * ld + w), s0)
        if mr > 1 { let s1 = S.splat(alpha[1]); a1 = S.mul(S.load(o + 1 * ld), s1); b1 = S.mul(S.load(o + 1 * ld + w), s1) }
        if mr > 2 { let s2 = S.splat(alpha[2]); a2 = S.mul(S.load(o + 2 * ld), s2); b2 = S.mul(S.load(o + 2 * ld + w), s2) }
        if mr > 3 { let s3 = S.splat(alpha[3]); a3 = S.mul(S.load(o + 3 * ld), s3); b3 = S.mul(S.load(o + 3 * ld + w), s3) }
        if mr > 4 { let s4 = S.splat(alpha[4]); a4 = S.mul(S.load(o + 4 * ld), s4); b4 = S.mul(S.load(o + 4 * ld + w), s4) }
        if mr > 5 { let s5 = S.splat(alpha[5]); a5 = S.mul(S.load(o + 5 * ld), s5); b5 = S.mul(S.load(o + 5 * ld + w), s5) }
        if mr > 6 { let s6 = S.splat(alpha[6]); a6 = S.mul(S.load(o + 6 * ld), s6); b6 = S.mul(S.load(o + 6 * ld + w), s6) }
        if mr > 7 { let s7 = S.splat(alpha[7]); a7 = S.mul(S.load(o + 7 * ld), s7); b7 = S.mul(S.load(o + 7 * ld + w), s7) }
        if mr > 8 { let s8 = S.splat(alpha[8]); a8 = S.mul(S.load(o + 8 * ld), s8); b8 = S.mul(S.load(o + 8 * ld + w), s8) }
        if mr > 9 { let s9 = S.splat(alpha[9]); a9 = S.mul(S.load(o + 9 * ld), s9); b9 = S.mul(S.load(o + 9 * ld + w), s9) }
        if mr > 10 { let s10 = S.splat(alpha[10]); a10 = S.mul(S.load(o + 10 * ld), s10); b10 = S.mul(S.load(o + 10 * ld + w), s10) }
        if mr > 11 { let s11 = S.splat(alpha[11]); a11 = S.mul(S.load(o + 11 * ld), s11); b11 = S.mul(S.load(o + 11 * ld + w), s11) }
        if mr > 12 { let s12 = S.splat(alpha[12]); a12 = S.mul(S.load(o + 12 * ld), s12); b12 = S.mul(S.load(o + 12 * ld + w), s12) }
        if mr > 13 { let s13 = S.splat(alpha[13]); a13 = S.mul(S.load(o + 13 * ld), s13); b13 = S.mul(S.load(o + 13 * ld + w), s13) }
    }

    /// Row r → out + r·ld (two vectors), for r < mr.
    @inline(__always)
    func store(_ mr: Int, to out: UnsafeMutablePointer<Float>, _ ld: Int) {
        let w = V.scalarCount
        S.store(a0, out + 0 * ld); S.store(b0, out + 0 * ld + w)
        if mr > 1 { S.store(a1, out + 1 * ld); S.store(b1, out + 1 * ld + w) }
        if mr > 2 { S.store(a2, out + 2 * ld); S.store(b2, out + 2 * ld + w) }
        if mr > 3 { S.store(a3, out + 3 * ld); S.store(b3, out + 3 * ld + w) }
        if mr > 4 { S.store(a4, out + 4 * ld); S.store(b4, out + 4 * ld + w) }
        if mr > 5 { S.store(a5, out + 5 * ld); S.store(b5, out + 5 * ld + w) }
        if mr > 6 { S.store(a6, out + 6 * ld); S.store(b6, out + 6 * ld + w) }
        if mr > 7 { S.store(a7, out + 7 * ld); S.store(b7, out + 7 * ld + w) }
        if mr > 8 { S.store(a8, out + 8 * ld); S.store(b8, out + 8 * ld + w) }
        if mr > 9 { S.store(a9, out + 9 * ld); S.store(b9, out + 9 * ld + w) }
        if mr > 10 { S.store(a10, out + 10 * ld); S.store(b10, out + 10 * ld + w) }
        if mr > 11 { S.store(a11, out + 11 * ld); S.store(b11, out + 11 * ld + w) }
        if mr > 12 { S.store(a12, out + 12 * ld); S.store(b12, out + 12 * ld + w) }
        if mr > 13 { S.store(a13, out + 13 * ld); S.store(b13, out + 13 * ld + w) }
    }
}

/// One row × 8 vectors as eight accumulators (enough independent chains to hide FMA latency):
/// the single-row counterpart of the tile, for both products.
struct Row8<S: AttentionTileShape> {
    typealias V = S.V
    var a0, a1, a2, a3, a4, a5, a6, a7: V

    @inline(__always)
    init() { let z = V(); (a0, a1, a2, a3, a4, a5, a6, a7) = (z, z, z, z, z, z, z, z) }

    /// a_i = s ⊙ row[w·i ..< w·(i + 1)].
    @inline(__always)
    init(loading row: UnsafePointer<Float>, scaledBy s: V) {
        let w = V.scalarCount
        (a0, a1, a2, a3) = (S.mul(S.load(row), s), S.mul(S.load(row + w), s), S.mul(S.load(row + 2 * w), s), S.mul(S.load(row + 3 * w), s))
        (a4, a5, a6, a7) = (S.mul(S.load(row + 4 * w), s), S.mul(S.load(row + 5 * w), s), S.mul(S.load(row + 6 * w), s), S.mul(S.load(row + 7 * w), s))
    }

    /// a_i += x · b[w·i ..< w·(i + 1)].
    @inline(__always)
    mutating func accumulate(_ x: Float, times b: UnsafePointer<Float>) {
        let w = V.scalarCount, c = S.splat(x)
        a0 = S.fmadd(c, S.load(b), a0); a1 = S.fmadd(c, S.load(b + w), a1)
        a2 = S.fmadd(c, S.load(b + 2 * w), a2); a3 = S.fmadd(c, S.load(b + 3 * w), a3)
        a4 = S.fmadd(c, S.load(b + 4 * w), a4); a5 = S.fmadd(c, S.load(b + 5 * w), a5)
        a6 = S.fmadd(c, S.load(b + 6 * w), a6); a7 = S.fmadd(c, S.load(b + 7 * w), a7)
    }

    @inline(__always)
    func store(to out: UnsafeMutablePointer<Float>) {
        let w = V.scalarCount
        S.store(a0, out); S.store(a1, out + w); S.store(a2, out + 2 * w); S.store(a3, out + 3 * w)
        S.store(a4, out + 4 * w); S.store(a5, out + 5 * w); S.store(a6, out + 6 * w); S.store(a7, out + 7 * w)
    }

    /// Stores s ⊙ a_i to out[w·i ..< w·(i + 1)].
    @inline(__always)
    func store(to out: UnsafeMutablePointer<Float>, scaledBy s: V) {
        let w = V.scalarCount
        S.store(S.mul(a0, s), out); S.store(S.mul(a1, s), out + w); S.store(S.mul(a2, s), out + 2 * w); S.store(S.mul(a3, s), out + 3 * w)
        S.store(S.mul(a4, s), out + 4 * w); S.store(S.mul(a5, s), out + 5 * w); S.store(S.mul(a6, s), out + 6 * w); S.store(S.mul(a7, s), out + 7 * w)
    }
}

@inline(__always)
private func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}

/// a·b + c. With `-target-cpu native` (DECODERSPEC_NATIVE) a fused multiply-add; without it,
/// separate multiply and add (a flag-free build would otherwise call `fmaf` per lane).
@inline(__always)
func fmadd8(_ a: SIMD8<Float>, _ b: SIMD8<Float>, _ c: SIMD8<Float>) -> SIMD8<Float> {
    #if DECODERSPEC_NATIVE
    return c.addingProduct(a, b)
    #else
    return a * b + c
    #endif
}

/// `fmadd8` on sixteen lanes.
@inline(__always)
func fmadd16(_ a: SIMD16<Float>, _ b: SIMD16<Float>, _ c: SIMD16<Float>) -> SIMD16<Float> {
    #if DECODERSPEC_NATIVE
    return c.addingProduct(a, b)
    #else
    return a * b + c
    #endif
}
