// Data parallelism over a batch: the batch's examples are cut into one shard per thread, each
// shard's loss and gradient is computed on its own core, and the shards' results are combined into
// the whole batch's mean — in a fixed order, so a run is bit-reproducible for a given thread count.
// See docs/training.md ("Both cores: data parallelism over the batch").
import Foundation
import TensorCore

/// Splits a batch over threads and combines the shards' losses and gradients.
///
/// A task's loss is a mean over the batch: L = (1/N)·Σ_r ℓ_r, where N is the task's
/// `lossDenominator` (e.g. the labelled tokens) and is additive over examples. With the batch cut into
/// shards k = 1…K, each with its own mean L_k = (1/n_k)·Σ_{r∈k} ℓ_r and Σ_k n_k = N,
///
///     L = Σ_k (n_k/N)·L_k,    ∇L = Σ_k (n_k/N)·∇L_k
///
/// exactly (in real arithmetic). In floating point the grouping of the sum over rows changes, so the
/// result differs from the one-thread gradient by rounding only (docs/training.md states the bound the
/// specs check). The combination is evaluated element by element in Double, k = 1…K in order, and
/// rounded once to Float: the same shards give the same bits, whatever thread ran which shard.
public enum DataParallel {
    /// Cuts `examples` into at most `count` non-empty shards of nearly equal token count:
    /// longest-processing-time first — examples by length, longest first (ties: earlier in the batch
    /// first), each to the shard with the fewest tokens so far (ties: the lower shard). Each shard
    /// keeps its examples in batch order. Deterministic: depends only on the lengths and `count`.
    ///
    /// - Parameters: `examples`, the batch (example indices); `lengths[i]`, the tokens of batch
    ///   position i (`lengths.count == examples.count`); `count` ≥ 1.
    /// - Returns: shards as lists of example indices; fewer than `count` when the batch has fewer examples.
    public static func shards(_ examples: [Int], lengths: [Int], count: Int) -> [[Int]] {
        precondition(lengths.count == examples.count && count >= 1, "DataParallel.shards: one length per example and count ≥ 1")
        let k = min(count, examples.count)
        guard k > 1 else { return examples.isEmpty ? [] : [examples] }
        let order = examples.indices.sorted { (-lengths[$0], $0) < (-lengths[$1], $1) }
        var load = [Int](repeating: 0, count: k)
        var owner = [Int](repeating: 0, count: examples.count)
        for i in order {
            var best = 0
            for s in 1..<k where load[s] < load[best] { best = s }
            owner[i] = best
            load[best] += max(1, lengths[i])
        }
        var out = [[Int]](repeating: [], count: k)
        for i in examples.indices { out[owner[i]].append(examples[i]) }
        return out
    }

    /// The batch's mean loss, its gradient and the tokens read, computed over `threads` shards
    /// concurrently (`DispatchQueue.concurrentPerform`, one shard per iteration) and combined as
    /// L = Σ_k (n_k/N)·L_k, ∇L = Σ_k (n_k/N)·∇L_k (n_k: the shard's `lossDenominator`).
    ///
    /// One call of `task.lossAndGradient` on the whole batch instead when `threads` is 1, the batch
    /// has one example, the task does not report its denominator (nil), or the batch has none (N = 0).
    /// A shard whose n_k is 0 is still computed (its errors are reported) but weighs nothing.
    ///
    /// Nested parallelism: a `.parallel` matrix product inside a shard calls `concurrentPerform`
    /// from a worker of this one; Dispatch then runs the inner iterations on that worker's thread
    /// (measured on Linux: every inner iteration ran on its outer iteration's thread), so the shards'
    /// kernels run single-threaded. Each such product still cuts its blocks and repacks (+15 % CPU
    /// per MiniLM step): give the task the single-threaded kernels (`.optimized`) when `threads` > 1,
    /// as `decoder-spec finetune ner` does.
    ///
    /// Thread safety: the shards share `model` and `task` read-only; both are values (every model
    /// of this package is a struct of arrays, copy-on-write), and each shard builds its own
    /// gradient. A task must not mutate shared state in `lossAndGradient`.
    /// - Throws: the first error of a shard, in shard order (the same error on every run).
    public static func lossAndGradient<T: TrainingTask>(_ task: T, model: T.Model, examples: [Int], threads: Int)
        throws -> (loss: Double, gradient: T.Model, tokens: Int)
    {
        let r = try step(task, model: model, examples: examples, threads: threads)
        return (r.loss, r.gradient, r.tokens)
    }

