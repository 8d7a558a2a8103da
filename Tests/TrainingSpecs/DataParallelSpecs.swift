import DecoderSpec
import Foundation
import GSLOracle
import SpecSupport
import Testing

/// A task whose loss and gradient are exact in Double, so the combination of shards can be checked
/// against a closed form to the last bit the error model allows. Example e has rows r, each either
/// labelled or ignored (as a padding or continuation sub-token is); a labelled row has a target
/// t_r ∈ Float^P and the loss ℓ_r(θ) = ½‖θ − t_r‖². The task's loss is the mean over the N labelled
/// rows of its batch:
///
///     L = (1/N)·Σ_r ½‖θ − t_r‖²,   ∂L/∂θ_j = (1/N)·Σ_r (θ_j − t_rj)
///
/// computed in Double and rounded once to Float; an example without a labelled row adds 0 to both
/// (as `CrossEntropyLoss` does for a batch with none). P = 3 + 70,001: the second tensor is cut into
/// chunks by `DataParallel.combine` (≥ 2¹⁶ elements), the first is not.
struct QuadraticTask: TrainingTask {
    struct Model: ParameterContainer {
        var a: [Float]
        var b: [Float]
        mutating func visitParameters(prefix: String, _ body: (String, [Int], inout [Float]) throws -> Void) rethrows {
            try body("a", [a.count], &a)
            try body("b", [b.count], &b)
        }
        var flat: [Double] { (a + b).map(Double.init) }
    }

    /// labelled[e][r]: whether row r of example e counts.
    let labelled: [[Bool]]
    /// targets[e][r]: t_r (P values), for every row (ignored rows' targets are never read).
    let targets: [[[Float]]]
    static let sizes = (a: 3, b: 70_001)

    init(labelled: [[Bool]], seed: UInt) {
        self.labelled = labelled
        let rng = GSLRandom(seed: seed)
        let p = Self.sizes.a + Self.sizes.b
        targets = labelled.map { rows in rows.map { _ in (0..<p).map { _ in Float(rng.gaussian()) } } }
    }

    static func model(seed: UInt) -> Model {
        let rng = GSLRandom(seed: seed)
        return Model(a: (0..<sizes.a).map { _ in Float(rng.gaussian()) }, b: (0..<sizes.b).map { _ in Float(rng.gaussian()) })
    }

    var exampleCount: Int { labelled.count }
    func length(of example: Int) -> Int { labelled[example].count }

    func lossDenominator(examples: [Int]) -> Int? {
        examples.reduce(0) { $0 + labelled[$1].filter { $0 }.count }
    }

    /// The closed form in Double: L, ∂L/∂θ, and A_j = (1/N)·Σ_r |θ_j − t_rj| (the scale of the rounding).
    func exact(_ model: Model, examples: [Int]) -> (loss: Double, gradient: [Double], scale: [Double]) {
        let θ = model.flat
        var loss = 0.0, g = [Double](repeating: 0, count: θ.count), scale = g, n = 0
        for e in examples {
            for (r, on) in labelled[e].enumerated() where on {
                n += 1
                for j in θ.indices {
                    let d = θ[j] - Double(targets[e][r][j])  // exact: a difference of two Floats in Double
                    loss += 0.5 * d * d
                    g[j] += d
                    scale[j] += abs(d)
                }
            }
        }
        guard n > 0 else { return (0, g, scale) }
        let inv = 1 / Double(n)
        return (loss * inv, g.map { $0 * inv }, scale.map { $0 * inv })
    }

    func lossAndGradient(_ model: Model, examples: [Int]) throws -> (loss: Double, gradient: Model, tokens: Int) {
        let (loss, g, _) = exact(model, examples: examples)
        let f = g.map { Float($0) }
        return (loss, Model(a: Array(f[0..<Self.sizes.a]), b: Array(f[Self.sizes.a...])), examples.reduce(0) { $0 + labelled[$1].count })
    }

    func validate(_ model: Model) throws -> Validation? { nil }
}

/// A task whose denominator is not additive: one more than its examples' labelled rows, for any set.
struct NonAdditiveTask: TrainingTask {
    var inner: QuadraticTask
    var exampleCount: Int { inner.exampleCount }
    func length(of example: Int) -> Int { inner.length(of: example) }
    func lossDenominator(examples: [Int]) -> Int? { inner.lossDenominator(examples: examples)! + 1 }
    func lossAndGradient(_ model: QuadraticTask.Model, examples: [Int]) throws -> (loss: Double, gradient: QuadraticTask.Model, tokens: Int) {
        try inner.lossAndGradient(model, examples: examples)
    }
    func validate(_ model: QuadraticTask.Model) throws -> Validation? { nil }
}

