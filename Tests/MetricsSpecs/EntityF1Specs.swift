import DecoderSpec
import Foundation
import GSLOracle
import SpecSupport
import Testing

// The reusable check lives in SpecSupport (MetricChecks.entityF1IgnoresO): the bug zoo runs the
// same check against its variants.
func checkF1IgnoresO(_ f1: ([[String]], [[String]]) throws -> Double) -> Verdict { MetricChecks.entityF1IgnoresO(f1) }

func entityF1(_ gold: [[String]], _ predicted: [[String]]) throws -> Double {
    try Conlleval.evaluate(gold: gold, predicted: predicted).f1
}

@Suite("Metrics: entity-level F1 (conlleval semantics)")
struct EntityF1Specs {
    @Test("F1 does not count O: the real metric passes; the source documents' token-level-with-O number fails")
    func fOfO() {
        let real = checkF1IgnoresO(entityF1)
        #expect(real.passed, "\(real)")
        let tokenLevel = checkF1IgnoresO { g, p in TokenLevelScores.microF1IncludingO(gold: g, predicted: p) }
        #expect(!tokenLevel.passed, "the token-level-with-O variant must fail the check")
    }

    @Test("a stray I- after O starts a chunk (conlleval), so IOB1-style predictions score like IOB2")
    func strayI() throws {
        let r = try Conlleval.evaluate(gold: [["B-PER", "I-PER", "O", "B-LOC"]], predicted: [["I-PER", "I-PER", "O", "I-LOC"]])
        #expect(r.overall == EntityTypeScore(type: "", support: 2, predicted: 2, correct: 2))
        #expect(r.f1 == 1)
        // Token accuracy is a different number: only positions 1 and 2 have identical tags.
        #expect(r.tokenAccuracy == 0.5)
        // An I- of another type inside a chunk starts a new chunk and breaks both.
        let split = try Conlleval.evaluate(gold: [["B-PER", "I-PER"]], predicted: [["B-PER", "I-LOC"]])
        #expect(split.overall == EntityTypeScore(type: "", support: 1, predicted: 2, correct: 0))
        #expect(split.f1 == 0)
    }

    @Test("an empty prediction gives P = R = F1 = 0, never NaN; an empty corpus too")
    func emptyPrediction() throws {
        let r = try Conlleval.evaluate(gold: [["B-ORG", "I-ORG", "O"]], predicted: [["O", "O", "O"]])
        #expect(r.precision == 0 && r.recall == 0 && r.f1 == 0)
        #expect(!r.f1.isNaN)
        let empty = try Conlleval.evaluate(gold: [], predicted: [])
        #expect(empty.f1 == 0 && empty.tokenAccuracy == 0 && empty.tokenCount == 0)
        #expect(empty.conllevalText == "processed 0 tokens with 0 phrases; found: 0 phrases; correct: 0.\n")
    }

