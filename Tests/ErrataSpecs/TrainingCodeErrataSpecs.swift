// The documents' training code where the defect changes a number (Sources/Errata/TrainingCodeErrata.swift):
// Doc 004's PE buffer on batch-first input and its TransformerEncoderLayer arguments, Doc 000's float
// causal mask and its scoring of padding, Doc 001's labels from a mask token GPT-2 lacks.
import DecoderSpec
import Foundation
import GSLOracle
import SpecSupport
import Testing

@Suite("Errata: the documents' training code — PE by batch index, dropout as FFN width, float mask, padding scored, labels from mask_token_id")
struct TrainingCodeErrataSpecs {
    @Test("Doc 004 pe[:x.size(0)] on batch-first input adds PE(b) to every token of sentence b: fails 'one row per position' (GSL table); the same sentence is encoded differently in slots 0 and 1")
    func doc004PositionsFromBatch() throws {
        let pe = try SinusoidalPositionalEncoding(dimension: 16, contextLength: 64)
        let correct = PositionalEncodingChecks.addsOneRowPerPosition({ try pe.add(to: $0) }, rows: 8, dimension: 16, seed: 41)
        #expect(correct.passed, "\(correct)")
        let documents = PositionalEncodingChecks.addsOneRowPerPosition({ try TrainingCodeErrata.doc004AddPositions(batchFirst: [$0], encoding: pe)[0] },
                                                                       rows: 8, dimension: 16, seed: 41)
        #expect(!documents.passed)
        // Batch of 3 zero sentences: every row of sentence b is the GSL table's row b.
        let ref = try PositionalEncodingChecks.reference(positions: 3, dimension: 16)
        let out = try TrainingCodeErrata.doc004AddPositions(batchFirst: [Matrix](repeating: Matrix(rows: 5, cols: 16), count: 3), encoding: pe)
        for b in 0..<3 { for t in 0..<5 {
            #expect(compare(out[b].row(t), Array(ref[(b * 16)..<(b * 16 + 16)]), .mixed(absolute: 1e-10, relative: 0x1p-24)).passed, "sentence \(b), token \(t)")
        } }
        // The same sentence in two slots: different inputs to the encoder; the correct PE gives equal ones.
        let x = Inputs.matrix(rows: 5, cols: 16, seed: 42)
        let slots = try TrainingCodeErrata.doc004AddPositions(batchFirst: [x, x], encoding: pe)
        #expect(ErrataFixture.maxDifference(slots[0], slots[1]) > 0.5)
        #expect(try pe.add(to: x) == pe.add(to: x))
    }

    @Test("Doc 004 nn.TransformerEncoderLayer(d_model, nhead, dropout): the third positional argument is dim_feedforward, so the FFN width is 0.1 — a typed error; the intended keyword call builds")
    func doc004DropoutAsWidth() throws {
        let args = TrainingCodeErrata.doc004EncoderLayerArguments(dModel: 16, nhead: 4, dropout: 0.1)
        #expect(args[2].name == "dim_feedforward" && args[2].value == 0.1)
        var rng = SeededRNG(seed: 1)
        do {
            _ = try TrainingCodeErrata.doc004EncoderLayer(dModel: 16, nhead: 4, dropout: 0.1, rng: &rng)
            Issue.record("a feed-forward width of 0.1 must be refused")
        } catch let error as DecoderSpecError {
            #expect(error.description.contains("dim_feedforward = 0.1"))
        }
        // nn.TransformerEncoderLayer(d_model, nhead, dropout=dropout): width 2048 (the default), a working layer.
        let layer = try TransformerLayer.seeded(modelWidth: 16, heads: 4, feedForwardWidth: 2048, activation: .relu, placement: .post,
                                                causal: false, crossAttention: false, rng: &rng)
        #expect(layer.feedForward.up.outputSize == 2048)
    }

