// Training checkpoints: what a resumed run reads back (parameters, AdamW's moments, the step and
// the loop's state), validated before anything is assigned, and the lock that keeps two runs from
// writing one checkpoint. See docs/training.md and docs/reliability.md.
import Foundation
import IO
import TensorCore

/// A training checkpoint: parameters, AdamW moments and the step, in one safetensors file
/// (`param/NAME`, `adam.m/NAME`, `adam.v/NAME`; metadata `step`, `seed`, `optimizerStep`, plus the
/// loop's state: the batch plan, the epoch and the early-stopping record), written atomically.
public enum TrainingCheckpoint {
    public static let format = "decoder-spec-training-checkpoint-1"

    /// `state` is extra metadata (the trainer's batch plan and validation record).
    public static func write<M: ParameterContainer>(_ model: M, optimizer: AdamW, step: Int, seed: UInt64,
                                                    state: [String: String] = [:], to url: URL) throws {
        var tensors: [(name: String, shape: [Int], values: [Float])] = []
        var copy = model
        var index = 0
        copy.visitParameters(prefix: "") { name, shape, values in
            tensors.append(("param/" + name, shape, values))
            if index < optimizer.m.count {
                tensors.append(("adam.m/" + name, shape, optimizer.m[index]))
                tensors.append(("adam.v/" + name, shape, optimizer.v[index]))
            }
            index += 1
        }
        let metadata = state.merging(["format": format, "step": String(step), "seed": String(seed), "optimizerStep": String(optimizer.step)]) { $1 }
        try SafeTensorsFile.write(tensors, metadata: metadata, to: url)
    }

    /// Reads a checkpoint into `model` and `optimizer`; returns the step. Everything is checked
    /// before anything is assigned, so a failed read leaves both as they were: the metadata (format,
    /// steps ≥ 0), every parameter by name, dtype (F32), shape and finiteness, the AdamW moments (for every tensor
    /// or for none, m and v in pairs, each of its tensor's shape, v ≥ 0), and no tensor the model
    /// does not have (a checkpoint of a deeper model is not silently truncated). With `maxStep` (the
    /// steps the resuming run can reach, as the trainer passes them) the step must be ≤ `maxStep`
    /// and the optimizer's step ≤ the step: one AdamW update per step of the loop.
    /// - Throws: `.malformedFile` naming the file and the tensor or field, with expected and actual.
    public static func read<M: ParameterContainer>(from url: URL, into model: inout M, optimizer: inout AdamW, maxStep: Int? = nil) throws -> Int {
        try read(SafeTensorsFile.read(contentsOf: url), into: &model, optimizer: &optimizer, maxStep: maxStep)
    }

    /// The same, from a file already read (the trainer checks its metadata first).
    public static func read<M: ParameterContainer>(_ file: SafeTensorsFile, into model: inout M, optimizer: inout AdamW, maxStep: Int? = nil) throws -> Int {
        let path = file.path
        func malformed(_ location: String, _ reason: String) -> DecoderSpecError { .malformedFile(path: path, location: location, reason: reason) }
        guard file.metadata["format"] == format, let step = Int(file.metadata["step"] ?? ""),
              let optimizerStep = Int(file.metadata["optimizerStep"] ?? "") else {
            throw malformed("header", "not a \(format) file (metadata \(file.metadata))")
        }
        guard step >= 0, optimizerStep >= 0 else { throw malformed("header", "step \(step) and optimizerStep \(optimizerStep) must be ≥ 0") }
        if let maxStep {
            guard step <= maxStep else {
                throw malformed("metadata step", "step \(step) is beyond the \(maxStep) steps of this run (a checkpoint of a longer run: resume with at least \(step) steps, or remove it)")
            }
            guard optimizerStep <= step else {
                throw malformed("metadata optimizerStep", "optimizerStep \(optimizerStep) exceeds step \(step): the loop makes one AdamW update per step")
            }
        }
        func tensor(_ name: String, _ shape: [Int]) throws -> [Float] {
            // The library writes checkpoints in F32 only: another dtype is another program's file, whose
            // values `floats` would convert (an I32 or BOOL tensor taken as weights without a word).
            if let info = file.tensors[name], info.dtype != .f32 {
                throw malformed("tensor \(name)", "dtype \(info.dtype.rawValue), a training checkpoint holds F32")
            }
            let (s, values) = try file.floats(name)
            guard s == shape else { throw malformed("tensor \(name)", "shape \(Shape(s)), model expects \(Shape(shape))") }
            try Validate.finite(values, "tensor \(name) of \(path)")
            return values
        }
        var loaded = model
        var m: [[Float]] = [], v: [[Float]] = [], expected: Set<String> = [], tensors = 0
        try loaded.visitParameters(prefix: "") { name, shape, values in
            tensors += 1
            values = try tensor("param/" + name, shape)
            expected.insert("param/" + name)
            let hasM = file.tensors["adam.m/" + name] != nil, hasV = file.tensors["adam.v/" + name] != nil
            guard hasM == hasV else { throw malformed("tensor adam.\(hasM ? "v" : "m")/\(name)", "missing: AdamW's moments come in pairs") }
            guard hasM else { return }
            m.append(try tensor("adam.m/" + name, shape))
            let second = try tensor("adam.v/" + name, shape)
            if let i = second.firstIndex(where: { $0 < 0 }) {
                throw malformed("tensor adam.v/\(name)", "element \(i) is \(second[i]); a second moment (a mean of squares) is ≥ 0")
            }
            v.append(second)
            expected.formUnion(["adam.m/" + name, "adam.v/" + name])
        }
        guard m.isEmpty || m.count == tensors else {
            throw malformed("header", "AdamW moments for \(m.count) of \(tensors) tensors; a checkpoint holds them for all or none")
        }
        guard !m.isEmpty || optimizerStep == 0 else { throw malformed("header", "optimizerStep \(optimizerStep) but no AdamW moments") }
        if let extra = file.tensors.keys.filter({ !expected.contains($0) }).sorted().first {
            throw malformed("tensor \(extra)", "not a tensor of this model (\(tensors) parameter tensors): a checkpoint of another model")
        }
        model = loaded
        optimizer.restore(step: optimizerStep, m: m, v: v)
        return step
    }

    /// The lock file of the checkpoint at `url`: `<path>.lock` beside it.
    public static func lockURL(for url: URL) -> URL { URL(fileURLWithPath: url.path + ".lock") }

    /// Takes the advisory lock of the checkpoint at `url` (`FileLock` on `lockURL(for:)`), which the
    /// trainer holds for the whole run: a second run training into the same checkpoint is refused
    /// instead of interleaving its writes with the first's. The kernel releases it when the holder
    /// exits, killed or not.
    /// - Throws: `.invalidArgument` naming the checkpoint and the holder's process id.
    public static func lock(_ url: URL) throws -> FileLock {
        try FileLock(lockURL(for: url), for: "checkpoint \(url.path)",
                     hint: "another training run is writing it; wait for that run to end, or train into another --checkpoint")
    }
}
