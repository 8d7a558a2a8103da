import DecoderSpec
import Foundation
import SpecSupport
import Testing

/// Kill -9, many times over one run, for every task the trainer serves: `train lm`, `train
/// translate` (the Transformer and the GRU baseline) and `finetune classify` on the tiny Bible the
/// spec writes (`BibleFixture`; for the classifier with two more training books, so that training
/// sees three genres), `finetune ner` and `pretrain mlm` on the tiny BERT and CoNLL files of
/// `KillAndResumeSpecs`, checkpointing after every step. The run is killed at several steps (each
/// kill waits for a later checkpoint than the last), restarted each time with the same command, and
/// must end with a `model.safetensors` byte-identical to that of a run never interrupted — on one thread
/// and on two (a resumed data-parallel step must combine its shards exactly as the uninterrupted
/// one). The GRU baseline and the classifier write no model directory (no `--output`): their
/// final checkpoint (weights, AdamW moments, step) is compared instead, tensor by tensor.
@Suite("Kill -9 many times during train lm, train translate, finetune classify, finetune ner and pretrain mlm, resume: the same weights as an uninterrupted run", .serialized)
struct KillAndResumeTasksSpecs {
    static let steps = 40
    /// The kills: three checkpoint steps drawn afresh on every run (the system generator), distinct,
    /// from 2 … ⌊2·total/3⌋ and sorted; each kill waits for the checkpoint to reach its step and
    /// pass the last kill's. The top third is left to the run, so a kill that lands a few steps
    /// late still finds it running. The steps are printed and named in every failure message.
    static func killPoints(total: Int) -> [Int] {
        Array((2...(2 * total / 3)).shuffled().prefix(3)).sorted()
    }
    /// The books `finetune classify`'s fixture adds to Genesis (`BibleFixture.write(extraTrainingBooks:)`).
    static let classifyExtraBooks = [19, 40]
    /// `finetune ner` counts epochs, not steps: one epoch of `KillAndResumeSpecs`' 96 sentences, batch 2.
    static let nerSteps = 48

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
        case "classify":
            return ["finetune", "classify", "--model", "gpt", "--data", root.path, "--model-dim", "16", "--heads", "2", "--layers", "1", "--merges", "40",
                    "--max-length", "16", "--steps", String(steps), "--batch", "4", "--lr", "1e-3", "--warmup", "5", "--seed", "3",
                    "--threads", String(threads), "--checkpoint", checkpoint.path, "--checkpoint-every", "1"]
        case "ner":
            // One epoch of the 96 training sentences in batches of 2: 48 steps (`nerSteps`).
            return ["finetune", "ner", "--model", root.appendingPathComponent("model").path, "--data", root.appendingPathComponent("data").path,
                    "--epochs", "1", "--batch", "2", "--lr", "1e-3", "--seed", "7", "--gemm", "naive", "--threads", String(threads),
                    "--output", output.path, "--checkpoint", checkpoint.path, "--checkpoint-every", "1"]
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

