// AdamW, gradient clipping and the learning-rate schedule. See docs/training.md.
import Foundation
import Kernels
import TensorCore

/// Adam with decoupled weight decay (Loshchilov & Hutter), as `torch.optim.AdamW`:
///
///     t ← t + 1
///     θ ← θ − η·λ·θ                                   (decoupled decay: not part of the gradient)
///     m ← β₁m + (1 − β₁)g,   v ← β₂v + (1 − β₂)g²
///     m̂ = m/(1 − β₁ᵗ),       v̂ = v/(1 − β₂ᵗ)           (bias correction)
///     θ ← θ − η·m̂/(√v̂ + ε)
///
/// Weight decay applies to matrices only, by tensor rank (the shape `visitParameters` gives):
/// rank ≥ 2 (linear weights, embedding tables, CRF transitions) decays; rank 1 (biases, LayerNorm
/// γ and β, the final norms, CRF start/end scores) does not — BERT's rule (no decay on "bias" and
/// "LayerNorm"), stated by shape so it holds under any model's names.
///
/// This is the one update rule. The classic mistakes (Adam + L2, no bias correction) live in the
/// bug zoo (Sources/BugZoo/Variants.swift, #16), built on top of this type.
public struct AdamW: Sendable {
    public var beta1: Double
    public var beta2: Double
    public var epsilon: Double
    public var weightDecay: Double
    /// Steps taken.
    public private(set) var step: Int = 0
    /// First and second moments, one array per parameter tensor in visiting order.
    public var m: [[Float]] = []
    public var v: [[Float]] = []

    /// - Throws: `.invalidArgument` for β outside [0, 1), ε ≤ 0 or λ < 0.
    public init(beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8, weightDecay: Double = 0.01) throws {
        for (name, b) in [("β₁", beta1), ("β₂", beta2)] where !(b >= 0 && b < 1) {
            throw DecoderSpecError.invalidArgument(what: "\(name) = \(b)", reason: "must be in [0, 1)")
        }
        guard epsilon > 0, weightDecay >= 0 else {
            throw DecoderSpecError.invalidArgument(what: "ε = \(epsilon), λ = \(weightDecay)", reason: "need ε > 0 and λ ≥ 0")
        }
        (self.beta1, self.beta2, self.epsilon, self.weightDecay) = (beta1, beta2, epsilon, weightDecay)
    }

    /// Whether a tensor of this shape is weight-decayed: matrices (rank ≥ 2) yes, vectors no.
    public static func decays(shape: [Int]) -> Bool { shape.count >= 2 }

    /// Restores a saved state (moments and step count), e.g. from a checkpoint.
    public mutating func restore(step: Int, m: [[Float]], v: [[Float]]) {
        self.step = step
        self.m = m
        self.v = v
    }