/// A token classifier on explicit (ids, targets) sentences: the NER step on ModelGradientSpecs'
/// tiny classifier (a vocabulary of 9, every parameter with a gradient well above Float noise), so
/// the whole-model gradient check applies. Its denominator is NERTask's: targets ≠ the ignore index.
struct ClassifierTask: TrainingTask {
    var sentences: [(ids: [Int], targets: [Int])]
    var loss: CrossEntropyLoss
    var path: KernelPath
    var exampleCount: Int { sentences.count }
    func length(of example: Int) -> Int { sentences[example].ids.count }
    func lossDenominator(examples: [Int]) -> Int? {
        examples.reduce(0) { n, e in n + sentences[e].targets.filter { $0 != loss.ignoreIndex }.count }
    }
    func batch(_ examples: [Int]) throws -> (PackedBatch, [Int]) {
        (try PackedBatch(examples.map { sentences[$0].ids }), examples.flatMap { sentences[$0].targets })
    }
    func lossAndGradient(_ model: TokenClassifier, examples: [Int]) throws -> (loss: Double, gradient: TokenClassifier, tokens: Int) {
        let (b, t) = try batch(examples)
        let r = try model.lossAndGradient(b, targets: t, loss: loss, path: path)
        return (r.loss, r.gradient, b.tokenCount)
    }
    func validate(_ model: TokenClassifier) throws -> Validation? { nil }
}

/// Data parallelism over the batch (`DataParallel`, `TrainingOptions.threads`): shards, the
/// weighted combination against a closed form, the real tasks' parallel gradients against GSL, the
/// tasks' denominators, bitwise reproducibility. See docs/training.md ("Both cores").
@Suite("Data parallelism: shards, weighted combination vs closed form, parallel gradients vs gsl_deriv_central, reproducibility")
struct DataParallelSpecs {
    /// Uneven examples: 7, 3, 4, 1, 11 and 2 rows with 7, 2, 0, 1, 10 and 2 labelled rows.
    static let rows: [[Bool]] = [
        Array(repeating: true, count: 7), [true, false, true], [false, false, false, false], [true],
        Array(repeating: true, count: 5) + [false] + Array(repeating: true, count: 5), [true, true],
    ]
    static let batch = [4, 2, 0, 5, 1, 3]

    @Test("Shards: a partition of the batch, each in batch order, at most `count`, loads within one example's length of each other, deterministic")
    func shards() {
        var rng = SeededRNG(seed: 17)
        for trial in 0..<200 {
            let n = 1 + Int(rng.next() % 40)
            let examples = (0..<n).map { _ in Int(rng.next() % 1000) }.distinct()
            let lengths = examples.map { _ in Int(rng.next() % 60) }
            let count = 1 + Int(rng.next() % 6)
            let shards = DataParallel.shards(examples, lengths: lengths, count: count)
            let context = "trial \(trial): \(examples.count) examples, count \(count)"
            #expect(shards.count == min(count, examples.count), "\(context)")
            #expect(shards.allSatisfy { !$0.isEmpty }, "\(context)")
            #expect(shards.joined().sorted() == examples.sorted(), "\(context): not a partition")
            let position = Dictionary(uniqueKeysWithValues: examples.enumerated().map { ($1, $0) })
            #expect(shards.allSatisfy { s in zip(s, s.dropFirst()).allSatisfy { position[$0]! < position[$1]! } }, "\(context): batch order lost")
            // Greedy (longest first, to the lightest shard): the heaviest shard was the lightest when
            // it took its last example, so max load ≤ min load + the longest example.
            let loads = shards.map { s in s.reduce(0) { $0 + max(1, lengths[position[$1]!]) } }
            #expect(loads.max()! <= loads.min()! + max(1, lengths.max()!), "\(context): loads \(loads)")
            #expect(shards == DataParallel.shards(examples, lengths: lengths, count: count), "\(context)")
        }
    }

