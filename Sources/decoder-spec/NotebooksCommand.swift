import ArgumentParser
import Foundation
import NotebookRunner

struct NotebooksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notebooks",
        abstract: "Run the notebooks in notebooks-md/ and check each cell's output (or rewrite outputs with --update).")

    @Flag(help: "Rewrite each ```output block with what the cell printed.")
    var update = false

    @Flag(help: "Copy the figures the cells draw into docs/figures/ (make figures), then check as usual.")
    var figures = false

    @Option(help: "The project root (the folder with notebooks-md/).")
    var root: String = FileManager.default.currentDirectoryPath

    @Argument(help: "Notebooks to run (default: all, in reading order).")
    var files: [String] = []

    func run() throws {
        let runner = NotebookRunner(projectRoot: URL(fileURLWithPath: root))
        let paths = files.isEmpty ? try runner.notebookPaths() : files
        let report = try runner.run(paths: paths, update: update, figures: figures)
        for failure in report.failures { print(NotebookRunner.describe(failure)) }
        print("notebooks: \(report.summary)")
        if !report.failures.isEmpty { throw ExitCode.failure }
    }
}
