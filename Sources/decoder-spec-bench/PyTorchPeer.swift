import Foundation

/// PyTorch measured beside ours, in the same run: each suite that has a peer runs
/// scripts/bench-peers.py with the peers' venv (.venv-peers/bin/python, made by scripts/peer-venv)
/// as a child process, after or before its own measurements (never at the same time), passing the
/// jobs it times itself — shapes, and for training the very batches — in a JSON file. The child
/// prints one JSON object (its progress goes to our stderr). Without the venv the suites' tables
/// say so (`PyTorchPeer.notInstalled`); the venv is never needed by `make test`.
/// Paths are relative to the working directory: `make bench` runs at the repository's root.
enum PyTorchPeer {
    static let python = ".venv-peers/bin/python"
    static let script = "scripts/bench-peers.py"
    static let notInstalled = "PyTorch: not installed (scripts/peer-venv)"

    static var installed: Bool { FileManager.default.isExecutableFile(atPath: python) }

    // MARK: Jobs (what bench-peers.py reads; snake_case keys)

    struct SDPAJob: Encodable { var T: [Int]; var d = 64; var threads = [1] }
    struct SGEMMJob: Encodable { var n: [Int]; var threads = [1, 2] }
    struct DecodeJob: Encodable { var contexts: [Int]; var steps: Int; var threads = [1]; var runs = 2 }
    struct NERSentence: Encodable { var ids: [Int]; var targets: [Int] }
    struct NERJob: Encodable {
        var model: String; var labels: Int; var batches: [[NERSentence]]; var threads: [Int]; var rounds: Int; var lr: Double; var seed = 42
    }
    struct TranslationPair: Encodable { var source: [Int]; var target: [Int] }
    struct TranslateJob: Encodable {
        var source_vocab: Int, target_vocab: Int, d: Int, heads: Int, layers: Int, ff: Int
        var label_smoothing: Double, bos: Int, eos: Int
        var batches: [[TranslationPair]]; var threads: [Int]; var rounds: Int; var lr: Double; var seed = 42
    }
    struct Jobs: Encodable {
        var sdpa: SDPAJob? = nil
        var sgemm: SGEMMJob? = nil
        var decode: DecodeJob? = nil
        var ner: NERJob? = nil
        var translate: TranslateJob? = nil
    }

    // MARK: Results (what bench-peers.py prints)

    struct Versions: Decodable { var torch: String; var transformers: String; var cpu_capability: String? }
    struct SDPA: Decodable { var T: Int; var threads: Int; var seconds: Double }
    struct SGEMM: Decodable { var n: Int; var threads: Int; var seconds: Double }
    struct Decode: Decodable { var context: Int; var threads: Int; var seconds_per_token: Double }
    struct Training: Decodable {
        var threads: Int; var batches: Int; var tokens: Int; var seconds_per_round: Double; var tokens_per_second: Double; var cpu_seconds_per_round: Double
    }
    struct Output: Decodable {
        var versions: Versions
        var sdpa: [SDPA]?
        var sgemm: [SGEMM]?
        var decode: [Decode]?
        var ner: [Training]?
        var translate: [Training]?

        /// "PyTorch 2.13.0+cpu (AVX512)" — for table titles.
        var label: String { "PyTorch \(versions.torch)" + (versions.cpu_capability.map { " (\($0))" } ?? "") }
    }

    /// Runs the peer on `jobs`. `.failure` carries a one-line reason for the table:
    /// `notInstalled`, or what went wrong (the peer's exit status, or its output not parsing).
    static func run(_ jobs: Jobs) -> Swift.Result<Output, PeerUnavailable> {
        guard installed else { return .failure(PeerUnavailable(reason: notInstalled)) }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("decoder-spec-bench-peers-\(getpid()).json")
        defer { try? FileManager.default.removeItem(at: file) }
        do {
            try JSONEncoder().encode(jobs).write(to: file)
        } catch {
            return .failure(PeerUnavailable(reason: "PyTorch: cannot write its jobs (\(error.localizedDescription))"))
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script, "--jobs", file.path]
        var environment = ProcessInfo.processInfo.environment
        environment["HF_HUB_OFFLINE"] = "1"  // the peer reads only local files
        environment["TRANSFORMERS_OFFLINE"] = "1"
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        print("PyTorch peer: \(python) \(script) (its progress on stderr)")
        do { try process.run() } catch {
            return .failure(PeerUnavailable(reason: "PyTorch: \(python) did not start (\(error.localizedDescription))"))
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()  // before waiting: a full pipe would block the child
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            return .failure(PeerUnavailable(reason: "PyTorch: \(script) failed (exit status \(process.terminationStatus); its stderr above)"))
        }
        do {
            return .success(try JSONDecoder().decode(Output.self, from: data))
        } catch {
            return .failure(PeerUnavailable(reason: "PyTorch: \(script) printed no readable result (\(error))"))
        }
    }
}

/// Why a suite has no PyTorch numbers: one line for its table.
struct PeerUnavailable: Error { var reason: String }

/// The peer's result or the reason it has none, as a suite keeps it.
typealias PeerOutcome = Swift.Result<PyTorchPeer.Output, PeerUnavailable>

extension PeerOutcome {
    var value: PyTorchPeer.Output? { if case .success(let r) = self { return r } else { return nil } }
    /// For a table title: the peer's name and version, or why it is missing.
    var titleNote: String {
        switch self {
        case .success(let r): return "peer: \(r.label), same run"
        case .failure(let f): return f.reason
        }
    }
}

/// One line of the ours ÷ PyTorch summary docs/benchmarks.md leads with: a job, the two speeds
/// in the job's own unit, and their ratio (> 1: ours faster).
struct PeerRatio {
    var suite: String
    var job: String
    var ours: String
    var pytorch: String
    var ratio: Double
}

/// Every suite with a peer appends its ratios here; main.swift puts them first.
nonisolated(unsafe) var peerRatios: [PeerRatio] = []
/// The suites whose peer was missing or failed, with the reason (for the summary).
nonisolated(unsafe) var peerMissing: [(suite: String, reason: String)] = []

/// Records a suite's peer outcome as a failure reason when it has no result.
func notePeer(_ outcome: PeerOutcome, suite: String) {
    if case .failure(let f) = outcome { peerMissing.append((suite, f.reason)) }
}
