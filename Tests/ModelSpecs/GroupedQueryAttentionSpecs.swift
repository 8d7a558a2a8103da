// Grouped-query attention, RoPE and ALiBi inside the one MultiHeadAttention, the KV cache they
// need, and the permutation facts (docs/attention.md, "Grouped-query attention"; docs/positional-encoding.md).
import DecoderSpec
import GSLOracle
import SpecSupport
import Testing

func modernLayer(heads: Int, kvHeads: Int, positions: AttentionPositions, d: Int = 24, seed: UInt64 = 3) throws -> MultiHeadAttention {
    var rng = SeededRNG(seed: seed)
    return try MultiHeadAttention(modelWidth: d, heads: heads, kvHeads: kvHeads, positions: positions, std: 0.4, rng: &rng)
}

@Suite("Grouped-query attention with RoPE and ALiBi")
struct GroupedQueryAttentionSpecs {
    static let variants: [(heads: Int, kvHeads: Int, positions: String)] = [
        (4, 4, "none"), (4, 2, "none"), (4, 1, "none"), (6, 3, "rope"), (6, 1, "rope-interleaved"), (6, 2, "alibi"), (4, 4, "alibi"),
    ]

    /// Each variant's seeded layer (d_model 24) and a label for messages.
    static func layers() throws -> [(layer: MultiHeadAttention, label: String)] {
        try variants.map { v in
            let dh = 24 / v.heads
            let positions: AttentionPositions = switch v.positions {
            case "rope": .rope(try RotaryEmbedding(headWidth: dh))
            case "rope-interleaved": .rope(try RotaryEmbedding(headWidth: dh, base: 500_000, convention: .interleaved))
            case "alibi": .alibi
            default: .none
            }
            return (try modernLayer(heads: v.heads, kvHeads: v.kvHeads, positions: positions), "\(v.heads) heads, \(v.kvHeads) kv heads, \(v.positions)")
        }
    }

    @Test("Causal self-attention (MHA, GQA, MQA; none, RoPE, ALiBi incl. 6 heads) matches the Double reference on every path",
          arguments: KernelPath.allCases)
    func againstReference(path: KernelPath) throws {
        for (i, l) in try Self.layers().enumerated() {
            let verdict = AttentionLayerChecks.matchesReference({ try $0($1, mask: .causal(), path: path) }, layer: l.layer,
                                                                x: Inputs.matrix(rows: 11, cols: 24, seed: UInt(60 + i)), context: "\(l.label), \(path)")
            #expect(verdict.passed, "\(verdict)")
        }
    }

    @Test("KV-cache decoding equals the reference of the whole prefix with RoPE, ALiBi and GQA (cache position offset)",
          arguments: KernelPath.allCases)
    func cacheEqualsRecompute(path: KernelPath) throws {
        for (i, l) in try Self.layers().enumerated() {
            let verdict = AttentionLayerChecks.cacheMatchesReference(AttentionLayerChecks.libraryCached(path: path), layer: l.layer,
                                                                     x: Inputs.matrix(rows: 10, cols: 24, seed: UInt(80 + i)),
                                                                     chunkSizes: [4, 1, 1, 3, 1], context: "\(l.label), \(path)")
            #expect(verdict.passed, "\(verdict)")
        }
    }

