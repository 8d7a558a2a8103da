// BERT's masking procedure (statistically, against its stated probabilities) and the MLM head's
// backward (against gsl_deriv_central through the whole loss). Sources/Training/MaskedLanguageModel.swift.
import DecoderSpec
import GSLOracle
import SpecSupport
import Testing

@Suite("Masked-LM: BERT's 15% / 80-10-10 masking and the MLM head's gradient")
struct MaskedLMSpecs {
    static let vocabulary = 30522, maskID = 103
    static let protected: Set<Int> = [101, 102, 0]

    /// n sequences of 64 ids: [CLS], 62 ids uniform in 999 ..< V (never protected, never [MASK]), [SEP].
    static func corpus(_ n: Int, seed: UInt) -> [[Int]] {
        let rng = GSLRandom(seed: seed)
        return (0..<n).map { _ in [101] + (0..<62).map { _ in 999 + rng.int(below: vocabulary - 999) } + [102] }
    }

    /// |observed − n·p| ≤ 5·√(n·p(1 − p)): a binomial count at 5σ (false alarm ≈ 6e-7, docs/tolerances.md).
    static func withinFiveSigma(_ observed: Int, n: Int, p: Double) -> Bool {
        abs(Double(observed) - Double(n) * p) <= 5 * (Double(n) * p * (1 - p)).squareRoot()
    }

    struct Counts { var positions = 0, selected = 0, masked = 0, kept = 0, random = 0, protectedTouched = 0, unselectedChanged = 0; var randomBins = [Int](repeating: 0, count: 20) }

    static func count(_ masking: MLMMasking, sequences: [[Int]], seed: UInt64) throws -> Counts {
        var rng = SeededRNG(seed: seed)
        var c = Counts()
        for ids in sequences {
            let (inputs, labels) = try masking.apply(ids, maskID: maskID, vocabularySize: vocabulary, protected: protected, rng: &rng)
            for t in ids.indices {
                if protected.contains(ids[t]) {
                    if labels[t] != -100 || inputs[t] != ids[t] { c.protectedTouched += 1 }
                    continue
                }
                c.positions += 1
                guard labels[t] != -100 else {
                    if inputs[t] != ids[t] { c.unselectedChanged += 1 }
                    continue
                }
                #expect(labels[t] == ids[t], "a selected position's label is its original id")
                c.selected += 1
                if inputs[t] == maskID { c.masked += 1 } else if inputs[t] == ids[t] { c.kept += 1 } else {
                    c.random += 1
                    c.randomBins[inputs[t] * 20 / vocabulary] += 1
                }
            }
        }
        return c
    }

    @Test("Selection 15%, then [MASK] 80% / random 10% / kept 10%, each a binomial within 5σ; random ids uniform over the vocabulary (χ², GSL); [CLS]/[SEP] never touched, unselected positions unchanged")
    func maskingStatistics() throws {
        let c = try Self.count(MLMMasking(), sequences: Self.corpus(2000, seed: 61), seed: 62)
        #expect(c.protectedTouched == 0 && c.unselectedChanged == 0)
        #expect(Self.withinFiveSigma(c.selected, n: c.positions, p: 0.15), "selected \(c.selected) of \(c.positions)")
        // A random draw lands on [MASK] with probability 1/V and on the original with 1/V.
        let v = Double(Self.vocabulary)
        #expect(Self.withinFiveSigma(c.masked, n: c.selected, p: 0.8 + 0.1 / v), "masked \(c.masked) of \(c.selected)")
        #expect(Self.withinFiveSigma(c.kept, n: c.selected, p: 0.1 + 0.1 / v), "kept \(c.kept) of \(c.selected)")
        #expect(Self.withinFiveSigma(c.random, n: c.selected, p: 0.1 * (1 - 2 / v)), "random \(c.random) of \(c.selected)")
        // Uniform over 0 ..< V: 20 bins of ids (bin b holds ⌈…⌉ ids), the two excluded ids ignored (2/V ≈ 7e-5).
        let binSizes = (0..<20).map { b in (0..<Self.vocabulary).filter { $0 * 20 / Self.vocabulary == b }.count }
        let chi = chiSquare(counts: c.randomBins, expected: binSizes.map { Double($0) / v })
        #expect(chi.pValue > 1e-6, "random replacements not uniform: χ² = \(chi.statistic), p = \(chi.pValue)")
    }

    @Test("The statistics can fail: masking every selected position (100/0/0) or selecting 20% is caught")
    func foilsFail() throws {
        let all = try Self.count(MLMMasking(maskFraction: 1, randomFraction: 0), sequences: Self.corpus(500, seed: 63), seed: 64)
        #expect(!Self.withinFiveSigma(all.masked, n: all.selected, p: 0.8 + 0.1 / Double(Self.vocabulary)))
        let more = try Self.count(MLMMasking(selectProbability: 0.2), sequences: Self.corpus(500, seed: 63), seed: 64)
        #expect(!Self.withinFiveSigma(more.selected, n: more.positions, p: 0.15))
    }

