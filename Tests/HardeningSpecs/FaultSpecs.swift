import DecoderSpec
import Foundation
import SpecSupport
import Testing

/// Faults a training run meets from outside (docs/reliability.md, "Faults"): the disk filling up
/// while a checkpoint or a model directory is written, and two runs training into one checkpoint.
/// Each runs the real `decoder-spec train lm` on the tiny Bible the spec writes (`BibleFixture`).
enum FaultRuns {
    static let cliBuilt = FileManager.default.isExecutableFile(atPath: CLIFixtures.executable.path)

    /// `train lm` on the fixture in `root`: a model small enough that its vocabulary file outweighs
    /// its weights (d 1, no position table), so a directory's largest file is not the one written first.
    static func trainLM(_ root: URL, steps: Int = 6, seed: Int = 1, _ extra: [String]) -> [String] {
        ["train", "lm", "--data", root.path, "--context", "8", "--model-dim", "1", "--heads", "1", "--layers", "1", "--pe", "none",
         "--merges", "200", "--steps", String(steps), "--batch-tokens", "32", "--warmup", "1", "--seed", String(seed), "--threads", "1",
         "--extrapolate", ""] + extra
    }

    static func run(_ arguments: [String]) throws -> Subprocess.Result {
        try Subprocess.run(CLIFixtures.executable, arguments, environment: ProcessInfo.processInfo.environment.merging(["NO_COLOR": "1"]) { $1 })
    }

    /// The command under RLIMIT_FSIZE = `bytes` (a multiple of 512: `ulimit -f` counts 512-byte
    /// blocks in a POSIX sh). A write past the limit raises SIGXFSZ, whose default kills the
    /// process; the CLI ignores it, so the write fails with EFBIG, as a full disk fails one with
    /// ENOSPC. The test process starts its children with SIGXFSZ blocked (the signal mask survives
    /// exec), so perl unblocks it and restores its default before exec — the spec checks the CLI's
    /// own handling, as a user's shell would start it. No root needed.
    static func runLimited(_ arguments: [String], fileSizeLimit bytes: Int) throws -> Subprocess.Result {
        precondition(bytes > 0 && bytes % 512 == 0)
        let script = "ulimit -f \(bytes / 512) && if command -v perl >/dev/null; then exec perl -MPOSIX -e 'sigprocmask(SIG_UNBLOCK, POSIX::SigSet->new(SIGXFSZ)); $SIG{XFSZ} = q(DEFAULT); exec { $ARGV[0] } @ARGV or die \"$!\"' \"$0\" \"$@\"; else exec \"$0\" \"$@\"; fi"
        return try Subprocess.run(URL(fileURLWithPath: "/bin/sh"), ["-c", script, CLIFixtures.executable.path] + arguments,
                                  environment: ProcessInfo.processInfo.environment.merging(["NO_COLOR": "1"]) { $1 })
    }

    /// The lines of stderr that report an error.
    static func errorLines(_ r: Subprocess.Result) -> [Substring] { r.stderr.split(separator: "\n").filter { $0.contains(": error: ") } }

    /// Every file under `dir` (relative path → bytes).
    static func snapshot(_ dir: URL) throws -> [String: Data] {
        var out: [String: Data] = [:]
        guard let e = FileManager.default.enumerator(atPath: dir.path) else { return out }
        while let name = e.nextObject() as? String {
            var isDirectory: ObjCBool = false
            let url = dir.appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue {
                out[name] = try Data(contentsOf: url)
            }
        }
        return out
    }
}

