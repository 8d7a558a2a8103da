import Foundation
import TensorCore

/// One entity chunk: tokens `start..<end` of a sentence, of type `type` ("PER", "LOC" …).
public struct EntityChunk: Hashable, Sendable, CustomStringConvertible {
    public var type: String
    public var start: Int
    public var end: Int
    public init(type: String, start: Int, end: Int) {
        self.type = type
        self.start = start
        self.end = end
    }
    public var description: String { "\(type)[\(start)..<\(end)]" }
}

/// Scores of one entity type.
public struct EntityTypeScore: Equatable, Sendable {
    public var type: String
    /// Gold chunks of this type (the "support").
    public var support: Int
    /// Predicted chunks of this type (conlleval prints this number at the end of its type lines).
    public var predicted: Int
    /// Predicted chunks that match a gold chunk exactly (same start, end and type).
    public var correct: Int
    public init(type: String, support: Int, predicted: Int, correct: Int) {
        self.type = type
        self.support = support
        self.predicted = predicted
        self.correct = correct
    }
    public var precision: Double { predicted == 0 ? 0 : Double(correct) / Double(predicted) }
    public var recall: Double { support == 0 ? 0 : Double(correct) / Double(support) }
    /// F1 = 2PR/(P+R), defined as 0 when P + R = 0 (never NaN).
    public var f1: Double { precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall) }
}

/// Entity-level scores with conlleval semantics, plus token accuracy (a different, labelled number).
public struct NERReport: Equatable, Sendable {
    /// Tokens scored (sentence boundaries are not tokens).
    public var tokenCount: Int
    /// Tokens whose predicted tag equals the gold tag, `O` included. NOT an entity metric.
    public var correctTags: Int
    /// Micro-averaged counts over all types.
    public var overall: EntityTypeScore
    /// Per type, sorted by type name.
    public var perType: [EntityTypeScore]

    /// Entity-level precision, recall, F1 (micro average over all types), in 0…1.
    public var precision: Double { overall.precision }
    public var recall: Double { overall.recall }
    public var f1: Double { overall.f1 }
    /// Token accuracy including `O`, in 0…1 (0 for no tokens).
    public var tokenAccuracy: Double { tokenCount == 0 ? 0 : Double(correctTags) / Double(tokenCount) }

    /// The report exactly as conlleval.pl prints it (its last column per type is the number of
    /// *predicted* chunks, and its "accuracy" is token accuracy including O).
    public var conllevalText: String {
        var out = "processed \(tokenCount) tokens with \(overall.support) phrases; found: \(overall.predicted) phrases; correct: \(overall.correct).\n"
        if tokenCount > 0 {
            out += String(format: "accuracy: %6.2f%%; precision: %6.2f%%; recall: %6.2f%%; FB1: %6.2f\n",
                          100 * tokenAccuracy, 100 * precision, 100 * recall, 100 * f1)
        }
        for t in perType {
            out += padLeft(t.type, 17) + String(format: ": precision: %6.2f%%; recall: %6.2f%%; FB1: %6.2f  %d\n",
                                                100 * t.precision, 100 * t.recall, 100 * t.f1, t.predicted)
        }
        return out
    }

    /// The per-type table with support (gold count), and token accuracy on its own labelled line.
    public var table: String {
        var out = padRight("type", 8) + ["precision", "recall", "F1", "support", "predicted"].map { " " + padLeft($0, 9) }.joined() + "\n"
        for t in perType + [overall] {
            out += padRight(t.type == "" ? "overall" : t.type, 8)
                + String(format: " %9.4f %9.4f %9.4f %9d %9d\n", t.precision, t.recall, t.f1, t.support, t.predicted)
        }
        out += String(format: "token accuracy (all tags incl. O; not an entity score): %.4f (%d/%d)\n", tokenAccuracy, correctTags, tokenCount)
        return out
    }
}