    /// `lossAndGradient`, plus Σ g̃² of the combined gradient (in Double, from the combination's own
    /// pass) when the batch was split; nil when it was one call. The trainer takes the gradient norm
    /// from it instead of reading the gradient again.
    public static func step<T: TrainingTask>(_ task: T, model: T.Model, examples: [Int], threads: Int)
        throws -> (loss: Double, gradient: T.Model, tokens: Int, squaredNorm: Double?)
    {
        func one() throws -> (loss: Double, gradient: T.Model, tokens: Int, squaredNorm: Double?) {
            let r = try task.lossAndGradient(model, examples: examples)
            return (r.loss, r.gradient, r.tokens, nil)
        }
        guard threads > 1, examples.count > 1, let total = task.lossDenominator(examples: examples), total > 0 else { return try one() }
        let shards = Self.shards(examples, lengths: examples.map(task.length(of:)), count: threads)
        // Each shard's denominator; nil from any shard (inconsistent task) falls back to one call.
        var denominators: [Int] = []
        for shard in shards {
            guard let n = task.lossDenominator(examples: shard) else { return try one() }
            denominators.append(n)
        }
        guard denominators.reduce(0, +) == total else {
            throw DecoderSpecError.invalidArgument(what: "loss denominators \(denominators) of \(shards.count) shards",
                                                   reason: "sum to \(denominators.reduce(0, +)), the whole batch's is \(total): a task's lossDenominator must be additive over examples")
        }
        let job = ShardJob(task: task, model: model, shards: shards)
        let runner: any ShardRunner = job  // the closure captures no generic type
        DispatchQueue.concurrentPerform(iterations: shards.count) { k in runner.run(k) }
        // Taken out of the job (which then holds no reference), so the first gradient's buffers are
        // uniquely referenced and the combination writes into them without a copy.
        var loss = 0.0, tokens = 0
        var gradients: [T.Model] = [], weights: [Double] = []
        for k in shards.indices {
            let part = try job.take(k).get()
            tokens += part.tokens
            guard denominators[k] > 0 else { continue }
            let w = Double(denominators[k]) / Double(total)
            loss += w * part.loss
            gradients.append(part.gradient)
            weights.append(w)
        }
        let (gradient, squares) = combining(&gradients, weights: weights, threads: threads)
        return (loss, gradient, tokens, squares)
    }

    /// Σ_k w_k·g_k, element by element: accumulated in Double over k in order, rounded once to
    /// Float (so |result − Σ_k w_k·g_k| ≤ u·|Σ_k w_k·g_k| + K·2⁻⁵³·Σ_k w_k·|g_k|, u = 2⁻²⁴). Tensors of
    /// 2¹⁶ elements or more are cut into `threads` chunks computed concurrently; the value of an
    /// element does not depend on the chunking.
    /// - Precondition: `gradients` non-empty, one weight per gradient, all of one model's shapes.
    public static func combine<M: ParameterContainer>(_ gradients: [M], weights: [Double], threads: Int = 1) -> M {
        var list = gradients
        return combining(&list, weights: weights, threads: threads).gradient
    }