    @Test("Fused vs naive grouped-query attention with ALiBi over odd shapes, key blocks crossed and query offsets")
    func fusedVersusNaive() throws {
        for (i, (t, dh, heads, kv, offset)) in [(1, 3, 3, 1, 0), (5, 8, 4, 2, 0), (17, 17, 6, 3, 4), (300, 8, 2, 1, 0), (7, 5, 5, 5, 290)].enumerated() {
            let q = Inputs.matrix(rows: t, cols: heads * dh, seed: UInt(90 + i))
            let k = Inputs.matrix(rows: t + offset, cols: kv * dh, seed: UInt(95 + i)), v = Inputs.matrix(rows: t + offset, cols: kv * dh, seed: UInt(99 + i))
            let slopes = try ALiBi.slopes(heads: heads)
            func run(_ path: KernelPath) throws -> Matrix {
                try multiHeadAttention(q: q, k: k, v: v, heads: heads, kvHeads: kv, mask: .causal(queryOffset: offset), alibiSlopes: slopes, path: path)
            }
            // Each path within the attention bound plus the bias term (6u·max|bias|·max|V|, as in
            // docs/tolerances.md) of the exact value: within twice that of each other.
            let maxBias = Double(slopes.max()!) * Double(t + offset)
            let bound = AttentionOracleChecks.bound(q: q, k: k, v: v, headDimension: dh) + 6 * CheckSupport.unitRoundoff * maxBias
            let verdict = compare(try run(.optimized).storage, try run(.naive).storage.doubles, .absolute(2 * bound),
                                  "T \(t), d_head \(dh), \(heads) heads, \(kv) kv heads, offset \(offset)")
            #expect(verdict.passed, "\(verdict)")
        }
    }

    @Test("kvHeads == heads is multi-head attention exactly: same weights, bitwise equal outputs", arguments: KernelPath.allCases)
    func kvHeadsEqualHeadsIsMHA(path: KernelPath) throws {
        var rng = SeededRNG(seed: 5)
        let plain = try MultiHeadAttention(modelWidth: 16, heads: 4, rng: &rng)
        let explicit = try MultiHeadAttention(query: plain.query, key: plain.key, value: plain.value, output: plain.output, heads: 4, kvHeads: 4)
        let x = Inputs.matrix(rows: 7, cols: 16, seed: 6)
        #expect(try plain(x, mask: .causal(), path: path).storage == explicit(x, mask: .causal(), path: path).storage)
    }

    @Test("The KV cache holds 2·T·kvHeads·d_head floats per layer: MQA with 8 heads stores 1/8 of MHA's")
    func cacheSize() throws {
        let (d, t) = (64, 9)
        var counts: [Int: Int] = [:]
        for kv in [8, 4, 2, 1] {
            let layer = try modernLayer(heads: 8, kvHeads: kv, positions: .rope(try RotaryEmbedding(headWidth: 8)), d: d)
            var cache = KVCache(layers: 1, width: layer.keyValueWidth)
            let x = Inputs.matrix(rows: t, cols: d, seed: 7)
            _ = try layer(x.rows(0..<5), cache: &cache.layers[0])
            for r in 5..<t { _ = try layer(x.rows(r..<(r + 1)), cache: &cache.layers[0]) }
            #expect(cache.floatCount == 2 * t * kv * (d / 8), "kvHeads \(kv)")
            counts[kv] = cache.floatCount
        }
        #expect(counts[8]! == 8 * counts[1]! && counts[8]! == 2 * counts[4]!)
        // A cache of the wrong width is a typed error, not a wrong answer.
        let gqa = try modernLayer(heads: 8, kvHeads: 2, positions: .none, d: d)
        var wrong = LayerKVCache.empty(width: d)
        #expect(throws: DecoderSpecError.self) { try gqa(Inputs.matrix(rows: 1, cols: d, seed: 8), cache: &wrong) }
    }

    @Test("Bad grouped-query input is a typed error")
    func errors() throws {
        var rng = SeededRNG(seed: 1)
        #expect(throws: DecoderSpecError.self) { try MultiHeadAttention(modelWidth: 16, heads: 4, kvHeads: 3, rng: &rng) }
        #expect(throws: DecoderSpecError.self) { try MultiHeadAttention(modelWidth: 16, heads: 4, kvHeads: 0, rng: &rng) }
        #expect(throws: DecoderSpecError.self) {
            try MultiHeadAttention(modelWidth: 16, heads: 4, positions: .rope(try RotaryEmbedding(headWidth: 8)), rng: &rng)
        }
        let l = try MultiHeadAttention(modelWidth: 16, heads: 4, rng: &rng)
        #expect(throws: DecoderSpecError.self) { try MultiHeadAttention(query: l.query, key: l.key, value: l.value, output: l.output, heads: 4, kvHeads: 2) }
        let q = Inputs.matrix(rows: 2, cols: 16, seed: 2), k = Inputs.matrix(rows: 3, cols: 8, seed: 3)
        #expect(throws: DecoderSpecError.self) { try multiHeadAttention(q: q, k: k, v: k, heads: 4, kvHeads: 1) }
        #expect(throws: DecoderSpecError.self) { try multiHeadAttention(q: q, k: k, v: k, heads: 4, kvHeads: 2, alibiSlopes: [1, 2]) }
        #expect(throws: DecoderSpecError.self) { try multiHeadAttention(q: q, k: k, v: k, heads: 4, kvHeads: 2, alibiSlopes: [1, 2, .nan, 4]) }
    }
}

