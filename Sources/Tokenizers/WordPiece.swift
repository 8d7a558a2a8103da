import Foundation
import IO
import TensorCore

/// A WordPiece vocabulary: one token per line of `vocab.txt`, id = zero-based line number.
///
/// Lookups compare tokens by their exact UTF-8 bytes (as Python does), not by Swift's canonical
/// String equivalence, so "é" precomposed and "e" + U+0301 are different tokens. See docs/io.md.
public struct WordPieceVocabulary: Sendable {
    /// Tokens by id.
    public let tokens: [String]
    private let ids: [[UInt8]: Int]

    public var count: Int { tokens.count }

    /// Builds from tokens in id order. Duplicates and empty tokens are errors naming both positions
    /// (`path` and 1-based line numbers, as in a vocab.txt).
    public init(tokens: [String], path: String = "<vocab>") throws {
        guard !tokens.isEmpty else { throw DecoderSpecError.malformedFile(path: path, location: "line 1", reason: "vocabulary is empty") }
        var ids: [[UInt8]: Int] = [:]
        for (i, t) in tokens.enumerated() {
            guard !t.isEmpty else {
                throw DecoderSpecError.malformedFile(path: path, location: "line \(i + 1)", reason: "empty token")
            }
            if let previous = ids[Array(t.utf8)] {
                throw DecoderSpecError.malformedFile(path: path, location: "line \(i + 1)", reason: "duplicate token \"\(t)\" (first on line \(previous + 1))")
            }
            ids[Array(t.utf8)] = i
        }
        self.tokens = tokens
        self.ids = ids
    }

    /// Parses vocab.txt bytes: lines separated by "\n" (a trailing "\r" is stripped, so CRLF files
    /// read the same), an optional final newline, a UTF-8 BOM tolerated at the start. Invalid UTF-8,
    /// empty lines and duplicates are errors with the line number.
    public init(contentsOf bytes: [UInt8], path: String = "<vocab>") throws {
        var body = bytes[...]
        if body.starts(with: [0xEF, 0xBB, 0xBF]) { body = body.dropFirst(3) }
        var lines = body.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        var tokens: [String] = []
        tokens.reserveCapacity(lines.count)
        for (i, var line) in lines.enumerated() {
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            guard let s = String(validating: line, as: UTF8.self) else {
                throw DecoderSpecError.malformedFile(path: path, location: "line \(i + 1)", reason: "invalid UTF-8")
            }
            tokens.append(s)
        }
        try self.init(tokens: tokens, path: path)
    }

    /// Reads `vocab.txt` at `url`.
    public static func read(contentsOf url: URL) throws -> WordPieceVocabulary {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw DecoderSpecError.missingFile(path: url.path, hint: "A BERT model directory needs its vocab.txt; run `make fetch-data` to fetch the real models into data/pkgs.")
        }
        return try WordPieceVocabulary(contentsOf: Array(try FileBytes.read(url)), path: url.path)
    }

    /// The id of `token` (exact bytes), or nil.
    public func id(of token: String) -> Int? { ids[Array(token.utf8)] }
    func id(ofBytes bytes: [UInt8]) -> Int? { ids[bytes] }

    /// The token of `id`; throws `.idOutOfRange`.
    public func token(for id: Int, position: Int = 0) throws -> String {
        guard id >= 0, id < tokens.count else { throw DecoderSpecError.idOutOfRange(id: id, position: position, vocabularySize: tokens.count) }
        return tokens[id]
    }
}

/// BERT's "basic tokenizer" (transformers' `BasicTokenizer`), on Unicode scalars like Python:
/// 1. clean: drop U+0000, U+FFFD and control characters (category C*, except \t \n \r); map
///    whitespace (space, \t, \n, \r, category Zs) to a space;
/// 2. put spaces around CJK ideographs (each becomes its own token);
/// 3. NFC-normalize, split on whitespace;
/// 4. per token (unless it is a never-split special token): lower-case, then strip accents
///    (NFD, drop nonspacing marks, category Mn) — uncased BERT does both;
/// 5. split off every punctuation character (ASCII 33–47, 58–64, 91–96, 123–126, or category P*).
public struct BasicTokenizer: Sendable {
    public var lowercase: Bool
    /// nil follows `lowercase` (transformers' `strip_accents=None`).
    public var stripAccents: Bool?
    public var tokenizeCJK: Bool
    public var neverSplit: Set<String>

