// Doc 002's encoder layer (Sources/Errata/EncoderLayerErrata.swift) beside the correct post-norm
// TransformerLayer with the same weights. Each property holds for the correct layer and fails for
// the document's — on seeded weights and on the real all-MiniLM-L6-v2 layer 1.
import DecoderSpec
import Foundation
import GSLOracle
import SpecSupport
import Testing

@Suite("Errata: Doc 002's encoder layer — attention over the batch axis, x + x residuals, LayerNorm twice, linear FFN")
struct EncoderLayerErrataSpecs {
    /// A sentence's output must not depend on the other sentences of its batch.
    func batchIndependence(_ f: ([Matrix]) throws -> [Matrix], a: Matrix, b: Matrix, c: Matrix) throws -> Double {
        let withB = try f([a, b])[0], withC = try f([a, c])[0]
        return ErrataFixture.maxDifference(withB, withC)
    }

    @Test("Sentences of a batch mix: sentence 0's output changes with sentence 1 (the correct layer: bitwise unchanged)")
    func batchMixing() throws {
        let layer = try ErrataFixture.layer()
        let doc = Doc002EncoderLayer(weightsOf: layer)
        let a = Inputs.matrix(rows: 6, cols: 16, seed: 1), b = Inputs.matrix(rows: 6, cols: 16, seed: 2), c = Inputs.matrix(rows: 6, cols: 16, seed: 3)
        let correct = try batchIndependence({ try $0.map { try layer($0, path: .naive) } }, a: a, b: b, c: c)
        #expect(correct == 0)
        let documents = try batchIndependence({ try doc($0) }, a: a, b: b, c: c)
        #expect(documents > 1e-2, "doc 002's layer: sentence 0 moved by only \(documents)")
    }

    @Test("One sentence (bs = 1): attention is softmax over one key = 1, so the output is LN(x + W_O(W_V x)) — independent of W_Q, W_K and of the other positions")
    func singleSentence() throws {
        let layer = try ErrataFixture.layer()
        let doc = Doc002EncoderLayer(weightsOf: layer)
        let x = Inputs.matrix(rows: 7, cols: 16, seed: 4)
        // Closed form: each position's own value vector, projected, residual, LayerNorm.
        let mha = layer.selfAttention
        let closed = try layer.selfAttentionNorm(x.adding(mha.output(mha.value(x, path: .naive), path: .naive)), path: .naive)
        let attended = try doc.attend([x])[0]
        #expect(ErrataFixture.maxDifference(attended, closed) == 0, "doc 002 attention with bs = 1 vs LN(x + W_O·W_V·x)")
        // Zeroing W_Q and W_K changes nothing for the document's layer, and a lot for the correct one.
        var blind = layer
        blind.selfAttention.query.weight = Matrix(rows: 16, cols: 16)
        blind.selfAttention.key.weight = Matrix(rows: 16, cols: 16)
        #expect(try Doc002EncoderLayer(weightsOf: blind)([x])[0] == doc([x])[0])
        let moved = ErrataFixture.maxDifference(try blind(x, path: .naive), try layer(x, path: .naive))
        #expect(moved > 1e-2, "the correct layer must depend on W_Q, W_K; moved \(moved)")
        // No mixing along the sequence: another token at position 5 leaves position 2 bitwise unchanged.
        var y = x
        for j in 0..<16 { y[5, j] = -x[5, j] + 0.5 }
        #expect(try doc([y])[0].row(2) == doc([x])[0].row(2))
        #expect(try layer(y, path: .naive).row(2) != layer(x, path: .naive).row(2))
    }

