import DecoderSpec
import Foundation
import GSLOracle
import SpecSupport
import Testing

// Checkpoints written by Hugging Face transformers itself, with the framework's own outputs
// (Tests/Fixtures/hf/, made by scripts/make-hf-fixtures). The round trips of CheckpointSpecs go
// through our own writer, whose transposes mirror the reader's; these files do not.
//
// Each stage (embeddings, every block, the head) is run on the framework's own Float input for it and
// compared with the framework's output of that stage. Bound (docs/tolerances.md, "Reference-framework
// fixtures"): from the same Float input both sides evaluate the same exact function in Float32 with
// different summation orders, so |ours − theirs| ≤ B_ours + B_theirs = 2B where B is a first-order
// forward error bound that holds for ANY Float evaluation order. `ErrorBudget` computes B by running the
// stage once more in Double from the checkpoint's tensors (read here by name, independently of the
// loader under test) and carrying a per-token 2-norm error bound through it: γ_n per dot product,
// ‖W‖₂ per linear map, max|γ|/σ per LayerNorm, e^{2E} per softmax, Lipschitz 1.13 per GELU.
// End to end (ids → output) the same worst-case bound compounds over ~8 stages per layer and is
// vacuous (> 1 for these models), hence the per-stage comparisons.

let hfFixtures = projectRoot.appendingPathComponent("Tests/Fixtures/hf")

struct GPT2Fixture: Decodable {
    struct Case: Decodable {
        let ids: [Int]; let logits: [[Double]]; let block_inputs: [[[Double]]]; let hidden_before_final_norm: [[Double]]
    }
    let cases: [Case]
}

struct BERTFixture: Decodable {
    struct Case: Decodable { let ids: [Int]; let token_type_ids: [Int]; let last_hidden_state: [[Double]]; let hidden_states: [[[Double]]] }
    let cases: [Case]
}

struct MiniLMFixture: Decodable {
    struct Case: Decodable { let text: String; let ids: [Int]; let embedding: [Double] }
    let cases: [Case]
}

func readFixture<T: Decodable>(_ type: T.Type, _ relativePath: String) throws -> T {
    try JSONDecoder().decode(T.self, from: Data(contentsOf: hfFixtures.appendingPathComponent(relativePath)))
}

/// Float's unit roundoff u = 2⁻²⁴ and γ_n = n·u/(1 − n·u).
private let unitRoundoff = 0x1p-24
private func gamma(_ n: Int) -> Double { Double(n) * unitRoundoff / (1 - Double(n) * unitRoundoff) }
private func norm2<S: Sequence<Double>>(_ x: S) -> Double { x.reduce(0) { $0 + $1 * $1 }.squareRoot() }

/// Row-major Double activations [rows, cols] with a per-row bound on the 2-norm of a Float evaluation's error.
struct Tracked {
    var rows: Int, cols: Int
    var value: [Double]
    var error: [Double]
    func row(_ t: Int) -> ArraySlice<Double> { value[(t * cols)..<((t + 1) * cols)] }
}

/// A first-order forward error bound for one Float32 evaluation of a checkpoint (any summation order).
struct ErrorBudget {
    let file: SafeTensorsFile
    let prefix: String

    func tensor(_ name: String) throws -> (rows: Int, cols: Int, values: [Double]) {
        let m = try file.matrix(prefix + name)
        return (m.rows, m.cols, m.storage.map(Double.init))
    }

