import DecoderSpec
import Foundation

/// Writes a minimal SQLite 3 database by hand (format spec §1.3, §1.6, §2.1): page 1 = header +
/// `sqlite_master` leaf, one leaf page per table, 512-byte pages unless asked for larger ones (up
/// to 32 768, for the bigger Bible fixture). Small rows only (no overflow pages).
public enum SQLiteFixture {
    public static let pageSize = 512

    public static func varint(_ v: Int) -> [UInt8] {
        precondition(v >= 0 && v < 1 << 28)
        var groups: [UInt8] = [UInt8(v & 0x7F)]
        var x = v >> 7
        while x > 0 { groups.insert(UInt8(x & 0x7F) | 0x80, at: 0); x >>= 7 }
        return groups
    }

    /// A record: serial types then values (integers as 1/2/4-byte big-endian, text as UTF-8).
    public static func record(_ values: [SQLiteValue]) -> [UInt8] {
        var types: [UInt8] = [], body: [UInt8] = []
        for v in values {
            switch v {
            case .null: types += varint(0)
            case .integer(let i) where i >= -128 && i < 128: types += varint(1); body += [UInt8(bitPattern: Int8(i))]
            case .integer(let i) where i >= -32768 && i < 32768: types += varint(2); body += [UInt8(truncatingIfNeeded: i >> 8), UInt8(truncatingIfNeeded: i)]
            case .integer(let i): types += varint(4); body += (0..<4).map { UInt8(truncatingIfNeeded: i >> (8 * (3 - $0))) }
            case .text(let s): types += varint(13 + 2 * s.utf8.count); body += Array(s.utf8)
            case .real, .blob: fatalError("not used by the fixtures")
            }
        }
        var headerSize = types.count + 1
        if varint(headerSize).count > 1 { headerSize += 1 }
        return varint(headerSize) + types + body
    }

    /// One table-leaf page holding `rows` (rowids 1…), header at `headerOffset` (100 on page 1).
    public static func leafPage(_ rows: [[SQLiteValue]], headerOffset: Int, pageSize: Int = pageSize) -> [UInt8] {
        var page = [UInt8](repeating: 0, count: pageSize)
        var contentStart = pageSize
        var pointers: [Int] = []
        for (i, row) in rows.enumerated() {
            let payload = record(row)
            let cell = varint(payload.count) + varint(i + 1) + payload
            contentStart -= cell.count
            precondition(contentStart > 0, "fixture rows do not fit one page")
            page.replaceSubrange(contentStart..<(contentStart + cell.count), with: cell)
            pointers.append(contentStart)
        }
        precondition(headerOffset + 8 + 2 * rows.count <= contentStart, "fixture rows do not fit one page")
        page[headerOffset] = 0x0D
        page[headerOffset + 3] = UInt8(rows.count >> 8); page[headerOffset + 4] = UInt8(rows.count & 0xFF)
        page[headerOffset + 5] = UInt8(contentStart >> 8 & 0xFF); page[headerOffset + 6] = UInt8(contentStart & 0xFF)
        for (i, p) in pointers.enumerated() {
            page[headerOffset + 8 + 2 * i] = UInt8(p >> 8); page[headerOffset + 9 + 2 * i] = UInt8(p & 0xFF)
        }
        return page
    }

    /// A database with the given tables (name, CREATE statement, rows), each on its own page of
    /// `pageSize` bytes (a power of two, 512 … 32 768).
    public static func database(_ tables: [(name: String, sql: String, rows: [[SQLiteValue]])], pageSize: Int = pageSize) -> [UInt8] {
        precondition(pageSize >= 512 && pageSize <= 32768 && pageSize & (pageSize - 1) == 0)
        let master = tables.enumerated().map { i, t -> [SQLiteValue] in
            [.text("table"), .text(t.name), .text(t.name), .integer(Int64(i + 2)), .text(t.sql)]
        }
        var page1 = leafPage(master, headerOffset: 100, pageSize: pageSize)
        var header = [UInt8](repeating: 0, count: 100)
        header.replaceSubrange(0..<16, with: Array("SQLite format 3\0".utf8))
        header[16] = UInt8(pageSize >> 8); header[17] = UInt8(pageSize & 0xFF)
        header[18] = 1; header[19] = 1; header[21] = 64; header[22] = 32; header[23] = 32
        let pages = 1 + tables.count
        header[27] = 1                        // file change counter
        header[31] = UInt8(pages)             // database size in pages
        header[43] = 1                        // schema cookie
        header[47] = 4                        // schema format
        header[59] = 1                        // UTF-8
        header[95] = 1                        // version-valid-for = change counter
        header[96] = 0x00; header[97] = 0x2E; header[98] = 0x7B; header[99] = 0x49  // 3045001
        page1.replaceSubrange(0..<100, with: header)
        return page1 + tables.flatMap { leafPage($0.rows, headerOffset: 0, pageSize: pageSize) }
    }

    public static let bibleSQL = "CREATE TABLE bible (id INTEGER NOT NULL, bbName TEXT NOT NULL, bNumber INTEGER NOT NULL, cNumber INTEGER NOT NULL, vNumber INTEGER NOT NULL, vText TEXT NOT NULL, PRIMARY KEY (bbName, bNumber, cNumber, vNumber))"