@Suite("Permutation facts: an encoder without positions is permutation-equivariant, a causal decoder is not")
struct PermutationSpecs {
    /// The rows of x reordered: row r of the result is row perm[r] of x.
    static func permuted(_ x: Matrix, _ perm: [Int]) -> Matrix {
        try! Matrix(rows: x.rows, cols: x.cols, storage: perm.flatMap { x.row($0) })
    }

    @Test("Self-attention without positions or mask is permutation-equivariant: f(P·X) = P·f(X) within twice the reference bound, on every path",
          arguments: KernelPath.allCases)
    func encoderEquivariant(path: KernelPath) throws {
        // In exact arithmetic f(P·X) = P·f(X); both Float results are within `bound` of their exact
        // values (AttentionLayerChecks.reference: the same bound for X and P·X), so within 2·bound of
        // each other. LayerNorm, the FFN and the residuals of an encoder layer are row-local, so the
        // layer inherits the property; attention is the only place positions could enter.
        var rng = SeededRNG(seed: 21)
        let layer = try MultiHeadAttention(modelWidth: 16, heads: 4, std: 0.4, rng: &rng)
        let x = Inputs.matrix(rows: 9, cols: 16, seed: 22)
        let perm = [3, 0, 8, 1, 7, 2, 6, 4, 5]
        let (_, bound) = try AttentionLayerChecks.reference(layer, x: x, causal: false)
        let fx = try layer(x, path: path), fpx = try layer(Self.permuted(x, perm), path: path)
        #expect(compare(fpx.storage, Self.permuted(fx, perm).storage.doubles, .absolute(2 * bound)).passed)
    }

    @Test("Self-attention with keys in the same order (only queries permuted) is bitwise equivariant on the naive path")
    func queriesPermutedBitwise() throws {
        var rng = SeededRNG(seed: 23)
        let layer = try MultiHeadAttention(modelWidth: 16, heads: 4, std: 0.4, rng: &rng)
        let x = Inputs.matrix(rows: 7, cols: 16, seed: 24)
        let perm = [6, 2, 0, 5, 1, 3, 4]
        let out = try layer(Self.permuted(x, perm), memory: x, path: .naive)
        #expect(out.storage == Self.permuted(try layer(x, memory: x, path: .naive), perm).storage)
    }

    @Test("A causal decoder layer without positions is not equivariant: the mask leaks order (NoPE)")
    func causalDecoderIsNot() throws {
        var rng = SeededRNG(seed: 25)
        let layer = try MultiHeadAttention(modelWidth: 16, heads: 4, std: 0.4, rng: &rng)
        let x = Inputs.matrix(rows: 6, cols: 16, seed: 26)
        let perm = [5, 4, 3, 2, 1, 0]
        let fx = try layer(x, mask: .causal(), path: .naive), fpx = try layer(Self.permuted(x, perm), mask: .causal(), path: .naive)
        let expected = Self.permuted(fx, perm)
        // Row 0 of the permuted run sees only x₅; row 5 of the original sees all six rows: they differ by far more than rounding.
        let scale = Double(fx.storage.map(abs).max()!)
        #expect(!compare(fpx.storage, expected.storage.doubles, .absolute(0.01 * scale)).passed)
    }
}
