// Backward passes of the layers, each beside the forward it differentiates (llm.c style):
// the forward returns its output and a cache of what the backward needs; the backward takes
// dL/d(output) and the cache, ACCUMULATES parameter gradients into a gradient value of the
// layer's own type, and returns dL/d(input). See docs/training.md.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Embedding
import Kernels
import Layers
import PositionalEncoding
import TensorCore

// MARK: - Linear

extension Linear {
    /// y = x·Wᵀ + b.   x [T, in] → y [T, out].
    public func trainingForward(_ x: Matrix, path: KernelPath) -> Matrix {
        precondition(x.cols == inputSize, "Linear forward: x \(x.shape) for W \(weight.shape)")
        precondition(bias == nil || bias!.count == outputSize, "Linear forward: bias [\(bias?.count ?? 0)] for W \(weight.shape)")
        var y = Matrix(rows: x.rows, cols: outputSize)
        if x.rows > 0 {
            x.storage.withUnsafeBufferPointer { px in
                weight.storage.withUnsafeBufferPointer { pw in
                    y.storage.withUnsafeMutableBufferPointer { py in
                        GEMM.sgemm(path, transB: true, m: x.rows, n: outputSize, k: inputSize,
                                   a: px.baseAddress!, lda: inputSize, b: pw.baseAddress!, ldb: inputSize, c: py.baseAddress!, ldc: outputSize)
                    }
                }
            }
        }
        if let bias { y.addRowVector(bias) }
        return y
    }

    /// Backward of y = x·Wᵀ + b, with dY [T, out] and the forward's input x [T, in]:
    ///
    ///     dW += dYᵀ · x      [out, in]   (Σ over positions t of the outer product dy_t ⊗ x_t)
    ///     db += Σ_t dY[t, :] [out]
    ///     dx  = dY · W       [T, in]
    ///
    /// `needInputGradient: false` skips dx (the first layer's input is data).
    @discardableResult
    public func backward(_ dy: Matrix, input x: Matrix, gradient g: inout Linear, path: KernelPath,
                         needInputGradient: Bool = true) -> Matrix {
        precondition(dy.rows == x.rows && dy.cols == outputSize && x.cols == inputSize, "Linear backward shapes")
        precondition(g.weight.shape == weight.shape && (g.bias?.count ?? outputSize) == outputSize,
                     "Linear backward: gradient W \(g.weight.shape), b [\(g.bias?.count ?? 0)] for W \(weight.shape)")
        let t = x.rows, nIn = inputSize, nOut = outputSize
        guard t > 0 else { return Matrix(rows: 0, cols: nIn) }
        dy.storage.withUnsafeBufferPointer { pdy in
            x.storage.withUnsafeBufferPointer { px in
                g.weight.storage.withUnsafeMutableBufferPointer { pgw in
                    GEMM.sgemm(path, transA: true, m: nOut, n: nIn, k: t, a: pdy.baseAddress!, lda: nOut,
                               b: px.baseAddress!, ldb: nIn, beta: 1, c: pgw.baseAddress!, ldc: nIn)
                }
            }
        }
        if g.bias != nil {
            var gb = g.bias!
            g.bias = nil
            dy.storage.withUnsafeBufferPointer { pdy in
                gb.withUnsafeMutableBufferPointer { pb in
                    for r in 0..<t {
                        let row = pdy.baseAddress! + r * nOut
                        for j in 0..<nOut { pb[j] += row[j] }
                    }
                }
            }
            g.bias = gb
        }
        guard needInputGradient else { return Matrix(rows: 0, cols: nIn) }
        var dx = Matrix(rows: t, cols: nIn)
        dy.storage.withUnsafeBufferPointer { pdy in
            weight.storage.withUnsafeBufferPointer { pw in
                dx.storage.withUnsafeMutableBufferPointer { pdx in
                    GEMM.sgemm(path, m: t, n: nIn, k: nOut, a: pdy.baseAddress!, lda: nOut, b: pw.baseAddress!, ldb: nIn,
                               c: pdx.baseAddress!, ldc: nIn)
                }
            }
        }
        return dx
    }
}

