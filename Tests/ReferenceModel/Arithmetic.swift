// The reference forward's arithmetic: Double values from GSL (dgemm, gsl_sf_exp/erf/sin/cos, tanh
// via gsl_expm1), and the error model that turns them into a bound for a Float32 implementation.
// This target imports GSLOracle only: it cannot call any library kernel, layer or model.
//
// Error model (docs/tolerances.md, "Whole-model reference forward"): every operation's Float result
// differs from the exact one by a *local* rounding error whose size the kernel specs establish; an
// n-term sum's local error is modelled probabilistically (independent roundings of mean 0 and
// |δ| ≤ u: std ≤ u·√(n/3)·Σ|terms|). How the local errors combine through the rest of the network
// is estimated by Monte Carlo arithmetic: the forward runs once exactly, recording each operation's
// amplitude a_i, then `runs` times with every output perturbed by an independent U(−a_i, a_i); the
// spread of the perturbed runs around the exact one gives σ per element, and the bound is 5σ at
// 1 − 10⁻⁶ confidence in σ.
import GSLOracle

/// Float's unit roundoff u = 2⁻²⁴.
let u = 0x1p-24

/// γ_n = n·u / (1 − n·u): the worst-case forward error bound of an n-term Float sum, in any order.
func gamma(_ n: Int) -> Double { Double(n) * u / (1 - Double(n) * u) }

/// √n·u: the amplitude of a U(−a, a) perturbation whose std, a/√3, is the probabilistic bound
/// u·√(n/3) on the relative local error of an n-term Float sum (per unit of Σ|terms|).
func sqrtGamma(_ n: Int) -> Double { Double(n).squareRoot() * u }

/// A [rows, cols] row-major Double matrix: the reference's activations.
public struct Matrix64: Sendable {
    public var rows: Int
    public var cols: Int
    public var values: [Double]

    public init(rows: Int, cols: Int, values: [Double]) {
        precondition(values.count == rows * cols, "Matrix64: \(values.count) values for [\(rows), \(cols)]")
        (self.rows, self.cols, self.values) = (rows, cols, values)
    }

    public subscript(r: Int, c: Int) -> Double { values[r * cols + c] }

    /// Columns `from ..< from + count` (one head's slice).
    func columns(_ from: Int, _ count: Int) -> Matrix64 {
        var v = [Double]()
        v.reserveCapacity(rows * count)
        for r in 0..<rows { v.append(contentsOf: values[(r * cols + from)..<(r * cols + from + count)]) }
        return Matrix64(rows: rows, cols: count, values: v)
    }

    var absolute: [Double] { values.map { abs($0) } }

    /// Rows stacked: [Σ rows, cols].
    public static func stacked(_ parts: [Matrix64]) -> Matrix64 {
        Matrix64(rows: parts.reduce(0) { $0 + $1.rows }, cols: parts.first?.cols ?? 0, values: parts.flatMap(\.values))
    }
}

/// A reference output: the exact (Double) values and, per element, the bound a Float32
/// implementation's result must lie within (`Reference.estimate`).
public struct Tracked: Sendable {
    public var rows: Int
    public var cols: Int
    public var values: [Double]
    public var bounds: [Double]

    public init(rows: Int, cols: Int, values: [Double], bounds: [Double]) {
        precondition(values.count == rows * cols && bounds.count == values.count, "Tracked: sizes")
        (self.rows, self.cols, self.values, self.bounds) = (rows, cols, values, bounds)
    }

    public func rows(_ range: Range<Int>) -> Tracked {
        let lo = range.lowerBound * cols, hi = range.upperBound * cols
        return Tracked(rows: range.count, cols: cols, values: Array(values[lo..<hi]), bounds: Array(bounds[lo..<hi]))
    }

    public static func stacked(_ parts: [Tracked]) -> Tracked {
        Tracked(rows: parts.reduce(0) { $0 + $1.rows }, cols: parts.first?.cols ?? 0, values: parts.flatMap(\.values), bounds: parts.flatMap(\.bounds))
    }
}

/// A weight tensor as a checkpoint holds it: exact Float values widened to Double.
public struct NamedTensor: Sendable {
    public var shape: [Int]
    public var values: [Double]
    public init(shape: [Int], values: [Double]) {
        precondition(shape.reduce(1, *) == values.count, "NamedTensor: \(values.count) values for shape \(shape)")
        (self.shape, self.values) = (shape, values)
    }
}

/// `[name: tensor]`, exactly as a checkpoint (safetensors file) holds them.
public typealias Checkpoint = [String: NamedTensor]

/// What the reference could not do: a missing or mis-shaped tensor, or a GSL failure.
public struct ReferenceError: Error, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}