    /// One update of `model` with `gradient` (same type, same visiting order) at learning rate η.
    /// `threads` > 1 cuts tensors of 2¹⁶ values or more into that many chunks updated concurrently
    /// (`DataParallel.forChunks`): every value takes the same operations, so the result is bitwise
    /// the one-thread result.
    ///
    /// `path`: `.naive` runs the scalar loop of the formula (`naiveRange`); `.optimized` and `.parallel`
    /// the same operations 16 lanes at a time (`optimizedRange`: the same IEEE operations in the same
    /// order per value, no contraction into FMAs, so bitwise the naive result — specced).
    ///
    /// `gradientScale` s: the update reads g·s (one Float multiply per value) instead of g — the
    /// clipping factor of `GradientClipping.factor`, applied in the update's own pass instead of a
    /// pass of its own that reads and writes the whole gradient (two of the nine model-sized
    /// streams of a clipped step). Bitwise the update after `GradientClipping.clip` (the same
    /// multiply, rounded once); s = 1 leaves every g unchanged (x·1 = x in IEEE arithmetic).
    ///
    /// A gradient that lists the rows it may be nonzero in (`rowSupports`, e.g. the word embeddings
    /// of a batch's ids) is not read outside them: there the update takes g = +0 — the same
    /// operations on the same value, so bitwise the dense update; θ, m and v still change in every
    /// row (m ← β₁m, v ← β₂v, the step on m̂), as `torch.optim.AdamW`. `.naive` reads every g.
    public mutating func update<M: ParameterContainer>(_ model: inout M, gradient: M, learningRate eta: Double, threads: Int = 1,
                                                       path: KernelPath = .optimized, gradientScale: Float = 1) {
        var grads: [[Float]] = []
        let supports = gradient.rowSupports
        var g = gradient
        g.visitParameters(prefix: "") { _, _, values in grads.append(values) }
        if m.isEmpty {
            m = grads.map { [Float](repeating: 0, count: $0.count) }
            v = m
        }
        precondition(m.count == grads.count && v.count == grads.count, "optimizer state has \(m.count) (m) and \(v.count) (v) tensors, model \(grads.count)")
        // Saturating: a resumed state may carry any step ≥ 0 (a damaged checkpoint's Int.max trapped
        // here, found by the checkpoint fuzzer); past ~10⁶ steps β^t is 0 in Double, so the bias
        // corrections below are exactly 1 either way.
        step = step == .max ? step : step + 1
        let t = Double(step)
        let c1 = 1 - pow(beta1, t), c2 = 1 - pow(beta2, t)
        let b1 = Float(beta1), b2 = Float(beta2), eps = Float(epsilon)
        // η·m̂/(√v̂ + ε) = (η/c1)·m / (√v/√c2 + ε)
        let stepSize = Float(eta / c1), invSqrtC2 = Float(1 / c2.squareRoot())
        let decayFactor = Float(1 - eta * weightDecay)
        var index = 0
        model.visitParameters(prefix: "") { name, shape, theta in
            // The unsafe loop below relies on these counts; `restore` takes any arrays, so they are
            // checked here, in release builds too (one comparison per tensor).
            precondition(grads[index].count == theta.count && m[index].count == theta.count && v[index].count == theta.count,
                         "AdamW state for \(name): gradient \(grads[index].count), m \(m[index].count), v \(v[index].count) values; tensor \(theta.count)")
            let decay = Self.decays(shape: shape) && weightDecay > 0
            let count = theta.count
            // A gradient that lists its nonzero rows of this tensor (`rowSupports`): the rest is +0.
            let rows = supports[index].map { list in
                precondition(shape.count == 2 && shape[0] > 0 && list.allSatisfy { $0 >= 0 && $0 < shape[0] }, "AdamW: rows listed for tensor \(name) of shape \(shape)")
                return (rows: list, width: count / shape[0])
            }
            guard count > 0 else { index += 1; return }
            grads[index].withUnsafeBufferPointer { pg in
                m[index].withUnsafeMutableBufferPointer { pm in
                    v[index].withUnsafeMutableBufferPointer { pv in
                        theta.withUnsafeMutableBufferPointer { pt in
                            let (g, m, v, t) = (SharedPointer(UnsafeMutablePointer(mutating: pg.baseAddress!)), SharedPointer(pm.baseAddress!),
                                                SharedPointer(pv.baseAddress!), SharedPointer(pt.baseAddress!))
                            let constants = Constants(b1: b1, b2: b2, eps: eps, stepSize: stepSize, invSqrtC2: invSqrtC2,
                                                      decayFactor: decay ? decayFactor : nil, gradientScale: gradientScale)
                            DataParallel.forChunks(of: count, threads: threads) { _, r in
                                if path == .naive {
                                    Self.naiveRange(r, g.pointer, m.pointer, v.pointer, t.pointer, constants)
                                } else if let rows {
                                    // Listed rows read g; the others take g = +0 without reading it.
                                    var at = r.lowerBound
                                    for span in DataParallel.spans(rows: rows.rows, width: rows.width, range: r, grid: 1) {
                                        Self.optimizedRange(at..<span.lowerBound, nil, m.pointer, v.pointer, t.pointer, constants)
                                        Self.optimizedRange(span, g.pointer, m.pointer, v.pointer, t.pointer, constants)
                                        at = span.upperBound
                                    }
                                    Self.optimizedRange(at..<r.upperBound, nil, m.pointer, v.pointer, t.pointer, constants)
                                } else {
                                    Self.optimizedRange(r, g.pointer, m.pointer, v.pointer, t.pointer, constants)
                                }
                            }
                        }
                    }
                }
            }
            index += 1
        }
    }

