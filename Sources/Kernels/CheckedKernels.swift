import TensorCore

// The validated, throwing faces of the kernels (docs/errors.md): shapes, sizes and ε are checked
// here and reported as `DecoderSpecError`; the raw-pointer kernels underneath use preconditions.
// See docs/kernels.md.

extension GEMM {
    /// `C = α·op(A)·op(B) + β·C` on dense row-major arrays (leading dimensions = row lengths),
    /// validated: sizes must be ≥ 0 and every buffer must hold exactly its shape.
    ///
    /// Shapes: A is [m, k] ([k, m] when `transA`), B is [k, n] ([n, k] when `transB`), C is [m, n].
    /// - Throws: `.invalidArgument` for a negative size, `.shapeMismatch` for a buffer of the wrong length.
    public static func sgemmChecked(
        _ path: KernelPath, transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: [Float], b: [Float], beta: Float = 0, c: inout [Float]
    ) throws {
        try validate(transA: transA, transB: transB, m: m, n: n, k: k, a: a.count, b: b.count, c: c.count)
        if m == 0 || n == 0 { return }
        let lda = transA ? m : k, ldb = transB ? k : n
        // Zero-length A or B (k = 0) still needs a valid pointer; a 1-element dummy is never read.
        let a = a.isEmpty ? [0] : a, b = b.isEmpty ? [0] : b
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    sgemm(path, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                          a: pa.baseAddress!, lda: max(lda, 1), b: pb.baseAddress!, ldb: max(ldb, 1),
                          beta: beta, c: pc.baseAddress!, ldc: n)
                }
            }
        }
    }

    /// Double precision, same contract as `sgemmChecked`.
    public static func dgemmChecked(
        _ path: KernelPath, transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
        alpha: Double = 1, a: [Double], b: [Double], beta: Double = 0, c: inout [Double]
    ) throws {
        try validate(transA: transA, transB: transB, m: m, n: n, k: k, a: a.count, b: b.count, c: c.count)
        if m == 0 || n == 0 { return }
        let lda = transA ? m : k, ldb = transB ? k : n
        let a = a.isEmpty ? [0] : a, b = b.isEmpty ? [0] : b
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    dgemm(path, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                          a: pa.baseAddress!, lda: max(lda, 1), b: pb.baseAddress!, ldb: max(ldb, 1),
                          beta: beta, c: pc.baseAddress!, ldc: n)
                }
            }
        }
    }

    static func validate(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, a: Int, b: Int, c: Int) throws {
        for (name, v) in [("m", m), ("n", n), ("k", k)] where v < 0 {
            throw DecoderSpecError.invalidArgument(what: "GEMM size \(name)", reason: "must be non-negative, got \(v)")
        }
        let op = "gemm(A\(transA ? "ᵀ" : ""), B\(transB ? "ᵀ" : ""))"
        let aShape = transA ? "[\(k), \(m)]" : "[\(m), \(k)]"
        let bShape = transB ? "[\(n), \(k)]" : "[\(k), \(n)]"
        guard a == m * k else {
            throw DecoderSpecError.shapeMismatch(operation: op, expected: "A of shape \(aShape) = \(m * k) elements", actual: "\(a) elements")
        }
        guard b == k * n else {
            throw DecoderSpecError.shapeMismatch(operation: op, expected: "B of shape \(bShape) = \(k * n) elements", actual: "\(b) elements")
        }
        guard c == m * n else {
            throw DecoderSpecError.shapeMismatch(operation: op, expected: "C of shape [\(m), \(n)] = \(m * n) elements", actual: "\(c) elements")
        }
    }
}

extension Matrix {
    /// Row softmax of `self` (+ `mask`), see `Softmax.rows`: a fully masked row gives all zeros.
    /// Finite logits of any magnitude (±1e30, ±Float.greatestFiniteMagnitude, subnormals) give a
    /// correct result (docs/kernels.md, "Edge numerics"); −∞ in `self` or `mask` means weight 0.
    /// - Throws: `.shapeMismatch` when `mask` is not the shape of `self`; `.nonFinite` for NaN or
    ///   +∞ in `self` or `mask`, and when a finite x + M overflows to +∞ (the softmax of such a
    ///   row is not defined in Float) — never a silent NaN row.
    public func softmaxRows(mask: Matrix? = nil, path: KernelPath = .optimized) throws -> Matrix {
        try softmaxImpl(mask: mask, path: path, log: false)
    }

    /// Row log-softmax of `self` (+ `mask`), see `Softmax.logRows`: a fully masked row gives −∞.
    /// - Throws: as `softmaxRows`.
    public func logSoftmaxRows(mask: Matrix? = nil, path: KernelPath = .optimized) throws -> Matrix {
        try softmaxImpl(mask: mask, path: path, log: true)
    }

