import DecoderSpec
import GSLOracle
import SpecSupport
import Testing

/// Attention, Transformer layers, the loss and the whole encoder + head, against GSL's central difference.
@Suite("Attention, layer, loss and model backward vs gsl_deriv_central")
struct ModelGradientSpecs {
    let check = GradientCheck()

    static func attention(d: Int, heads: Int, seed: UInt) -> MultiHeadAttention {
        func lin(_ s: UInt) -> Linear {
            try! Linear(weight: Inputs.matrix(rows: d, cols: d, seed: s, range: -0.7...0.7), bias: Inputs.matrix(rows: 1, cols: d, seed: s + 100, range: -0.2...0.2).storage)
        }
        return try! MultiHeadAttention(query: lin(seed), key: lin(seed + 1), value: lin(seed + 2), output: lin(seed + 3), heads: heads)
    }

    /// Packed self-attention over two sequences: one causal, one with its last 2 keys padded.
    @Test("Self-attention with causal and padding masks over packed segments: dx and all weights")
    func selfAttention() {
        let (d, heads) = (6, 2)
        let layer = Self.attention(d: d, heads: heads, seed: 51)
        let segments = [AttentionSegment.selfAttention(0..<4, causal: true), .selfAttention(4..<9, validLength: 3)]
        let x = Inputs.matrix(rows: 9, cols: d, seed: 55)
        let g = projectionWeights(9 * d, seed: 56)
        let (_, cache) = layer.trainingForward(x, memory: x, segments: segments, path: .naive)
        var grad = layer.zeroGradient()
        var (dx, dm) = layer.backward(matrixFromWeights(g, rows: 9, cols: d), cache: cache, gradient: &grad, path: .naive)
        dx.addInPlace(dm)
        let rx = check.run(parameters: x.storage, weights: g, analytic: dx.storage, name: "self-attention dx") {
            let xs = x.withStorage($0)
            return layer.trainingForward(xs, memory: xs, segments: segments, path: .naive).0.storage
        }
        #expect(rx.verdict.passed, "\(rx.verdict)")
        let rp = check.run(parameters: layer.flattenedParameters(), weights: g, analytic: grad.flattenedParameters(), name: "self-attention weights") { p in
            var l = layer
            l.setFlattenedParameters(p)
            return l.trainingForward(x, memory: x, segments: segments, path: .naive).0.storage
        }
        #expect(rp.verdict.passed, "\(rp.verdict)")
        // Padded keys get no gradient through K and V: rows 7, 8 of the memory input only reach
        // the output as queries, so their dK/dV part is 0 — checked numerically above.
    }

    @Test("Cross-attention: d query input and d memory (the encoder-decoder path)")
    func crossAttention() {
        let (d, heads) = (4, 2)
        let layer = Self.attention(d: d, heads: heads, seed: 61)
        let segments = [AttentionSegment(queries: 0..<3, keys: 0..<5, keyValidLength: 4), AttentionSegment(queries: 3..<5, keys: 5..<7)]
        let x = Inputs.matrix(rows: 5, cols: d, seed: 65)
        let memory = Inputs.matrix(rows: 7, cols: d, seed: 66)
        let g = projectionWeights(5 * d, seed: 67)
        let (_, cache) = layer.trainingForward(x, memory: memory, segments: segments, path: .naive)
        var grad = layer.zeroGradient()
        let (dx, dm) = layer.backward(matrixFromWeights(g, rows: 5, cols: d), cache: cache, gradient: &grad, path: .naive)
        let rx = check.run(parameters: x.storage, weights: g, analytic: dx.storage, name: "cross-attention dx") {
            layer.trainingForward(x.withStorage($0), memory: memory, segments: segments, path: .naive).0.storage
        }
        let rm = check.run(parameters: memory.storage, weights: g, analytic: dm.storage, name: "cross-attention dmemory") {
            layer.trainingForward(x, memory: memory.withStorage($0), segments: segments, path: .naive).0.storage
        }
        #expect(rx.verdict.passed, "\(rx.verdict)")
        #expect(rm.verdict.passed, "\(rm.verdict)")
    }

