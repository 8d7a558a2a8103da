import DecoderSpec
import Foundation
import GSLOracle

/// The modern block (docs/positional-encoding.md "RoPE", "ALiBi"; docs/kernels.md "RMSNorm",
/// "SwiGLU"; docs/attention.md "Grouped-query attention"): naive vs optimized, each validated first.
enum ModernBench {
    static func run() throws -> [Table] {
        var table = Table(title: "Modern block — median ms; opt÷naive measured in this run",
                          header: ["kernel", "shape", "naive", "optimized", "opt÷naive", "note"])
        table.rows.append(try rmsNormRow(rows: 1024, d: 768))
        table.rows.append(try swiGLURow(count: 1 << 20))
        for convention in RotaryEmbedding.Convention.allCases { table.rows.append(try ropeRow(rows: 1024, heads: 12, d: 64, convention)) }
        table.rows.append(try attentionRow(t: 512, heads: 8, d: 64, alibi: false))
        table.rows.append(try attentionRow(t: 512, heads: 8, d: 64, alibi: true))
        for kv in [8, 2, 1] { table.rows.append(try decodeStepRow(context: 1024, heads: 8, kvHeads: kv, d: 512)) }
        return [table]
    }

    static func row(_ kernel: String, _ shape: String, naive: Double, optimized: Double, note: String = "") -> [String] {
        recorded.append(Measurement(suite: "modern", kernel: kernel, variant: "naive", shape: shape, medianSeconds: naive, gflops: nil, note: nil))
        recorded.append(Measurement(suite: "modern", kernel: kernel, variant: "optimized", shape: shape, medianSeconds: optimized, gflops: nil, note: nil))
        return [kernel, shape, ms(naive), ms(optimized), ratio(naive / optimized), note]
    }

    /// Both paths within `bound` of each other before anything is timed.
    static func validate(_ what: String, _ a: [Float], _ b: [Float], relative: Double) throws {
        for i in a.indices where !(abs(Double(a[i]) - Double(b[i])) <= relative * (abs(Double(b[i])) + 1)) {
            throw BenchError.validation("\(what) index \(i): \(a[i]) vs \(b[i])")
        }
    }

    static func rmsNormRow(rows: Int, d: Int) throws -> [String] {
        let x = try Matrix(rows: rows, cols: d, storage: GSLRandom(seed: 1).floats(rows * d, in: -3, 3))
        let norm = try RMSNorm(gain: GSLRandom(seed: 2).floats(d, in: 0.5, 1.5))
        try validate("RMSNorm", try norm(x, path: .optimized).storage, try norm(x, path: .naive).storage, relative: 1e-5)
        return row("RMSNorm", "\(rows)×\(d)", naive: Harness.medianAdaptive { _ = try! norm(x, path: .naive) },
                   optimized: Harness.medianAdaptive { _ = try! norm(x, path: .optimized) })
    }

    static func swiGLURow(count: Int) throws -> [String] {
        let a = GSLRandom(seed: 3).floats(count, in: -6, 6), b = GSLRandom(seed: 4).floats(count, in: -2, 2)
        var out = [Float](repeating: 0, count: count)
        func run(_ path: KernelPath) { out.withUnsafeMutableBufferPointer { SwiGLUKernel.apply(path, gate: a, up: b, out: $0.baseAddress!, count: count) } }
        run(.naive)
        let reference = out
        run(.optimized)
        try validate("SwiGLU", out, reference, relative: 1e-6)
        return row("SwiGLU SiLU(a)⊙b", "\(count)", naive: Harness.medianAdaptive { run(.naive) }, optimized: Harness.medianAdaptive { run(.optimized) })
    }

    static func ropeRow(rows: Int, heads: Int, d: Int, _ convention: RotaryEmbedding.Convention) throws -> [String] {
        let x = try Matrix(rows: rows, cols: heads * d, storage: GSLRandom(seed: 5).floats(rows * heads * d, in: -1, 1))
        let rope = try RotaryEmbedding(headWidth: d, convention: convention)
        let naive = try rope.apply(to: x, positionOffset: 1000, path: .naive), optimized = try rope.apply(to: x, positionOffset: 1000, path: .optimized)
        guard naive == optimized else { throw BenchError.validation("RoPE \(convention): naive and optimized differ (specced bitwise equal)") }
        return row("RoPE \(convention)", "\(rows)×\(heads)·\(d)", naive: Harness.medianAdaptive { _ = try! rope.apply(to: x, path: .naive) },
                   optimized: Harness.medianAdaptive { _ = try! rope.apply(to: x, path: .optimized) }, note: "positions 0..<\(rows)")
    }

    static func attentionRow(t: Int, heads: Int, d: Int, alibi: Bool) throws -> [String] {
        let width = heads * d
        let q = try Matrix(rows: t, cols: width, storage: GSLRandom(seed: 6).floats(t * width, in: -1, 1))
        let k = try Matrix(rows: t, cols: width, storage: GSLRandom(seed: 7).floats(t * width, in: -1, 1))
        let v = try Matrix(rows: t, cols: width, storage: GSLRandom(seed: 8).floats(t * width, in: -1, 1))
        let slopes = alibi ? try ALiBi.slopes(heads: heads) : nil
        func run(_ path: KernelPath) -> Matrix { try! multiHeadAttention(q: q, k: k, v: v, heads: heads, mask: .causal(), alibiSlopes: slopes, path: path) }
        try validate("attention", run(.optimized).storage, run(.naive).storage, relative: 1e-4)
        return row(alibi ? "causal MHA + ALiBi" : "causal MHA", "T \(t), \(heads)×\(d)", naive: Harness.medianAdaptive { _ = run(.naive) },
                   optimized: Harness.medianAdaptive { _ = run(.optimized) }, note: alibi ? "naive: bias [T, T] per head; fused: per score" : "")
    }

    /// One cached decoding step of a RoPE self-attention layer at `context` cached positions.
    static func decodeStepRow(context: Int, heads: Int, kvHeads: Int, d: Int) throws -> [String] {
        var rng = SeededRNG(seed: 9)
        let layer = try MultiHeadAttention(modelWidth: d, heads: heads, kvHeads: kvHeads, positions: .rope(try RotaryEmbedding(headWidth: d / heads)),
                                           std: 0.05, rng: &rng)
        let prompt = try Matrix(rows: context, cols: d, storage: GSLRandom(seed: 10).floats(context * d, in: -1, 1))
        var cache = layer.emptyCache()
        _ = try layer(prompt, cache: &cache)
        let x = try Matrix(rows: 1, cols: d, storage: GSLRandom(seed: 11).floats(d, in: -1, 1))
        // One step, then the cache rolled back to the prompt (no copy: truncation keeps the storage).
        func step(_ path: KernelPath) -> Matrix {
            defer { cache.truncate(to: context) }
            return try! layer(x, cache: &cache, path: path)
        }
        try validate("decode step", step(.optimized).storage, step(.naive).storage, relative: 1e-4)
        let floats = 2 * cache.keys.cols * (context + 1)
        return row("decode step, RoPE, \(kvHeads) kv heads", "ctx \(context), d \(d), \(heads) heads",
                   naive: Harness.medianAdaptive { _ = step(.naive) }, optimized: Harness.medianAdaptive { _ = step(.optimized) },
                   note: "cache \(floats) floats/layer (\(kvHeads == heads ? "MHA" : kvHeads == 1 ? "MQA" : "GQA"), ×\(heads / kvHeads) smaller than MHA)")
    }
}
