import DecoderSpec
import SpecSupport
import Testing

func tinyTranslator(path: KernelPath = .optimized) throws -> EncoderDecoderModel {
    try EncoderDecoderModel.seeded(
        EncoderDecoderConfig(sourceVocabularySize: 23, targetVocabularySize: 19, contextLength: 20, modelWidth: 16, heads: 2,
                             encoderLayers: 2, decoderLayers: 2, feedForwardWidth: 32), seed: 11, path: path)
}

@Suite("Encoder-decoder and encoder models")
struct EncoderDecoderSpecs {
    @Test("Conditioned decoding with the KV cache (self + cross) equals recomputation, every strategy, both backends",
          arguments: KernelPath.allCases)
    func cacheEquivalence(path: KernelPath) throws {
        let decoder = try tinyTranslator(path: path).conditioned(on: [4, 8, 15, 16, 22, 3])
        for strategy in DecoderOnlySpecs.strategies {
            let a = try Generator.generate(decoder, prompt: [1], strategy: strategy, config: .init(maxNewTokens: 10, stopTokens: [2]))
            let b = try Generator.generate(decoder, prompt: [1], strategy: strategy,
                                           config: .init(maxNewTokens: 10, stopTokens: [2], useCache: false))
            #expect(a.tokens == b.tokens, "\(strategy) \(path)")
        }
    }

    @Test("The decoder is causal in the target and sees the whole source")
    func targetCausalSourceVisible() throws {
        let model = try tinyTranslator()
        let memory = try model.encode([5, 6, 7, 8])
        let a = try model.decode([1, 4, 9, 12, 3], memory: memory)
        let b = try model.decode([1, 4, 9, 0, 0], memory: memory)
        for t in 0..<3 { #expect(a.row(t) == b.row(t), "target position \(t)") }
        let otherMemory = try model.encode([5, 6, 7, 9])  // only the last source token differs
        let c = try model.decode([1, 4, 9, 12, 3], memory: otherMemory)
        #expect(a.row(0) != c.row(0), "position 0 must see the last source token through cross-attention")
    }

    @Test("Encoder without positions is permutation-equivariant; with them it is not")
    func encoderEquivariance() throws {
        var model = try EncoderModel.seeded(TransformerConfig(vocabularySize: 30, contextLength: 16, tokenTypes: 2, modelWidth: 16, heads: 4, layers: 2,
                                                              feedForwardWidth: 32, layerNormEpsilon: 1e-12, activation: .gelu), seed: 3)
        let ids = [3, 9, 27, 1, 14]
        let perm = [2, 0, 4, 1, 3]
        let withPositions = (try model.hiddenStates(ids), try model.hiddenStates(perm.map { ids[$0] }))
        #expect(withPositions.1.row(0) != withPositions.0.row(2), "learned positions must break equivariance")
        for i in model.positions.weight.storage.indices { model.positions.weight.storage[i] = 0 }
        let h = try model.hiddenStates(ids)
        let hp = try model.hiddenStates(perm.map { ids[$0] })
        // Row i of the permuted output is row perm[i] of the original, up to summation order in
        // the softmax/V products (keys are visited in a different order): 1e-5 relative.
        for i in 0..<ids.count {
            #expect(compare(hp.row(i), h.row(perm[i]).map(Double.init), .mixed(absolute: 1e-5, relative: 1e-5)).passed, "row \(i)")
        }
    }

    @Test("Sentence embeddings have unit L2 norm (within 1e-6)")
    func unitNorm() throws {
        let model = try EncoderModel.seeded(TransformerConfig(vocabularySize: 30, contextLength: 16, tokenTypes: 2, modelWidth: 16, heads: 4, layers: 1,
                                                              feedForwardWidth: 32, layerNormEpsilon: 1e-12, activation: .gelu), seed: 4)
        let e = try model.sentenceEmbedding([1, 2, 3])
        let norm = e.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        #expect(abs(norm - 1) < 1e-6)
    }
}
