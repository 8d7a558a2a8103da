import DecoderSpec
import Foundation
import SpecSupport
import Testing

/// A real interruption: `decoder-spec finetune ner` is killed with SIGKILL while it writes a
/// checkpoint after every step, then started again with the same command. It resumes from the
/// last complete checkpoint and must end with exactly the weights of a run that was never
/// interrupted (same seed): every checkpoint on disk was either the old or the new complete file
/// (temporary file + fsync + rename), and the resumed run replays the same batches.
@Suite("Kill -9 during fine-tuning, resume: the same weights as an uninterrupted run")
struct KillAndResumeSpecs {
    /// A tiny BERT checkpoint directory (config.json, model.safetensors in HF names, vocab.txt) and
    /// CoNLL train/valid/test files from the NER fixture.
    static func writeFixture(in root: URL) throws -> (model: URL, data: URL) {
        let model = root.appendingPathComponent("model"), data = root.appendingPathComponent("data")
        for dir in [model, data] { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) }
        let vocabulary = NERFixture.vocabulary
        let encoder = try EncoderModel.seeded(
            TransformerConfig(vocabularySize: vocabulary.count, contextLength: 32, tokenTypes: 2, modelWidth: 16, heads: 2, layers: 1, feedForwardWidth: 32, layerNormEpsilon: 1e-12, activation: .gelu), seed: 11)
        try TokenClassifier(encoder: encoder, labels: ["O", "B-PER"], seed: 0).save(to: model.appendingPathComponent("model.safetensors"))
        let config = #"{"model_type": "bert", "hidden_size": 16, "num_attention_heads": 2, "num_hidden_layers": 1, "intermediate_size": 32, "#
            + #""max_position_embeddings": 32, "vocab_size": \#(vocabulary.count), "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_act": "gelu"}"#
        try Data(config.utf8).write(to: model.appendingPathComponent("config.json"))
        try Data((vocabulary.joined(separator: "\n") + "\n").utf8).write(to: model.appendingPathComponent("vocab.txt"))
        for (name, count, seed) in [("train", 96, UInt64(1)), ("valid", 8, 2), ("test", 8, 3)] {
            let text = NERFixture.sentences(count: count, seed: seed).map { s in
                zip(s.words, s.tags).map { "\($0) NN O \($1)" }.joined(separator: "\n") + "\n"
            }.joined(separator: "\n")
            try Data(text.utf8).write(to: data.appendingPathComponent("\(name).txt"))
        }
        return (model, data)
    }

    static func command(model: URL, data: URL, output: URL, checkpoint: URL) -> [String] {
        ["finetune", "ner", "--model", model.path, "--data", data.path, "--epochs", "4", "--batch", "2", "--lr", "1e-3", "--seed", "7",
         "--gemm", "naive", "--output", output.path, "--checkpoint", checkpoint.path, "--checkpoint-every", "1"]
    }

    /// The step recorded in a checkpoint file, nil while none exists.
    static func checkpointStep(_ url: URL) -> Int? {
        guard let file = try? SafeTensorsFile.read(contentsOf: url) else { return nil }
        return file.metadata["step"].flatMap { Int($0) }
    }

    @Test("SIGKILL after step ≥ 20 of 192, then the same command again → model.safetensors bitwise equal to an uninterrupted run",
          .enabled(if: FileManager.default.isExecutableFile(atPath: CLIFixtures.executable.path), "decoder-spec not built: run swift build --build-tests first (make test does)"))
    func killAndResume() throws {
        let root = try Fixture.directory()
        defer { try? FileManager.default.removeItem(at: root) }
        let (model, data) = try Self.writeFixture(in: root)

        // 1. The uninterrupted run.
        let straight = try Subprocess.launch(CLIFixtures.executable, Self.command(model: model, data: data, output: root.appendingPathComponent("out-straight"),
                                                    checkpoint: root.appendingPathComponent("straight.ckpt")))
        straight.waitUntilExit()
        try #require(straight.terminationReason == .exit && straight.terminationStatus == 0, "the uninterrupted run failed")

        // 2. The interrupted run: killed once its checkpoint says step ≥ 20.
        let checkpoint = root.appendingPathComponent("killed.ckpt")
        let arguments = Self.command(model: model, data: data, output: root.appendingPathComponent("out-resumed"), checkpoint: checkpoint)
        let victim = try Subprocess.launch(CLIFixtures.executable, arguments)
        let deadline = Date().addingTimeInterval(300)
        while victim.isRunning, (Self.checkpointStep(checkpoint) ?? 0) < 20, Date() < deadline { usleep(2_000) }
        kill(victim.processIdentifier, SIGKILL)
        victim.waitUntilExit()
        try #require(victim.terminationReason == .uncaughtSignal, "the run finished before it could be killed; the spec needs more steps")
        let killedAt = try #require(Self.checkpointStep(checkpoint), "no complete checkpoint after the kill")
        #expect(killedAt >= 20 && killedAt < 192, "killed at step \(killedAt)")
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("out-resumed").path), "output written before the end")

        // 3. The same command again resumes and finishes.
        let resumed = try Subprocess.launch(CLIFixtures.executable, arguments)
        resumed.waitUntilExit()
        try #require(resumed.terminationReason == .exit && resumed.terminationStatus == 0, "the resumed run failed")
        #expect(Self.checkpointStep(checkpoint) == 192)

        let a = try Data(contentsOf: root.appendingPathComponent("out-straight/model.safetensors"))
        let b = try Data(contentsOf: root.appendingPathComponent("out-resumed/model.safetensors"))
        #expect(a == b, "killed at step \(killedAt): the resumed weights differ from the uninterrupted run")
        // A temporary file the kill may have left is removed by the next complete write.
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: root.path).filter { $0.hasPrefix(".killed.ckpt.tmp-") }
        #expect(leftovers.isEmpty, "stale temporary files: \(leftovers)")
    }
}

