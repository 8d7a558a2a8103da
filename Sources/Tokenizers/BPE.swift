import Foundation
import IO
import TensorCore

/// GPT-2's reversible map from the 256 byte values to printable Unicode scalars, so that any byte
/// string becomes a string of visible symbols (space 0x20 → "Ġ" U+0120, newline 0x0A → "Ċ" U+010A).
///
/// Printable bytes `!`…`~`, `¡`…`¬`, `®`…`ÿ` map to themselves; the other 68 bytes map, in byte
/// order, to U+0100, U+0101, …. See docs/io.md.
public enum ByteLevel {
    public static let byteToScalar: [Unicode.Scalar] = {
        var printable = Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF)
        var scalars = printable
        var n = 0
        for b in 0..<256 where !printable.contains(b) {
            printable.append(b)
            scalars.append(256 + n)
            n += 1
        }
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        for (b, s) in zip(printable, scalars) { table[b] = Unicode.Scalar(UInt32(s))! }
        return table
    }()

    public static let scalarToByte: [Unicode.Scalar: UInt8] = {
        var d: [Unicode.Scalar: UInt8] = [:]
        for (b, s) in byteToScalar.enumerated() { d[s] = UInt8(b) }
        return d
    }()

    /// The byte-level symbols of `text`'s UTF-8 bytes, one per byte.
    public static func symbols(_ text: String) -> [String] { text.utf8.map { String(byteToScalar[Int($0)]) } }

    /// GPT-2's pre-tokenizer, the regex
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    /// transcribed alternative by alternative (first alternative that matches wins, each greedy).
    public static func preTokenize(_ text: String) -> [String] {
        let s = Array(text.unicodeScalars)
        var out: [String] = []
        var i = 0
        func isCategoryL(_ u: Unicode.Scalar) -> Bool {
            switch u.properties.generalCategory {
            case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
            default: return false
            }
        }
        func isNumber(_ u: Unicode.Scalar) -> Bool {
            switch u.properties.generalCategory {
            case .decimalNumber, .letterNumber, .otherNumber: return true
            default: return false
            }
        }
        func isSpace(_ u: Unicode.Scalar) -> Bool { u.properties.isWhitespace }
        func isOther(_ u: Unicode.Scalar) -> Bool { !isSpace(u) && !isCategoryL(u) && !isNumber(u) }
        func emit(_ from: Int, _ to: Int) {
            var v = String.UnicodeScalarView()
            v.append(contentsOf: s[from..<to])
            out.append(String(v))
            i = to
        }
        /// Length of the run of `pred` starting at `j`.
        func run(_ j: Int, _ pred: (Unicode.Scalar) -> Bool) -> Int {
            var k = j
            while k < s.count, pred(s[k]) { k += 1 }
            return k - j
        }
        outer: while i < s.count {
            // 's 't 're 've 'm 'll 'd
            if s[i] == "'" {
                for c in ["s", "t", "re", "ve", "m", "ll", "d"] {
                    let cs = Array(c.unicodeScalars)
                    if i + 1 + cs.count <= s.count, Array(s[(i + 1)..<(i + 1 + cs.count)]) == cs {
                        emit(i, i + 1 + cs.count)
                        continue outer
                    }
                }
            }
            // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`
            let start = (s[i] == " " && i + 1 < s.count) ? i + 1 : i
            for pred in [isCategoryL, isNumber, isOther] as [(Unicode.Scalar) -> Bool] {
                let n = run(start, pred)
                if n > 0 { emit(i, start + n); continue outer }
                if start != i {
                    // without the optional space
                    let m = run(i, pred)
                    if m > 0 { emit(i, i + m); continue outer }
                }
            }
            // `\s+(?!\S)` then `\s+`
            let n = run(i, isSpace)
            if n > 0 {
                if i + n == s.count { emit(i, i + n); continue }
                if n >= 2 { emit(i, i + n - 1); continue }
                emit(i, i + 1)
                continue
            }
            emit(i, i + 1)  // unreachable: every scalar is L, N, space or other
        }
        return out
    }
}

