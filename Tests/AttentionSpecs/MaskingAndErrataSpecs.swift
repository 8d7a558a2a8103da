import DecoderSpec
import GSLOracle
import SpecSupport
import Testing

@Suite("Masking: causal, key padding, their combination, materialized and as loop bounds")
struct MaskingSpecs {
    @Test("materialize gives 0 exactly where the written-out rule allows and −∞ elsewhere",
          arguments: [(1, 1), (4, 4), (3, 7), (7, 3), (5, 9)])
    func materializeMatchesRule(_ shape: (Int, Int)) throws {
        let (tq, tk) = shape
        let masks: [AttentionMask] = [
            .none, .causal(), .causal(queryOffset: 2), .keyPadding(validLength: tk / 2),
            try AttentionMask.causal(queryOffset: 1).combined(with: .keyPadding(validLength: tk - 1)),
        ]
        for mask in masks {
            let m = try mask.materialize(queries: tq, keys: tk)
            #expect(m.shape == Shape(tq, tk))
            for i in 0..<tq {
                for j in 0..<tk {
                    let expected: Float = AttentionOracleChecks.visible(mask, i, j) ? 0 : -.infinity
                    #expect(m[i, j] == expected, "mask \(mask) at (\(i), \(j)) of [\(tq), \(tk)]")
                    // The loop bound agrees with the matrix.
                    #expect((j < mask.visibleKeyCount(query: i, keys: tk)) == (expected == 0))
                }
            }
        }
    }

    @Test("The causal mask of [4, 4] is lower-triangular (including the diagonal)")
    func causalPicture() throws {
        #expect(try AttentionMask.causal().picture(queries: 4, keys: 4) == "■···\n■■··\n■■■·\n■■■■")
        // KV cache: 2 new queries at positions 3, 4 over 5 keys.
        #expect(try AttentionMask.causal(queryOffset: 3).picture(queries: 2, keys: 5) == "■■■■·\n■■■■■")
    }

    @Test("Combination: a key is visible only when both masks allow it; valid lengths take the minimum; offsets must agree")
    func combination() throws {
        let a = try AttentionMask.keyPadding(validLength: 5).combined(with: .keyPadding(validLength: 3))
        #expect(a.keyValidLength == 3)
        let b = try AttentionMask.causal().combined(with: .keyPadding(validLength: 2))
        let m = try b.materialize(queries: 4, keys: 4)
        for i in 0..<4 { for j in 0..<4 { #expect((m[i, j] == 0) == (j <= i && j < 2)) } }
        #expect(throws: DecoderSpecError.self) { try AttentionMask.causal(queryOffset: 1).combined(with: .causal(queryOffset: 2)) }
        // Additive biases add.
        let x = Inputs.matrix(rows: 2, cols: 3, seed: 5), y = Inputs.matrix(rows: 2, cols: 3, seed: 6)
        let c = try AttentionMask.additive(x).combined(with: .additive(y))
        #expect(c.additive!.storage == zip(x.storage, y.storage).map { $0 + $1 })
    }

    @Test("A causal offset beyond the keys hides nothing (and Int.max does not overflow)", arguments: KernelPath.allCases)
    func hugeOffset(_ variant: KernelPath) throws {
        let q = Inputs.matrix(rows: 3, cols: 8, seed: 11), k = Inputs.matrix(rows: 5, cols: 8, seed: 12)
        let v = Inputs.matrix(rows: 5, cols: 4, seed: 13)
        let unmasked = try scaledDotProductAttention(q: q, k: k, v: v, mask: .none, path: variant)
        for offset in [4, 5, 1_000, Int.max] {
            let o = try scaledDotProductAttention(q: q, k: k, v: v, mask: .causal(queryOffset: offset), path: variant)
            #expect(o == unmasked, "offset \(offset), \(variant)")
        }
        #expect(AttentionMask.causal(queryOffset: .max).visibleKeyCount(query: 2, keys: 5) == 5)
    }

    @Test("Mask shape errors name the shapes: valid length > Tk, additive bias of the wrong shape, negative sizes, NaN bias")
    func maskErrors() {
        expectError(contains: ["validLength ≤ Tk = 4", "validLength 5"]) { try AttentionMask.keyPadding(validLength: 5).validate(queries: 2, keys: 4) }
        expectError(contains: ["[Tq, Tk] = [2, 4]", "[3, 4]"]) { try AttentionMask.additive(Matrix(rows: 3, cols: 4)).validate(queries: 2, keys: 4) }
        expectError(contains: ["queryOffset", "-1"]) { try AttentionMask.causal(queryOffset: -1).validate(queries: 2, keys: 4) }
        expectError(contains: ["validLength", "-2"]) { try AttentionMask.keyPadding(validLength: -2).validate(queries: 2, keys: 4) }
        var bias = Matrix(rows: 2, cols: 2)
        bias[1, 0] = .nan
        expectError(contains: ["additive mask", "index 2"]) { try AttentionMask.additive(bias).validate(queries: 2, keys: 2) }
        bias[1, 0] = -.infinity  // −∞ is "masked", allowed
        #expect(throws: Never.self) { try AttentionMask.additive(bias).validate(queries: 2, keys: 2) }
    }
}

/// Runs `body`, expects a `DecoderSpecError` whose message contains every string of `contains`.
func expectError(contains: [String], sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected a DecoderSpecError containing \(contains)", sourceLocation: sourceLocation)
    } catch let error as DecoderSpecError {
        for s in contains {
            #expect(error.description.contains(s), "message «\(error)» lacks «\(s)»", sourceLocation: sourceLocation)
        }
    } catch {
        Issue.record("expected DecoderSpecError, got \(error)", sourceLocation: sourceLocation)
    }
}

@Suite("Attention: bad input is a typed error naming the shapes, never a crash")
struct AttentionBadInputSpecs {
    let q = Inputs.matrix(rows: 3, cols: 8, seed: 1)
    let k = Inputs.matrix(rows: 5, cols: 8, seed: 2)
    let v = Inputs.matrix(rows: 5, cols: 6, seed: 3)

