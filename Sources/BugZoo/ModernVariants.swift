// Bugs of the modern decoder block (RoPE, ALiBi, the KV cache with RoPE): #22–25 of docs/bug-zoo.md.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Attention
import Kernels
import Layers
import Masking
import PositionalEncoding
import TensorCore

/// RoPE: x [T, heads·d] rotated, row r at position offset + r (`RotaryEmbedding.apply`).
public typealias RotaryFunction = @Sendable (_ x: Matrix, _ headWidth: Int, _ positionOffset: Int, _ base: Double,
                                             _ convention: RotaryEmbedding.Convention) throws -> Matrix
/// Loading a checkpoint of a half-split RoPE layer into interleaved code: the layer as the interleaved code will run it.
public typealias RoPEConversionFunction = @Sendable (_ halfSplitLayer: MultiHeadAttention) throws -> MultiHeadAttention
/// ALiBi slopes of n heads.
public typealias ALiBiSlopesFunction = @Sendable (_ heads: Int) throws -> [Float]
/// KV-cached self-attention of `layer`: `chunks` (row blocks) fed through one cache → each chunk's output rows.
public typealias CachedAttentionFunction = @Sendable (_ layer: MultiHeadAttention, _ chunks: [Matrix]) throws -> [Matrix]

extension BugCatalogue {
    public static let correctRotary: RotaryFunction = { x, d, offset, base, convention in
        try RotaryEmbedding(headWidth: d, base: base, convention: convention).apply(to: x, positionOffset: offset)
    }
    public static let correctRoPEConversion: RoPEConversionFunction = { layer in try layer.convertingRoPE(to: .interleaved) }
    public static let correctALiBiSlopes: ALiBiSlopesFunction = { n in try ALiBi.slopes(heads: n) }
    public static let correctCachedAttention: CachedAttentionFunction = { layer, chunks in
        var cache = layer.emptyCache()
        return try chunks.map { try layer($0, cache: &cache) }
    }

    /// #22 — half-split RoPE weights loaded into interleaved code without the permutation.
    ///
    /// Meta's LLaMA code rotates adjacent pairs (x_{2i}, x_{2i+1}); Hugging Face's `rotate_half`
    /// rotates (x_i, x_{i+d/2}), and its conversion script permutes the rows of W_Q and W_K to match.
    /// naklecha/llama3-from-scratch issue #20: "Why do I get different results when I try to use
    /// transforms?" — answered: the converted q and k matrices "are already permuted for convenience of
    /// rotary positional encoding" (InternLM/lmdeploy issue #2639 permutes them back for the same reason).
    public static let ropeConventionMismatch = Bug(
        id: 22, name: "RoPE: half-split weights on interleaved code without the permutation",
        mistake: "load HF q_proj/k_proj into view_as_complex (adjacent-pair) RoPE as they are   # rows not permuted back",
        citation: "naklecha/llama3-from-scratch issue #20 (InternLM/lmdeploy issue #2639)", concept: .positionalEncoding,
        variants: [Variant("convention switched, rows not permuted", mutant: .ropeConversion({ layer in
            guard case .rope(let rope) = layer.positions else { return layer }
            var l = layer
            l.positions = .rope(try RotaryEmbedding(headWidth: rope.headWidth, base: rope.base, convention: .interleaved))
            return l
        }), correct: .ropeConversion(correctRoPEConversion))])

    /// Rounds x to `bits` significant bits (bf16: 8, fp16: 11), as a cast to that format would (range ignored).
    static func roundedToSignificand(_ x: Double, bits: Int) -> Double {
        if x == 0 || !x.isFinite { return x }
        let scale = pow(2, Double(bits - 1) - floor(log2(abs(x))))
        return (x * scale).rounded() / scale
    }