    /// The per-step scalars of the update: β₁, β₂, ε, η/(1 − β₁ᵗ), 1/√(1 − β₂ᵗ), 1 − ηλ when the
    /// tensor decays (nil otherwise), and the gradient's scale s (the clipping factor, 1 unclipped).
    struct Constants: Sendable {
        var b1: Float, b2: Float, eps: Float, stepSize: Float, invSqrtC2: Float
        var decayFactor: Float?
        var gradientScale: Float = 1
    }

    /// The update of values `r`, one at a time, as the formula reads (the reference):
    ///
    ///     g ← s·g;  θ ← θ·(1 − ηλ);  m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²;  θ ← θ − (η/c₁)·m/(√v·(1/√c₂) + ε)
    /// `pg` nil: every g is +0 (not read).
    static func naiveRange(_ r: Range<Int>, _ pg: UnsafeMutablePointer<Float>?, _ pm: UnsafeMutablePointer<Float>,
                           _ pv: UnsafeMutablePointer<Float>, _ pt: UnsafeMutablePointer<Float>, _ k: Constants) {
        for i in r {
            let gi = (pg?[i] ?? 0) * k.gradientScale
            if let f = k.decayFactor { pt[i] *= f }
            let mi = k.b1 * pm[i] + (1 - k.b1) * gi
            let vi = k.b2 * pv[i] + (1 - k.b2) * gi * gi
            pm[i] = mi
            pv[i] = vi
            pt[i] -= k.stepSize * mi / (vi.squareRoot() * k.invSqrtC2 + k.eps)
        }
    }

    /// `naiveRange`, identical except: 16 values at a time (SIMD16<Float>; the tail through
    /// `naiveRange`). Every lane takes the naive value's operations in the same order — multiplies,
    /// adds, √ and ÷ are each correctly rounded, and Swift contracts nothing into an FMA — so the
    /// result is bitwise the naive one (AdamWPathSpecs).
    static func optimizedRange(_ r: Range<Int>, _ pg: UnsafeMutablePointer<Float>?, _ pm: UnsafeMutablePointer<Float>,
                               _ pv: UnsafeMutablePointer<Float>, _ pt: UnsafeMutablePointer<Float>, _ k: Constants) {
        typealias V = SIMD16<Float>
        @inline(__always) func load(_ p: UnsafeMutablePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }
        @inline(__always) func store(_ x: V, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: x, as: V.self) }
        let b1 = V(repeating: k.b1), b2 = V(repeating: k.b2), c1 = V(repeating: 1 - k.b1), c2 = V(repeating: 1 - k.b2)
        let stepSize = V(repeating: k.stepSize), invSqrtC2 = V(repeating: k.invSqrtC2), eps = V(repeating: k.eps)
        let scale = V(repeating: k.gradientScale)
        var i = r.lowerBound
        let end = r.upperBound
        // Without weight decay the factor is 1: θ·1 = θ exactly, so one loop serves both.
        let decay = V(repeating: k.decayFactor ?? 1)
        @inline(__always) func update(_ i: Int, _ g: V) {
            let m = b1 * load(pm + i) + c1 * g
            let v = b2 * load(pv + i) + c2 * g * g
            store(m, pm + i)
            store(v, pv + i)
            store(load(pt + i) * decay - stepSize * m / (v.squareRoot() * invSqrtC2 + eps), pt + i)
        }
        if let pg {
            while i + 16 <= end {
                update(i, load(pg + i) * scale)
                i += 16
            }
        } else {
            let g = V(repeating: 0) * scale  // the g·s of a +0 gradient, as the naive loop forms it
            while i + 16 <= end {
                update(i, g)
                i += 16
            }
        }
        naiveRange(i..<end, pg, pm, pv, pt, k)
    }
}

