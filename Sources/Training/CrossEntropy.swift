// Softmax cross-entropy with ignore-index and label smoothing. See docs/training.md.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Kernels
import TensorCore

/// The training loss over rows of logits.
///
/// For each row i with target yᵢ ≠ ignoreIndex, with C classes and smoothing ε:
///
///     p = softmax(zᵢ),   q = (1 − ε)·onehot(yᵢ) + ε/C
///     ℓᵢ = −Σ_c q_c · log p_c
///     L  = (1/N) Σ_{i not ignored} ℓᵢ          (N = number of non-ignored rows)
///     ∂L/∂zᵢ = (p − q)/N,   and 0 on ignored rows
///
/// Ignored rows contribute neither loss nor gradient, and smoothing is never applied to them.
/// When every row is ignored, L = 0 and the gradient is 0 (nothing to learn from).
public struct CrossEntropyLoss: Sendable {
    /// PyTorch's default ignore index.
    public static let defaultIgnoreIndex = -100

    public var ignoreIndex: Int
    public var labelSmoothing: Float

    /// - Throws: `.invalidArgument` when ε is outside [0, 1).
    public init(ignoreIndex: Int = CrossEntropyLoss.defaultIgnoreIndex, labelSmoothing: Float = 0) throws {
        guard labelSmoothing >= 0, labelSmoothing < 1 else {
            throw DecoderSpecError.invalidArgument(what: "label smoothing ε = \(labelSmoothing)", reason: "must be in [0, 1)")
        }
        self.ignoreIndex = ignoreIndex
        self.labelSmoothing = labelSmoothing
    }

    /// Loss (accumulated in Double), dL/dlogits [N, C], and the count of non-ignored rows.
    ///
    /// Paths (`KernelPath`): `.naive` is the formula row by row — libm `expf` for the row sum,
    /// log p_c = z_c − log Z and p_c = exp(log p_c) in Double for each class. `.optimized` and
    /// `.parallel` are identical except: the max and eᶻ⁻ᵘ run 16 lanes at a time with
    /// `VectorMath.exp` (≤ 3 ULPs; the e's are kept and Σe is accumulated in Double), p_c = e_c·(1/Σe)
    /// in Float, and the row loss uses Σ_c q_c = 1:
    ///
    ///     ℓ = −Σ_c q_c (z_c − log Z) = log Z − (1 − ε)·z_y − (ε/C)·Σ_c z_c     (Σ z_c in Double)
    ///
    /// so no logarithm or exponential is taken per class in Double.
    /// - Throws: `.shapeMismatch` when targets and rows differ; `.idOutOfRange` for a target outside
    ///   0..<C that is not the ignore index.
    public func callAsFunction(logits: Matrix, targets: [Int], path: KernelPath = .optimized) throws -> (loss: Double, gradient: Matrix, count: Int) {
        guard targets.count == logits.rows else {
            throw DecoderSpecError.shapeMismatch(operation: "cross-entropy", expected: "\(logits.rows) targets for logits \(logits.shape)",
                                                 actual: "\(targets.count) targets")
        }
        let classes = logits.cols
        try Validate.finite(logits.storage, "cross-entropy logits \(logits.shape)")
        for (i, t) in targets.enumerated() where t != ignoreIndex && (t < 0 || t >= classes) {
            throw DecoderSpecError.idOutOfRange(id: t, position: i, vocabularySize: classes)
        }
        let n = targets.filter { $0 != ignoreIndex }.count
        var grad = Matrix(rows: logits.rows, cols: classes)
        guard n > 0 else { return (0, grad, 0) }
        let eps = Double(labelSmoothing), uniform = eps / Double(classes)
        let invN = 1 / Double(n)
        var total = 0.0
        logits.storage.withUnsafeBufferPointer { pz in
            grad.storage.withUnsafeMutableBufferPointer { pg in
                for (i, target) in targets.enumerated() where target != ignoreIndex {
                    let z = pz.baseAddress! + i * classes, g = pg.baseAddress! + i * classes
                    if path == .naive {
                        total += Self.naiveRow(z, g, classes: classes, target: target, eps: eps, uniform: uniform, invN: invN)
                    } else {
                        total += Self.optimizedRow(z, g, classes: classes, target: target, eps: eps, uniform: uniform, invN: invN)
                    }
                }
            }
        }
        return (total * invN, grad, n)
    }

