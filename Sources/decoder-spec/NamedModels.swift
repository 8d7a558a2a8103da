import DecoderSpec
import Foundation

/// The seeded GPT-2-style models the CLI knows by name, one name per model: `generate --model NAME`,
/// `forward --model NAME` and `demo` (which runs `demo`) mean the same weights.
enum NamedModel: String, CaseIterable {
    /// The demo's decoder: 2 layers, d 16, 4 heads, V 10 (the demo's words), context 16; fixed weights
    /// (seed 6, widened so its attention and distributions are not uniform).
    case demo
    /// 2 layers, d 32, 4 heads, V 64, context 64; weights from --seed.
    case tiny
    /// GPT-2 small's shape (12 layers, d 768, V 50257); weights from --seed.
    case gpt2Small = "gpt2-small"

    /// The names, for help texts: "demo, tiny, gpt2-small".
    static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }

    func model(seed: UInt64, path: KernelPath) throws -> DecoderOnlyModel {
        switch self {
        case .demo: return try Self.demoModel(path: path)
        case .tiny:
            return try DecoderOnlyModel.seeded(TransformerConfig(vocabularySize: 64, contextLength: 64, modelWidth: 32, heads: 4, layers: 2),
                                               seed: seed, path: path)
        case .gpt2Small: return try DecoderOnlyModel.seeded(.gpt2Small, seed: seed, path: path)
        }
    }

    static func demoModel(path: KernelPath) throws -> DecoderOnlyModel {
        var m = try DecoderOnlyModel.seeded(
            TransformerConfig(vocabularySize: Demo.words.count, contextLength: 16, modelWidth: 16, heads: 4, layers: 2), seed: 6, path: path)
        // Random embeddings of std 0.02 give nearly uniform logits; widen them so the
        // distributions printed below are not all ≈ 1/16; widen W_Q, W_K so attention is not
        // uniform, and the FFN so each layer moves the residual stream away from the input token.
        let (se, sqk, sff): (Float, Float, Float) = (30, 25, 20)
        for i in m.tokenEmbedding.weight.storage.indices { m.tokenEmbedding.weight.storage[i] *= se }
        for l in m.layers.indices {
            for i in m.layers[l].selfAttention.query.weight.storage.indices {
                m.layers[l].selfAttention.query.weight.storage[i] *= sqk
                m.layers[l].selfAttention.key.weight.storage[i] *= sqk
            }
            for i in m.layers[l].feedForward.up.weight.storage.indices {
                m.layers[l].feedForward.up.weight.storage[i] *= sff
                m.layers[l].feedForward.down.weight.storage[i] *= sff
            }
        }
        return m
    }
}

/// A GPT-2 checkpoint directory, or a named seeded model (`NamedModel`) for runs without a download.
func loadDecoderOnly(_ model: String, seed: UInt64, path: KernelPath) throws -> DecoderOnlyModel {
    if let named = NamedModel(rawValue: model) { return try named.model(seed: seed, path: path) }
    return try DecoderOnlyModel.load(directory: URL(fileURLWithPath: model), path: path)
}
