import Foundation

// decoder-spec-bench [suite …] [--json] [--markdown FILE]
// Suites print naive, optimized and reference (GSL, OpenBLAS) side by side, measured in one run.
// In reading order: the kernels first, then the concepts built on them.
let suites: [(name: String, run: () throws -> [Table])] = [
    ("kernels", KernelBench.run),
    ("pe", peSuite),
    ("attention", AttentionBench.run),
    ("decode", DecodeBench.run),
]

var args = Array(CommandLine.arguments.dropFirst())
let json = args.contains("--json")
args.removeAll { $0 == "--json" }
var markdownPath: String?
if let i = args.firstIndex(of: "--markdown"), i + 1 < args.count {
    markdownPath = args[i + 1]
    args.removeSubrange(i...(i + 1))
}
let selected = args.isEmpty ? suites : suites.filter { args.contains($0.name) }
if selected.isEmpty {
    FileHandle.standardError.write("unknown suite(s) \(args); available: \(suites.map(\.name).joined(separator: ", "))\n".data(using: .utf8)!)
    exit(2)
}
print("machine: \(cpuDescription)")
print("code generation: \(codeGeneration)")
let startedAt = Date().formatted(.iso8601)
var markdown = """
# Benchmarks

Written by `make bench` (release build, native code generation; every variant is validated
before it is timed; medians of several runs; ratios measured in the same run). Suites:
\(selected.map(\.name).joined(separator: ", ")). Started \(startedAt); load average at start \(loadAverage)
(1, 5, 15 min) on a shared machine.

Machine: \(cpuDescription)

Code generation: \(codeGeneration)


"""
var measurements: [Measurement] = []
for suite in selected {
    for table in try suite.run() {
        print("\n" + table.text())
        markdown += table.markdown() + "\n"
    }
}
measurements.append(contentsOf: recorded)
if json {
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys]
    print(String(decoding: try enc.encode(measurements), as: UTF8.self))
}
if let markdownPath {
    try markdown.write(toFile: markdownPath, atomically: true, encoding: .utf8)
}
