import DecoderSpec
import Foundation
import SpecSupport
import Testing

@Suite("Bad-input matrix: every public entry point throws a typed error naming the offending value")
struct LibraryBadInputSpecs {
    @Test("Each bad input raises its DecoderSpecError case, and the message names the shape, id, value or file",
          arguments: LibraryRows.all)
    func row(_ row: ErrorRow) {
        do {
            try row.call()
            Issue.record("no error for \(row.input); expected .\(row.kind.rawValue)")
        } catch let error as DecoderSpecError {
            #expect(ErrorKind(error) == row.kind, "got .\(ErrorKind(error).rawValue): \(error)")
            let message = error.description
            for name in row.naming {
                #expect(message.contains(name), "the message does not name \"\(name)\": \(message)")
            }
            #expect(!message.contains("\n"), "a message is one line: \(message)")
        } catch {
            Issue.record("\(type(of: error)) instead of DecoderSpecError: \(error)")
        }
    }

    @Test("Legal extreme inputs give the documented result", arguments: ResultRows.all)
    func documented(_ row: ResultRow) throws {
        let problem = try row.check()
        #expect(problem == nil, "\(row.documented): \(problem ?? "")")
    }

    @Test("The matrix covers every DecoderSpecError case and every area")
    func coverage() {
        let kinds = Set(LibraryRows.all.map(\.kind))
        for kind in [ErrorKind.shapeMismatch, .emptySequence, .idOutOfRange, .nonFinite, .invalidArgument, .malformedFile, .missingFile] {
            #expect(kinds.contains(kind), "no row expects .\(kind.rawValue)")
        }
        #expect(Set(LibraryRows.all.map(\.area)).count == 11)
    }

    @Test("docs/errors.md explains every error case, every area of the matrix and every CLI command")
    func documented() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let page = try String(contentsOf: root.appendingPathComponent("docs/errors.md"), encoding: .utf8)
        for kind in Set(LibraryRows.all.map(\.kind)) { #expect(page.contains("`\(kind.rawValue)`"), "no entry for .\(kind.rawValue)") }
        let counts = "(\(LibraryRows.all.count) library rows, \(ResultRows.all.count) documented results, \(CLIRows.all.count) command lines)"
        let saysCounts = page.replacingOccurrences(of: "\n", with: " ").contains(counts)
        #expect(saysCounts, "docs/errors.md should say \(counts)")
        let headings = page.split(separator: "\n").filter { $0.hasPrefix("**") }.map { $0.prefix(40).lowercased() }
        for area in Set(LibraryRows.all.map(\.area)) { #expect(headings.contains { $0.contains(area) }, "no section for \(area)") }
        let commands = Set(CLIRows.all.compactMap { $0.command.split(separator: " ").dropFirst().first.map(String.init) })
        for command in commands.union(["demo", "pe", "embed", "generate", "forward", "attention", "bleu", "conlleval", "finetune", "train", "translate", "notebooks"]) {
            #expect(page.contains("| `\(command)"), "no row for decoder-spec \(command)")
        }
    }
}

@Suite("Bad-input matrix: every CLI command exits non-zero with one clear line on stderr")
struct CLIBadInputSpecs {
    static func run(_ arguments: [String]) throws -> Subprocess.Result {
        try Subprocess.run(CLIFixtures.executable, arguments, environment: ProcessInfo.processInfo.environment.merging(["NO_COLOR": "1"]) { $1 })
    }

    @Test("decoder-spec is built beside the test bundle")
    func executableExists() {
        #expect(FileManager.default.isExecutableFile(atPath: CLIFixtures.executable.path),
                "no executable at \(CLIFixtures.executable.path); `swift build` builds it")
    }

    @Test("Exit status, exactly one stderr line '<command>: error: …' naming the bad value, no trap, no partial output",
          .enabled(if: FileManager.default.isExecutableFile(atPath: CLIFixtures.executable.path), "decoder-spec not built: run swift build --build-tests first (make test does)"),
          arguments: CLIRows.all)
    func row(_ row: CLIRow) throws {
        let dir = CLIFixtures.directory.path
        let r = try Self.run(row.arguments.map { $0.replacingOccurrences(of: "{dir}", with: dir) })
        #expect(!r.signalled, "killed by signal \(r.status) (a trap): \(r.stderr)")
        #expect(r.status == row.status, "exit status \(r.status), expected \(row.status); stderr: \(r.stderr)")
        let lines = r.stderr.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 2 && lines[1].isEmpty, "stderr must be exactly one line, got \(lines.count - 1): \(r.stderr)")
        #expect(r.stderr.hasPrefix("\(row.command): error: "), "stderr: \(r.stderr)")
        for name in row.naming {
            #expect(r.stderr.contains(name), "the error line does not name \"\(name)\": \(r.stderr)")
        }
        for marker in ["Fatal error", "Stack dump", "Usage:"] {
            #expect(!r.stderr.contains(marker), "stderr contains \(marker): \(r.stderr)")
        }
        #expect(r.stdout.isEmpty, "a failing command prints nothing on stdout, got: \(r.stdout)")
        if let file = row.noFile?.replacingOccurrences(of: "{dir}", with: dir) {
            #expect(!FileManager.default.fileExists(atPath: file), "a failed run left \(file) behind")
        }
    }

    @Test("--help still prints the usage on stdout and exits 0",
          .enabled(if: FileManager.default.isExecutableFile(atPath: CLIFixtures.executable.path), "decoder-spec not built: run swift build --build-tests first (make test does)"))
    func help() throws {
        let r = try Self.run(["generate", "--help"])
        #expect(r.status == 0 && r.stdout.contains("USAGE: decoder-spec generate") && r.stderr.isEmpty, "\(r.status) \(r.stdout) \(r.stderr)")
    }
}
