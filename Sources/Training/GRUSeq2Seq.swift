// The GRU encoder-decoder's training step (Models/GRUTranslationModel.swift): teacher forcing on the
// same packed batches as the Transformer (`Seq2SeqBatch`), the same label-smoothed loss, and
// backpropagation through time through the decoder, its attention and the encoder.
// See docs/finetune-translation.md ("Recurrence vs attention") and docs/training.md.
import Embedding
import Kernels
import Layers
import Models
import TensorCore

extension GRUTranslationModel: Seq2SeqTrainable {}

extension GRUTranslationModel: ParameterContainer {
    public mutating func visitParameters(prefix: String, _ body: (String, [Int], inout [Float]) throws -> Void) rethrows {
        let e = config.embeddingWidth
        try body(join(prefix, "encoder.embed_tokens.weight"), [config.sourceVocabularySize, e], &sourceEmbedding.weight.storage)
        try body(join(prefix, "decoder.embed_tokens.weight"), [config.targetVocabularySize, e], &targetEmbedding.weight.storage)
        try encoder.visitParameters(prefix: join(prefix, "encoder.gru"), body)
        try decoder.visitParameters(prefix: join(prefix, "decoder.gru"), body)
        try output.visitParameters(prefix: join(prefix, "decoder.output"), body)
    }
}

extension GRUTranslationModel {
    /// Teacher-forced logits [Σ(m+1), V_tgt] in the batch's row order (pair after pair, as
    /// `Seq2SeqBatch.labels`).
    public func logits(_ batch: Seq2SeqBatch, path: KernelPath) throws -> Matrix {
        let r = try lossAndGradient(batch, loss: CrossEntropyLoss(), path: path, wantGradient: false)
        let packing = try GRUPacking(lengths: batch.decoderInputs.map(\.count))
        var out = Matrix(rows: r.logits.rows, cols: r.logits.cols)
        let v = r.logits.cols
        var row = 0
        for (b, input) in batch.decoderInputs.enumerated() {
            for t in 0..<input.count {
                let src = packing.row(time: t, sequence: b) * v
                for j in 0..<v { out.storage[(row + t) * v + j] = r.logits.storage[src + j] }
            }
            row += input.count
        }
        return out
    }

