// The gated recurrent unit: the recurrence the source documents' decoder formulas assume
// (h_t from h_{t−1} and the current input), as a baseline beside attention. See
// docs/finetune-translation.md ("Recurrence vs attention: the GRU baseline").
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Kernels
import TensorCore

/// One GRU layer (Cho et al. 2014, "Learning Phrase Representations using RNN Encoder–Decoder
/// for Statistical Machine Translation", eqs. 5–8), one step from state h_{t−1} [h] and input x_t [in]:
///
///     z_t = σ(W_z·x_t + U_z·h_{t−1} + b_z)                 update gate
///     r_t = σ(W_r·x_t + U_r·h_{t−1} + b_r)                 reset gate
///     h̃_t = tanh(W_h·x_t + U_h·(r_t ⊙ h_{t−1}) + b_h)       candidate state
///     h_t = z_t ⊙ h_{t−1} + (1 − z_t) ⊙ h̃_t                 new state
///
/// σ(a) = 1/(1 + e^{−a}). As in the paper, z near 1 keeps the old state and the reset gate acts
/// on h_{t−1} *before* U_h. (PyTorch's `nn.GRU` differs on both counts: it applies r after U_h,
/// r ⊙ (U_h·h + b_hn), and orders its gates r, z, n; its weights do not load here.)
///
/// Storage: `inputWeight` W [3h, in] and `hiddenWeight` U [3h, h] hold the blocks z, r, h̃ as rows
/// 0..<h, h..<2h, 2h..<3h; `bias` b [3h] the same way. Every sequence's input projections W·x_t + b
/// do not depend on the state, so a caller computes them for all t in one product; only the
/// U-products are sequential in t.
public struct GRUCell: Sendable, Equatable {
    public var inputWeight: Matrix
    public var hiddenWeight: Matrix
    public var bias: [Float]

    /// h, the state width.
    public var hiddenSize: Int { hiddenWeight.cols }
    /// in, the input width.
    public var inputSize: Int { inputWeight.cols }

    /// - Throws: `.shapeMismatch` unless W is [3h, in], U [3h, h], b [3h]; `.nonFinite` for a NaN/±Inf weight.
    public init(inputWeight: Matrix, hiddenWeight: Matrix, bias: [Float]) throws {
        (self.inputWeight, self.hiddenWeight, self.bias) = (inputWeight, hiddenWeight, bias)
        try validateShapes("GRUCell(inputWeight:hiddenWeight:bias:)")
        try Validate.finite(inputWeight.storage, "GRU input weight \(inputWeight.shape)")
        try Validate.finite(hiddenWeight.storage, "GRU hidden weight \(hiddenWeight.shape)")
        try Validate.finite(bias, "GRU bias [\(bias.count)]")
    }

    /// W [3h, in], U [3h, h], b [3h] with h, in ≥ 1: the counts every loop over the parts relies on.
    /// `init` checks them; the parts are public vars, so each entry point checks them again
    /// (throwing, or by a precondition that holds in release builds where the caller cannot throw).
    public var shapesAreConsistent: Bool {
        let h = hiddenWeight.cols
        return h > 0 && inputWeight.cols > 0 && hiddenWeight.rows == 3 * h && inputWeight.rows == 3 * h && bias.count == 3 * h
    }

    /// The parts' shapes, for messages.
    public var shapeDescription: String { "W \(inputWeight.shape), U \(hiddenWeight.shape), b [\(bias.count)]" }

    /// - Throws: `.shapeMismatch` naming `operation` unless `shapesAreConsistent`.
    public func validateShapes(_ operation: String) throws {
        guard shapesAreConsistent else {
            throw DecoderSpecError.shapeMismatch(operation: operation, expected: "W [3h, in], U [3h, h], b [3h] with h, in ≥ 1", actual: shapeDescription)
        }
    }

    /// Weights N(0, 1/(3h)) — the variance of PyTorch's U(−1/√h, 1/√h) — and zero bias.
    public static func seeded(inputSize: Int, hiddenSize: Int, rng: inout SeededRNG) throws -> GRUCell {
        try Validate.positive(inputSize, "GRU input size")
        try Validate.positive(hiddenSize, "GRU hidden size")
        let std = Float(1 / (3 * Double(hiddenSize)).squareRoot())
        return try GRUCell(inputWeight: rng.normalMatrix(rows: 3 * hiddenSize, cols: inputSize, std: std),
                           hiddenWeight: rng.normalMatrix(rows: 3 * hiddenSize, cols: hiddenSize, std: std),
                           bias: [Float](repeating: 0, count: 3 * hiddenSize))
    }

    // MARK: The naive path: one state, the formulas letter by letter

