import Foundation
import NotebookRunner
import Testing

/// A throwaway project with the shape the book generator reads.
struct BookFixture {
    let root: URL
    static let svg = #"<svg xmlns="http://www.w3.org/2000/svg" width="4" height="2"><rect width="4" height="2"/></svg>"#

    init(figure: Bool = true) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("book-\(UUID().uuidString)")
        try write("README.md", "| 1 | x | `notebooks-md/01-first.md` | `docs/second.md` |\n")
        try write("Sources/DecoderSpec/DecoderSpec.swift", "@_exported import Alpha\n")
        try write("Sources/Alpha/Alpha.swift", """
            public struct Widget {}
            public func blend(_ a: Int, with b: [Int: (Int, Int)] = [:], scale: Float) -> Int { a }
            public func twice(x: Int) {}
            public func twice(y: Int) {}
            struct Hidden {}
            """)
        try write("notebooks-md/01-first.md", """
            # 01 — First

            The abstract. See `docs/second.md` and ``Run `make x` now``; its ```swift blocks run.

            ![a figure](../docs/figures/f.svg) ![in a folder](../docs/figures/pe/g.svg)

            ```swift
            let w = `Widget`() // docs/second.md stays as code
            ```
            ```output
            ok
            ```

                indented code `Widget` docs/second.md

            `Widget`, `blend`, `twice`, `Hidden`.

            Shown, not embedded: `![x](../docs/figures/none.svg)`, `[x](none.md)`.
            """)
        try write("docs/second.md", "# Second\n\nBack to [the notebook](../notebooks-md/01-first.md), [below](#a-heading), [01-first.md](../notebooks-md/01-first.md). Notebook 01, not `notebook 01`.\n\n## A heading\n")
        if figure { try write("docs/figures/f.svg", Self.svg) }
        try write("docs/figures/pe/g.svg", Self.svg)
    }

    func write(_ path: String, _ text: String) throws {
        let url = root.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
    }

    func remove() { try? FileManager.default.removeItem(at: root) }
}

@Suite("The book: the DocC catalog is generated from the notebooks and docs/, and committed in step")
struct BookSpecs {
    @Test("The committed catalog equals what decoder-spec book generates from today's notebooks and docs/")
    func committedInStep() throws {
        let stale = try Book(projectRoot: projectRoot).outOfStep()
        #expect(stale.isEmpty, "out of step with notebooks-md/ and docs/: \(stale.joined(separator: ", ")) — run `swift run decoder-spec book`")
    }

    @Test("Every notebook and every docs/ page is an article, curated by the landing page in reading order")
    func everyPageIsAnArticle() throws {
        let files = try Book(projectRoot: projectRoot).files()
        let notebooks = try NotebookRunner(projectRoot: projectRoot).notebookPaths().map { ($0 as NSString).lastPathComponent }
        let docs = try FileManager.default.contentsOfDirectory(atPath: projectRoot.appendingPathComponent("docs").path).filter { $0.hasSuffix(".md") }
        let landing = String(decoding: try #require(files["DecoderSpec.md"]), as: UTF8.self)
        var last = landing.startIndex
        for name in notebooks {
            let article = "Notebook-\(name.dropLast(3))"
            #expect(files["\(article).md"] != nil, "no article for notebooks-md/\(name)")
            let at = try #require(landing.range(of: "<doc:\(article)>"), "the landing page does not list \(article)")
            #expect(at.lowerBound > last, "\(article) is out of reading order on the landing page")
            last = at.lowerBound
        }
        for name in docs {
            #expect(files["Page-\(name.dropLast(3)).md"] != nil, "no article for docs/\(name)")
            #expect(landing.contains("<doc:Page-\(name.dropLast(3))>"), "the landing page does not list docs/\(name)")
        }
    }

    @Test("README's reading order links every notebook and page it names both as Markdown and as a rendered article")
    func readmeLinksTheBook() throws {
        let readme = try String(contentsOf: projectRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let table = readme.components(separatedBy: "## Reading order")[1].components(separatedBy: "\n## ")[0]
        let named = Set(table.matches(of: /`((?:notebooks-md|docs)\/[a-z0-9-]+)\.md`/).map { String($0.1) })
        for notebook in try NotebookRunner(projectRoot: projectRoot).notebookPaths() {
            let name = "notebooks-md/" + ((notebook as NSString).lastPathComponent as NSString).deletingPathExtension
            #expect(named.contains(name), "the reading order does not name \(name)")
        }
        for source in named.sorted() {
            let article = (source.hasPrefix("docs/") ? "page-" : "notebook-") + source.split(separator: "/")[1]
            #expect(table.contains("[`\(source).md`](\(source).md) · [book](http://localhost:8000/documentation/decoderspec/\(article))"),
                    "no Markdown and book link for \(source)")
            let catalogName = (source.hasPrefix("docs/") ? "Page-" : "Notebook-") + source.split(separator: "/")[1] + ".md"
            #expect(FileManager.default.fileExists(atPath: projectRoot.appendingPathComponent("\(Book.catalog)/\(catalogName)").path),
                    "the book has no article \(catalogName) for \(source)")
        }
    }

