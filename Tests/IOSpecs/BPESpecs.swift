import DecoderSpec
import Foundation
import GSLOracle
import Testing

@Suite("IO: byte-level BPE (GPT-2 style) and a BPE trainer")
struct BPESpecs {
    /// A hand-written tokenizer: the 256 byte symbols, then the results of five merges.
    static func handTokenizer() throws -> BPETokenizer {
        let merges = [("h", "e"), ("t", "he"), ("Ġ", "c"), ("a", "t"), ("Ġc", "at")]
        return try BPETokenizer(tokens: ByteLevel.byteToScalar.map { String($0) } + ["he", "the", "Ġc", "at", "Ġcat"], merges: merges)
    }

    @Test("the byte map: printable bytes are themselves, the 68 others map in order to U+0100…U+0143; a bijection")
    func byteMap() {
        let m = ByteLevel.byteToScalar
        #expect(m[0x21] == "!" && m[0x7E] == "~" && m[0xA1] == "¡" && m[0xFF] == "ÿ")
        #expect(m[0x00] == "\u{100}" && m[0x0A] == "\u{10A}" && m[0x20] == "\u{120}" && m[0xAD] == "\u{143}")
        #expect(Set(m).count == 256)
        #expect((0..<256).allSatisfy { ByteLevel.scalarToByte[m[$0]] == UInt8($0) })
    }