    /// `combine`, consuming `gradients` (left empty): the result is written into the first one's
    /// buffers, which the caller has left uniquely referenced. Also returns Σ g̃² of the result, in
    /// Double: per chunk in 8 lanes, then lanes, chunks and tensors added in a fixed order (fixed for
    /// a given `threads`), so it is reproducible; its relative error is ≤ (n + 8)·2⁻⁵³ for n values.
    ///
    /// A tensor for which every gradient lists its rows (`rowSupports`) is combined on the union of
    /// the lists only, and the result lists that union: elsewhere every gradient is +0, the dense
    /// pass would write Float(Σ_k w_k·(+0)) = +0 over the +0 already there and add +0 squares (each
    /// lane, a sum of squares, is never −0), so the bits are the dense pass's (DataParallelSpecs).
    /// (Only when every weight is finite and its sign +: then w·(+0) = +0; else all dense.)
    static func combining<M: ParameterContainer>(_ gradients: inout [M], weights: [Double], threads: Int) -> (gradient: M, squares: Double) {
        precondition(!gradients.isEmpty && gradients.count == weights.count, "DataParallel.combine: one weight per gradient")
        var out = gradients.removeFirst()
        // Tensors whose rows every gradient lists: the union of the lists (sorted, distinct).
        // Only with weights that are finite and not negative (−0 included): then w·(+0) = +0.
        let supports = weights.allSatisfy({ $0.isFinite && $0.sign == .plus }) ? Self.unionSupports([out.rowSupports] + gradients.map(\.rowSupports)) : [:]
        // The other shards' tensors, in visiting order (array references, not copies).
        var others: [[[Float]]] = []
        for g in gradients {
            var copy = g
            var tensors: [[Float]] = []
            copy.visitParameters(prefix: "") { _, _, v in tensors.append(v) }
            others.append(tensors)
        }
        let w = weights, tensors = others
        var index = 0, squares = 0.0
        out.visitParameters(prefix: "") { name, shape, v in
            let t = index
            index += 1
            let count = v.count
            // combineRange reads `count` values of every other gradient's tensor t through a pointer:
            // the gradients must be of one model (checked in release builds too; one comparison per
            // tensor and gradient).
            precondition(tensors.allSatisfy { t < $0.count && $0[t].count == count },
                         "DataParallel.combine: tensor \(name) has \(count) values in the first gradient, another gradient differs (gradients of one model only)")
            guard count > 0 else { return }
            let rows = supports[t]
            let width = shape.count == 2 && shape[0] > 0 ? count / shape[0] : 0
            if let rows { precondition(width > 0 && rows.allSatisfy { $0 >= 0 && $0 < shape[0] }, "DataParallel.combine: rows listed for tensor \(name) of shape \(shape)") }
            let chunks = threads > 1 && count >= 1 << 16 ? threads : 1
            let partials = SharedSlots<Double>(count: chunks)
            v.withUnsafeMutableBufferPointer { acc in
                let target = SharedPointer(acc.baseAddress!)
                forChunks(of: count, threads: chunks, minimum: 0) { c, r in
                    let spans = rows.map { Self.spans(rows: $0, width: width, range: r, grid: 8) } ?? [r.lowerBound..<(r.lowerBound + (r.count / 8) * 8)]
                    partials.set(c, combineRange(target.pointer, others: tensors, tensor: t, weights: w, range: r, spans: spans))
                }
            }
            for c in 0..<chunks { squares += partials.get(c) }
        }
        precondition(tensors.allSatisfy { $0.count == index }, "DataParallel.combine: gradients of \(index) and \(tensors.map(\.count)) tensors (gradients of one model only)")
        out.rowSupports = supports
        return (out, squares)
    }

    /// The tensors every one of `lists` gives rows for, each with the sorted union of its rows.
    static func unionSupports(_ lists: [[Int: [Int]]]) -> [Int: [Int]] {
        guard var out = lists.first else { return [:] }
        for other in lists.dropFirst() {
            out = out.reduce(into: [:]) { acc, entry in
                if let more = other[entry.key] { acc[entry.key] = Array(Set(entry.value).union(more)).sorted() }
            }
        }
        return out
    }

    /// The element spans of `range` that cover rows `rows` (sorted) of a row-major tensor `width`
    /// values wide, widened to the `grid` of `range` (each span starts and ends at
    /// range.lowerBound + a multiple of `grid`, the end at most the last such point in the range),
    /// merged where they meet, in order. Elements of the range beyond its last grid point are left
    /// to the caller's tail; elements outside the spans lie in rows not listed.
    static func spans(rows: [Int], width: Int, range: Range<Int>, grid: Int) -> [Range<Int>] {
        let lo = range.lowerBound, last = lo + (range.count / grid) * grid
        var out: [Range<Int>] = []
        for row in rows {
            let a = max(lo, row * width), b = min(last, (row + 1) * width)
            guard a < b else { continue }
            let start = lo + ((a - lo) / grid) * grid, end = min(last, lo + ((b - lo + grid - 1) / grid) * grid)
            if let prev = out.last, start <= prev.upperBound {
                out[out.count - 1] = prev.lowerBound..<max(prev.upperBound, end)
            } else {
                out.append(start..<end)
            }
        }
        return out
    }