    @Test("Links, symbol names, figures and code blocks are rewritten as DocC reads them; code is left alone")
    func rewriting() throws {
        let fixture = try BookFixture()
        defer { fixture.remove() }
        let files = try Book(projectRoot: fixture.root).files()
        let notebook = String(decoding: try #require(files["Notebook-01-first.md"]), as: UTF8.self)
        let page = String(decoding: try #require(files["Page-second.md"]), as: UTF8.self)
        #expect(notebook.contains("The abstract. See <doc:Page-second> and `Run \"make x\" now`; its `swift` blocks run."))
        #expect(notebook.contains("> Note: This article is the notebook `notebooks-md/01-first.md`."))
        #expect(notebook.contains("decoder-spec notebooks 01 --print`.\n\n```swift\n"), "the note stands right before the first code listing")
        #expect(notebook.contains("![a figure](f.svg) ![in a folder](g.svg)"))
        #expect(files["Resources/f.svg"] == Data(BookFixture.svg.utf8), "the figure is copied byte for byte")
        #expect(files["Resources/pe/g.svg"] == Data(BookFixture.svg.utf8))
        // Code blocks (fenced and indented) are copied as they are.
        #expect(notebook.contains("```swift\nlet w = `Widget`() // docs/second.md stays as code\n```\n```output\nok\n```"))
        #expect(notebook.contains("    indented code `Widget` docs/second.md"))
        // Public types and free functions declared once become absolute symbol links with argument labels;
        // overloaded and internal names stay code.
        #expect(notebook.contains("``/Alpha/Widget``, ``/Alpha/blend(_:with:scale:)``, `twice`, `Hidden`."))
        #expect(notebook.contains("Shown, not embedded: `![x](../docs/figures/none.svg)`, `[x](none.md)`."))
        #expect(page.contains("Back to [the notebook](doc:Notebook-01-first), [below](doc:Page-second#A-heading), <doc:Notebook-01-first>. [Notebook 01](doc:Notebook-01-first), not `notebook 01`."))
        let landing = String(decoding: try #require(files["DecoderSpec.md"]), as: UTF8.self)
        #expect(landing.hasPrefix("# ``DecoderSpec``\n"))
        #expect(landing.contains("- <doc:Notebook-01-first>") && landing.contains("- <doc:Page-second>"))
    }

    @Test("A notebook edited after the catalog was written makes it out of step; writing again brings it back")
    func detectsStaleCatalog() throws {
        let fixture = try BookFixture()
        defer { fixture.remove() }
        let book = Book(projectRoot: fixture.root)
        #expect(try book.write().count == 6)  // landing page, two articles, two figures, theme settings
        #expect(try book.outOfStep().isEmpty)
        try fixture.write("notebooks-md/01-first.md", "# 01 — First\n\nChanged.\n")
        try fixture.write("\(Book.catalog)/Stray.md", "# Stray\n")
        #expect(try book.outOfStep() == ["Notebook-01-first.md", "Resources/f.svg", "Resources/pe/g.svg", "Stray.md"])
        try book.write()
        #expect(try book.outOfStep().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: fixture.root.appendingPathComponent("\(Book.catalog)/Stray.md").path))
    }

    @Test("A missing figure or a link to no page is an error naming the file and line")
    func badInput() throws {
        let fixture = try BookFixture(figure: false)
        defer { fixture.remove() }
        #expect { try Book(projectRoot: fixture.root).files() } throws: {
            "\($0)" == "notebooks-md/01-first.md:5: link ../docs/figures/f.svg: no such figure (make figures draws the notebooks' figures)"
        }
        try fixture.write("docs/figures/f.svg", BookFixture.svg)
        try fixture.write("docs/second.md", "# Second\n\nSee [nothing](missing.md).\n")
        #expect { try Book(projectRoot: fixture.root).files() } throws: { "\($0)" == "docs/second.md:3: link missing.md: not a notebook or a page of docs/" }
        try fixture.write("docs/second.md", "# Second\n\nSee [nothing](#no-such-heading).\n")
        #expect { try Book(projectRoot: fixture.root).files() } throws: { "\($0)".contains("no heading with that anchor") }
        try fixture.write("docs/second.md", "# Second\n\n![twice](figures/g.svg)\n")
        try fixture.write("docs/figures/g.svg", BookFixture.svg)
        #expect { try Book(projectRoot: fixture.root).files() } throws: { "\($0)".contains("g.svg, pe/g.svg") }
    }
}