    /// An upper bound on the spectral norm: ‖A‖₂ ≤ ‖(G)^(2^m)‖_F^(1/2^(m+1)) with G the smaller Gram
    /// matrix AAᵀ or AᵀA (rank r: at most r^(1/2^(m+1)) times ‖A‖₂; m = 4 gives ≤ 1.21× for r ≤ 384).
    static func spectralNormBound(rows: Int, cols: Int, _ a: [Double]) throws -> Double {
        let n = min(rows, cols)
        var g = try GSL.dgemm(transA: rows > cols, transB: rows <= cols, m: n, n: n, k: max(rows, cols), a: a, b: a)
        var logScale = 0.0  // G_true^(2^i) = G · e^(logScale)
        for _ in 0..<4 {
            let f = norm2(g)
            g = g.map { $0 / f }
            logScale += log(f)
            g = try GSL.dgemm(m: n, n: n, k: n, a: g, b: g)
            logScale *= 2
        }
        return exp((log(norm2(g)) + logScale) / 32)
    }

    /// y = x·W + b with W stored [in, out] (`inOut`, GPT-2's Conv1D) or [out, in] (nn.Linear).
    /// ‖Δy_t‖ ≤ ‖W‖₂·‖Δx_t‖ + ‖γ_{in+1}(|x_t|·|W| + |b|)‖.
    func linear(_ x: Tracked, _ base: String, inOut: Bool) throws -> Tracked {
        let w = try tensor("\(base).weight"), b = try tensor("\(base).bias").values
        let (nIn, nOut) = inOut ? (w.rows, w.cols) : (w.cols, w.rows)
        precondition(nIn == x.cols)
        let y = try GSL.dgemm(transB: !inOut, m: x.rows, n: nOut, k: nIn, a: x.value, b: w.values)
        let absY = try GSL.dgemm(transB: !inOut, m: x.rows, n: nOut, k: nIn, a: x.value.map(abs), b: w.values.map(abs))
        let lipschitz = try ErrorBudget.spectralNormBound(rows: w.rows, cols: w.cols, w.values)
        var out = Tracked(rows: x.rows, cols: nOut, value: y, error: [])
        for t in 0..<x.rows {
            for j in 0..<nOut { out.value[t * nOut + j] += b[j] }
            let rounding = norm2((0..<nOut).map { gamma(nIn + 1) * (absY[t * nOut + $0] + abs(b[$0])) })
            out.error.append(lipschitz * x.error[t] + rounding)
        }
        return out
    }

    /// LayerNorm γ⊙(x − μ)/σ + β, σ = √(var + ε). Its Jacobian is diag(γ)(P − x̂x̂ᵀ/d)/σ with P − x̂x̂ᵀ/d
    /// an orthogonal projection, so ‖Δy‖ ≤ max|γ|/σ·‖Δx‖. Rounding per element (any of two-pass,
    /// Welford, E[x²] − μ²): |γ_j|[γ_d(1 + |μ|/σ) + |x̂_j|(½γ_{d+3}(1 + μ²/σ²) + 3u)] + 2u(|γ_j x̂_j| + |β_j|).
    func layerNorm(_ x: Tracked, _ base: String, epsilon: Double) throws -> Tracked {
        let hasWeight = file.tensors["\(prefix)\(base).weight"] != nil
        let g = try tensor("\(base).\(hasWeight ? "weight" : "gamma")").values, b = try tensor("\(base).\(hasWeight ? "bias" : "beta")").values
        let d = x.cols, u = unitRoundoff, maxGamma = g.map(abs).max()!
        var out = x
        for t in 0..<x.rows {
            let row = Array(x.row(t))
            let mu = row.reduce(0, +) / Double(d)
            let variance = row.reduce(0) { $0 + ($1 - mu) * ($1 - mu) } / Double(d)
            let sigma = (variance + epsilon).squareRoot()
            var rounding = [Double]()
            for j in 0..<d {
                let xhat = (row[j] - mu) / sigma
                out.value[t * d + j] = g[j] * xhat + b[j]
                rounding.append(abs(g[j]) * (gamma(d) * (1 + abs(mu) / sigma) + abs(xhat) * (0.5 * gamma(d + 3) * (1 + mu * mu / (sigma * sigma)) + 3 * u))
                                + 2 * u * (abs(g[j] * xhat) + abs(b[j])))
            }
            out.error[t] = maxGamma / sigma * x.error[t] + norm2(rounding)
        }
        return out
    }

