import DecoderSpec
import Testing

// "naive" means naive all the way down: every kernel entry a whole model makes is recorded by a
// `KernelRecorder` (Sources/Kernels/KernelPath.swift), scoped to this spec's task, and must be on
// the model's one `KernelPath`. The premise is checked too: the recorder saw every kernel the
// model family uses, so an unwired kernel (one that never reports) cannot pass unseen.

@Suite("Kernel paths: a whole model on one path runs only that path's kernels")
struct KernelPathSpecs {
    /// Runs `body` under a fresh recorder; checks every entry is on `path` and `expected` kernels all ran.
    static func check(_ what: String, path: KernelPath, expected: Set<KernelName>, _ body: () throws -> Void) throws {
        let recorder = KernelRecorder()
        try recorder.recording(body)
        let entries = recorder.entries
        let offPath = entries.filter { $0.key.path != path }.keys.sorted()
        #expect(offPath.isEmpty, "\(what) on \(path) entered kernels of another path: \(offPath)")
        let missing = expected.subtracting(recorder.kernels).sorted()
        #expect(missing.isEmpty, "\(what) on \(path): kernels never recorded (unwired?): \(missing)")
    }

    @Test("Decoder-only: forward and greedy generation with the KV cache", arguments: KernelPath.allCases)
    func decoderOnly(path: KernelPath) throws {
        let config = TransformerConfig(vocabularySize: 23, contextLength: 40, modelWidth: 12, heads: 4, layers: 2, feedForwardWidth: 20,
                                       activation: .geluTanh)
        var model = try DecoderOnlyModel.seeded(config, seed: 3)
        model.path = path
        try Self.check("decoder-only", path: path, expected: [.gemm, .attention, .layerNorm, .activation, .embeddingGather]) {
            _ = try model.forward([1, 2, 3, 4, 5])
            _ = try Generator.generate(model, prompt: [1, 2, 3], strategy: .greedy, config: GenerationConfig(maxNewTokens: 4))
        }
    }

    @Test("Encoder (BERT layout): hidden states and the sentence embedding", arguments: KernelPath.allCases)
    func encoder(path: KernelPath) throws {
        let config = TransformerConfig(vocabularySize: 29, contextLength: 24, tokenTypes: 2, modelWidth: 10, heads: 2, layers: 2, feedForwardWidth: 14, layerNormEpsilon: 1e-12, activation: .gelu)
        var model = try EncoderModel.seeded(config, seed: 5)
        model.path = path
        try Self.check("encoder", path: path, expected: [.gemm, .attention, .layerNorm, .activation, .embeddingGather]) {
            _ = try model.hiddenStates([3, 4, 5, 6], tokenTypes: [0, 0, 1, 1])
            _ = try model.sentenceEmbedding([3, 4, 5])
        }
    }

    @Test("Encoder-decoder: encode, teacher-forced decode, the cached decoder loop (incl. the sinusoidal PE table)",
          arguments: KernelPath.allCases)
    func encoderDecoder(path: KernelPath) throws {
        let config = EncoderDecoderConfig(sourceVocabularySize: 21, targetVocabularySize: 17, contextLength: 20, modelWidth: 6, heads: 2,
                                          encoderLayers: 2, decoderLayers: 2, feedForwardWidth: 11, activation: .relu, placement: .pre)
        var model = try EncoderDecoderModel.seeded(config, seed: 7)
        model.path = path
        try Self.check("encoder-decoder", path: path,
                       expected: [.gemm, .attention, .layerNorm, .activation, .embeddingGather, .positionalTable]) {
            let memory = try model.encode([1, 2, 3, 4])
            _ = try model.decode([5, 6, 7], memory: memory)
            let conditioned = try model.conditioned(on: [1, 2, 3, 4])
            var cache = conditioned.makeCache()
            for token in [5, 6, 7] { _ = try conditioned.logits(appending: [token], to: &cache) }
        }
    }

    @Test("A training step (loss and gradient): token classifier and encoder-decoder", arguments: KernelPath.allCases)
    func trainingStep(path: KernelPath) throws {
        let encoder = try EncoderModel.seeded(TransformerConfig(vocabularySize: 29, contextLength: 24, tokenTypes: 2, modelWidth: 10, heads: 2, layers: 2,
                                                                feedForwardWidth: 14, layerNormEpsilon: 1e-12, activation: .gelu), seed: 9)
        let classifier = try TokenClassifier(encoder: encoder, labels: ["O", "B-X", "I-X"], seed: 10)
        let batch = try PackedBatch([[3, 4, 5], [6, 7]])
        try Self.check("token classifier training step", path: path, expected: [.gemm, .softmax, .activation, .embeddingGather]) {
            _ = try classifier.lossAndGradient(batch, targets: [0, 1, 2, 0, 1], loss: CrossEntropyLoss(), path: path)
        }
        let config = EncoderDecoderConfig(sourceVocabularySize: 21, targetVocabularySize: 17, contextLength: 20, modelWidth: 6, heads: 2,
                                          encoderLayers: 1, decoderLayers: 1, feedForwardWidth: 11, activation: .gelu, placement: .pre)
        let model = try EncoderDecoderModel.seeded(config, seed: 11)
        let pairs = try Seq2SeqBatch(pairs: [(source: [1, 2, 3], target: [4, 5]), (source: [6], target: [7, 8, 9])], bos: 15, eos: 16)
        try Self.check("encoder-decoder training step", path: path,
                       expected: [.gemm, .softmax, .activation, .embeddingGather, .positionalTable]) {
            _ = try model.lossAndGradient(pairs, loss: CrossEntropyLoss(), path: path)
        }
    }

    @Test("The recorder is scoped: entries outside `recording` and in another recorder's scope are not counted")
    func scoped() throws {
        let outer = KernelRecorder(), inner = KernelRecorder()
        let x = try Matrix([[1, 2], [3, 4]])
        _ = try x.matmul(x, path: .naive)  // outside any recording
        try outer.recording {
            _ = try x.matmul(x, path: .optimized)
            try inner.recording { _ = try x.matmul(x, path: .naive) }
        }
        #expect(outer.entries == [KernelRecorder.Entry(kernel: .gemm, path: .optimized): 1])
        #expect(inner.entries == [KernelRecorder.Entry(kernel: .gemm, path: .naive): 1])
    }
}
