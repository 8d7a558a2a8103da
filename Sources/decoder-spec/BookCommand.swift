import ArgumentParser
import DecoderSpec
import Foundation
import NotebookRunner

/// `decoder-spec book [--check] [--root DIR]`: writes the DocC catalog (the book) from the notebooks and docs/.
struct BookCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "book",
        abstract: "Generate the DocC catalog (Sources/DecoderSpec/DecoderSpec.docc) from notebooks-md/ and docs/.",
        discussion: """
        Each notebook becomes an article with its code and its checked output, each docs/ page an article; \
        page references become DocC links, code spans naming a public type become symbol links, figures \
        under docs/figures/ are copied into Resources/. `make docs` then builds the site. \
        --check writes nothing and exits 1 when the committed catalog is out of step.
        """)

    @Flag(help: "Only report the catalog files that are out of step; exit 1 if any.") var check = false
    @Option(help: "The project root (default: found from the current directory or the executable).") var root: String?

    func run() throws {
        let book = Book(projectRoot: try projectRoot(root))
        if check {
            let stale = try book.outOfStep()
            for name in stale { print("out of step: \(Book.catalog)/\(name)") }
            print("book: \(stale.isEmpty ? "in step" : "\(stale.count) file(s) out of step — run decoder-spec book")")
            if !stale.isEmpty { throw ExitCode.failure }
        } else {
            let changed = try book.write()
            print("book: \(changed.count) file(s) written or removed in \(Book.catalog)")
        }
    }
}

/// The project root: `--root` if given (it must be one), else found from the current directory or
/// the executable's location; a `missingFile` error naming where it looked otherwise.
func projectRoot(_ given: String?) throws -> URL {
    if let given {
        let url = URL(fileURLWithPath: given)
        guard ProjectRoot.isRoot(url) else {
            throw DecoderSpecError.missingFile(path: "\(given)/notebooks-md", hint: "--root must be the DecoderSpec repository (Package.swift and notebooks-md/)")
        }
        return url
    }
    let here = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    guard let url = ProjectRoot.locate(from: here, executable: Bundle.main.executableURL) else {
        throw DecoderSpecError.missingFile(path: "\(here.path)/notebooks-md",
                                           hint: "not inside the DecoderSpec repository and not its built executable; run there or pass --root DIR")
    }
    return url
}
