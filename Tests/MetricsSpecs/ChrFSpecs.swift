import DecoderSpec
import Foundation
import SpecSupport
import Testing

@Suite("Metrics: chrF (sacreBLEU defaults: chars 1–6, β = 2)")
struct ChrFSpecs {
    @Test("\"abc\" vs \"abd\": orders 1–3 exist; P̄ = R̄ = (2/3 + 1/2 + 0)/3 = 7/18, so chrF = 100·7/18")
    func hand() throws {
        let s = try ChrF.corpus(hypotheses: ["abc"], references: [["abd"]])
        #expect(Array(s.statistics.prefix(3)) == [[3, 3, 2], [2, 2, 1], [1, 1, 0]])
        // With P̄ = R̄ the F-beta mean equals P̄ for any β; a few Double operations: 1e-12 relative.
        #expect(compare([s.score], [100 * 7.0 / 18.0], .relative(1e-12)).passed, "\(s.score)")
        #expect(s.formatted == "chrF2 = 38.89")
    }

    @Test("perfect = 100, disjoint = 0, whitespace ignored, empty hypothesis = 0 (no NaN)")
    func extremes() throws {
        #expect(try ChrF.corpus(hypotheses: ["the cat"], references: [["the cat"]]).score == 100)
        #expect(try ChrF.corpus(hypotheses: ["the  c a t"], references: [["thecat"]]).score == 100)
        #expect(try ChrF.corpus(hypotheses: ["xyz"], references: [["abc"]]).score == 0)
        let empty = try ChrF.corpus(hypotheses: [""], references: [["abc"]])
        #expect(empty.score == 0 && !empty.score.isNaN)
        #expect(throws: DecoderSpecError.self) { try ChrF.corpus(hypotheses: ["a"], references: [["a", "b"]]) }
    }

    @Test("cross-check with the installed sacrebleu (optional)",
          .enabled(if: SacreBLEU.available, "python3 sacrebleu not installed: run scripts/spec-venv, then PATH=.venv-spec/bin:$PATH swift test (make test does both); hand-computed specs still run"))
    func crossCheck() throws {
        let hyps = ["The quick brown fox jumps over the lazy dog.", "It costs $5,000.00 — really?", "Short.", "xyz"]
        let refs = ["The fast brown fox jumped over the lazy dog.", "It costs $5,000.00, really?", "Short answer.", "abc"]
        func literal(_ xs: [String]) -> String {
            "[" + xs.map { "\"" + $0.unicodeScalars.map { String(format: "\\U%08x", $0.value) }.joined() + "\"" }.joined(separator: ",") + "]"
        }
        let py = Double(try runPythonSnippet("import sacrebleu\nprint(repr(sacrebleu.corpus_chrf(\(literal(hyps)), [\(literal(refs))]).score))")
            .trimmingCharacters(in: .whitespacesAndNewlines))!
        let ours = try ChrF.corpus(hypotheses: hyps, references: [refs]).score
        #expect(compare([ours], [py], .relative(1e-9)).passed, "ours \(ours) vs sacrebleu \(py)")
    }
}
