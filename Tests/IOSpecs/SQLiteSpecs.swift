import DecoderSpec
import Foundation
import Testing

/// Writes a minimal SQLite 3 database by hand (format spec §1.3, §1.6, §2.1): 512-byte pages,
/// page 1 = header + `sqlite_master` leaf, one leaf page per table. Small rows only (no overflow).
enum SQLiteFixture {
    static let pageSize = 512

    static func varint(_ v: Int) -> [UInt8] {
        precondition(v >= 0 && v < 1 << 28)
        var groups: [UInt8] = [UInt8(v & 0x7F)]
        var x = v >> 7
        while x > 0 { groups.insert(UInt8(x & 0x7F) | 0x80, at: 0); x >>= 7 }
        return groups
    }

    /// A record: serial types then values (integers as 1/2/4-byte big-endian, text as UTF-8).
    static func record(_ values: [SQLiteValue]) -> [UInt8] {
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
    static func leafPage(_ rows: [[SQLiteValue]], headerOffset: Int) -> [UInt8] {
        var page = [UInt8](repeating: 0, count: pageSize)
        var contentStart = pageSize
        var pointers: [Int] = []
        for (i, row) in rows.enumerated() {
            let payload = record(row)
            let cell = varint(payload.count) + varint(i + 1) + payload
            contentStart -= cell.count
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

    /// A database with the given tables (name, CREATE statement, rows), each on its own page.
    static func database(_ tables: [(name: String, sql: String, rows: [[SQLiteValue]])]) -> [UInt8] {
        let master = tables.enumerated().map { i, t -> [SQLiteValue] in
            [.text("table"), .text(t.name), .text(t.name), .integer(Int64(i + 2)), .text(t.sql)]
        }
        var page1 = leafPage(master, headerOffset: 100)
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
        return page1 + tables.flatMap { leafPage($0.rows, headerOffset: 0) }
    }

    static let bibleSQL = "CREATE TABLE bible (id INTEGER NOT NULL, bbName TEXT NOT NULL, bNumber INTEGER NOT NULL, cNumber INTEGER NOT NULL, vNumber INTEGER NOT NULL, vText TEXT NOT NULL, PRIMARY KEY (bbName, bNumber, cNumber, vNumber))"

    /// Two versions; verse 1:1:3 only in "4"; 1:1:2 empty in "l"; 40:1:1 in both; another version "k".
    static func bible() -> [UInt8] {
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

@Suite("IO: SQLite reader and the Bible parallel corpus")
struct SQLiteSpecs {
    func write(_ bytes: [UInt8], _ dir: URL, _ name: String = "bible.db") throws -> URL {
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url
    }

    @Test("a hand-built database: sqlite_master, typed values, rows in rowid order")
    func handBuilt() throws {
        let db = try SQLiteDatabase(data: Data(SQLiteFixture.bible()))
        #expect(db.pageSize == 512 && db.pageCount == 2)
        #expect(try db.rootPage(ofTable: "bible") == 2)
        let rows = try db.rows(ofTable: "bible")
        #expect(rows.count == 8)
        #expect(rows[1] == [.integer(1), .text("4"), .integer(1), .integer(1), .integer(1), .text("In the beginning God created the heavens and the earth.")])
        #expect(rows[0][0] == .integer(40001) && rows[0][5] == .text("Généalogie de Jésus-Christ."))
        expectMalformed(["no table named \"verses\"", "tables: bible"]) { _ = try db.rootPage(ofTable: "verses") }
    }

    @Test("Bible pairs: aligned by book/chapter/verse, whitespace trimmed, empty or one-sided verses dropped, canonical order")
    func parallel() throws {
        let dir = try makeTempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = try write(SQLiteFixture.bible(), dir)
        let pairs = try BibleCorpus.parallel(database: url, source: "4", target: "l")
        #expect(pairs == [
            ParallelVerse(book: 1, chapter: 1, verse: 1, source: "In the beginning God created the heavens and the earth.", target: "Au commencement, Dieu créa les cieux et la terre."),
            ParallelVerse(book: 40, chapter: 1, verse: 1, source: "The book of the genealogy of Jesus Christ.", target: "Généalogie de Jésus-Christ."),
        ])
        do {
            _ = try BibleCorpus.parallel(database: url, source: "4", target: "x")
            Issue.record("expected an error for an unknown version")
        } catch {
            #expect("\(error)".contains("versions: 4 k l"))
        }
        let split = try BibleCorpus.split(pairs, validBooks: [], testBooks: [40])
        #expect(split.train.map(\.book) == [1] && split.test.map(\.book) == [40] && split.valid.isEmpty)
        #expect(try BibleCorpus.split(pairs, validBooks: [], testBooks: [], maxCharacters: 45).train.map(\.book) == [40])
        #expect(throws: DecoderSpecError.self) { try BibleCorpus.split(pairs, validBooks: [1], testBooks: [1]) }
        #expect(throws: DecoderSpecError.self) { try BibleCorpus.parallel(database: dir.appendingPathComponent("missing.db")) }
    }

    @Test("malformed databases: bad magic, truncated, cyclic B-tree, cell outside its page — typed errors naming the page")
    func malformed() throws {
        let good = SQLiteFixture.bible()
        expectMalformed(["byte 0", "bad magic"]) { _ = try SQLiteDatabase(data: Data("SQLite format 2\0".utf8 + [UInt8](repeating: 0, count: 600))) }
        expectMalformed(["page 2", "outside the file"]) { _ = try SQLiteDatabase(data: Data(good.prefix(512))).rows(ofTable: "bible") }
        // Page 2 turned into an interior page whose children are itself: a cycle.
        var cyclic = good
        cyclic[512] = 0x05; cyclic[512 + 3] = 0; cyclic[512 + 4] = 0
        cyclic[512 + 8] = 0; cyclic[512 + 9] = 0; cyclic[512 + 10] = 0; cyclic[512 + 11] = 2
        expectMalformed(["page 2", "cycle"]) { _ = try SQLiteDatabase(data: Data(cyclic)).rows(ofTable: "bible") }
        var badCell = good
        badCell[512 + 8] = 0xFF; badCell[512 + 9] = 0xF0   // first cell pointer → 65520
        expectMalformed(["page 2", "outside the page"]) { _ = try SQLiteDatabase(data: Data(badCell)).rows(ofTable: "bible") }
        var wrongType = good
        wrongType[512] = 0x0A  // an index leaf where a table is expected
        expectMalformed(["page 2", "not a table B-tree page"]) { _ = try SQLiteDatabase(data: Data(wrongType)).rows(ofTable: "bible") }
    }

    @Test("Python's sqlite3 reads the hand-built fixture, and we read a multi-page database with overflow pages that Python wrote",
          .enabled(if: (try? runPython("import sqlite3")) != nil, Comment(rawValue: RealData.venvHint)))
    func pythonCrossCheck() throws {
        let dir = try makeTempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let fixture = try write(SQLiteFixture.bible(), dir)
        let count = try runPython("import sqlite3; print(sqlite3.connect('\(fixture.path)').execute('select count(*), sum(id) from bible').fetchone())")
        #expect(count.trimmingCharacters(in: .whitespacesAndNewlines) == "(8, 80040)")
        // 3,000 rows on 1 KB pages (interior pages), every 500th text 5,000 bytes long (overflow chains).
        let big = dir.appendingPathComponent("big.db")
        try runPython("""
        import sqlite3
        c = sqlite3.connect('\(big.path)'); c.execute('pragma page_size=1024')
        c.execute('create table t (id INTEGER NOT NULL, name TEXT, x REAL, n INTEGER, PRIMARY KEY (name, id))')
        c.executemany('insert into t values (?,?,?,?)', [(i, ('é%d' % i) * (1000 if i % 500 == 0 else 1), i / 8, -i * 1000003) for i in range(3000)])
        c.commit()
        """)
        let rows = try SQLiteDatabase.open(big).rows(ofTable: "t")
        #expect(rows.count == 3000)
        for i in [0, 1, 499, 500, 1777, 2999] {
            let name = String(repeating: "é\(i)", count: i % 500 == 0 ? 1000 : 1)
            #expect(rows[i].count == 4, "row \(i)")
            #expect(rows[i][0] == .integer(Int64(i)) && rows[i][3] == .integer(Int64(-i * 1000003)), "row \(i)")
            #expect(rows[i][1] == .text(name), "row \(i): text of \(name.utf8.count) bytes")
            // Whole-number REALs (0.0, 62.5 is not) are stored as integers by SQLite: compare as Double.
            #expect(rows[i][2].double == Double(i) / 8, "row \(i)")
        }
    }

    @Test("real bible.db: 31,102 World English Bible ↔ Louis Segond verse pairs",
          .enabled(if: FileManager.default.fileExists(atPath: BibleCorpus.defaultDatabase(root: RealData.root).path), Comment(rawValue: RealData.fetchHint)))
    func real() throws {
        let pairs = try BibleCorpus.parallel(database: BibleCorpus.defaultDatabase(root: RealData.root))
        #expect(pairs.count == 31102)
        #expect(pairs.first == ParallelVerse(book: 1, chapter: 1, verse: 1, source: "In the beginning God created the heavens and the earth.", target: "Au commencement, Dieu créa les cieux et la terre."))
        #expect(pairs.last?.book == 66)
    }
}
