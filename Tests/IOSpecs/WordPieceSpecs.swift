import DecoderSpec
import Foundation
import GSLOracle
import Testing

@Suite("IO: WordPiece (BERT uncased)")
struct WordPieceSpecs {
    /// A small vocabulary written by the test; ids are positions in this list.
    static let tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
                         "the", "quick", "brown", "fox", "jump", "##s", "over", "lazy", "dog", ".", ",", "!",
                         "un", "##aff", "##able", "cafe", "naive", "中", "国", "hello", "a", "##b", "ab", "##a", "é"]
    static func id(_ t: String) -> Int { tokens.firstIndex(of: t)! }
    static func tokenizer() throws -> WordPieceTokenizer {
        try WordPieceTokenizer(vocabulary: try WordPieceVocabulary(tokens: tokens))
    }

    @Test("a sentence: lower-cased, punctuation split off, ##s continuation, wrapped in [CLS] … [SEP]")
    func sentence() throws {
        let t = try Self.tokenizer()
        let expected = ["[CLS]", "the", "quick", "brown", "fox", "jump", "##s", "over", "the", "lazy", "dog", ".", "[SEP]"].map(Self.id)
        #expect(t.encode("The QUICK brown fox jumps over the lazy dog.") == expected)
        #expect(try t.decode(expected) == "the quick brown fox jumps over the lazy dog .")
    }

    @Test("greedy longest match first: un ##aff ##able; ab ##b (not a ##b ##b); a failing piece makes the whole word [UNK]")
    func greedy() throws {
        let t = try Self.tokenizer()
        #expect(t.tokenize("unaffable") == ["un", "##aff", "##able"])
        #expect(t.tokenize("abb") == ["ab", "##b"])
        #expect(t.tokenize("unaffablex") == ["[UNK]"])
        #expect(t.tokenize("xyz fox") == ["[UNK]", "fox"])
    }

    @Test("accents are stripped after lower-casing (NFD, drop Mn), for precomposed and decomposed input")
    func accents() throws {
        let t = try Self.tokenizer()
        #expect(t.tokenize("Café NAÏVE") == ["cafe", "naive"])
        #expect(t.tokenize("Cafe\u{301}") == ["cafe"])
        // With lower-casing off, accents stay: "é" is its own vocab entry.
        let cased = try WordPieceTokenizer(vocabulary: try WordPieceVocabulary(tokens: Self.tokens), lowercase: false)
        #expect(cased.tokenize("é") == ["é"])
        #expect(BasicTokenizer(lowercase: true, stripAccents: false).tokenize("Café") == ["café"])
    }

    @Test("CJK ideographs become single tokens; kana/Hangul are not split but lose marks like BERT uncased")
    func cjk() throws {
        let t = try Self.tokenizer()
        #expect(BasicTokenizer().tokenize("中国人") == ["中", "国", "人"])
        #expect(t.tokenize("中国人") == ["中", "国", "[UNK]"])
        // Accent stripping is NFD + drop Mn: the dakuten of が (U+3099, Mn) goes, and Hangul
        // syllables decompose into Jamo (not Mn, so kept). Expected scalars from Python's
        // unicodedata (NFD, category != "Mn"); compared as scalars, since Swift's String == is
        // canonical equivalence and would hide the decomposition.
        let kana = BasicTokenizer().tokenize("ひらがな한국")
        #expect(kana.count == 1)
        #expect(kana.first.map { $0.unicodeScalars.map(\.value) } == [0x3072, 0x3089, 0x304B, 0x306A, 0x1112, 0x1161, 0x11AB, 0x1100, 0x116E, 0x11A8])
    }

    @Test("clean-up: control and format characters dropped, any Unicode space separates, punctuation split")
    func cleanup() throws {
        let t = try Self.tokenizer()
        #expect(t.tokenize("fo\u{AD}x\u{0}") == ["fox"])           // soft hyphen (Cf) and NUL removed
        #expect(t.tokenize("the\u{3000}fox\t\ndog") == ["the", "fox", "dog"])  // ideographic space (Zs), tab, newline
        #expect(t.tokenize("hello,fox!") == ["hello", ",", "fox", "!"])
        #expect(BasicTokenizer().tokenize("a¿b—c“d”") == ["a", "¿", "b", "—", "c", "“", "d", "”"])  // Unicode P*
        #expect(BasicTokenizer().tokenize("$5^~") == ["$", "5", "^", "~"])  // ASCII symbols count as punctuation
        #expect(t.tokenize("   ") == [])
        #expect(t.encode("") == [Self.id("[CLS]"), Self.id("[SEP]")])
    }

    @Test("the ASCII fast path equals the general Unicode path on 500 random ASCII strings (seed 31)")
    func asciiFastPath() throws {
        // Appending U+FFFD (which the clean-up step deletes) forces the general path on the same text.
        let t = try Self.tokenizer()
        let rng = GSLRandom(seed: 31)
        let pieces = ["The", "FOX", "jumps", "[SEP]", "[sep]", "un", "aff", "able", " ", "  ", "\t", "\n", "\r", "\u{0B}", "\u{1F}", "\u{7F}", "\u{0}",
                      ".", ",", "!", "$", "~", "`", "{", "\\", "'", "-", "_", "0", "9", "dog.", "a", "b", "ab"]
        for _ in 0..<500 {
            let s = (0..<rng.int(below: 12)).map { _ in pieces[rng.int(below: pieces.count)] }.joined()
            #expect(t.basic.tokenize(s) == t.basic.tokenize(s + "\u{FFFD}"), "seed 31: \(s.debugDescription)")
            #expect(t.ids(s) == t.ids(s + "\u{FFFD}"), "seed 31: \(s.debugDescription)")
        }
    }

    @Test("special tokens written in the text are kept whole")
    func specials() throws {
        let t = try Self.tokenizer()
        #expect(t.tokenize("fox [SEP] dog [MASK]") == ["fox", "[SEP]", "dog", "[MASK]"])
    }

    @Test("a word of 100 scalars is split; of 101 scalars it is [UNK]")
    func maxChars() throws {
        let t = try Self.tokenizer()
        #expect(t.ids(String(repeating: "a", count: 100)) == [Self.id("a")] + Array(repeating: Self.id("##a"), count: 99))
        #expect(t.ids(String(repeating: "a", count: 101)) == [Self.id("[UNK]")])
    }

    @Test("encode(words:) maps every sub-token to its word; [CLS]/[SEP] map to nil")
    func words() throws {
        let t = try Self.tokenizer()
        let (ids, wordIndex) = t.encode(words: ["Jumps", "xyz", "dog."])
        #expect(ids == ["[CLS]", "jump", "##s", "[UNK]", "dog", ".", "[SEP]"].map(Self.id))
        #expect(wordIndex == [nil, 0, 0, 1, 2, 2, nil])
        #expect(throws: DecoderSpecError.self) { try t.decode([3, 999]) }
    }

    @Test("vocab.txt: LF, CRLF and a BOM read the same; errors carry the line number")
    func vocabFile() throws {
        let lf = try WordPieceVocabulary(contentsOf: Array("[UNK]\nfox\n##s\n".utf8))
        let crlf = try WordPieceVocabulary(contentsOf: [0xEF, 0xBB, 0xBF] + Array("[UNK]\r\nfox\r\n##s".utf8))
        #expect(lf.tokens == ["[UNK]", "fox", "##s"] && crlf.tokens == lf.tokens)
        #expect(lf.id(of: "##s") == 2 && lf.id(of: "dog") == nil)
        expectMalformed(["v.txt", "line 3", "duplicate token \"fox\" (first on line 2)"]) {
            _ = try WordPieceVocabulary(contentsOf: Array("[UNK]\nfox\nfox\n".utf8), path: "v.txt")
        }
        expectMalformed(["line 2", "invalid UTF-8"]) { _ = try WordPieceVocabulary(contentsOf: Array("[UNK]\n".utf8) + [0xC3, 0x28, 0x0A]) }
        expectMalformed(["line 2", "empty token"]) { _ = try WordPieceVocabulary(contentsOf: Array("[UNK]\n\nfox\n".utf8)) }
        expectMalformed(["no [CLS] token"]) {
            _ = try WordPieceTokenizer(vocabulary: try WordPieceVocabulary(tokens: ["[UNK]", "[SEP]", "fox"]))
        }
        #expect(throws: DecoderSpecError.self) { try WordPieceVocabulary.read(contentsOf: URL(fileURLWithPath: "/nonexistent/vocab.txt")) }
    }

    @Test("all-MiniLM-L6-v2: \"The quick brown fox jumps over the lazy dog.\" gives the reference ids",
          .enabled(if: RealData.hasMiniLM, Comment(rawValue: RealData.fetchHint)))
    func realMiniLM() throws {
        let t = try WordPieceTokenizer.load(modelDirectory: RealData.miniLM)
        #expect(t.vocabulary.count == 30522)
        #expect(t.encode("The quick brown fox jumps over the lazy dog.") == [101, 1996, 4248, 2829, 4419, 14523, 2058, 1996, 13971, 3899, 1012, 102])
        // Ids = line numbers − 1 of "cafe", ",", "naive", "中", "国", "人", "!" in vocab.txt (looked up with grep -nx).
        #expect(t.encode("Café, NAÏVE 中国人!") == [101, 7668, 1010, 15743, 1746, 1799, 1756, 999, 102])
    }
}