    /// The training forward of the model's formulas (`GRUTranslationModel`) over a packed batch, and
    /// with `wantGradient` its backward:
    ///
    /// - forward: the encoder over all sources at once, time-major (`GRUCell.trainingForward`); then
    ///   the decoder step by step for all targets still running, each step attending over its own
    ///   source's states; the head W_o·h_t + b_o on all decoder rows in one product; the loss.
    /// - backward, in reverse: dW_o += dZᵀ·H, dH = dZ·W_o; the decoder from its last step to its
    ///   first (`stepBackward`), each step's dc through attention into dM and dh_{t−1}; the first
    ///   step's dh_0 into the encoder's last state; the encoder's BPTT (`GRUCell.backward`); both
    ///   embedding tables by scatter-add.
    ///
    /// Returns the logits [Σ(m+1), V_tgt] time-major (rows of the decoder's `GRUPacking`).
    public func lossAndGradient(_ batch: Seq2SeqBatch, loss: CrossEntropyLoss, path: KernelPath, wantGradient: Bool)
        throws -> (loss: Double, gradient: GRUTranslationModel?, labelled: Int, logits: Matrix)
    {
        try validateParts()
        let (e, h) = (config.embeddingWidth, config.hiddenWidth)
        let width = e + h  // decoder input [E y; c]
        for input in batch.decoderInputs where input.count > config.contextLength {
            throw DecoderSpecError.invalidArgument(what: "target of \(input.count) tokens", reason: "longer than context length \(config.contextLength)")
        }
        // Encoder, all sources at once.
        let encoderPacking = try GRUPacking(lengths: batch.sources.map(\.count))
        let sourceIDs = encoderPacking.timeMajor(batch.sources)
        let encoderTrace = try encoder.trainingForward(sourceEmbedding.lookup(sourceIDs, path: path), packing: encoderPacking, path: path)
        let encoderStates = encoderTrace.states.storage
        let pairs = batch.sources.count
        // Each pair's memory M_b [S_b, h], contiguous.
        let memories: [[Float]] = (0..<pairs).map { b in
            var m: [Float] = []
            m.reserveCapacity(batch.sources[b].count * h)
            for s in 0..<batch.sources[b].count {
                let row = encoderPacking.row(time: s, sequence: b) * h
                m.append(contentsOf: encoderStates[row..<(row + h)])
            }
            return m
        }

        // Decoder, step by step.
        let p = try GRUPacking(lengths: batch.decoderInputs.map(\.count))
        let rows = p.rowCount
        let targetIDs = p.timeMajor(batch.decoderInputs)
        var labelsByPair: [[Int]] = [], l0 = 0
        for input in batch.decoderInputs { labelsByPair.append(Array(batch.labels[l0..<(l0 + input.count)])); l0 += input.count }
        let labels = p.timeMajor(labelsByPair)
        let embedded = try targetEmbedding.lookup(targetIDs, path: path).storage
        var x = [Float](repeating: 0, count: rows * width)  // [E y | c] per row
        for i in 0..<rows { copyElements(embedded, i * e, into: &x, i * width, count: e) }
        // a = E y·W_eᵀ + b for every row now; + c·W_cᵀ at each step.
        var a = [Float](repeating: 0, count: rows * 3 * h)
        gemm(path, transB: true, m: rows, n: 3 * h, k: e, x, lda: width, decoder.inputWeight.storage, ldb: width, &a, ldc: 3 * h)
        decoder.bias.withUnsafeBufferPointer { pb in
            a.withUnsafeMutableBufferPointer { pa in
                for i in 0..<rows { for j in 0..<(3 * h) { pa[i * 3 * h + j] += pb[j] } }
            }
        }
        var trace = GRUTrace(packing: p, inputs: Matrix(rows: 0, cols: width), previous: [Float](repeating: 0, count: rows * h),
                             z: [Float](repeating: 0, count: rows * h), r: [Float](repeating: 0, count: rows * h),
                             candidate: [Float](repeating: 0, count: rows * h), s: [Float](repeating: 0, count: rows * h),
                             states: Matrix(rows: rows, cols: h))
        for k in 0..<p.counts[0] {  // h_0 = m_S of the pair
            let b = p.order[k], last = (batch.sources[b].count - 1) * h
            for j in 0..<h { trace.previous[k * h + j] = memories[b][last + j] }
        }
        var weights = [[Float]](repeating: [], count: rows)  // α per row
        var g = [Float](repeating: 0, count: p.counts[0] * 2 * h)
        let scale = 1 / Float(Double(h).squareRoot())
        for t in 0..<p.steps {
            let n = p.counts[t], o = p.offsets[t]
            if t > 0 { copyElements(trace.states.storage, p.offsets[t - 1] * h, into: &trace.previous, o * h, count: n * h) }
            for k in 0..<n {  // attention: α = softmax(M_b·h_{t−1}/√h), c = αᵀ·M_b
                let b = p.order[k], row = o + k, sources = batch.sources[b].count
                var alpha = [Float](repeating: 0, count: sources)
                memories[b].withUnsafeBufferPointer { m in
                    trace.previous.withUnsafeBufferPointer { q in
                        x.withUnsafeMutableBufferPointer { px in
                            Self.attentionForward(path, memory: m.baseAddress!, sources: sources, hidden: h, query: q.baseAddress! + row * h,
                                                  scale: scale, weights: &alpha, context: px.baseAddress! + row * width + e)
                        }
                    }
                }
                weights[row] = alpha
            }
            // a += c·W_cᵀ for the step's rows (W_c: columns e..<e+h of W).
            gemm(path, transB: true, m: n, n: 3 * h, k: h, x, o * width + e, lda: width, decoder.inputWeight.storage, e, ldb: width,
                 beta: 1, &a, o * 3 * h, ldc: 3 * h)
            GRUCell.runStep(decoder, path, rows: n, hidden: h, a: a, aOffset: o * 3 * h, trace: &trace, offset: o * h, g: &g)
        }
        let states = trace.states
        let logits = try output(states, path: path)
        let (lossValue, dZ, labelled) = try loss(logits: logits, targets: labels, path: path)
        guard wantGradient else { return (lossValue, nil, labelled, logits) }

        var grad = zeroGradient()
        // Head: dW_o += dZᵀ·H, db_o += Σ dZ, dH = dZ·W_o.
        let v = config.targetVocabularySize
        gemm(path, transA: true, m: v, n: h, k: rows, dZ.storage, lda: v, states.storage, ldb: h, beta: 1, &grad.output.weight.storage, ldc: h)
        var db = grad.output.bias!
        addColumnSums(dZ.storage, rows: rows, cols: v, into: &db)
        grad.output.bias = db
        var dH = [Float](repeating: 0, count: rows * h)
        gemm(path, m: rows, n: h, k: v, dZ.storage, lda: v, output.weight.storage, ldb: h, &dH, ldc: h)

        // Decoder BPTT.
        var da = [Float](repeating: 0, count: rows * 3 * h)
        var carry = [Float](repeating: 0, count: p.counts[0] * h), dh = carry, ds = carry, dPrevious = carry
        var dContext = [Float](repeating: 0, count: p.counts[0] * h)
        var dMemories = memories.map { [Float](repeating: 0, count: $0.count) }
        for t in stride(from: p.steps - 1, through: 0, by: -1) {
            let n = p.counts[t], o = p.offsets[t]
            copyElements(dH, o * h, into: &dh, 0, count: n * h)
            for i in 0..<(n * h) { dh[i] += carry[i] }
            GRUCell.stepBackward(path, rows: n, hidden: h, u: decoder.hiddenWeight.storage, dh: dh, dhOffset: 0, previous: trace.previous,
                                 z: trace.z, r: trace.r, candidate: trace.candidate, savedOffset: o * h, da: &da, daOffset: o * 3 * h,
                                 dPrevious: &dPrevious, ds: &ds)
            // dc = da·W_c   [n, 3h]·[3h, h]
            gemm(path, m: n, n: h, k: 3 * h, da, o * 3 * h, lda: 3 * h, decoder.inputWeight.storage, e, ldb: width, &dContext, ldc: h)
            for k in 0..<n {
                let b = p.order[k], row = o + k, sources = batch.sources[b].count
                memories[b].withUnsafeBufferPointer { m in
                    trace.previous.withUnsafeBufferPointer { q in
                        weights[row].withUnsafeBufferPointer { alpha in
                            dContext.withUnsafeBufferPointer { dc in
                                dMemories[b].withUnsafeMutableBufferPointer { dm in
                                    dPrevious.withUnsafeMutableBufferPointer { dq in
                                        Self.attentionBackward(path, memory: m.baseAddress!, sources: sources, hidden: h, query: q.baseAddress! + row * h,
                                                               scale: scale, weights: alpha.baseAddress!, dContext: dc.baseAddress! + k * h,
                                                               dMemory: dm.baseAddress!, dQuery: dq.baseAddress! + k * h)
                                    }
                                }
                            }
                        }
                    }
                }
            }
            for i in 0..<(n * h) { carry[i] = dPrevious[i] }
            for i in (n * h)..<carry.count { carry[i] = 0 }
        }
        GRUCell.accumulateParameterGradients(path, rows: rows, hidden: h, da: da, inputs: x, inputWidth: width, previous: trace.previous,
                                             s: trace.s, gradient: &grad.decoder)
        // Target embeddings: dE_y = da·W_e, scattered.
        var dEmbedded = [Float](repeating: 0, count: rows * e)
        gemm(path, m: rows, n: e, k: 3 * h, da, lda: 3 * h, decoder.inputWeight.storage, ldb: width, &dEmbedded, ldc: e)
        EmbeddingTable.backward(ids: targetIDs, dOut: try Matrix(rows: rows, cols: e, storage: dEmbedded), gradient: &grad.targetEmbedding.weight)

        // Into the encoder's states: dM_b, and dh_0 (in `carry`, rank order of the decoder) into m_S.
        var dEncoder = Matrix(rows: encoderPacking.rowCount, cols: h)
        for b in 0..<pairs {
            for s in 0..<batch.sources[b].count {
                let row = encoderPacking.row(time: s, sequence: b) * h
                for j in 0..<h { dEncoder.storage[row + j] += dMemories[b][s * h + j] }
            }
            let last = encoderPacking.row(time: batch.sources[b].count - 1, sequence: b) * h, k = p.rank[b]
            for j in 0..<h { dEncoder.storage[last + j] += carry[k * h + j] }
        }
        let dSource = encoder.backward(dEncoder, trace: encoderTrace, gradient: &grad.encoder, path: path).dInputs
        EmbeddingTable.backward(ids: sourceIDs, dOut: dSource, gradient: &grad.sourceEmbedding.weight)
        return (lossValue, grad, labelled, logits)
    }

