import DecoderSpec
import Foundation
import GSLOracle
import ReferenceModel
import SpecSupport
import Testing

// Every model, on every kernel path, against the independent Double reference forward of
// Tests/ReferenceModel (weights read by name from the model's checkpoint dictionary). The bound is
// the one the reference carries per value (docs/tolerances.md, "Whole-model reference forward").
// Weights are redrawn non-trivially (WholeModelChecks.randomize) so that every tensor matters.

func hyper(heads: Int, epsilon: Float, activation: Activation.Function, placement: NormPlacement) -> ReferenceHyper {
    ReferenceHyper(heads: heads, epsilon: Double(epsilon), activation: WholeModelChecks.activation(activation),
                   placement: placement == .pre ? .pre : .post)
}

/// Ids drawn from GSL's generator (not the library's).
func ids(_ count: Int, below v: Int, seed: UInt) -> [Int] {
    let rng = GSLRandom(seed: seed)
    return (0..<count).map { _ in rng.int(below: v) }
}

@Suite("Whole models vs the Double reference forward")
struct WholeModelSpecs {
    /// Odd widths: d not a multiple of the SIMD width, heads of width 3, 1 and 19; a context longer
    /// than the fused attention's key block (256) in the first.
    static let decoderConfigs: [TransformerConfig] = [
        TransformerConfig(vocabularySize: 23, contextLength: 300, modelWidth: 12, heads: 4, layers: 2, feedForwardWidth: 20, activation: .geluTanh),
        TransformerConfig(vocabularySize: 17, contextLength: 40, modelWidth: 5, heads: 5, layers: 3, feedForwardWidth: 7, activation: .relu),
        TransformerConfig(vocabularySize: 31, contextLength: 40, modelWidth: 19, heads: 1, layers: 2, feedForwardWidth: 33, activation: .gelu),
    ]

    @Test("Decoder-only (GPT-2 layout): logits [T, V] on every path, T = 1, 9, and > the attention key block",
          arguments: decoderConfigs.indices, KernelPath.allCases)
    func decoderOnly(configIndex: Int, path: KernelPath) throws {
        let config = Self.decoderConfigs[configIndex]
        for seed: UInt in [11, 12] {
            var model = WholeModelChecks.randomized(try DecoderOnlyModel.seeded(config, seed: UInt64(seed)), seed: seed)
            model.path = path
            let checkpoint = try WholeModelChecks.checkpoint(model)
            let h = hyper(heads: config.heads, epsilon: config.layerNormEpsilon, activation: config.activation, placement: .pre)
            for t in [1, 9, config.contextLength >= 270 ? 270 : config.contextLength] {
                let x = ids(t, below: config.vocabularySize, seed: seed * 100 + UInt(t))
                let reference = try Reference.gpt2Logits(checkpoint, hyper: h, ids: x)
                let v = WholeModelChecks.matches(try model.forward(x).storage, reference, "decoder-only d \(config.modelWidth) heads \(config.heads), \(path), seed \(seed), T \(t)")
                #expect(v.passed, "\(v)")
            }
        }
    }

    @Test("Decoder-only with the KV cache: each step's logits equal the reference's row, fed 1, 2 and 3 tokens at a time",
          arguments: decoderConfigs.indices, KernelPath.allCases)
    func decoderOnlyCache(configIndex: Int, path: KernelPath) throws {
        let config = Self.decoderConfigs[configIndex]
        var model = WholeModelChecks.randomized(try DecoderOnlyModel.seeded(config, seed: 21), seed: 21)
        model.path = path
        let checkpoint = try WholeModelChecks.checkpoint(model)
        let h = hyper(heads: config.heads, epsilon: config.layerNormEpsilon, activation: config.activation, placement: .pre)
        let x = ids(min(17, config.contextLength), below: config.vocabularySize, seed: 22)
        let reference = try Reference.gpt2Logits(checkpoint, hyper: h, ids: x)
        var cache = model.makeCache()
        var position = 0
        for chunk in [1, 2, 3, 1, 3, 2, 1, 1, 3].prefix(while: { _ in position < x.count }) {
            let n = min(chunk, x.count - position)
            let logits = try model.logits(appending: Array(x[position..<(position + n)]), to: &cache)
            position += n
            let v = WholeModelChecks.matches(logits, reference.rows((position - 1)..<position), "KV-cache step ending at \(position), \(path), d \(config.modelWidth)")
            #expect(v.passed, "\(v)")
        }
    }