/// conlleval.pl's chunk rules and scoring, transcribed (docs/metrics.md).
///
/// A chunk ends before the current tag when the previous tag was B or I and the current is B or
/// O, or the previous was inside a chunk of a different type. A chunk starts at a B tag, at an I
/// tag after O, and at any non-O tag whose type differs from the previous tag's type — so a stray
/// `I-X` after `O` or after another type starts a chunk (IOB1 and IOB2 both read correctly).
/// A predicted chunk is correct when gold and predicted chunks start together, end together and
/// have the same type. Sentence boundaries end every chunk.
public enum Conlleval {
    /// (prefix, type) as conlleval splits a tag: `^([^-]*)-(.*)$`, else (tag, "").
    static func split(_ tag: String) -> (String, String) {
        guard let dash = tag.firstIndex(of: "-") else { return (tag, "") }
        return (String(tag[..<dash]), String(tag[tag.index(after: dash)...]))
    }

    /// conlleval's endOfChunk (B/I/O subset plus the type rule; E and [ ] are not accepted here).
    static func endOfChunk(_ prevTag: String, _ tag: String, _ prevType: String, _ type: String) -> Bool {
        var end = false
        if prevTag == "B" && tag == "B" { end = true }
        if prevTag == "B" && tag == "O" { end = true }
        if prevTag == "I" && tag == "B" { end = true }
        if prevTag == "I" && tag == "O" { end = true }
        if prevTag != "O" && prevTag != "." && prevType != type { end = true }
        return end
    }

    /// conlleval's startOfChunk (same subset).
    static func startOfChunk(_ prevTag: String, _ tag: String, _ prevType: String, _ type: String) -> Bool {
        var start = false
        if prevTag == "B" && tag == "B" { start = true }
        if prevTag == "I" && tag == "B" { start = true }
        if prevTag == "O" && tag == "B" { start = true }
        if prevTag == "O" && tag == "I" { start = true }
        if tag != "O" && tag != "." && prevType != type { start = true }
        return start
    }

    /// Throws unless every tag is `O`, `B-X` or `I-X` with a non-empty X.
    static func validate(_ tags: [String], _ what: String, sentence: Int) throws {
        for (i, t) in tags.enumerated() {
            let (p, type) = split(t)
            let ok = (t == "O") || ((p == "B" || p == "I") && !type.isEmpty)
            guard ok else {
                throw DecoderSpecError.invalidArgument(what: "\(what) tag \"\(t)\" in sentence \(sentence) at position \(i)", reason: "expected O, B-TYPE or I-TYPE")
            }
        }
    }

    /// The chunks of one sentence's tags, by conlleval's start/end rules.
    public static func chunks(_ tags: [String]) -> [EntityChunk] {
        var out: [EntityChunk] = []
        var prev = ("O", "")
        var open: (type: String, start: Int)?
        for (i, t) in (tags + ["O"]).enumerated() {  // a trailing O closes the last chunk
            let cur = split(t)
            if let o = open, endOfChunk(prev.0, cur.0, prev.1, cur.1) {
                out.append(EntityChunk(type: o.type, start: o.start, end: i))
                open = nil
            }
            if i < tags.count, startOfChunk(prev.0, cur.0, prev.1, cur.1) { open = (cur.1, i) }
            prev = cur
        }
        return out
    }