@Suite("Faults: the disk fills up while a checkpoint or a model directory is written", .serialized)
struct DiskFullSpecs {
    @Test("A checkpoint write past the file-size limit: exit 1, one error line naming the file and EFBIG, the previous checkpoint byte-identical, no temporary left",
          .enabled(if: FaultRuns.cliBuilt, "decoder-spec not built: run swift build --build-tests first (make test does)"))
    func checkpoint() throws {
        let root = try Fixture.directory()
        defer { try? FileManager.default.removeItem(at: root) }
        _ = try BibleFixture.write(to: root)
        let checkpoint = root.appendingPathComponent("run.ckpt")
        let first = try FaultRuns.run(FaultRuns.trainLM(root, ["--checkpoint", checkpoint.path, "--checkpoint-every", "1", "--stop-after", "3"]))
        try #require(first.status == 0 && !first.signalled, "the first run failed: \(first.stderr)")
        let before = try Data(contentsOf: checkpoint)
        // Half the checkpoint: the next checkpoint write fails; the log beside it (a few hundred bytes) still fits.
        let limit = before.count / 2 / 512 * 512
        let r = try FaultRuns.runLimited(FaultRuns.trainLM(root, ["--checkpoint", checkpoint.path, "--checkpoint-every", "1"]), fileSizeLimit: limit)
        #expect(!r.signalled, "killed by signal \(r.status) (SIGXFSZ = 25 when the CLI does not ignore it): \(r.stderr)")
        #expect(r.status == 1, "exit status \(r.status); stderr: \(r.stderr)")
        let errors = FaultRuns.errorLines(r)
        #expect(errors.count == 1 && errors.first?.hasPrefix("decoder-spec train lm: error: ") == true, "error lines: \(errors)")
        for name in [checkpoint.path, "File too large"] { #expect(errors.first?.contains(name) == true, "the error line does not name \(name): \(errors)") }
        #expect(try Data(contentsOf: checkpoint) == before, "the previous checkpoint changed")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: root.path).filter { $0.contains(".tmp-") }
        #expect(leftovers.isEmpty, "temporary files left: \(leftovers)")
    }

    @Test("A model directory written past the limit: every previous file byte-identical (none replaced, although the largest is not written first); a new directory is not left behind",
          .enabled(if: FaultRuns.cliBuilt, "decoder-spec not built: run swift build --build-tests first (make test does)"))
    func modelDirectory() throws {
        let root = try Fixture.directory()
        defer { try? FileManager.default.removeItem(at: root) }
        _ = try BibleFixture.write(to: root)
        let output = root.appendingPathComponent("lm")
        let first = try FaultRuns.run(FaultRuns.trainLM(root, seed: 1, ["--output", output.path]))
        try #require(first.status == 0 && !first.signalled, "the first run failed: \(first.stderr)")
        let before = try FaultRuns.snapshot(output)
        #expect(Set(before.keys) == ["config.json", "model.safetensors", "vocab.json", "merges.txt"], "\(before.keys.sorted())")
        // The limit falls below the largest file and above every other one: exactly one write fails.
        let sizes = before.mapValues(\.count).sorted { $0.value > $1.value }
        let limit = (sizes[0].value - 1) / 512 * 512
        try #require(sizes.count == 4 && limit >= sizes[1].value, "no limit separates the largest file from the others: \(sizes)")
        // The fixture is built so the failing file is not model.safetensors, which is written first:
        // a directory written file by file would then hold new weights beside the old vocabulary.
        #expect(sizes[0].key != "model.safetensors", "sizes \(sizes)")
        let r = try FaultRuns.runLimited(FaultRuns.trainLM(root, seed: 2, ["--output", output.path]), fileSizeLimit: limit)
        #expect(!r.signalled && r.status == 1, "status \(r.status), signalled \(r.signalled): \(r.stderr)")
        let errors = FaultRuns.errorLines(r)
        #expect(errors.count == 1 && errors.first?.contains(output.appendingPathComponent(sizes[0].key).path) == true
                && errors.first?.contains("File too large") == true, "error lines: \(errors)")
        let after = try FaultRuns.snapshot(output)
        #expect(Set(after.keys) == Set(before.keys), "files now: \(after.keys.sorted())")
        for (name, data) in before { #expect(after[name] == data, "\(name) changed") }
        let hidden = try FileManager.default.contentsOfDirectory(atPath: output.path).filter { $0.hasPrefix(".") }
        #expect(hidden.isEmpty, "temporary files left: \(hidden)")

        let fresh = root.appendingPathComponent("new-lm")
        let r2 = try FaultRuns.runLimited(FaultRuns.trainLM(root, seed: 2, ["--output", fresh.path]), fileSizeLimit: limit)
        #expect(r2.status == 1 && FaultRuns.errorLines(r2).count == 1, "status \(r2.status): \(r2.stderr)")
        #expect(!FileManager.default.fileExists(atPath: fresh.path), "a failed write left the new directory \(fresh.path): \((try? FileManager.default.contentsOfDirectory(atPath: fresh.path)) ?? [])")
    }
}

/// The model directories that are not written by a library saver alone: `finetune ner --output`
/// (the CLI's own group: the classifier's weights, labels.txt, and config.json and vocab.txt copied
/// from `--model`) and `pretrain mlm --output` (`MaskedLanguageModel.save(to:copyingFrom:)`). Their
/// config.json is padded (an ignored `_padding` key) to be the largest file, and it is written after
/// model.safetensors: a directory written file by file would hold the new weights when it fails.
@Suite("Faults: the disk fills up while finetune ner or pretrain mlm writes its model directory", .serialized)
struct DiskFullCopiedDirectorySpecs {
    static func command(_ task: String, model: URL, data: URL, output: URL, seed: Int) -> [String] {
        switch task {
        case "ner":
            return ["finetune", "ner", "--model", model.path, "--data", data.path, "--epochs", "1", "--batch", "8", "--lr", "1e-3",
                    "--seed", String(seed), "--gemm", "naive", "--threads", "1", "--output", output.path]
        default:
            return ["pretrain", "mlm", "--model", model.path, "--data", data.path, "--steps", "3", "--batch", "2", "--lr", "1e-3",
                    "--seed", String(seed), "--max-eval-sentences", "4", "--threads", "1", "--output", output.path]
        }
    }