    /// One step, h_t from x_t [in] and h_{t−1} [h], by the four formulas above (scalar loops).
    /// - Throws: `.shapeMismatch` for an input or state of the wrong width.
    public func step(input x: [Float], state hPrev: [Float]) throws -> [Float] {
        try validateShapes("GRUCell.step")
        let h = hiddenSize, n = inputSize
        guard x.count == n, hPrev.count == h else {
            throw DecoderSpecError.shapeMismatch(operation: "GRUCell.step", expected: "x [\(n)], h [\(h)]", actual: "x [\(x.count)], h [\(hPrev.count)]")
        }
        let W = inputWeight.storage, U = hiddenWeight.storage
        // row j of block g (0 = z, 1 = r, 2 = h̃) of W·x and of U·v
        func wx(_ g: Int, _ j: Int) -> Float { var s: Float = 0; for k in 0..<n { s += W[(g * h + j) * n + k] * x[k] }; return s }
        func uv(_ g: Int, _ j: Int, _ v: [Float]) -> Float { var s: Float = 0; for k in 0..<h { s += U[(g * h + j) * h + k] * v[k] }; return s }
        let z = (0..<h).map { j in Self.sigmoid(wx(0, j) + uv(0, j, hPrev) + bias[j]) }
        let r = (0..<h).map { j in Self.sigmoid(wx(1, j) + uv(1, j, hPrev) + bias[h + j]) }
        let rh = (0..<h).map { j in r[j] * hPrev[j] }
        let candidate = (0..<h).map { j in tanhf(wx(2, j) + uv(2, j, rh) + bias[2 * h + j]) }
        return (0..<h).map { j in z[j] * hPrev[j] + (1 - z[j]) * candidate[j] }
    }

    /// σ(a) = 1/(1 + e^{−a}).
    @inline(__always) public static func sigmoid(_ a: Float) -> Float { 1 / (1 + expf(-a)) }

    /// The states h_1 … h_T [T, h] of one sequence x [T, in] from h_0 (zeros when nil). `.naive`
    /// calls `step` per position; the other paths run `stepBatch` on one row (W·x for all t in one product).
    public func callAsFunction(_ x: Matrix, initialState: [Float]? = nil, path: KernelPath = .optimized) throws -> Matrix {
        guard x.rows > 0 else { throw DecoderSpecError.emptySequence(what: "GRU input rows") }
        guard x.cols == inputSize else {
            throw DecoderSpecError.shapeMismatch(operation: "GRUCell: x", expected: "[T, \(inputSize)]", actual: "\(x.shape)")
        }
        let h = hiddenSize
        var state = initialState ?? [Float](repeating: 0, count: h)
        guard state.count == h else { throw DecoderSpecError.shapeMismatch(operation: "GRUCell: h₀", expected: "[\(h)]", actual: "[\(state.count)]") }
        var out = Matrix(rows: x.rows, cols: h)
        if path == .naive {
            for t in 0..<x.rows {
                state = try step(input: x.row(t), state: state)
                for j in 0..<h { out.storage[t * h + j] = state[j] }
            }
            return out
        }
        let a = try inputProjections(x, path: path)
        var buffers = GRUStepBuffers(rows: 1, hidden: h)
        for t in 0..<x.rows {
            let aRow = Array(a.storage[(t * 3 * h)..<((t + 1) * 3 * h)])
            state = stepBatch(rows: 1, projections: aRow, previous: state, buffers: &buffers, path: path)
            for j in 0..<h { out.storage[t * h + j] = state[j] }
        }
        return out
    }

    /// W·x_t + b for every row of x [rows, in] → [rows, 3h]: the part of every step that does not
    /// depend on the state, one matrix product for all positions.
    public func inputProjections(_ x: Matrix, path: KernelPath) throws -> Matrix {
        var a = try x.matmul(inputWeight, transposeOther: true, path: path)
        a.addRowVector(bias)
        return a
    }

    // MARK: The batched step: n states at once, the U-products as matrix products

