// The classification reports of Doc 000 and Doc 002 (§5.4), transcribed in Sources/Errata/ResultsTables.swift,
// checked with Metrics' ClassificationReport: its averages recomputed from each table's own rows, and
// the identity micro P = micro R = weighted R of single-label tagging shown on the real CoNLL-2003 test set.
// Printed values are rounded to 3 decimals: each is within 0.0005 of its true value, so a mean of them is
// too, and a recomputed average that differs from the printed one by more than 2 × 0.0005 is a contradiction.
import DecoderSpec
import Foundation
import SpecSupport
import Testing

@Suite("Errata: the documents' results tables contradict themselves (Doc 000: copied rows, supports, macro; Doc 002: micro vs weighted recall)")
struct ResultsTableSpecs {
    let slack = 2 * ResultsTables.printedRounding

    func agrees(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= slack }

    @Test("Doc 000: B-PER = B-LOC and I-PER = I-LOC row for row; supports sum to 45,587, not the printed 46,435")
    func doc000CopiedRows() {
        let rows = Dictionary(uniqueKeysWithValues: ResultsTables.doc000.rows.map { ($0.label, $0) })
        for (per, loc) in [("B-PER", "B-LOC"), ("I-PER", "I-LOC")] {
            var copy = rows[per]!
            copy.label = loc
            #expect(copy == rows[loc]!)
        }
        let total = ResultsTables.doc000.rows.reduce(0) { $0 + $1.support }
        #expect(total == 45_587 && ResultsTables.doc000.macro.support == 46_435)
        #expect(ResultsTables.doc002.rows.reduce(0) { $0 + $1.support } == 46_435)
    }

    @Test("Doc 000: macro averages of its own rows are P 0.909, R 0.872, F1 0.890 — it prints 0.923, 0.897, 0.909 (Doc 002's, whose rows do give them)")
    func doc000Macro() {
        let computed = ClassificationReport.macro(ResultsTables.doc000.rows), printed = ResultsTables.doc000.macro
        #expect(agrees(computed.precision, 0.909) && agrees(computed.recall, 0.872) && agrees(computed.f1, 0.890), "\(computed)")
        #expect(!agrees(computed.precision, printed.precision) && !agrees(computed.recall, printed.recall) && !agrees(computed.f1, printed.f1))
        // The method is sound: Doc 002's rows reproduce Doc 002's printed macro line.
        let d2 = ClassificationReport.macro(ResultsTables.doc002.rows), p2 = ResultsTables.doc002.macro
        #expect(agrees(d2.precision, p2.precision) && agrees(d2.recall, p2.recall) && agrees(d2.f1, p2.f1), "\(d2)")
    }

    @Test("Doc 002: the support-weighted recall of its rows is 0.981, yet it prints micro and weighted recall 0.973 — for single-label tagging both equal Σ correct / N")
    func doc002MicroVersusWeighted() {
        let weighted = ClassificationReport.weighted(ResultsTables.doc002.rows)
        #expect(agrees(weighted.recall, 0.981), "\(weighted)")
        #expect(!agrees(weighted.recall, ResultsTables.doc002.micro.recall))
        #expect(!agrees(weighted.recall, ResultsTables.doc002.weighted.recall))
        #expect(!agrees(weighted.precision, ResultsTables.doc002.weighted.precision))
    }

    @Test("On the real CoNLL-2003 test set: the suite's report gives micro P = micro R = token accuracy = weighted R; Doc 002's supports are the test set's tag counts, Doc 000's PER supports are not",
          .enabled(if: ErrataFixture.hasCoNLL, "\(ErrataFixture.fetchHint)"))
    func identitiesOnRealData() throws {
        let gold = try CoNLLCorpus.read(contentsOf: ErrataFixture.conllTest).sentences.map(\.tags)
        var i = 0
        let predicted = gold.map { s in s.map { tag -> String in
            i += 1
            return i % 5 == 0 ? "O" : i % 11 == 0 ? "B-PER" : tag          // a deterministic imperfect tagger
        } }
        let report = try ClassificationReport(gold: gold, predicted: predicted)
        #expect(report.micro.precision == report.micro.recall)
        #expect(report.micro.recall == TokenLevelScores.microF1IncludingO(gold: gold, predicted: predicted))
        #expect(abs(report.weighted.recall - report.micro.recall) <= 1e-12, "Σ s_c·(correct_c/s_c)/N = Σ correct_c/N, up to Double rounding")
        #expect(report.micro.support == 46_435)
        let supports = Dictionary(uniqueKeysWithValues: report.rows.map { ($0.label, $0.support) })
        for row in ResultsTables.doc002.rows { #expect(supports[row.label] == row.support, "doc 002 \(row.label)") }
        let doc000Wrong = ResultsTables.doc000.rows.filter { supports[$0.label] != $0.support }.map(\.label)
        #expect(doc000Wrong == ["B-PER", "I-PER"])
    }
}