    /// Two versions; verse 1:1:3 only in "4"; 1:1:2 empty in "l"; 40:1:1 in both; another version "k".
    public static func bible() -> [UInt8] {
        func row(_ id: Int, _ v: String, _ b: Int, _ c: Int, _ n: Int, _ t: String) -> [SQLiteValue] {
            [.integer(Int64(id)), .text(v), .integer(Int64(b)), .integer(Int64(c)), .integer(Int64(n)), .text(t)]
        }
        return database([(name: "bible", sql: bibleSQL, rows: [
            row(40001, "l", 40, 1, 1, "Généalogie de Jésus-Christ."),
            row(1, "4", 1, 1, 1, "In the beginning God created the heavens and the earth."),
            row(2, "4", 1, 1, 2, "Now the earth was formless."),
            row(3, "4", 1, 1, 3, "God said, \"Let there be light.\""),
            row(10, "l", 1, 1, 1, " Au commencement, Dieu créa les cieux et la terre. "),
            row(11, "l", 1, 1, 2, "   "),
            row(12, "k", 1, 1, 1, "Im Anfang"),
            row(40000, "4", 40, 1, 1, "The book of the genealogy of Jesus Christ."),
        ])])
    }
}

/// A tiny parallel Bible for training runs in specs (`train lm`, `train translate`, `finetune
/// classify`): versions "4" (English) and "l" (its word-for-word French), seeded sentences from a
/// 54-word vocabulary in the training book (Genesis, several chapters), the test books (Ruth, Jonah,
/// 1 John) and the valid books (Philemon, Jude) of `TranslationSplit` — about 12 KB, on one 32 KB
/// page. Genesis is the only training book, so its training split holds one genre (law);
/// `extraTrainingBooks` adds books outside every held-out set (e.g. Psalms 19, wisdom, and Matthew
/// 40, gospels) for a classifier that must see several classes.
public enum BibleFixture {
    static let words: [(en: String, fr: String)] = [
        ("the", "le"), ("light", "lumière"), ("earth", "terre"), ("water", "eau"), ("God", "Dieu"), ("said", "dit"),
        ("and", "et"), ("saw", "vit"), ("was", "était"), ("good", "bon"), ("day", "jour"), ("night", "nuit"),
        ("called", "appela"), ("heaven", "ciel"), ("made", "fit"), ("all", "tout"), ("there", "là"), ("evening", "soir"),
        ("morning", "matin"), ("first", "premier"), ("over", "sur"), ("great", "grand"), ("sea", "mer"), ("land", "pays"),
        ("brought", "apporta"), ("forth", "dehors"), ("grass", "herbe"), ("seed", "semence"), ("fruit", "fruit"), ("tree", "arbre"),
        ("kind", "espèce"), ("signs", "signes"), ("seasons", "saisons"), ("years", "années"), ("stars", "étoiles"), ("rule", "gouverner"),
        ("living", "vivant"), ("creature", "créature"), ("moves", "remue"), ("birds", "oiseaux"), ("fly", "volent"), ("above", "dessus"),
        ("blessed", "bénit"), ("multiply", "multipliez"), ("fill", "remplissez"), ("cattle", "bétail"), ("image", "image"), ("likeness", "ressemblance"),
    ]

    /// The verses of one book: `chapters` × `verses` sentences of 4–9 words, seeded.
    static func book(_ book: Int, chapters: Int, verses: Int, rng: inout SeededRNG) -> [(book: Int, chapter: Int, verse: Int, en: String, fr: String)] {
        var out: [(Int, Int, Int, String, String)] = []
        for c in 1...chapters {
            for v in 1...verses {
                let n = 4 + Int(rng.next() % 6)
                let picks = (0..<n).map { _ in words[Int(rng.next() % UInt64(words.count))] }
                out.append((book, c, v, picks.map(\.en).joined(separator: " ") + ".", picks.map(\.fr).joined(separator: " ") + "."))
            }
        }
        return out
    }

    /// Writes `bible.db` into `directory` and returns its URL. Each of `extraTrainingBooks` gets 2
    /// chapters × 8 verses, drawn after every default book's, so the default fixture is the same
    /// with or without them; a book of `TranslationSplit`'s or `BibleGenre`'s held-out sets (or
    /// already present) is refused.
    public static func write(to directory: URL, seed: UInt64 = 1, extraTrainingBooks: [Int] = []) throws -> URL {
        let present: Set<Int> = [1, 8, 32, 62, 57, 65]
        let heldOut = TranslationSplit.validBooks.union(TranslationSplit.testBooks).union(BibleGenre.validBooks).union(BibleGenre.testBooks)
        for b in extraTrainingBooks where !(1...66).contains(b) || present.contains(b) || heldOut.contains(b) || extraTrainingBooks.filter({ $0 == b }).count > 1 {
            throw DecoderSpecError.invalidArgument(what: "extra training book \(b)", reason: "must be a book 1 … 66 outside the fixture's books and every held-out set")
        }
        var rng = SeededRNG(seed: seed)
        var verses = book(1, chapters: 4, verses: 14, rng: &rng)
        for b in [8, 32, 62, 57, 65] { verses += book(b, chapters: 1, verses: 4, rng: &rng) }
        for b in extraTrainingBooks { verses += book(b, chapters: 2, verses: 8, rng: &rng) }
        var rows: [[SQLiteValue]] = []
        for (i, v) in verses.enumerated() {
            for (version, text) in [("4", v.en), ("l", v.fr)] {
                rows.append([.integer(Int64(2 * i + (version == "4" ? 1 : 2))), .text(version), .integer(Int64(v.book)),
                             .integer(Int64(v.chapter)), .integer(Int64(v.verse)), .text(text)])
            }
        }
        let url = directory.appendingPathComponent("bible.db")
        try Data(SQLiteFixture.database([(name: "bible", sql: SQLiteFixture.bibleSQL, rows: rows)], pageSize: 32768)).write(to: url)
        return url
    }
}