    @Test("Transformer layer: post-norm encoder, pre-norm GPT block, decoder layer with cross-attention",
          arguments: [(NormPlacement.post, false, false), (.pre, true, false), (.pre, true, true), (.post, true, true)])
    func transformerLayer(config: (NormPlacement, Bool, Bool)) {
        let (placement, causal, cross) = config
        var rng = SeededRNG(seed: 71)
        var layer = try! TransformerLayer.seeded(modelWidth: 4, heads: 2, feedForwardWidth: 8, activation: .gelu, placement: placement,
                                                 causal: causal, crossAttention: cross, std: 0.5, rng: &rng)
        // Non-trivial γ, β so their gradients are exercised.
        layer.setFlattenedParameters(layer.flattenedParameters().enumerated().map { i, v in v == 1 ? 1 + 0.1 * Float(i % 5) : (v == 0 ? 0.05 * Float(i % 7) - 0.1 : v) })
        let x = Inputs.matrix(rows: 5, cols: 4, seed: 72)
        let memory = Inputs.matrix(rows: 3, cols: 4, seed: 73)
        let segments = [AttentionSegment.selfAttention(0..<2), .selfAttention(2..<5)]
        let memorySegments = [AttentionSegment(queries: 0..<2, keys: 0..<1), AttentionSegment(queries: 2..<5, keys: 1..<3)]
        let g = projectionWeights(20, seed: 74)
        let fwd: (TransformerLayer, Matrix, Matrix) -> [Float] = { l, x, m in
            l.trainingForward(x, segments: segments, memory: cross ? m : nil, memorySegments: cross ? memorySegments : nil, path: .naive).0.storage
        }
        let (_, cache) = layer.trainingForward(x, segments: segments, memory: cross ? memory : nil, memorySegments: cross ? memorySegments : nil, path: .naive)
        var grad = layer.zeroGradient()
        var dMemory: Matrix? = nil
        let dx = layer.backward(matrixFromWeights(g, rows: 5, cols: 4), cache: cache, gradient: &grad, dMemory: &dMemory, path: .naive)
        let name = "layer \(placement) causal \(causal) cross \(cross)"
        let rx = check.run(parameters: x.storage, weights: g, analytic: dx.storage, name: "\(name) dx") { fwd(layer, x.withStorage($0), memory) }
        #expect(rx.verdict.passed, "\(rx.verdict)")
        let rp = check.run(parameters: layer.flattenedParameters(), weights: g, analytic: grad.flattenedParameters(), name: "\(name) params") { p in
            var l = layer
            l.setFlattenedParameters(p)
            return fwd(l, x, memory)
        }
        #expect(rp.verdict.passed, "\(rp.verdict)")
        if cross {
            let rm = check.run(parameters: memory.storage, weights: g, analytic: dMemory!.storage, name: "\(name) dmemory") { fwd(layer, x, memory.withStorage($0)) }
            #expect(rm.verdict.passed, "\(rm.verdict)")
        } else {
            #expect(dMemory == nil)
        }
    }

    /// Closed form in Double, independent of the library: ℓ = −Σ_c q_c log p_c.
    static func referenceLoss(_ z: [[Double]], _ targets: [Int], smoothing: Double, ignore: Int) -> Double {
        var total = 0.0, n = 0
        for (row, t) in zip(z, targets) where t != ignore {
            let m = row.max()!
            let logZ = m + Foundation.log(row.reduce(0) { $0 + Foundation.exp($1 - m) })
            for (c, v) in row.enumerated() {
                let q = (c == t ? 1 - smoothing : 0) + smoothing / Double(row.count)
                total -= q * (v - logZ)
            }
            n += 1
        }
        return n == 0 ? 0 : total / Double(n)
    }

