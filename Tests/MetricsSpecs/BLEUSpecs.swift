import DecoderSpec
import Foundation
import GSLOracle
import SpecSupport
import Testing

/// The brevity penalty must be computed from corpus totals, BP = exp(1 − r/c) only when c < r
/// with c, r summed over all sentences. In the fixture, sentence 1 is short (2 vs 3 tokens) and
/// sentence 2 long (5 vs 4): corpus c = r = 7, so BP = 1 and
/// BLEU = 100 · (6/7 · 4/5 · 2/3 · 1/2)^(1/4) = 100 · (48/210)^(1/4) ≈ 69.1442.
/// A per-sentence brevity penalty (BP₁ = e^(−1/2)) gives a lower number and must fail.
/// `bleu` maps (hypotheses, references) to BLEU in 0…100.
// The reusable check lives in SpecSupport (MetricChecks.corpusLevelBrevityPenalty), shared with the bug zoo.
func checkCorpusLevelBrevityPenalty(_ bleu: ([String], [String]) throws -> Double) -> Verdict {
    MetricChecks.corpusLevelBrevityPenalty(bleu)
}

func corpusBLEU(_ h: [String], _ r: [String]) throws -> Double { try BLEU.corpus(hypotheses: h, references: [r]).score }

/// A wrong variant: the brevity penalty applied per sentence (averaged), precisions still pooled.
func perSentenceBrevityPenaltyBLEU(_ h: [String], _ r: [String]) throws -> Double {
    let pooled = try BLEU.corpus(hypotheses: h, references: [r])
    var bps: [Double] = []
    for (hyp, ref) in zip(h, r) {
        bps.append(try BLEU.corpus(hypotheses: [hyp], references: [[ref]]).brevityPenalty)
    }
    let meanBP = bps.reduce(0, +) / Double(bps.count)
    return pooled.score / pooled.brevityPenalty * meanBP
}

@Suite("Metrics: corpus BLEU (sacreBLEU semantics)")
struct BLEUSpecs {
    @Test("the brevity penalty is corpus-level: the real BLEU passes, a per-sentence BP variant fails")
    func corpusBP() {
        let real = checkCorpusLevelBrevityPenalty(corpusBLEU)
        #expect(real.passed, "\(real)")
        #expect(!checkCorpusLevelBrevityPenalty(perSentenceBrevityPenaltyBLEU).passed)
    }

    @Test("perfect match = 100; zero overlap = 0; empty hypothesis = 0")
    func extremes() throws {
        let perfect = try BLEU.corpus(hypotheses: ["the cat sat on the mat", "hello there"], references: [["the cat sat on the mat", "hello there"]])
        // exp(mean log 100) in Double: 100 up to a few ulps.
        #expect(abs(perfect.score - 100) < 1e-12 && perfect.brevityPenalty == 1)
        #expect(try BLEU.corpus(hypotheses: ["a b c d"], references: [["w x y z"]]).score == 0)
        let empty = try BLEU.corpus(hypotheses: [""], references: [["the cat"]])
        #expect(empty.score == 0 && empty.brevityPenalty == 0 && !empty.score.isNaN)
    }

    @Test("a brevity-penalty case: all n-grams match, 5 vs 6 tokens → 100·e^(−0.2)")
    func brevity() throws {
        let s = try BLEU.corpus(hypotheses: ["the cat sat on the"], references: [["the cat sat on the mat"]])
        #expect(s.precisions == [100, 100, 100, 100])
        #expect(compare([s.score], [100 * exp(-0.2)], .relative(1e-12)).passed, "\(s.score)")
        #expect(s.formatted == "BLEU = 81.87 100.0/100.0/100.0/100.0 (BP = 0.819 ratio = 0.833 hyp_len = 5 ref_len = 6)")
    }

