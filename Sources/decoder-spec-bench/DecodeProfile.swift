import DecoderSpec
import Foundation

/// Where a cached decoding step's time goes (suite `decode-profile`): the step of
/// `DecoderOnlyModel.logits(appending:to:)` taken apart into its parts, each timed on its own, at
/// the contexts of the decode suite, for each weight/cache format; beside each part the bytes it
/// must read and the GB/s that makes. The parts are the same calls the step makes, in the same
/// order (so the weights stream from DRAM as they do in a real step).
enum DecodeProfile {
    struct Part {
        var name: String
        var seconds: Double = 0
        var bytes: Double = 0
    }

    /// Median over `steps` cached steps of each part's seconds at `context`.
    static func profile(_ model: DecoderOnlyModel, context: Int, steps: Int, rng: inout SeededRNG) throws -> [Part] {
        let v = UInt64(model.vocabularySize)
        var cache = model.makeCache()
        _ = try model.logits(appending: (0..<(context - steps)).map { _ in Int(rng.next() % v) }, to: &cache)
        let names = ["embedding", "LayerNorms + residuals", "Q, K, V projections", "cache append", "attention over the cache",
                     "W_O", "FFN up", "GELU", "FFN down", "final LayerNorm + tied head"]
        var samples = [[Double]](repeating: [], count: names.count)
        // Thread CPU time, not wall time: on a shared machine a part's wall time includes the slices other
        // processes ran in; CPU time still includes the memory stalls, which are what is measured here.
        func cpu() -> Double { var ts = timespec(); clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9 }
        for _ in 0..<steps {
            var t = [Double](repeating: 0, count: names.count)
            func time<T>(_ i: Int, _ body: () throws -> T) rethrows -> T {
                let start = cpu()
                let r = try body()
                t[i] += cpu() - start
                return r
            }
            let token = Int(rng.next() % v)
            let first = cache.length
            var h = try time(0) { try model.embedded([token], startingAt: first) }
            for (l, layer) in model.layers.enumerated() {
                let a = layer.selfAttention
                let x1 = try time(1) { try layer.selfAttentionNorm(h, path: model.path) }
                let (q, k, vv) = try time(2) { (try a.query(x1, path: model.path), try a.key(x1, path: model.path), try a.value(x1, path: model.path)) }
                try time(3) { try cache.layers[l].append(keys: k, values: vv) }
                let mixed = try time(4) { try a.attend(queries: q, cache: cache.layers[l], queryOffset: first, path: model.path) }
                let o = try time(5) { try a.output(mixed, path: model.path) }
                h = try time(1) { try h.adding(o) }
                let x2 = try time(1) { try layer.feedForwardNorm(h, path: model.path) }
                var up = try time(6) { try layer.feedForward.up(x2, path: model.path) }
                let count = up.storage.count
                time(7) { up.storage.withUnsafeMutableBufferPointer { Activation.apply(layer.feedForward.activation, model.path, $0.baseAddress!, count: count) } }
                let down = try time(8) { try layer.feedForward.down(up, path: model.path) }
                h = try time(1) { try h.adding(down) }
            }
            _ = try time(9) { try model.tokenEmbedding.tiedLogits(try model.finalNorm(h, path: model.path), path: model.path) }
            for i in names.indices { samples[i].append(t[i]) }
        }
        let d = Double(model.config.modelWidth), ff = Double(model.config.feedForwardWidth), layers = Double(model.config.layers)
        let w = model.weightFormat == .bf16 ? 2.0 : 4.0, kv = Double(model.kvFormat.bytesPerElement)
        let bytes: [Double] = [2 * 4 * d, 0, layers * (3 * w * d * d + 3 * 4 * d), layers * 2 * kv * d,
                               layers * 2 * kv * d * Double(context), layers * (w * d * d + 4 * d), layers * (w * ff * d + 4 * ff), 0,
                               layers * (w * ff * d + 4 * d), w * Double(model.vocabularySize) * d]
        return names.indices.map { i in
            let s = samples[i].sorted()
            return Part(name: names[i], seconds: s[s.count / 2], bytes: bytes[i])
        }
    }
}

extension DecodeProfile {
    /// Thread CPU seconds of whole cached steps (median), beside the parts.
    static func wholeStep(_ model: DecoderOnlyModel, context: Int, steps: Int, rng: inout SeededRNG) throws -> Double {
        let v = UInt64(model.vocabularySize)
        var cache = model.makeCache()
        _ = try model.logits(appending: (0..<(context - steps)).map { _ in Int(rng.next() % v) }, to: &cache)
        func cpu() -> Double { var ts = timespec(); clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9 }
        var samples: [Double] = []
        for _ in 0..<steps {
            let token = Int(rng.next() % v)
            let start = cpu()
            _ = try model.logits(appending: [token], to: &cache)
            samples.append(cpu() - start)
        }
        samples.sort()
        return samples[samples.count / 2]
    }

    static func run() throws -> [Table] {
        let bandwidth = DecodeBench.readBandwidth()
        let fp = try DecoderOnlyModel.seeded(.gpt2Small, seed: 1)
        let bf = fp.roundingWeightsToBF16()
        let variants = [("fp32", fp), ("bf16 weights", bf), ("bf16 weights + KV", bf.storingKVCache(as: .bf16))]
        var rng = SeededRNG(seed: 5)
        var tables: [Table] = []
        for context in [64, 1024] {
            var table = Table(title: String(format: "Where a cached step's time goes: GPT-2-small shape, context %d, thread CPU time (memory stalls included, other processes' slices not), medians of 16 steps; DRAM probe %.1f GB/s", context, bandwidth / 1e9),
                              header: ["part"] + variants.flatMap { ["\($0.0) ms", "MB", "GB/s"] })
            let parts = try variants.map { try profile($0.1, context: context, steps: 16, rng: &rng) }
            for i in parts[0].indices {
                table.rows.append([parts[0][i].name] + parts.flatMap { p in
                    [String(format: "%.2f", p[i].seconds * 1e3), String(format: "%.1f", p[i].bytes / 1e6),
                     p[i].bytes > 0 ? String(format: "%.1f", p[i].bytes / p[i].seconds / 1e9) : ""]
                })
            }
            table.rows.append(["sum of the parts"] + parts.flatMap { p in
                let t = p.reduce(0) { $0 + $1.seconds }, b = p.reduce(0) { $0 + $1.bytes }
                return [String(format: "%.2f", t * 1e3), String(format: "%.1f", b / 1e6), String(format: "%.1f", b / t / 1e9)]
            })
            let whole = try variants.map { try wholeStep($0.1, context: context, steps: 16, rng: &rng) }
            table.rows.append(["whole step (logits(appending:))"] + whole.flatMap { [String(format: "%.2f", $0 * 1e3), "", ""] })
            tables.append(table)
        }
        return tables
    }
}