@Suite("Atomic writes clean up after killed writers")
struct StaleTemporarySpecs {
    @Test("A write removes .<name>.tmp-<pid>-* of dead processes only, never another live writer's or other files'")
    func removesOnlyDeadWriters() throws {
        let dir = try Fixture.directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let finished = Process()
        finished.executableURL = URL(fileURLWithPath: "/bin/true")
        try finished.run()
        finished.waitUntilExit()
        let dead = finished.processIdentifier, me = getpid()
        let names = [".out.txt.tmp-\(dead)-1", ".out.txt.tmp-\(me)-2", ".out.txt.tmp-1-3", ".other.txt.tmp-\(dead)-4", "keep.txt"]
        for name in names { try Data("x".utf8).write(to: dir.appendingPathComponent(name)) }
        try AtomicFile.write("new", to: dir.appendingPathComponent("out.txt"))
        let left = Set(try FileManager.default.contentsOfDirectory(atPath: dir.path))
        #expect(left == Set(names.dropFirst() + ["out.txt"]), "\(left.sorted())")
        #expect(try String(contentsOf: dir.appendingPathComponent("out.txt"), encoding: .utf8) == "new")
    }
}

@Suite("A failed decoding step leaves the KV cache as it was")
struct CacheRollbackSpecs {
    @Test("Overflowing activations fail the step after every layer appended: the cache is rolled back bitwise, and the next step still matches a full recompute")
    func rollback() throws {
        let m = try Fixture.tinyDecoder()
        var cache = m.makeCache()
        _ = try m.logits(appending: [1, 2, 3], to: &cache)
        let before = cache
        // The same model with weights ×1e30 in the FFN: finite, but the activations overflow and the
        // head's logits check fails after the layer has appended its K/V.
        var layer = m.layers[0]
        layer.feedForward.up.weight.storage = layer.feedForward.up.weight.storage.map { $0 * 1e30 }
        layer.feedForward.down.weight.storage = layer.feedForward.down.weight.storage.map { $0 * 1e30 }
        let big = try DecoderOnlyModel(config: m.config, tokenEmbedding: m.tokenEmbedding, positions: m.positions, layers: [layer],
                                       finalNorm: m.finalNorm)
        #expect(throws: DecoderSpecError.self) { _ = try big.logits(appending: [4], to: &cache) }
        #expect(cache == before, "cache length \(cache.length), expected \(before.length)")
        let cached = try m.logits(appending: [4], to: &cache)
        let full = try m.logits(forSequence: [1, 2, 3, 4])
        // As ModelSpecs' cache = recompute: 8 Float ULPs of the largest |logit| (same dot products,
        // GEMV vs blocked summation order).
        let scale = Double((full.map(abs).max() ?? 0).ulp)
        #expect(compare(cached, full.map(Double.init), .absolute(8 * scale), "after rollback").passed)
    }
}