    public init(lowercase: Bool = true, stripAccents: Bool? = nil, tokenizeCJK: Bool = true, neverSplit: Set<String> = []) {
        self.lowercase = lowercase
        self.stripAccents = stripAccents
        self.tokenizeCJK = tokenizeCJK
        self.neverSplit = neverSplit
    }

    public func tokenize(_ text: String) -> [String] {
        if text.utf8.allSatisfy({ $0 < 0x80 }) { return tokenizeASCII(text) }
        var cleaned = String.UnicodeScalarView()
        for s in text.unicodeScalars {
            if s.value == 0 || s.value == 0xFFFD || BasicTokenizer.isControl(s) { continue }
            if BasicTokenizer.isWhitespace(s) {
                cleaned.append(" ")
            } else if tokenizeCJK && BasicTokenizer.isCJK(s) {
                cleaned.append(" ")
                cleaned.append(s)
                cleaned.append(" ")
            } else {
                cleaned.append(s)
            }
        }
        let normalized = String(cleaned).precomposedStringWithCanonicalMapping
        var out: [String] = []
        for word in BasicTokenizer.splitOnWhitespace(normalized) {
            if neverSplit.contains(word) { out.append(word); continue }
            var w = word
            if lowercase { w = w.lowercased() }
            if stripAccents ?? lowercase { w = BasicTokenizer.stripAccents(w) }
            out.append(contentsOf: BasicTokenizer.splitOnPunctuation(w))
        }
        return out
    }

    /// The same steps for pure-ASCII text, where NFC, NFD and accent stripping are identities and
    /// lower-casing is A–Z → a–z (a fast path; the general path gives the same result).
    func tokenizeASCII(_ text: String) -> [String] {
        var out: [String] = []
        var current: [UInt8] = []
        func flush() {
            if !current.isEmpty { out.append(String(decoding: current, as: UTF8.self)); current.removeAll(keepingCapacity: true) }
        }
        // Words first (so never-split tokens are seen whole), then punctuation splitting.
        var words: [[UInt8]] = []
        var word: [UInt8] = []
        for b in text.utf8 {
            if b == 0 || (b < 0x20 && b != 0x09 && b != 0x0A && b != 0x0D) || b == 0x7F { continue }  // NUL and controls (Cc) dropped
            if b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D {
                if !word.isEmpty { words.append(word); word.removeAll(keepingCapacity: true) }
            } else {
                word.append(b)
            }
        }
        if !word.isEmpty { words.append(word) }
        for w in words {
            if !neverSplit.isEmpty, let s = String(validating: w, as: UTF8.self), neverSplit.contains(s) { out.append(s); continue }
            for var b in w {
                if lowercase && b >= 0x41 && b <= 0x5A { b += 0x20 }
                if (33...47).contains(b) || (58...64).contains(b) || (91...96).contains(b) || (123...126).contains(b) {
                    flush()
                    out.append(String(UnicodeScalar(b)))
                } else {
                    current.append(b)
                }
            }
            flush()
        }
        return out
    }

    static func splitOnWhitespace(_ s: String) -> [String] {
        var out: [String] = []
        var current = String.UnicodeScalarView()
        for u in s.unicodeScalars {
            if isWhitespace(u) {
                if !current.isEmpty { out.append(String(current)); current = String.UnicodeScalarView() }
            } else {
                current.append(u)
            }
        }
        if !current.isEmpty { out.append(String(current)) }
        return out
    }

    static func stripAccents(_ s: String) -> String {
        var out = String.UnicodeScalarView()
        for u in s.decomposedStringWithCanonicalMapping.unicodeScalars where u.properties.generalCategory != .nonspacingMark {
            out.append(u)
        }
        return String(out)
    }

