// An order-keeping parallel map, for work whose items are independent (e.g. evaluating a model on
// batches of held-out sentences): the results, and their bits, do not depend on the thread count.
import Foundation

extension DataParallel {
    /// `[body(0), body(1), …, body(count − 1)]`, computed on up to `threads` threads
    /// (`DispatchQueue.concurrentPerform`): thread t takes the indices t, t + threads, t + 2·threads, ….
    /// Each result is kept in the slot of its index, so the output is the one-thread output whenever
    /// `body(i)` depends on i alone. One thread (this one) when `threads` ≤ 1 or `count` ≤ 1.
    ///
    /// `body` may run concurrently with itself: it must only read shared state (a model, a list of
    /// examples) and build its result anew, as `DataParallel.lossAndGradient`'s tasks do.
    ///
    /// - Throws: the error of the lowest index whose `body` threw (on one thread, the first error stops
    ///   the map; on several, the indices already claimed still run).
    public static func map<T>(_ count: Int, threads: Int, _ body: (Int) throws -> T) throws -> [T] {
        guard threads > 1, count > 1 else { return try (0..<count).map(body) }
        return try withoutActuallyEscaping(body) { body in
            let job = MapJob(count: count, body: body)
            let k = min(threads, count)
            DispatchQueue.concurrentPerform(iterations: k) { t in
                for i in stride(from: t, to: count, by: k) { job.run(i) }
            }
            return try job.results()
        }
    }
}

/// The body and one result slot per index, written by exactly one iteration and read after the join.
/// `@unchecked Sendable`: the body's captures need not be `Sendable`; the contract on
/// `DataParallel.map` (the body only reads what it shares) and the lock around the slots make it safe.
private final class MapJob<T>: @unchecked Sendable {
    let body: (Int) throws -> T
    private var slots: [Result<T, any Error>?]
    private let lock = NSLock()

    init(count: Int, body: @escaping (Int) throws -> T) {
        self.body = body
        slots = Array(repeating: nil, count: count)
    }

    func run(_ i: Int) {
        let r = Result<T, any Error> { try body(i) }
        lock.lock()
        defer { lock.unlock() }
        slots[i] = r
    }

    func results() throws -> [T] {
        lock.lock()
        defer { lock.unlock() }
        return try slots.map { try $0!.get() }
    }
}