    /// acc[j] = Float(w₀·acc[j] + Σ_{k≥1} w_k·others[k−1][tensor][j]) for j in `spans` (8 values at a
    /// time; each span starts at range.lowerBound + a multiple of 8 and ends at most at the range's
    /// last such point) and in the range's tail past that point (one at a time), in Double; returns
    /// Σ_j acc[j]² (the new values) in Double: 8 lanes, lane l holding the j ≡ range.lowerBound + l
    /// (mod 8), then added. The dense pass is spans = [the whole grid part of the range].
    private static func combineRange(_ acc: UnsafeMutablePointer<Float>, others: [[[Float]]], tensor: Int, weights: [Double], range: Range<Int>,
                                     spans: [Range<Int>]) -> Double {
        // Pointers to the other shards' tensor (their arrays outlive this call: `others` holds them).
        let sources: [UnsafePointer<Float>] = others.map { shard in shard[tensor].withUnsafeBufferPointer { $0.baseAddress! } }
        let w0 = weights[0]
        let rest = Array(weights.dropFirst())
        var lanes = SIMD8<Double>()
        func load(_ p: UnsafePointer<Float>, _ j: Int) -> SIMD8<Double> {
            SIMD8<Double>(UnsafeRawPointer(p + j).loadUnaligned(as: SIMD8<Float>.self))
        }
        for span in spans {
            var j = span.lowerBound
            let end = span.upperBound
            if sources.count == 1 {
                let (g, w1) = (sources[0], rest[0])
                while j < end {
                    let x = SIMD8<Float>(w0 * load(acc, j) + w1 * load(g, j))
                    UnsafeMutableRawPointer(acc + j).storeBytes(of: x, as: SIMD8<Float>.self)
                    let d = SIMD8<Double>(x)
                    lanes += d * d
                    j += 8
                }
            } else {
                while j < end {
                    var s = w0 * load(acc, j)
                    for k in sources.indices { s += rest[k] * load(sources[k], j) }
                    let x = SIMD8<Float>(s)
                    UnsafeMutableRawPointer(acc + j).storeBytes(of: x, as: SIMD8<Float>.self)
                    let d = SIMD8<Double>(x)
                    lanes += d * d
                    j += 8
                }
            }
        }
        var tail = 0.0
        for j in (range.lowerBound + (range.count / 8) * 8)..<range.upperBound {
            var s = w0 * Double(acc[j])
            for k in sources.indices { s += rest[k] * Double(sources[k][j]) }
            let x = Float(s)
            acc[j] = x
            tail += Double(x) * Double(x)
        }
        var sum = 0.0
        for l in 0..<8 { sum += lanes[l] }
        return sum + tail
    }
}

extension DataParallel {
    /// Runs `body(c, range)` over contiguous chunks c of 0..<count: one chunk (on this thread) when
    /// `threads` ≤ 1 or count < `minimum`, else `threads` chunks (some possibly empty), concurrently
    /// (`DispatchQueue.concurrentPerform`). For element-wise loops, whose results do not depend on
    /// the chunking.
    public static func forChunks(of count: Int, threads: Int, minimum: Int = 1 << 16, _ body: @Sendable (Int, Range<Int>) -> Void) {
        guard count > 0 else { return }
        guard threads > 1, count >= minimum else { return body(0, 0..<count) }
        let per = (count + threads - 1) / threads
        DispatchQueue.concurrentPerform(iterations: threads) { c in
            let lo = min(count, c * per), hi = min(count, lo + per)
            body(c, lo..<hi)
        }
    }
}

/// A pointer shared by the iterations of `concurrentPerform`, each writing a disjoint range.
struct SharedPointer<T>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<T>
    init(_ pointer: UnsafeMutablePointer<T>) { self.pointer = pointer }
}

/// One value per iteration of `concurrentPerform`, written by that iteration, read after the join.
final class SharedSlots<T: Sendable>: @unchecked Sendable {
    private var values: [T?]
    private let lock = NSLock()
    init(count: Int) { values = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ value: T) {
        lock.lock()
        defer { lock.unlock() }
        values[i] = value
    }
    func get(_ i: Int) -> T {
        lock.lock()
        defer { lock.unlock() }
        return values[i]!
    }
}

/// The shards of one step: the task and model they share read-only, and one result slot per shard,
/// written by exactly one iteration of `concurrentPerform` and read after it returns.
///
/// `@unchecked Sendable`: tasks and models need not be `Sendable` (the protocols predate the
/// threads), so the compiler cannot check the sharing. What makes it safe is the contract documented on
/// `DataParallel.lossAndGradient` — `lossAndGradient` reads the task and model and builds a new
/// gradient — and the lock around the slots.
private protocol ShardRunner: AnyObject, Sendable {
    func run(_ k: Int)
}

private final class ShardJob<T: TrainingTask>: ShardRunner, @unchecked Sendable {
    typealias Part = (loss: Double, gradient: T.Model, tokens: Int)
    let task: T
    let model: T.Model
    let shards: [[Int]]
    private var slots: [Result<Part, any Error>?]
    private let lock = NSLock()

    init(task: T, model: T.Model, shards: [[Int]]) {
        (self.task, self.model, self.shards) = (task, model, shards)
        slots = Array(repeating: nil, count: shards.count)
    }

    func run(_ k: Int) {
        let r = Result<Part, any Error> { try task.lossAndGradient(model, examples: shards[k]) }
        lock.lock()
        defer { lock.unlock() }
        slots[k] = r
    }

    /// Shard k's result, removed from its slot.
    func take(_ k: Int) -> Result<Part, any Error> {
        lock.lock()
        defer { lock.unlock() }
        defer { slots[k] = nil }
        return slots[k]!
    }
}