    @Test("--output past the file-size limit, over a previous directory and into a new one: exit 1, one error line naming config.json and EFBIG; every previous file byte-identical; no temporary left; a new directory not left behind",
          .enabled(if: FaultRuns.cliBuilt, "decoder-spec not built: run swift build --build-tests first (make test does)"),
          arguments: ["ner", "mlm"])
    func copiedDirectory(task: String) throws {
        let root = try Fixture.directory()
        defer { try? FileManager.default.removeItem(at: root) }
        let (model, data) = try KillAndResumeSpecs.writeFixture(in: root)
        let configURL = model.appendingPathComponent("config.json")
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: configURL)) as! [String: Any]
        config["_padding"] = String(repeating: "x", count: 1 << 17)
        try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys]).write(to: configURL)

        let output = root.appendingPathComponent("out")
        let first = try FaultRuns.run(Self.command(task, model: model, data: data, output: output, seed: 1))
        try #require(first.status == 0 && !first.signalled, "the first \(task) run failed: \(first.stderr)")
        let before = try FaultRuns.snapshot(output)
        let sizes = before.mapValues(\.count).sorted { $0.value > $1.value }
        let limit = (sizes[0].value - 1) / 512 * 512
        try #require(sizes.count >= 3 && sizes[0].key == "config.json" && limit >= sizes[1].value,
                     "no limit separates config.json from the other files: \(sizes)")

        let command = task == "ner" ? "finetune ner" : "pretrain mlm"
        let r = try FaultRuns.runLimited(Self.command(task, model: model, data: data, output: output, seed: 2), fileSizeLimit: limit)
        #expect(!r.signalled && r.status == 1, "status \(r.status), signalled \(r.signalled): \(r.stderr)")
        let errors = FaultRuns.errorLines(r)
        #expect(errors.count == 1 && errors.first?.hasPrefix("decoder-spec \(command): error: ") == true
                && errors.first?.contains(output.appendingPathComponent("config.json").path) == true
                && errors.first?.contains("File too large") == true, "error lines: \(errors)")
        let after = try FaultRuns.snapshot(output)
        #expect(Set(after.keys) == Set(before.keys), "files now: \(after.keys.sorted())")
        for (name, bytes) in before { #expect(after[name] == bytes, "\(task): \(name) changed") }
        let hidden = try FileManager.default.contentsOfDirectory(atPath: output.path).filter { $0.hasPrefix(".") }
        #expect(hidden.isEmpty, "temporary files left: \(hidden)")

        let fresh = root.appendingPathComponent("new-out")
        let r2 = try FaultRuns.runLimited(Self.command(task, model: model, data: data, output: fresh, seed: 2), fileSizeLimit: limit)
        #expect(r2.status == 1 && FaultRuns.errorLines(r2).count == 1, "status \(r2.status): \(r2.stderr)")
        #expect(!FileManager.default.fileExists(atPath: fresh.path),
                "a failed write left the new directory \(fresh.path): \((try? FileManager.default.contentsOfDirectory(atPath: fresh.path)) ?? [])")
    }
}

