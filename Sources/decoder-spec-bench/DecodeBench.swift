import DecoderSpec
import Foundation

/// Decode speed of a GPT-2-small-shaped model (124M parameters, seeded random weights, no
/// download): tokens/s with and without the KV cache at several context lengths, both backends,
/// the weight-only bf16 path and bf16 weights with a bf16 KV cache beside the Float one, each against
/// its memory-bandwidth bound (every weight byte and the cache's K and V read once per cached token,
/// from DRAM when they do not fit the L3; `DecoderOnlyModel.bytesPerToken(context:)`).
enum DecodeBench {
    /// The probe's buffer: 1 GiB, four times the largest L3 of the machines this runs on (260 MB),
    /// so every pass reads from DRAM (the earlier 256 MB probe fitted the L3 and overstated nothing
    /// it could bound: decode came out above "100 %" of it).
    static let probeBytes = 1 << 30

    /// DRAM read bandwidth of one core: a SIMD sum over `probeBytes` (8 independent accumulators of
    /// the build's vector width, so the adds never limit the loads), median of 5 passes.
    static func readBandwidth(bytes: Int = probeBytes) -> Double {
        let count = bytes / 4
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
        defer { buffer.deallocate() }
        for i in 0..<count { buffer[i] = Float(i & 7) }
        #if DECODERSPEC_AVX512
        typealias V = SIMD16<Float>
        #else
        typealias V = SIMD8<Float>
        #endif
        var sink: Float = 0
        let seconds = Harness.median(warmup: 1, runs: 5) {
            let p = UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: V.self)
            var a = V(), b = V(), c = V(), d = V(), e = V(), f = V(), g = V(), h = V()
            var i = 0
            let vectors = count / V.scalarCount
            while i < vectors {
                a += p[i]; b += p[i + 1]; c += p[i + 2]; d += p[i + 3]
                e += p[i + 4]; f += p[i + 5]; g += p[i + 6]; h += p[i + 7]
                i += 8
            }
            sink += (a + b + c + d + e + f + g + h).sum()
        }
        if sink == .infinity { print("") }
        return Double(count * 4) / seconds
    }

    /// The last-level cache's size in bytes (sysfs), or nil.
    static var lastLevelCacheBytes: Int? {
        for index in (0...4).reversed() {
            let base = "/sys/devices/system/cpu/cpu0/cache/index\(index)/"
            guard let size = try? String(contentsOfFile: base + "size", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines),
                  let value = Int(size.dropLast()) else { continue }
            switch size.last {
            case "K": return value << 10
            case "M": return value << 20
            default: continue
            }
        }
        return nil
    }

    /// Median seconds per cached decoding step at `context` (the prompt read first, then `steps` single tokens).
    static func cachedStep(_ model: DecoderOnlyModel, context: Int, steps: Int, rng: inout SeededRNG) throws -> Double {
        let v = UInt64(model.vocabularySize)
        let prompt = (0..<(context - steps)).map { _ in Int(rng.next() % v) }
        var cacheState = model.makeCache()
        _ = try model.logits(appending: prompt, to: &cacheState)
        let clock = ContinuousClock()
        var samples: [Double] = []
        for _ in 0..<steps {
            let token = Int(rng.next() % v)
            let d = try clock.measure { _ = try model.logits(appending: [token], to: &cacheState) }
            samples.append(Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18)
        }
        samples.sort()
        return samples[samples.count / 2]
    }

    static func run() throws -> [Table] {
        let bandwidth = readBandwidth()
        recordedReadBandwidth = bandwidth
        let config = TransformerConfig.gpt2Small
        let contexts = [64, 256, 1024], cachedSteps = 16
        // The peer first: Hugging Face generate, greedy with the KV cache, one thread, the same contexts.
        let peer = PyTorchPeer.run(.init(decode: .init(contexts: contexts, steps: cachedSteps, threads: [1])))
        notePeer(peer, suite: "decode")
        var table = Table(title: "Decode: GPT-2-small shape (124M params, seeded weights), one core; the bandwidth bound is the bytes a cached step reads (the weights, and the cache's K and V at that context) ÷ one core's DRAM read bandwidth (a 1 GiB probe, beyond the L3), so a share of the weights the L3 keeps between tokens can put a step above it; " + peer.titleNote,
                          header: ["backend", "cache", "context", "ms/token", "tokens/s", "% of bandwidth bound", "HF generate tokens/s", "ours÷HF"])
        let paths: [KernelPath] = [.naive, .optimized]  // one core: the table's premise
        let models = try paths.map { try DecoderOnlyModel.seeded(config, seed: 1, path: $0) }
        let bf16Model = models[1].roundingWeightsToBF16()
        let bf16KVModel = bf16Model.storingKVCache(as: .bf16)
        let weightBytes = Double(models[1].bytesReadPerToken)
        let bf16Bytes = Double(bf16Model.bytesReadPerToken)
        // The bound of a cached step at a context: the bytes it reads at least (weights, the cache's K and V,
        // the new position's K and V written; DecoderOnlyModel.bytesPerToken(context:)) ÷ the read bandwidth.
        func bound(_ m: DecoderOnlyModel, _ context: Int) -> Double { bandwidth / Double(m.bytesPerToken(context: context)) }
        var bf16Table = Table(title: "Decode with bf16 weights (weight-only: activations and sums in Float) and with a bf16 KV cache too, GPT-2-small shape, KV cache, one core; each bound is the bytes that step reads (weights + K and V of the cache) ÷ the DRAM read bandwidth",
                              header: ["context", "fp32 tokens/s", "bf16 weights tokens/s", "bf16 weights + KV tokens/s", "bf16÷fp32", "bf16+KV÷fp32",
                                       "fp32 % of its bound", "bf16 % of its bound", "bf16+KV % of its bound", "MB per token fp32 / bf16 / bf16+KV"])
        var rng = SeededRNG(seed: 5)
        for (path, model) in zip(paths, models) {
            for context in contexts {
                for cache in [true, false] {
                    // The naive path runs ~100× slower: measure it only where a run takes seconds.
                    if path == .naive && (context > 64 || !cache) { continue }
                    if !cache && context > 256 { continue }
                    let steps = cache ? (path == .naive ? 2 : cachedSteps) : 2
                    let perToken: Double
                    if cache {
                        perToken = try cachedStep(model, context: context, steps: steps, rng: &rng)
                    } else {
                        var sequence = (0..<(context - steps)).map { _ in Int(rng.next() % UInt64(config.vocabularySize)) }
                        let clock = ContinuousClock()
                        var samples: [Double] = []
                        for _ in 0..<steps {
                            sequence.append(Int(rng.next() % UInt64(config.vocabularySize)))
                            let d = try clock.measure { _ = try model.logits(forSequence: sequence) }
                            samples.append(Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18)
                        }
                        samples.sort()
                        perToken = samples[samples.count / 2]
                    }
                    // HF generate's step at this context beside our cached optimized path (the same work per token).
                    let hf = path == .optimized && cache ? peer.value?.decode?.first { $0.context == context && $0.threads == 1 }?.seconds_per_token : nil
                    let fpBound = bound(model, context)
                    table.rows.append([path.rawValue, cache ? "on" : "off", "\(context)", ms(perToken),
                                       String(format: "%.1f", 1 / perToken), cache ? String(format: "%.0f%%", 100 / perToken / fpBound) : "—",
                                       hf.map { String(format: "%.1f", 1 / $0) } ?? "—", hf.map { ratio($0 / perToken) } ?? "—"])
                    if let hf {
                        recorded.append(Measurement(suite: "decode", kernel: "gpt2-small decode", variant: "hf-generate", shape: "context \(context)",
                                                    medianSeconds: hf, gflops: 2 * weightBytes / 4 / hf / 1e9, note: "transformers generate, greedy, KV cache, 1 thread",
                                                    bytes: weightBytes))
                        peerRatios.append(PeerRatio(suite: "decode", job: "GPT-2-small greedy decode, KV cache, context \(context), 1 thread (HF generate)",
                                                    ours: String(format: "%.1f tokens/s", 1 / perToken), pytorch: String(format: "%.1f tokens/s", 1 / hf),
                                                    ratio: hf / perToken))
                    }
                    recorded.append(Measurement(suite: "decode", kernel: "gpt2-small decode", variant: "\(path.rawValue)\(cache ? "" : "-nocache")",
                                                shape: "context \(context)", medianSeconds: perToken,
                                                // ≈ 2 flops per weight per token (the matrix-vector products); every weight read once
                                                gflops: cache ? 2 * weightBytes / 4 / perToken / 1e9 : nil, note: nil,
                                                bytes: cache ? Double(model.bytesPerToken(context: context)) : nil))
                    // On an AVX-512 build, the same model with the 256-bit GEMV (the width before it followed the build), same run.
                    if path == .optimized && cache && GEMVWidth.selected == .avx512 {
                        GEMVWidth.inUse = .avx2
                        defer { GEMVWidth.inUse = .selected }
                        let narrow = try cachedStep(model, context: context, steps: steps, rng: &rng)
                        table.rows.append(["optimized, 256-bit GEMV", "on", "\(context)", ms(narrow), String(format: "%.1f", 1 / narrow),
                                           String(format: "%.0f%%", 100 / narrow / fpBound), "—", "—"])
                        recorded.append(Measurement(suite: "decode", kernel: "gpt2-small decode", variant: "optimized-gemv256",
                                                    shape: "context \(context)", medianSeconds: narrow,
                                                    gflops: 2 * weightBytes / 4 / narrow / 1e9, note: "the GEMV at 256 bits on an AVX-512 build", bytes: weightBytes))
                    }
                    // The bf16 model right after the Float one at the same context (the same load on the machine).
                    if path == .optimized && cache {
                        let bf16 = try cachedStep(bf16Model, context: context, steps: steps, rng: &rng)
                        let bf16KV = try cachedStep(bf16KVModel, context: context, steps: steps, rng: &rng)
                        let (bBound, kvBound) = (bound(bf16Model, context), bound(bf16KVModel, context))
                        table.rows.append(["optimized, bf16 weights", "on", "\(context)", ms(bf16), String(format: "%.1f", 1 / bf16),
                                           String(format: "%.0f%% of the bf16 bound", 100 / bf16 / bBound),
                                           hf.map { String(format: "%.1f", 1 / $0) } ?? "—", hf.map { ratio($0 / bf16) } ?? "—"])
                        table.rows.append(["optimized, bf16 weights + bf16 KV cache", "on", "\(context)", ms(bf16KV), String(format: "%.1f", 1 / bf16KV),
                                           String(format: "%.0f%% of the bf16+KV bound", 100 / bf16KV / kvBound),
                                           hf.map { String(format: "%.1f", 1 / $0) } ?? "—", hf.map { ratio($0 / bf16KV) } ?? "—"])
                        bf16Table.rows.append(["\(context)", String(format: "%.1f", 1 / perToken), String(format: "%.1f", 1 / bf16),
                                               String(format: "%.1f", 1 / bf16KV), ratio(perToken / bf16), ratio(perToken / bf16KV),
                                               String(format: "%.0f%%", 100 / perToken / fpBound), String(format: "%.0f%%", 100 / bf16 / bBound),
                                               String(format: "%.0f%%", 100 / bf16KV / kvBound),
                                               [model, bf16Model, bf16KVModel].map { String(format: "%.0f", Double($0.bytesPerToken(context: context)) / 1e6) }.joined(separator: " / ")])
                        recorded.append(Measurement(suite: "decode", kernel: "gpt2-small decode", variant: "optimized-bf16",
                                                    shape: "context \(context)", medianSeconds: bf16,
                                                    gflops: 2 * weightBytes / 4 / bf16 / 1e9, note: "weight-only bf16, Float activations and sums",
                                                    bytes: Double(bf16Model.bytesPerToken(context: context))))
                        recorded.append(Measurement(suite: "decode", kernel: "gpt2-small decode", variant: "optimized-bf16-kv",
                                                    shape: "context \(context)", medianSeconds: bf16KV,
                                                    gflops: 2 * weightBytes / 4 / bf16KV / 1e9, note: "bf16 weights and bf16 KV cache, Float activations and sums",
                                                    bytes: Double(bf16KVModel.bytesPerToken(context: context))))
                    }
                }
            }
        }
        let l3 = lastLevelCacheBytes
        let l3Note = l3.map { String(format: "; the %.0f MB L3 could hold at most %.0f%% of them", Double($0) / 1e6, min(100, 100 * Double($0) / weightBytes)) } ?? ""
        let weightBound = bandwidth / weightBytes, bf16Bound = bandwidth / bf16Bytes
        table.rows.append(["bound (weights alone)", "", "", ms(1 / weightBound), String(format: "%.1f", weightBound),
                           String(format: "%.0f MB of weights at %.1f GB/s DRAM read (%.0f MB probe)", weightBytes / 1e6, bandwidth / 1e9,
                                  Double(probeBytes) / 1e6) + l3Note + "; each row's % is of its own bound: weights + the K, V it reads at its context", "", ""])
        table.rows.append(["bf16 bound (weights alone)", "", "", ms(1 / bf16Bound), String(format: "%.1f", bf16Bound),
                           String(format: "%.0f MB of weights (bf16 matrices, Float biases and norms) at the same bandwidth", bf16Bytes / 1e6), "", ""])
        return [table, bf16Table]
    }
}