    @Test("Decoder-only: every activation (ReLU, exact GELU, tanh GELU) on one shape", arguments: [Activation.Function.relu, .gelu, .geluTanh])
    func decoderOnlyActivations(activation: Activation.Function) throws {
        let config = TransformerConfig(vocabularySize: 13, contextLength: 16, modelWidth: 8, heads: 2, layers: 2, feedForwardWidth: 24, activation: activation)
        let model = WholeModelChecks.randomized(try DecoderOnlyModel.seeded(config, seed: 31), seed: 31)
        let x = ids(11, below: 13, seed: 32)
        let reference = try Reference.gpt2Logits(try WholeModelChecks.checkpoint(model),
                                                 hyper: hyper(heads: 2, epsilon: config.layerNormEpsilon, activation: activation, placement: .pre), ids: x)
        let v = WholeModelChecks.matches(try model.forward(x).storage, reference, "decoder-only, \(activation)")
        #expect(v.passed, "\(v)")
    }

    // MARK: Encoder (BERT) and the token-classification head

    static let encoderConfigs: [TransformerConfig] = [
        TransformerConfig(vocabularySize: 29, contextLength: 24, tokenTypes: 2, modelWidth: 10, heads: 2, layers: 2, feedForwardWidth: 14, layerNormEpsilon: 1e-12, activation: .gelu),
        TransformerConfig(vocabularySize: 19, contextLength: 24, tokenTypes: 2, modelWidth: 9, heads: 3, layers: 3, feedForwardWidth: 5, layerNormEpsilon: 1e-5,
                          activation: .relu),
    ]

    @Test("Encoder (BERT layout): hidden states with token types, and the sentence embedding, on every path",
          arguments: encoderConfigs.indices, KernelPath.allCases)
    func encoder(configIndex: Int, path: KernelPath) throws {
        let config = Self.encoderConfigs[configIndex]
        var model = WholeModelChecks.randomized(try EncoderModel.seeded(config, seed: 41), seed: 41)
        model.path = path
        let checkpoint = WholeModelChecks.checkpoint(model)
        let h = hyper(heads: config.heads, epsilon: config.layerNormEpsilon, activation: config.activation, placement: .post)
        for (t, seed) in [(1, UInt(42)), (7, 43), (config.contextLength, 44)] {
            let x = ids(t, below: config.vocabularySize, seed: seed)
            let types = (0..<t).map { $0 < t / 2 ? 0 : 1 }
            let reference = try Reference.bertOutputs(checkpoint, hyper: h, ids: x, tokenTypes: types)
            let context = "encoder d \(config.modelWidth) heads \(config.heads), \(path), T \(t)"
            let v = WholeModelChecks.matches(try model.hiddenStates(x, tokenTypes: types).storage, reference.hidden, context)
            #expect(v.passed, "\(v)")
            let e = WholeModelChecks.matches(try model.sentenceEmbedding(x, tokenTypes: types), reference.sentenceEmbedding, "sentence embedding, \(context)")
            #expect(e.passed, "\(e)")
        }
    }

    @Test("Token classifier (encoder + untied head): the training forward's logits and loss over a packed batch, every path",
          arguments: KernelPath.allCases)
    func tokenClassifier(path: KernelPath) throws {
        let config = Self.encoderConfigs[0]
        let encoder = try EncoderModel.seeded(config, seed: 51)
        let model = WholeModelChecks.randomized(try TokenClassifier(encoder: encoder, labels: ["O", "B-X", "I-X", "B-Y", "I-Y"], seed: 52), seed: 53)
        let checkpoint = WholeModelChecks.checkpoint(model)
        let h = hyper(heads: config.heads, epsilon: config.layerNormEpsilon, activation: config.activation, placement: .post)
        let sequences = [ids(6, below: config.vocabularySize, seed: 54), ids(1, below: config.vocabularySize, seed: 55), ids(13, below: config.vocabularySize, seed: 56)]
        let batch = try PackedBatch(sequences)
        let logits = try model.logits(batch, path: path)
        var row = 0
        var referenceRows: [Tracked] = []
        for s in sequences {
            let reference = try Reference.classifierLogits(checkpoint, hyper: h, ids: s)
            referenceRows.append(reference)
            let v = WholeModelChecks.matches(logits.rows(row..<(row + s.count)).storage, reference, "classifier logits, sequence of \(s.count), path \(path)")
            #expect(v.passed, "\(v)")
            row += s.count
        }
        // The loss from those logits: ∂ℓ/∂z_c = p_c − q_c and Σ_c |p_c − q_c| ≤ 2, so each row's ℓ moves by
        // ≤ 2·max_c e(z_c); the mean over rows by ≤ 2·max e. Double arithmetic adds ≤ (V + 3)·2⁻⁵³ relative.
        let targets = (0..<batch.tokenCount).map { $0 % 4 == 3 ? -100 : $0 % 5 }
        let all = Tracked.stacked(referenceRows)
        let expected = try Reference.crossEntropy(all, targets: targets, smoothing: 0.1)
        let (value, _, _) = try model.lossAndGradient(batch, targets: targets, loss: CrossEntropyLoss(labelSmoothing: 0.1), path: path)
        let bound = 2 * all.bounds.max()! + 1e-13 * abs(expected)
        #expect(abs(value - expected) <= bound, "loss \(value) vs reference \(expected), bound \(bound), path \(path)")
    }

