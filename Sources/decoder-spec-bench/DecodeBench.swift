import DecoderSpec
import Foundation

/// Decode speed of a GPT-2-small-shaped model (124M parameters, seeded random weights, no
/// download): tokens/s with and without the KV cache at several context lengths, both backends,
/// beside the memory-bandwidth bound (every weight byte is read once per cached token).
enum DecodeBench {
    /// Read bandwidth of one core: SIMD sum over a buffer much larger than the caches.
    static func readBandwidth() -> Double {
        let count = 64 << 20  // 256 MB of Float
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
        defer { buffer.deallocate() }
        for i in 0..<count { buffer[i] = Float(i & 7) }
        var sink: Float = 0
        let seconds = Harness.median(warmup: 1, runs: 5) {
            let p = UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: SIMD8<Float>.self)
            var a = SIMD8<Float>(), b = SIMD8<Float>(), c = SIMD8<Float>(), d = SIMD8<Float>()
            var i = 0
            while i < count / 8 {
                a += p[i]; b += p[i + 1]; c += p[i + 2]; d += p[i + 3]
                i += 4
            }
            sink += (a + b + c + d).sum()
        }
        if sink == .infinity { print("") }
        return Double(count * 4) / seconds
    }

    static func run() throws -> [Table] {
        let bandwidth = readBandwidth()
        recordedReadBandwidth = bandwidth
        let config = TransformerConfig.gpt2Small
        let contexts = [64, 256, 1024], cachedSteps = 16
        // The peer first: Hugging Face generate, greedy with the KV cache, one thread, the same contexts.
        let peer = PyTorchPeer.run(.init(decode: .init(contexts: contexts, steps: cachedSteps, threads: [1])))
        notePeer(peer, suite: "decode")
        var table = Table(title: "Decode: GPT-2-small shape (124M params, seeded weights), one core; " + peer.titleNote,
                          header: ["backend", "cache", "context", "ms/token", "tokens/s", "% of bandwidth bound", "HF generate tokens/s", "ours÷HF"])
        let paths: [KernelPath] = [.naive, .optimized]  // one core: the table's premise
        let models = try paths.map { try DecoderOnlyModel.seeded(config, seed: 1, path: $0) }
        let weightBytes = Double(models[1].parameterCount * 4)
        let bound = bandwidth / weightBytes
        var rng = SeededRNG(seed: 5)
        for (path, model) in zip(paths, models) {
            for context in contexts {
                for cache in [true, false] {
                    // The naive path runs ~100× slower: measure it only where a run takes seconds.
                    if path == .naive && (context > 64 || !cache) { continue }
                    if !cache && context > 256 { continue }
                    let steps = cache ? (path == .naive ? 2 : cachedSteps) : 2
                    let prompt = (0..<(context - steps)).map { _ in Int(rng.next() % UInt64(config.vocabularySize)) }
                    var cacheState = model.makeCache()
                    _ = try model.logits(appending: prompt, to: &cacheState)
                    var sequence = prompt
                    let clock = ContinuousClock()
                    var samples: [Double] = []
                    for _ in 0..<steps {
                        let token = Int(rng.next() % UInt64(config.vocabularySize))
                        let d = try clock.measure {
                            if cache { _ = try model.logits(appending: [token], to: &cacheState) }
                            else { sequence.append(token); _ = try model.logits(forSequence: sequence) }
                        }
                        samples.append(Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18)
                    }
                    samples.sort()
                    let perToken = samples[samples.count / 2]
                    // HF generate's step at this context beside our cached optimized path (the same work per token).
                    let hf = path == .optimized && cache ? peer.value?.decode?.first { $0.context == context && $0.threads == 1 }?.seconds_per_token : nil
                    table.rows.append([path.rawValue, cache ? "on" : "off", "\(context)", ms(perToken),
                                       String(format: "%.1f", 1 / perToken), String(format: "%.0f%%", 100 / perToken / bound),
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
                                                gflops: cache ? 2 * weightBytes / 4 / perToken / 1e9 : nil, note: nil, bytes: cache ? weightBytes : nil))
                }
            }
        }
        table.rows.append(["bound", "", "", ms(1 / bound), String(format: "%.1f", bound),
                           String(format: "%.0f MB of weights at %.1f GB/s read", weightBytes / 1e6, bandwidth / 1e9), "", ""])
        return [table]
    }
}