    @Test("Bad settings and ids are typed errors")
    func errors() {
        #expect(throws: DecoderSpecError.self) { try MLMMasking(selectProbability: 1.5) }
        #expect(throws: DecoderSpecError.self) { try MLMMasking(maskFraction: 0.8, randomFraction: 0.3) }
        var rng = SeededRNG(seed: 1)
        #expect(throws: DecoderSpecError.self) { try MLMMasking().apply([5, 40], maskID: 3, vocabularySize: 10, protected: [], rng: &rng) }
        #expect(throws: DecoderSpecError.self) { try MLMMasking().apply([5], maskID: 10, vocabularySize: 10, protected: [], rng: &rng) }
    }

    /// A tiny head (d = 6, V = 11) with weights large enough that every path carries a gradient above Float noise.
    static func tinyHead() throws -> (MaskedLMHead, EmbeddingTable, Matrix, [Int]) {
        var rng = SeededRNG(seed: 71)
        var head = try MaskedLMHead.seeded(modelWidth: 6, vocabularySize: 11, std: 0.5, epsilon: 1e-5, rng: &rng)
        head.setFlattenedParameters(head.flattenedParameters().map { $0 + rng.uniform(-0.3, 0.3) })
        let table = try EmbeddingTable(weight: Inputs.matrix(rows: 11, cols: 6, seed: 72))
        let h = Inputs.matrix(rows: 5, cols: 6, seed: 73, range: -2...2)
        return (head, table, h, [-100, 4, -100, 9, 0])
    }

    @Test("MLM head: dL/d(W_t, b_t, γ, β, b), dL/dE (tied decoder) and dL/dh against gsl_deriv_central through the loss, naive and optimized",
          arguments: [KernelPath.naive, .optimized])
    func headGradient(path: KernelPath) throws {
        let (head, table, h, labels) = try Self.tinyHead()
        let loss = try CrossEntropyLoss()
        let r = try head.lossAndGradient(h, labels: labels, embedding: table, loss: loss, path: path)
        #expect(r.count == 3)
        let nHead = head.parameterCount, nE = table.weight.storage.count
        let θ = head.flattenedParameters() + table.weight.storage + h.storage
        let analytic = r.head.flattenedParameters() + r.embedding.storage + r.hidden.storage
        let labelled = labels.indices.filter { labels[$0] != -100 }
        let δL = lossNoiseBound(logits: try head.logits(h, embedding: table, path: path), labelledRows: labelled)
        let naive = try head.lossAndGradient(h, labels: labels, embedding: table, loss: loss, path: .naive).loss
        #expect(abs(r.loss - naive) <= δL, "premise of δL: |L(\(path)) − L(naive)| = \(abs(r.loss - naive))")
        let check = LossGradientCheck().run(parameters: θ, analytic: analytic, lossNoise: δL, name: "MLM head + tied E + h, \(path)") { p in
            var m = head
            m.setFlattenedParameters(Array(p[0..<nHead]))
            let e = try! EmbeddingTable(weight: Matrix(rows: 11, cols: 6, storage: Array(p[nHead..<(nHead + nE)])))
            let x = try! Matrix(rows: 5, cols: 6, storage: Array(p[(nHead + nE)...]))
            return try! m.lossAndGradient(x, labels: labels, embedding: e, loss: loss, path: path).loss
        }
        #expect(check.verdict.passed, "\(check.verdict)")
    }

    @Test("A wrong backward fails the same check: the gradient of the head with ReLU offered for the head with GELU")
    func wrongBackwardFails() throws {
        let (head, table, h, labels) = try Self.tinyHead()
        let loss = try CrossEntropyLoss()
        var relu = head
        relu.activation = .relu   // the analytic gradient of another function than the one differentiated below
        let r = try relu.lossAndGradient(h, labels: labels, embedding: table, loss: loss, path: .naive)
        let nHead = head.parameterCount
        let θ = head.flattenedParameters()
        let δL = lossNoiseBound(logits: try head.logits(h, embedding: table, path: .naive), labelledRows: [1, 3, 4])
        let check = LossGradientCheck().run(parameters: θ, analytic: r.head.flattenedParameters(), lossNoise: δL, name: "MLM head, ReLU′ for GELU′") { p in
            var m = head
            m.setFlattenedParameters(Array(p[0..<nHead]))
            return try! m.lossAndGradient(h, labels: labels, embedding: table, loss: loss, path: .naive).loss
        }
        #expect(!check.verdict.passed)
    }
}
