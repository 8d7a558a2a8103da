import DecoderSpec
import Foundation

/// Suite `training-gemm` (run by name only): every matrix product of a MiniLM NER training step,
/// on each of the `training` suite's batches (32 sentences, `finetune ner`'s plan, one thread),
/// recorded by a `KernelRecorder` as the steps run, grouped by shape (m × n × k, which operand is
/// transposed, strides, β ≠ 0), and each shape timed alone on our `.optimized` GEMM and on OpenBLAS
/// (one thread, same strides); per-step sums by kind of product say which products lose and how
/// much of the step is GEMM. Then the step's phases at 1 and 2 threads: the loss and gradient, the
/// norm, a clipping pass, AdamW (with the clip factor in its pass), each shard alone. The shapes
/// are written to `.build-release/training-gemm-shapes.json` for scripts/bench-gemm-shapes.py
/// (the same shapes on torch.mm and numpy). docs/training.md, "The step's matrix products".
enum TrainingGEMMBench {
    struct Group: Hashable, Codable {
        var transA: Bool, transB: Bool, m: Int, n: Int, k: Int, lda: Int, ldb: Int, ldc: Int, accumulate: Bool
    }

    static func category(_ g: Group, tokens: [Int], headWidth dh: Int) -> String {
        switch (g.transA, g.transB) {
        case (false, true) where tokens.contains(g.m): return "linear forward x·Wᵀ"
        case (false, false) where tokens.contains(g.m): return "linear backward-data dY·W"
        case (true, false) where tokens.contains(g.k): return "linear backward-weight dYᵀ·x"
        case (false, true) where g.k == dh: return "attention S = Q·Kᵀ, dP = dH·Vᵀ"
        case (false, false) where g.n == dh: return "attention P·V, dS·K"
        case (true, false) where g.n == dh: return "attention Pᵀ·dH, dSᵀ·Q"
        default: return "other"
        }
    }