    @Test("GPT-2 pre-tokenizer: contractions, optional leading space, whitespace runs (expected lists from Python's regex module)")
    func preTokenizer() {
        let cases: [(String, [String])] = [
            ("Hello world's  end!\n\n 123abc", ["Hello", " world", "'s", " ", " end", "!", "\n\n", " 123", "abc"]),
            ("I'll DON'T 'RE x  \t y\n", ["I", "'ll", " DON", "'", "T", " '", "RE", " x", "  \t", " y", "\n"]),
            ("中文 日本語!! ", ["中文", " 日本語", "!!", " "]),
            ("naïve 3.14 -- ok  ", ["naïve", " 3", ".", "14", " --", " ok", "  "]),
        ]
        for (text, expected) in cases { #expect(ByteLevel.preTokenize(text) == expected, "\(text.debugDescription)") }
        #expect(ByteLevel.preTokenize("") == [])
    }

    @Test("encode merges the lowest-ranked pair first, not left to right")
    func encodeByRank() throws {
        let t = try Self.handTokenizer()
        #expect(t.tokenize("the cat") == ["the", "Ġcat"])
        // "tthe": (h,e) has rank 0 → t t he; then (t,he) rank 1 → t the.
        #expect(t.tokenize("tthe") == ["t", "the"])
        // Ids: the 256 byte symbols, then he = 256, the = 257, Ġc = 258, at = 259, Ġcat = 260.
        #expect(t.encode("the cat") == [257, 260])
        // Without the leading space "cat" cannot use Ġc: c + at; the newline is its own piece, "Ċ".
        #expect(t.tokenize("a\ncat") == ["a", "Ċ", "c", "at"])
    }

    @Test("decode(encode(s)) == s for 200 random strings of ASCII, Latin-1, CJK, emoji and control characters (seed 77)")
    func roundTrip() throws {
        let t = try Self.handTokenizer()
        let rng = GSLRandom(seed: 77)
        let alphabet: [Character] = Array("the cat  sat\n\t'sHELLO0123.,!?") + ["é", "ß", "中", "文", "😀", "👩‍💻", "\u{0}", "\u{7F}", "\u{300}", "\u{FEFF}"]
        for _ in 0..<200 {
            let s = String((0..<rng.int(below: 30)).map { _ in alphabet[rng.int(below: alphabet.count)] })
            let decoded = try t.decode(t.encode(s))
            #expect(Array(decoded.utf8) == Array(s.utf8), "seed 77: \(s.debugDescription)")
        }
        #expect(throws: DecoderSpecError.self) { try t.decode([0, 999]) }
    }

    @Test("vocab.json / merges.txt: write then load round-trips; malformed files name the line or key")
    func files() throws {
        let dir = try makeTempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let t = try Self.handTokenizer()
        try t.write(to: dir)
        let loaded = try BPETokenizer.load(directory: dir)
        #expect(loaded.tokens == t.tokens && loaded.merges.map { "\($0.0) \($0.1)" } == t.merges.map { "\($0.0) \($0.1)" })
        #expect(try String(contentsOf: dir.appendingPathComponent("merges.txt"), encoding: .utf8).hasPrefix("#version: 0.2\nh e\nt he\n"))
        expectMalformed(["merges.txt", "line 3", "expected two space-separated symbols"]) {
            _ = try BPETokenizer.parseMerges(Array("#version: 0.2\nh e\nt he x\n".utf8))
        }
        expectMalformed(["line 2", "invalid UTF-8"]) { _ = try BPETokenizer.parseMerges(Array("h e\n".utf8) + [0xFF, 0x20, 0x61, 0x0A]) }
        expectMalformed(["key \"b\"", "id 0 is also used by \"a\""]) { _ = try BPETokenizer.parseVocabJSON(Array(#"{"a": 0, "b": 0}"#.utf8)) }
        expectMalformed(["key \"b\"", "0..<2"]) { _ = try BPETokenizer.parseVocabJSON(Array(#"{"a": 0, "b": 5}"#.utf8)) }
        expectMalformed(["missing the byte-level symbol"]) { _ = try BPETokenizer(tokens: ["a"], merges: []) }
        expectMalformed(["merge 1", "\"xy\""]) { _ = try BPETokenizer(tokens: ByteLevel.byteToScalar.map { String($0) }, merges: [("x", "y")]) }
        #expect(throws: DecoderSpecError.self) { try BPETokenizer.load(directory: dir.appendingPathComponent("nope")) }
    }

    @Test("trainer, hand-worked: \"ab ab ab\" merges a+b (count 3), then Ġ+ab (count 2), then stops")
    func trainHand() throws {
        let t = try BPETrainer.train(corpus: ["ab ab ab"], merges: 10)
        #expect(t.merges.map { "\($0.0) \($0.1)" } == ["a b", "Ġ ab"])
        #expect(t.tokens.count == 256 + 2 && t.tokens.suffix(2) == ["ab", "Ġab"])
        #expect(t.tokenize("ab ab") == ["ab", "Ġab"])
    }

    @Test("trainer ties go to the smallest (left, right) in scalar order; special tokens take the first ids")
    func trainTies() throws {
        // "ab cd": pairs a·b, Ġ·c, c·d each occur once. Order: 'a' (0x61) < 'c' (0x63) < 'Ġ' (0x120).
        let t = try BPETrainer.train(corpus: ["ab cd"], merges: 10, minFrequency: 1, specialTokens: ["<pad>", "<s>", "</s>"])
        #expect(t.merges.map { "\($0.0) \($0.1)" } == ["a b", "c d", "Ġ cd"])
        #expect(Array(t.tokens.prefix(3)) == ["<pad>", "<s>", "</s>"] && t.id(of: "Ġcd") == 3 + 256 + 2)
        #expect(throws: DecoderSpecError.self) { try BPETrainer.train(corpus: ["x"], merges: 1, specialTokens: ["a"]) }
        #expect(throws: DecoderSpecError.self) { try BPETrainer.train(corpus: ["x"], merges: -1) }
    }

    @Test("trainer on a small parallel fixture: joint vocabulary compresses both sides and stays lossless")
    func trainParallel() throws {
        let english = ["In the beginning God created the heavens and the earth.", "And the earth was waste and void.",
                       "And God said, Let there be light: and there was light.", "And God saw the light, that it was good."]
        let french = ["Au commencement, Dieu créa les cieux et la terre.", "La terre était informe et vide.",
                      "Dieu dit: Que la lumière soit! Et la lumière fut.", "Dieu vit que la lumière était bonne."]
        let t = try BPETrainer.train(corpus: english + french, merges: 60, minFrequency: 1)
        #expect(t.merges.count == 60)
        for s in english + french {
            let ids = t.encode(s)
            #expect(try t.decode(ids) == s)
            #expect(ids.count < s.utf8.count, "no compression for \(s)")
        }
        #expect(t.encode(english + french) == (english + french).map(t.encode))
        // Retraining is deterministic.
        #expect(try BPETrainer.train(corpus: english + french, merges: 60, minFrequency: 1).tokens == t.tokens)
    }

    @Test("pre-tokenizer agrees with Python's regex module on mixed text (optional)",
          .enabled(if: (try? runPython("import regex")) != nil, Comment(rawValue: RealData.venvHint)))
    func pythonRegex() throws {
        let texts = ["It's 2024—the year's best!!  Ready?\n\nYes:   no.", "Ünïcödé  ταχύτητα  ١٢٣ ½ x²", "tabs\t\tand\r\nCRLF 'd 've 'M"]
        for text in texts {
            let escaped = text.unicodeScalars.map { String(format: "\\U%08x", $0.value) }.joined()
            let out = try runPython("""
            import regex, json
            pat = regex.compile(r\"\"\"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+\"\"\")
            print(json.dumps(pat.findall("\(escaped)")))
            """)
            guard case .array(let items) = try JSONValue.parse(Array(out.utf8), path: "python") else { Issue.record("bad output"); continue }
            let expected = items.compactMap { v -> String? in if case .string(let s) = v { return s } else { return nil } }
            #expect(ByteLevel.preTokenize(text) == expected, "\(text.debugDescription)")
        }
    }
}
