import BugZoo
import DecoderSpec
import Foundation
import SpecSupport
import Testing

/// The bug zoo (issue 7, docs/bug-zoo.md): the reusable checks of Tests/SpecSupport/Checks run
/// against the correct code (must pass) and every catalogued variant (must fail at least one).
@Suite("Bug zoo: every catalogued real-world bug is caught")
struct BugZooSpecs {
    @Test("The correct implementation passes every check of its concept; each variant fails at least one",
          arguments: BugCatalogue.all.map(\.id))
    func caught(id: Int) throws {
        let bug = try #require(BugCatalogue.bug(id))
        for variant in bug.variants {
            let r = ZooEvaluation.evaluate(variant)
            for failure in r.correctFailures {
                Issue.record("#\(id) \(bug.name): the CORRECT code fails \(failure.check): \(failure.verdict)")
            }
            #expect(!r.catching.isEmpty, "#\(id) \(bug.name), variant \(variant.label) survived: \(r.survivedChecks)")
        }
    }

    @Test("Mutation score: at least 18 bugs, 100% caught (prints the zoo table)")
    func mutationScore() {
        let results = ZooEvaluation.evaluateAll()
        print(ZooEvaluation.table(results))
        print(ZooEvaluation.scoreLine(results))
        #expect(results.count >= 18)
        let survivors = results.filter { !$0.caught }.map { "#\($0.bug.id) \($0.bug.name)" }
        #expect(survivors.isEmpty, "\(ZooEvaluation.scoreLine(results)); not caught: \(survivors)")
        #expect(ZooEvaluation.scoreLine(results) == "mutation score: \(results.count)/\(results.count) = 100%")
    }

    @Test("Every bug has a unique id, a citation, a quoted mistake, at least one variant, and a section in docs/bug-zoo.md")
    func catalogueIsDocumented() throws {
        let ids = BugCatalogue.all.map(\.id)
        #expect(Set(ids).count == ids.count)
        #expect(ids == Array(1...ids.count))
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/bug-zoo.md")
        let text = try String(contentsOf: docs, encoding: .utf8)
        for bug in BugCatalogue.all {
            #expect(!bug.citation.isEmpty && !bug.mistake.isEmpty && !bug.variants.isEmpty, "#\(bug.id)")
            #expect(text.contains("### \(bug.id). "), "docs/bug-zoo.md has no section \"### \(bug.id). …\"")
            let source = bug.citation.components(separatedBy: " (").first ?? bug.citation
            #expect(text.contains(source), "docs/bug-zoo.md does not cite \(source) for #\(bug.id)")
        }
    }

    @Test("The checks can fail on a direct, hand-written mistake too (not only through the catalogue)")
    func checksCanFail() {
        // A hand-made PE with every frequency 1 (the integer-exponent bug written inline).
        let flat = PositionalEncodingChecks.tableMatchesGSL({ n, d in
            var m = Matrix(rows: n, cols: d)
            for p in 0..<n { for i in 0..<(d / 2) { m[p, 2 * i] = Float(sin(Double(p))); m[p, 2 * i + 1] = Float(cos(Double(p))) } }
            return m
        }, positions: 8, dimension: 8)
        #expect(!flat.passed)
        // …and passes the formula-agnostic rotation check: that one cannot see wrong frequencies.
        #expect(PositionalEncodingChecks.rotationProperty({ n, d in
            var m = Matrix(rows: n, cols: d)
            for p in 0..<n { for i in 0..<(d / 2) { m[p, 2 * i] = Float(sin(Double(p))); m[p, 2 * i + 1] = Float(cos(Double(p))) } }
            return m
        }, positions: 8, dimension: 8).passed)
    }
}
