import Foundation

/// Choosing and showing notebooks for a reader who explores (`decoder-spec notebooks 04 --print --cell 2`).
extension NotebookRunner {
    /// The notebook a reader names: its number (`4`, `04`), its name (`04-attention`, `04-attention.md`)
    /// or a path to a Markdown file. nil when nothing matches.
    public func resolve(_ name: String) throws -> String? {
        if name.hasSuffix(".md"), FileManager.default.fileExists(atPath: name) {
            return URL(fileURLWithPath: name).standardizedFileURL.path
        }
        let paths = try notebookPaths()
        let base = name.hasSuffix(".md") ? String(name.dropLast(3)) : name
        if let number = Int(base) {
            return paths.first { Int(((($0 as NSString).lastPathComponent).prefix { $0.isNumber })) == number }
        }
        return paths.first { (($0 as NSString).lastPathComponent as NSString).deletingPathExtension == base }
    }

    /// One cell as a reader sees it: a header naming it, optionally its code, then what it printed.
    public static func show(_ cell: Notebook.Cell, number: Int, of notebook: String, output: String, code: Bool) -> String {
        var out = "── \((notebook as NSString).lastPathComponent) · cell \(number) (line \(cell.line)) ──\n"
        if code { out += cell.code + "\n── output ──\n" }
        return out + (output.isEmpty ? "(prints nothing)" : output)
    }
}