    static func splitOnPunctuation(_ s: String) -> [String] {
        var out: [String] = []
        var current = String.UnicodeScalarView()
        for u in s.unicodeScalars {
            if isPunctuation(u) {
                if !current.isEmpty { out.append(String(current)); current = String.UnicodeScalarView() }
                out.append(String(u))
            } else {
                current.append(u)
            }
        }
        if !current.isEmpty { out.append(String(current)) }
        return out
    }

    public static func isWhitespace(_ u: Unicode.Scalar) -> Bool {
        u == " " || u == "\t" || u == "\n" || u == "\r" || u.properties.generalCategory == .spaceSeparator
    }

    public static func isControl(_ u: Unicode.Scalar) -> Bool {
        if u == "\t" || u == "\n" || u == "\r" { return false }
        switch u.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned: return true
        default: return false
        }
    }

    public static func isPunctuation(_ u: Unicode.Scalar) -> Bool {
        let c = u.value
        if (33...47).contains(c) || (58...64).contains(c) || (91...96).contains(c) || (123...126).contains(c) { return true }
        switch u.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation: return true
        default: return false
        }
    }

    /// The CJK Unified Ideographs blocks BERT treats as one token each (not Hangul, kana).
    public static func isCJK(_ u: Unicode.Scalar) -> Bool {
        switch u.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F,
             0x2B740...0x2B81F, 0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F: return true
        default: return false
        }
    }
}

/// BERT's tokenizer: `BasicTokenizer`, then WordPiece greedy longest-match-first on each word.
///
/// WordPiece: starting at the word's first character, take the longest prefix in the vocabulary;
/// continue from where it ended, now looking up "##" + substring; if some position has no match,
/// the whole word becomes `[UNK]`. Words longer than `maxInputCharsPerWord` (100) Unicode scalars
/// are `[UNK]`. `encode` wraps the ids in `[CLS] … [SEP]`. See docs/io.md.
public struct WordPieceTokenizer: Sendable {
    public let vocabulary: WordPieceVocabulary
    public var basic: BasicTokenizer
    public var maxInputCharsPerWord: Int
    public let unknownID: Int
    public let clsID: Int
    public let sepID: Int
    public let padID: Int?

