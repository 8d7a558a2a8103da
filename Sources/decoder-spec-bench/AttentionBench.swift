import DecoderSpec
import Foundation

/// Suite `attention`: causal single-head attention, d = 64, T ∈ {512, 1024, 2048, 4096}:
/// naive (materialized T×T scores) vs optimized (fused, online softmax). Validate, then time.
///
/// Peak extra memory is computed from the allocations each path makes (excluding Q, K, V, O):
/// naive allocates the score matrix S [T, T] and the materialized mask M [T, T] (both Float) —
/// 8·T² bytes; the fused kernel allocates `FusedAttention.workspaceBytes(queries:dk:)`.
enum AttentionBench {
    static func run() throws -> [Table] {
        let d = 64, lengths = [512, 1024, 2048, 4096]
        // The fused kernel's register tile (chosen at build time, as the GEMM's) and the other one,
        // both timed by calling the kernel directly (no API checks), alternating, in this run.
        let tile = FusedAttentionTile.selected, other: FusedAttentionTile = tile == .avx512 ? .avx2 : .avx512
        print("fused attention register tile: \(tile.rawValue) (\(tile.queryBlock) queries × \(tile.columns) keys); "
              + "the other tile (\(other.rawValue), \(other.queryBlock) × \(other.columns)) is timed beside it")
        // The peer first: torch.nn.functional.scaled_dot_product_attention(is_causal: true), one thread.
        let peer = PyTorchPeer.run(.init(sdpa: .init(T: lengths, d: d, threads: [1])))
        notePeer(peer, suite: "attention")
        var table = Table(
            title: "attention — causal, single head, d = 64, one thread (ms, median); " + peer.titleNote,
            header: ["T", "naive ms", "optimized ms", "speed-up", "optimized GFLOP/s", "naive CPU ms", "optimized CPU ms", "CPU speed-up", "naive extra bytes", "optimized extra bytes", "max |opt − naive|",
                     "kernel, \(tile.rawValue) tile CPU ms (GFLOP/s)", "kernel, \(other.rawValue) tile CPU ms (GFLOP/s)", "\(tile.rawValue) ÷ \(other.rawValue)",
                     "PyTorch SDPA ms", "opt÷PyTorch"])
        for t in lengths {
            var rng = SeededRNG(seed: UInt64(t))
            let q = rng.matrix(rows: t, cols: d), k = rng.matrix(rows: t, cols: d), v = rng.matrix(rows: t, cols: d)
            let mask = AttentionMask.causal()

            // Validate: the two variants agree within twice the specs' attention bound
            // (|v| ≤ 1, |q|, |k| ≤ 1: e_s = 65·64/8·u, plus (3T + 8)·u; see Tests/AttentionSpecs).
            let naive = try scaledDotProductAttention(q: q, k: k, v: v, mask: mask, path: .naive)
            let fused = try scaledDotProductAttention(q: q, k: k, v: v, mask: mask, path: .optimized)
            let u = 0x1p-24
            let bound = 2 * (2 * 65.0 * 64 / 8 * u + Double(3 * t + 8) * u)
            var worst = 0.0
            for i in naive.storage.indices { worst = max(worst, Double(abs(naive.storage[i] - fused.storage[i]))) }
            guard worst <= bound else {
                throw DecoderSpecError.invalidArgument(what: "attention benchmark validation at T=\(t)",
                                                       reason: "optimized differs from naive by \(worst) > \(bound)")
            }

            // Both tiles through the kernel itself, validated like the API path, then timed in turn
            // (thread CPU time, medians of 5 samples ≥ 20 ms, the median of 3 alternating rounds).
            func kernel(_ which: FusedAttentionTile, into o: inout Matrix) {
                q.storage.withUnsafeBufferPointer { pq in k.storage.withUnsafeBufferPointer { pk in v.storage.withUnsafeBufferPointer { pv in
                    o.storage.withUnsafeMutableBufferPointer { po in
                        FusedAttention.forward(tile: which, q: pq.baseAddress!, ldq: d, k: pk.baseAddress!, ldk: d,
                                               v: pv.baseAddress!, ldv: d, out: po.baseAddress!, ldo: d,
                                               queries: t, keys: t, dk: d, dv: d, scale: 1 / Float(d).squareRoot(),
                                               causalOffset: 0, keyValidLength: t)
                    }
                } } }
            }
            var tileOut = Matrix(rows: t, cols: d)
            for which in [tile, other] {
                kernel(which, into: &tileOut)
                var e = 0.0
                for i in naive.storage.indices { e = max(e, Double(abs(naive.storage[i] - tileOut.storage[i]))) }
                guard e <= bound else {
                    throw DecoderSpecError.invalidArgument(what: "attention benchmark validation at T=\(t), \(which.rawValue) tile",
                                                           reason: "differs from naive by \(e) > \(bound)")
                }
            }
            var tTile: [Double] = [], tOther: [Double] = []
            for _ in 0..<3 {  // alternating, so a change in the machine's load hits both alike; thread CPU time
                tTile.append(medianThreadCPUSeconds(runs: 5) { kernel(tile, into: &tileOut) })
                tOther.append(medianThreadCPUSeconds(runs: 5) { kernel(other, into: &tileOut) })
            }
            let tTileKernel = tTile.sorted()[1], tOtherKernel = tOther.sorted()[1]

            let naiveRuns = t >= 2048 ? 3 : 5
            let tNaive = Harness.median(warmup: 1, runs: naiveRuns) {
                _ = try! scaledDotProductAttention(q: q, k: k, v: v, mask: mask, path: .naive)
            }
            let tFused = Harness.medianAdaptive(minSeconds: 0.05, runs: 9) {
                _ = try! scaledDotProductAttention(q: q, k: k, v: v, mask: mask, path: .optimized)
            }
            // The machine is shared: thread CPU time (median) is immune to being descheduled.
            let cpuNaive = medianThreadCPUSeconds(runs: 3) {
                _ = try! scaledDotProductAttention(q: q, k: k, v: v, mask: mask, path: .naive)
            }
            let cpuFused = medianThreadCPUSeconds(runs: 9) {
                _ = try! scaledDotProductAttention(q: q, k: k, v: v, mask: mask, path: .optimized)
            }
            // Useful work of causal attention: Σ_i (i + 1) keys per query, 2·d flops each for Q·Kᵀ and for P·V.
            let flops = 4.0 * Double(d) * Double(t) * Double(t + 1) / 2
            let naiveBytes = 2 * t * t * MemoryLayout<Float>.stride
            let fusedBytes = FusedAttention.workspaceBytes(queries: t, dk: d)
            let tTorch = peer.value?.sdpa?.first { $0.T == t && $0.threads == 1 }?.seconds
            table.rows.append([
                "\(t)", ms(tNaive), ms(tFused), ratio(tNaive / tFused), String(format: "%.1f", flops / tFused / 1e9), ms(cpuNaive), ms(cpuFused), ratio(cpuNaive / cpuFused),
                bytes(naiveBytes), bytes(fusedBytes), String(format: "%.1e", worst),
                "\(ms(tTileKernel)) (\(String(format: "%.1f", flops / tTileKernel / 1e9)))",
                "\(ms(tOtherKernel)) (\(String(format: "%.1f", flops / tOtherKernel / 1e9)))", String(format: "%.2f×", tOtherKernel / tTileKernel),
                tTorch.map(ms) ?? "—", tTorch.map { ratio($0 / tFused) } ?? "—",
            ])
            let shape = "T=\(t) d=64 causal"
            let ioBytes = Double(4 * t * d * 4)  // Q, K, V read, O written
            if let tTorch {
                recorded.append(Measurement(suite: "attention", kernel: "sdpa-causal", variant: "pytorch", shape: shape, medianSeconds: tTorch,
                                            gflops: flops / tTorch / 1e9, note: "torch.nn.functional.scaled_dot_product_attention, 1 thread", bytes: ioBytes))
                peerRatios.append(PeerRatio(suite: "attention", job: "causal attention T \(t), d 64, 1 thread (SDPA)",
                                            ours: String(format: "%.1f GFLOP/s", flops / tFused / 1e9), pytorch: String(format: "%.1f GFLOP/s", flops / tTorch / 1e9),
                                            ratio: tTorch / tFused))
            }
            recorded.append(Measurement(suite: "attention", kernel: "sdpa-causal", variant: "kernel-\(tile.rawValue)-tile", shape: shape,
                                        medianSeconds: tTileKernel, gflops: flops / tTileKernel / 1e9,
                                        note: "FusedAttention.forward directly, the selected \(tile.queryBlock)×\(tile.columns) tile; thread CPU time", bytes: ioBytes))
            recorded.append(Measurement(suite: "attention", kernel: "sdpa-causal", variant: "kernel-\(other.rawValue)-tile", shape: shape,
                                        medianSeconds: tOtherKernel, gflops: flops / tOtherKernel / 1e9,
                                        note: "FusedAttention.forward directly, the other \(other.queryBlock)×\(other.columns) tile; thread CPU time", bytes: ioBytes))
            recorded.append(Measurement(suite: "attention", kernel: "sdpa-causal", variant: "naive", shape: shape,
                                        medianSeconds: tNaive, gflops: flops / tNaive / 1e9, note: "extra \(naiveBytes) B", bytes: ioBytes))
            recorded.append(Measurement(suite: "attention", kernel: "sdpa-causal", variant: "optimized", shape: shape,
                                        medianSeconds: tFused, gflops: flops / tFused / 1e9,
                                        note: "extra \(fusedBytes) B; thread CPU median \(ms(cpuFused)) ms", bytes: ioBytes))
        }
        return [table, try decodeStep()]
    }

