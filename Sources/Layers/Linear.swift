import Kernels
import TensorCore

/// A fully connected layer, `y = x · Wᵀ + b`, with W stored [out, in] as PyTorch's `nn.Linear`
/// and Hugging Face checkpoints store it. See docs/layers.md.
///
/// Shapes: x [T, in] → y [T, out]; weight [out, in]; bias [out] or none.
public struct Linear: Sendable, Equatable {
    /// W [out, in]. Assigning or changing it drops `weightBF16` (which was rounded from the old W).
    public var weight: Matrix { didSet { weightBF16 = nil } }
    public var bias: [Float]?
    /// W rounded to bf16 once (`roundingWeightToBF16()`), or nil. When present, `weight` holds the
    /// same rounded values in Float and a one-row input (a decoding step) reads these 2-byte
    /// weights through `BF16GEMV`; longer inputs run the Float GEMM on the rounded `weight`, so both
    /// compute x · Ŵᵀ + b with Ŵ = bf16(W), in different summation orders. See docs/decoding.md.
    public private(set) var weightBF16: BF16Matrix?

    public var inputSize: Int { weight.cols }
    public var outputSize: Int { weight.rows }

    /// - Throws: `.shapeMismatch` when the bias length is not `weight.rows`; `.nonFinite` naming
    ///   the first NaN/±Inf weight or bias.
    public init(weight: Matrix, bias: [Float]?) throws {
        try Validate.finite(weight.storage, "Linear weight \(weight.shape)")
        if let bias { try Validate.finite(bias, "Linear bias [\(bias.count)]") }
        if let bias, bias.count != weight.rows {
            throw DecoderSpecError.shapeMismatch(operation: "Linear(weight:bias:)", expected: "bias [\(weight.rows)] for weight \(weight.shape)",
                                                 actual: "bias [\(bias.count)]")
        }
        self.weight = weight
        self.bias = bias
    }

    /// Weights N(0, std²) and zero bias from a seeded generator (GPT-2 uses std 0.02).
    /// - Throws: `.invalidArgument` when a size is ≤ 0 or std is negative or non-finite.
    public init(inputSize: Int, outputSize: Int, std: Float = 0.02, bias: Bool = true, rng: inout SeededRNG) throws {
        try Validate.positive(inputSize, "Linear input size")
        try Validate.positive(outputSize, "Linear output size")
        guard std.isFinite, std >= 0 else { throw DecoderSpecError.invalidArgument(what: "Linear init std \(std)", reason: "must be finite and ≥ 0") }
        weight = rng.normalMatrix(rows: outputSize, cols: inputSize, std: std)
        self.bias = bias ? [Float](repeating: 0, count: outputSize) : nil
    }

    /// From a Conv1D weight stored [in, out] (GPT-2's original checkpoints): transposes it.
    public static func fromConv1D(weight: Matrix, bias: [Float]?) throws -> Linear {
        try Linear(weight: weight.transposed(), bias: bias)
    }

    /// The weight-only bf16 form of this layer: Ŵ = bf16(W), every entry rounded to nearest, ties
    /// to even (`BFloat16.round`, relative error ≤ 2⁻⁸ per weight); the bias stays Float.
    /// `weight` becomes Ŵ in Float, `weightBF16` Ŵ in 2 bytes per entry.
    public func roundingWeightToBF16() -> Linear {
        var rounded = self
        let h = BF16Matrix(rounding: weight)
        rounded.weight = h.widened()
        rounded.weightBF16 = h
        return rounded
    }

    /// y = x · Wᵀ + b (x · Ŵᵀ + b through the bf16 GEMV for one row when `weightBF16` is set).
    /// - Throws: `.shapeMismatch` naming x's shape and W's when x's width is not `in`.
    public func callAsFunction(_ x: Matrix, path: KernelPath = .optimized) throws -> Matrix {
        guard x.cols == inputSize else {
            throw DecoderSpecError.shapeMismatch(operation: "Linear: x · Wᵀ", expected: "x [T, \(inputSize)] for W \(weight.shape)", actual: "x \(x.shape)")
        }
        // `bias` is a public var: checked here, where its count reaches `addRowVector`'s unsafe loop.
        if let bias, bias.count != outputSize {
            throw DecoderSpecError.shapeMismatch(operation: "Linear: x · Wᵀ + b", expected: "bias [\(outputSize)] for W \(weight.shape)", actual: "bias [\(bias.count)]")
        }
        if let h = weightBF16, x.rows == 1, h.rows == outputSize, h.cols == inputSize {
            var y = h.timesRow(x, path: path)
            if let bias { y.addRowVector(bias) }
            return y
        }
        var y = try x.matmul(weight, transposeOther: true, path: path)
        if let bias { y.addRowVector(bias) }
        return y
    }
}

extension Matrix {
    /// Adds `v` [cols] to every row (a broadcast bias).
    public mutating func addRowVector(_ v: [Float]) {
        precondition(v.count == cols, "row vector of \(v.count) for \(shape)")
        let c = cols, rowCount = rows
        storage.withUnsafeMutableBufferPointer { p in
            v.withUnsafeBufferPointer { b in
                for r in 0..<rowCount {
                    let row = p.baseAddress! + r * c
                    for j in 0..<c { row[j] += b[j] }
                }
            }
        }
    }

    /// Elementwise sum: the residual connection `x + f(x)`.
    /// - Throws: `.shapeMismatch` naming both shapes.
    public func adding(_ other: Matrix, _ operation: String = "residual x + f(x)") throws -> Matrix {
        guard shape == other.shape else {
            throw DecoderSpecError.shapeMismatch(operation: operation, expected: "\(shape)", actual: "\(other.shape)")
        }
        var out = self
        for i in out.storage.indices { out.storage[i] += other.storage[i] }
        return out
    }

    /// Rows `range` as a new matrix.
    public func rows(_ range: Range<Int>) -> Matrix {
        try! Matrix(rows: range.count, cols: cols, storage: Array(storage[(range.lowerBound * cols)..<(range.upperBound * cols)]))
    }
}