/// A byte-level BPE tokenizer (GPT-2): `vocab.json` (token → id) and `merges.txt` (ranked pairs).
///
/// encode: pre-tokenize (GPT-2 regex), map each piece's UTF-8 bytes to byte-level symbols, then
/// repeatedly merge the adjacent pair with the lowest merge rank (all its non-overlapping
/// occurrences, left to right) until no ranked pair remains; look the symbols up in the vocab.
/// decode: ids → tokens → symbols → bytes → UTF-8 (invalid sequences become U+FFFD, as GPT-2's
/// `errors="replace"`). Lossless: decode(encode(s)) == s for every string. See docs/io.md.
public struct BPETokenizer: Sendable {
    public let tokens: [String]
    private let ids: [String: Int]
    /// Merge pairs in rank order.
    public let merges: [(String, String)]
    private let ranks: [PairKey: Int]

    struct PairKey: Hashable, Sendable {
        let a: String
        let b: String
    }

    /// A string compared and hashed by its UTF-8 bytes (exact scalars), not by Swift's canonical
    /// equivalence (under which "가" equals its conjoining-jamo spelling).
    struct ExactKey: Hashable, Sendable {
        let string: String
        init(_ string: String) { self.string = string }
        static func == (l: ExactKey, r: ExactKey) -> Bool { l.string.utf8.elementsEqual(r.string.utf8) }
        func hash(into hasher: inout Hasher) {
            var s = string
            s.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        }
    }

    /// Builds from a token list (id = index) and merges in rank order. Every merge's parts and
    /// result must be in the vocabulary, and all 256 byte symbols must be, so any text encodes.
    ///
    /// Merge parts must be non-empty, without spaces, "\n" or "\r" (merges.txt could not hold them).
    /// Tokens must be distinct as Swift Strings (canonical equivalence, as the JSON reader's keys).
    /// Byte symbols and merge parts must be in the vocabulary with their exact scalars: "A" + U+0304
    /// where the vocabulary holds "Ā" (U+0100, byte 0x00's symbol) is refused, since encode would
    /// look up one spelling and decode the other's bytes (found while writing the fuzz harness;
    /// inputs in fuzz/bpe/regressions).
    public init(tokens: [String], merges: [(String, String)], path: String = "<bpe>") throws {
        var ids: [String: Int] = [:]
        for (i, t) in tokens.enumerated() {
            if let j = ids[t] {
                throw DecoderSpecError.malformedFile(path: path, location: "token \(i)", reason: "duplicate token \"\(t)\" (also id \(j))")
            }
            ids[t] = i
        }
        func exactlyPresent(_ t: String) -> Bool { ids[t].map { tokens[$0].utf8.elementsEqual(t.utf8) } ?? false }
        for (b, s) in ByteLevel.byteToScalar.enumerated() where !exactlyPresent(String(s)) {
            throw DecoderSpecError.malformedFile(path: path, location: "vocabulary", reason: "missing the byte-level symbol \"\(s)\" for byte 0x\(String(b, radix: 16)); a byte-level vocabulary must contain all 256")
        }
        var ranks: [PairKey: Int] = [:]
        for (r, (a, b)) in merges.enumerated() {
            // merges.txt holds one "a b" per line and its reader strips a "\r" before "\n", so a
            // part with a space, "\n" or "\r" would not survive mergesText → parseMerges (found by
            // fuzzing). Byte-level symbols never contain them (0x20 → "Ġ", 0x0A → "Ċ", 0x0D → "č").
            for part in [a, b] where part.isEmpty || part.unicodeScalars.contains(where: { $0 == " " || $0 == "\n" || $0 == "\r" }) {
                throw DecoderSpecError.malformedFile(path: path, location: "merge \(r + 1)", reason: "merge part \(part.debugDescription) must be non-empty without spaces or line breaks (merges.txt could not hold it)")
            }
            for part in [a, b, a + b] where !exactlyPresent(part) {
                let twin = ids[part].map { " (\"\(tokens[$0])\", id \($0), has the same characters but different Unicode scalars)" } ?? ""
                throw DecoderSpecError.malformedFile(path: path, location: "merge \(r + 1)", reason: "\"\(part)\" (from merge \"\(a) \(b)\") is not in the vocabulary\(twin)")
            }
            if ranks[PairKey(a: a, b: b)] == nil { ranks[PairKey(a: a, b: b)] = r }
        }
        self.tokens = tokens
        self.ids = ids
        self.merges = merges
        self.ranks = ranks
    }