    /// Scores sentences of gold and predicted tags. Throws on differing lengths or tags that are
    /// not `O`/`B-X`/`I-X`, naming the sentence and position.
    ///
    /// This is conlleval.pl's main loop, transcribed: it walks the tokens keeping `inCorrect`
    /// ("gold and predicted chunks started together with the same type and have not diverged").
    public static func evaluate(gold: [[String]], predicted: [[String]]) throws -> NERReport {
        guard gold.count == predicted.count else {
            throw DecoderSpecError.shapeMismatch(operation: "Conlleval.evaluate", expected: "\(gold.count) predicted sentences (one per gold sentence)", actual: "\(predicted.count)")
        }
        var tokenCounter = 0, correctTags = 0
        var foundCorrect: [String: Int] = [:], foundGuessed: [String: Int] = [:], correctChunk: [String: Int] = [:]
        var inCorrect = false
        var lastCorrect = "O", lastCorrectType = "", lastGuessed = "O", lastGuessedType = ""

        func step(_ correct: String, _ correctType: String, _ guessed: String, _ guessedType: String, isToken: Bool) {
            if inCorrect {
                let endC = endOfChunk(lastCorrect, correct, lastCorrectType, correctType)
                let endG = endOfChunk(lastGuessed, guessed, lastGuessedType, guessedType)
                if endC && endG && lastGuessedType == lastCorrectType {
                    inCorrect = false
                    correctChunk[lastCorrectType, default: 0] += 1
                } else if endC != endG || guessedType != correctType {
                    inCorrect = false
                }
            }
            let startC = startOfChunk(lastCorrect, correct, lastCorrectType, correctType)
            let startG = startOfChunk(lastGuessed, guessed, lastGuessedType, guessedType)
            if startC && startG && guessedType == correctType { inCorrect = true }
            if startC { foundCorrect[correctType, default: 0] += 1 }
            if startG { foundGuessed[guessedType, default: 0] += 1 }
            if isToken {
                if correct == guessed && guessedType == correctType { correctTags += 1 }
                tokenCounter += 1
            }
            lastGuessed = guessed; lastCorrect = correct
            lastGuessedType = guessedType; lastCorrectType = correctType
        }

        for (s, (g, p)) in zip(gold, predicted).enumerated() {
            guard g.count == p.count else {
                throw DecoderSpecError.shapeMismatch(operation: "Conlleval.evaluate sentence \(s)", expected: "\(g.count) predicted tags", actual: "\(p.count)")
            }
            try validate(g, "gold", sentence: s)
            try validate(p, "predicted", sentence: s)
            for i in g.indices {
                let (c, ct) = split(g[i]), (q, qt) = split(p[i])
                step(c, ct, q, qt, isToken: true)
            }
            step("O", "", "O", "", isToken: false)  // the sentence boundary: conlleval's "-X- O O"
        }
        if inCorrect { correctChunk[lastCorrectType, default: 0] += 1 }

        let types = Set(foundCorrect.keys).union(foundGuessed.keys).sorted()
        let perType = types.map {
            EntityTypeScore(type: $0, support: foundCorrect[$0] ?? 0, predicted: foundGuessed[$0] ?? 0, correct: correctChunk[$0] ?? 0)
        }
        let overall = EntityTypeScore(
            type: "", support: foundCorrect.values.reduce(0, +), predicted: foundGuessed.values.reduce(0, +),
            correct: correctChunk.values.reduce(0, +))
        return NERReport(tokenCount: tokenCounter, correctTags: correctTags, overall: overall, perType: perType)
    }
}

/// The number the source documents reported as "F1": a token-level micro average over all tags,
/// `O` included. Kept, clearly labelled, to show why it is not entity F1 (docs/sources.md,
/// docs/metrics.md): on CoNLL-2003 ~83% of tokens are `O`, so predicting `O` everywhere already
/// scores ≈ 0.83 here while entity F1 is 0.
public enum TokenLevelScores {
    /// Micro-averaged token F1 over all tag classes including `O`. With every token getting exactly
    /// one gold and one predicted tag, micro P = micro R = token accuracy, so this equals accuracy.
    public static func microF1IncludingO(gold: [[String]], predicted: [[String]]) -> Double {
        var correct = 0, total = 0
        for (g, p) in zip(gold, predicted) {
            for (a, b) in zip(g, p) {
                total += 1
                if a == b { correct += 1 }
            }
        }
        return total == 0 ? 0 : Double(correct) / Double(total)
    }
}

func padLeft(_ s: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - s.count)) + s }
func padRight(_ s: String, _ width: Int) -> String { s + String(repeating: " ", count: max(0, width - s.count)) }