    /// One row of the formula: ℓ = −Σ_c q_c log p_c with log p_c = z_c − log Z, and
    /// g_c = (p_c − q_c)/N with p_c = exp(log p_c), each in Double. Returns ℓ.
    static func naiveRow(_ z: UnsafePointer<Float>, _ g: UnsafeMutablePointer<Float>, classes: Int, target: Int,
                         eps: Double, uniform: Double, invN: Double) -> Double {
        var mu = -Float.infinity
        for c in 0..<classes where z[c] > mu { mu = z[c] }
        var sum = 0.0
        for c in 0..<classes { sum += Double(expf(z[c] - mu)) }
        let logZ = Double(mu) + log(sum)
        var rowLoss = 0.0
        for c in 0..<classes {
            let logP = Double(z[c]) - logZ
            let q = (c == target ? 1 - eps : 0) + uniform
            rowLoss -= q * logP
            g[c] = Float((exp(logP) - q) * invN)
        }
        return rowLoss
    }

    /// The optimized row (see `callAsFunction`): e_c = exp(z_c − μ) 16 lanes at a time, Σe and Σz in
    /// Double, ℓ = log Z − (1 − ε)·z_y − (ε/C)·Σz, g_c = (e_c·(1/Σe) − ε/C)/N in Float, the target's
    /// entry in Double. Returns ℓ.
    static func optimizedRow(_ z: UnsafePointer<Float>, _ g: UnsafeMutablePointer<Float>, classes: Int, target: Int,
                             eps: Double, uniform: Double, invN: Double) -> Double {
        typealias V = SIMD16<Float>
        typealias D = SIMD8<Double>
        let full = classes / 16 * 16, tail = classes - full
        var mx = V(repeating: -.infinity)
        var j = 0
        while j < full {
            mx = pointwiseMax(mx, load(z + j))
            j += 16
        }
        if tail > 0 { mx = pointwiseMax(mx, loadPartial(z + full, tail, pad: -.infinity)) }
        let mu = mx.max()
        let muV = V(repeating: mu)
        var sumE = D(), sumZ = D()
        j = 0
        while j < full {
            let v = load(z + j)
            let e = VectorMath.exp(v - muV)
            store(e, g + j)
            sumE += D(e.lowHalf) + D(e.highHalf)
            sumZ += D(v.lowHalf) + D(v.highHalf)
            j += 16
        }
        if tail > 0 {
            let v = loadPartial(z + full, tail, pad: 0)
            let e = VectorMath.exp(loadPartial(z + full, tail, pad: -.infinity) - muV)  // padding: e^{−∞} = 0
            for c in 0..<tail { g[full + c] = e[c] }
            sumE += D(e.lowHalf) + D(e.highHalf)
            sumZ += D(v.lowHalf) + D(v.highHalf)
        }
        let sum = sumE.sum()
        let logZ = Double(mu) + log(sum)
        let rowLoss = logZ - (1 - eps) * Double(z[target]) - uniform * sumZ.sum()
        let inv = V(repeating: Float(1 / sum)), q = V(repeating: Float(uniform)), scale = V(repeating: Float(invN))
        j = 0
        while j < full {
            store((load(g + j) * inv - q) * scale, g + j)
            j += 16
        }
        for c in full..<classes { g[c] = (g[c] * inv[0] - q[0]) * scale[0] }
        g[target] = Float((exp(Double(z[target]) - logZ) - (1 - eps + uniform)) * invN)
        return rowLoss
    }

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> SIMD16<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self) }
    @inline(__always) static func load(_ p: UnsafeMutablePointer<Float>) -> SIMD16<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self) }
    @inline(__always) static func store(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self) }
    @inline(__always) static func loadPartial(_ p: UnsafePointer<Float>, _ count: Int, pad: Float) -> SIMD16<Float> {
        var v = SIMD16<Float>(repeating: pad)
        for i in 0..<count { v[i] = p[i] }
        return v
    }
}