    @Test("Cross-entropy: value vs closed form, gradient vs central difference; ignore-index and smoothing",
          arguments: [Float(0), 0.1, 0.3])
    func crossEntropy(smoothing: Float) throws {
        let logits = Inputs.matrix(rows: 5, cols: 4, seed: 81, range: -3...3)
        let targets = [2, -100, 0, 3, -100]
        let loss = try CrossEntropyLoss(labelSmoothing: smoothing)
        let (value, grad, count) = try loss(logits: logits, targets: targets)
        #expect(count == 3)
        let rows = (0..<5).map { logits.row($0).doubles }
        let expected = Self.referenceLoss(rows, targets, smoothing: Double(smoothing), ignore: -100)
        // Float logits, Double accumulation: |error| ≤ a few ULPs of the per-row terms.
        #expect(Bound.relative(1e-6).allows(value, expected), "loss \(value) vs closed form \(expected)")
        // Ignored rows: exactly zero gradient (no smoothing leaks into them).
        #expect(grad.row(1).allSatisfy { $0 == 0 } && grad.row(4).allSatisfy { $0 == 0 })
        for path in [KernelPath.naive, .optimized] {
            let analytic = try loss(logits: logits, targets: targets, path: path).gradient
            let r = check.run(parameters: logits.storage, weights: [1], analytic: analytic.storage, name: "CE dlogits ε \(smoothing), \(path)") {
                [Float(try! loss(logits: logits.withStorage($0), targets: targets, path: path).loss)]
            }
            #expect(r.verdict.passed, "\(r.verdict)")
        }
    }