    /// GELU, exact (erf) or tanh form: |gelu'| ≤ 1.13, and a Float evaluation is within 16u·|x| + u·|y|
    /// (a few roundings of the erf/tanh argument, each moving x·Φ by ≤ u·|x|, and of the product).
    static func gelu(_ x: Tracked, tanhForm: Bool) -> Tracked {
        var out = x
        for t in 0..<x.rows {
            for j in 0..<x.cols {
                let v = x.value[t * x.cols + j]
                out.value[t * x.cols + j] = tanhForm ? 0.5 * v * (1 + tanh((2 / Double.pi).squareRoot() * (v + 0.044715 * v * v * v)))
                                                     : 0.5 * v * (1 + erf(v / 2.0.squareRoot()))
            }
            out.error[t] = 1.13 * x.error[t] + 16 * unitRoundoff * norm2(x.row(t).map(abs)) + unitRoundoff * norm2(out.row(t))
        }
        return out
    }

    /// a + b: errors add, plus one rounding.
    static func add(_ a: Tracked, _ b: Tracked) -> Tracked {
        var out = a
        for i in out.value.indices { out.value[i] += b.value[i] }
        for t in 0..<a.rows { out.error[t] = a.error[t] + b.error[t] + unitRoundoff * norm2(out.row(t)) }
        return out
    }

    /// Multi-head attention on q, k, v [T, d] (heads of width h = d/heads), causal or not.
    /// Scores s_ij = q_i·k_j/√h: |Δs_ij| ≤ (‖Δq_i‖‖k_j‖ + ‖q_i‖‖Δk_j‖ + γ_{h+1}Σ|q_ip k_jp|)/√h ≤ E_i.
    /// Softmax: every weight moves by a relative ≤ e^{2E_i}(1 + ρ_ij) − 1, ρ_ij = u|s_ij − max s| + (1.37T + 14)u
    /// (its own rounding, docs/tolerances.md). Output Σ p_ij v_j: ‖Δ‖ ≤ Σ|Δp_ij|‖v_j‖ + Σ p̂_ij‖Δv_j‖ + γ_T Σ p_ij‖v_j‖.
    static func attention(q: Tracked, k: Tracked, v: Tracked, heads: Int, causal: Bool) -> Tracked {
        let T = q.rows, d = q.cols, h = d / heads, scale = 1 / Double(h).squareRoot(), u = unitRoundoff
        var out = Tracked(rows: T, cols: d, value: [Double](repeating: 0, count: T * d), error: [Double](repeating: 0, count: T))
        for i in 0..<T {
            let keys = causal ? i + 1 : T
            var squaredError = 0.0
            for hd in 0..<heads {
                let cols = (hd * h)..<((hd + 1) * h)
                func slice(_ m: Tracked, _ t: Int) -> [Double] { cols.map { m.value[t * d + $0] } }
                let qi = slice(q, i)
                var s = [Double](), bound = 0.0
                for j in 0..<keys {
                    let kj = slice(k, j)
                    s.append(zip(qi, kj).reduce(0) { $0 + $1.0 * $1.1 } * scale)
                    let absDot = zip(qi, kj).reduce(0) { $0 + abs($1.0 * $1.1) }
                    bound = max(bound, (q.error[i] * norm2(kj) + norm2(qi) * k.error[j] + gamma(h + 1) * absDot) * scale)
                }
                let top = s.max()!
                let e = s.map { exp($0 - top) }, sum = e.reduce(0, +)
                var headError = 0.0
                for j in 0..<keys {
                    let p = e[j] / sum, vj = slice(v, j)
                    let relative = exp(2 * bound) * (1 + u * abs(s[j] - top) + (1.37 * Double(keys) + 14) * u) - 1
                    for c in 0..<h { out.value[i * d + hd * h + c] += p * vj[c] }
                    headError += p * relative * norm2(vj) + p * (1 + relative) * v.error[j] + gamma(keys) * p * norm2(vj)
                }
                squaredError += headError * headError
            }
            out.error[i] = squaredError.squareRoot()
        }
        return out
    }