public enum GradientClipping {
    /// ‖g‖₂ over every tensor, accumulated in Double: squares are summed in Float blocks of 1024
    /// (fast), and a tensor whose Float block overflows (|g| ≳ 1e19, a loss spike) is summed again
    /// with Double squares, so a finite spike is measured — and clipped — instead of reading ∞.
    /// ∞ or NaN only when a gradient entry is itself non-finite. `threads` > 1 computes the tensors'
    /// partial sums concurrently, each as on one thread, and adds them in visiting order: bitwise the
    /// one-thread norm.
    /// `path`: `.naive` sums each block's squares one at a time (`naiveSquaredSum`); `.optimized` and
    /// `.parallel` in 16 Float lanes per block (`squaredSum`).
    public static func globalNorm<M: ParameterContainer>(_ gradient: M, threads: Int = 1, path: KernelPath = .optimized) -> Double {
        var g = gradient
        var tensors: [[Float]] = []
        // The rows of tensors whose gradient lists them, as element spans (`rowSupports`).
        let supports = path == .naive ? [:] : gradient.rowSupports
        var listed: [Int: (rows: [Int], width: Int)] = [:]
        g.visitParameters(prefix: "") { name, shape, v in
            if let rows = supports[tensors.count] {
                precondition(shape.count == 2 && shape[0] > 0 && rows.allSatisfy { $0 >= 0 && $0 < shape[0] }, "globalNorm: rows listed for tensor \(name) of shape \(shape)")
                listed[tensors.count] = (rows, v.count / shape[0])
            }
            tensors.append(v)
        }
        let partials = SharedSlots<Double>(count: tensors.count)
        let all = tensors, rows = listed
        @Sendable func sum(_ t: Int) -> Double {
            if path == .naive { return naiveSquaredSum(all[t]) }
            return squaredSum(all[t], rows: rows[t])
        }
        if threads > 1 {
            DispatchQueue.concurrentPerform(iterations: all.count) { t in partials.set(t, sum(t)) }
        } else {
            for t in all.indices { partials.set(t, sum(t)) }
        }
        var sum = 0.0
        for t in all.indices { sum += partials.get(t) }
        return sum.squareRoot()
    }

    /// Σ v², one tensor, the optimized form: identical to `naiveSquaredSum` except that each block of
    /// 1024 values is summed in 16 Float lanes (64 squares per lane, then the lanes in Double), so the
    /// relative error is ≤ 65u (u = 2⁻²⁴; nonnegative terms) instead of ≤ 1025u. Again in Double
    /// squares when a block overflows.
    ///
    /// `rows`: the rows (sorted) of a row-major tensor `width` values wide outside which every value
    /// is +0 (a gradient's `rowSupports`); only the blocks of 1,024 that hold a listed row's values
    /// are summed. Bitwise the dense sum: a block of +0s adds +0 to a partial sum that is never −0.
    static func squaredSum(_ v: [Float], rows: (rows: [Int], width: Int)? = nil) -> Double {
        v.withUnsafeBufferPointer { p in
            typealias V = SIMD16<Float>
            let n = p.count
            // The blocks to sum: all, or those meeting a listed row.
            let blocks = rows.map { DataParallel.spans(rows: $0.rows, width: $0.width, range: 0..<n, grid: 1024) + [(n / 1024) * 1024..<n] }
                ?? [0..<n]
            var partial = 0.0
            for span in blocks {
                var i = span.lowerBound
                while i < span.upperBound {
                    let end = min(n, i + 1024)
                    var acc = V()
                    while i + 16 <= end {
                        let x = UnsafeRawPointer(p.baseAddress! + i).loadUnaligned(as: V.self)
                        acc += x * x
                        i += 16
                    }
                    var s: Float = 0
                    while i < end { s += p[i] * p[i]; i += 1 }
                    let lanes = SIMD8<Double>(acc.lowHalf) + SIMD8<Double>(acc.highHalf)
                    partial += lanes.sum() + Double(s)
                }
            }
            if !partial.isFinite {
                partial = 0
                for i in 0..<n { let x = Double(p[i]); partial += x * x }
            }
            return partial
        }
    }