    public static let specialTokens: Set<String> = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]

    /// Throws when `[UNK]`, `[CLS]` or `[SEP]` is absent from the vocabulary.
    public init(vocabulary: WordPieceVocabulary, lowercase: Bool = true, maxInputCharsPerWord: Int = 100, path: String = "<vocab>") throws {
        func required(_ t: String) throws -> Int {
            guard let id = vocabulary.id(of: t) else {
                throw DecoderSpecError.malformedFile(path: path, location: "line \(vocabulary.count + 1)", reason: "the vocabulary has no \(t) token (BERT needs [UNK], [CLS] and [SEP])")
            }
            return id
        }
        self.vocabulary = vocabulary
        self.basic = BasicTokenizer(lowercase: lowercase, neverSplit: WordPieceTokenizer.specialTokens)
        self.maxInputCharsPerWord = maxInputCharsPerWord
        self.unknownID = try required("[UNK]")
        self.clsID = try required("[CLS]")
        self.sepID = try required("[SEP]")
        self.padID = vocabulary.id(of: "[PAD]")
    }

    /// Loads `vocab.txt` from a model directory (uncased, as all-MiniLM-L6-v2).
    public static func load(modelDirectory: URL, lowercase: Bool = true) throws -> WordPieceTokenizer {
        let url = modelDirectory.appendingPathComponent("vocab.txt")
        return try WordPieceTokenizer(vocabulary: try WordPieceVocabulary.read(contentsOf: url), lowercase: lowercase, path: url.path)
    }

    /// Loads `vocab.txt` from a model directory and checks it against the model's token-embedding
    /// table of `embeddingRows` rows (config.json's `vocab_size`): every id the tokenizer can emit
    /// must index a row. A longer vocab.txt (another model's, or a damaged one) is refused here,
    /// naming both counts, instead of failing later on the first sentence that reaches a high id.
    /// A shorter one is accepted: some checkpoints pad the table past the vocabulary.
    ///
    /// - Throws: `.malformedFile` naming vocab.txt, its token count and `embeddingRows`.
    public static func load(modelDirectory: URL, lowercase: Bool = true, embeddingRows: Int) throws -> WordPieceTokenizer {
        let tokenizer = try load(modelDirectory: modelDirectory, lowercase: lowercase)
        let count = tokenizer.vocabulary.tokens.count
        guard count <= embeddingRows else {
            throw DecoderSpecError.malformedFile(
                path: modelDirectory.appendingPathComponent("vocab.txt").path, location: "line \(embeddingRows + 1)",
                reason: "\(count) tokens, but the model's token-embedding table has \(embeddingRows) rows (config.json's vocab_size): ids \(embeddingRows)…\(count - 1) would index past it (vocab.txt is another model's?)")
        }
        return tokenizer
    }

    /// WordPiece ids of one already basic-tokenized word.
    public func wordPieceIDs(_ word: String) -> [Int] {
        // UTF-8 bytes of the word and the byte offset where each scalar starts (plus the end).
        let bytes = Array(word.utf8)
        var boundaries: [Int] = []
        boundaries.reserveCapacity(bytes.count + 1)
        for (i, b) in bytes.enumerated() where b & 0xC0 != 0x80 { boundaries.append(i) }
        let scalarCount = boundaries.count
        boundaries.append(bytes.count)
        if scalarCount > maxInputCharsPerWord { return [unknownID] }
        var ids: [Int] = []
        var start = 0
        var piece: [UInt8] = []
        while start < scalarCount {
            var end = scalarCount
            var found: Int?
            while start < end {
                piece.removeAll(keepingCapacity: true)
                if start > 0 { piece.append(0x23); piece.append(0x23) }  // "##"
                piece.append(contentsOf: bytes[boundaries[start]..<boundaries[end]])
                if let id = vocabulary.id(ofBytes: piece) { found = id; break }
                end -= 1
            }
            guard let id = found else { return [unknownID] }
            ids.append(id)
            start = end
        }
        return ids
    }

    /// The WordPiece tokens of `text` (no special tokens added).
    public func tokenize(_ text: String) -> [String] {
        ids(text).map { vocabulary.tokens[$0] }
    }

    /// Ids of `text` without `[CLS]`/`[SEP]`. Special tokens written in the text ("[SEP]") are kept.
    public func ids(_ text: String) -> [Int] {
        basic.tokenize(text).flatMap { word -> [Int] in
            if WordPieceTokenizer.specialTokens.contains(word), let id = vocabulary.id(of: word) { return [id] }
            return wordPieceIDs(word)
        }
    }

    /// `[CLS] ids(text) [SEP]`.
    public func encode(_ text: String) -> [Int] { [clsID] + ids(text) + [sepID] }

    /// Encodes pre-split words (a CoNLL sentence) as `[CLS] … [SEP]`, with, for each id, the index of
    /// the word it came from (nil for `[CLS]`/`[SEP]`) — for labelling each word's first sub-token.
    /// A word that the basic tokenizer removes entirely (control characters only) maps to `[UNK]`
    /// so every word keeps at least one sub-token.
    public func encode(words: [String]) -> (ids: [Int], wordIndex: [Int?]) {
        var ids = [clsID]
        var wordIndex: [Int?] = [nil]
        for (w, word) in words.enumerated() {
            var pieces = self.ids(word)
            if pieces.isEmpty { pieces = [unknownID] }
            ids.append(contentsOf: pieces)
            wordIndex.append(contentsOf: Array(repeating: w, count: pieces.count))
        }
        ids.append(sepID)
        wordIndex.append(nil)
        return (ids, wordIndex)
    }

    /// Joins tokens, gluing `##` continuations to the previous token; `[CLS]`, `[SEP]`, `[PAD]`
    /// are dropped when `skipSpecial`. Out-of-range ids throw `.idOutOfRange`.
    public func decode(_ ids: [Int], skipSpecial: Bool = true) throws -> String {
        var out = ""
        for (position, id) in ids.enumerated() {
            let t = try vocabulary.token(for: id, position: position)
            if skipSpecial && (id == clsID || id == sepID || id == padID) { continue }
            if t.hasPrefix("##") {
                out += t.dropFirst(2)
            } else {
                if !out.isEmpty { out += " " }
                out += t
            }
        }
        return out
    }
}
