import Foundation

/// The book: the DocC catalog of the `DecoderSpec` library, generated from the executed notebooks
/// (`notebooks-md/*.md`, in reading order) and the concept pages (`docs/*.md`). Nothing in the
/// catalog is written by hand; `decoder-spec book` writes it and `Tests/NotebookSpecs` fails when the
/// committed catalog is out of step with its sources. See docs/architecture.md ("The book").
///
/// What the generator rewrites (outside code blocks, which are copied as they are):
/// - a reference to a page, `docs/attention.md` or `notebooks-md/04-attention.md` (in a code span or
///   plain), becomes a DocC link showing the page's title (`<doc:Page-attention>`); a Markdown link to
///   a page or heading keeps its text (`[Fuzzing](#fuzzing)` → `[Fuzzing](doc:Page-reliability#Fuzzing)`),
///   and "notebook 05" in prose links to that notebook;
/// - a code span that is exactly the name of a public top-level type or (not overloaded) free
///   function of a module the umbrella re-exports becomes a symbol link into that module's
///   documentation (``` ``/Layers/MultiHeadAttention`` ```; `make docs` builds every such module);
/// - an image link to a figure, `../docs/figures/x.svg` (notebooks) or `figures/x.svg` (pages), becomes
///   `x.svg`, and the figure is copied into the catalog's `Resources/`.
public struct Book {
    /// The catalog, relative to the project root.
    public static let catalog = "Sources/DecoderSpec/DecoderSpec.docc"

    public let root: URL
    public init(projectRoot: URL) { self.root = projectRoot }

    /// One source page of the book.
    struct Page {
        /// The source, relative to the root (`notebooks-md/04-attention.md`, `docs/attention.md`).
        var source: String
        /// The article's name in the catalog (its file name without `.md`, the `<doc:…>` target).
        var article: String
        var text: String
    }

    /// Every file of the catalog: path relative to the catalog → contents.
    public func files() throws -> [String: Data] {
        let notebooks = try markdownFiles(in: "notebooks-md").map { name in
            Page(source: "notebooks-md/\(name).md", article: "Notebook-\(name)", text: try read("notebooks-md/\(name).md"))
        }
        let pages = try markdownFiles(in: "docs").map { name in
            Page(source: "docs/\(name).md", article: "Page-\(name)", text: try read("docs/\(name).md"))
        }
        let articles = Dictionary(uniqueKeysWithValues: (notebooks + pages).map { ($0.source, $0.article) })
        let symbols = try publicSymbols()
        var out: [String: Data] = [:]
        var figures: Set<String> = []
        for page in notebooks + pages {
            var text = try article(page, articles: articles, symbols: symbols, figures: &figures)
            if page.source.hasPrefix("notebooks-md/") { text = Self.withRunNote(text, page: page) }
            out["\(page.article).md"] = Data(text.utf8)
        }
        let byName = Dictionary(grouping: figures) { ($0 as NSString).lastPathComponent }
        if let clash = byName.values.first(where: { $0.count > 1 }) {
            throw BookError.badLink(page: "docs/figures", line: 0, target: clash.sorted().joined(separator: ", "),
                                    reason: "figures in different folders share a file name, which DocC cannot tell apart")
        }
        for figure in figures.sorted() {
            out["Resources/\(figure)"] = try Data(contentsOf: root.appendingPathComponent("docs/figures/\(figure)"))
        }
        out["DecoderSpec.md"] = Data(try landingPage(notebooks: notebooks, pages: pages).utf8)
        // The renderer asks for theme settings on every page; quick navigation (⇧⌘O / "/") finds any page.
        out["theme-settings.json"] = Data(#"{"meta": {}, "theme": {}, "features": {"docs": {"quickNavigation": {"enable": true}}}}"#.utf8 + [10])
        return out
    }

    /// The catalog files that differ from `files()` (changed, missing or not generated), sorted.
    public func outOfStep() throws -> [String] { try outOfStep(try files()) }

    func outOfStep(_ want: [String: Data]) throws -> [String] {
        let have = try committed()
        return Set(want.keys).union(have.keys).filter { want[$0] != have[$0] }.sorted()
    }

    /// Writes the catalog and removes files it no longer generates; returns what changed.
    @discardableResult
    public func write() throws -> [String] {
        let want = try files()
        let changed = try outOfStep(want)
        let dir = root.appendingPathComponent(Self.catalog)
        for name in changed {
            let url = dir.appendingPathComponent(name)
            if let data = want[name] {
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try data.write(to: url, options: .atomic)
            } else {
                try FileManager.default.removeItem(at: url)
            }
        }
        return changed
    }

    /// The files now in the catalog directory.
    func committed() throws -> [String: Data] {
        let dir = root.appendingPathComponent(Self.catalog)
        var out: [String: Data] = [:]
        guard let walker = FileManager.default.enumerator(atPath: dir.path) else { return out }
        for case let name as String in walker {
            var isDir: ObjCBool = false
            let path = dir.appendingPathComponent(name).path
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue {
                out[name] = FileManager.default.contents(atPath: path)
            }
        }
        return out
    }

    func read(_ relative: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(relative), encoding: .utf8)
    }

