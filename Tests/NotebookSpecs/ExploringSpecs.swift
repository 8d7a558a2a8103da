import Foundation
import NotebookRunner
import Testing

@Suite("Exploring: a reader names a notebook, the project is found from anywhere")
struct ExploringSpecs {
    @Test("A notebook is named by number, name or path; an unknown name resolves to nothing")
    func resolve() throws {
        let runner = NotebookRunner(projectRoot: projectRoot, log: { _ in })
        let attention = projectRoot.appendingPathComponent("notebooks-md/04-attention.md").path
        for name in ["4", "04", "04-attention", "04-attention.md", attention] {
            #expect(try runner.resolve(name) == attention, "\(name)")
        }
        #expect(try runner.resolve("99") == nil)
        #expect(try runner.resolve("attention") == nil)
    }

    @Test("The project root is found from a subfolder or from the executable's folder, and not from elsewhere")
    func locate() {
        let nested = projectRoot.appendingPathComponent("Tests/NotebookSpecs")
        #expect(ProjectRoot.locate(from: nested)?.path == projectRoot.standardizedFileURL.path)
        let outside = URL(fileURLWithPath: "/")
        #expect(ProjectRoot.locate(from: outside) == nil)
        let executable = projectRoot.appendingPathComponent(".build/debug/decoder-spec")
        #expect(ProjectRoot.locate(from: outside, executable: executable)?.path == projectRoot.standardizedFileURL.path)
    }
}

extension NotebookSpecs {
    /// decoder-spec beside the test bundle (.build/debug).
    static let cli = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        .appendingPathComponent("decoder-spec")

    @Test("`decoder-spec notebooks 00 --print` and `--cell 2` run from another directory print the checked outputs",
          .enabled(if: FileManager.default.isExecutableFile(atPath: cli.path), "decoder-spec not built: swift build --build-tests"))
    func printFromElsewhere() throws {
        let notebook = try Notebook(path: projectRoot.appendingPathComponent("notebooks-md/00-reading-guide.md").path)
        let elsewhere = FileManager.default.temporaryDirectory
        let all = try ChildProcess.run(Self.cli, ["notebooks", "00", "--print"], directory: elsewhere)
        #expect(all.status == 0, "\(all.stderr)")
        for (k, cell) in notebook.cells.enumerated() {
            // The independent value: each cell's checked ```output block in the notebook.
            #expect(all.stdout.contains("cell \(k + 1) (line \(cell.line)) ──\n\(cell.expected ?? "(prints nothing)")"), "cell \(k + 1): \(all.stdout)")
        }
        let one = try ChildProcess.run(Self.cli, ["notebooks", "00", "--cell", "2"], directory: elsewhere)
        #expect(one.status == 0, "\(one.stderr)")
        let second = notebook.cells[1]
        #expect(one.stdout == "── 00-reading-guide.md · cell 2 (line \(second.line)) ──\n\(second.code)\n── output ──\n\(second.expected!)\n")
    }

    @Test("Exploring's usage errors exit 64 with one line naming the problem",
          .enabled(if: FileManager.default.isExecutableFile(atPath: cli.path), "decoder-spec not built: swift build --build-tests"))
    func usageErrors() throws {
        for (arguments, naming) in [(["notebooks", "nope", "--print"], "no notebook \"nope\" (known: 00-reading-guide"),
                                    (["notebooks", "00", "--cell", "99"], "--cell 99: "),
                                    (["notebooks", "--cell", "1"], "--cell 1 needs exactly one notebook"),
                                    (["notebooks", "00", "--cell", "0"], "--cell 0 must be ≥ 1"),
                                    (["notebooks", "00", "--print", "--update"], "--update cannot be combined")] {
            let r = try ChildProcess.run(Self.cli, arguments, directory: FileManager.default.temporaryDirectory)
            #expect(r.status == 64, "\(arguments): \(r.status) \(r.stderr)")
            #expect(r.stderr.hasPrefix("decoder-spec notebooks: error: ") && r.stderr.contains(naming), "\(arguments): \(r.stderr)")
            #expect(r.stderr.filter { $0 == "\n" }.count == 1, "\(r.stderr)")
        }
    }
}