    /// The optimized row (vector exp, Σe and Σz in Double, ℓ = log Z − (1 − ε)z_y − (ε/C)Σz) and the
    /// naive one against the closed form in Double, over class counts around the 16-lane width
    /// (1, 15, 16, 17, 33) and a vocabulary-sized row (2,003), with ignored rows and a large logit scale.
    ///
    /// Error model (u = 2⁻²⁴, x_c = z_c − μ, p = softmax(z), S = Σ_c p_c·|x_c|): x_c is rounded to
    /// Float (≤ (u/2)|x_c|, relative error of e^{x_c}); `VectorMath.exp` adds ≤ 3 ULPs (KernelSpecs),
    /// expf ≤ 1. So Σe is within 3u + (u/2)·S relative and log Z within that absolute; the Double sums
    /// add ≤ C·2⁻⁵³·Σ|z| (below u here). Per row |ℓ − ℓ_exact| ≤ 4u + (u/2)·S.
    /// g_c = (p_c − q_c)/N: p_c = e_c·Float(1/Σe) carries ≤ 3u + (u/2)|x_c| (e_c) + 3u + (u/2)S (Σe)
    /// + 2u (the roundings of 1/Σe and of the product) relative; − q and ·Float(1/N) add a rounding
    /// of |p − q| each and one of 1/N:
    ///     |Δg_c| ≤ ((8u + (u/2)(|x_c| + S))·p_c + 2u·|p_c − q_c| + u·q_c)/N.
    /// The naive row (one rounding of the Double (exp(log p) − q)/N, log Z through expf) is inside the
    /// same bound; the two paths then differ by at most twice it. Ignored rows must be exactly 0.
    @Test("Cross-entropy, naive and optimized rows vs the closed form: odd class counts, smoothing, ignored rows",
          arguments: [1, 15, 16, 17, 33, 2003])
    func crossEntropyPaths(classes: Int) throws {
        let u = 0x1p-24
        let rows = 6
        for (smoothing, scale) in [(Float(0), Float(3)), (0.1, 3), (0.1, 40)] {
            let logits = Inputs.matrix(rows: rows, cols: classes, seed: UInt(90 + classes), range: -scale...scale)
            let targets = (0..<rows).map { $0 % 3 == 1 ? -100 : ($0 * 7 + 1) % classes }
            let loss = try CrossEntropyLoss(labelSmoothing: smoothing)
            let z = (0..<rows).map { logits.row($0).doubles }
            let expected = Self.referenceLoss(z, targets, smoothing: Double(smoothing), ignore: -100)
            let n = Double(targets.filter { $0 != -100 }.count)
            let eps = Double(smoothing)
            // Per-element bound and closed-form gradient; the loss bound averaged over the labelled rows.
            var reference = [Double](repeating: 0, count: rows * classes), bound = reference
            var lossBound = 0.0
            for (r, t) in targets.enumerated() where t != -100 {
                let m = z[r].max()!
                let sum = z[r].reduce(0) { $0 + Foundation.exp($1 - m) }
                let p = z[r].map { Foundation.exp($0 - m) / sum }
                let spread = zip(p, z[r]).reduce(0) { $0 + $1.0 * abs($1.1 - m) }
                lossBound += (4 * u + u / 2 * spread) / n
                for c in 0..<classes {
                    let q = (c == t ? 1 - eps : 0) + eps / Double(classes)
                    reference[r * classes + c] = (p[c] - q) / n
                    bound[r * classes + c] = ((8 * u + u / 2 * (abs(z[r][c] - m) + spread)) * p[c] + 2 * u * abs(p[c] - q) + u * q) / n
                }
            }
            var results: [KernelPath: Matrix] = [:]
            for path in [KernelPath.naive, .optimized] {
                let (value, grad, count) = try loss(logits: logits, targets: targets, path: path)
                #expect(count == Int(n))
                #expect(abs(value - expected) <= lossBound, "C \(classes) ε \(smoothing) scale \(scale) \(path): loss \(value) vs closed form \(expected), bound \(lossBound)")
                for (r, t) in targets.enumerated() where t == -100 { #expect(grad.row(r).allSatisfy { $0 == 0 }) }
                let worst = grad.storage.indices.map { abs(Double(grad.storage[$0]) - reference[$0]) - bound[$0] }.max() ?? 0
                #expect(worst <= 0, "C \(classes) ε \(smoothing) scale \(scale) \(path): a gradient entry exceeds its bound by \(worst)")
                results[path] = grad
            }
            let pair = zip(results[.naive]!.storage, results[.optimized]!.storage).enumerated()
            #expect(pair.allSatisfy { abs(Double($1.0) - Double($1.1)) <= 2 * bound[$0] }, "C \(classes) ε \(smoothing) scale \(scale): naive vs optimized gradient")
        }
    }

    @Test("Cross-entropy: all rows ignored gives loss 0 and zero gradient; bad target throws")
    func crossEntropyEdges() throws {
        let loss = try CrossEntropyLoss()
        let (value, grad, count) = try loss(logits: Matrix(rows: 2, cols: 3, repeating: 1), targets: [-100, -100])
        #expect(value == 0 && count == 0 && grad.storage.allSatisfy { $0 == 0 })
        #expect(throws: DecoderSpecError.self) { try loss(logits: Matrix(rows: 2, cols: 3), targets: [0, 3]) }
        #expect(throws: DecoderSpecError.self) { try CrossEntropyLoss(labelSmoothing: 1) }
    }

    static func tinyClassifier(seed: UInt64, layers: Int = 2) -> TokenClassifier {
        let config = TransformerConfig(vocabularySize: 9, contextLength: 8, tokenTypes: 2, modelWidth: 4, heads: 2, layers: layers, feedForwardWidth: 8,
                                       layerNormEpsilon: 1e-5, activation: .gelu)
        var encoder = try! EncoderModel.seeded(config, seed: seed)
        // Larger weights than BERT's 0.02 so every path carries a gradient well above Float noise.
        var rng = SeededRNG(seed: seed + 1)
        encoder.setFlattenedParameters(encoder.flattenedParameters().map { v in v == 1 || v == 0 ? v + rng.uniform(-0.3, 0.3) : v * 10 })
        var model = try! TokenClassifier(encoder: encoder, labels: ["O", "B-X", "I-X"], seed: seed + 2)
        model.head.weight.storage = model.head.weight.storage.map { $0 * 10 }
        return model
    }

    /// The `KernelPath` of `decoder-spec finetune ner` (FinetuneCommand: `--backend optimized --gemm parallel` by default).
    static let finetunePath = KernelPath.parallel

    /// The whole-model check (LossGradientCheck) of a token classifier on `path`, with δL from its logits.
    /// Premise of δL, checked too: the loss on `path` and on the naive path (two independent
    /// rounding sequences) differ by at most δL.
    static func checkWholeClassifier(_ model: TokenClassifier, loss: CrossEntropyLoss, path: KernelPath, name: String) throws -> LossGradientCheck.Result {
        let batch = try PackedBatch([[2, 5, 5, 7, 3], [2, 1, 8, 3]])
        let targets = [-100, 1, 2, 0, -100, -100, 0, 1, -100]
        let (value, grad, _) = try model.lossAndGradient(batch, targets: targets, loss: loss, path: path)
        let labelled = targets.indices.filter { targets[$0] != loss.ignoreIndex }
        let δL = lossNoiseBound(logits: try model.logits(batch, path: path), labelledRows: labelled)
        let naiveValue = try model.lossAndGradient(batch, targets: targets, loss: loss, path: .naive).loss
        #expect(abs(value - naiveValue) <= δL, "\(name): |L(\(path)) − L(naive)| = \(abs(value - naiveValue)) exceeds δL = \(δL)")
        return LossGradientCheck().run(parameters: model.flattenedParameters(), analytic: grad.flattenedParameters(), lossNoise: δL,
                                       name: "\(name), \(path)/\(path)") { p in
            var m = model
            m.setFlattenedParameters(p)
            return try! m.lossAndGradient(batch, targets: targets, loss: loss, path: path).loss
        }
    }

    @Test("Whole model: BERT-style encoder + token-classification head, every parameter, through the loss; naive and finetune's backend",
          arguments: [KernelPath.naive, finetunePath])
    func wholeModel(path: KernelPath) throws {
        let r = try Self.checkWholeClassifier(Self.tinyClassifier(seed: 91), loss: CrossEntropyLoss(labelSmoothing: 0.1), path: path,
                                              name: "encoder + head")
        #expect(r.verdict.passed, "\(r.verdict)")
    }

    /// A change that leaves the gradient correct must not fail the check: the token-type table set
    /// to zeros (its row still receives Σ_rows dx, the rest of the model is unchanged).
    @Test("Whole model with the token-type embedding zeroed: still a correct gradient, still passes", arguments: [KernelPath.naive, finetunePath])
    func wholeModelWithoutTokenType(path: KernelPath) throws {
        var model = Self.tinyClassifier(seed: 91)
        model.encoder.tokenTypeEmbedding.weight.storage = model.encoder.tokenTypeEmbedding.weight.storage.map { _ in 0 }
        let r = try Self.checkWholeClassifier(model, loss: CrossEntropyLoss(labelSmoothing: 0.1), path: path, name: "encoder (E_type = 0) + head")
        #expect(r.verdict.passed, "\(r.verdict)")
    }

    @Test("Whole model with a CRF on top: every parameter through the CRF negative log-likelihood; naive and finetune's backend",
          arguments: [KernelPath.naive, finetunePath])
    func wholeModelWithCRF(path: KernelPath) throws {
        var model = Self.tinyClassifier(seed: 95, layers: 1)
        model.crf = try LinearChainCRF(transitions: Inputs.matrix(rows: 3, cols: 3, seed: 96), start: [0.1, -0.2, 0.3], end: [-0.1, 0.2, 0])
        let r = try Self.checkWholeClassifier(model, loss: CrossEntropyLoss(), path: path, name: "encoder + head + CRF")
        #expect(r.verdict.passed, "\(r.verdict)")
    }

    @Test("Training forward equals EncoderModel.hiddenStates per packed sequence, both backends", arguments: KernelPath.allCases)
    func trainingForwardMatchesInference(path: KernelPath) throws {
        let model = Self.tinyClassifier(seed: 93)
        let sequences = [[2, 5, 6, 3], [2, 7, 3], [2, 1, 1, 4, 8, 3]]
        let (h, _) = try model.encoder.trainingForward(PackedBatch(sequences), path: path)
        var row = 0
        for s in sequences {
            let reference = try model.encoder.hiddenStates(s)
            // Same formulas, same Float kernels except LayerNorm (the training copy keeps x̂): a few
            // roundings per value through 2 layers; outputs are O(1) after LayerNorm.
            let v = compare(h.rows(row..<(row + s.count)).storage, reference.storage.doubles, .absolute(1e-5), "sequence \(s), path \(path)")
            #expect(v.passed, "\(v)")
            row += s.count
        }
    }
}

import Foundation
