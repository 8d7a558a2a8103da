import DecoderSpec
import Foundation
import SpecSupport
import Testing

@Suite("IO: the versions of the Bible database (train translate --list-versions)")
struct BibleVersionsSpecs {
    @Test("Each version with its row count, sorted; no book names without a bibleRef table")
    func fixture() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("versions-\(UUID().uuidString).db")
        try Data(SQLiteFixture.bible()).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        // The fixture's rows: "4" four (1:1:1–3, 40:1:1), "k" one, "l" three (one of them blank).
        #expect(try BibleCorpus.versions(database: url) == [
            BibleVersion(name: "4", verses: 4), BibleVersion(name: "k", verses: 1), BibleVersion(name: "l", verses: 3),
        ])
    }
}