    static func run() throws -> [Table] {
        TrainingBench.keepFreedMemoryForReuse()
        print("load average at start (1, 5, 15 min): \(loadAverage)")
        guard let job = try TrainingBench.nerJob() else { return [] }
        let batches = job.batches
        let steps = Double(batches.count)
        let tokenCounts = batches.map { b in b.reduce(0) { $0 + job.task.examples[$1].ids.count } }
        let tokens = tokenCounts.reduce(0, +)
        let dh = job.model.encoder.config.modelWidth / job.model.encoder.config.heads
        // Record every GEMM call of one step.
        let recorder = KernelRecorder()
        for batch in batches { _ = try recorder.recording { try DataParallel.step(job.task, model: job.model, examples: batch, threads: 1) } }
        var counts: [Group: Int] = [:]
        for c in recorder.gemmCalls {
            counts[Group(transA: c.transA, transB: c.transB, m: c.m, n: c.n, k: c.k, lda: c.lda, ldb: c.ldb, ldc: c.ldc, accumulate: c.accumulate), default: 0] += 1
        }
        print("training-gemm: \(batches.count) batches of \(batches.map { String($0.count) }.joined(separator: ", ")) sentences, \(tokenCounts) sub-tokens; \(recorder.gemmCalls.count) GEMM calls in \(counts.count) shapes")
        struct Entry: Codable { var group: Group; var count: Int; var category: String }
        let data = try JSONEncoder().encode(counts.map { Entry(group: $0.key, count: $0.value, category: category($0.key, tokens: tokenCounts, headWidth: dh)) })
        try data.write(to: URL(fileURLWithPath: ".build-release/training-gemm-shapes.json"))
        // Time each shape alone.
        OpenBLAS.shared?.setThreads?(1)
        struct Timed { var group: Group; var count: Int; var ours: Double; var blas: Double? }
        var timed: [Timed] = []
        for (g, count) in counts.sorted(by: { $0.key.m * $0.key.n * $0.key.k * $0.value > $1.key.m * $1.key.n * $1.key.k * $1.value }) {
            let aCount = (g.transA ? g.k : g.m) * g.lda, bCount = (g.transB ? g.n : g.k) * g.ldb, cCount = g.m * g.ldc
            var rng = SeededRNG(seed: 7)
            let a = (0..<aCount).map { _ in Float.random(in: -1...1, using: &rng) }
            let b = (0..<bCount).map { _ in Float.random(in: -1...1, using: &rng) }
            var c = [Float](repeating: 0, count: cCount)
            let beta: Float = g.accumulate ? 1 : 0
            let ours = a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                Harness.medianAdaptive(minSeconds: 0.004, runs: 5) {
                    GEMM.sgemm(.optimized, transA: g.transA, transB: g.transB, m: g.m, n: g.n, k: g.k, a: pa.baseAddress!, lda: g.lda,
                               b: pb.baseAddress!, ldb: g.ldb, beta: beta, c: pc.baseAddress!, ldc: g.ldc)
                }
            } } }
            var blas: Double?
            if let ob = OpenBLAS.shared {
                blas = a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                    Harness.medianAdaptive(minSeconds: 0.004, runs: 5) {
                        ob.sgemm(OpenBLAS.rowMajor, g.transA ? Int32(112) : OpenBLAS.noTrans, g.transB ? Int32(112) : OpenBLAS.noTrans,
                                 Int32(g.m), Int32(g.n), Int32(g.k), 1, pa.baseAddress!, Int32(g.lda), pb.baseAddress!, Int32(g.ldb), beta, pc.baseAddress!, Int32(g.ldc))
                    }
                } } }
            }
            timed.append(Timed(group: g, count: count, ours: ours, blas: blas))
        }
        // Group by category.
        var rows: [[String]] = []
        var byCategory: [String: (calls: Int, flops: Double, ours: Double, blas: Double)] = [:]
        for t in timed {
            let name = category(t.group, tokens: tokenCounts, headWidth: dh)
            var e = byCategory[name] ?? (0, 0, 0, 0)
            e.calls += t.count
            e.flops += 2 * Double(t.group.m * t.group.n * t.group.k * t.count) / steps
            e.ours += t.ours * Double(t.count) / steps
            e.blas += (t.blas ?? .nan) * Double(t.count) / steps
            byCategory[name] = e
        }
        let oursTotal = byCategory.values.reduce(0) { $0 + $1.ours }, blasTotal = byCategory.values.reduce(0) { $0 + $1.blas }
        for (name, e) in byCategory.sorted(by: { $0.value.ours > $1.value.ours }) {
            rows.append([name, String(format: "%.0f", Double(e.calls) / steps), String(format: "%.2f", e.flops / 1e9), String(format: "%.1f", e.ours * 1e3), String(format: "%.1f", e.blas * 1e3),
                         String(format: "%.2f", e.blas / e.ours), String(format: "%.1f", e.flops / e.ours / 1e9), String(format: "%.1f", e.flops / e.blas / 1e9)])
        }
        rows.append(["all GEMM", String(format: "%.0f", Double(recorder.gemmCalls.count) / steps), String(format: "%.2f", byCategory.values.reduce(0) { $0 + $1.flops } / 1e9),
                     String(format: "%.1f", oursTotal * 1e3), String(format: "%.1f", blasTotal * 1e3), String(format: "%.2f", blasTotal / oursTotal), "", ""])
        // The step's phases.
        let clock = ContinuousClock()
        func med(_ runs: Int = 3, _ body: () throws -> Void) rethrows -> Double {
            var s: [Double] = []
            for _ in 0..<runs { s.append(try clock.measure { try body() }.seconds) }
            s.sort()
            return s[s.count / 2]
        }
        var phase: [[String]] = []
        for threads in [1, 2] {
            var model = job.model
            var optimizer = try AdamW()
            var result = try DataParallel.step(job.task, model: model, examples: batches[0], threads: threads)
            let lossAndGradient = try med { for batch in batches { result = try DataParallel.step(job.task, model: model, examples: batch, threads: threads) } } / steps
            var gradient = result.gradient
            let norm = med { _ = GradientClipping.globalNorm(gradient, threads: threads) }
            let knownNorm = GradientClipping.globalNorm(gradient, threads: threads)
            // A clipping pass of its own (forced: maxNorm below the norm), as the trainer ran it before.
            let clip = med { _ = GradientClipping.clip(&gradient, maxNorm: knownNorm / 2, knownNorm: knownNorm, threads: threads) }
            let update = med { optimizer.update(&model, gradient: gradient, learningRate: 1e-6, threads: threads, gradientScale: 0.5) }
            phase.append(["\(threads)", "loss and gradient (DataParallel.step)", String(format: "%.1f", lossAndGradient * 1e3)])
            phase.append(["\(threads)", threads == 1 ? "gradient norm (a pass of its own)" : "gradient norm (not run: from the combination's pass)", String(format: "%.1f", norm * 1e3)])
            phase.append(["\(threads)", "clipping as a pass of its own (before)", String(format: "%.1f", clip * 1e3)])
            phase.append(["\(threads)", "AdamW with the clip factor in its pass", String(format: "%.1f", update * 1e3)])
            if threads == 2 {
                var alone = [0.0, 0.0], slower = 0.0
                for batch in batches {
                    let shards = DataParallel.shards(batch, lengths: batch.map(job.task.length(of:)), count: 2)
                    var t: [Double] = []
                    for s in shards { t.append(try med { _ = try job.task.lossAndGradient(job.model, examples: s) }) }
                    for i in t.indices { alone[i] += t[i] / steps }
                    slower += (t.max() ?? 0) / steps
                }
                phase.append(["2", "shard 0 / shard 1 alone on one thread", String(format: "%.1f / %.1f", alone[0] * 1e3, alone[1] * 1e3)])
                phase.append(["2", "the slower shard alone (the step's floor without contention)", String(format: "%.1f", slower * 1e3)])
            }
        }
        print("load average at end: \(loadAverage)")
        return [
            Table(title: "Training GEMM — every product of a MiniLM NER step (mean of the training suite's \(batches.count) batches, \(tokens / batches.count) sub-tokens per step), each shape timed alone, 1 thread; ms per step",
                  header: ["products", "calls", "GFLOP", "ours ms", "OpenBLAS ms", "ours÷OpenBLAS speed", "ours GFLOP/s", "OpenBLAS GFLOP/s"], rows: rows),
            Table(title: "Training step phases (the same batches; ms per step, medians of 3), load at end \(loadAverage)", header: ["threads", "phase", "ms"], rows: phase),
        ]
    }
}
