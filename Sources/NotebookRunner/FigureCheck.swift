import Foundation

/// Figures: a notebook's cells write SVGs with `FigureFile.save` (Sources/Figures) into the
/// directory named by `DECODERSPEC_FIGURES`, which the runner points at a scratch directory per
/// notebook; the notebook embeds the committed copies under `docs/figures/` with Markdown image
/// links. Every embedded figure must be byte-identical to the one the cells drew, so a stale
/// picture fails like a stale output block. `--figures` (`make figures`) copies what the cells drew
/// into `docs/figures/` first.
extension NotebookRunner {
    /// The environment variable `FigureFile` reads.
    public static let figuresEnvironmentKey = "DECODERSPEC_FIGURES"
    /// The committed figures, relative to the project root.
    public static let figuresDirectory = "docs/figures"

    /// The scratch directory a notebook's cells write their figures into (emptied before each run).
    func figureScratch(for notebook: Notebook) throws -> URL {
        let dir = root.appendingPathComponent(".build-notebooks/figures/\(notebook.name)")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// The figures `markdown` embeds: (1-based line, file name) of each image link `![…](…/figures/NAME.svg)`
    /// (`../docs/figures/` from a notebook, `figures/` from a doc page).
    public static func embeddedFigures(_ markdown: String) -> [(line: Int, name: String)] {
        var out: [(Int, String)] = []
        for (i, line) in markdown.components(separatedBy: "\n").enumerated() {
            // Code spans (`…`) show links, they do not embed them: drop every other backtick-separated piece.
            var rest = Substring(line.split(separator: "`", omittingEmptySubsequences: false).enumerated()
                .filter { $0.offset % 2 == 0 }.map(\.element).joined(separator: " "))
            while let open = rest.range(of: "](") {
                let after = rest[open.upperBound...]
                guard let close = after.firstIndex(of: ")") else { break }
                let target = after[..<close]
                let parts = target.split(separator: "/")
                if rest[..<open.lowerBound].contains("!["), target.hasSuffix(".svg"), parts.count >= 2, parts[parts.count - 2] == "figures" {
                    out.append((i + 1, String(parts.last!)))
                }
                rest = after[close...]
            }
        }
        return out
    }

    /// Compares each figure `notebook` embeds with the one its cells wrote into `drawn`; with
    /// `copy`, first copies every drawn figure into `docs/figures/`. One result per embedded figure
    /// (a mismatch or a figure no cell drew fails).
    public static func checkFigures(notebookPath: String, markdown: String, drawn: URL, committed: URL, copy: Bool) throws -> [CellResult] {
        let fm = FileManager.default
        let made = ((try? fm.contentsOfDirectory(atPath: drawn.path)) ?? []).filter { $0.hasSuffix(".svg") }.sorted()
        if copy {
            try fm.createDirectory(at: committed, withIntermediateDirectories: true)
            for name in made {
                let data = try Data(contentsOf: drawn.appendingPathComponent(name))
                try data.write(to: committed.appendingPathComponent(name), options: .atomic)
            }
        }
        return embeddedFigures(markdown).map { line, name in
            let expected = "\(figuresDirectory)/\(name) as the cells draw it"
            guard made.contains(name), let new = fm.contents(atPath: drawn.appendingPathComponent(name).path) else {
                return CellResult(notebook: notebookPath, cellLine: line, expected: expected, actual: "no cell wrote \(name) (FigureFile.save)")
            }
            guard let old = fm.contents(atPath: committed.appendingPathComponent(name).path) else {
                return CellResult(notebook: notebookPath, cellLine: line, expected: expected,
                                  actual: "\(figuresDirectory)/\(name) is missing (make figures writes it)")
            }
            return CellResult(notebook: notebookPath, cellLine: line, expected: expected,
                              actual: old == new ? expected : "the committed \(figuresDirectory)/\(name) is stale (make figures rewrites it)")
        }
    }
}
