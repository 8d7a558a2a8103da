import Models
import TensorCore

/// Checks of the KV-cached decoder (docs/decoding.md, docs/bug-zoo.md #11–12).
public enum DecoderChecks {
    /// A tiny GPT-2-shaped model (V 37, context 24, d 16, 4 heads, 2 layers), embedding scaled ×50 so
    /// logits are far from uniform (as ModelSpecs' `tinyDecoder`).
    public static func tinyModel(seed: UInt64 = 7) throws -> DecoderOnlyModel {
        var m = try DecoderOnlyModel.seeded(
            DecoderOnlyConfig(vocabularySize: 37, contextLength: 24, modelWidth: 16, heads: 4, layers: 2), seed: seed)
        for i in m.tokenEmbedding.weight.storage.indices { m.tokenEmbedding.weight.storage[i] *= 50 }
        return m
    }

    /// KV cache equals no cache: feeding the prompt, then one token at a time, through one cache
    /// gives at every step the last-position logits of a full forward pass over the whole prefix.
    /// Tolerance 8 Float ULPs of the row's max |logit| (same dot products, different blocking).
    public static func cacheEqualsRecompute(_ decoder: (DecoderOnlyModel, [[Int]]) throws -> [[Float]],
                                            model: DecoderOnlyModel, prompt: [Int], continuation: [Int]) -> Verdict {
        let context = "prompt \(prompt), then \(continuation) one at a time"
        return CheckSupport.guarded(context) {
            let chunks = [prompt] + continuation.map { [$0] }
            let cached = try decoder(model, chunks)
            guard cached.count == chunks.count else { return .fail("\(cached.count) logit rows for \(chunks.count) chunks. \(context)") }
            var prefix: [Int] = []
            for (step, chunk) in chunks.enumerated() {
                prefix += chunk
                let full = try model.forward(prefix).row(prefix.count - 1)
                let scale = full.map { abs($0) }.max()!
                let v = compare(cached[step], full.map(Double.init), .absolute(8 * Double(scale.ulp)),
                                "step \(step) (positions 0..<\(prefix.count)): cached vs full recompute. \(context)")
                if !v.passed { return v }
            }
            return .pass
        }
    }
}