    /// Σ v², one tensor, the reference: squares summed one at a time in Float blocks of 1024, each
    /// block added in Double (relative error ≤ 1025u); again in Double squares on overflow.
    static func naiveSquaredSum(_ v: [Float]) -> Double {
        v.withUnsafeBufferPointer { p in
            var s: Float = 0
            var partial = 0.0
            for i in 0..<p.count {
                s += p[i] * p[i]
                if i & 1023 == 1023 { partial += Double(s); s = 0 }
            }
            partial += Double(s)
            if !partial.isFinite {
                partial = 0
                for i in 0..<p.count { let x = Double(p[i]); partial += x * x }
            }
            return partial
        }
    }

    /// The factor clipping multiplies every gradient value by: maxNorm/(‖g‖ + 1e-6) in Float when
    /// ‖g‖ > maxNorm and finite, else exactly 1. `clip` applies it in a pass of its own; the trainer
    /// hands it to `AdamW.update(gradientScale:)`, which applies it in the update's pass (bitwise the same).
    public static func factor(norm: Double, maxNorm: Double) -> Float {
        guard norm > maxNorm, norm.isFinite else { return 1 }
        return Float(maxNorm / (norm + 1e-6))
    }

    /// Clip by global norm, as `torch.nn.utils.clip_grad_norm_`: when ‖g‖ > maxNorm every tensor is
    /// scaled by maxNorm/(‖g‖ + 1e-6). Returns the norm before clipping. `threads` > 1 scales large
    /// tensors in concurrent chunks (bitwise the one-thread result).
    @discardableResult
    public static func clip<M: ParameterContainer>(_ gradient: inout M, maxNorm: Double, knownNorm: Double? = nil, threads: Int = 1) -> Double {
        let norm = knownNorm ?? globalNorm(gradient, threads: threads)
        let factor = factor(norm: norm, maxNorm: maxNorm)
        guard factor != 1 else { return norm }
        gradient.visitParameters(prefix: "") { _, _, v in
            let count = v.count
            guard count > 0 else { return }
            v.withUnsafeMutableBufferPointer { p in
                let shared = SharedPointer(p.baseAddress!)
                DataParallel.forChunks(of: count, threads: threads) { _, r in
                    let p = shared.pointer
                    for i in r { p[i] *= factor }
                }
            }
        }
        return norm
    }
}

/// Linear warm-up then linear decay to 0 (BERT's schedule, `get_linear_schedule_with_warmup`):
///
///     η(s) = η_max · s/W                     for s < W
///     η(s) = η_max · max(0, (S − s)/(S − W))  for s ≥ W        (s = 0-based step, S total steps)
public struct LinearSchedule: Sendable, Equatable {
    public var peak: Double
    public var warmupSteps: Int
    public var totalSteps: Int

    /// - Throws: `.invalidArgument` when steps are negative or warm-up exceeds the total.
    public init(peak: Double, warmupSteps: Int, totalSteps: Int) throws {
        guard warmupSteps >= 0, totalSteps > 0, warmupSteps <= totalSteps, peak > 0, peak.isFinite else {
            throw DecoderSpecError.invalidArgument(what: "schedule (peak \(peak), warm-up \(warmupSteps), total \(totalSteps))",
                                                   reason: "need peak > 0 and 0 ≤ warm-up ≤ total, total > 0")
        }
        (self.peak, self.warmupSteps, self.totalSteps) = (peak, warmupSteps, totalSteps)
    }

    public func learningRate(at step: Int) -> Double {
        if step < warmupSteps { return peak * Double(step) / Double(warmupSteps) }
        if totalSteps == warmupSteps { return 0 }
        return peak * max(0, Double(totalSteps - step) / Double(totalSteps - warmupSteps))
    }
}

