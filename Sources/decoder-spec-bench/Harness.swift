import Foundation

/// A hand-written benchmark harness: validate first, then warm up, then time `runs` repetitions
/// and report the median (the machine is shared and noisy; medians are stable, means are not).
enum Harness {
    /// Median wall-clock seconds of `body` over `runs` timed repetitions after `warmup` untimed ones.
    static func median(warmup: Int = 2, runs: Int = 7, _ body: () -> Void) -> Double {
        for _ in 0..<warmup { body() }
        let clock = ContinuousClock()
        var samples: [Double] = []
        for _ in 0..<runs {
            let d = clock.measure(body)
            samples.append(Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18)
        }
        samples.sort()
        return samples[samples.count / 2]
    }

    /// The median wall-clock seconds of each body, timed in turns — body 0, body 1, …, then again,
    /// `runs` times after `warmup` untimed turns — so that a change of load on a shared machine
    /// falls on all of them alike, and their ratio holds where separately timed medians drift apart.
    static func interleavedMedians(warmup: Int = 2, runs: Int = 7, _ bodies: [() -> Void]) -> [Double] {
        for _ in 0..<warmup { for body in bodies { body() } }
        let clock = ContinuousClock()
        var samples = [[Double]](repeating: [], count: bodies.count)
        for _ in 0..<runs {
            for (i, body) in bodies.enumerated() {
                let d = clock.measure(body)
                samples[i].append(Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18)
            }
        }
        return samples.map { $0.sorted()[$0.count / 2] }
    }

    /// Chooses the number of repetitions so one sample takes at least `minSeconds`.
    static func medianAdaptive(minSeconds: Double = 0.02, runs: Int = 7, _ body: () -> Void) -> Double {
        let once = median(warmup: 1, runs: 1, body)
        let reps = max(1, Int((minSeconds / max(once, 1e-9)).rounded(.up)))
        return median(warmup: 1, runs: runs) { for _ in 0..<reps { body() } } / Double(reps)
    }
}

/// One measured cell: a kernel's variant on a shape.
struct Measurement: Codable {
    var suite: String
    var kernel: String
    var variant: String
    var shape: String
    var medianSeconds: Double?
    var gflops: Double?
    var note: String?
    /// The bytes the kernel must move at least (inputs read once, outputs written once), for the roofline.
    var bytes: Double? = nil
}

/// A printed table: a header, rows of cells, and a markdown rendering for docs/benchmarks.md.
struct Table {
    var title: String
    var header: [String]
    var rows: [[String]] = []

    func markdown() -> String {
        var s = "### \(title)\n\n| " + header.joined(separator: " | ") + " |\n|"
        s += header.map { _ in "---" }.joined(separator: "|") + "|\n"
        for r in rows { s += "| " + r.joined(separator: " | ") + " |\n" }
        return s
    }

    func text() -> String {
        var widths = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }.joined(separator: "  ")
        }
        return ([title, line(header), widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")] + rows.map(line)).joined(separator: "\n")
    }
}

func ms(_ seconds: Double) -> String { String(format: "%.3f", seconds * 1e3) }
func ratio(_ x: Double) -> String { String(format: "%.1f×", x) }

/// How this binary was compiled, as far as the benchmark can tell. The Makefile passes
/// `-D DECODERSPEC_NATIVE` together with `-target-cpu native`.
var codeGeneration: String {
    #if DECODERSPEC_NATIVE
    return "release, -target-cpu native"
    #else
    return "generic (no target-CPU flag: FMA may be a libm call)"
    #endif
}

/// The first CPU's feature flags from /proc/cpuinfo (empty where there is none).
var cpuFlags: Set<String> {
    guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return [] }
    return Set(info.split(separator: "\n").first { $0.hasPrefix("flags") }.map { $0.split(separator: " ").map(String.init) } ?? [])
}

/// The CPU's model name and the SIMD extensions the kernels can use, from /proc/cpuinfo.
var cpuDescription: String {
    guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown CPU" }
    let lines = info.split(separator: "\n")
    let name = lines.first { $0.hasPrefix("model name") }.map { String($0.split(separator: ":", maxSplits: 1)[1]).trimmingCharacters(in: .whitespaces) } ?? "unknown"
    let flags = cpuFlags
    let isa = ["avx512f", "avx2", "fma", "avx"].filter(flags.contains).joined(separator: "+")
    let family = lines.first { $0.hasPrefix("cpu family") }.map { String($0.split(separator: ":")[1]).trimmingCharacters(in: .whitespaces) } ?? "?"
    let model = lines.first { $0.hasPrefix("model\t") }.map { String($0.split(separator: ":")[1]).trimmingCharacters(in: .whitespaces) } ?? "?"
    return "\(name) (family \(family) model \(model)), \(isa.isEmpty ? "no AVX" : isa), \(ProcessInfo.processInfo.activeProcessorCount) cores"
}

/// Every suite appends its measurements here; `--json` prints them, `--record FILE` writes them.
nonisolated(unsafe) var recorded: [Measurement] = []
/// The roofline's two roofs, when the suites that measure them ran: the one-core FP32 FMA peak
/// (kernels) and the one-core read bandwidth (decode).
nonisolated(unsafe) var recordedPeakGFLOPS: Double?
nonisolated(unsafe) var recordedReadBandwidth: Double?
/// The one-core FMA peak at 256 and at 512 bits; `recordedPeakGFLOPS` is the one the GEMM's
/// selected register tile can reach (the 512-bit one on an AVX-512 build).
nonisolated(unsafe) var recordedPeaksByWidth: (gflops256: Double, gflops512: Double)?

/// The machine-readable record `--record FILE` writes (docs/benchmarks.json beside docs/benchmarks.md),
/// which the benchmark figures are drawn from.
struct BenchmarkRecord: Codable {
    var machine: String
    var codeGeneration: String
    var started: String
    var suites: [String]
    /// The FLOP roof: the one-core FP32 FMA peak at the vector width of the GEMM's selected tile.
    var peakGFLOPS: Double?
    /// The one-core FP32 FMA peak with 256-bit and with 512-bit FMA chains (absent in records made
    /// before both were measured).
    var peak256GFLOPS: Double?
    var peak512GFLOPS: Double?
    var readBandwidthBytesPerSecond: Double?
    var measurements: [Measurement]
}
