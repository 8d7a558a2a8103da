// Softmax cross-entropy with ignore-index and label smoothing. See docs/training.md.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
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
    /// - Throws: `.shapeMismatch` when targets and rows differ; `.idOutOfRange` for a target outside
    ///   0..<C that is not the ignore index.
    public func callAsFunction(logits: Matrix, targets: [Int]) throws -> (loss: Double, gradient: Matrix, count: Int) {
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
                    total += rowLoss
                }
            }
        }
        return (total * invN, grad, n)
    }
}