// MARK: - LayerNorm

/// What LayerNorm's backward needs: x̂ = (x − μ)·r and r = 1/sqrt(σ² + ε) per row.
public struct LayerNormCache: Sendable {
    public var normalized: Matrix
    public var reciprocalStd: [Float]
}

extension LayerNorm {
    /// y = γ ⊙ x̂ + β with x̂ = (x − μ)/sqrt(σ² + ε) (population variance). As `LayerNormKernel.naive` (y bit for bit):
    /// μ and σ² are two-pass sums in Double, so no finite row overflows (x² of 1e20 would in Float)
    /// and a constant row gives x̂ = 0 exactly (docs/kernels.md, "Edge numerics"). Keeps x̂ and r
    /// for the backward.
    public func trainingForward(_ x: Matrix) -> (Matrix, LayerNormCache) {
        let d = x.cols, rows = x.rows
        precondition(d == gamma.count && beta.count == d, "LayerNorm forward: x \(x.shape) for γ [\(gamma.count)], β [\(beta.count)]")
        var y = Matrix(rows: rows, cols: d)
        var xhat = Matrix(rows: rows, cols: d)
        var rstd = [Float](repeating: 0, count: rows)
        x.storage.withUnsafeBufferPointer { px in
            y.storage.withUnsafeMutableBufferPointer { py in
                xhat.storage.withUnsafeMutableBufferPointer { ph in
                    gamma.withUnsafeBufferPointer { g in
                        beta.withUnsafeBufferPointer { b in
                            for r in 0..<rows {
                                let xr = px.baseAddress! + r * d, yr = py.baseAddress! + r * d, hr = ph.baseAddress! + r * d
                                let (mean, inv) = LayerNormKernel.doubleStatistics(xr, d: d, epsilon: epsilon)
                                rstd[r] = Float(inv)
                                for j in 0..<d {
                                    let h = (Double(xr[j]) - mean) * inv
                                    hr[j] = Float(h)
                                    yr[j] = Float(Double(g[j]) * h + Double(b[j]))  // as the naive kernel, bit for bit
                                }
                            }
                        }
                    }
                }
            }
        }
        return (y, LayerNormCache(normalized: xhat, reciprocalStd: rstd))
    }

    /// Backward of LayerNorm, per row (d = width, ĝ = dy ⊙ γ):
    ///
    ///     dγ += Σ_rows dy ⊙ x̂,   dβ += Σ_rows dy
    ///     dx  = r · (ĝ − mean(ĝ) − x̂ · mean(ĝ ⊙ x̂))
    ///
    /// The two means come from μ and σ² depending on every x_j: dropping `mean(ĝ)` (the μ term) is
    /// the classic mistake the gradient check catches.
    public func backward(_ dy: Matrix, cache: LayerNormCache, gradient g: inout LayerNorm) -> Matrix {
        let d = dy.cols, rows = dy.rows
        precondition(d == gamma.count && cache.normalized.shape == dy.shape && cache.reciprocalStd.count == rows
                     && g.gamma.count == d && g.beta.count == d,
                     "LayerNorm backward: dy \(dy.shape), x̂ \(cache.normalized.shape), r [\(cache.reciprocalStd.count)], γ [\(gamma.count)], gradient γ [\(g.gamma.count)], β [\(g.beta.count)]")
        var dx = Matrix(rows: rows, cols: d)
        dy.storage.withUnsafeBufferPointer { pdy in
            cache.normalized.storage.withUnsafeBufferPointer { ph in
                dx.storage.withUnsafeMutableBufferPointer { pdx in
                    gamma.withUnsafeBufferPointer { gm in
                        g.gamma.withUnsafeMutableBufferPointer { dg in
                            g.beta.withUnsafeMutableBufferPointer { db in
                                for r in 0..<rows {
                                    let dyr = pdy.baseAddress! + r * d, hr = ph.baseAddress! + r * d, dxr = pdx.baseAddress! + r * d
                                    var meanG: Float = 0, meanGH: Float = 0
                                    for j in 0..<d {
                                        let gh = dyr[j] * gm[j]
                                        meanG += gh
                                        meanGH += gh * hr[j]
                                        dg[j] += dyr[j] * hr[j]
                                        db[j] += dyr[j]
                                    }
                                    meanG /= Float(d)
                                    meanGH /= Float(d)
                                    let inv = cache.reciprocalStd[r]
                                    for j in 0..<d { dxr[j] = inv * (dyr[j] * gm[j] - meanG - hr[j] * meanGH) }
                                }
                            }
                        }
                    }
                }
            }
        }
        return dx
    }
}

