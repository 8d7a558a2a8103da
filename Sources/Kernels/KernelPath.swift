#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Which implementation of the hot loops a computation runs on — the one switch from a kernel
/// call up to a whole model, a generation or a training step. Every kernel entry point, layer,
/// model and the trainer takes a `KernelPath`, so a spec or a benchmark runs a whole model on each
/// path by one argument (`for path in KernelPath.allCases`).
///
/// What each path runs, kernel by kernel (the one place this mapping is written down):
///
/// | kernel                          | `.naive`                 | `.optimized`                          | `.parallel`                    |
/// |---------------------------------|--------------------------|---------------------------------------|--------------------------------|
/// | `GEMM.sgemm` / `dgemm`          | the triple loop          | packed, blocked SIMD (GEMV when m = 1)| optimized, one block per core  |
/// | `Softmax.rows` / `logRows`      | three scalar passes      | SIMD passes, vector exp               | = optimized                    |
/// | `LayerNormKernel.forward`       | two passes in Double     | SIMD, corrected mean                  | = optimized                    |
/// | `Activation.apply`              | libm erf / tanh          | SIMD approximations                   | = optimized                    |
/// | `PositionalTable.sinusoidal`    | pow, sin, cos per entry  | rotation recurrence                   | = optimized                    |
/// | `EmbeddingGather.gather`        | element by element       | row memcpy / SIMD8                    | = optimized                    |
/// | attention (`AttentionKernels`)  | materialized S, softmax  | fused, online softmax                 | = optimized                    |
/// | ALiBi bias (inside attention)   | materialized [Tq, Tk]    | added per score in the fused loop     | = optimized                    |
/// | `RoPEKernel.rotate`             | pow, sin, cos per pair   | table per row, SIMD rotation          | = optimized                    |
/// | `RMSNormKernel.forward`         | Σx² in Double            | SIMD Σx², Double only on overflow     | = optimized                    |
/// | `SwiGLUKernel.apply`            | libm expf                | SIMD, vector exp                      | = optimized                    |
/// | `BF16GEMV.multiply` (bf16 W)    | the dot-product loop     | widen in SIMD lanes, 4 rows at a time | = optimized                    |
///
/// `.parallel` differs from `.optimized` only in GEMM, the one kernel with a multi-threaded form.
/// Each kernel's doc comment says how its optimized form differs from its naive one.
public enum KernelPath: String, CaseIterable, Sendable {
    /// Every kernel's literal transcription of its formula — the reference.
    case naive
    /// Every kernel's SIMD/blocked/fused form, single-threaded.
    case optimized
    /// `.optimized`, with the matrix products split over every core (`GEMM.parallel`).
    case parallel
}

/// The kernels whose entry points report to a `KernelRecorder`.
public enum KernelName: String, CaseIterable, Sendable, Comparable {
    case gemm, softmax, logSoftmax, layerNorm, activation, positionalTable, embeddingGather, attention, rope, rmsNorm, swiGLU

    public static func < (a: KernelName, b: KernelName) -> Bool { a.rawValue < b.rawValue }
}

/// Observes which kernels ran on which path, so a spec can check that "naive" is naive all the way
/// down. Scoped: a recorder sees only the kernel entries made inside its own `recording { }`
/// (a task-local binding), so specs running in parallel never see each other's counts.
/// Entries are counted where a kernel is entered (on the calling thread); the worker threads of a
/// `.parallel` GEMM are inside that one entry. Outside any `recording`, a kernel entry costs one
/// task-local read.
public final class KernelRecorder: Sendable {
    @TaskLocal static var current: KernelRecorder?

    private let counts = Mutex<[Entry: Int]>([:])
    private let gemms = Mutex<[GEMMCall]>([])

    /// One `GEMM.sgemm` call's shape: op(A) [m, k], op(B) [k, n], the strides, and whether C is
    /// accumulated into (β ≠ 0) — what the benchmark's `training-gemm` suite times shape by shape.
    public struct GEMMCall: Hashable, Sendable {
        public let transA: Bool, transB: Bool, m: Int, n: Int, k: Int, lda: Int, ldb: Int, ldc: Int, accumulate: Bool
    }

    /// One (kernel, path) pair.
    public struct Entry: Hashable, Sendable, Comparable, CustomStringConvertible {
        public let kernel: KernelName
        public let path: KernelPath
        public init(kernel: KernelName, path: KernelPath) { (self.kernel, self.path) = (kernel, path) }
        public static func < (a: Entry, b: Entry) -> Bool { (a.kernel.rawValue, a.path.rawValue) < (b.kernel.rawValue, b.path.rawValue) }
        public var description: String { "\(kernel.rawValue)/\(path.rawValue)" }
    }

    public init() {}

    /// Runs `body` with this recorder bound: every kernel entry inside it is counted here.
    public func recording<R>(_ body: () throws -> R) rethrows -> R {
        try Self.$current.withValue(self, operation: body)
    }

    /// How many times each (kernel, path) was entered so far.
    public var entries: [Entry: Int] { counts.withLock { $0 } }

    /// Every single-precision GEMM call so far, in call order.
    public var gemmCalls: [GEMMCall] { gemms.withLock { $0 } }

    /// The paths entered so far, whatever the kernel.
    public var paths: Set<KernelPath> { Set(entries.keys.map(\.path)) }

    /// The kernels entered so far, whatever the path.
    public var kernels: Set<KernelName> { Set(entries.keys.map(\.kernel)) }

    /// Called at each kernel entry point.
    @inline(__always)
    package static func record(_ kernel: KernelName, _ path: KernelPath) {
        guard let recorder = current else { return }
        recorder.counts.withLock { $0[Entry(kernel: kernel, path: path), default: 0] += 1 }
    }

    /// Called at `GEMM.sgemm`'s entry instead of `record(.gemm, path)`: counts the entry and keeps its shape.
    @inline(__always)
    package static func recordGEMM(_ path: KernelPath, _ call: @autoclosure () -> GEMMCall) {
        guard let recorder = current else { return }
        recorder.counts.withLock { $0[Entry(kernel: .gemm, path: path), default: 0] += 1 }
        let c = call()
        recorder.gemms.withLock { $0.append(c) }
    }
}