    @Test("Mismatched d_k names both shapes", arguments: KernelPath.allCases)
    func mismatchedDk(_ variant: KernelPath) {
        let k7 = Inputs.matrix(rows: 5, cols: 7, seed: 4)
        expectError(contains: ["Q [3, 8]", "K [5, 7]"]) { _ = try scaledDotProductAttention(q: q, k: k7, v: v, path: variant) }
        expectError(contains: ["Q [3, 8]", "K [5, 7]"]) { _ = try attentionWeights(q: q, k: k7) }
    }

    @Test("K and V with different Tk name both shapes")
    func mismatchedTk() {
        let v4 = Inputs.matrix(rows: 4, cols: 6, seed: 5)
        expectError(contains: ["K [5, 8]", "V [4, 6]"]) { _ = try scaledDotProductAttention(q: q, k: k, v: v4) }
    }

    @Test("Empty queries or keys are .emptySequence")
    func empty() {
        expectError(contains: ["queries Q [0, 8]"]) { _ = try scaledDotProductAttention(q: Matrix(rows: 0, cols: 8), k: k, v: v) }
        expectError(contains: ["keys K [0, 8]"]) {
            _ = try scaledDotProductAttention(q: q, k: Matrix(rows: 0, cols: 8), v: Matrix(rows: 0, cols: 6))
        }
    }

    @Test("A mask that does not fit [Tq, Tk] is a shape error", arguments: KernelPath.allCases)
    func maskMisfit(_ variant: KernelPath) {
        expectError(contains: ["validLength ≤ Tk = 5"]) {
            _ = try scaledDotProductAttention(q: q, k: k, v: v, mask: .keyPadding(validLength: 6), path: variant)
        }
        expectError(contains: ["[Tq, Tk] = [3, 5]", "[5, 3]"]) {
            _ = try scaledDotProductAttention(q: q, k: k, v: v, mask: .additive(Matrix(rows: 5, cols: 3)), path: variant)
        }
    }

    @Test("NaN and ±Inf in Q, K or V are .nonFinite naming the tensor and index", arguments: KernelPath.allCases)
    func nonFinite(_ variant: KernelPath) {
        for (which, bad) in [(0, Float.nan), (1, .infinity), (2, -.infinity)] {
            var qq = q, kk = k, vv = v
            switch which {
            case 0: qq[2, 3] = bad
            case 1: kk[4, 7] = bad
            default: vv[0, 5] = bad
            }
            let expected = ["queries Q [3, 8]", "keys K [5, 8]", "values V [5, 6]"][which]
            let index = ["19", "39", "5"][which]
            expectError(contains: [expected, "index \(index)"]) {
                _ = try scaledDotProductAttention(q: qq, k: kk, v: vv, path: variant)
            }
        }
        // Inside the SIMD-checked part of a larger tensor (the finite check reads 32 values at a time).
        for (index, bad) in [(77, Float.nan), (128, .infinity), (159, -.infinity)] {
            var big = Inputs.matrix(rows: 10, cols: 16, seed: 9)
            big.storage[index] = bad
            expectError(contains: ["values V [10, 16]", "index \(index)"]) {
                _ = try scaledDotProductAttention(q: Inputs.matrix(rows: 2, cols: 16, seed: 8), k: Inputs.matrix(rows: 10, cols: 16, seed: 7),
                                                  v: big, path: variant)
            }
        }
    }