// MARK: - Activations

extension Activation {
    /// act′(x) elementwise:
    ///
    ///     ReLU′(x)      = 1 if x > 0 else 0
    ///     GELU′(x)      = Φ(x) + x·φ(x),  Φ(x) = (1 + erf(x/√2))/2,  φ(x) = exp(−x²/2)/√(2π)
    ///     GELU_tanh′(x) = ½(1 + t) + ½x(1 − t²)·c·(1 + 3·0.044715x²),  t = tanh(c(x + 0.044715x³)), c = √(2/π)
    public static func derivative(_ function: Function, _ x: Float) -> Float {
        switch function {
        case .relu:
            return x > 0 ? 1 : 0
        case .gelu:
            let cdf = 0.5 * (1 + erff(x * Float(1 / 2.0.squareRoot())))
            let pdf = expf(-0.5 * x * x) * Float(1 / (2 * Double.pi).squareRoot())
            return cdf + x * pdf
        case .geluTanh:
            let c = Float((2 / Double.pi).squareRoot())
            let t = tanhf(c * (x + 0.044715 * x * x * x))
            return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x)
        }
    }
}

// MARK: - Feed-forward

public struct FeedForwardCache: Sendable {
    public var input: Matrix
    /// x·W₁ᵀ + b₁, before the activation.
    public var preActivation: Matrix
    /// act(preActivation).
    public var activated: Matrix
}

extension FeedForward {
    /// FFN(x) = act(x·W₁ᵀ + b₁)·W₂ᵀ + b₂.
    public func trainingForward(_ x: Matrix, path: KernelPath) -> (Matrix, FeedForwardCache) {
        let pre = up.trainingForward(x, path: path)
        var act = pre
        let count = act.storage.count
        act.storage.withUnsafeMutableBufferPointer { p in
            if count > 0 { Activation.apply(activation, path, p.baseAddress!, count: count) }
        }
        let y = down.trainingForward(act, path: path)
        return (y, FeedForwardCache(input: x, preActivation: pre, activated: act))
    }

    /// dA = down.backward(dy);  dPre = dA ⊙ act′(pre);  dx = up.backward(dPre).
    public func backward(_ dy: Matrix, cache: FeedForwardCache, gradient g: inout FeedForward, path: KernelPath) -> Matrix {
        var dPre = down.backward(dy, input: cache.activated, gradient: &g.down, path: path)
        precondition(cache.preActivation.shape == dPre.shape, "feed-forward backward: pre-activation \(cache.preActivation.shape) for dA \(dPre.shape)")
        let f = activation
        cache.preActivation.storage.withUnsafeBufferPointer { pre in
            dPre.storage.withUnsafeMutableBufferPointer { d in
                var start = 0
                if f == .gelu && path != .naive {
                    // Identical to the scalar loop except: 16 lanes at a time, Φ by the kernels'
                    // vector erf (|Δ| ≤ 1.5e-7) and φ by their vector exp.
                    typealias V = SIMD16<Float>
                    let invSqrt2Pi = V(repeating: Float(1 / (2 * Double.pi).squareRoot()))
                    while start + 16 <= d.count {
                        let x = UnsafeRawPointer(pre.baseAddress! + start).loadUnaligned(as: V.self)
                        let g = UnsafeRawPointer(d.baseAddress! + start).loadUnaligned(as: V.self)
                        let cdf = 0.5 * VectorMath.onePlusErfScaled(x)
                        let pdf = VectorMath.exp(-0.5 * x * x) * invSqrt2Pi
                        UnsafeMutableRawPointer(d.baseAddress! + start).storeBytes(of: g * (cdf + x * pdf), as: V.self)
                        start += 16
                    }
                }
                for i in start..<d.count { d[i] *= Activation.derivative(f, pre[i]) }
            }
        }
        return up.backward(dPre, input: cache.input, gradient: &g.up, path: path)
    }
}

