import BugZoo
import DecoderSpec
import Foundation
import SpecSupport
import Testing

/// The bug zoo (docs/bug-zoo.md): the reusable checks of Tests/SpecSupport/Checks run
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

    @Test("Every bug has a unique id, a citation, a quoted mistake, at least one variant, and a section in docs/bug-zoo.md, whose table is current")
    func catalogueIsDocumented() throws {
        let ids = BugCatalogue.all.map(\.id)
        #expect(Set(ids).count == ids.count)
        #expect(ids == Array(1...ids.count))
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/bug-zoo.md")
        let text = try String(contentsOf: docs, encoding: .utf8)
        let table = ZooEvaluation.table(ZooEvaluation.evaluateAll())
        #expect(text.contains(table), "docs/bug-zoo.md's table differs from what `make zoo` prints now; paste the new one:\n\(table)")
        for bug in BugCatalogue.all {
            #expect(!bug.citation.isEmpty && !bug.mistake.isEmpty && !bug.variants.isEmpty, "#\(bug.id)")
            #expect(text.contains("### \(bug.id). "), "docs/bug-zoo.md has no section \"### \(bug.id). …\"")
            let source = bug.citation.components(separatedBy: " (").first ?? bug.citation
            #expect(text.contains(source), "docs/bug-zoo.md does not cite \(source) for #\(bug.id)")
        }
    }

    @Test("The checks' tolerances admit every kernel variant of the real code (naive and optimized), not only the one the zoo wraps",
          arguments: KernelPath.allCases)
    func everyBackendPasses(path: KernelPath) {
        let activation: (Activation.Function, [Float]) -> [Float] = { f, x in
            var y = x
            y.withUnsafeMutableBufferPointer { p in Activation.apply(f, path, p.baseAddress!, count: p.count) }
            return y
        }
        let gelu = LayerChecks.geluMatchesErf(activation), geluTanh = LayerChecks.geluTanhMatchesTanh(activation)
        #expect(gelu.passed, "\(path): \(gelu)")
        #expect(geluTanh.passed, "\(path): \(geluTanh)")
        let layerNorm = LayerChecks.layerNormMatchesGSL({ x, g, b, e in try LayerNorm(gamma: g, beta: b, epsilon: e)(x, path: path) },
                                                        rows: 5, dimension: 33, seed: 63)
        #expect(layerNorm.passed, "\(path): \(layerNorm)")
        let attention = AttentionOracleChecks.matchesGSLReference(
            { q, k, v, m in try scaledDotProductAttention(q: q, k: k, v: v, mask: m, path: path) },
            q: Inputs.matrix(rows: 9, cols: 16, seed: 64), k: Inputs.matrix(rows: 17, cols: 16, seed: 65),
            v: Inputs.matrix(rows: 17, cols: 8, seed: 66), mask: .causal(queryOffset: 8), context: "backend \(path)")
        #expect(attention.passed, "\(attention)")
        var model = try? DecoderChecks.tinyModel()
        model?.path = path
        if let model {
            let cache = DecoderChecks.cacheEqualsRecompute(BugCatalogue.correctCachedDecoder, model: model, prompt: [3, 1, 4], continuation: [1, 5, 9])
            #expect(cache.passed, "\(path): \(cache)")
        } else {
            Issue.record("tiny model could not be built")
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
