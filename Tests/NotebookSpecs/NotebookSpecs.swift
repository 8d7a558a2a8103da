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
}