    /// A KV-cache decoding step: one new query over T cached keys (mask .causal(queryOffset: T − 1),
    /// i.e. every key visible), d = 64 — the shape a decoder loop calls once per token and head.
    static func decodeStep() throws -> Table {
        let d = 64
        var table = Table(title: "attention — KV-cache step: 1 query over T cached keys, d = 64, one thread (µs, median)",
                          header: ["T", "naive µs", "optimized µs", "speed-up", "optimized CPU µs", "max |opt − naive|"])
        for t in [512, 1024, 2048, 4096] {
            var rng = SeededRNG(seed: UInt64(t) + 7)
            let q = rng.matrix(rows: 1, cols: d), k = rng.matrix(rows: t, cols: d), v = rng.matrix(rows: t, cols: d)
            let mask = AttentionMask.causal(queryOffset: t - 1)
            let naive = try attend(q: q, cachedK: k, cachedV: v, mask: mask, path: .naive)
            let fused = try attend(q: q, cachedK: k, cachedV: v, mask: mask, path: .optimized)
            let u = 0x1p-24
            let bound = 2 * (2 * 65.0 * 64 / 8 * u + Double(3 * t + 8) * u)
            var worst = 0.0
            for i in naive.storage.indices { worst = max(worst, Double(abs(naive.storage[i] - fused.storage[i]))) }
            guard worst <= bound else {
                throw DecoderSpecError.invalidArgument(what: "KV-step benchmark validation at T=\(t)",
                                                       reason: "optimized differs from naive by \(worst) > \(bound)")
            }
            let tNaive = Harness.medianAdaptive { _ = try! attend(q: q, cachedK: k, cachedV: v, mask: mask, path: .naive) }
            let tFused = Harness.medianAdaptive { _ = try! attend(q: q, cachedK: k, cachedV: v, mask: mask, path: .optimized) }
            let cpuFused = medianThreadCPUSeconds(runs: 9) { _ = try! attend(q: q, cachedK: k, cachedV: v, mask: mask, path: .optimized) }
            table.rows.append(["\(t)", String(format: "%.1f", tNaive * 1e6), String(format: "%.1f", tFused * 1e6), ratio(tNaive / tFused),
                               String(format: "%.1f", cpuFused * 1e6), String(format: "%.1e", worst)])
            // One query over t keys: 2·d flops for q·kⱼ and 2·d for the weighted sum of vⱼ; K and V read once.
            let stepFlops = 4.0 * Double(d * t), stepBytes = Double(2 * t * d * 4)
            recorded.append(Measurement(suite: "attention", kernel: "kv-step", variant: "naive", shape: "Tq=1 Tk=\(t) d=64",
                                        medianSeconds: tNaive, gflops: stepFlops / tNaive / 1e9, note: nil, bytes: stepBytes))
            recorded.append(Measurement(suite: "attention", kernel: "kv-step", variant: "optimized", shape: "Tq=1 Tk=\(t) d=64",
                                        medianSeconds: tFused, gflops: stepFlops / tFused / 1e9,
                                        note: "thread CPU median \(String(format: "%.1f", cpuFused * 1e6)) µs", bytes: stepBytes))
        }
        return table
    }

    /// Median thread CPU time (CLOCK_THREAD_CPUTIME_ID) of `body`, after one warm-up run, with
    /// enough repetitions per sample to last ≥ 20 ms.
    static func medianThreadCPUSeconds(runs: Int, _ body: () -> Void) -> Double {
        func now() -> Double {
            var ts = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
            return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
        }
        body()
        let t0 = now()
        body()
        let once = max(now() - t0, 1e-9)
        let reps = max(1, Int((0.02 / once).rounded(.up)))
        var samples: [Double] = []
        for _ in 0..<runs {
            let start = now()
            for _ in 0..<reps { body() }
            samples.append((now() - start) / Double(reps))
        }
        samples.sort()
        return samples[samples.count / 2]
    }

    static func bytes(_ n: Int) -> String {
        if n >= 1 << 20 { return String(format: "%.1f MiB", Double(n) / Double(1 << 20)) }
        return String(format: "%.1f KiB", Double(n) / 1024)
    }
}