    /// Loads `vocab.json` and `merges.txt` from a directory (GPT-2's file names).
    public static func load(directory: URL) throws -> BPETokenizer {
        let vocabURL = directory.appendingPathComponent("vocab.json"), mergesURL = directory.appendingPathComponent("merges.txt")
        for url in [vocabURL, mergesURL] where !FileManager.default.fileExists(atPath: url.path) {
            throw DecoderSpecError.missingFile(path: url.path, hint: "A byte-level BPE tokenizer needs vocab.json and merges.txt.")
        }
        let tokens = try parseVocabJSON(Array(try FileBytes.read(vocabURL)), path: vocabURL.path)
        let merges = try parseMerges(Array(try FileBytes.read(mergesURL)), path: mergesURL.path)
        return try BPETokenizer(tokens: tokens, merges: merges, path: directory.path)
    }

    /// vocab.json: an object token → id whose ids are exactly 0..<count.
    public static func parseVocabJSON(_ bytes: [UInt8], path: String = "vocab.json") throws -> [String] {
        guard case .object(let keys, let members) = try JSONValue.parse(bytes, path: path) else {
            throw DecoderSpecError.malformedFile(path: path, location: "byte 0", reason: "vocab.json must be an object token → id")
        }
        var tokens = [String?](repeating: nil, count: keys.count)
        for k in keys {
            guard let id = members[k]!.exactInteger, id >= 0, id < keys.count else {
                throw DecoderSpecError.malformedFile(path: path, location: "key \"\(k)\"", reason: "id must be an integer in 0..<\(keys.count), found \(members[k]!.kindName)")
            }
            if let other = tokens[id] {
                throw DecoderSpecError.malformedFile(path: path, location: "key \"\(k)\"", reason: "id \(id) is also used by \"\(other)\"")
            }
            tokens[id] = k
        }
        return tokens.map { $0! }  // ids are distinct and in range, so every slot is filled
    }