    func selfAttention(_ x: Tracked, query: String, key: String, value: String, output: String, heads: Int, causal: Bool) throws -> Tracked {
        try linear(ErrorBudget.attention(q: linear(x, query, inOut: false), k: linear(x, key, inOut: false),
                                         v: linear(x, value, inOut: false), heads: heads, causal: causal), output, inOut: false)
    }

    /// Rows of an embedding table [V, d] for `ids`.
    func embed(_ name: String, _ ids: [Int]) throws -> Tracked {
        let table = try tensor(name)
        return Tracked(rows: ids.count, cols: table.cols, value: ids.flatMap { table.values[($0 * table.cols)..<(($0 + 1) * table.cols)] },
                       error: [Double](repeating: 0, count: ids.count))
    }
}

extension ErrorBudget {
    /// A stage's Float input, exact (both sides start from the same Floats).
    static func input(_ rows: [[Double]]) -> Tracked {
        Tracked(rows: rows.count, cols: rows[0].count, value: rows.flatMap { $0 }, error: [Double](repeating: 0, count: rows.count))
    }

    /// GPT-2 block l (pre-LN, Conv1D [in, out], c_attn = [Q | K | V] on the output axis).
    func gpt2Block(_ x: Tracked, layer l: Int, heads: Int, epsilon: Double) throws -> Tracked {
        let p = "h.\(l)", d = x.cols
        let qkv = try linear(try layerNorm(x, "\(p).ln_1", epsilon: epsilon), "\(p).attn.c_attn", inOut: true)
        func part(_ k: Int) -> Tracked {
            var value = [Double]()
            for t in 0..<qkv.rows {
                let start: Int = t * 3 * d + k * d
                value += qkv.value[start..<(start + d)]
            }
            return Tracked(rows: qkv.rows, cols: d, value: value, error: qkv.error)
        }
        let attended = ErrorBudget.attention(q: part(0), k: part(1), v: part(2), heads: heads, causal: true)
        let h = ErrorBudget.add(x, try linear(attended, "\(p).attn.c_proj", inOut: true))
        let m = try layerNorm(h, "\(p).ln_2", epsilon: epsilon)
        return ErrorBudget.add(h, try linear(ErrorBudget.gelu(try linear(m, "\(p).mlp.c_fc", inOut: true), tanhForm: true), "\(p).mlp.c_proj", inOut: true))
    }

    /// GPT-2's head LN_f(h)·wteᵀ, per logit: |Δl_tv| ≤ ‖e_v‖·‖Δy_t‖ + γ_d Σ_j |y_tj e_vj|.
    func gpt2Head(_ h: Tracked, epsilon: Double) throws -> (logits: [Double], bound: [Double]) {
        let y = try layerNorm(h, "ln_f", epsilon: epsilon), d = h.cols
        let wte = try tensor("wte.weight")
        var logits = [Double](), bound = [Double]()
        for t in 0..<y.rows {
            for v in 0..<wte.rows {
                let e = wte.values[(v * d)..<((v + 1) * d)]
                logits.append(zip(y.row(t), e).reduce(0) { $0 + $1.0 * $1.1 })
                bound.append(norm2(e) * y.error[t] + gamma(d) * zip(y.row(t), e).reduce(0) { $0 + abs($1.0 * $1.1) })
            }
        }
        return (logits, bound)
    }

    /// BERT's embeddings: LN(E_word + E_pos + E_type) (two roundings in the sum).
    func bertEmbeddings(_ ids: [Int], types: [Int], epsilon: Double) throws -> Tracked {
        let sum = ErrorBudget.add(ErrorBudget.add(try embed("embeddings.word_embeddings.weight", ids),
                                                  try embed("embeddings.position_embeddings.weight", Array(0..<ids.count))),
                                  try embed("embeddings.token_type_embeddings.weight", types))
        return try layerNorm(sum, "embeddings.LayerNorm", epsilon: epsilon)
    }