// MARK: - Embedding and positions

extension EmbeddingTable {
    /// Backward of the gather out[t] = s·E[ids[t]]: a scatter-add, dE[ids[t]] += s·dOut[t].
    /// A token that appears twice receives both rows' gradients.
    public static func backward(ids: [Int], dOut: Matrix, scale: Float = 1, gradient dE: inout Matrix) {
        let d = dOut.cols
        precondition(dE.cols == d && ids.count == dOut.rows, "embedding backward shapes")
        // Each id picks the row of dE written through the pointer below.
        for id in ids { precondition(id >= 0 && id < dE.rows, "embedding backward: id \(id) for a table of \(dE.rows) rows") }
        dOut.storage.withUnsafeBufferPointer { po in
            dE.storage.withUnsafeMutableBufferPointer { pe in
                for (t, id) in ids.enumerated() {
                    let src = po.baseAddress! + t * d, dst = pe.baseAddress! + id * d
                    for j in 0..<d { dst[j] += scale * src[j] }
                }
            }
        }
    }
}

extension EmbeddingTable {
    /// Backward of the tied output head logits = H·Eᵀ ([T, d]·[d, V]):
    ///
    ///     dH = dZ·E        [T, d]
    ///     dE += dZᵀ·H      [V, d]   (added to the same table's input-side scatter-add gradient)
    public func tiedLogitsBackward(_ dLogits: Matrix, hidden: Matrix, gradient dE: inout Matrix, path: KernelPath) -> Matrix {
        let t = hidden.rows, d = dimension, v = vocabularySize
        precondition(dLogits.rows == t && dLogits.cols == v && hidden.cols == d && dE.rows == v && dE.cols == d, "tied head backward shapes")
        var dH = Matrix(rows: t, cols: d)
        guard t > 0 else { return dH }
        dLogits.storage.withUnsafeBufferPointer { pz in
            weight.storage.withUnsafeBufferPointer { pe in
                dH.storage.withUnsafeMutableBufferPointer { ph in
                    GEMM.sgemm(path, m: t, n: d, k: v, a: pz.baseAddress!, lda: v, b: pe.baseAddress!, ldb: d, c: ph.baseAddress!, ldc: d)
                }
            }
            hidden.storage.withUnsafeBufferPointer { ph in
                dE.storage.withUnsafeMutableBufferPointer { pde in
                    GEMM.sgemm(path, transA: true, m: v, n: d, k: t, a: pz.baseAddress!, lda: v, b: ph.baseAddress!, ldb: d,
                               beta: 1, c: pde.baseAddress!, ldc: d)
                }
            }
        }
        return dH
    }
}

/// Backward of the PE add X' = X + P:
/// - for X the gradient passes through unchanged (dX = dX');
/// - a learned table is a gather of rows 0..<T (or per-token position ids), so its gradient is the
///   scatter-add dP[pos[t]] += dX'[t]; a sinusoidal table has no parameters and no gradient.
public enum PositionalEncodingBackward {
    public static func learned(positions: [Int], dOut: Matrix, gradient dP: inout Matrix) {
        EmbeddingTable.backward(ids: positions, dOut: dOut, gradient: &dP)
    }
}
