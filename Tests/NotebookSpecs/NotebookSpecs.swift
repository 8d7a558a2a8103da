import Foundation
import NotebookRunner
import Testing

/// The project root, found from this file's path (Tests/NotebookSpecs/NotebookSpecs.swift).
let projectRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

// Serialized: its tests build notebooks in the one scratch package .build-notebooks/.
@Suite("Notebooks: every notebook runs and prints exactly its checked output", .serialized)
struct NotebookSpecs {
    @Test("Every notebook in notebooks-md/ builds, runs and matches its output blocks")
    func allNotebooks() throws {
        let runner = NotebookRunner(projectRoot: projectRoot, log: { _ in })
        let paths = try runner.notebookPaths()
        #expect(!paths.isEmpty, "notebooks-md/ has no notebooks")
        let report = try runner.run(paths: paths)
        for failure in report.failures { Issue.record(Comment(rawValue: NotebookRunner.describe(failure))) }
        #expect(report.results.count > 0)
        // Every committed figure is drawn by some notebook (none left over from an old one), and
        // every figure a doc page or the README embeds exists.
        let fm = FileManager.default
        let scratch = projectRoot.appendingPathComponent(".build-notebooks/figures")
        let drawn = Set(try fm.contentsOfDirectory(atPath: scratch.path).flatMap {
            (try? fm.contentsOfDirectory(atPath: scratch.appendingPathComponent($0).path)) ?? []
        })
        let committed = (try? fm.contentsOfDirectory(atPath: projectRoot.appendingPathComponent(NotebookRunner.figuresDirectory).path)) ?? []
        for name in committed where name.hasSuffix(".svg") && !drawn.contains(name) {
            Issue.record("docs/figures/\(name) is drawn by no notebook (a leftover: delete it, or draw it in a cell)")
        }
        let pages = try fm.contentsOfDirectory(atPath: projectRoot.appendingPathComponent("docs").path).filter { $0.hasSuffix(".md") }
            .map { "docs/" + $0 } + ["README.md"]
        for page in pages {
            let text = try String(contentsOf: projectRoot.appendingPathComponent(page), encoding: .utf8)
            for (line, name) in NotebookRunner.embeddedFigures(text) where !committed.contains(name) {
                Issue.record("\(page):\(line) embeds docs/figures/\(name), which does not exist")
            }
        }
    }

    @Test("A figure a notebook embeds must be the one its cells draw: stale, missing and undrawn figures fail")
    func staleFigure() throws {
        let fm = FileManager.default
        let dir = fm.temporaryDirectory.appendingPathComponent("nbfig-\(UUID().uuidString)")
        defer { try? fm.removeItem(at: dir) }
        let drawn = dir.appendingPathComponent("drawn"), committed = dir.appendingPathComponent("docs/figures")
        try fm.createDirectory(at: drawn, withIntermediateDirectories: true)
        try fm.createDirectory(at: committed, withIntermediateDirectories: true)
        let markdown = "# probe\n![a](../docs/figures/a.svg) and ![b](../docs/figures/b.svg)\n[not an image](../docs/figures/c.svg)\n"
            + "shown, not embedded: `![d](../docs/figures/d.svg)`\n"
        #expect(NotebookRunner.embeddedFigures(markdown).map(\.name) == ["a.svg", "b.svg"])
        try "<svg>new</svg>".write(to: drawn.appendingPathComponent("a.svg"), atomically: true, encoding: .utf8)
        try "<svg>old</svg>".write(to: committed.appendingPathComponent("a.svg"), atomically: true, encoding: .utf8)
        var results = try NotebookRunner.checkFigures(notebookPath: "p.md", markdown: markdown, drawn: drawn, committed: committed, copy: false)
        #expect(results.map(\.matches) == [false, false])
        #expect(results[0].actual.contains("stale") && results[1].actual.contains("no cell wrote b.svg"))
        #expect(results[0].cellLine == 2)
        try "<svg>b</svg>".write(to: drawn.appendingPathComponent("b.svg"), atomically: true, encoding: .utf8)
        results = try NotebookRunner.checkFigures(notebookPath: "p.md", markdown: markdown, drawn: drawn, committed: committed, copy: false)
        #expect(results[1].actual.contains("missing"))
        // Copying (make figures) makes the committed copies the drawn ones.
        results = try NotebookRunner.checkFigures(notebookPath: "p.md", markdown: markdown, drawn: drawn, committed: committed, copy: true)
        #expect(results.allSatisfy { $0.matches })
        #expect((try String(contentsOf: committed.appendingPathComponent("a.svg"), encoding: .utf8)) == "<svg>new</svg>")
    }

    @Test("The runner detects a wrong output block (the check can fail)")
    func detectsDifference() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nbspec-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("00-probe.md").path
        try "# probe\n```swift\nprint(1 + 1)\n```\n```output\n3\n```\n".write(toFile: path, atomically: true, encoding: .utf8)
        let notebook = try Notebook(path: path)
        #expect(notebook.cells.count == 1)
        #expect(notebook.cells[0].expected == "3")
        let result = NotebookRunner.CellResult(notebook: path, cellLine: 2, expected: "3", actual: "2")
        #expect(!result.matches)
        #expect(NotebookRunner.describe(result).contains("expected: 3"))
    }

    @Test("An unclosed block is a malformed-notebook error with file:line")
    func malformed() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("nb-bad-\(UUID().uuidString).md").path
        try "```swift\nprint(1)\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(throws: NotebookError.self) { try Notebook(path: path) }
    }

    @Test("A notebook that is not UTF-8 is a malformed-notebook error naming file and line (was Foundation's error naming neither)")
    func notUTF8() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("nb-latin1-\(UUID().uuidString).md").path
        try Data("# x\n\nCaf".utf8 + [0xE9] + "\n```swift\nprint(1)\n```\n".utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            _ = try Notebook(path: path)
            Issue.record("a Latin-1 byte was accepted")
        } catch let error as NotebookError {
            #expect(error.description == "\(path):3: not valid UTF-8")
        }
    }
}