    /// α = softmax(scale·M·q) [S], c = αᵀ·M [h] for one row (M [S, h] contiguous): two one-row
    /// products on `path`'s GEMM (the streaming GEMV on the optimized paths) around the softmax.
    static func attentionForward(_ path: KernelPath, memory m: UnsafePointer<Float>, sources: Int, hidden h: Int, query q: UnsafePointer<Float>,
                                 scale: Float, weights alpha: inout [Float], context c: UnsafeMutablePointer<Float>) {
        alpha.withUnsafeMutableBufferPointer { pa in
            let w = pa.baseAddress!
            GEMM.sgemm(path, transB: true, m: 1, n: sources, k: h, alpha: scale, a: q, lda: h, b: m, ldb: h, c: w, ldc: sources)
            Softmax.rows(path, w, rows: 1, cols: sources)
            GEMM.sgemm(path, m: 1, n: h, k: sources, a: w, lda: sources, b: m, ldb: h, c: c, ldc: h)
        }
    }

    /// The backward of `attentionForward` for one row, given dc = ∂L/∂c:
    ///
    ///     dα = M·dc,   dscore_s = α_s·(dα_s − Σ_σ α_σ·dα_σ)
    ///     dq += scale·dscoreᵀ·M,     dM += α·dcᵀ + scale·dscore·qᵀ   (one rank-2 product)
    static func attentionBackward(_ path: KernelPath, memory m: UnsafePointer<Float>, sources: Int, hidden h: Int, query q: UnsafePointer<Float>,
                                  scale: Float, weights alpha: UnsafePointer<Float>, dContext dc: UnsafePointer<Float>,
                                  dMemory dm: UnsafeMutablePointer<Float>, dQuery dq: UnsafeMutablePointer<Float>) {
        // left [2, S] = [α; scale·dscore], right [2, h] = [dc; q]
        var left = [Float](repeating: 0, count: 2 * sources), right = [Float](repeating: 0, count: 2 * h)
        left.withUnsafeMutableBufferPointer { pl in
            right.withUnsafeMutableBufferPointer { pr in
                let l = pl.baseAddress!, r = pr.baseAddress!
                GEMM.sgemm(path, transB: true, m: 1, n: sources, k: h, a: dc, lda: h, b: m, ldb: h, c: l + sources, ldc: sources)  // dα
                var mean: Float = 0
                for s in 0..<sources { mean += alpha[s] * l[sources + s] }
                for s in 0..<sources {
                    l[sources + s] = scale * alpha[s] * (l[sources + s] - mean)
                    l[s] = alpha[s]
                }
                GEMM.sgemm(path, m: 1, n: h, k: sources, a: l + sources, lda: sources, b: m, ldb: h, beta: 1, c: dq, ldc: h)
                r.update(from: dc, count: h)
                (r + h).update(from: q, count: h)
                GEMM.sgemm(path, transA: true, m: sources, n: h, k: 2, a: l, lda: sources, b: r, ldb: h, beta: 1, c: dm, ldc: h)
            }
        }
    }
}