    /// RoPE with angles or tables in a low-precision format: `angleBits` significant bits for θ_i,
    /// m and m·θ_i, `tableBits` for cos and sin.
    static func lowPrecisionRoPE(angleBits: Int, tableBits: Int) -> RotaryFunction {
        { x, d, offset, base, convention in
            var y = x
            for r in 0..<x.rows {
                for h in 0..<(x.cols / d) {
                    for i in 0..<(d / 2) {
                        let theta = roundedToSignificand(pow(base, -2 * Double(i) / Double(d)), bits: angleBits)
                        let m = roundedToSignificand(Double(offset + r), bits: angleBits)
                        let angle = roundedToSignificand(m * theta, bits: angleBits)
                        let c = Float(roundedToSignificand(cos(angle), bits: tableBits)), s = Float(roundedToSignificand(sin(angle), bits: tableBits))
                        let (ia, ib) = RoPEKernel.pair(i, headWidth: d, convention)
                        let (a, b) = (x[r, h * d + ia], x[r, h * d + ib])
                        y[r, h * d + ia] = a * c - b * s
                        y[r, h * d + ib] = a * s + b * c
                    }
                }
            }
            return y
        }
    }

    /// #23 — RoPE tables computed in bf16/fp16.
    ///
    /// huggingface/transformers PR #29285: "when one uses bfloat16, the RoPE embeddings get autocast to
    /// bfloat16, when we require it to be in float32. This causes the positional encodings to lose
    /// precision dramatically especially for very large context lengths." (Also
    /// huggingface/candle PR #3520: bf16 positions above 256 are not integers any more.)
    public static let ropeLowPrecision = Bug(
        id: 23, name: "RoPE: angles or cos/sin tables in bf16/fp16",
        mistake: "freqs = t.to(bf16) @ inv_freq.to(bf16); cos, sin = freqs.cos(), freqs.sin()   # or cached as fp16",
        citation: "huggingface/transformers PR #29285 (huggingface/candle PR #3520)", concept: .positionalEncoding,
        variants: [
            Variant("bf16 angles (8-bit θ, m and m·θ)", mutant: .rotary(lowPrecisionRoPE(angleBits: 8, tableBits: 53)),
                    correct: .rotary(correctRotary)),
            Variant("fp16 cos/sin tables", mutant: .rotary(lowPrecisionRoPE(angleBits: 53, tableBits: 11)), correct: .rotary(correctRotary)),
        ])

    /// #24 — ALiBi slopes by the power-of-two formula for every head count.
    ///
    /// ml-explore/mlx issue #343 "alibi error if log2(num_heads) is not an integer", fixed by PR #3071:
    /// "The old create_alibi_slope function used a simple formula: x = (2**8) ** (1 / num_heads) …
    /// only accurate when num_heads was a power of 2".
    public static let alibiSlopesNonPowerOfTwo = Bug(
        id: 24, name: "ALiBi: slopes 2^(−8h/n) for a head count that is not a power of two",
        mistake: "x = (2**8) ** (1 / num_heads); slopes = x ** -arange(1, num_heads + 1)",
        citation: "ml-explore/mlx issue #343 (fixed by ml-explore/mlx PR #3071)", concept: .positionalEncoding,
        variants: [Variant("geometric 2^(−8/n) for every n", mutant: .alibiSlopes({ n in
            guard n > 0 else { return try ALiBi.slopes(heads: n) }
            return (1...n).map { h in Float(pow(2, -8 * Double(h) / Double(n))) }
        }), correct: .alibiSlopes(correctALiBiSlopes))])

    /// #25 — RoPE in a KV-cached step rotated from position 0 instead of the cache length.
    ///
    /// lucidrains/rotary-embedding-torch issue #11 "Bug in cache": "offset parameter is not being cached.
    /// So if I pass the same t with different offsets I get the same result as in first offset." The new
    /// token's query and key get the rotation of position 0 (… n − 1) at every step.
    public static let ropeCacheOffset = Bug(
        id: 25, name: "KV cache: RoPE rotation not offset by the cached length",
        mistake: "freqs = self.forward(…, cache_key = f'freqs:{seq_len}')   # offset not in the key: positions from 0 each step",
        citation: "lucidrains/rotary-embedding-torch issue #11", concept: .kvCache,
        variants: [Variant("rotations from position 0 at every step", mutant: .cachedAttention({ layer, chunks in
            var cache = layer.emptyCache()
            return try chunks.map { x in
                let offset = cache.length
                let q = try layer.rotated(layer.query(x), from: 0)
                try cache.append(keys: try layer.rotated(layer.key(x), from: 0), values: try layer.value(x))
                return try layer.output(layer.attend(queries: q, keys: cache.keys, values: cache.values, mask: .causal(queryOffset: offset)))
            }
        }), correct: .cachedAttention(correctCachedAttention))])
}