    @Test("layer_norm(x + x): with W₂ = 0 the FFN block gives LN(b₂ + b₂) at every position for every input — the residual is gone")
    func residualThrownAway() throws {
        var layer = try ErrataFixture.layer()
        layer.feedForward.down.weight = Matrix(rows: 16, cols: 32)
        layer.feedForward.down.bias = Inputs.matrix(rows: 1, cols: 16, seed: 5).storage
        let doc = Doc002EncoderLayer(weightsOf: layer)
        let b2 = try Matrix(rows: 1, cols: 16, storage: layer.feedForward.down.bias!)
        let closed = try layer.feedForwardNorm(b2.adding(b2), path: .naive).row(0)
        for seed: UInt in [6, 7] {
            let out = try doc.feedForward(Inputs.matrix(rows: 5, cols: 16, seed: seed))
            for t in 0..<5 { #expect(out.row(t) == closed, "row \(t), seed \(seed)") }
        }
        // The correct post-norm block, LN(x + FFN(x)) = LN(x + b₂), still varies with x.
        let x = Inputs.matrix(rows: 5, cols: 16, seed: 6)
        let correct = try layer.feedForwardNorm(x.adding(layer.feedForward(x, path: .naive)), path: .naive)
        #expect(correct.row(0) != correct.row(1))
    }

    /// The rounding bound of ffn2(ffn1(x)) computed in Float, per element: (d + d_ff + 2)·u·(|W₂|(|W₁||x| + |b₁|) + |b₂|)
    /// (two dot products of lengths d, d_ff plus the bias additions, γ_n ≈ n·u; docs/tolerances.md).
    func affineBound(_ f: Linear, _ g: Linear, _ x: [Float]) -> [Double] {
        let u = 0x1p-24, n = Double(f.inputSize + f.outputSize + 2)
        let h = (0..<f.outputSize).map { i in (0..<f.inputSize).reduce(abs(Double(f.bias?[i] ?? 0))) { $0 + abs(Double(f.weight[i, $1]) * Double(x[$1])) } }
        return (0..<g.outputSize).map { o in
            n * u * (0..<g.inputSize).reduce(abs(Double(g.bias?[o] ?? 0))) { $0 + abs(Double(g.weight[o, $1])) * h[$1] }
        }
    }

    @Test("No activation: ffn2(ffn1(·)) is affine — f((x₁+x₂)/2) = (f(x₁)+f(x₂))/2 within the rounding bound; the correct GELU FFN is not")
    func feedForwardIsAffine() throws {
        let layer = try ErrataFixture.layer()
        let doc = Doc002EncoderLayer(weightsOf: layer)
        let x1 = Inputs.matrix(rows: 1, cols: 16, seed: 8, range: -3...3), x2 = Inputs.matrix(rows: 1, cols: 16, seed: 9, range: -3...3)
        let m = try Matrix(rows: 1, cols: 16, storage: zip(x1.storage, x2.storage).map { ($0 + $1) / 2 })
        func gap(_ f: (Matrix) throws -> Matrix) throws -> [Double] {
            let (a, b, c) = (try f(x1), try f(x2), try f(m))
            return (0..<16).map { abs(Double(c.storage[$0]) - (Double(a.storage[$0]) + Double(b.storage[$0])) / 2) }
        }
        let (up, down) = (layer.feedForward.up, layer.feedForward.down)
        // Bound: the three evaluations' rounding plus the midpoint's own rounding u·|m| carried through |W₂||W₁|.
        let (b1, b2, bm) = (affineBound(up, down, x1.storage), affineBound(up, down, x2.storage), affineBound(up, down, m.storage))
        let n = Double(up.inputSize + up.outputSize + 2)
        var bound = [Double](repeating: 0, count: 16)
        for j in 0..<16 { bound[j] = bm[j] * (1 + 1 / n) + (b1[j] + b2[j]) / 2 }
        let documents = try gap { try doc.feedForwardLinear($0) }
        #expect(zip(documents, bound).allSatisfy { $0 <= $1 }, "doc 002 FFN gap \(documents.max()!) vs bound \(bound.min()!)")
        let correct = try gap { try layer.feedForward($0, path: .naive) }
        #expect(zip(correct, bound).contains { $0 > 10 * $1 }, "GELU FFN should be far from affine: gap \(correct.max()!)")
    }

    @Test("LayerNorm twice: scaling the FFN's own LayerNorm γ by 3 leaves the document's layer unchanged (layernorm2 re-normalizes: the learned gain is lost); the correct layer's output scales by 3")
    func layerNormTwice() throws {
        let layer = try ErrataFixture.layer()
        let doc = Doc002EncoderLayer(weightsOf: layer)
        var docScaled = doc
        docScaled.feedForwardNorm.gamma = doc.feedForwardNorm.gamma.map { 3 * $0 }
        let x = Inputs.matrix(rows: 5, cols: 16, seed: 10)
        let (y, y3) = (try doc([x])[0], try docScaled([x])[0])
        // LN(c·z) = c·z/√(c²σ² + ε) vs z/√(σ² + ε), z = LN(·) with σ² ≈ 1: relative gap ≤ ε/2 = 5e-6, plus
        // each LayerNorm's rounding, ≤ (d + 12)·u·(1 + |x̂|) ≈ 28·6e-8·4 < 7e-6 twice: 2e-5 in all.
        #expect(ErrataFixture.maxDifference(y, y3) <= 2e-5)
        // γ = 1, β = 0 here, so the correct post-norm output is γ ⊙ x̂: exactly 3× (one more rounding, ≤ 1 ulp).
        var scaled = layer
        scaled.feedForwardNorm.gamma = layer.feedForwardNorm.gamma.map { 3 * $0 }
        let (c, c3) = (try layer(x, path: .naive), try scaled(x, path: .naive))
        #expect(zip(c.storage, c3.storage).allSatisfy { abs(3 * $0 - $1) <= (3 * $0).ulp * 2 })
    }

    @Test("Real all-MiniLM-L6-v2 layer 1: its attention mixes the sentences of a batch (≥ 0.1), yet the layer's output ignores both the batch and W_Q, W_K — attention enters only through position 0, [CLS] in every sentence; the real layer depends on W_Q, W_K",
          .enabled(if: ErrataFixture.hasMiniLM, "\(ErrataFixture.fetchHint)"))
    func realMiniLM() throws {
        let model = try EncoderModel.load(directory: ErrataFixture.miniLM, path: .naive)
        let tokenizer = try WordPieceTokenizer.load(modelDirectory: ErrataFixture.miniLM)
        let texts = ["The bank raised its interest rate.", "She sat on the river bank today.", "Paris is the capital of France."]
        let ids = texts.map { tokenizer.encode($0) }
        let n = ids.map(\.count).min()!
        let inputs = try ids.map { try model.layerStates(Array($0.prefix(n)))[0] }     // the input of layer 1, [n, 384]
        let layer = model.layers[0], doc = Doc002EncoderLayer(weightsOf: layer)
        // The attention itself runs over the batch axis: position 1 of sentence 0 moves with its batch-mate.
        let attended = try batchIndependence({ try doc.attend($0) }, a: inputs[0], b: inputs[1], c: inputs[2])
        #expect(attended >= 0.1, "doc 002 attention on MiniLM: sentence 0 moved by \(attended)")
        // `self_attn(…)[0]` keeps position 0 only; every sentence starts with the same [CLS] row, so the
        // softmax over the batch averages identical values: the layer's output is bitwise independent of the batch…
        #expect(inputs[0].row(0) == inputs[1].row(0))
        #expect(try batchIndependence({ try doc($0) }, a: inputs[0], b: inputs[1], c: inputs[2]) == 0)
        // … and of W_Q, W_K, for a batch of two as for one.
        var blind = layer
        blind.selfAttention.query.weight = Matrix(rows: 384, cols: 384)
        blind.selfAttention.key.weight = Matrix(rows: 384, cols: 384)
        #expect(try Doc002EncoderLayer(weightsOf: blind)([inputs[0], inputs[1]]) == doc([inputs[0], inputs[1]]))
        #expect(ErrataFixture.maxDifference(try blind(inputs[0], path: .naive), try layer(inputs[0], path: .naive)) >= 0.1)
    }
}