    func run(_ task: String, threads: Int) throws {
        let root = try Fixture.directory()
        defer { try? FileManager.default.removeItem(at: root) }
        let total = task == "ner" ? Self.nerSteps : Self.steps
        if task == "mlm" || task == "ner" {
            _ = try KillAndResumeSpecs.writeFixture(in: root)
        } else if task == "classify" {
            // The default fixture's training split is Genesis alone (one genre); a classifier needs
            // several: Psalms (wisdom) and Matthew (gospels) join it.
            let db = try BibleFixture.write(to: root, extraTrainingBooks: Self.classifyExtraBooks)
            let genres = Set(try GenreData.prepare(verses: BibleCorpus.verses(database: db, version: "4")).train.map(\.label))
            try #require(genres.count >= 2, "the fixture's training split has \(genres.count) genre(s)")
        } else {
            _ = try BibleFixture.write(to: root)
        }
        let straightOut = root.appendingPathComponent("out-straight"), resumedOut = root.appendingPathComponent("out-resumed")
        let straight = try Subprocess.launch(CLIFixtures.executable, Self.command(task, root: root, output: straightOut, checkpoint: root.appendingPathComponent("straight.ckpt"), threads: threads))
        straight.waitUntilExit()
        try #require(straight.terminationReason == .exit && straight.terminationStatus == 0, "the uninterrupted \(task) run failed")

        let checkpoint = root.appendingPathComponent("killed.ckpt")
        let arguments = Self.command(task, root: root, output: resumedOut, checkpoint: checkpoint, threads: threads)
        var kills: [Int] = []
        let targets = Self.killPoints(total: total)
        print("kill -9 \(task), \(threads) thread(s): killing once the checkpoint reaches \(targets) of \(total) steps")
        for target in targets {
            let victim = try Subprocess.launch(CLIFixtures.executable, arguments)
            let deadline = Date().addingTimeInterval(300)
            while victim.isRunning, (KillAndResumeSpecs.checkpointStep(checkpoint) ?? 0) < max(target, (kills.last ?? 0) + 1), Date() < deadline { usleep(1_000) }
            kill(victim.processIdentifier, SIGKILL)
            victim.waitUntilExit()
            try #require(victim.terminationReason == .uncaughtSignal, "the \(task) run finished before kill \(kills.count + 1) (drawn: \(targets)); the spec needs more steps")
            let at = try #require(KillAndResumeSpecs.checkpointStep(checkpoint), "no complete checkpoint after a kill")
            kills.append(at)
        }
        #expect(kills == kills.sorted() && Set(kills).count == kills.count && kills.last! < total && zip(kills, targets).allSatisfy { $0 >= $1 },
                "killed at \(kills) for the drawn steps \(targets)")
        #expect(!FileManager.default.fileExists(atPath: resumedOut.path), "output written before the end")
        let resumed = try Subprocess.launch(CLIFixtures.executable, arguments)
        resumed.waitUntilExit()
        try #require(resumed.terminationReason == .exit && resumed.terminationStatus == 0, "the resumed \(task) run failed")
        #expect(KillAndResumeSpecs.checkpointStep(checkpoint) == total)
        if task == "gru" || task == "classify" {
            let a = try Self.tensorBytes(root.appendingPathComponent("straight.ckpt")), b = try Self.tensorBytes(checkpoint)
            #expect(a.count > 0 && a.keys.sorted() == b.keys.sorted(), "\(task): the checkpoints hold other tensors")
            let differing = a.keys.sorted().filter { a[$0] != b[$0] }
            #expect(differing.isEmpty, "\(task), \(threads) thread(s), killed at steps \(kills): \(differing.count) tensors differ from the uninterrupted run, e.g. \(differing.prefix(3))")
            return
        }
        let a = try Data(contentsOf: straightOut.appendingPathComponent("model.safetensors"))
        let b = try Data(contentsOf: resumedOut.appendingPathComponent("model.safetensors"))
        #expect(a == b, "\(task), \(threads) thread(s), killed at steps \(kills): the resumed weights differ from the uninterrupted run")
    }

    @Test("train lm, 40 steps, killed at three random steps, one thread", .enabled(if: FaultRuns.cliBuilt, "decoder-spec not built"))
    func languageModel() throws { try run("lm", threads: 1) }

    @Test("train lm on two threads", .enabled(if: FaultRuns.cliBuilt, "decoder-spec not built"))
    func languageModelTwoThreads() throws { try run("lm", threads: 2) }

    @Test("train translate, 40 steps, killed at three random steps, one thread", .enabled(if: FaultRuns.cliBuilt, "decoder-spec not built"))
    func translation() throws { try run("translate", threads: 1) }

    @Test("train translate on two threads", .enabled(if: FaultRuns.cliBuilt, "decoder-spec not built"))
    func translationTwoThreads() throws { try run("translate", threads: 2) }

    @Test("train translate --arch gru (the recurrent baseline), 40 steps, killed at three random steps: its final checkpoint bitwise", .enabled(if: FaultRuns.cliBuilt, "decoder-spec not built"))
    func gruTranslation() throws { try run("gru", threads: 1) }

    @Test("train translate --arch gru on two threads", .enabled(if: FaultRuns.cliBuilt, "decoder-spec not built"))
    func gruTranslationTwoThreads() throws { try run("gru", threads: 2) }

    @Test("finetune classify (a seeded GPT with a sequence-classification head, three genres in training), 40 steps, killed at three random steps: its final checkpoint bitwise, one thread",
          .enabled(if: FaultRuns.cliBuilt, "decoder-spec not built"))
    func classification() throws { try run("classify", threads: 1) }

    @Test("finetune classify on two threads", .enabled(if: FaultRuns.cliBuilt, "decoder-spec not built"))
    func classificationTwoThreads() throws { try run("classify", threads: 2) }

    @Test("finetune ner, one epoch of 48 steps, killed at three random steps (KillAndResumeSpecs kills it once, over 192 steps), one thread",
          .enabled(if: FaultRuns.cliBuilt, "decoder-spec not built"))
    func namedEntities() throws { try run("ner", threads: 1) }

    @Test("finetune ner on two threads", .enabled(if: FaultRuns.cliBuilt, "decoder-spec not built"))
    func namedEntitiesTwoThreads() throws { try run("ner", threads: 2) }

    @Test("pretrain mlm (masked-LM continued pre-training), 40 steps, killed at three random steps, one thread", .enabled(if: FaultRuns.cliBuilt, "decoder-spec not built"))
    func maskedLanguageModel() throws { try run("mlm", threads: 1) }

    @Test("pretrain mlm on two threads", .enabled(if: FaultRuns.cliBuilt, "decoder-spec not built"))
    func maskedLanguageModelTwoThreads() throws { try run("mlm", threads: 2) }
}
