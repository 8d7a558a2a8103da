import Foundation
import IO
import TensorCore

/// The trainer's progress as JSON Lines, one object per progress line, so that loss curves can be
/// drawn from a run's own record (docs/training.md):
///
///     {"step":20,"epoch":1,"loss":1.2345678,"lr":5e-05,"tokens":12000,"seconds":3.2}
///     {"step":40,…,"validation":{"metric":"valid loss","value":2.3456}}
///
/// `loss` is the mean training loss of the steps since the previous line; `tokens` and `seconds`
/// count from the start of this call (a resumed run restarts them). A fresh run starts the
/// file; a resumed run appends, so a step may appear twice (the steps an interrupted run took after
/// its last checkpoint): `read` keeps the last entry of each step.
public enum TrainingLog {
    public struct Entry: Sendable, Equatable {
        public var step: Int
        public var epoch: Int
        public var loss: Double
        public var learningRate: Double
        public var tokens: Int
        public var seconds: Double
        public var validation: (metric: String, value: Double)?

        public static func == (a: Entry, b: Entry) -> Bool {
            a.step == b.step && a.epoch == b.epoch && a.loss == b.loss && a.learningRate == b.learningRate && a.tokens == b.tokens
                && a.seconds == b.seconds && a.validation?.metric == b.validation?.metric && a.validation?.value == b.validation?.value
        }
    }

    /// Where a run's log goes: `TrainingOptions.log`, else beside the checkpoint (`ner.safetensors`
    /// → `ner.log.jsonl`), else nowhere.
    public static func url(for options: TrainingOptions) -> URL? {
        options.log ?? options.checkpoint.map { $0.deletingPathExtension().appendingPathExtension("log.jsonl") }
    }

    /// One line of JSON (numbers with `%.9g`, which round-trips a Double's first 9 digits).
    public static func line(_ e: Entry) -> String {
        func n(_ x: Double) -> String { x.isFinite ? String(format: "%.9g", x) : "null" }
        var s = "{\"step\":\(e.step),\"epoch\":\(e.epoch),\"loss\":\(n(e.loss)),\"lr\":\(n(e.learningRate)),\"tokens\":\(e.tokens),\"seconds\":\(n(e.seconds))"
        if let v = e.validation {
            let metric = v.metric.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            s += ",\"validation\":{\"metric\":\"\(metric)\",\"value\":\(n(v.value))}"
        }
        return s + "}"
    }

    /// Appends `entry` to `url` (creating it); `fresh` truncates first.
    static func append(_ entry: Entry, to url: URL, fresh: Bool) throws {
        let fm = FileManager.default
        if fresh || !fm.fileExists(atPath: url.path) {
            guard fm.createFile(atPath: url.path, contents: nil) else {
                throw DecoderSpecError.invalidArgument(what: "training log \(url.path)", reason: "cannot create the file")
            }
        }
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data((line(entry) + "\n").utf8))
    }

    /// The entries of a log, the last one of each step, in step order. A last line cut short by a
    /// kill is ignored; any other malformed line is a `.malformedFile` error naming it.
    public static func read(contentsOf url: URL) throws -> [Entry] {
        guard let bytes = try? FileBytes.read(url) else {
            throw DecoderSpecError.missingFile(path: url.path, hint: "A training run with --checkpoint (or TrainingOptions.log) writes it.")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw DecoderSpecError.malformedFile(path: url.path, location: "the whole file", reason: "not UTF-8 text (a training log is JSON Lines)")
        }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        var byStep: [Int: Entry] = [:]
        for (i, line) in lines.enumerated() {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let step = object["step"] as? Int, let epoch = object["epoch"] as? Int, let tokens = object["tokens"] as? Int else {
                if i == lines.count - 1 && !text.hasSuffix("\n") { break }
                throw DecoderSpecError.malformedFile(path: url.path, location: "line \(i + 1)", reason: "not a training-log entry")
            }
            func d(_ any: Any?) -> Double { (any as? NSNumber)?.doubleValue ?? .nan }
            var validation: (String, Double)?
            if let v = object["validation"] as? [String: Any], let metric = v["metric"] as? String { validation = (metric, d(v["value"])) }
            byStep[step] = Entry(step: step, epoch: epoch, loss: d(object["loss"]), learningRate: d(object["lr"]), tokens: tokens,
                                 seconds: d(object["seconds"]), validation: validation)
        }
        return byStep.keys.sorted().map { byStep[$0]! }
    }
}
