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
    /// kernels run single-threaded, with one fork/join's overhead per product.
    ///
    /// Thread safety: the shards share `model` and `task` read-only; both are values (every model
    /// of this package is a struct of arrays, copy-on-write), and each shard builds its own
    /// gradient. A task must not mutate shared state in `lossAndGradient`.
    /// - Throws: the first error of a shard, in shard order (the same error on every run).
    public static func lossAndGradient<T: TrainingTask>(_ task: T, model: T.Model, examples: [Int], threads: Int)
        throws -> (loss: Double, gradient: T.Model, tokens: Int)
    {
        guard threads > 1, examples.count > 1, let total = task.lossDenominator(examples: examples), total > 0 else {
            return try task.lossAndGradient(model, examples: examples)
        }
        let shards = Self.shards(examples, lengths: examples.map(task.length(of:)), count: threads)
        // Each shard's denominator; nil from any shard (inconsistent task) falls back to one call.
        var denominators: [Int] = []
        for shard in shards {
            guard let n = task.lossDenominator(examples: shard) else { return try task.lossAndGradient(model, examples: examples) }
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
        return (loss, combining(&gradients, weights: weights, threads: threads), tokens)
    }

    /// Σ_k w_k·g_k, element by element: accumulated in Double over k in order, rounded once to
    /// Float (so |result − Σ_k w_k·g_k| ≤ u·|Σ_k w_k·g_k| + K·2⁻⁵³·Σ_k w_k·|g_k|, u = 2⁻²⁴). Tensors of
    /// 2¹⁶ elements or more are cut into `threads` chunks computed concurrently; the value of an
    /// element does not depend on the chunking.
    /// - Precondition: `gradients` non-empty, one weight per gradient, all of one model's shapes.
    public static func combine<M: ParameterContainer>(_ gradients: [M], weights: [Double], threads: Int = 1) -> M {
        var list = gradients
        return combining(&list, weights: weights, threads: threads)
    }

    /// `combine`, consuming `gradients` (left empty): the result is written into the first one's
    /// buffers, which the caller has left uniquely referenced.
    static func combining<M: ParameterContainer>(_ gradients: inout [M], weights: [Double], threads: Int) -> M {
        precondition(!gradients.isEmpty && gradients.count == weights.count, "DataParallel.combine: one weight per gradient")
        var out = gradients.removeFirst()
        if gradients.isEmpty && weights[0] == 1 { return out }
        // The other shards' tensors, in visiting order (array references, not copies).
        var others: [[[Float]]] = []
        for g in gradients {
            var copy = g
            var tensors: [[Float]] = []
            copy.visitParameters(prefix: "") { _, _, v in tensors.append(v) }
            others.append(tensors)
        }
        let w = weights, tensors = others
        var index = 0
        out.visitParameters(prefix: "") { _, _, v in
            let t = index
            index += 1
            let count = v.count
            guard count > 0 else { return }
            v.withUnsafeMutableBufferPointer { acc in
                let target = SharedPointer(acc.baseAddress!)
                forChunks(of: count, threads: threads) { r in combineRange(target.pointer, others: tensors, tensor: t, weights: w, range: r) }
            }
        }
        return out
    }

    /// acc[j] = Float(w₀·acc[j] + Σ_{k≥1} w_k·others[k−1][tensor][j]) for j in `range`, in Double,
    /// 4096 elements at a time.
    private static func combineRange(_ acc: UnsafeMutablePointer<Float>, others: [[[Float]]], tensor: Int, weights: [Double], range: Range<Int>) {
        var sum = [Double](repeating: 0, count: min(4096, range.count))
        sum.withUnsafeMutableBufferPointer { s in
            var start = range.lowerBound
            while start < range.upperBound {
                let n = min(s.count, range.upperBound - start)
                let w0 = weights[0]
                for j in 0..<n { s[j] = w0 * Double(acc[start + j]) }
                for k in others.indices {
                    let wk = weights[k + 1]
                    others[k][tensor].withUnsafeBufferPointer { g in
                        for j in 0..<n { s[j] += wk * Double(g[start + j]) }
                    }
                }
                for j in 0..<n { acc[start + j] = Float(s[j]) }
                start += n
            }
        }
    }
}

extension DataParallel {
    /// Runs `body` over contiguous chunks of 0..<count: one chunk (on this thread) when `threads` ≤ 1
    /// or count < `minimum`, else `threads` chunks, concurrently (`DispatchQueue.concurrentPerform`).
    /// For element-wise loops, whose results do not depend on the chunking.
    public static func forChunks(of count: Int, threads: Int, minimum: Int = 1 << 16, _ body: @Sendable (Range<Int>) -> Void) {
        guard count > 0 else { return }
        guard threads > 1, count >= minimum else { return body(0..<count) }
        let per = (count + threads - 1) / threads
        DispatchQueue.concurrentPerform(iterations: threads) { c in
            let lo = c * per, hi = min(count, lo + per)
            if lo < hi { body(lo..<hi) }
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
