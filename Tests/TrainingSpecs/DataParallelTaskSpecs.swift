import DecoderSpec
import Foundation
import GSLOracle
import SpecSupport
import Testing

/// The data-parallel step of the three tasks the trainer serves beside the classifier, the language
/// model and translation: the GRU translator (`train translate --arch gru`), masked-LM pre-training
/// (`pretrain mlm`) and sequence classification (`finetune classify`, a GPT-style and a BERT-style
/// trunk), in process — so that the ThreadSanitizer pass (`scripts/sanitize`, whose TSAN_SUITES
/// matches `DataParallelSpecs`) sees their shards run concurrently; the CLI's kill -9 specs run them
/// on two threads in child processes, which that pass does not run.
extension DataParallelSpecs {
    /// The three tasks' steps, named, each with its δL (GradientCheck.swift: the rounding bound of a
    /// loss accumulated in Double from Float logits, here from the whole batch's logits).
    static func moreTasks() throws -> [(name: String, check: (String) throws -> Void, run: (Int) throws -> (loss: Double, gradient: [Float]))] {
        func entry<T: TrainingTask>(_ name: String, _ task: T, _ model: T.Model, δL: Double)
            -> (name: String, check: (String) throws -> Void, run: (Int) throws -> (loss: Double, gradient: [Float]))
        {
            (name, { try Self.checkAgainstOneThread(task, model, δL: δL, name: $0) }, { threads in
                let r = try DataParallel.lossAndGradient(task, model: model, examples: Array(0..<task.exampleCount), threads: threads)
                return (r.loss, r.gradient.flattenedParameters())
            })
        }
        let (g, gm) = try Self.gruSetup()
        let gb = try Seq2SeqBatch(pairs: g.pairs, bos: TranslationTokens.bos, eos: TranslationTokens.eos)
        let gruδL = lossNoiseBound(logits: try gm.logits(gb, path: .optimized), labelledRows: Array(0..<gb.labels.count))
        let m = try MaskedLMPretrainingSpecs.task(path: .optimized, step: 3), mm = try MaskedLMPretrainingSpecs.tinyModel(seed: 91)
        let (mb, ml) = try MaskedLMPretrainingSpecs.maskedBatch(m)
        let (mz, mrows) = try mm.logits(mb, labels: ml, path: .optimized)
        let (c, gpt) = try Self.sequenceClassifierSetup(ClassificationSpecs.decoder(seed: 301), pooling: .last)
        let (cbert, bert) = try Self.sequenceClassifierSetup(ClassificationSpecs.encoder(seed: 311), pooling: .mean)
        let cb = try ClassificationBatch(c.sequences)
        func classifierδL<Trunk: SequenceTrunk>(_ model: SequenceClassifier<Trunk>) throws -> Double {
            lossNoiseBound(logits: try model.logits(cb, path: .optimized), labelledRows: Array(c.targets.indices))
        }
        return [entry("GRU translation", g, gm, δL: gruδL),
                entry("masked LM", m, mm, δL: lossNoiseBound(logits: mz, labelledRows: Array(mrows.indices))),
                entry("sequence classifier, GPT-style (last token)", c, gpt, δL: try classifierδL(gpt)),
                entry("sequence classifier, BERT-style (mean)", cbert, bert, δL: try classifierδL(bert))]
    }

    static func gruSetup() throws -> (GRUTranslationTask, GRUTranslationModel) {
        let pairs: [(source: [Int], target: [Int])] = [([3, 4, 5, 2], [3, 5]), ([6, 2], [4, 4, 5]), ([5, 5, 3, 6, 2], [3])]
        return (GRUTranslationTask(pairs: pairs, loss: try CrossEntropyLoss(labelSmoothing: 0.1), path: .optimized),
                try GRUTranslationSpecs.tinyModel(seed: 121))
    }

