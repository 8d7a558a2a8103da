import Foundation

/// Builds and runs notebooks, and compares each cell's stdout with its ```output block.
///
/// All notebooks become executables of one scratch package under `<root>/.build-notebooks/`,
/// which depends on the project by path and builds with its own scratch path (so it can run while
/// `swift test` holds the lock on `.build`).
public struct NotebookRunner {
    public struct CellResult: Sendable {
        public var notebook: String
        public var cellLine: Int
        public var expected: String
        public var actual: String
        public var matches: Bool { expected == actual }
        public init(notebook: String, cellLine: Int, expected: String, actual: String) {
            self.notebook = notebook; self.cellLine = cellLine; self.expected = expected; self.actual = actual
        }
    }

    public struct Report: Sendable {
        public var results: [CellResult] = []
        public var failures: [CellResult] { results.filter { !$0.matches } }
        public var summary: String {
            let failed = failures.count
            return "\(results.count - failed) passed, \(failed) failed"
        }
    }

    public let root: URL
    public var log: (String) -> Void

    public init(projectRoot: URL, log: @escaping (String) -> Void = { print($0) }) {
        self.root = projectRoot
        self.log = log
    }

    /// All `notebooks-md/*.md`, sorted by name (reading order).
    public func notebookPaths() throws -> [String] {
        let dir = root.appendingPathComponent("notebooks-md")
        return try FileManager.default.contentsOfDirectory(atPath: dir.path)
            .filter { $0.hasSuffix(".md") }.sorted().map { dir.appendingPathComponent($0).path }
    }

    /// Builds and runs `paths`; with `update`, rewrites their output blocks instead of comparing;
    /// with `figures` (or `update`), copies the figures the cells draw into docs/figures/ (FigureCheck.swift).
    public func run(paths: [String], update: Bool = false, figures: Bool = false) throws -> Report {
        let notebooks = try paths.map { try Notebook(path: $0) }
        let executables = try build(notebooks)
        var report = Report()
        for (notebook, exe) in zip(notebooks, executables) {
            let drawn = try figureScratch(for: notebook)
            let (status, stdout, stderr) = try execute(exe, figures: drawn)
            let outputs = split(stdout, cells: notebook.cells.count)
            guard status == 0, let outputs else {
                throw NotebookError.runFailed(notebook: notebook.path, status: status, output: stdout + stderr)
            }
            if update {
                try notebook.updated(with: outputs.map(normalize)).write(toFile: notebook.path, atomically: true, encoding: .utf8)
                log("updated \(notebook.path)")
            }
            for (cell, actual) in zip(notebook.cells, outputs) {
                let expected = normalize(cell.expected ?? "")
                report.results.append(CellResult(notebook: notebook.path, cellLine: cell.line,
                                                 expected: update ? normalize(actual) : expected, actual: normalize(actual)))
            }
            report.results += try Self.checkFigures(notebookPath: notebook.path, markdown: notebook.lines.joined(separator: "\n"), drawn: drawn,
                                                    committed: root.appendingPathComponent(Self.figuresDirectory), copy: figures || update)
        }
        return report
    }

    /// Trailing spaces on a line and trailing blank lines are not significant.
    func normalize(_ s: String) -> String {
        var lines = s.components(separatedBy: "\n").map { line -> String in
            var l = Substring(line)
            while l.last == " " || l.last == "\t" || l.last == "\r" { l.removeLast() }
            return String(l)
        }
        while lines.last == "" { lines.removeLast() }
        return lines.joined(separator: "\n")
    }

    func split(_ stdout: String, cells: Int) -> [String]? {
        var outputs: [String] = []
        var rest = Substring(stdout)
        for k in 0..<cells {
            let marker = Notebook.marker(k)
            guard let range = rest.range(of: marker) else { return nil }
            outputs.append(String(rest[rest.startIndex..<range.lowerBound]))
            rest = rest[range.upperBound...]
            if rest.first == "\n" { rest = rest.dropFirst() }
        }
        return outputs
    }

    func build(_ notebooks: [Notebook]) throws -> [URL] {
        let scratch = root.appendingPathComponent(".build-notebooks")
        let package = scratch.appendingPathComponent("package")
        let fm = FileManager.default
        var targets: [String] = []
        for nb in notebooks {
            let target = "nb_" + nb.name.map { $0.isLetter || $0.isNumber ? String($0) : "_" }.joined()
            let dir = package.appendingPathComponent("Sources/\(target)")
            try fm.createDirectory(at: dir, withIntermediateDirectories: true)
            try writeIfChanged(nb.mainSource(), to: dir.appendingPathComponent("main.swift"))
            targets.append(target)
        }
        let manifest = """
        // swift-tools-version: 6.1
        // Generated by the notebook runner. Do not edit.
        import PackageDescription
        let package = Package(
            name: "Notebooks",
            dependencies: [.package(name: "DecoderSpec", path: "\(root.path)")],
            targets: [
        \(targets.map { "        .executableTarget(name: \"\($0)\", dependencies: [.product(name: \"DecoderSpec\", package: \"DecoderSpec\"), .product(name: \"GSLOracle\", package: \"DecoderSpec\")], swiftSettings: [.swiftLanguageMode(.v5)]),\n" }.joined())    ]
        )
        """
        try writeIfChanged(manifest, to: package.appendingPathComponent("Package.swift"))
        log("building \(notebooks.count) notebook(s) …")
        let (status, out, err) = try Self.process(
            // Re-plan every time: a path dependency that gained a source file (e.g. after a git
            // merge) is otherwise built from a stale cached manifest ("cannot find X in scope").
            "/usr/bin/env", ["swift", "build", "--disable-build-manifest-caching", "--package-path", package.path,
                             "--scratch-path", scratch.appendingPathComponent("build").path], cwd: package)
        guard status == 0 else { throw NotebookError.buildFailed(log: out + err) }
        return targets.map { scratch.appendingPathComponent("build/debug/\($0)") }
    }

    func execute(_ exe: URL, figures: URL) throws -> (Int32, String, String) {
        var environment = ProcessInfo.processInfo.environment
        environment[Self.figuresEnvironmentKey] = figures.path
        let r = try ChildProcess.run(exe, [], directory: root, environment: environment)
        return (r.status, r.stdout, r.stderr)
    }

    func writeIfChanged(_ text: String, to url: URL) throws {
        if let old = try? String(contentsOf: url, encoding: .utf8), old == text { return }
        try text.write(to: url, atomically: true, encoding: .utf8)
    }

    /// Runs a process to completion (see `ChildProcess`).
    static func process(_ path: String, _ args: [String], cwd: URL) throws -> (Int32, String, String) {
        let r = try ChildProcess.run(URL(fileURLWithPath: path), args, directory: cwd)
        return (r.status, r.stdout, r.stderr)
    }

    /// A unified-style listing of where expected and actual differ, for failure messages.
    public static func describe(_ r: CellResult) -> String {
        let e = r.expected.components(separatedBy: "\n"), a = r.actual.components(separatedBy: "\n")
        var out = "\(r.notebook):\(r.cellLine): output differs\n"
        for i in 0..<max(e.count, a.count) {
            let el = i < e.count ? e[i] : "<missing>", al = i < a.count ? a[i] : "<missing>"
            if el != al { out += "  line \(i + 1)\n    expected: \(el)\n    actual:   \(al)\n" }
        }
        return out
    }
}