    @Test("Multi-head: heads must divide d_model; weights must be [d, d]; inputs must be [T, d_model]")
    func multiHeadErrors() throws {
        var rng = SeededRNG(seed: 1)
        expectError(contains: ["heads = 5", "must divide d_model = 12"]) { _ = try MultiHeadAttention(modelWidth: 12, heads: 5, rng: &rng) }
        expectError(contains: ["heads = 5"]) { _ = try multiHeadAttention(q: Matrix(rows: 2, cols: 12, repeating: 0.1), k: Matrix(rows: 2, cols: 12), v: Matrix(rows: 2, cols: 12), heads: 5) }
        expectError(contains: ["heads", "0"]) { _ = try MultiHeadAttention(modelWidth: 12, heads: 0, rng: &rng) }
        let eye = try MultiHeadAttention.identity(modelWidth: 8, heads: 2)
        expectError(contains: ["W_K", "[8, 8]", "[8, 6]"]) {
            _ = try MultiHeadAttention(query: eye.query, key: Linear(weight: Matrix(rows: 8, cols: 6), bias: nil), value: eye.value,
                                       output: eye.output, heads: 2)
        }
        // A bias of the wrong length is caught by the projection's Linear, before the layer exists.
        expectError(contains: ["bias", "[8]", "[7]"]) {
            _ = try Linear(weight: eye.output.weight, bias: [Float](repeating: 0, count: 7))
        }
        expectError(contains: ["[T, 8]", "[3, 9]"]) { _ = try eye(Matrix(rows: 3, cols: 9)) }
        expectError(contains: ["key/value input", "[T, 8]", "[4, 9]"]) { _ = try eye(Matrix(rows: 3, cols: 8), memory: Matrix(rows: 4, cols: 9)) }
        var x = Matrix(rows: 3, cols: 8)
        x[1, 1] = .nan
        expectError(contains: ["query input [3, 8]", "index 9"]) { _ = try eye(x) }
        expectError(contains: ["empty"]) { _ = try eye(Matrix(rows: 0, cols: 8)) }
        var cache = LayerKVCache.empty(width: 8)
        expectError(contains: ["query input [1, 8]", "index 1"]) { _ = try eye(x.rows(1..<2), cache: &cache) }
        #expect(cache.length == 0, "a rejected step must not grow the cache")
    }
}

// MARK: - Errata: the source documents' attention, run through the same checks, must fail

@Suite("Errata: the source documents' attention formulas fail the attention specs")
struct AttentionErrataSpecs {
    let q = Inputs.matrix(rows: 6, cols: 16, seed: 301)
    let k = Inputs.matrix(rows: 6, cols: 16, seed: 302)
    let v = Inputs.matrix(rows: 6, cols: 16, seed: 303)

    @Test("Doc 004's a_ij = exp(q·k/√d)/√d: rows do not sum to 1 (the real weights do, same inputs)")
    func doc004RowsDoNotSumToOne() {
        let errata = AttentionOracleChecks.rowsSumToOne({ try AttentionErrata.doc004Weights(q: $0, k: $1, mask: $2) }, q: q, k: k,
                                                  mask: .causal(), context: "doc 004 seed=301")
        #expect(!errata.passed, "doc 004's weights unexpectedly normalized")
        let real = AttentionOracleChecks.rowsSumToOne({ try attentionWeights(q: $0, k: $1, mask: $2) }, q: q, k: k, mask: .causal(),
                                                context: "library seed=301")
        #expect(real.passed, "\(real)")
        #expect(AttentionErrata.doc004Formula.contains(#"\sqrt{d_{model}}}}{\sqrt{d_{model}}}"#))
    }

    @Test("Doc 004's weights also fail the GSL reference and the constant-values check")
    func doc004Output() {
        let fn: AttentionFunction = { try AttentionErrata.doc004Attention(q: $0, k: $1, v: $2, mask: $3) }
        #expect(!AttentionOracleChecks.matchesGSLReference(fn, q: q, k: k, v: v, mask: .none, context: "doc 004").passed)
        #expect(!AttentionChecks.constantValuesPreserved(fn, q: q, k: k, mask: .causal(), context: "doc 004").passed)
        // Closed form of the defect: the doc's row i is the true row scaled by Σ_j exp(s_ij)/√d.
        let w = try! AttentionErrata.doc004Weights(q: q, k: k)
        let wTrue = try! attentionWeights(q: q, k: k)
        let rowSum = w.row(0).reduce(0, +)
        let verdict = compare(w.row(0), wTrue.row(0).map { Double($0) * Double(rowSum) }, .relative(64 * unitRoundoff), "doc 004 row 0")
        #expect(verdict.passed, "\(verdict)")
    }

