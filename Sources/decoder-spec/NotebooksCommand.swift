import ArgumentParser
import Foundation
import NotebookRunner

struct NotebooksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notebooks",
        abstract: "Run the notebooks in notebooks-md/ and check each cell's output (or rewrite outputs with --update).",
        discussion: """
        Explore: `decoder-spec notebooks 04 --print` runs notebook 04 and prints every cell's output without \
        comparing; `--cell 3` prints cell 3's code and output only (cells are numbered from 1; all cells still \
        run, in one scope). Edit a cell in notebooks-md/ and run it again to see what changes. Works from any \
        directory inside the repository or with the built executable.
        """)

    @Flag(help: "Rewrite each ```output block with what the cell printed.")
    var update = false

    @Flag(help: "Copy the figures the cells draw into docs/figures/ (make figures), then check as usual.")
    var figures = false

    @Flag(name: .customLong("print"), help: "Run and print each cell's output; compare nothing.")
    var printOutputs = false

    @Option(help: "With one notebook: print only this cell (1-based), its code and its output.")
    var cell: Int?

    @Option(help: "The project root (default: found from the current directory or the executable).")
    var root: String?

    @Argument(help: "Notebooks to run: a number (04), a name (04-attention) or a path (default: all, in reading order).")
    var files: [String] = []

    func validate() throws {
        if (update || figures) && (printOutputs || cell != nil) {
            throw ValidationError("--\(update ? "update" : "figures") cannot be combined with --print or --cell")
        }
        if let cell {
            guard files.count == 1 else { throw ValidationError("--cell \(cell) needs exactly one notebook (e.g. notebooks 04 --cell \(cell))") }
            guard cell >= 1 else { throw ValidationError("--cell \(cell) must be ≥ 1 (cells are numbered from 1)") }
        }
    }

    func run() throws {
        let exploring = printOutputs || cell != nil
        // Exploring prints only the cells' outputs on stdout; progress goes to stderr.
        let runner = NotebookRunner(projectRoot: try projectRoot(root),
                                    log: exploring ? { FileHandle.standardError.write(Data(($0 + "\n").utf8)) } : { print($0) })
        let paths = try files.isEmpty ? runner.notebookPaths() : files.map { name in
            guard let path = try runner.resolve(name) else {
                let known = try runner.notebookPaths().map { (($0 as NSString).lastPathComponent as NSString).deletingPathExtension }
                throw ValidationError("no notebook \"\(name)\" (known: \(known.joined(separator: ", ")))")
            }
            return path
        }
        if exploring {
            try explore(runner, paths)
            return
        }
        let report = try runner.run(paths: paths, update: update, figures: figures)
        for failure in report.failures { print(NotebookRunner.describe(failure)) }
        print("notebooks: \(report.summary)")
        if !report.failures.isEmpty { throw ExitCode.failure }
    }

    /// --print / --cell: run, then show outputs as they are.
    func explore(_ runner: NotebookRunner, _ paths: [String]) throws {
        if let cell {
            let count = try Notebook(path: paths[0]).cells.count
            guard cell <= count else { throw ValidationError("--cell \(cell): \(paths[0]) has \(count) cells") }
        }
        let report = try runner.run(paths: paths)
        for path in paths {
            let notebook = try Notebook(path: path)
            let outputs = report.results.filter { $0.notebook == path }.map(\.actual)
            for (k, (c, output)) in zip(notebook.cells, outputs).enumerated() where cell == nil || cell == k + 1 {
                print(NotebookRunner.show(c, number: k + 1, of: path, output: output, code: cell != nil))
            }
        }
    }
}