    /// One step for `rows` states at once (row i of every array is sequence i):
    /// `projections` a = W·x_t + b [rows, 3h] (blocks z, r, h̃), `previous` h_{t−1} [rows, h] →
    /// h_t [rows, h]. The gates z, r, the candidate h̃ and s = r ⊙ h_{t−1} are left in `buffers`
    /// (what the backward pass needs). Identical to `step` except: U_z·h and U_r·h are one product
    /// [rows, h]·[h, 2h], U_h·s another, on `path`'s GEMM, and σ, tanh use the vectorized exp on the
    /// optimized paths (tanh a = 2σ(2a) − 1); summation order and rounding differ.
    public func stepBatch(rows: Int, projections a: [Float], previous hPrev: [Float], buffers: inout GRUStepBuffers,
                          path: KernelPath) -> [Float] {
        let h = hiddenSize
        precondition(shapesAreConsistent, "GRUCell.stepBatch: \(shapeDescription) are not [3h, in], [3h, h], [3h]")
        precondition(a.count == rows * 3 * h && hPrev.count == rows * h, "GRUCell.stepBatch: projections [rows, 3h], previous [rows, h]")
        buffers.resize(rows: rows, hidden: h)
        var out = [Float](repeating: 0, count: rows * h)
        hiddenWeight.storage.withUnsafeBufferPointer { pu in
            a.withUnsafeBufferPointer { pa in
                hPrev.withUnsafeBufferPointer { ph in
                    buffers.withPointers { z, r, candidate, s, g in
                        out.withUnsafeMutableBufferPointer { po in
                            Self.stepKernel(path, rows: rows, hidden: h, u: pu.baseAddress!, a: pa.baseAddress!, hPrev: ph.baseAddress!,
                                            z: z, r: r, candidate: candidate, s: s, g: g, out: po.baseAddress!)
                        }
                    }
                }
            }
        }
        return out
    }

    /// The batched step on raw buffers (each row-major with rows of h, a's rows of 3h; g is
    /// scratch [rows, 2h]). The training loop calls it on slices of its own arrays.
    public static func stepKernel(_ path: KernelPath, rows n: Int, hidden h: Int, u: UnsafePointer<Float>, a: UnsafePointer<Float>,
                                  hPrev: UnsafePointer<Float>, z: UnsafeMutablePointer<Float>, r: UnsafeMutablePointer<Float>,
                                  candidate: UnsafeMutablePointer<Float>, s: UnsafeMutablePointer<Float>, g: UnsafeMutablePointer<Float>,
                                  out: UnsafeMutablePointer<Float>) {
        guard n > 0 else { return }
        // g = h_{t−1}·[U_z; U_r]ᵀ  [n, 2h]
        GEMM.sgemm(path, transB: true, m: n, n: 2 * h, k: h, a: hPrev, lda: h, b: u, ldb: h, c: g, ldc: 2 * h)
        for i in 0..<n {
            let ai = a + i * 3 * h, gi = g + i * 2 * h, hi = hPrev + i * h
            let zi = z + i * h, ri = r + i * h, si = s + i * h
            gateActivations(path, count: h, preZ: ai, gZ: gi, preR: ai + h, gR: gi + h, z: zi, r: ri)
            for j in 0..<h { si[j] = ri[j] * hi[j] }
        }
        // candidate pre-activation: W_h·x + b_h + U_h·s  (U_h is rows 2h..<3h of U)
        GEMM.sgemm(path, transB: true, m: n, n: h, k: h, a: s, lda: h, b: u + 2 * h * h, ldb: h, c: candidate, ldc: h)
        for i in 0..<n {
            let ai = a + i * 3 * h + 2 * h, ci = candidate + i * h, zi = z + i * h, hi = hPrev + i * h, oi = out + i * h
            for j in 0..<h { ci[j] += ai[j] }
            tanhInPlace(path, ci, count: h)
            for j in 0..<h { oi[j] = zi[j] * hi[j] + (1 - zi[j]) * ci[j] }
        }
    }

    /// z = σ(preZ + gZ), r = σ(preR + gR) over `count` entries.
    @inline(__always)
    static func gateActivations(_ path: KernelPath, count: Int, preZ: UnsafePointer<Float>, gZ: UnsafePointer<Float>,
                                preR: UnsafePointer<Float>, gR: UnsafePointer<Float>, z: UnsafeMutablePointer<Float>, r: UnsafeMutablePointer<Float>) {
        var j = 0
        if path != .naive {
            typealias V = VectorMath.V
            let one = V(repeating: 1)
            while j + 16 <= count {
                let az = load(preZ + j) + load(gZ + j), ar = load(preR + j) + load(gR + j)
                store(one / (one + VectorMath.exp(-az)), z + j)
                store(one / (one + VectorMath.exp(-ar)), r + j)
                j += 16
            }
        }
        while j < count {
            z[j] = sigmoid(preZ[j] + gZ[j])
            r[j] = sigmoid(preR[j] + gR[j])
            j += 1
        }
    }