    /// Error model (u = 2⁻²⁴). Shard k's mean D_k = (1/n_k)·Σ_{r∈k}(θ − t_r) is computed in Double
    /// (relative error ≤ (n_k + 1)·2⁻⁵³ of its absolute sum) and rounded once to Float (≤ u·|D_k|);
    /// the trainer forms Σ_k (n_k/N)·g_k in Double (≤ (K + 1)·2⁻⁵³ of Σ_k (n_k/N)·|g_k|) and rounds it
    /// once (≤ u·|result|). With Σ_k (n_k/N)·|D_k| ≤ A = (1/N)·Σ_r |θ − t_r|, per component:
    ///
    ///     |g̃_j − ∂L/∂θ_j| ≤ u·|∂L/∂θ_j| + (u + 2⁻⁴⁰)·A_j
    ///
    /// where 2⁻⁴⁰ covers the Double terms ((N + K + 4)·2⁻⁵³ ≤ 2⁻⁴⁷ here) and the product of two u's.
    /// The loss, Σ_k (n_k/N)·L_k of non-negative terms in Double: |L̃ − L| ≤ 2⁻⁴⁰·L. A plain mean of
    /// the shards' means (weights 1/K) is off by ~|D₁ − D₂|, about 10⁶ times that bound.
    @Test("Combined loss and gradient = the whole batch's closed form, uneven shards and one with no labelled row", arguments: [1, 2, 3, 6, 8])
    func combinationMatchesClosedForm(threads: Int) throws {
        let task = QuadraticTask(labelled: Self.rows, seed: 31)
        let model = QuadraticTask.model(seed: 32)
        let shards = DataParallel.shards(Self.batch, lengths: Self.batch.map(task.length(of:)), count: threads)
        let denominators = shards.map { task.lossDenominator(examples: $0)! }
        if threads > 1 { #expect(Set(denominators).count > 1, "shards \(shards) should be uneven: denominators \(denominators)") }
        if threads >= 6 { #expect(denominators.contains(0), "each example its own shard, the unlabelled one too") }
        let r = try DataParallel.lossAndGradient(task, model: model, examples: Self.batch, threads: threads)
        let (loss, g, scale) = task.exact(model, examples: Self.batch)
        let u = 0x1p-24
        #expect(abs(r.loss - loss) <= 0x1p-40 * loss, "threads \(threads): loss \(r.loss) vs closed form \(loss)")
        #expect(r.tokens == Self.rows.reduce(0) { $0 + $1.count })
        let observed = r.gradient.flat
        var worst = (ratio: 0.0, j: 0)
        for j in g.indices {
            let bound = u * abs(g[j]) + (u + 0x1p-40) * scale[j]
            let ratio = abs(observed[j] - g[j]) / bound
            if !(ratio <= worst.ratio) { worst = (ratio, j) }
        }
        #expect(worst.ratio <= 1, "threads \(threads), shards \(shards): component \(worst.j) is \(observed[worst.j]), closed form \(g[worst.j]), A \(scale[worst.j]); |Δ|/bound \(worst.ratio)")
        // The squared norm the combination's pass returns: n = 70,004 non-negative Double terms, summed
        // in 8 lanes then added (≤ (n + 8)·2⁻⁵³ relative), against the spec's own sum (≤ n·2⁻⁵³).
        let step = try DataParallel.step(task, model: model, examples: Self.batch, threads: threads)
        if threads == 1 {
            #expect(step.squaredNorm == nil)
        } else {
            let reference = observed.reduce(0) { $0 + $1 * $1 }
            let n = Double(observed.count)
            #expect(abs(step.squaredNorm! - reference) <= (2 * n + 8) * 0x1p-53 * reference, "Σ g² \(step.squaredNorm!) vs \(reference)")
            #expect(step.gradient.flat == observed, "step and lossAndGradient give the same gradient")
        }
    }

    @Test("The combination fails the closed form when the shards' means are averaged with equal weights (the spec can fail)")
    func unweightedMeanIsCaught() throws {
        let task = QuadraticTask(labelled: Self.rows, seed: 31)
        let model = QuadraticTask.model(seed: 32)
        let shards = DataParallel.shards(Self.batch, lengths: Self.batch.map(task.length(of:)), count: 2)
        let parts = try shards.map { try task.lossAndGradient(model, examples: $0).gradient }
        let plain = DataParallel.combine(parts, weights: [0.5, 0.5]).flat
        let (_, g, scale) = task.exact(model, examples: Self.batch)
        let u = 0x1p-24
        let outside = g.indices.filter { abs(plain[$0] - g[$0]) > u * abs(g[$0]) + (u + 0x1p-40) * scale[$0] }.count
        #expect(outside > g.count / 2, "only \(outside) of \(g.count) components outside the bound")
    }

    @Test("Bitwise reproducible for a thread count: two runs give the same loss and gradient bits (quadratic, classifier, LM, translation)",
          arguments: [2, 3])
    func reproducible(threads: Int) throws {
        let q = QuadraticTask(labelled: Self.rows, seed: 31), qm = QuadraticTask.model(seed: 32)
        let q1 = try DataParallel.lossAndGradient(q, model: qm, examples: Self.batch, threads: threads)
        let q2 = try DataParallel.lossAndGradient(q, model: qm, examples: Self.batch, threads: threads)
        #expect(q1.loss.bitPattern == q2.loss.bitPattern && q1.gradient.flat == q2.gradient.flat)
        for (name, run) in try Self.realTasks(path: .optimized) {
            let (a, b) = (try run(threads), try run(threads))
            #expect(a.loss.bitPattern == b.loss.bitPattern, "\(name): loss \(a.loss) then \(b.loss)")
            #expect(a.gradient.map(\.bitPattern) == b.gradient.map(\.bitPattern), "\(name): gradients differ between two runs")
        }
    }

    /// The three real steps as closures threads ↦ (loss, flattened gradient).
    static func realTasks(path: KernelPath) throws -> [(String, (Int) throws -> (loss: Double, gradient: [Float]))] {
        let (c, cm) = try classifierSetup(path: path)
        let (l, lm) = try languageModelSetup(path: path)
        let (t, tm) = try translationSetup(path: path)
        func run<T: TrainingTask>(_ task: T, _ model: T.Model) -> (Int) throws -> (loss: Double, gradient: [Float]) {
            { threads in
                let r = try DataParallel.lossAndGradient(task, model: model, examples: Array(0..<task.exampleCount), threads: threads)
                return (r.loss, r.gradient.flattenedParameters())
            }
        }
        return [("classifier", run(c, cm)), ("language model", run(l, lm)), ("translation", run(t, tm))]
    }

    static func classifierSetup(path: KernelPath) throws -> (ClassifierTask, TokenClassifier) {
        let task = ClassifierTask(sentences: [([2, 5, 5, 7, 3], [-100, 1, 2, 0, -100]), ([2, 1, 8, 3], [-100, 0, 1, -100]),
                                              ([2, 4, 6, 1, 3], [-100, 2, -100, 1, -100])],
                                  loss: try CrossEntropyLoss(labelSmoothing: 0.1), path: path)
        return (task, ModelGradientSpecs.tinyClassifier(seed: 91))
    }

    static func languageModelSetup(path: KernelPath) throws -> (LanguageModelTask, DecoderOnlyModel) {
        (LanguageModelTask(windows: [[3, 1, 4, 1, 5], [2, 6, 5], [6, 3]], path: path),
         try LanguageModelSpecs.tinyModel(seed: 201))
    }

    static func translationSetup(path: KernelPath) throws -> (TranslationTask, EncoderDecoderModel) {
        let pairs: [(source: [Int], target: [Int])] = [([3, 4, 5, 2], [3, 5]), ([6, 2], [4, 4, 5]), ([5, 5, 3, 6, 2], [3])]
        return (TranslationTask(pairs: pairs, loss: try CrossEntropyLoss(labelSmoothing: 0.1), path: path),
                try TranslationSpecs.tinyModel(seed: 101, placement: .pre))
    }

    /// The parallel step of each real task (2 threads: uneven shards of 1 and 2–3 examples) checked
    /// as the one-thread step is: its gradient by LossGradientCheck against GSL's derivative of the
    /// one-thread loss (GradientCheck.swift: the tolerance derived there), its loss within 2·δL of
    /// the one-thread loss — each is within δL of the exact loss of its logits, since the shards'
    /// bounds weighted by n_k/N sum to the whole batch's δL (`lossNoiseBound` is a mean over labelled
    /// rows). Hence also |g_parallel − g_one| ≤ τ_parallel + τ_one component-wise (both within their
    /// tolerance of the same numeric derivative).
    @Test("Parallel step of the classifier, the language model and translation: gradient vs gsl_deriv_central, loss within 2δL of one thread")
    func parallelGradientAgainstGSL() throws {
        let path = KernelPath.optimized
        let (c, cm) = try Self.classifierSetup(path: path)
        let (cb, ct) = try c.batch([0, 1, 2])
        try Self.check(c, cm, δL: lossNoiseBound(logits: try cm.logits(cb, path: path), labelledRows: ct.indices.filter { ct[$0] != -100 }),
                       name: "classifier")
        let (l, lm) = try Self.languageModelSetup(path: path)
        let lb = try CausalLMBatch(sequences: l.windows)
        let lr = try lm.lossAndGradient(lb, loss: CrossEntropyLoss(), path: path, wantGradient: false)
        try Self.check(l, lm, δL: lossNoiseBound(logits: lr.logits, labelledRows: Array(0..<lr.labelled)), name: "language model")
        let (t, tm) = try Self.translationSetup(path: path)
        let tb = try Seq2SeqBatch(pairs: t.pairs, bos: TranslationTokens.bos, eos: TranslationTokens.eos)
        try Self.check(t, tm, δL: lossNoiseBound(logits: try tm.logits(tb, path: path), labelledRows: Array(0..<tb.labels.count)), name: "translation")
    }

    static func check<T: TrainingTask>(_ task: T, _ model: T.Model, δL: Double, name: String) throws {
        let all = Array(0..<task.exampleCount)
        let shards = DataParallel.shards(all, lengths: all.map(task.length(of:)), count: 2)
        let denominators = shards.map { task.lossDenominator(examples: $0)! }
        #expect(denominators.count == 2 && denominators[0] != denominators[1], "\(name): shards \(shards) should be uneven (\(denominators))")
        let one = try task.lossAndGradient(model, examples: all)
        let two = try DataParallel.lossAndGradient(task, model: model, examples: all, threads: 2)
        #expect(abs(two.loss - one.loss) <= 2 * δL, "\(name): |L(2 threads) − L(1)| = \(abs(two.loss - one.loss)) exceeds 2δL = \(2 * δL)")
        #expect(two.tokens == one.tokens)
        let r = LossGradientCheck().run(parameters: model.flattenedParameters(), analytic: two.gradient.flattenedParameters(), lossNoise: δL,
                                        name: "\(name), 2 threads") { p in
            var m = model
            m.setFlattenedParameters(p)
            return try! task.lossAndGradient(m, examples: all).loss
        }
        #expect(r.verdict.passed, "\(r.verdict)")
    }

    /// Each task's denominator against the count its own loss divided by (the `labelled` the model's
    /// step returns), and additive: the sum over a split equals the whole.
    @Test("lossDenominator of NER, translation and the language model = the count their loss divides by; additive")
    func denominators() throws {
        let (_, examples) = try TinyNER.setup(sentences: 6)
        let ner = try TinyNER.task(examples)
        let nerLabelled = examples.reduce(0) { n, e in n + e.targets.filter { $0 != CrossEntropyLoss.defaultIgnoreIndex }.count }
        #expect(ner.lossDenominator(examples: Array(0..<6)) == nerLabelled)
        let (model, _) = try TinyNER.setup(sentences: 6)
        let r = try model.lossAndGradient(PackedBatch(examples.map(\.ids)), targets: examples.flatMap(\.targets), loss: CrossEntropyLoss(), path: .optimized)
        #expect(r.labelled == nerLabelled)
        #expect(ner.lossDenominator(examples: [0, 2, 4])! + ner.lossDenominator(examples: [1, 3, 5])! == nerLabelled)

        let (t, tm) = try Self.translationSetup(path: .optimized)
        let tr = try tm.lossAndGradient(Seq2SeqBatch(pairs: t.pairs, bos: TranslationTokens.bos, eos: TranslationTokens.eos), loss: t.loss, path: .optimized)
        #expect(t.lossDenominator(examples: [0, 1, 2]) == tr.labelled)
        #expect(t.lossDenominator(examples: [1])! + t.lossDenominator(examples: [0, 2])! == tr.labelled)

        let (l, lm) = try Self.languageModelSetup(path: .optimized)
        let lr = try lm.lossAndGradient(CausalLMBatch(sequences: l.windows), loss: CrossEntropyLoss(), path: .optimized, wantGradient: false)
        #expect(l.lossDenominator(examples: Array(l.windows.indices)) == lr.labelled)
        #expect(l.lossDenominator(examples: [0])! + l.lossDenominator(examples: [1, 2])! == lr.labelled)
    }

    @Test("One call on the whole batch when threads = 1, the batch has one example, or the task reports no denominator")
    func fallbacks() throws {
        let (c, cm) = try Self.classifierSetup(path: .optimized)
        let whole = try c.lossAndGradient(cm, examples: [0, 1, 2])
        let one = try DataParallel.lossAndGradient(c, model: cm, examples: [0, 1, 2], threads: 1)
        #expect(one.loss.bitPattern == whole.loss.bitPattern && one.gradient.flattenedParameters() == whole.gradient.flattenedParameters())
        let single = try DataParallel.lossAndGradient(c, model: cm, examples: [1], threads: 4)
        let alone = try c.lossAndGradient(cm, examples: [1])
        #expect(single.gradient.flattenedParameters() == alone.gradient.flattenedParameters())
        // ScriptedValidation does not forward lossDenominator: the default, nil.
        let scripted = ScriptedValidation(c, values: [])
        #expect(scripted.lossDenominator(examples: [0]) == nil)
        let unknown = try DataParallel.lossAndGradient(scripted, model: cm, examples: [0, 1, 2], threads: 2)
        #expect(unknown.loss.bitPattern == whole.loss.bitPattern && unknown.gradient.flattenedParameters() == whole.gradient.flattenedParameters())
    }

    @Test("A denominator that is not additive over the shards is a typed error, not a silently wrong mean")
    func nonAdditiveDenominator() throws {
        let task = NonAdditiveTask(inner: QuadraticTask(labelled: Self.rows, seed: 31))
        #expect(throws: DecoderSpecError.self) {
            _ = try DataParallel.lossAndGradient(task, model: QuadraticTask.model(seed: 32), examples: Self.batch, threads: 2).loss
        }
    }

    /// The loop end to end (TinyNER, 10 steps of AdamW): 2 threads twice give identical losses and
    /// weights, bit for bit; 0 threads is refused.
    @Test("Trainer with 2 threads: two runs end with the same weights, bit for bit")
    func trainerReproducible() throws {
        let (initial, examples) = try TinyNER.setup()
        let task = try TinyNER.task(examples)
        var options = TrainerSpecs.options()
        options.threads = 2
        var runs: [(losses: [Double], weights: [Float])] = []
        for _ in 0..<2 {
            var model = initial
            let summary = try Trainer.train(&model, task: task, options: options, progress: { _ in })
            runs.append((summary.losses, model.flattenedParameters()))
        }
        #expect(runs[0].losses.map(\.bitPattern) == runs[1].losses.map(\.bitPattern))
        #expect(runs[0].weights.map(\.bitPattern) == runs[1].weights.map(\.bitPattern))
        var bad = options
        bad.threads = 0
        var model = initial
        #expect(throws: DecoderSpecError.self) { try Trainer.train(&model, task: task, options: bad, progress: { _ in }) }
    }
}

extension DataParallelSpecs {
    /// The step after the gradient on more than one thread: the norm's per-tensor partial sums, the
    /// clipping's and AdamW's chunks of a 70,001-value tensor each take the same operations as on one
    /// thread, so the results must be the same bits.
    @Test("Gradient norm, clipping and AdamW with 2 and 3 threads: bitwise the one-thread results", arguments: [2, 3])
    func stepAfterGradientBitwise(threads: Int) throws {
        let task = QuadraticTask(labelled: Self.rows, seed: 31)
        let model = QuadraticTask.model(seed: 32)
        let g = try task.lossAndGradient(model, examples: Self.batch).gradient
        #expect(GradientClipping.globalNorm(g, threads: threads).bitPattern == GradientClipping.globalNorm(g).bitPattern)
        var (c1, cn) = (g, g)
        GradientClipping.clip(&c1, maxNorm: 0.5)
        GradientClipping.clip(&cn, maxNorm: 0.5, threads: threads)
        #expect(c1.flat == cn.flat && c1.flat != g.flat)
        var (o1, on) = (try AdamW(), try AdamW())
        var (m1, mn) = (model, model)
        for step in 0..<3 {
            o1.update(&m1, gradient: c1, learningRate: 1e-2 * Double(step + 1))
            on.update(&mn, gradient: c1, learningRate: 1e-2 * Double(step + 1), threads: threads)
        }
        #expect(m1.a.map(\.bitPattern) == mn.a.map(\.bitPattern) && m1.b.map(\.bitPattern) == mn.b.map(\.bitPattern))
        #expect(o1.m == on.m && o1.v == on.v && m1.flat != model.flat)
    }
}

extension Array where Element == Int {
    /// The distinct elements, first occurrence kept, in order.
    func distinct() -> [Int] {
        var seen = Set<Int>()
        return filter { seen.insert($0).inserted }
    }
}
