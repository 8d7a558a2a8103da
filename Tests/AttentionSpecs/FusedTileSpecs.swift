import DecoderSpec
import GSLOracle
import SpecSupport
import Testing

/// The fused kernel on a given register tile, as an `AttentionFunction` (the mask mapped to loop
/// bounds exactly as the public API maps it). Both tiles are compiled into every build, so these
/// specs check the 512-bit one on any machine, whatever tile the build selected.
func fusedKernel(_ tile: FusedAttentionTile) -> AttentionFunction {
    { q, k, v, mask in
        var out = Matrix(rows: q.rows, cols: v.cols)
        let (tq, tk, dk, dv) = (q.rows, k.rows, q.cols, v.cols)
        func body(_ additive: UnsafePointer<Float>?) {
            q.storage.withUnsafeBufferPointer { pq in k.storage.withUnsafeBufferPointer { pk in v.storage.withUnsafeBufferPointer { pv in
                out.storage.withUnsafeMutableBufferPointer { po in
                    FusedAttention.forward(tile: tile, q: pq.baseAddress!, ldq: dk, k: pk.baseAddress!, ldk: dk,
                                           v: pv.baseAddress!, ldv: dv, out: po.baseAddress!, ldo: dv,
                                           queries: tq, keys: tk, dk: dk, dv: dv, scale: 1 / Float(dk).squareRoot(),
                                           causalOffset: mask.isCausal ? min(mask.queryOffset, tk) : nil,
                                           keyValidLength: mask.keyValidLength ?? tk, additive: additive, ldm: tk)
                }
            } } }
        }
        if let a = mask.additive { a.storage.withUnsafeBufferPointer { body($0.baseAddress!) } } else { body(nil) }
        return out
    }
}

@Suite("Fused attention: both register tiles (6 × 16 on 256 bits, 14 × 32 on 512 bits) around their edges")
struct FusedTileSpecs {
    /// (Tq, Tk, d_k, d_v) around the tiles' edges: query counts at and beside 6, 14, 28 (a full tile,
    /// one row more, one less); key counts at and beside 16, 32 and the key blocks 256 and 512; d_k and d_v
    /// beside the vector widths 8 / 16, the panel widths 16 / 32, the row chunks 64 / 128, and
    /// not multiples of anything.
    static let shapes: [(Int, Int, Int, Int)] = [
        (1, 1, 1, 1), (5, 15, 7, 9), (6, 16, 8, 8), (7, 17, 16, 16), (13, 31, 15, 17), (14, 32, 16, 32),
        (15, 33, 17, 31), (27, 64, 32, 33), (28, 255, 31, 64), (29, 256, 33, 65), (14, 257, 64, 64),
        (43, 300, 64, 80), (1, 513, 64, 64), (3, 129, 20, 129), (30, 47, 64, 48), (15, 512, 64, 64), (30, 513, 17, 33),
    ]

    @Test("Each tile matches the GSL reference (attentionBound) with no mask, causal, causal with offset, key padding and an additive bias",
          arguments: FusedAttentionTile.allCases)
    func matchesReference(_ tile: FusedAttentionTile) throws {
        for (tq, tk, dk, dv) in Self.shapes {
            let seed = UInt(tq * 1_000_003 + tk * 1009 + dk * 31 + dv)
            let q = Inputs.matrix(rows: tq, cols: dk, seed: seed)
            let k = Inputs.matrix(rows: tk, cols: dk, seed: seed + 1)
            let v = Inputs.matrix(rows: tk, cols: dv, seed: seed + 2)
            var bias = Inputs.matrix(rows: tq, cols: tk, seed: seed + 3, range: -2...2)
            for i in 0..<tq where i % 3 == 1 { bias[i, (i * 7) % tk] = -.infinity }
            let masks: [AttentionMask] = [.none, .causal(), .causal(queryOffset: max(0, tk - tq)),
                                          .keyPadding(validLength: (tk + 1) / 2), .additive(bias)]
            for mask in masks {
                let verdict = AttentionOracleChecks.matchesGSLReference(
                    fusedKernel(tile), q: q, k: k, v: v, mask: mask,
                    context: "\(tile) tile Tq=\(tq) Tk=\(tk) d_k=\(dk) d_v=\(dv) seed=\(seed)")
                #expect(verdict.passed, "\(verdict)")
            }
        }
    }

    @Test("Each tile: a KV-cache step (queries past the tile, or one query) equals those rows of full causal attention, bitwise",
          arguments: FusedAttentionTile.allCases)
    func cacheStepBitwise(_ tile: FusedAttentionTile) {
        // T = 301 (key blocks 256 + 45 on the 256-bit tile) and 530 (512 + 18 on the 512-bit one); d = 64 and 33 (a scalar tail on both widths); 1, 13, 14, 15
        // and 29 new queries straddle the short-tile (row by row) and full-tile paths.
        for (t, d) in [(301, 64), (301, 33), (530, 64)] {
            let q = Inputs.matrix(rows: t, cols: d, seed: UInt(61 + d)), k = Inputs.matrix(rows: t, cols: d, seed: UInt(62 + d))
            let v = Inputs.matrix(rows: t, cols: d, seed: UInt(63 + d))
            for newQueries in [1, 5, 13, 14, 15, 29] {
                let verdict = AttentionChecks.offsetMatchesFullCausal(fusedKernel(tile), q: q, k: k, v: v, newQueries: newQueries,
                                                                      context: "\(tile) tile T=\(t) d=\(d)")
                #expect(verdict.passed, "\(verdict)")
            }
        }
    }

    @Test("The two tiles agree within twice the attention bound, and the selected one is what the public API runs, bitwise")
    func tilesAgree() throws {
        for (tq, tk, dk, dv) in [(29, 256, 33, 65), (43, 300, 64, 80), (14, 32, 16, 32)] {
            let q = Inputs.matrix(rows: tq, cols: dk, seed: 501), k = Inputs.matrix(rows: tk, cols: dk, seed: 502)
            let v = Inputs.matrix(rows: tk, cols: dv, seed: 503)
            for mask in [AttentionMask.none, .causal(queryOffset: tk - tq)] {
                let a = try fusedKernel(.avx2)(q, k, v, mask), b = try fusedKernel(.avx512)(q, k, v, mask)
                let tol = 2 * AttentionOracleChecks.bound(q: q, k: k, v: v)
                let verdict = compare(a.storage, b.storage.map(Double.init), .absolute(tol), "avx2 vs avx512 tile Tq=\(tq) Tk=\(tk) mask=\(mask)")
                #expect(verdict.passed, "\(verdict)")
                let api = try scaledDotProductAttention(q: q, k: k, v: v, mask: mask, path: .optimized)
                let selected = try fusedKernel(.selected)(q, k, v, mask)
                #expect(api.storage == selected.storage, "public API vs the selected (\(FusedAttentionTile.selected)) tile, Tq=\(tq) Tk=\(tk) mask=\(mask)")
            }
        }
        #expect(FusedAttention.queryBlock == FusedAttentionTile.selected.queryBlock)
        for tile in FusedAttentionTile.allCases { #expect(tile.keyBlock % tile.columns == 0, "\(tile)") }
        #expect(FusedAttention.keyBlock == FusedAttentionTile.selected.keyBlock)
    }
}
