// The source documents' model-level formulas (decoder input, encoder equation, head weights, the
// output distribution), transcribed so their defects can be run. The correct versions: Models'
// EncoderDecoderModel and Training's Seq2SeqBatch (teacher forcing), Attention, the tied head.
// docs/sources.md lists the sections; specs in Tests/ErrataSpecs/ModelFormulaErrataSpecs.swift.
import Kernels
import Layers
import Models
import TensorCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum ModelFormulaErrata {
    // MARK: Doc 000 — the decoder reads the source

    /// Doc 000 (§4.3, machine translation), verbatim: "设源语言序列为 X … 解码器的输入 X′ = E[X] + P，
    /// 其中 E[X] 表示源语言序列的嵌入矩阵" — the decoder's input is the *source* sentence's
    /// embedding. Transcribed: the decoder of an encoder-decoder model reads the source ids
    /// (through the target embedding, as the decoder has no other) instead of `<bos> y₁ … y_{m−1}`.
    /// Its logits [S, V_tgt] cannot depend on the target at all, so nothing it predicts is
    /// conditioned on the words already produced. Source ids must be valid target ids.
    public static func doc000DecoderLogits(_ model: EncoderDecoderModel, source: [Int]) throws -> Matrix {
        try model.decode(source, memory: model.encode(source))
    }

    // MARK: Doc 002 — x_i on both sides; weights without scale or V

    /// Doc 002 (§4.1), verbatim: x_i = Embed(w_i) + PE(i) + Enc(x_i).
    ///
    /// x_i appears on both sides. Read as an assignment (the only way to compute it in one pass,
    /// with x_i = Embed + PE on the right), it is e + Enc(e): the encoder's output with its own
    /// input added once more. The correct data flow is h = Enc(Embed(w) + PE) (docs/layers.md).
    /// `e` [T, d] is Embed(w) + PE; `encoder` the stack. [T, d].
    public static func doc002SelfReferential(_ e: Matrix, encoder: (Matrix) throws -> Matrix) throws -> Matrix {
        try e.adding(encoder(e), "Embed + PE + Enc(x)")
    }

    /// Doc 002 (§4.2), verbatim: w_i^h = Softmax(QK(Enc(x_i))).
    ///
    /// Transcribed for one head with the projections applied: softmax(Q·Kᵀ) row-wise — no 1/√d_k
    /// and no V. The result is a weight matrix [Tq, Tk], not a head output [Tq, d_v]; and without
    /// the 1/√d_k the scores have variance d_k instead of 1 for unit-variance q, k, so rows
    /// saturate towards one-hot as d_k grows. `q` [Tq, d], `k` [Tk, d].
    public static func doc002HeadWeights(q: Matrix, k: Matrix) throws -> Matrix {
        var w = try q.matmul(k, transposeOther: true, path: .naive)
        let (rows, cols) = (w.rows, w.cols)
        w.storage.withUnsafeMutableBufferPointer { Softmax.rows(.naive, $0.baseAddress!, rows: rows, cols: cols) }
        return w
    }

    // MARK: Doc 001 — the output distribution from the previous state

    /// Doc 001 (§4.1), verbatim: Output = softmax(Q′W′ + U′h_{t−1} + b′), "Q′ 和 W′ 分别为线性变换矩阵，
    /// U′ 为注意力加权矩阵，h_{t−1} 为前一时间步的状态向量".
    ///
    /// Q′ and W′ are both parameter matrices, so Q′W′ is a constant; the only input is h_{t−1}.
    /// The distribution over the next token therefore ignores the token just read at step t and
    /// everything attention computed at step t. Transcribed with Q′ [1, m], W′ [m, V], U′ [V, d_h],
    /// h_{t−1} [d_h], b′ [V] → probabilities [V]. The correct recurrent decoder first updates the
    /// state, h_t = f(h_{t−1}, y_{t−1}, c_t), and reads the output from h_t (`recurrentStep`);
    /// the Transformer's counterpart is softmax(h_t·Eᵀ) on the current position's state.
    public static func doc001Output(qPrime: Matrix, wPrime: Matrix, uPrime: Matrix, previousState h: [Float], bias b: [Float]) throws -> [Float] {
        let qw = try qPrime.matmul(wPrime, path: .naive)                                   // [1, V]
        let uh = try uPrime.matmul(Matrix(rows: h.count, cols: 1, storage: h), path: .naive)  // [V, 1]
        guard qw.rows == 1, qw.cols == uh.rows, b.count == qw.cols else {
            throw DecoderSpecError.shapeMismatch(operation: "ModelFormulaErrata.doc001Output", expected: "Q′W′ [1, V], U′h [V], b′ [V]",
                                                 actual: "Q′W′ \(qw.shape), U′h \(uh.shape), b′ [\(b.count)]")
        }
        return softmax((0..<b.count).map { qw.storage[$0] + uh.storage[$0] + b[$0] })
    }

    /// The recurrent decoder step the formula should describe (Elman form, as in Seq2Seq):
    ///
    ///     h_t = tanh(W_h·h_{t−1} + W_x·x_t + b_h),   Output_t = softmax(W_o·h_t + b_o)
    ///
    /// W_h [d_h, d_h], W_x [d_h, d_x], W_o [V, d_h]. Returns (h_t, probabilities [V]).
    public static func recurrentStep(wh: Matrix, wx: Matrix, bh: [Float], wo: Matrix, bo: [Float],
                                     previousState h: [Float], input x: [Float]) throws -> (state: [Float], output: [Float]) {
        try recurrentStep(wo: wo, bo: bo, previousState: h, input: x) { h, x in
            let a = try wh.matmul(Matrix(rows: h.count, cols: 1, storage: h), path: .naive)
            let c = try wx.matmul(Matrix(rows: x.count, cols: 1, storage: x), path: .naive)
            guard a.rows == c.rows, bh.count == a.rows else {
                throw DecoderSpecError.shapeMismatch(operation: "ModelFormulaErrata.recurrentStep", expected: "W_h·h, W_x·x, b_h of one width",
                                                     actual: "[\(a.rows)], [\(c.rows)], [\(bh.count)]")
            }
            return (0..<bh.count).map { tanhf(a.storage[$0] + c.storage[$0] + bh[$0]) }
        }
    }

    /// The same step with any state update f (Elman's tanh above, a GRU with attention in
    /// `GRUTranslationModel`): first the state, then the output read from it,
    ///
    ///     h_t = f(h_{t−1}, x_t),   Output_t = softmax(W_o·h_t + b_o)
    ///
    /// W_o [V, d_h], b_o [V]. Returns (h_t, probabilities [V]).
    public static func recurrentStep(wo: Matrix, bo: [Float], previousState h: [Float], input x: [Float],
                                     update: ([Float], [Float]) throws -> [Float]) throws -> (state: [Float], output: [Float]) {
        let state = try update(h, x)
        let z = try wo.matmul(Matrix(rows: state.count, cols: 1, storage: state), path: .naive)
        guard bo.count == z.rows else {
            throw DecoderSpecError.shapeMismatch(operation: "ModelFormulaErrata.recurrentStep", expected: "b_o [\(z.rows)]", actual: "[\(bo.count)]")
        }
        return (state, softmax((0..<bo.count).map { z.storage[$0] + bo[$0] }))
    }

    static func softmax(_ z: [Float]) -> [Float] {
        var p = z
        p.withUnsafeMutableBufferPointer { Softmax.rows(.naive, $0.baseAddress!, rows: 1, cols: z.count) }
        return p
    }
}