    @Test("boundaries must match exactly; IOB1 adjacent same-type chunks are two chunks")
    func boundaries() throws {
        let short = try Conlleval.evaluate(gold: [["B-ORG", "I-ORG", "I-ORG"]], predicted: [["B-ORG", "I-ORG", "O"]])
        #expect(short.overall == EntityTypeScore(type: "", support: 1, predicted: 1, correct: 0))
        let adjacent = try Conlleval.evaluate(gold: [["I-PER", "B-PER"]], predicted: [["I-PER", "I-PER"]])
        #expect(adjacent.overall == EntityTypeScore(type: "", support: 2, predicted: 1, correct: 0))
        #expect(Conlleval.chunks(["I-PER", "B-PER", "O", "I-LOC", "I-LOC"]) == [
            EntityChunk(type: "PER", start: 0, end: 1), EntityChunk(type: "PER", start: 1, end: 2), EntityChunk(type: "LOC", start: 3, end: 5),
        ])
        // A chunk never crosses a sentence boundary.
        let across = try Conlleval.evaluate(gold: [["B-PER"], ["I-PER"]], predicted: [["B-PER"], ["I-PER"]])
        #expect(across.overall == EntityTypeScore(type: "", support: 2, predicted: 2, correct: 2))
    }

    @Test("per-type table and conlleval's exact output on a hand-worked two-sentence case")
    func table() throws {
        let gold = [["B-PER", "I-PER", "O", "B-LOC", "O"], ["B-ORG", "O", "B-MISC", "I-MISC"]]
        let pred = [["B-PER", "I-PER", "O", "B-ORG", "O"], ["B-ORG", "O", "B-MISC", "O"]]
        let r = try Conlleval.evaluate(gold: gold, predicted: pred)
        // By hand: gold PER, LOC, ORG, MISC; predicted PER, ORG, ORG, MISC; correct PER and the second-sentence ORG.
        #expect(r.perType == [
            EntityTypeScore(type: "LOC", support: 1, predicted: 0, correct: 0),
            EntityTypeScore(type: "MISC", support: 1, predicted: 1, correct: 0),
            EntityTypeScore(type: "ORG", support: 1, predicted: 2, correct: 1),
            EntityTypeScore(type: "PER", support: 1, predicted: 1, correct: 1),
        ])
        #expect(r.precision == 0.5 && r.recall == 0.5 && r.f1 == 0.5)
        #expect(r.correctTags == 7 && r.tokenCount == 9)
        // conlleval.pl's printf formats: "%6.2f%%" fields, types right-aligned in 17 columns,
        // and the predicted-chunk count (not the support) after FB1.
        #expect(r.conllevalText == """
        processed 9 tokens with 4 phrases; found: 4 phrases; correct: 2.
        accuracy:  77.78%; precision:  50.00%; recall:  50.00%; FB1:  50.00
                      LOC: precision:   0.00%; recall:   0.00%; FB1:   0.00  0
                     MISC: precision:   0.00%; recall:   0.00%; FB1:   0.00  1
                      ORG: precision:  50.00%; recall: 100.00%; FB1:  66.67  2
                      PER: precision: 100.00%; recall: 100.00%; FB1: 100.00  1

        """)
        #expect(r.table.contains("token accuracy (all tags incl. O; not an entity score): 0.7778 (7/9)"))
        #expect(r.table.contains("ORG         0.5000    1.0000    0.6667         1         2"))
    }

    @Test("bad input: differing lengths and non-BIO tags are typed errors naming the sentence and position")
    func badInput() {
        #expect(throws: DecoderSpecError.self) { try Conlleval.evaluate(gold: [["O"]], predicted: []) }
        #expect(throws: DecoderSpecError.self) { try Conlleval.evaluate(gold: [["O", "O"]], predicted: [["O"]]) }
        do {
            _ = try Conlleval.evaluate(gold: [["O"], ["O", "B-"]], predicted: [["O"], ["O", "O"]])
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("sentence 1 at position 1"))
        }
    }

    @Test("invariants on 300 random sentences (seed 2024): conlleval's counts equal chunk-set sizes; IOB1↔IOB2 conversion keeps chunks")
    func randomInvariants() throws {
        let seed: UInt = 2024
        let rng = GSLRandom(seed: seed)
        let tagSet = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-MISC", "B-ORG"]
        var gold: [[String]] = [], pred: [[String]] = []
        var goldChunks = 0, predChunks = 0, common = 0
        for _ in 0..<300 {
            let n = 1 + rng.int(below: 12)
            let g = (0..<n).map { _ in tagSet[rng.int(below: tagSet.count)] }
            // Predictions: gold with ~30% of tags replaced, so matches and near-misses both occur.
            let p = g.map { rng.uniform() < 0.3 ? tagSet[rng.int(below: tagSet.count)] : $0 }
            gold.append(g); pred.append(p)
            let gc = Set(Conlleval.chunks(g)), pc = Set(Conlleval.chunks(p))
            goldChunks += gc.count; predChunks += pc.count; common += gc.intersection(pc).count
            for scheme in TagScheme.allCases {
                #expect(Conlleval.chunks(try NERTags.convert(g, to: scheme)) == Conlleval.chunks(g), "seed \(seed): \(g) → \(scheme)")
            }
        }
        let r = try Conlleval.evaluate(gold: gold, predicted: pred)
        #expect(r.overall == EntityTypeScore(type: "", support: goldChunks, predicted: predChunks, correct: common), "seed \(seed)")
        #expect(common > 0 && common < predChunks, "seed \(seed): the random case should contain both hits and misses")
    }

    @Test("byte-identical report to the PyPI conlleval port of conlleval.pl on 1,000 random sentences (optional, seed 99)",
          .enabled(if: (try? runPythonSnippet("import conlleval")) != nil, "python3 package conlleval not installed: run scripts/spec-venv, then PATH=.venv-spec/bin:$PATH swift test (make test does both); hand-worked specs still run"))
    func conllevalPort() throws {
        let rng = GSLRandom(seed: 99)
        let tagSet = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-MISC", "B-ORG", "I-ORG"]
        var text = ""
        var gold: [[String]] = [], pred: [[String]] = []
        for _ in 0..<1000 {
            let g = (0..<(1 + rng.int(below: 15))).map { _ in tagSet[rng.int(below: tagSet.count)] }
            let p = g.map { rng.uniform() < 0.3 ? tagSet[rng.int(below: tagSet.count)] : $0 }
            for i in g.indices { text += "w\(i) \(g[i]) \(p[i])\n" }
            text += "\n"
            gold.append(g); pred.append(p)
        }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("conlleval-\(UUID().uuidString).txt")
        try text.write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        let theirs = try runPythonSnippet("import runpy, sys; sys.argv = ['conlleval', '-f', 'conlleval', '\(url.path)']; runpy.run_module('conlleval', run_name='__main__')")
        let ours = try Conlleval.evaluate(gold: gold, predicted: pred).conllevalText
        #expect(ours == theirs, "seed 99")
    }
}