    @Test("exp smoothing: the first order with no match gets p = 1/(2·total): 100·(3/4·2/3·1/2·1/2)^(1/4)")
    func expSmoothing() throws {
        let s = try BLEU.corpus(hypotheses: ["the cat sat down"], references: [["the cat sat up"]])
        #expect(s.correct == [3, 2, 1, 0] && s.total == [4, 3, 2, 1])
        #expect(compare([s.score], [100 * pow(0.125, 0.25)], .relative(1e-12)).passed, "\(s.score)")
        // A hypothesis shorter than 4 tokens has no 4-grams at all: sacreBLEU scores it 0.
        #expect(try BLEU.corpus(hypotheses: ["the"], references: [["the cat"]]).score == 0)
    }

    @Test("13a tokenization, hand-checked against the mteval-v13a rules")
    func tokenizer() {
        let cases: [(String, [String])] = [
            ("Hello, world!", ["Hello", ",", "world", "!"]),
            ("3.14 and 1,000", ["3.14", "and", "1,000"]),
            ("x.y", ["x", ".", "y"]),
            ("5-3 well-known", ["5", "-", "3", "well-known"]),
            ("&quot;hi&quot; &amp;", ["\"", "hi", "\"", "&"]),
            ("it's (a) 1.5.", ["it's", "(", "a", ")", "1.5", "."]),
            ("a..b,,c", ["a", ".", ".", "b", ",", ",", "c"]),
            ("U.S.A. $5,000.00-10", ["U", ".", "S", ".", "A", ".", "$", "5,000.00", "-", "10"]),
            ("naïve café—ok", ["naïve", "café—ok"]),
            ("tab\there  ", ["tab", "here"]),
        ]
        for (text, expected) in cases { #expect(Tokenizer13a.tokenize(text) == expected, "\(text)") }
    }

    @Test("multiple references: clipping to the best reference and the closest reference length")
    func multiReference() throws {
        // hyp "the cat" (2 tokens); refs of lengths 3 and 2 → r = 2 (closest), BP = 1.
        // unigrams 2/2, bigrams 1/1, no 3-/4-grams in a 2-token hypothesis → 0 (no smoothing for total 0).
        let s = try BLEU.corpus(hypotheses: ["the cat"], references: [["a cat sat"], ["the cat"]])
        #expect(s.referenceLength == 2 && s.correct == [2, 1, 0, 0] && s.total == [2, 1, 0, 0] && s.score == 0)
        #expect(s.signature.hasPrefix("nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:"))
        #expect(throws: DecoderSpecError.self) { try BLEU.corpus(hypotheses: ["a", "b"], references: [["a"]]) }
        #expect(throws: DecoderSpecError.self) { try BLEU.corpus(hypotheses: ["a"], references: []) }
    }

    @Test("cross-check with the installed sacrebleu on a mixed corpus (optional)",
          .enabled(if: SacreBLEU.available, "python3 sacrebleu not installed: run scripts/spec-venv, then PATH=.venv-spec/bin:$PATH swift test (make test does both); hand-computed specs still run"))
    func sacrebleuCrossCheck() throws {
        let hyps = ["The quick brown fox jumps over the lazy dog.", "It costs $5,000.00 — really?", "U.S. troops left at 5-3.",
                    "&quot;Hi,&quot; she said.", "Short.", "A completely different sentence here"]
        let refs = ["The fast brown fox jumped over the lazy dog.", "It costs $5,000.00, really?", "US troops left at 5-3 .",
                    "\"Hi,\" she said to him.", "Short answer.", "Nothing in common"]
        let ours = try BLEU.corpus(hypotheses: hyps, references: [refs])
        let py = try runPythonBLEU(hyps, refs)
        // Same Double arithmetic, possibly summed in another order: 1e-9 relative.
        #expect(compare([ours.score], [py], .relative(1e-9)).passed, "ours \(ours.formatted) vs sacrebleu \(py)")
    }
}

extension BLEUSpecs {
    @Test("13a tokens, BLEU and chrF equal sacrebleu's on 300 random sentence pairs (optional, seed 4242)",
          .enabled(if: SacreBLEU.available, "python3 sacrebleu not installed: run scripts/spec-venv, then PATH=.venv-spec/bin:$PATH swift test (make test does both); hand-computed specs still run"))
    func randomCrossCheck() throws {
        let rng = GSLRandom(seed: 4242)
        let pieces = ["the", "cat", "sat", "on", "mat", "3.14", "1,000", "5-3", "U.S.", "it's", "&quot;", "&amp;", "(", ")", ".", ",",
                      "!", "?", "$", "—", "é", "中文", "well-known", "-", "--", " ", "  ", "\t", "x.y", "a,b", "<skipped>"]
        func sentence() -> String { (0..<(rng.int(below: 14))).map { _ in pieces[rng.int(below: pieces.count)] }.joined(separator: rng.uniform() < 0.5 ? " " : "") }
        let hyps = (0..<300).map { _ in sentence() }
        let refs = hyps.map { h in rng.uniform() < 0.3 ? sentence() : h + (rng.uniform() < 0.5 ? " the end." : "") }
        func literal(_ xs: [String]) -> String {
            "[" + xs.map { "\"" + $0.unicodeScalars.map { String(format: "\\U%08x", $0.value) }.joined() + "\"" }.joined(separator: ",") + "]"
        }
        let out = try runPythonSnippet("""
        import sacrebleu, json
        from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a
        h = \(literal(hyps)); r = \(literal(refs)); t = Tokenizer13a()
        print(json.dumps([[t(x.rstrip()).split() for x in h], sacrebleu.corpus_bleu(h, [r]).score, sacrebleu.corpus_chrf(h, [r]).score]))
        """)
        guard case .array(let parts) = try JSONValue.parse(Array(out.utf8), path: "python"), parts.count == 3,
              case .array(let tokenLists) = parts[0], let bleu = parts[1].double, let chrf = parts[2].double else {
            Issue.record("unexpected python output: \(out)")
            return
        }
        for (i, list) in tokenLists.enumerated() {
            guard case .array(let items) = list else { continue }
            let expected = items.compactMap { v -> String? in if case .string(let s) = v { return s } else { return nil } }
            #expect(Tokenizer13a.tokenize(rstrip(hyps[i])) == expected, "seed 4242, sentence \(i): \(hyps[i].debugDescription)")
        }
        // Same Double arithmetic, possibly in another order: 1e-9 relative.
        #expect(compare([try BLEU.corpus(hypotheses: hyps, references: [refs]).score], [bleu], .relative(1e-9)).passed, "BLEU, seed 4242")
        #expect(compare([try ChrF.corpus(hypotheses: hyps, references: [refs]).score], [chrf], .relative(1e-9)).passed, "chrF, seed 4242")
    }
}

/// Python's rstrip for the cross-check (the library's is internal).
private func rstrip(_ s: String) -> String {
    var scalars = Array(s.unicodeScalars)
    while let last = scalars.last, last.properties.isWhitespace || (0x1C...0x1F).contains(last.value) { scalars.removeLast() }
    var v = String.UnicodeScalarView()
    v.append(contentsOf: scalars)
    return String(v)
}

enum SacreBLEU {
    static let available: Bool = (try? runPythonSnippet("import sacrebleu")) != nil
}

func runPythonBLEU(_ hyps: [String], _ refs: [String]) throws -> Double {
    func literal(_ xs: [String]) -> String {
        "[" + xs.map { "\"" + $0.unicodeScalars.map { String(format: "\\U%08x", $0.value) }.joined() + "\"" }.joined(separator: ",") + "]"
    }
    let out = try runPythonSnippet("import sacrebleu\nprint(repr(sacrebleu.corpus_bleu(\(literal(hyps)), [\(literal(refs))]).score))")
    return Double(out.trimmingCharacters(in: .whitespacesAndNewlines))!
}

@discardableResult
func runPythonSnippet(_ script: String) throws -> String {
    // The script goes through a temporary file: a long `-c` argument exceeds the kernel's limit.
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("decoderspec-\(UUID().uuidString).py")
    try script.write(to: file, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(at: file) }
    let r = try Subprocess.run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", file.path])
    guard r.status == 0, !r.signalled else { throw DecoderSpecError.invalidArgument(what: "python3 script", reason: "exit \(r.status)") }
    return r.stdout
}
