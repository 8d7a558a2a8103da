// The documents' model formulas (Sources/Errata/ModelFormulaErrata.swift): Doc 000's decoder that
// reads the source, Doc 002's x_i = Embed + PE + Enc(x_i) and w_i^h = Softmax(QK(…)), Doc 001's
// softmax(Q′W′ + U′h_{t−1} + b′). Each fails a property the correct version passes.
import DecoderSpec
import GSLOracle
import SpecSupport
import Testing

@Suite("Errata: Doc 000's decoder input, Doc 002's encoder equation and head weights, Doc 001's output formula")
struct ModelFormulaErrataSpecs {
    static func model() throws -> EncoderDecoderModel {
        try EncoderDecoderModel.seeded(EncoderDecoderConfig(sourceVocabularySize: 20, targetVocabularySize: 20, contextLength: 16, modelWidth: 16,
                                                            heads: 4, encoderLayers: 1, decoderLayers: 1, feedForwardWidth: 32), seed: 3)
    }

    @Test("Doc 000: the decoder reads the source — its prediction for position 2 ignores y₁, which teacher forcing (<bos> y) feeds; and its S rows do not fit T labels")
    func doc000DecoderReadsSource() throws {
        let model = try Self.model()
        let source = [5, 6, 7, 8, 9]
        let memory = try model.encode(source)
        let (y, yChanged) = ([11, 12, 13], [11, 17, 13])
        // Correct: the decoder reads <bos> y₁ … (Seq2SeqBatch builds it); row 2 predicts y₂ from y₁.
        let inputs = try [y, yChanged].map { try Seq2SeqBatch(pairs: [(source: source, target: $0)], bos: 1, eos: 2).decoderInputs[0] }
        #expect(inputs[0] == [1, 11, 12, 13])
        let correct = try inputs.map { try model.decode($0, memory: memory).row(2) }
        #expect(correct[0] != correct[1], "teacher-forced logits must depend on the previous target token")
        // Doc 000: one set of logits per source, whatever the target.
        let documents = try ModelFormulaErrata.doc000DecoderLogits(model, source: source)
        #expect(documents == (try model.decode(source, memory: memory)))
        #expect(documents.rows == source.count)
        let labels = try Seq2SeqBatch(pairs: [(source: source, target: y)], bos: 1, eos: 2).labels   // y + <eos>: 4 labels
        #expect(throws: DecoderSpecError.self) { try CrossEntropyLoss()(logits: documents, targets: labels) }
    }

    @Test("Doc 002 x_i = Embed + PE + Enc(x_i), computed in one pass, is Enc(e) + e: the embedding counted twice (difference = e within one rounding)")
    func doc002SelfReferential() throws {
        let layer = try ErrataFixture.layer()
        let e = Inputs.matrix(rows: 6, cols: 16, seed: 21)
        let correct = try layer(e, path: .naive)
        let documents = try ModelFormulaErrata.doc002SelfReferential(e) { try layer($0, path: .naive) }
        // fl(e + h) − h = e up to one rounding of |e + h| (plus the subtraction's, done in Double exactly).
        let diff = zip(documents.storage, correct.storage).map { Double($0) - Double($1) }
        let halfUlp = documents.storage.map { Double(abs($0).ulp) / 2 }.max()!
        #expect(compare(diff, e.storage.doubles, .absolute(halfUlp)).passed)
        #expect(ErrataFixture.maxDifference(documents, correct) > 0.5, "the extra e must show")
    }