    @Test("Doc 000's snippet scales V by attn_in_scale: it fails the GSL reference and the constant-values check")
    func doc000Snippet() {
        let fn: AttentionFunction = { try AttentionErrata.doc000Snippet(q: $0, k: $1, v: $2, mask: $3) }
        #expect(!AttentionOracleChecks.matchesGSLReference(fn, q: q, k: k, v: v, mask: .causal(), context: "doc 000 snippet").passed)
        #expect(!AttentionChecks.constantValuesPreserved(fn, q: q, k: k, mask: .causal(), context: "doc 000 snippet").passed)
        // Its weights are right (Q and K scaled by d^(−1/4) each give QKᵀ/√d): the output is exactly
        // the true output times d^(−1/4), up to rounding.
        let o = try! AttentionErrata.doc000Snippet(q: q, k: k, v: v, mask: .causal())
        let truth = try! AttentionOracleChecks.reference(q: q, k: k, v: v, mask: .causal())
        // d^(−1/4) = 16^(−1/4) = 1/2.
        let verdict = compare(o.storage, truth.map { $0 / 2 },
                              .absolute(2 * attentionBound(q: q, k: k, v: v).value), "doc 000 = d^(-1/4) · attention")
        #expect(verdict.passed, "\(verdict)")
        #expect(AttentionErrata.doc000Snippet.contains("attn_value = value * self.attn_in_scale"))
    }

    @Test("Doc 000's prose adds V to the output: it fails the GSL reference, constant values, and causality")
    func doc000Prose() {
        let fn: AttentionFunction = { try AttentionErrata.doc000Prose(q: $0, k: $1, v: $2, mask: $3) }
        #expect(!AttentionOracleChecks.matchesGSLReference(fn, q: q, k: k, v: v, mask: .causal(), context: "doc 000 prose").passed)
        #expect(!AttentionChecks.constantValuesPreserved(fn, q: q, k: k, mask: .causal(), context: "doc 000 prose").passed)
        // Still causal (V_i is position i's own value), so causality passes — the defect is the sum, not a leak.
        let x = Inputs.matrix(rows: 9, cols: 8, seed: 304)
        #expect(AttentionOracleChecks.causality({ try AttentionErrata.doc000Prose(q: $0, k: $0, v: $0, mask: .causal()) }, x: x,
                                          position: 4, seed: 305, context: "doc 000 prose").passed)
        // Cross-attention (Tq ≠ Tk) has no V row per output row: the prose is not even defined.
        #expect(throws: DecoderSpecError.self) { try AttentionErrata.doc000Prose(q: q, k: Inputs.matrix(rows: 4, cols: 16, seed: 1), v: Inputs.matrix(rows: 4, cols: 16, seed: 2)) }
        #expect(AttentionErrata.doc000Prose.contains("与值向量相加"))
    }

    @Test("The checks are not vacuous: a mask leak, a forgotten query offset and scrambled positions are caught")
    func checksCanFail() {
        // Attention that ignores the mask (a real bug: forgetting to pass it).
        let leaky: AttentionFunction = { q, k, v, _ in try scaledDotProductAttention(q: q, k: k, v: v, mask: .none, path: .naive) }
        let x = Inputs.matrix(rows: 9, cols: 8, seed: 306)
        #expect(!AttentionOracleChecks.causality({ try leaky($0, $0, $0, .causal()) }, x: x, position: 3, seed: 307, context: "leaky").passed)
        #expect(!AttentionOracleChecks.paddedKeysIgnored(leaky, q: q, k: k, v: v, validLength: 3, seed: 308, context: "leaky").passed)
        #expect(!AttentionOracleChecks.maskedKeysGetZeroWeight(weights(of: leaky), q: q, k: k, mask: .causal(), context: "leaky").passed)
        // A KV-cache step that forgets the query offset (query 0 treated as position 0).
        let noOffset: AttentionFunction = { q, k, v, mask in
            var m = mask
            m.queryOffset = 0
            return try scaledDotProductAttention(q: q, k: k, v: v, mask: m, path: .optimized)
        }
        #expect(!AttentionChecks.offsetMatchesFullCausal(noOffset, q: q, k: k, v: v, newQueries: 2, context: "no offset").passed)
        // Positions mixed up (attending over reversed keys but not values): permutation-equivariance catches it.
        let scrambled: (Matrix) throws -> Matrix = { x in
            var kr = x
            for r in 0..<x.rows { for c in 0..<x.cols { kr[r, c] = x[x.rows - 1 - r, c] } }
            return try scaledDotProductAttention(q: x, k: kr, v: x, path: .naive)
        }
        #expect(!AttentionChecks.permutationEquivariant(scrambled, x: x, seed: 309, context: "scrambled").passed)
    }
}