@Suite("Faults: two runs training into one checkpoint", .serialized)
struct CheckpointLockSpecs {
    @Test("A second train lm into a --checkpoint that a running train lm holds: exit 1, one error line naming the checkpoint and the holder's pid; the holder goes on. After kill -9 of the holder, the next run is not blocked and resumes",
          .enabled(if: FaultRuns.cliBuilt, "decoder-spec not built: run swift build --build-tests first (make test does)"))
    func twoWriters() throws {
        let root = try Fixture.directory()
        defer { try? FileManager.default.removeItem(at: root) }
        _ = try BibleFixture.write(to: root)
        let checkpoint = root.appendingPathComponent("run.ckpt")
        let arguments = FaultRuns.trainLM(root, steps: 1_000_000, ["--checkpoint", checkpoint.path, "--checkpoint-every", "1"])
        let holder = try Subprocess.launch(CLIFixtures.executable, arguments)
        defer { if holder.isRunning { kill(holder.processIdentifier, SIGKILL) } }
        let deadline = Date().addingTimeInterval(300)
        while holder.isRunning, (KillAndResumeSpecs.checkpointStep(checkpoint) ?? 0) < 2, Date() < deadline { usleep(2_000) }
        try #require(holder.isRunning, "the first run ended before the second started")

        // The same command, bounded (--stop-after) so that a build without the lock cannot run on for its million steps.
        let second = try FaultRuns.run(arguments + ["--stop-after", "3"])
        try #require(holder.isRunning, "the first run ended while the second ran: the refusal was not tested against a live holder")
        #expect(!second.signalled && second.status == 1, "status \(second.status): \(second.stderr)")
        let errors = FaultRuns.errorLines(second)
        #expect(errors.count == 1, "error lines: \(errors)")
        for name in ["decoder-spec train lm: error: ", checkpoint.path, "pid \(holder.processIdentifier)"] {
            #expect(errors.first?.contains(name) == true, "the error line does not name \(name): \(errors)")
        }
        #expect(!second.stderr.contains("resumed from"), "the second run read the checkpoint before refusing")

        // kill -9: the kernel drops the holder's lock with the process; the lock file stays.
        let before = KillAndResumeSpecs.checkpointStep(checkpoint) ?? 0
        while holder.isRunning, (KillAndResumeSpecs.checkpointStep(checkpoint) ?? 0) <= before, Date() < deadline { usleep(2_000) }
        kill(holder.processIdentifier, SIGKILL)
        holder.waitUntilExit()
        #expect(holder.terminationReason == .uncaughtSignal)
        #expect(FileManager.default.fileExists(atPath: checkpoint.path + ".lock"))
        let killedAt = try #require(KillAndResumeSpecs.checkpointStep(checkpoint))
        let next = try FaultRuns.run(FaultRuns.trainLM(root, steps: 1_000_000, ["--checkpoint", checkpoint.path, "--checkpoint-every", "1",
                                                                               "--stop-after", String(killedAt + 2)]))
        #expect(next.status == 0 && !next.signalled, "the run after the kill failed: \(next.stderr)")
        #expect(next.stderr.contains("resumed from \(checkpoint.path) at step \(killedAt)"), "\(next.stderr)")
        #expect(KillAndResumeSpecs.checkpointStep(checkpoint) == killedAt + 2)
    }
}
