// libFuzzer target over every IO reader; the first byte selects the reader. Built by scripts/fuzz-io.
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let selector = bytes.first ?? 0
    let body = Array(bytes.dropFirst())
    switch selector % 7 {
    case 0:
        if let f = try? SafeTensorsFile(bytes: body) {
            for n in f.names { _ = try? f.floats(n); _ = try? f.integers(n); _ = try? f.matrix(n) }
        }
    case 1: _ = try? CoNLLCorpus(bytes: body)
    case 2: _ = try? CoNLLPredictions(bytes: body)
    case 3:
        _ = try? BERTConfig(json: body); _ = try? GPT2Config(json: body)
    case 4:
        let s = String(decoding: body, as: UTF8.self)
        if let t = try? WordPieceTokenizer(vocabulary: WordPieceVocabulary(tokens: ["[UNK]", "[CLS]", "[SEP]", "a", "##a", "ab", "##b", "中"])) {
            _ = t.encode(s); _ = t.encode(words: s.split(separator: " ").map(String.init))
        }
        _ = try? WordPieceVocabulary(contentsOf: body)
    case 6:
        if let db = try? SQLiteDatabase(data: Data(body)) { _ = try? db.rows(ofTable: "bible") }
    default:
        let s = String(decoding: body, as: UTF8.self)
        let pieces = ByteLevel.preTokenize(s)
        precondition(pieces.joined() == s, "preTokenize lost text")
        _ = try? BPETokenizer.parseMerges(body)
        _ = try? BPETokenizer.parseVocabJSON(body)
    }
    return 0
}