    @Test("Doc 000 float triu mask used as PyTorch uses a float attn_mask (added): causality fails, and with equal scores the future gets weight e/((i+1) + e(T−1−i)) (GSL)")
    func doc000FloatMask() throws {
        let x = Inputs.matrix(rows: 6, cols: 8, seed: 43)
        let correct = AttentionOracleChecks.causality({ try scaledDotProductAttention(q: $0, k: $0, v: $0, mask: .causal(), path: .naive) },
                                                       x: x, position: 2, seed: 44, context: "causal")
        #expect(correct.passed, "\(correct)")
        let documents = AttentionOracleChecks.causality({ try TrainingCodeErrata.doc000FloatMaskAttention(q: $0, k: $0, v: $0) },
                                                         x: x, position: 2, seed: 44, context: "doc 000 float mask")
        #expect(!documents.passed)
        // Q = 0: every score is 0 + mask. V = I, so the output is the weight matrix.
        let t = 6
        var eye = Matrix(rows: t, cols: t)
        for i in 0..<t { eye[i, i] = 1 }
        let w = try TrainingCodeErrata.doc000FloatMaskAttention(q: Matrix(rows: t, cols: 4), k: Matrix(rows: t, cols: 4), v: eye)
        let e = try GSL.exp(1)
        var expected: [Double] = []
        for i in 0..<t {
            let z = Double(i + 1) + e * Double(t - 1 - i)
            expected += (0..<t).map { $0 <= i ? 1 / z : e / z }
        }
        // Softmax of T Float values and a product with the identity: (3T + 8)u (docs/tolerances.md, attention weights).
        #expect(compare(w.storage, expected, .absolute(Double(3 * t + 8) * 0x1p-24)).passed)
    }

    @Test("Doc 000 scores all 128 positions: on the real CoNLL-2003 test set an all-O tagger's token accuracy rises from N_O/N to (N_O + P)/(N + P), P the padding and special positions (closed form); entity F1 stays 0",
          .enabled(if: ErrataFixture.hasCoNLL, "\(ErrataFixture.fetchHint)"))
    func doc000PaddingScored() throws {
        let gold = try CoNLLCorpus.read(contentsOf: ErrataFixture.conllTest).sentences.map(\.tags)
        let allO = gold.map { $0.map { _ in "O" } }
        #expect(gold.map(\.count).max()! <= 126, "no truncation at 128 − 2")
        let n = gold.reduce(0) { $0 + $1.count }, nO = gold.reduce(0) { $0 + $1.filter { $0 == "O" }.count }
        #expect(n == 46435 && nO == 38323, "the test set's tokens and O tags")
        let p = 128 * gold.count - n
        let correct = TokenLevelScores.microF1IncludingO(gold: gold, predicted: allO)
        #expect(correct == Double(nO) / Double(n))
        let padded = try TrainingCodeErrata.doc000ScoredSequences(gold: gold, predicted: allO)
        let documents = TokenLevelScores.microF1IncludingO(gold: padded.gold, predicted: padded.predicted)
        #expect(documents == Double(nO + p) / Double(n + p))
        #expect(documents > 0.97 && correct < 0.83, "all-O: \(correct) on the words, \(documents) with the padding scored")
        #expect(try Conlleval.evaluate(gold: padded.gold, predicted: padded.predicted).f1 == 0)
    }

    @Test("Doc 001 labels from mask_token_id: GPT-2 has none (typed error); with one added (id 50257) every label is −100, nothing is scored, the gradient is 0; the labels never see the translation (Seq2SeqBatch's do)")
    func doc001Labels() throws {
        let source = [464, 3797, 3332, 319, 262, 2603, 13], translation = [3123, 5198, 11, 50255]
        #expect(throws: DecoderSpecError.self) { try TrainingCodeErrata.doc001Labels(inputIds: source, maskTokenId: nil) }
        let labels = try TrainingCodeErrata.doc001Labels(inputIds: source, maskTokenId: TrainingCodeErrata.gpt2VocabularySize)
        #expect(labels.allSatisfy { $0 == CrossEntropyLoss.defaultIgnoreIndex })
        let logits = Inputs.matrix(rows: source.count, cols: 2, seed: 45)
        let (_, gradient, count) = try CrossEntropyLoss()(logits: logits, targets: labels)
        #expect(count == 0 && gradient.storage.allSatisfy { $0 == 0 })
        // Correct (teacher forcing): the labels are the translation and <eos>; every one is scored.
        let batch = try Seq2SeqBatch(pairs: [(source: source, target: translation)], bos: 50256, eos: 50256)
        #expect(batch.labels == translation + [50256])
    }
}