    /// BERT layer l (post-LN, nn.Linear [out, in]).
    func bertLayer(_ x: Tracked, layer l: Int, heads: Int, epsilon: Double, tanhGELU: Bool) throws -> Tracked {
        let p = "encoder.layer.\(l)"
        let a = try selfAttention(x, query: "\(p).attention.self.query", key: "\(p).attention.self.key", value: "\(p).attention.self.value",
                                  output: "\(p).attention.output.dense", heads: heads, causal: false)
        let h = try layerNorm(ErrorBudget.add(x, a), "\(p).attention.output.LayerNorm", epsilon: epsilon)
        let f = try linear(ErrorBudget.gelu(try linear(h, "\(p).intermediate.dense", inOut: false), tanhForm: tanhGELU), "\(p).output.dense", inOut: false)
        return try layerNorm(ErrorBudget.add(h, f), "\(p).output.LayerNorm", epsilon: epsilon)
    }
}

/// max_i |a_i − r_i| / bound_i, with the error and bound there (NaN and ±∞ count as failures).
func worstRatio(_ actual: [Float], _ reference: [Double], _ bound: [Double]) -> (ratio: Double, index: Int, error: Double, bound: Double) {
    precondition(actual.count == reference.count && reference.count == bound.count, "\(actual.count) vs \(reference.count) vs \(bound.count)")
    var worst = (ratio: 0.0, index: 0, error: 0.0, bound: bound.first ?? 0)
    for i in reference.indices {
        let err = abs(Double(actual[i]) - reference[i])
        if err / bound[i] > worst.ratio || !err.isFinite { worst = (err.isFinite ? err / bound[i] : .infinity, i, err, bound[i]) }
    }
    return worst
}

/// Elementwise bound 2·B from a stage's per-row 2-norm bound B (|Δ_tj| ≤ ‖Δ_t‖).
func twoSided(_ b: Tracked) -> [Double] { (0..<b.rows).flatMap { t in [Double](repeating: 2 * b.error[t], count: b.cols) } }

func matrix(_ rows: [[Double]]) throws -> Matrix { try Matrix(rows.map { $0.map(Float.init) }) }

/// One stage's comparison: checks the bound and returns a one-line summary.
func expectStage(_ name: String, _ actual: Matrix, _ reference: [[Double]], _ bound: [Double]) -> Double {
    let w = worstRatio(actual.storage, reference.flatMap { $0 }, bound)
    #expect(w.ratio <= 1, "\(name): off by \(w.error) at element \(w.index), bound \(w.bound)")
    return w.error
}