extension Checkpoint {
    func tensor(_ name: String) throws -> NamedTensor {
        guard let t = self[name] else { throw ReferenceError("reference: no tensor \"\(name)\" in the checkpoint") }
        return t
    }

    func tensor(_ name: String, _ shape: [Int]) throws -> NamedTensor {
        let t = try tensor(name)
        guard t.shape == shape else { throw ReferenceError("reference: tensor \"\(name)\" has shape \(t.shape), expected \(shape)") }
        return t
    }
}

/// The feed-forward network's activation: ReLU, exact GELU (erf), GPT-2's tanh GELU.
public enum ReferenceActivation: String, Sendable { case relu, gelu, geluTanh }

/// One evaluation of the reference: exact (recording each operation's local amplitudes a_i), or a
/// replay of the same operations with every output perturbed by U(−a_i, a_i) (Monte Carlo arithmetic).
/// The operations and their shapes depend only on the inputs' shapes, so a replay meets them in the
/// recorded order.
public final class Arithmetic {
    let noise: GSLRandom?
    private(set) var tape: [[Double]]
    private var cursor = 0

    /// The exact run: records amplitudes.
    init() { (noise, tape) = (nil, []) }
    /// A perturbed replay of `exact`'s operations.
    init(replaying exact: Arithmetic, noise: GSLRandom) { (self.noise, tape) = (noise, exact.tape) }

    /// Exact run: records `amplitude()` (a_i for each value). Replay: adds U(−a_i, a_i) to value i.
    func round(_ values: inout [Double], _ amplitude: () throws -> [Double]) rethrows {
        guard let noise else {
            let a = try amplitude()
            precondition(a.count == values.count, "amplitudes \(a.count) for \(values.count) values")
            tape.append(a)
            return
        }
        let a = tape[cursor]
        cursor += 1
        precondition(a.count == values.count, "replay met an operation of \(values.count) values where \(a.count) were recorded")
        for i in values.indices { values[i] += a[i] * noise.uniform(-1, 1) }
    }