    // MARK: Encoder-decoder

    static func encoderDecoder(_ placement: NormPlacement, path: KernelPath, seed: UInt) throws -> EncoderDecoderModel {
        let config = EncoderDecoderConfig(sourceVocabularySize: 21, targetVocabularySize: 17, contextLength: 20, modelWidth: 6, heads: 2,
                                          encoderLayers: 2, decoderLayers: 2, feedForwardWidth: 11, activation: .relu, placement: placement)
        var model = WholeModelChecks.randomized(try EncoderDecoderModel.seeded(config, seed: UInt64(seed)), seed: seed)
        model.path = path
        return model
    }

    @Test("Encoder-decoder: memory, teacher-forced logits and the KV-cache path's logits, both placements, every path",
          arguments: [NormPlacement.pre, .post], KernelPath.allCases)
    func encoderDecoder(placement: NormPlacement, path: KernelPath) throws {
        let model = try Self.encoderDecoder(placement, path: path, seed: 61)
        let checkpoint = WholeModelChecks.checkpoint(model)
        let h = hyper(heads: 2, epsilon: model.config.layerNormEpsilon, activation: .relu, placement: placement)
        let source = ids(9, below: 21, seed: 62), target = ids(7, below: 17, seed: 63)
        let context = "encoder-decoder \(placement)-norm, \(path)"
        let (memories, reference) = try Reference.encoderDecoder(checkpoint, hyper: h, pairs: [(source, target)])
        let memory = try model.encode(source)
        let m = WholeModelChecks.matches(memory.storage, memories[0], "memory, \(context)")
        #expect(m.passed, "\(m)")
        let v = WholeModelChecks.matches(try model.decode(target, memory: memory).storage, reference, "logits, \(context)")
        #expect(v.passed, "\(v)")
        // The decoder loop's path: cross K/V projected once, self-attention K/V cached step by step.
        let conditioned = try model.conditioned(on: source)
        var cache = conditioned.makeCache()
        for t in target.indices {
            let logits = try conditioned.logits(appending: [target[t]], to: &cache)
            let step = WholeModelChecks.matches(logits, reference.rows(t..<(t + 1)), "KV-cache step \(t), \(context)")
            #expect(step.passed, "\(step)")
        }
    }

    @Test("Encoder-decoder: the training forward's packed logits and label-smoothed loss, every path", arguments: KernelPath.allCases)
    func encoderDecoderTraining(path: KernelPath) throws {
        let model = try Self.encoderDecoder(.pre, path: .optimized, seed: 71)
        let checkpoint = WholeModelChecks.checkpoint(model)
        let h = hyper(heads: 2, epsilon: model.config.layerNormEpsilon, activation: .relu, placement: .pre)
        let pairs = [(source: ids(5, below: 21, seed: 72), target: ids(4, below: 15, seed: 73)),
                     (source: ids(1, below: 21, seed: 74), target: ids(1, below: 15, seed: 75)),
                     (source: ids(11, below: 21, seed: 76), target: ids(8, below: 15, seed: 77))]
        let (bos, eos) = (15, 16)
        let batch = try Seq2SeqBatch(pairs: pairs, bos: bos, eos: eos)
        let logits = try model.logits(batch, path: path)
        let all = try Reference.encoderDecoder(checkpoint, hyper: h, pairs: pairs.map { ($0.source, [bos] + $0.target) }).logits
        let v = WholeModelChecks.matches(logits.storage, all, "seq2seq training logits, path \(path)")
        #expect(v.passed, "\(v)")
        let expected = try Reference.crossEntropy(all, targets: batch.labels, smoothing: 0.1)
        let value = try model.lossAndGradient(batch, loss: CrossEntropyLoss(labelSmoothing: 0.1), path: path).loss
        let bound = 2 * all.bounds.max()! + 1e-13 * abs(expected)  // as tokenClassifier
        #expect(abs(value - expected) <= bound, "loss \(value) vs reference \(expected), bound \(bound), path \(path)")
    }
}