    /// merges.txt: an optional `#version` first line, then one `left right` pair per line.
    /// Errors name the line: not exactly two fields, invalid UTF-8.
    public static func parseMerges(_ bytes: [UInt8], path: String = "merges.txt") throws -> [(String, String)] {
        var merges: [(String, String)] = []
        var lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        for (i, raw) in lines.enumerated() {
            let line = raw.last == 0x0D ? raw.dropLast() : raw
            guard let text = String(validating: line, as: UTF8.self) else {
                throw DecoderSpecError.malformedFile(path: path, location: "line \(i + 1)", reason: "invalid UTF-8")
            }
            if i == 0 && text.hasPrefix("#version") { continue }
            let parts = text.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw DecoderSpecError.malformedFile(path: path, location: "line \(i + 1)", reason: "expected two space-separated symbols, found \"\(text)\"")
            }
            merges.append((String(parts[0]), String(parts[1])))
        }
        return merges
    }

    /// The BPE symbols of one pre-tokenized piece.
    public func bpe(_ piece: String) -> [String] {
        var word = ByteLevel.symbols(piece)
        while word.count > 1 {
            var best: (rank: Int, pair: PairKey)?
            for j in 0..<(word.count - 1) {
                let key = PairKey(a: word[j], b: word[j + 1])
                if let r = ranks[key], r < (best?.rank ?? Int.max) { best = (r, key) }
            }
            guard let (_, pair) = best else { break }
            var merged: [String] = []
            var j = 0
            while j < word.count {
                if j + 1 < word.count, word[j] == pair.a, word[j + 1] == pair.b {
                    merged.append(pair.a + pair.b)
                    j += 2
                } else {
                    merged.append(word[j])
                    j += 1
                }
            }
            word = merged
        }
        return word
    }

    /// Token strings of `text`.
    public func tokenize(_ text: String) -> [String] { ByteLevel.preTokenize(text).flatMap(bpe) }

    /// Ids of `text`. Always succeeds: every symbol `bpe` produces is a byte symbol or a merge's
    /// `a + b`, and `init` checked that the vocabulary holds all of them, so `ids[$0]!` cannot fail.
    public func encode(_ text: String) -> [Int] { tokenize(text).map { ids[$0]! } }

    /// Ids of many texts, memoizing each distinct pre-tokenized piece (corpus encoding is
    /// dominated by repeated words). Same result as `encode` on each text.
    public func encode(_ texts: [String]) -> [[Int]] {
        // Keyed by exact scalars: "가" and its conjoining-jamo spelling are equal Strings but
        // different bytes, and must not share ids (found while writing the fuzz harness).
        var memo: [ExactKey: [Int]] = [:]
        return texts.map { text in
            ByteLevel.preTokenize(text).flatMap { piece -> [Int] in
                if let hit = memo[ExactKey(piece)] { return hit }
                let pieceIDs = bpe(piece).map { ids[$0]! }
                memo[ExactKey(piece)] = pieceIDs
                return pieceIDs
            }
        }
    }

    public func id(of token: String) -> Int? { ids[token] }

    /// Text of `ids`; out-of-range ids throw `.idOutOfRange`.
    public func decode(_ ids: [Int]) throws -> String {
        var bytes: [UInt8] = []
        for (position, id) in ids.enumerated() {
            guard id >= 0, id < tokens.count else { throw DecoderSpecError.idOutOfRange(id: id, position: position, vocabularySize: tokens.count) }
            for u in tokens[id].unicodeScalars {
                if let b = ByteLevel.scalarToByte[u] { bytes.append(b) } else { bytes.append(contentsOf: Array(String(u).utf8)) }
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// vocab.json text (keys in id order).
    public var vocabJSON: String {
        JSONValue.object(keys: tokens, members: Dictionary(uniqueKeysWithValues: tokens.enumerated().map { ($1, JSONValue.number(String($0))) })).serialized
    }

    /// merges.txt text with GPT-2's `#version: 0.2` header.
    public var mergesText: String { "#version: 0.2\n" + merges.map { "\($0.0) \($0.1)\n" }.joined() }

    /// Writes vocab.json and merges.txt into `directory` (atomically, as one `AtomicFile.group`).
    public func write(to directory: URL) throws {
        try AtomicFile.group {
            try AtomicFile.write(vocabJSON, to: directory.appendingPathComponent("vocab.json"))
            try AtomicFile.write(mergesText, to: directory.appendingPathComponent("merges.txt"))
        }
    }
}

/// Trains a byte-level BPE on a corpus (e.g. both sides of a parallel corpus, for a joint
/// vocabulary): pre-tokenize with GPT-2's regex, count pieces, start from the 256 byte symbols,
/// then repeatedly merge the most frequent adjacent pair (counts weighted by piece frequency).
/// Ties go to the pair whose (left, right) symbols are smallest in Unicode-scalar order, so
/// training is deterministic. Stops after `merges` merges or when no pair occurs
/// `minFrequency` times. The vocabulary is `specialTokens` (ids 0…), the 256 byte symbols in
/// byte order, then one token per merge in merge order. See docs/io.md.
public enum BPETrainer {
    public static func train(corpus: [String], merges maxMerges: Int, minFrequency: Int = 2, specialTokens: [String] = []) throws -> BPETokenizer {
        guard maxMerges >= 0 else { throw DecoderSpecError.invalidArgument(what: "merges", reason: "must be ≥ 0, got \(maxMerges)") }
        guard minFrequency >= 1 else { throw DecoderSpecError.invalidArgument(what: "minFrequency", reason: "must be ≥ 1, got \(minFrequency)") }
        // Symbols are interned as Ints; words are symbol arrays with a frequency.
        var symbolNames: [String] = ByteLevel.byteToScalar.map { String($0) }  // symbol b = byte b
        var symbolKey: [[UInt32]] = symbolNames.map { $0.unicodeScalars.map(\.value) }
        var symbolIndex: [String: Int] = [:]
        for (i, s) in symbolNames.enumerated() { symbolIndex[s] = i }
        var pieceCounts: [String: Int] = [:]
        for line in corpus { for p in ByteLevel.preTokenize(line) { pieceCounts[p, default: 0] += 1 } }
        let sortedPieces = pieceCounts.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        var words: [[Int]] = sortedPieces.map { p in p.utf8.map { Int($0) } }  // byte b is symbol b
        let freq: [Int] = sortedPieces.map { pieceCounts[$0]! }

        struct Pair: Hashable { let a: Int; let b: Int }
        var pairCounts: [Pair: Int] = [:]
        var occurrences: [Pair: Set<Int>] = [:]
        for (w, word) in words.enumerated() where word.count > 1 {
            for j in 0..<(word.count - 1) {
                let p = Pair(a: word[j], b: word[j + 1])
                pairCounts[p, default: 0] += freq[w]
                occurrences[p, default: []].insert(w)
            }
        }
        var merges: [(String, String)] = []
        while merges.count < maxMerges {
            var best: (pair: Pair, count: Int)?
            for (p, c) in pairCounts where c >= minFrequency {
                if let b = best {
                    if c < b.count { continue }
                    if c == b.count {
                        // Compare (left, right) lexicographically: left first, then right.
                        let less = symbolKey[p.a] != symbolKey[b.pair.a]
                            ? symbolKey[p.a].lexicographicallyPrecedes(symbolKey[b.pair.a])
                            : symbolKey[p.b].lexicographicallyPrecedes(symbolKey[b.pair.b])
                        if !less { continue }
                    }
                }
                best = (p, c)
            }
            guard let (pair, _) = best else { break }
            let name = symbolNames[pair.a] + symbolNames[pair.b]
            let newSymbol: Int
            if let existing = symbolIndex[name] {
                newSymbol = existing  // the same string reached by another merge order
            } else {
                newSymbol = symbolNames.count
                symbolNames.append(name)
                symbolKey.append(name.unicodeScalars.map(\.value))
                symbolIndex[name] = newSymbol
            }
            merges.append((symbolNames[pair.a], symbolNames[pair.b]))
            for w in occurrences[pair] ?? [] {
                let old = words[w]
                guard old.count > 1 else { continue }
                for j in 0..<(old.count - 1) {
                    let p = Pair(a: old[j], b: old[j + 1])
                    pairCounts[p, default: 0] -= freq[w]
                    if pairCounts[p] == 0 { pairCounts[p] = nil }
                }
                var merged: [Int] = []
                var j = 0
                while j < old.count {
                    if j + 1 < old.count, old[j] == pair.a, old[j + 1] == pair.b {
                        merged.append(newSymbol)
                        j += 2
                    } else {
                        merged.append(old[j])
                        j += 1
                    }
                }
                words[w] = merged
                if merged.count > 1 {
                    for k in 0..<(merged.count - 1) {
                        let p = Pair(a: merged[k], b: merged[k + 1])
                        pairCounts[p, default: 0] += freq[w]
                        occurrences[p, default: []].insert(w)
                    }
                }
            }
            occurrences[pair] = nil
        }
        var vocabulary = specialTokens + ByteLevel.byteToScalar.map { String($0) }
        var seen = Set(vocabulary)
        guard seen.count == vocabulary.count else {
            throw DecoderSpecError.invalidArgument(what: "specialTokens \(specialTokens)", reason: "must be distinct and differ from the 256 byte symbols")
        }
        for (a, b) in merges where !seen.contains(a + b) {
            vocabulary.append(a + b)
            seen.insert(a + b)
        }
        return try BPETokenizer(tokens: vocabulary, merges: merges)
    }
}