    static func dgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, _ a: [Double], _ b: [Double]) throws -> [Double] {
        if m == 0 || n == 0 { return [] }
        if k == 0 { return [Double](repeating: 0, count: m * n) }
        do { return try GSL.dgemm(transA: transA, transB: transB, m: m, n: n, k: k, a: a, b: b) } catch { throw ReferenceError("\(error)") }
    }

    static func exp(_ x: Double) throws -> Double {
        if x < -700 { return 0 }  // gsl_sf_exp_e reports underflow below e^−708
        do { return try GSL.exp(x) } catch { throw ReferenceError("\(error)") }
    }

    // MARK: Operations, each with its local rounding bound a_i

    /// E[ids]: a gather, exact (a = 0).
    func gather(_ table: NamedTensor, _ ids: [Int], name: String) throws -> Matrix64 {
        let (rows, d) = (table.shape[0], table.shape[1])
        var v = [Double]()
        v.reserveCapacity(ids.count * d)
        for id in ids {
            guard id >= 0 && id < rows else { throw ReferenceError("reference: id \(id) outside \(name) of \(rows) rows") }
            v.append(contentsOf: table.values[(id * d)..<((id + 1) * d)])
        }
        return Matrix64(rows: ids.count, cols: d, values: v)
    }

    /// x·s, s = √d rounded to Float then multiplied: a = 2u|y|.
    func scaled(_ x: Matrix64, by s: Double) -> Matrix64 {
        var y = x
        for i in y.values.indices { y.values[i] *= s }
        let exact = y.values
        round(&y.values) { exact.map { 2 * u * abs($0) } }
        return y
    }

    /// Σ of n tensors in any order: a = √(n−1)·u·Σ|x|.
    func sum(_ xs: [Matrix64]) -> Matrix64 {
        var y = xs[0]
        for x in xs.dropFirst() {
            precondition(x.rows == y.rows && x.cols == y.cols, "sum: shapes")
            for i in y.values.indices { y.values[i] += x.values[i] }
        }
        round(&y.values) {
            var magnitude = xs[0].absolute
            for x in xs.dropFirst() { for i in magnitude.indices { magnitude[i] += abs(x.values[i]) } }
            return magnitude.map { sqrtGamma(xs.count - 1) * $0 }
        }
        return y
    }

    /// y = x·Wᵀ + b, W stored [out, in] (nn.Linear) or [in, out] (`inOut`: GPT-2's Conv1D):
    /// an in-term dot product in any order and the bias add, a = √(in+1)·u·(Σ_k |W_ik x_k| + |b_i|).
    func linear(_ x: Matrix64, weight w: NamedTensor, bias: NamedTensor?, inOut: Bool = false) throws -> Matrix64 {
        let (outs, ins) = inOut ? (w.shape[1], w.shape[0]) : (w.shape[0], w.shape[1])
        guard x.cols == ins, bias.map({ $0.values.count == outs }) ?? true else {
            throw ReferenceError("reference: x [\(x.rows), \(x.cols)] · W \(w.shape) + b \(bias?.shape ?? [])")
        }
        var y = try Self.dgemm(transB: !inOut, m: x.rows, n: outs, k: ins, x.values, w.values)
        if let bias {
            for r in 0..<x.rows { for c in 0..<outs { y[r * outs + c] += bias.values[c] } }
        }
        try round(&y) {
            var magnitude = try Self.dgemm(transB: !inOut, m: x.rows, n: outs, k: ins, x.absolute, w.values.map { abs($0) })
            for i in magnitude.indices { magnitude[i] = sqrtGamma(ins + 1) * (magnitude[i] + abs(bias?.values[i % outs] ?? 0)) }
            return magnitude
        }
        return Matrix64(rows: x.rows, cols: outs, values: y)
    }

    /// LayerNorm over each row: y = γ ⊙ (x − μ)/s + β, s = √(σ² + ε) (population variance).
    /// a = |γ_j|·(√(d+12)·u·(1 + |x̂_j|) + γ_{d+1}γ_d·mean|x|/s + 4·2⁻¹⁴⁹/s) + u|y_j| + 2⁻¹⁴⁹: the
    /// LayerNorm kernels' bound (corrected two-pass statistics, three output roundings) with its
    /// d-term sums taken probabilistically.
    func layerNorm(_ x: Matrix64, gamma g: NamedTensor, beta b: NamedTensor, epsilon: Double) throws -> Matrix64 {
        let d = x.cols
        guard g.values.count == d, b.values.count == d else { throw ReferenceError("reference: LayerNorm γ \(g.shape), β \(b.shape) for width \(d)") }
        var y = x
        var amplitude = [Double](repeating: 0, count: x.values.count)
        for r in 0..<x.rows {
            let row = x.values[(r * d)..<((r + 1) * d)]
            let mean = row.reduce(0, +) / Double(d)
            let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(d)
            let s = (variance + epsilon).squareRoot()
            let meanAbs = row.reduce(0) { $0 + abs($1) } / Double(d)
            for j in 0..<d {
                let xhat = (x.values[r * d + j] - mean) / s
                let value = g.values[j] * xhat + b.values[j]
                y.values[r * d + j] = value
                amplitude[r * d + j] = abs(g.values[j]) * (sqrtGamma(d + 12) * (1 + abs(xhat)) + gamma(d + 1) * gamma(d) * meanAbs / s + 4 * 0x1p-149 / s)
                    + u * abs(value) + 0x1p-149
            }
        }
        round(&y.values) { amplitude }
        return y
    }

    /// act(x) elementwise. a = 0 for ReLU (exact); for GELU 4u|y| + ½|x|·(3·10⁻⁷ + 8u + u·|inner|):
    /// the activation kernels' documented bounds (the erf/tanh factor to 1.5·10⁻⁷ absolute, the final
    /// roundings, and the tanh form's inner argument √(2/π)(x + 0.044715x³)).
    func activation(_ x: Matrix64, _ f: ReferenceActivation) throws -> Matrix64 {
        var y = x
        var amplitude = [Double](repeating: 0, count: x.values.count)
        let c = (2 / Double.pi).squareRoot()
        for i in x.values.indices {
            let v = x.values[i]
            switch f {
            case .relu:
                y.values[i] = max(0, v)
            case .gelu:
                let erf: Double
                do { erf = try GSL.erf(v / 2.0.squareRoot()) } catch { throw ReferenceError("\(error)") }
                y.values[i] = 0.5 * v * (1 + erf)
                amplitude[i] = 4 * u * abs(y.values[i]) + 0.5 * abs(v) * (3e-7 + 8 * u)
            case .geluTanh:
                let inner = c * (v + 0.044715 * v * v * v)
                y.values[i] = 0.5 * v * (1 + GSL.tanh(inner))
                amplitude[i] = 4 * u * abs(y.values[i]) + 0.5 * abs(v) * (3e-7 + 8 * u + u * abs(inner))
            }
        }
        round(&y.values) { amplitude }
        return y
    }

    /// Multi-head scaled dot-product attention: per head h (columns h·d_h ..< (h+1)·d_h),
    /// out_i = Σ_j p_ij v_j, p_i = softmax_j(q_i·k_j/√d_h) over the visible keys j (causal: j ≤ i;
    /// padding: j < keyValidLength). A query that sees no key gives 0.
    ///
    /// Local amplitudes (the attention kernels' derivation, docs/tolerances.md, with sums taken
    /// probabilistically): each score √(d_h+2)·u·Σ_p |q_ip k_jp|/√d_h; each weight relatively
    /// (√Tk + √(Tk/16) + 8)·u (exp, the Tk-term sum, the fused kernel's block rescalings, the division);
    /// each output √Tk·u·Σ_j p_ij|v_jc| + Tk·2⁻¹²⁶·max|v|.
    func attention(q: Matrix64, k: Matrix64, v: Matrix64, heads: Int, causal: Bool, keyValidLength: Int? = nil) throws -> Matrix64 {
        let (tq, tk, d) = (q.rows, k.rows, q.cols)
        guard d % heads == 0, k.cols == d, v.cols == d, v.rows == tk else { throw ReferenceError("reference: attention shapes") }
        let dh = d / heads
        let scale = 1 / Double(dh).squareRoot()
        var out = [Double](repeating: 0, count: tq * d)
        for h in 0..<heads {
            let (qh, kh, vh) = (q.columns(h * dh, dh), k.columns(h * dh, dh), v.columns(h * dh, dh))
            var s = try Self.dgemm(transB: true, m: tq, n: tk, k: dh, qh.values, kh.values)
            for i in s.indices { s[i] *= scale }
            try round(&s) { try Self.dgemm(transB: true, m: tq, n: tk, k: dh, qh.absolute, kh.absolute).map { sqrtGamma(dh + 2) * $0 * scale } }
            var p = [Double](repeating: 0, count: tq * tk)
            var visible = [Int](repeating: 0, count: tq)
            for i in 0..<tq {
                var end = tk
                if causal { end = min(end, i + 1 + (tk - tq)) }  // a cached prefix: query i is at position tk − tq + i
                if let n = keyValidLength { end = min(end, n) }
                visible[i] = max(end, 0)
                guard end > 0 else { continue }
                let m = s[(i * tk)..<(i * tk + end)].max()!
                var total = 0.0
                for j in 0..<end {
                    p[i * tk + j] = try Self.exp(s[i * tk + j] - m)
                    total += p[i * tk + j]
                }
                for j in 0..<end { p[i * tk + j] /= total }
            }
            let relative = (Double(tk).squareRoot() + (Double(tk) / 16).squareRoot() + 8) * u
            let exact = p
            round(&p) { exact.map { relative * $0 } }
            var o = try Self.dgemm(m: tq, n: dh, k: tk, p, vh.values)
            try round(&o) {
                let weighted = try Self.dgemm(m: tq, n: dh, k: tk, p.map { abs($0) }, vh.absolute)
                let maxV = vh.absolute.max() ?? 0
                return weighted.indices.map { visible[$0 / dh] == 0 ? 0 : sqrtGamma(tk) * weighted[$0] + Double(tk) * 0x1p-126 * maxV }
            }
            for i in 0..<tq { for c in 0..<dh { out[i * d + h * dh + c] = o[i * dh + c] } }
        }
        return Matrix64(rows: tq, cols: d, values: out)
    }

    /// The sinusoidal table PE[pos, 2i] = sin(pos·ω_i), PE[pos, 2i+1] = cos(pos·ω_i), ω_i = 10000^(−2i/d),
    /// from gsl_sf_sin/cos; a = 10⁻¹⁰ + u|PE| (the positional-encoding kernels' rung for positions ≤ 8192).
    func sinusoidal(count: Int, d: Int) throws -> Matrix64 {
        var v = [Double]()
        v.reserveCapacity(count * d)
        for pos in 0..<count {
            for j in 0..<d {
                let omega = try Self.exp(-Double(2 * (j / 2)) / Double(d) * 9.210340371976184)  // ln 10000
                do { v.append(j % 2 == 0 ? try GSL.sin(Double(pos) * omega) : try GSL.cos(Double(pos) * omega)) } catch { throw ReferenceError("\(error)") }
            }
        }
        let exact = v
        round(&v) { exact.map { 1e-10 + u * abs($0) } }
        return Matrix64(rows: count, cols: d, values: v)
    }

    /// Mean over rows then L2 normalization (sentence-transformers' pooling): the library sums in
    /// Double and rounds once, a = u|e_j|.
    func meanPooledUnit(_ h: Matrix64) -> Matrix64 {
        var m = [Double](repeating: 0, count: h.cols)
        for t in 0..<h.rows { for j in 0..<h.cols { m[j] += h[t, j] } }
        for j in m.indices { m[j] /= Double(h.rows) }
        let norm = max(m.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
        var e = m.map { $0 / norm }
        let exact = e
        round(&e) { exact.map { u * abs($0) } }
        return Matrix64(rows: 1, cols: h.cols, values: e)
    }
}