    /// x ← tanh(x) over `count` entries: tanhf on the naive path, 2σ(2x) − 1 with the vectorized exp otherwise.
    @inline(__always)
    static func tanhInPlace(_ path: KernelPath, _ x: UnsafeMutablePointer<Float>, count: Int) {
        var j = 0
        if path != .naive {
            typealias V = VectorMath.V
            let one = V(repeating: 1), two = V(repeating: 2)
            while j + 16 <= count {
                store(two / (one + VectorMath.exp(-two * load(x + j))) - one, x + j)
                j += 16
            }
        }
        while j < count {
            x[j] = tanhf(x[j])
            j += 1
        }
    }
}

@inline(__always) private func load(_ p: UnsafePointer<Float>) -> VectorMath.V { UnsafeRawPointer(p).loadUnaligned(as: VectorMath.V.self) }
@inline(__always) private func load(_ p: UnsafeMutablePointer<Float>) -> VectorMath.V { UnsafeRawPointer(p).loadUnaligned(as: VectorMath.V.self) }
@inline(__always) private func store(_ v: VectorMath.V, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: VectorMath.V.self) }

/// Scratch and saved values of `GRUCell.stepBatch`: z, r, h̃, s = r ⊙ h_{t−1} [rows, h] and the
/// gate products g [rows, 2h].
public struct GRUStepBuffers: Sendable {
    public private(set) var z: [Float] = []
    public private(set) var r: [Float] = []
    public private(set) var candidate: [Float] = []
    public private(set) var s: [Float] = []
    var g: [Float] = []

    public init(rows: Int, hidden: Int) { resize(rows: rows, hidden: hidden) }

    mutating func resize(rows: Int, hidden: Int) {
        let n = rows * hidden
        if z.count != n {
            (z, r, candidate, s) = ([Float](repeating: 0, count: n), [Float](repeating: 0, count: n),
                                    [Float](repeating: 0, count: n), [Float](repeating: 0, count: n))
            g = [Float](repeating: 0, count: 2 * n)
        }
    }

    mutating func withPointers<R>(_ body: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>,
                                            UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> R) -> R {
        z.withUnsafeMutableBufferPointer { pz in
            r.withUnsafeMutableBufferPointer { pr in
                candidate.withUnsafeMutableBufferPointer { pc in
                    s.withUnsafeMutableBufferPointer { ps in
                        g.withUnsafeMutableBufferPointer { pg in
                            body(pz.baseAddress!, pr.baseAddress!, pc.baseAddress!, ps.baseAddress!, pg.baseAddress!)
                        }
                    }
                }
            }
        }
    }
}

/// Sequences of different lengths laid out time-major for a recurrence: sequences ranked by length,
/// longest first (ties: batch order), so at step t the n_t sequences still running are ranks
/// 0..<n_t and their rows are contiguous: row(t, rank) = offset_t + rank.
///
///     n_t = #{b : length_b > t},   offset_t = Σ_{t′<t} n_{t′},   rows = Σ_t n_t = Σ_b length_b
public struct GRUPacking: Sendable, Equatable {
    /// Length of each sequence, in batch order (each ≥ 1).
    public let lengths: [Int]
    /// rank → batch index (longest first).
    public let order: [Int]
    /// batch index → rank.
    public let rank: [Int]
    /// n_t for t = 0 ..< max length.
    public let counts: [Int]
    /// offset_t, the first row of step t.
    public let offsets: [Int]

    /// - Throws: `.emptySequence` for no sequences or a sequence of length 0.
    public init(lengths: [Int]) throws {
        guard !lengths.isEmpty else { throw DecoderSpecError.emptySequence(what: "batch of sequences") }
        if let b = lengths.firstIndex(where: { $0 < 1 }) { throw DecoderSpecError.emptySequence(what: "sequence \(b) of the batch") }
        self.lengths = lengths
        order = lengths.indices.sorted { (-lengths[$0], $0) < (-lengths[$1], $1) }
        var rank = [Int](repeating: 0, count: lengths.count)
        for (k, b) in order.enumerated() { rank[b] = k }
        self.rank = rank
        let longest = lengths.max()!
        counts = (0..<longest).map { t in lengths.reduce(0) { $0 + ($1 > t ? 1 : 0) } }
        var offsets: [Int] = [], o = 0
        for n in counts { offsets.append(o); o += n }
        self.offsets = offsets
    }

    public var rowCount: Int { offsets.last! + counts.last! }
    public var steps: Int { counts.count }
    /// The row of position t of batch sequence b (t < lengths[b]).
    public func row(time t: Int, sequence b: Int) -> Int { offsets[t] + rank[b] }
    /// `values[b][t]` laid out time-major (one entry per row).
    public func timeMajor<T>(_ values: [[T]]) -> [T] {
        var out: [T] = []
        out.reserveCapacity(rowCount)
        for t in 0..<steps { for k in 0..<counts[t] { out.append(values[order[k]][t]) } }
        return out
    }
}