    private func softmaxImpl(mask: Matrix?, path: KernelPath, log: Bool) throws -> Matrix {
        if let mask, mask.shape != shape {
            throw DecoderSpecError.shapeMismatch(operation: log ? "logSoftmaxRows(mask:)" : "softmaxRows(mask:)",
                                                 expected: "mask of shape \(shape)", actual: "\(mask.shape)")
        }
        let operation = log ? "logSoftmaxRows" : "softmaxRows"
        try Self.rejectNaNOrPlusInfinity(storage, "\(operation) input x \(shape)")
        if let mask { try Self.rejectNaNOrPlusInfinity(mask.storage, "\(operation) mask \(shape)") }
        var out = self
        if rows == 0 || cols == 0 { return out }
        let (r, c) = (rows, cols)
        out.storage.withUnsafeMutableBufferPointer { px in
            if let mask {
                mask.storage.withUnsafeBufferPointer { pm in
                    if log { Softmax.logRows(path, px.baseAddress!, rows: r, cols: c, mask: pm.baseAddress!) }
                    else { Softmax.rows(path, px.baseAddress!, rows: r, cols: c, mask: pm.baseAddress!) }
                }
            } else {
                if log { Softmax.logRows(path, px.baseAddress!, rows: r, cols: c) }
                else { Softmax.rows(path, px.baseAddress!, rows: r, cols: c) }
            }
        }
        // Inputs are NaN/+∞-free, so a NaN can only come from a finite x + M overflowing to +∞.
        if let bad = out.storage.firstIndex(where: { $0.isNaN }) {
            let i = bad / c
            var worst = -Double.infinity
            for j in 0..<c {
                let m: Float = mask?.storage[i * c + j] ?? 0
                worst = Swift.max(worst, Double(storage[i * c + j]) + Double(m))
            }
            throw DecoderSpecError.nonFinite(what: "\(operation) x + mask of row \(i) (overflows Float)", index: bad, value: worst)
        }
        return out
    }

    /// −∞ is allowed (weight 0); NaN and +∞ are not.
    private static func rejectNaNOrPlusInfinity(_ values: [Float], _ what: @autoclosure () -> String) throws {
        for (i, v) in values.enumerated() where v.isNaN || v == .infinity {
            throw DecoderSpecError.nonFinite(what: what(), index: i, value: Double(v))
        }
    }

    /// LayerNorm over each row (the last axis): y = γ ⊙ (x − μ)/sqrt(σ² + ε) + β, population σ².
    /// Correct for finite x of any magnitude (subnormals to ±Float.greatestFiniteMagnitude): see
    /// `LayerNormKernel` and docs/kernels.md, "Edge numerics".
    /// - Throws: `.invalidArgument` when `cols == 0` or ε ≤ 0, `.nonFinite` when ε, x, γ or β
    ///   holds NaN or ±∞, `.shapeMismatch` when γ or β is not of length `cols`.
    public func layerNorm(gamma: [Float], beta: [Float], epsilon: Float = 1e-5,
                          path: KernelPath = .optimized) throws -> Matrix {
        guard epsilon.isFinite else {
            throw DecoderSpecError.nonFinite(what: "LayerNorm ε", index: 0, value: Double(epsilon))
        }
        guard epsilon > 0 else {
            throw DecoderSpecError.invalidArgument(what: "LayerNorm ε", reason: "must be > 0 (sqrt(σ² + ε) must be positive), got \(epsilon)")
        }
        guard cols > 0 else {
            throw DecoderSpecError.invalidArgument(what: "LayerNorm input \(shape)", reason: "the normalized axis must be non-empty")
        }
        guard gamma.count == cols else {
            throw DecoderSpecError.shapeMismatch(operation: "layerNorm(gamma:)", expected: "γ of shape [\(cols)] for input \(shape)", actual: "[\(gamma.count)]")
        }
        guard beta.count == cols else {
            throw DecoderSpecError.shapeMismatch(operation: "layerNorm(beta:)", expected: "β of shape [\(cols)] for input \(shape)", actual: "[\(beta.count)]")
        }
        try Validate.finite(storage, "layerNorm input x \(shape)")
        try Validate.finite(gamma, "layerNorm γ [\(cols)]")
        try Validate.finite(beta, "layerNorm β [\(cols)]")
        var out = Matrix(rows: rows, cols: cols)
        if rows == 0 { return out }
        let (r, d) = (rows, cols)
        storage.withUnsafeBufferPointer { px in
            out.storage.withUnsafeMutableBufferPointer { py in
                LayerNormKernel.forward(path, x: px.baseAddress!, y: py.baseAddress!, rows: r, d: d,
                                        gamma: gamma, beta: beta, epsilon: epsilon)
            }
        }
        return out
    }

    /// `function` applied to every element (ReLU, exact GELU, tanh GELU). Any shape is valid.
    public func activated(_ function: Activation.Function, path: KernelPath = .optimized) -> Matrix {
        var out = self
        let count = storage.count
        if count == 0 { return out }
        out.storage.withUnsafeMutableBufferPointer { Activation.apply(function, path, $0.baseAddress!, count: count) }
        return out
    }
}
