import DecoderSpec
import Foundation
import SpecSupport
import Testing

/// Kill -9, many times over one run, for the trainer's other tasks: `train lm` and `train
/// translate` (the Transformer and the GRU baseline) on the tiny Bible the spec writes
/// (`BibleFixture`), and `pretrain mlm` on the tiny BERT and CoNLL files of `KillAndResumeSpecs`,
/// checkpointing after every step. The run is killed at several steps (each kill waits for a later
/// checkpoint than the last), restarted each time with the same command, and must end with a
/// `model.safetensors` byte-identical to that of a run that was never interrupted — on one thread
/// and on two (a resumed data-parallel step must combine its shards exactly as the uninterrupted
/// one). The GRU baseline writes no model directory (`--output` does not apply): its final
/// checkpoint (weights, AdamW moments, step) is compared instead, tensor by tensor.
@Suite("Kill -9 many times during train lm, train translate and pretrain mlm, resume: the same weights as an uninterrupted run", .serialized)
struct KillAndResumeTasksSpecs {
    static let steps = 40
    /// The kills: each once the checkpoint reaches at least this step (and differs from the last kill's).
    static let killAt = [5, 15, 27]

    static func command(_ task: String, root: URL, output: URL, checkpoint: URL, threads: Int) -> [String] {
        let common = ["--data", root.path, "--model-dim", "16", "--heads", "2", "--layers", "1", "--merges", "40", "--steps", String(steps),
                      "--warmup", "5", "--seed", "3", "--threads", String(threads), "--output", output.path,
                      "--checkpoint", checkpoint.path, "--checkpoint-every", "1"]
        switch task {
        case "lm": return ["train", "lm", "--context", "16", "--batch-tokens", "64", "--extrapolate", ""] + common
        case "gru":
            return ["train", "translate", "--arch", "gru", "--data", root.path, "--model-dim", "16", "--merges", "40", "--steps", String(steps), "--batch-tokens", "96",
                    "--beams", "1", "--eval-verses", "2", "--warmup", "5", "--seed", "3", "--threads", String(threads),
                    "--checkpoint", checkpoint.path, "--checkpoint-every", "1"]
        case "mlm":
            return ["pretrain", "mlm", "--model", root.appendingPathComponent("model").path, "--data", root.appendingPathComponent("data").path,
                    "--steps", String(steps), "--batch", "2", "--lr", "1e-3", "--seed", "7", "--max-eval-sentences", "4", "--threads", String(threads),
                    "--output", output.path, "--checkpoint", checkpoint.path, "--checkpoint-every", "1"]
        default: return ["train", "translate", "--batch-tokens", "96", "--beams", "1", "--eval-verses", "2"] + common
        }
    }

    /// The tensors of a safetensors file by name, as raw bytes (bitwise comparison).
    static func tensorBytes(_ url: URL) throws -> [String: [UInt8]] {
        let file = try SafeTensorsFile.read(contentsOf: url)
        return try Dictionary(uniqueKeysWithValues: file.tensors.keys.map { ($0, Array(try file.rawBytes($0))) })
    }

    static func launch(_ arguments: [String]) throws -> Process {
        let p = Process()
        p.executableURL = CLIFixtures.executable
        p.arguments = arguments
        (p.standardOutput, p.standardError) = (FileHandle.nullDevice, FileHandle.nullDevice)
        try p.run()
        return p
    }

