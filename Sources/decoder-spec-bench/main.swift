import Foundation

// decoder-spec-bench [suite …] [--json] [--markdown FILE] [--record FILE]
// Suites print naive, optimized and reference (GSL, OpenBLAS) side by side, measured in one run.
// In reading order: the kernels first, then the concepts built on them.
let suites: [(name: String, run: () throws -> [Table])] = [
    ("kernels", KernelBench.run),
    ("pe", peSuite),
    ("attention", AttentionBench.run),
    ("decode", DecodeBench.run),
    ("decode-profile", DecodeProfile.run),
    ("modern", ModernBench.run),
    ("training", TrainingBench.run),
]
/// Suites run only when named (diagnostics, not part of the recorded page).
let onDemandSuites: [(name: String, run: () throws -> [Table])] = [
    ("training-gemm", TrainingGEMMBench.run),
]

/// One line on stderr and exit status 64 (a bad command line) or 1 — the CLI's convention (docs/errors.md).
func fail(_ message: String, status: Int32 = 64) -> Never {
    FileHandle.standardError.write(Data("decoder-spec-bench: error: \(message)\n".utf8))
    exit(status)
}

var args = Array(CommandLine.arguments.dropFirst())
let json = args.contains("--json")
args.removeAll { $0 == "--json" }
/// Removes `flag FILE` from `args` and returns FILE; its directory is checked before the
/// (long) run, so a typo does not cost the whole benchmark.
func fileOption(_ flag: String, in args: inout [String]) -> String? {
    guard let i = args.firstIndex(of: flag) else { return nil }
    guard i + 1 < args.count else { fail("\(flag) needs a file") }
    let path = args[i + 1]
    args.removeSubrange(i...(i + 1))
    let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
        fail("\(flag) \(path): the directory \(directory) does not exist")
    }
    return path
}
let markdownPath = fileOption("--markdown", in: &args)
let recordPath = fileOption("--record", in: &args)
let unknown = args.filter { a in !(suites + onDemandSuites).contains { $0.name == a } }
guard unknown.isEmpty else {
    fail("unknown suite or option \(unknown.map { "\"\($0)\"" }.joined(separator: ", ")); suites: \((suites + onDemandSuites).map(\.name).joined(separator: ", ")); options: --json, --markdown FILE, --record FILE")
}
let selected = args.isEmpty ? suites : (suites + onDemandSuites).filter { args.contains($0.name) }
print("machine: \(cpuDescription)")
print("code generation: \(codeGeneration)")
let openBLASLine = OpenBLAS.shared.map { "\($0.path), kernel set \($0.coreName) (\($0.coreChoice))" } ?? "absent"
print("OpenBLAS: \(openBLASLine)")
let startedAt = Date().formatted(.iso8601)
var markdown = """
# Benchmarks

Written by `make bench` (release build, native code generation; every variant is validated
before it is timed; medians of several runs; ratios measured in the same run). Suites:
\(selected.map(\.name).joined(separator: ", ")). Started \(startedAt); load average at start \(loadAverage)
(1, 5, 15 min) on a shared machine.

Machine: \(cpuDescription)

Code generation: \(codeGeneration)

OpenBLAS: \(openBLASLine)


"""
var measurements: [Measurement] = []
var suiteMarkdown = ""
for suite in selected {
    let tables: [Table]
    do { tables = try suite.run() } catch { fail("suite \(suite.name): \(error)", status: 1) }
    for table in tables {
        print("\n" + table.text())
        suiteMarkdown += table.markdown() + "\n"
    }
}
// The page leads with the ratios to PyTorch (same jobs, same run; scripts/bench-peers.py), then the suites' tables.
if let peers = peerSummary() {
    print("\n" + peers.text())
    markdown += peers.markdown() + "\n"
}
markdown += suiteMarkdown
measurements.append(contentsOf: recorded)
if json {
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys]
    do { print(String(decoding: try enc.encode(measurements), as: UTF8.self)) } catch { fail("--json: \(error)", status: 1) }
}
if let recordPath {
    let record = BenchmarkRecord(machine: cpuDescription, codeGeneration: codeGeneration, started: startedAt, suites: selected.map(\.name),
                                 peakGFLOPS: recordedPeakGFLOPS, peak256GFLOPS: recordedPeaksByWidth?.gflops256,
                                 peak512GFLOPS: recordedPeaksByWidth?.gflops512, readBandwidthBytesPerSecond: recordedReadBandwidth, measurements: measurements)
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys]
    do { try enc.encode(record).write(to: URL(fileURLWithPath: recordPath), options: .atomic) } catch {
        fail("cannot write \(recordPath): \(error.localizedDescription)", status: 1)
    }
}
if let markdownPath {
    do {
        try markdown.write(toFile: markdownPath, atomically: true, encoding: .utf8)
    } catch {
        fail("cannot write \(markdownPath): \(error.localizedDescription)", status: 1)
    }
}

/// Ours ÷ PyTorch for every job measured against the peer in this run (> 1: ours faster), with the
/// suites whose peer was missing; nil when no selected suite has a peer.
func peerSummary() -> Table? {
    guard !peerRatios.isEmpty || !peerMissing.isEmpty else { return nil }
    var table = Table(title: "Ours ÷ PyTorch — the same jobs, measured in this run (speed ratio; > 1: ours faster)",
                      header: ["suite", "job", "ours", "PyTorch", "ours÷PyTorch"])
    for r in peerRatios { table.rows.append([r.suite, r.job, r.ours, r.pytorch, String(format: "%.2f×", r.ratio)]) }
    for m in peerMissing { table.rows.append([m.suite, m.reason, "—", "—", "—"]) }
    return table
}