@Suite("Checkpoints written by Hugging Face transformers load to the framework's own outputs")
struct ReferenceFrameworkSpecs {
    @Test("tiny GPT-2 (save_pretrained): embeddings, every block and the tied head match transformers stage by stage, every backend")
    func tinyGPT2() throws {
        let dir = hfFixtures.appendingPathComponent("tiny-gpt2")
        let fixture = try readFixture(GPT2Fixture.self, "tiny-gpt2/outputs.json")
        let config = try GPT2Config.read(contentsOf: dir.appendingPathComponent("config.json"))
        let budget = ErrorBudget(file: try SafeTensorsFile.read(contentsOf: dir.appendingPathComponent("model.safetensors")), prefix: "transformer.")
        #expect(fixture.cases.map(\.ids.count).contains(1))
        for backend in Backend.allCases {
            let model = try DecoderOnlyModel.load(directory: dir, backend: backend)
            var worst = (block: 0.0, logit: 0.0, ratio: 0.0)
            for c in fixture.cases {
                let tag = "\(backend), T = \(c.ids.count)"
                // E[ids] + P: one correctly rounded Float addition on both sides, so equal bit for bit.
                let embedded = try model.positions.add(to: model.tokenEmbedding.lookup(c.ids))
                #expect(embedded == (try matrix(c.block_inputs[0])), "\(tag): embeddings")
                let outputs = Array(c.block_inputs.dropFirst()) + [c.hidden_before_final_norm]
                for l in 0..<config.nLayer {
                    let b = try budget.gpt2Block(ErrorBudget.input(c.block_inputs[l]), layer: l, heads: config.nHead, epsilon: config.layerNormEpsilon)
                    let ours = try model.layers[l](matrix(c.block_inputs[l]), backend: backend)
                    worst.block = max(worst.block, expectStage("\(tag), block \(l)", ours, outputs[l], twoSided(b)))
                    worst.ratio = max(worst.ratio, worstRatio(ours.storage, outputs[l].flatMap { $0 }, twoSided(b)).ratio)
                }
                let head = try budget.gpt2Head(ErrorBudget.input(c.hidden_before_final_norm), epsilon: config.layerNormEpsilon)
                let logits = try model.tokenEmbedding.tiedLogits(model.finalNorm(matrix(c.hidden_before_final_norm), backend: backend), variant: backend.gemm)
                worst.logit = max(worst.logit, expectStage("\(tag), head", logits, c.logits, head.bound.map { 2 * $0 }))
                // transformers' logits against the Double evaluation: within B alone (a check on B itself).
                #expect(worstRatio(c.logits.flatMap { $0 }.map(Float.init), head.logits, head.bound).ratio <= 1)
            }
            print("tiny GPT-2 \(backend): worst |Δ| per block \(worst.block) (\(String(format: "%.2g", worst.ratio)) of its bound), per logit \(worst.logit)")
        }
    }

    @Test("tiny BERT (save_pretrained, with a pooler to ignore): embeddings and every layer match transformers stage by stage, token types 0 and 1, every backend")
    func tinyBERT() throws {
        let dir = hfFixtures.appendingPathComponent("tiny-bert")
        let fixture = try readFixture(BERTFixture.self, "tiny-bert/outputs.json")
        let config = try BERTConfig.read(contentsOf: dir.appendingPathComponent("config.json"))
        let budget = ErrorBudget(file: try SafeTensorsFile.read(contentsOf: dir.appendingPathComponent("model.safetensors")), prefix: "")
        #expect(fixture.cases.contains { $0.token_type_ids.contains(1) })
        let bounds = try fixture.cases.map {
            try bertBounds(budget, ids: $0.ids, types: $0.token_type_ids, states: $0.hidden_states, layers: config.numHiddenLayers,
                           heads: config.numAttentionHeads, epsilon: config.layerNormEps, tanhGELU: false)
        }
        for backend in Backend.allCases {
            let model = try EncoderModel.load(directory: dir, backend: backend)
            var worst = 0.0
            for (c, bound) in zip(fixture.cases, bounds) {
                worst = max(worst, try bertStages(model, ids: c.ids, types: c.token_type_ids, states: c.hidden_states, bounds: bound,
                                                  tag: "\(backend), T = \(c.ids.count)"))
                #expect(c.hidden_states.last! == c.last_hidden_state)
            }
            print("tiny BERT \(backend): worst |Δ| per stage \(worst)")
        }
    }

