import DecoderSpec
import Foundation
import SpecSupport
import Testing

/// `DataParallel.map` (the NER evaluation's concurrent batches), an extension of `DataParallelSpecs`
/// so that the ThreadSanitizer pass (`scripts/sanitize`, TSAN_SUITES) runs it.
extension DataParallelSpecs {
    @Test("DataParallel.map: every index once, in order, for 1…5 threads and counts 0…9 (closed form i² + 1)",
          arguments: [1, 2, 3, 5])
    func parallelMap(threads: Int) throws {
        for count in 0...9 {
            let calls = CallLog()
            let out = try DataParallel.map(count, threads: threads) { i -> Int in
                calls.record(i)
                return i * i + 1
            }
            #expect(out == (0..<count).map { $0 * $0 + 1 }, "count \(count), \(threads) threads")
            #expect(calls.sorted == Array(0..<count), "count \(count), \(threads) threads: each index once")
        }
    }

    @Test("DataParallel.map: the lowest failing index's error, whichever thread failed first", arguments: [1, 2, 3])
    func parallelMapError(threads: Int) {
        let calls = CallLog()
        #expect(throws: DecoderSpecError.invalidArgument(what: "index 3", reason: "fails")) {
            _ = try DataParallel.map(8, threads: threads) { i -> Int in
                calls.record(i)
                if i == 3 || i == 6 { throw DecoderSpecError.invalidArgument(what: "index \(i)", reason: "fails") }
                return i
            }
        }
        #expect(Set(0...3).isSubset(of: calls.sorted), "every index up to the first failure ran")
    }
}

/// The indices a concurrent body was called with.
private final class CallLog: @unchecked Sendable {
    private var indices: [Int] = []
    private let lock = NSLock()
    func record(_ i: Int) { lock.lock(); indices.append(i); lock.unlock() }
    var sorted: [Int] { lock.lock(); defer { lock.unlock() }; return indices.sorted() }
}