    /// The `.md` files of a folder, without the extension, sorted (reading order for the notebooks).
    func markdownFiles(in folder: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent(folder).path)
            .filter { $0.hasSuffix(".md") }.sorted().map { String($0.dropLast(3)) }
    }

    // MARK: The landing page

    func landingPage(notebooks: [Page], pages: [Page]) throws -> String {
        // Concept pages in the order the README's reading order first names them, then the rest.
        var readme = try read("README.md")
        if let start = readme.range(of: "## Reading order") {
            readme = String(readme[start.upperBound...])
            if let end = readme.range(of: "\n## ") { readme = String(readme[..<end.lowerBound]) }
        }
        let mentioned = Self.matches(of: #"docs/([a-z0-9-]+)\.md"#, in: readme).map { "docs/\($0).md" }
        var order: [String] = []
        for source in mentioned + pages.map(\.source) where !order.contains(source) && pages.contains(where: { $0.source == source }) {
            order.append(source)
        }
        let pageArticle = Dictionary(uniqueKeysWithValues: pages.map { ($0.source, $0.article) })
        return """
        # ``DecoderSpec``

        The Transformer decoder, every formula executable, checkable and measurable.

        ## Overview

        Each concept — token embedding, positional encoding, attention, masking, layers, the decoder
        loop, fine-tune heads — is a small literate Swift module whose math is checked numerically
        against the GNU Scientific Library in Double precision. This book is generated from the
        project's executed notebooks and concept pages by `decoder-spec book`: every code listing in a
        notebook article ran, and every output listing under it is what that code printed, checked
        cell by cell by `make test`. Read the notebooks in order; each names the concept page that
        holds the derivations, and names in code font link to the API.

        `import DecoderSpec` brings in every concept module. To run a notebook yourself and see its
        outputs: `decoder-spec notebooks 04 --print`.

        ## Topics

        ### Notebooks, in reading order

        \(notebooks.map { "- <doc:\($0.article)>" }.joined(separator: "\n"))

        ### Concept pages

        \(order.compactMap { pageArticle[$0].map { "- <doc:\($0)>" } }.joined(separator: "\n"))

        """
    }

    /// A notebook article: before its first code listing, where it comes from and how to run it.
    static func withRunNote(_ text: String, page: Page) -> String {
        var lines = text.components(separatedBy: "\n")
        let number = page.article.dropFirst("Notebook-".count).prefix(2)
        let note = ["> Note: This article is the notebook `\(page.source)`. Every output listing is what the code",
                    "> listing above it printed, checked by `make test`. Run it yourself: `decoder-spec notebooks \(number) --print`.", ""]
        lines.insert(contentsOf: note, at: lines.firstIndex { $0.trimmingCharacters(in: .whitespaces) == "```swift" } ?? lines.count)
        return lines.joined(separator: "\n")
    }

    // MARK: One article

    func article(_ page: Page, articles: [String: String], symbols: [String: String], figures: inout Set<String>) throws -> String {
        var out: [String] = []
        var fence: String? = nil        // the open fence of a fenced code block
        var previousBlank = true, inIndentedCode = false, inList = false
        for (n, line) in page.text.components(separatedBy: "\n").enumerated() {
            // A fence may sit in a block quote ("> ```python").
            let trimmed = String(line.drop { $0 == ">" || $0 == " " })
            if let open = fence {
                out.append(line)
                if trimmed == open { fence = nil }
                continue
            }
            if trimmed.hasPrefix("```") || trimmed.hasPrefix("~~~") {
                fence = String(trimmed.prefix(3))
                out.append(line); previousBlank = false
                continue
            }
            let indented = line.hasPrefix("    ") || line.hasPrefix("\t")
            if trimmed.isEmpty {
                previousBlank = true; out.append(line); continue
            }
            if indented && (inIndentedCode || (previousBlank && !inList)) {
                inIndentedCode = true; previousBlank = false
                out.append(line); continue
            }
            inIndentedCode = false
            if !indented { inList = Self.isListItem(trimmed) || (inList && !previousBlank) }
            previousBlank = false
            out.append(try inline(line, page: page, at: n + 1, articles: articles, symbols: symbols, figures: &figures))
        }
        return out.joined(separator: "\n")
    }

    static func isListItem(_ line: String) -> Bool {
        line.hasPrefix("- ") || line.hasPrefix("* ") || line.hasPrefix("+ ")
            || line.range(of: #"^[0-9]+[.)] "#, options: .regularExpression) != nil
    }

    /// Rewrites one line of prose: images, Markdown links, page references, symbol code spans.
    func inline(_ line: String, page: Page, at lineNumber: Int, articles: [String: String], symbols: [String: String],
                figures: inout Set<String>) throws -> String {
        let folder = (page.source as NSString).deletingLastPathComponent
        // Images and links in code spans are shown, not followed.
        var text = try Self.outsideCodeSpans(line) { prose in
            var text = prose
            // Images: ![alt](path) with a figure under docs/figures/.
            for match in Self.spans(of: #"!\[([^\]]*)\]\(([^)\s]+)\)"#, in: text).reversed() {
                let (alt, target) = (match.groups[0], match.groups[1])
                let resolved = Self.normalized(folder + "/" + target)
                guard resolved.hasPrefix("docs/figures/") else {
                    throw BookError.badLink(page: page.source, line: lineNumber, target: target, reason: "an image must be a figure under docs/figures/")
                }
                let name = String(resolved.dropFirst("docs/figures/".count))
                guard FileManager.default.fileExists(atPath: root.appendingPathComponent(resolved).path) else {
                    throw BookError.badLink(page: page.source, line: lineNumber, target: target, reason: "no such figure (make figures draws the notebooks' figures)")
                }
                figures.insert(name)
                // DocC finds a resource by its file name, wherever it sits in the catalog.
                text.replaceSubrange(match.range, with: "![\(alt)](\((name as NSString).lastPathComponent))")
            }
            // Markdown links to another page, or to a heading: [text](errors.md#x), [text](#x).
            for match in Self.spans(of: #"(?<!!)\[([^\]]+)\]\(([^)\s]+)\)"#, in: text).reversed() {
                let target = match.groups[1]
                if target.hasPrefix("http://") || target.hasPrefix("https://") || target.hasPrefix("<doc:") { continue }
                let parts = target.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                let file = parts[0].isEmpty ? page.source : Self.normalized(folder + "/" + parts[0])
                guard let article = articles[file] else {
                    throw BookError.badLink(page: page.source, line: lineNumber, target: target, reason: "not a notebook or a page of docs/")
                }
                // Link text that is only the file's name gives way to the page's title.
                let named = match.groups[0] == (parts[0] as NSString).lastPathComponent
                var link = named ? "<doc:\(article)" : "[\(match.groups[0])](doc:\(article)"
                if parts.count == 2 {
                    guard let heading = try self.heading(anchor: parts[1], in: file) else {
                        throw BookError.badLink(page: page.source, line: lineNumber, target: target, reason: "no heading with that anchor")
                    }
                    link += "#" + heading.replacingOccurrences(of: " ", with: "-")
                }
                text.replaceSubrange(match.range, with: link + (named ? ">" : ")"))
            }
            // "notebook 05" in prose links to that notebook.
            for match in Self.spans(of: #"\b([Nn]otebook ([0-9]{2}))\b"#, in: text).reversed() {
                guard let article = articles.first(where: { $0.key.hasPrefix("notebooks-md/\(match.groups[1])-") })?.value else { continue }
                text.replaceSubrange(match.range, with: "[\(match.groups[0])](doc:\(article))")
            }
            return text
        }
        // References to pages by path, in a code span or plain.
        for match in Self.spans(of: #"`?((?:\.\./)?(?:docs/[a-z0-9-]+|notebooks-md/[0-9]{2}-[a-z0-9-]+)\.md)`?"#, in: text).reversed() {
            let file = Self.normalized(match.groups[0].hasPrefix("../") ? folder + "/" + match.groups[0] : match.groups[0])
            guard let article = articles[file] else { continue }
            text.replaceSubrange(match.range, with: "<doc:\(article)>")
        }
        // "Its ```swift blocks" in prose: DocC reads any multi-backtick span as a symbol link.
        for match in Self.spans(of: #"```([a-z]+)"#, in: text).reversed() {
            text.replaceSubrange(match.range, with: "`\(match.groups[0])`")
        }
        // A Markdown code span with a backtick inside (``a `b` c``) would be a symbol link to DocC.
        for match in Self.spans(of: #"(?<!`)``(?!`)(.+?)(?<!`)``(?!`)"#, in: text).reversed() {
            text.replaceSubrange(match.range, with: "`" + match.groups[0].trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "`", with: "\"") + "`")
        }
        // Code spans naming a public symbol; DocC reaches another module's symbol by an absolute link.
        for match in Self.spans(of: #"(?<!`)`([A-Za-z_][A-Za-z0-9_]*)`(?!`)"#, in: text).reversed() {
            guard let path = symbols[match.groups[0]] else { continue }
            text.replaceSubrange(match.range, with: "``/\(path)``")
        }
        return text
    }

    /// `text` with `transform` applied outside `code spans`: each span is set aside behind a
    /// placeholder while `transform` runs (so a link whose text is a code span stays whole), then put back.
    static func outsideCodeSpans(_ text: String, _ transform: (String) throws -> String) rethrows -> String {
        var spans: [Substring] = [], masked = "", i = text.startIndex
        while i < text.endIndex {
            if text[i] == "`" {
                let run = text[i...].prefix { $0 == "`" }
                if let close = text[run.endIndex...].range(of: String(run)) {
                    masked += "\u{E000}\(spans.count)\u{E001}"
                    spans.append(text[i..<close.upperBound])
                    i = close.upperBound
                    continue
                }
            }
            masked.append(text[i])
            i = text.index(after: i)
        }
        var out = try transform(masked)
        for (k, span) in spans.enumerated() { out = out.replacingOccurrences(of: "\u{E000}\(k)\u{E001}", with: span) }
        return out
    }

    /// The heading of `file` whose GitHub-style anchor is `anchor` ("Bad input: the matrix" ↔ "bad-input-the-matrix").
    func heading(anchor: String, in file: String) throws -> String? {
        for line in try read(file).components(separatedBy: "\n") where line.hasPrefix("#") {
            let title = line.drop(while: { $0 == "#" }).trimmingCharacters(in: .whitespaces)
            let slug = title.lowercased().filter { $0.isLetter || $0.isNumber || $0 == " " || $0 == "-" }
                .replacingOccurrences(of: " ", with: "-")
            if slug == anchor { return title }
        }
        return nil
    }

    // MARK: Symbols

    /// Public top-level types and free functions, declared once, of the modules the umbrella
    /// re-exports: name → its DocC path ("Layers/MultiHeadAttention", "Attention/attentionWeights(q:k:mask:)").
    func publicSymbols() throws -> [String: String] {
        var declared: [String: [String]] = [:], signatures: [String: String] = [:]
        for module in try modules() {
            let dir = root.appendingPathComponent("Sources/\(module)")
            for file in try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() where file.hasSuffix(".swift") {
                let source = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
                let pattern = #"(?m)^public (?:final )?(?:struct|class|enum|protocol|actor|typealias) ([A-Za-z_][A-Za-z0-9_]*)"#
                for name in Self.matches(of: pattern, in: source) { declared[name, default: []].append(module) }
                for function in Self.spans(of: #"(?m)^public func ([A-Za-z_][A-Za-z0-9_]*)(?:<[^>(]*>)?\("#, in: source) {
                    declared[function.groups[0], default: []].append(module)
                    signatures[function.groups[0]] = function.groups[0] + Self.labels(source[function.range.upperBound...])
                }
            }
        }
        var out: [String: String] = [:]
        for (name, modules) in declared where modules.count == 1 { out[name] = modules[0] + "/" + (signatures[name] ?? name) }
        return out
    }

    /// "(q: Matrix, k: Matrix, mask: AttentionMask = .none) …" (after the opening parenthesis) →
    /// "(q:k:mask:)", the argument labels DocC names a function by.
    static func labels(_ rest: Substring) -> String {
        var depth = 0, parameter = "", parameters: [String] = []
        for c in rest {
            if depth == 0 && (c == "," || c == ")") {
                parameters.append(parameter); parameter = ""
                if c == ")" { break } else { continue }
            }
            if "([<".contains(c) { depth += 1 } else if ")]>".contains(c) { depth -= 1 }
            parameter.append(c)
        }
        let names = parameters.compactMap { p -> String? in
            let head = p.split(separator: ":", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
            return head.isEmpty ? nil : String(head.split(separator: " ").first!)
        }
        return "(" + names.map { $0 + ":" }.joined() + ")"
    }

    /// The modules the umbrella `DecoderSpec` re-exports, in its order (the book's API; `make docs` documents them).
    public func modules() throws -> [String] {
        Self.matches(of: #"(?m)^@_exported import ([A-Za-z]+)"#, in: try read("Sources/DecoderSpec/DecoderSpec.swift"))
    }

    // MARK: Text helpers

    struct Span { var range: Range<String.Index>; var groups: [String] }

    static func spans(of pattern: String, in text: String) -> [Span] {
        let regex = try! NSRegularExpression(pattern: pattern)
        return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).map { m in
            Span(range: Range(m.range, in: text)!,
                 groups: (1..<m.numberOfRanges).map { Range(m.range(at: $0), in: text).map { String(text[$0]) } ?? "" })
        }
    }

    static func matches(of pattern: String, in text: String) -> [String] {
        spans(of: pattern, in: text).map { $0.groups[0] }
    }

    /// "notebooks-md/../docs/figures/a.svg" → "docs/figures/a.svg".
    static func normalized(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/") {
            if part == "." { continue }
            if part == "..", !parts.isEmpty { parts.removeLast() } else { parts.append(part) }
        }
        return parts.joined(separator: "/")
    }
}

public enum BookError: Error, CustomStringConvertible {
    case badLink(page: String, line: Int, target: String, reason: String)

    public var description: String {
        switch self {
        case let .badLink(page, line, target, reason): return "\(page):\(line): link \(target): \(reason)"
        }
    }
}