    @Test("Doc 002 w = Softmax(QK): equals GSL's softmax(QKᵀ) without the 1/√d (a [Tq, Tk] weight matrix, no V) and fails the scaled reference")
    func doc002HeadWeights() throws {
        let (q, k) = (Inputs.matrix(rows: 5, cols: 64, seed: 22, range: -1.7...1.7), Inputs.matrix(rows: 7, cols: 64, seed: 23, range: -1.7...1.7))
        let w = try ModelFormulaErrata.doc002HeadWeights(q: q, k: k)
        #expect(w.shape == Shape(5, 7), "a weight matrix, not a head output [Tq, d_v]")
        // Bound: scores err ≤ γ_d·Σ|q||k| ≤ (d+1)u·d·max|q|·max|k|; weights 2·that + (3Tk + 8)u (docs/tolerances.md, attention weights).
        let u = 0x1p-24, d = 64.0
        let es = (d + 1) * u * d * 1.7 * 1.7
        let bound = 2 * es + Double(3 * 7 + 8) * u
        let unscaled = try AttentionOracleChecks.weightsReference(q: q, k: k, mask: .none, scaleDimension: 1)
        #expect(compare(w.storage, unscaled, .absolute(bound)).passed, "doc 002 weights vs GSL softmax(QKᵀ)")
        let scaled = try AttentionOracleChecks.weightsReference(q: q, k: k, mask: .none)
        #expect(!compare(w.storage, scaled, .absolute(bound)).passed)
        // Saturation: the unscaled rows are much peakier (largest weight per row, averaged).
        func peak(_ x: [Double]) -> Double { (0..<5).map { r in x[(r * 7)..<(r * 7 + 7)].max()! }.reduce(0, +) / 5 }
        #expect(peak(unscaled) > peak(scaled) + 0.2, "peak \(peak(unscaled)) vs scaled \(peak(scaled))")
    }

    @Test("Doc 001 softmax(Q′W′ + U′h_{t−1} + b′): the output at step t ignores the token read at step t (the recurrent step reading h_t does not); Q′W′ is a constant bias (GSL)")
    func doc001Output() throws {
        let (dh, dx, v, m) = (6, 5, 9, 4)
        let wh = Inputs.matrix(rows: dh, cols: dh, seed: 31), wx = Inputs.matrix(rows: dh, cols: dx, seed: 32)
        let wo = Inputs.matrix(rows: v, cols: dh, seed: 33, range: -2...2)
        let bh = Inputs.matrix(rows: 1, cols: dh, seed: 34).storage, bo = Inputs.matrix(rows: 1, cols: v, seed: 35).storage
        let qPrime = Inputs.matrix(rows: 1, cols: m, seed: 36), wPrime = Inputs.matrix(rows: m, cols: v, seed: 37)
        let hPrev = Inputs.matrix(rows: 1, cols: dh, seed: 38).storage
        let inputs = [Inputs.matrix(rows: 1, cols: dx, seed: 39).storage, Inputs.matrix(rows: 1, cols: dx, seed: 40).storage]
        // Correct: h_t from (h_{t−1}, x_t), output from h_t: two inputs, two distributions.
        let steps = try inputs.map { try ModelFormulaErrata.recurrentStep(wh: wh, wx: wx, bh: bh, wo: wo, bo: bo, previousState: hPrev, input: $0) }
        #expect(ErrataFixture.maxDifference(try Matrix([steps[0].output]), try Matrix([steps[1].output])) > 1e-3)
        // Doc 001: only h_{t−1} enters, so the two inputs give one distribution.
        let documents = try ModelFormulaErrata.doc001Output(qPrime: qPrime, wPrime: wPrime, uPrime: wo, previousState: hPrev, bias: bo)
        // GSL: Q′W′ + U′h + b′ in Double, softmax with gsl_sf_exp; within (m + dh + 3)u·Σ|terms|·2 + 4u (two roundings of p).
        let qw = try GSL.dgemm(m: 1, n: v, k: m, a: qPrime.storage.doubles, b: wPrime.storage.doubles)
        let uh = try GSL.dgemm(m: v, n: 1, k: dh, a: wo.storage.doubles, b: hPrev.doubles)
        let z = (0..<v).map { qw[$0] + uh[$0] + Double(bo[$0]) }
        let mz = z.max()!
        let e = try z.map { try GSL.exp($0 - mz) }
        let p = e.map { $0 / e.reduce(0, +) }
        let u = 0x1p-24, scoreError = Double(m + dh + 3) * u * (Double(m) + Double(dh) * 2 + 1)
        #expect(compare(documents, p, .absolute(2 * scoreError + 4 * u)).passed, "doc 001 output vs GSL")
    }
}
