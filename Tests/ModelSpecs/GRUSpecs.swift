import DecoderSpec
import GSLOracle
import SpecSupport
import Testing

/// The GRU in Double from its four formulas (Cho et al. 2014), with GSL's dgemm for the products and
/// gsl_sf_exp / GSL.tanh for the nonlinearities — no library code. Also returns, per component, a
/// bound on the Float step's error for given Float inputs (the state's error from earlier steps is
/// added by `GRUReference.sequence`).
enum GRUReference {
    struct Step { var state: [Double]; var bound: [Double]; var z: [Double] }

    /// One step from Float weights W [3h, n], U [3h, h], b [3h], input x [n], state hPrev [h].
    /// `transcendental`: the absolute error of the Float σ and tanh (≤ 4u for expf/tanhf on the naive
    /// path; ≤ 12u on the optimized path, whose exp is within 3 ULPs and tanh a = 2σ(2a) − 1 doubles σ's error).
    ///
    /// Bound, per component j (u = 2⁻²⁴; a dot product of k terms plus a bias errs by ≤ (k + 2)u·Σ|terms|):
    ///     δa_z, δa_r ≤ (n + h + 2)u·S,   δz, δr ≤ δa/4 + τ     (σ′ ≤ 1/4)
    ///     δs_k ≤ δr_k·|h_k| + u·|s_k|,    δa_h ≤ (n + h + 2)u·S + Σ_k |U_h,jk|·δs_k,   δh̃ ≤ δa_h + τ   (tanh′ ≤ 1)
    ///     δh ≤ δz·|h_{t−1} − h̃| + δh̃ + 4u·(|h_{t−1}| + |h̃|)
    static func step(w: [Float], u: [Float], b: [Float], x: [Float], hPrev: [Double], transcendental tau: Double) throws -> Step {
        let h = hPrev.count, n = x.count, ulp = 0x1p-24
        let W = w.doubles, U = u.doubles, B = b.doubles, X = x.doubles
        let wx = try GSL.dgemm(m: 3 * h, n: 1, k: n, a: W, b: X)
        let uzr = try GSL.dgemm(m: 2 * h, n: 1, k: h, a: Array(U[0..<(2 * h * h)]), b: hPrev)
        func sig(_ a: Double) throws -> Double { 1 / (1 + (try GSL.exp(-a))) }
        var z = [Double](repeating: 0, count: h), r = z, s = z, dz = z, dr = z
        for j in 0..<h {
            z[j] = try sig(wx[j] + uzr[j] + B[j])
            r[j] = try sig(wx[h + j] + uzr[h + j] + B[h + j])
            s[j] = r[j] * hPrev[j]
            for (gate, out) in [(0, 0), (1, 1)] {
                var sum = abs(B[gate * h + j])
                for k in 0..<n { sum += abs(W[(gate * h + j) * n + k] * X[k]) }
                for k in 0..<h { sum += abs(U[(gate * h + j) * h + k] * hPrev[k]) }
                let bound = Double(n + h + 2) * ulp * sum / 4 + tau
                if out == 0 { dz[j] = bound } else { dr[j] = bound }
            }
        }
        let us = try GSL.dgemm(m: h, n: 1, k: h, a: Array(U[(2 * h * h)...]), b: s)
        var state = [Double](repeating: 0, count: h), bound = state
        for j in 0..<h {
            let candidate = GSL.tanh(wx[2 * h + j] + us[j] + B[2 * h + j])
            var sum = abs(B[2 * h + j]), propagated = 0.0
            for k in 0..<n { sum += abs(W[(2 * h + j) * n + k] * X[k]) }
            for k in 0..<h {
                sum += abs(U[(2 * h + j) * h + k] * s[k])
                propagated += abs(U[(2 * h + j) * h + k]) * (dr[k] * abs(hPrev[k]) + ulp * abs(s[k]))
            }
            let dCandidate = Double(n + h + 2) * ulp * sum + propagated + tau
            state[j] = z[j] * hPrev[j] + (1 - z[j]) * candidate
            bound[j] = dz[j] * abs(hPrev[j] - candidate) + dCandidate + 4 * ulp * (abs(hPrev[j]) + abs(candidate))
        }
        return Step(state: state, bound: bound, z: z)
    }