    /// ClassificationSpecs' three sequences (lengths 5, 5, 3: shards {0, 2} and {1} on two threads,
    /// denominators 2 and 1) and its scaled-up one-layer trunks and head.
    static func sequenceClassifierSetup<Trunk: SequenceTrunk>(_ trunk: Trunk, pooling: SequencePooling) throws
        -> (SequenceClassificationTask<Trunk>, SequenceClassifier<Trunk>)
    {
        let task = try SequenceClassificationTask<Trunk>(sequences: ClassificationSpecs.sequences, targets: ClassificationSpecs.targets,
                                                                    loss: CrossEntropyLoss(), path: .optimized)
        return (task, try ClassificationSpecs.classifier(trunk, pooling: pooling, seed: 302))
    }

    /// The two-thread step against the one-thread step of the same batch. The two compute the same
    /// derivative; they differ only in how the sums over the batch's rows are grouped (per shard in
    /// Float, then Σ_k (n_k/N)·g_k in Double, rounded once) — so neither can be the reference of the
    /// other, and the bound is stated through one independent value both must meet: the numeric
    /// derivative n of the **one-thread** loss by `gsl_deriv_central` (LossGradientCheck, run once,
    /// on the one-thread gradient g₁). Its tolerance is τ₁ = e + 10⁻⁴·|g₁|, e being GSL's error
    /// estimate of n (its abserr plus the change to the next step of the ladder) and 10⁻⁴·|g| the
    /// budget for a Float gradient's rounding (GradientCheck.swift). The two-thread gradient g₂ is
    /// judged against the same n with τ₂ = e + 10⁻⁴·|g₂|. Both within their tolerance of one n gives,
    /// component-wise,
    ///
    ///     |g₂ − g₁| ≤ τ₁ + τ₂ = 2e + 10⁻⁴·(|g₁| + |g₂|)
    ///
    /// and the loss: each computed loss is within δL of the exact loss of its logits (the shards' δL_k
    /// weighed by n_k/N sum to the batch's δL), so |L₂ − L₁| ≤ 2δL. The batch must really be split
    /// (`DataParallel.step` returns Σ g̃² only then: a task without a `lossDenominator` trains on one
    /// thread whatever `threads` says) into shards of unequal denominators.
    static func checkAgainstOneThread<T: TrainingTask>(_ task: T, _ model: T.Model, δL: Double, name: String) throws {
        let all = Array(0..<task.exampleCount)
        let shards = DataParallel.shards(all, lengths: all.map(task.length(of:)), count: 2)
        let denominators = shards.map { task.lossDenominator(examples: $0) }
        #expect(denominators.count == 2 && denominators.allSatisfy { $0 != nil } && denominators[0] != denominators[1],
                "\(name): shards \(shards) should be uneven (denominators \(denominators))")
        let one = try task.lossAndGradient(model, examples: all)
        let two = try DataParallel.step(task, model: model, examples: all, threads: 2)
        #expect(two.squaredNorm != nil, "\(name): the batch was not split over 2 threads (the task reports no lossDenominator)")
        #expect(abs(two.loss - one.loss) <= 2 * δL, "\(name): |L(2 threads) − L(1)| = \(abs(two.loss - one.loss)) exceeds 2δL = \(2 * δL)")
        #expect(two.tokens == one.tokens)
        let g1 = one.gradient.flattenedParameters(), g2 = two.gradient.flattenedParameters()
        let check = LossGradientCheck()
        let r = check.run(parameters: model.flattenedParameters(), analytic: g1, lossNoise: δL, name: "\(name), 1 thread") { p in
            var m = model
            m.setFlattenedParameters(p)
            return try! task.lossAndGradient(m, examples: all).loss
        }
        #expect(r.verdict.passed, "\(r.verdict)")
        var outside2: [Int] = [], worst2 = 0.0, worstDirect = (ratio: 0.0, k: 0), differing = 0
        for k in g1.indices {
            let e = r.tolerance[k] - check.analyticRelative * abs(Double(g1[k]))
            let τ1 = r.tolerance[k], τ2 = e + check.analyticRelative * abs(Double(g2[k]))
            let d2 = abs(Double(g2[k]) - r.numeric[k])
            if !(d2 <= τ2) { outside2.append(k) }
            worst2 = max(worst2, d2 / τ2)
            let direct = abs(Double(g2[k]) - Double(g1[k])) / (τ1 + τ2)
            if !(direct <= worstDirect.ratio) { worstDirect = (direct, k) }
            if g1[k] != g2[k] { differing += 1 }
        }
        print(String(format: "data parallel %@: 2-thread gradient vs the 1-thread numeric derivative: worst |Δ|/τ₂ %.3f; |g₂ − g₁|/(τ₁ + τ₂) worst %.2e; %d of %d components differ in their bits; |L₂ − L₁| = %.2e (2δL = %.2e)",
                     name, worst2, worstDirect.ratio, differing, g1.count, abs(two.loss - one.loss), 2 * δL))
        #expect(outside2.isEmpty, "\(name): \(outside2.count) of \(g2.count) two-thread components outside τ₂ of gsl_deriv_central; first k = \(outside2.first ?? -1)")
        #expect(worstDirect.ratio <= 1, "\(name): component \(worstDirect.k): 1 thread \(g1[worstDirect.k]), 2 threads \(g2[worstDirect.k]); |Δ|/(τ₁ + τ₂) = \(worstDirect.ratio)")
    }

    @Test("Parallel step of the GRU translator, masked-LM pre-training and the sequence classifier (GPT- and BERT-style): 2 threads vs 1 within τ₁ + τ₂ of one gsl_deriv_central, loss within 2δL",
          arguments: ["GRU translation", "masked LM", "sequence classifier, GPT-style (last token)", "sequence classifier, BERT-style (mean)"])
    func moreTasksAgainstOneThread(name: String) throws {
        let entry = try #require(try Self.moreTasks().first { $0.name == name })
        try entry.check(name)
    }

    @Test("Bitwise reproducible for a thread count (GRU translation, masked LM, sequence classifiers): two runs give the same loss and gradient bits",
          arguments: [2, 3])
    func moreTasksReproducible(threads: Int) throws {
        for (name, _, run) in try Self.moreTasks() {
            let (a, b) = (try run(threads), try run(threads))
            #expect(a.loss.bitPattern == b.loss.bitPattern, "\(name), \(threads) threads: loss \(a.loss) then \(b.loss)")
            #expect(a.gradient.map(\.bitPattern) == b.gradient.map(\.bitPattern), "\(name), \(threads) threads: gradients differ between two runs")
        }
    }

    /// The sequence classifier's denominator: one per sequence whose target is not the ignore index
    /// (the [B, C] cross-entropy's mean), additive over a split; the loss of the whole batch is the
    /// shards' losses weighed by it (checked above through the 2-thread step).
    @Test("lossDenominator of sequence classification: the sequences its mean divides by, additive; finetune classify's batches split over threads")
    func sequenceClassificationDenominator() throws {
        let (c, model) = try Self.sequenceClassifierSetup(ClassificationSpecs.decoder(seed: 301), pooling: .last)
        #expect(c.lossDenominator(examples: [0, 1, 2]) == 3)
        #expect((c.lossDenominator(examples: [2]) ?? 0) + (c.lossDenominator(examples: [0, 1]) ?? 0) == 3)
        // L over the batch is the mean of per-sequence losses: (1·L({1}) + 2·L({0, 2}))/3 within 2δL.
        let whole = try c.lossAndGradient(model, examples: [0, 1, 2]).loss
        let parts = try (c.lossAndGradient(model, examples: [1]).loss + 2 * c.lossAndGradient(model, examples: [0, 2]).loss) / 3
        let δL = lossNoiseBound(logits: try model.logits(ClassificationBatch(c.sequences), path: .optimized), labelledRows: [0, 1, 2])
        #expect(abs(whole - parts) <= 2 * δL, "whole-batch loss \(whole), weighed shards \(parts)")
        #expect(try DataParallel.step(c, model: model, examples: [0, 1, 2], threads: 2).squaredNorm != nil)
    }
}
