import Foundation

/// A literate notebook: Markdown whose ```swift blocks run in order, in one scope, and whose
/// ```output blocks hold the exact stdout the preceding swift block must print. See
/// docs/architecture.md ("Notebooks").
public struct Notebook: Sendable {
    public struct Cell: Sendable {
        /// Line (1-based) of the ```swift fence.
        public var line: Int
        public var code: String
        /// The expected output, or nil when no ```output block follows (then it must print nothing).
        public var expected: String?
        /// Line range of the ```output block's fences (to rewrite it with --update).
        var outputFence: Range<Int>?
    }

    public let path: String
    public let name: String
    var lines: [String]
    public var cells: [Cell]

    public init(path: String) throws {
        self.path = path
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        guard let text = String(validating: bytes, as: UTF8.self) else {
            // Name the first line that is not UTF-8 (Foundation's own error names neither file nor line).
            let lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
            let bad = lines.firstIndex { String(validating: $0, as: UTF8.self) == nil } ?? 0
            throw NotebookError.malformed(path: path, line: bad + 1, reason: "not valid UTF-8")
        }
        self.name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        self.lines = text.components(separatedBy: "\n")
        self.cells = []
        var i = 0
        while i < lines.count {
            let fence = lines[i].trimmingCharacters(in: .whitespaces)
            if fence == "```swift" || fence == "```output" {
                let start = i
                var body: [String] = []
                i += 1
                while i < lines.count, lines[i].trimmingCharacters(in: .whitespaces) != "```" {
                    body.append(lines[i]); i += 1
                }
                guard i < lines.count else {
                    throw NotebookError.malformed(path: path, line: start + 1, reason: "unclosed \(fence) block")
                }
                let content = body.joined(separator: "\n")
                if fence == "```swift" {
                    cells.append(Cell(line: start + 1, code: content, expected: nil, outputFence: nil))
                } else {
                    guard !cells.isEmpty, cells[cells.count - 1].outputFence == nil else {
                        throw NotebookError.malformed(path: path, line: start + 1, reason: "```output block without a preceding ```swift block")
                    }
                    cells[cells.count - 1].expected = content
                    cells[cells.count - 1].outputFence = start..<(i + 1)
                }
            }
            i += 1
        }
    }

    /// The marker printed after each cell so stdout can be split back into cells.
    static func marker(_ index: Int) -> String { "\u{1E}NOTEBOOK-CELL-END \(index)" }

    /// main.swift: the cells concatenated in one top-level scope, each followed by its marker.
    func mainSource() -> String {
        var out = "// Generated from \(name).md by the notebook runner. Do not edit.\n"
        for (k, cell) in cells.enumerated() {
            out += "// cell \(k), \(name).md:\(cell.line)\n\(cell.code)\n"
            out += "print(\"\\u{1E}NOTEBOOK-CELL-END \(k)\")\n"
        }
        return out
    }

    /// The notebook's text with every cell's output block set to `outputs[k]`.
    func updated(with outputs: [String]) -> String {
        var result: [String] = []
        var i = 0
        var k = 0
        while i < lines.count {
            guard lines[i].trimmingCharacters(in: .whitespaces) == "```swift" else {
                result.append(lines[i]); i += 1; continue
            }
            // Copy the swift block through its closing fence.
            result.append(lines[i]); i += 1
            while lines[i].trimmingCharacters(in: .whitespaces) != "```" { result.append(lines[i]); i += 1 }
            result.append(lines[i]); i += 1
            let output = outputs[k]
            let block = output.isEmpty ? ["```output", "```"] : ["```output", output, "```"]
            if let fenceRange = cells[k].outputFence {
                while i < fenceRange.lowerBound { result.append(lines[i]); i += 1 }  // prose between stays
                result += block
                i = fenceRange.upperBound
            } else if !output.isEmpty {
                result += [""] + block
            }
            k += 1
        }
        return result.joined(separator: "\n")
    }
}

public enum NotebookError: Error, CustomStringConvertible {
    case malformed(path: String, line: Int, reason: String)
    case buildFailed(log: String)
    case runFailed(notebook: String, status: Int32, output: String)

    public var description: String {
        switch self {
        case let .malformed(path, line, reason): return "\(path):\(line): \(reason)"
        case let .buildFailed(log): return "notebook build failed:\n\(log)"
        case let .runFailed(notebook, status, output): return "\(notebook) exited with status \(status):\n\(output)"
        }
    }
}