    /// h_1 … h_T of a sequence x [T, n] from h_0 = 0, and the bound on the Float states: each step's
    /// own error plus the earlier error carried through ∂h_t/∂h_{t−1}, bounded row by row by
    ///     L_j = z_j + |h_{t−1,j} − h̃_j|·(1/4)Σ_k|U_z,jk| + (1 − z_j)·Σ_k |U_h,jk|·(1 + |h_{t−1,k}|·(1/4)Σ_l|U_r,kl|)
    /// (Σ_k |∂h_t,j/∂h_{t−1,k}| ≤ L_j, using |r| ≤ 1, σ′ ≤ 1/4, tanh′ ≤ 1), so carried_j ≤ L_j·max_k carried_k.
    static func sequence(_ cell: GRUCell, x: Matrix, transcendental tau: Double) throws -> (states: [Double], bound: [Double]) {
        let h = cell.hiddenSize
        let U = cell.hiddenWeight.storage.doubles
        var hPrev = [Double](repeating: 0, count: h), carried = 0.0
        var states: [Double] = [], bound: [Double] = []
        for t in 0..<x.rows {
            let s = try step(w: cell.inputWeight.storage, u: cell.hiddenWeight.storage, b: cell.bias, x: x.row(t), hPrev: hPrev, transcendental: tau)
            var worst = 0.0
            for j in 0..<h {
                let rowZ = (0..<h).reduce(0.0) { $0 + abs(U[j * h + $1]) }
                var rowH = 0.0
                for k in 0..<h {
                    let rowR = (0..<h).reduce(0.0) { $0 + abs(U[(h + k) * h + $1]) }
                    rowH += abs(U[(2 * h + j) * h + k]) * (1 + abs(hPrev[k]) * rowR / 4)
                }
                let lipschitz = s.z[j] + 2 * rowZ / 4 + (1 - s.z[j]) * rowH  // |h_{t−1} − h̃| ≤ 2
                let b = s.bound[j] + lipschitz * carried
                bound.append(b)
                worst = max(worst, b)
            }
            carried = worst
            states += s.state
            hPrev = s.state
        }
        return (states, bound)
    }
}

@Suite("GRU: the cell against its formulas in Double (GSL), a closed form, batched vs naive; the GRU translator's step is the documents' corrected output formula")
struct GRUSpecs {
    static let u = 0x1p-24

    static func cell(input: Int, hidden: Int, seed: UInt) throws -> GRUCell {
        // Weights of scale 1/√h … 1 so every gate is away from saturation and from linearity.
        try GRUCell(inputWeight: Inputs.matrix(rows: 3 * hidden, cols: input, seed: seed, range: -0.9...0.9),
                    hiddenWeight: Inputs.matrix(rows: 3 * hidden, cols: hidden, seed: seed + 1, range: -0.9...0.9),
                    bias: Inputs.matrix(rows: 1, cols: 3 * hidden, seed: seed + 2, range: -0.5...0.5).storage)
    }

    @Test("One step (naive, the formulas letter by letter) vs the GSL Double reference, within the derived bound",
          arguments: [(1, 1), (3, 5), (8, 17), (20, 33)])
    func stepAgainstGSL(sizes: (input: Int, hidden: Int)) throws {
        let c = try Self.cell(input: sizes.input, hidden: sizes.hidden, seed: 700)
        let x = Inputs.matrix(rows: 1, cols: sizes.input, seed: 710, range: -2...2).storage
        let h = Inputs.matrix(rows: 1, cols: sizes.hidden, seed: 711).storage
        let got = try c.step(input: x, state: h)
        let ref = try GRUReference.step(w: c.inputWeight.storage, u: c.hiddenWeight.storage, b: c.bias, x: x, hPrev: h.doubles, transcendental: 4 * Self.u)
        for j in got.indices {
            #expect(abs(Double(got[j]) - ref.state[j]) <= ref.bound[j], "h[\(j)] = \(got[j]), GSL \(ref.state[j]), bound \(ref.bound[j])")
        }
    }