    @Test("all-MiniLM-L6-v2: WordPiece ids equal the model's own tokenizer's; layer by layer against transformers; sentence embeddings of 4 sentences against sentence-transformers, every backend",
          .enabled(if: miniLMFetched, "MiniLM is not fetched: run scripts/fetch-data (or make fetch-data) to enable this spec"))
    func miniLM() throws {
        let fixture = try readFixture(MiniLMFixture.self, "minilm-embeddings.json")
        let tokenizer = try WordPieceTokenizer.load(modelDirectory: miniLMDirectory)
        let config = try BERTConfig.read(contentsOf: miniLMDirectory.appendingPathComponent("config.json"))
        let budget = ErrorBudget(file: try SafeTensorsFile.read(contentsOf: miniLMDirectory.appendingPathComponent("model.safetensors")), prefix: "")
        let statesFile = try SafeTensorsFile.read(contentsOf: hfFixtures.appendingPathComponent("minilm-hidden-states.safetensors"))
        let stateShape = try statesFile.shape("hidden_states")  // [layers + 1, T, d]
        let flat = try statesFile.floats("hidden_states").values.map(Double.init)
        let states = (0..<stateShape[0]).map { l in (0..<stateShape[1]).map { t in Array(flat[((l * stateShape[1] + t) * stateShape[2])..<((l * stateShape[1] + t + 1) * stateShape[2])]) } }
        for c in fixture.cases { #expect(tokenizer.encode(c.text) == c.ids, "\(c.text)") }
        let ids = fixture.cases[0].ids, types = [Int](repeating: 0, count: fixture.cases[0].ids.count)
        let bounds = try bertBounds(budget, ids: ids, types: types, states: states, layers: config.numHiddenLayers,
                                    heads: config.numAttentionHeads, epsilon: config.layerNormEps, tanhGELU: config.hiddenAct == .geluTanh)
        for backend in Backend.allCases {
            let model = try EncoderModel.load(directory: miniLMDirectory, backend: backend)
            let stage = try bertStages(model, ids: ids, types: types, states: states, bounds: bounds,
                                       tag: "MiniLM \(backend) \"\(fixture.cases[0].text)\"")
            // End to end (ids → embedding) the worst-case bound is vacuous; the stated target of
            // docs/tolerances.md ("Reference-framework fixtures") applies: 1e-5 absolute per component.
            var worst = 0.0
            for c in fixture.cases {
                let w = worstRatio(try model.sentenceEmbedding(c.ids), c.embedding, [Double](repeating: 1e-5, count: c.embedding.count))
                #expect(w.ratio <= 1, "\(backend), \"\(c.text)\": off by \(w.error) at component \(w.index)")
                worst = max(worst, w.error)
            }
            print("MiniLM \(backend): worst |Δ| per stage (T = \(fixture.cases[0].ids.count)) \(stage); worst |Δz| of the 4 sentence embeddings \(worst)")
        }
    }

    /// The two-sided bounds of BERT's stages (embeddings, then every layer), each from the framework's Float input.
    func bertBounds(_ budget: ErrorBudget, ids: [Int], types: [Int], states: [[[Double]]], layers: Int,
                    heads: Int, epsilon: Double, tanhGELU: Bool) throws -> [[Double]] {
        try [twoSided(budget.bertEmbeddings(ids, types: types, epsilon: epsilon))] + (0..<layers).map { l in
            twoSided(try budget.bertLayer(ErrorBudget.input(states[l]), layer: l, heads: heads, epsilon: epsilon, tanhGELU: tanhGELU))
        }
    }

    /// BERT's embeddings and every layer, each from the framework's Float input; returns the worst |Δ|.
    func bertStages(_ model: EncoderModel, ids: [Int], types: [Int], states: [[[Double]]], bounds: [[Double]], tag: String) throws -> Double {
        let gather: EmbeddingGather.Variant = model.backend == .naive ? .naive : .optimized
        var sum = try model.positions.add(to: model.wordEmbedding.lookup(ids, variant: gather))
        sum = try sum.adding(model.tokenTypeEmbedding.lookup(types, variant: gather), "E_word + E_pos + E_type")
        let embedded = try model.embeddingNorm(sum, backend: model.backend)
        var worst = expectStage("\(tag), embeddings", embedded, states[0], bounds[0])
        for l in 0..<model.layers.count {
            worst = max(worst, expectStage("\(tag), layer \(l)", try model.layers[l](matrix(states[l]), backend: model.backend), states[l + 1], bounds[l + 1]))
        }
        return worst
    }
}
