// A tiny, seeded NER corpus for specs and the notebook: a few dozen template sentences with
// PER/LOC/ORG/MISC entities (some of two words, some split into two WordPiece sub-tokens), and
// the WordPiece vocabulary that covers them. No download needed. See docs/finetune-ner.md.
import IO
import TensorCore
import Tokenizers
import Training

public enum NERFixture {
    static let persons = [["john"], ["mary"], ["john", "smith"], ["anna", "kowalska"]]
    static let places = [["paris"], ["berlin"], ["new", "york"], ["washington"]]
    static let organizations = [["acme"], ["globex"], ["united", "nations"]]
    static let miscellaneous = [["french"], ["german"]]
    static let templates: [[String]] = [
        ["PER", "visited", "LOC", "."],
        ["PER", "works", "for", "ORG", "in", "LOC", "."],
        ["the", "MISC", "team", "beat", "ORG", "."],
        ["ORG", "opened", "an", "office", "in", "LOC", "."],
        ["PER", "met", "PER", "in", "LOC", "."],
        ["a", "MISC", "firm", "bought", "ORG", "."],
    ]

    /// WordPiece vocabulary: specials, every word, and "wash"/"##ington", "kowal"/"##ska" so that
    /// two words split into two sub-tokens (the alignment path).
    public static let vocabulary: [String] = {
        var words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "wash", "##ington", "kowal", "##ska"]
        let entityWords: [[String]] = persons + places + organizations + miscellaneous
        let all: [String] = Array(entityWords.joined()) + Array(templates.joined())
        let skip: Set<String> = ["PER", "LOC", "ORG", "MISC", "washington", "kowalska"]
        for w in all where !skip.contains(w) && !words.contains(w) {
            words.append(w)
        }
        return words
    }()

    public static func tokenizer() throws -> WordPieceTokenizer {
        try WordPieceTokenizer(vocabulary: WordPieceVocabulary(tokens: vocabulary), lowercase: true)
    }

    /// `count` sentences (words and IOB2 tags) from the templates, entities drawn with `seed`.
    public static func sentences(count: Int, seed: UInt64) -> [(words: [String], tags: [String])] {
        var rng = SeededRNG(seed: seed)
        return (0..<count).map { i in
            var words: [String] = [], tags: [String] = []
            for slot in templates[i % templates.count] {
                let pool: [[String]]
                switch slot {
                case "PER": pool = persons
                case "LOC": pool = places
                case "ORG": pool = organizations
                case "MISC": pool = miscellaneous
                default:
                    words.append(slot)
                    tags.append("O")
                    continue
                }
                let entity = pool[Int(rng.next() % UInt64(pool.count))]
                for (k, w) in entity.enumerated() {
                    words.append(w)
                    tags.append((k == 0 ? "B-" : "I-") + slot)
                }
            }
            return (words, tags)
        }
    }
}