    @Test("Sequences on every path vs GSL: the naive step loop, the optimized batched step, and the packed training forward of ragged sequences",
          arguments: KernelPath.allCases)
    func sequencesAgainstGSL(path: KernelPath) throws {
        let (n, h) = (7, 19)
        let c = try Self.cell(input: n, hidden: h, seed: 720)
        let tau = (path == .naive ? 4 : 12) * Self.u
        let lengths = [5, 1, 8, 3, 8]
        let xs = lengths.enumerated().map { i, t in Inputs.matrix(rows: t, cols: n, seed: 730 + UInt(i), range: -1.5...1.5) }
        // One sequence at a time.
        for x in xs {
            let got = try c(x, path: path)
            let ref = try GRUReference.sequence(c, x: x, transcendental: tau)
            let v = compare(got.storage, ref.states, .absolute(ref.bound.max()!), "one sequence, \(path)")
            #expect(v.passed, "\(v)")
            for k in ref.states.indices { #expect(abs(Double(got.storage[k]) - ref.states[k]) <= ref.bound[k], "state \(k), \(path)") }
        }
        // All of them packed time-major (the training layout).
        let packing = try GRUPacking(lengths: lengths)
        var rows = [Float](repeating: 0, count: packing.rowCount * n)
        for (b, x) in xs.enumerated() {
            for t in 0..<x.rows { for k in 0..<n { rows[packing.row(time: t, sequence: b) * n + k] = x.storage[t * n + k] } }
        }
        let trace = try c.trainingForward(Matrix(rows: packing.rowCount, cols: n, storage: rows), packing: packing, path: path)
        for (b, x) in xs.enumerated() {
            let ref = try GRUReference.sequence(c, x: x, transcendental: tau)
            for t in 0..<x.rows {
                for j in 0..<h {
                    let got = Double(trace.states.storage[packing.row(time: t, sequence: b) * h + j])
                    #expect(abs(got - ref.states[t * h + j]) <= ref.bound[t * h + j], "packed sequence \(b), t \(t), j \(j), \(path)")
                }
            }
        }
    }

    /// W = 0, U = 0: z = σ(b_z) and h̃ = tanh(b_h) are constants, so h_t = h̃ + zᵗ·(h_0 − h̃).
    /// Error: each step adds ≤ τ (σ, tanh) + 4u·(|h| + |h̃|) + τ·2 (z's error times |h − h̃| ≤ 2) and
    /// multiplies the earlier error by z < 1, so after T steps it is below T·(3τ + 8u).
    @Test("Closed form with W = U = 0: h_t = tanh(b_h) + σ(b_z)ᵗ·(h_0 − tanh(b_h)), every path", arguments: KernelPath.allCases)
    func closedForm(path: KernelPath) throws {
        let h = 21, steps = 30
        let bias = Inputs.matrix(rows: 1, cols: 3 * h, seed: 740, range: -2...2).storage
        let c = try GRUCell(inputWeight: Matrix(rows: 3 * h, cols: 4), hiddenWeight: Matrix(rows: 3 * h, cols: h), bias: bias)
        let h0 = Inputs.matrix(rows: 1, cols: h, seed: 741).storage
        let got = try c(Inputs.matrix(rows: steps, cols: 4, seed: 742), initialState: h0, path: path)
        let tau = (path == .naive ? 4 : 12) * Self.u
        for t in 1...steps {
            for j in 0..<h {
                let z = 1 / (1 + (try GSL.exp(-Double(bias[j])))), candidate = GSL.tanh(Double(bias[2 * h + j]))
                let expected = candidate + (try GSL.exp(Double(t) * (try GSL.log(z)))) * (Double(h0[j]) - candidate)
                let observed = Double(got.storage[(t - 1) * h + j])
                #expect(abs(observed - expected) <= Double(t) * (3 * tau + 8 * Self.u), "t \(t), j \(j): \(observed) vs \(expected)")
            }
        }
    }

    static func tinyModel(path: KernelPath = .naive) throws -> GRUTranslationModel {
        var m = try GRUTranslationModel.seeded(GRUTranslationConfig(sourceVocabularySize: 9, targetVocabularySize: 11, embeddingWidth: 5,
                                                                    hiddenWidth: 6, contextLength: 12), seed: 3, path: path)
        var rng = SeededRNG(seed: 4)
        m.setFlattenedParameters(m.flattenedParameters().map { $0 == 0 ? rng.uniform(-0.3, 0.3) : $0 * 2 })
        return m
    }

    /// The decoder's step is doc 001's generation step corrected (`ModelFormulaErrata.recurrentStep`
    /// with the GRU and attention as the state update f): the distribution comes from h_t, so it
    /// changes with the token read at step t. Same naive operations in the same order on both sides,
    /// so the states and probabilities are bitwise equal.
    @Test("The GRU decoder's step equals recurrentStep(f = GRU with attention): softmax(W_o·h_t + b_o) of the state after reading y_{t−1}")
    func decoderStepIsTheCorrectedOutputFormula() throws {
        let model = try Self.tinyModel()
        let memory = try model.encode([4, 7, 3, 2])
        var state = memory.row(memory.rows - 1)
        var outputs: [[Float]] = []
        for token in [1, 5, 5, 8] {
            let mine = try model.decoderStep(token: token, state: state, memory: memory)
            var p = mine.logits
            let classes = p.count
            p.withUnsafeMutableBufferPointer { Softmax.rows(.naive, $0.baseAddress!, rows: 1, cols: classes) }
            let x = try model.targetEmbedding.lookup([token], path: .naive).storage
            let reference = try ModelFormulaErrata.recurrentStep(wo: model.output.weight, bo: model.output.bias!, previousState: state, input: x) { h, x in
                let c = try GRUTranslationModel.attend(memory: memory, query: h, path: .naive).context
                return try model.decoder.step(input: x + c, state: h)
            }
            #expect(mine.state == reference.state)
            #expect(p == reference.output)
            outputs.append(p)
            state = mine.state
        }
        // Two different tokens read from the same state: two different distributions (doc 001's formula gives one).
        let a = try model.decoderStep(token: 5, state: state, memory: memory), b = try model.decoderStep(token: 6, state: state, memory: memory)
        #expect(zip(a.logits, b.logits).map { abs($0 - $1) }.max()! > 1e-3)
    }

    /// The packed teacher-forced training forward (time-major, batched steps) equals decoding each
    /// pair one token at a time through `GRUConditionedDecoder` (the inference path). Same formulas,
    /// other summation orders and σ/tanh kernels on the optimized path: 1e-4 absolute + relative on
    /// logits of size O(1–10) is ≈ 100ε·|z|, while a slip in packing or attention changes them by O(0.1–1).
    @Test("Training forward (packed, batched) equals step-by-step decoding per pair, every path", arguments: KernelPath.allCases)
    func trainingForwardMatchesInference(path: KernelPath) throws {
        let model = try Self.tinyModel(path: path)
        let batch = try Seq2SeqBatch(pairs: [(source: [3, 4, 5, 2], target: [3, 5]), (source: [6, 2], target: [4, 4, 5, 9, 10]),
                                             (source: [8, 7, 6, 5, 4, 2], target: [7])], bos: 1, eos: 2)
        let z = try model.logits(batch, path: path)
        var row = 0
        for (s, input) in zip(batch.sources, batch.decoderInputs) {
            let decoder = try model.conditioned(on: s)
            var cache = decoder.makeCache()
            for (t, token) in input.enumerated() {
                let reference = try decoder.logits(appending: [token], to: &cache)
                let observed = Array(z.storage[((row + t) * z.cols)..<((row + t + 1) * z.cols)])
                let v = compare(observed, reference.map(Double.init), .mixed(absolute: 1e-4, relative: 1e-4), "row \(row + t)")
                #expect(v.passed, "\(v)")
            }
            row += input.count
        }
    }

    @Test("Packing: ranks longest first, n_t sequences still running at step t, rows contiguous per step")
    func packing() throws {
        let p = try GRUPacking(lengths: [2, 4, 1, 4])
        #expect(p.order == [1, 3, 0, 2])
        #expect(p.counts == [4, 3, 2, 2])
        #expect(p.offsets == [0, 4, 7, 9])
        #expect(p.rowCount == 11)
        #expect(p.timeMajor([[10, 11], [20, 21, 22, 23], [30], [40, 41, 42, 43]]) == [20, 40, 10, 30, 21, 41, 11, 22, 42, 23, 43])
    }
}
