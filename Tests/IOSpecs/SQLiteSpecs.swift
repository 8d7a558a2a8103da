import DecoderSpec
import Foundation
import SpecSupport
import Testing

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