    func run(_ task: String, threads: Int) throws {
        let root = try Fixture.directory()
        defer { try? FileManager.default.removeItem(at: root) }
        if task == "mlm" { _ = try KillAndResumeSpecs.writeFixture(in: root) } else { _ = try BibleFixture.write(to: root) }
        let straightOut = root.appendingPathComponent("out-straight"), resumedOut = root.appendingPathComponent("out-resumed")
        let straight = try Self.launch(Self.command(task, root: root, output: straightOut, checkpoint: root.appendingPathComponent("straight.ckpt"), threads: threads))
        straight.waitUntilExit()
        try #require(straight.terminationReason == .exit && straight.terminationStatus == 0, "the uninterrupted \(task) run failed")

        let checkpoint = root.appendingPathComponent("killed.ckpt")
        let arguments = Self.command(task, root: root, output: resumedOut, checkpoint: checkpoint, threads: threads)
        var kills: [Int] = []
        for target in Self.killAt {
            let victim = try Self.launch(arguments)
            let deadline = Date().addingTimeInterval(300)
            while victim.isRunning, (KillAndResumeSpecs.checkpointStep(checkpoint) ?? 0) < max(target, (kills.last ?? 0) + 1), Date() < deadline { usleep(1_000) }
            kill(victim.processIdentifier, SIGKILL)
            victim.waitUntilExit()
            try #require(victim.terminationReason == .uncaughtSignal, "the \(task) run finished before kill \(kills.count + 1); the spec needs more steps")
            let at = try #require(KillAndResumeSpecs.checkpointStep(checkpoint), "no complete checkpoint after a kill")
            kills.append(at)
        }
        #expect(kills == kills.sorted() && Set(kills).count == kills.count && kills.last! < Self.steps, "killed at \(kills)")
        #expect(!FileManager.default.fileExists(atPath: resumedOut.path), "output written before the end")
        let resumed = try Self.launch(arguments)
        resumed.waitUntilExit()
        try #require(resumed.terminationReason == .exit && resumed.terminationStatus == 0, "the resumed \(task) run failed")
        #expect(KillAndResumeSpecs.checkpointStep(checkpoint) == Self.steps)
        if task == "gru" {
            let a = try Self.tensorBytes(root.appendingPathComponent("straight.ckpt")), b = try Self.tensorBytes(checkpoint)
            #expect(a.count > 0 && a.keys.sorted() == b.keys.sorted(), "gru: the checkpoints hold other tensors")
            let differing = a.keys.sorted().filter { a[$0] != b[$0] }
            #expect(differing.isEmpty, "gru, \(threads) thread(s), killed at steps \(kills): \(differing.count) tensors differ from the uninterrupted run, e.g. \(differing.prefix(3))")
            return
        }
        let a = try Data(contentsOf: straightOut.appendingPathComponent("model.safetensors"))
        let b = try Data(contentsOf: resumedOut.appendingPathComponent("model.safetensors"))
        #expect(a == b, "\(task), \(threads) thread(s), killed at steps \(kills): the resumed weights differ from the uninterrupted run")
    }

    @Test("train lm, 40 steps, killed at ≥ 5, ≥ 15, ≥ 27, one thread", .enabled(if: FaultRuns.cliBuilt, "decoder-spec not built"))
    func languageModel() throws { try run("lm", threads: 1) }

    @Test("train lm on two threads", .enabled(if: FaultRuns.cliBuilt, "decoder-spec not built"))
    func languageModelTwoThreads() throws { try run("lm", threads: 2) }

    @Test("train translate, 40 steps, killed at ≥ 5, ≥ 15, ≥ 27, one thread", .enabled(if: FaultRuns.cliBuilt, "decoder-spec not built"))
    func translation() throws { try run("translate", threads: 1) }

    @Test("train translate on two threads", .enabled(if: FaultRuns.cliBuilt, "decoder-spec not built"))
    func translationTwoThreads() throws { try run("translate", threads: 2) }

    @Test("train translate --arch gru (the recurrent baseline), 40 steps, killed at ≥ 5, ≥ 15, ≥ 27: its final checkpoint bitwise", .enabled(if: FaultRuns.cliBuilt, "decoder-spec not built"))
    func gruTranslation() throws { try run("gru", threads: 1) }

    @Test("train translate --arch gru on two threads", .enabled(if: FaultRuns.cliBuilt, "decoder-spec not built"))
    func gruTranslationTwoThreads() throws { try run("gru", threads: 2) }

    @Test("pretrain mlm (masked-LM continued pre-training), 40 steps, killed at ≥ 5, ≥ 15, ≥ 27, one thread", .enabled(if: FaultRuns.cliBuilt, "decoder-spec not built"))
    func maskedLanguageModel() throws { try run("mlm", threads: 1) }

    @Test("pretrain mlm on two threads", .enabled(if: FaultRuns.cliBuilt, "decoder-spec not built"))
    func maskedLanguageModelTwoThreads() throws { try run("mlm", threads: 2) }
}
