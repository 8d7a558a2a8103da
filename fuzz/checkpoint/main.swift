// libFuzzer target `checkpoint` (built by scripts/fuzz from copies of every module the trainer
// needs, compiled as one module, so the harness reaches `TrainingCheckpoint.read(_:into:optimizer:)`
// on a file already in memory). Structure-aware: every input starts from one valid training
// checkpoint — a 1-layer decoder (V 16, context 8, d 8, 2 heads) with AdamW's moments after one
// update, as `TrainingCheckpoint.write` lays it out — and the input's bytes say how to damage it:
//
//   byte 0 % 3 = 0  tensor edits, 3 bytes each (op, a, b), then the file is re-serialized with the
//                   edited dtypes, shapes and byte offsets: drop tensor a; reshape it (b picks: a
//                   dimension ±1, a dimension 0, an extra axis of 1, the axes swapped, rank 0);
//                   rename it (param/ ↔ adam.m/ ↔ adam.v/, layer h.0 → h.1, a name the model lacks);
//                   poison element b (NaN, ±∞, −1, 1e30, −0); set a metadata field (step, optimizerStep,
//                   seed, format) to a string from a pool of edge cases; duplicate a tensor under a new
//                   name; store it as F64, BF16 or I32; shift its data_offsets (begin or end, ±b)
//   byte 0 % 3 = 1  byte patches (2-byte little-endian offset, value) over the valid file: headers,
//                   lengths, digits of shapes and offsets, data
//   byte 0 % 3 = 2  the rest of the input is the whole file
//
// Invariants. A rejected file must raise DecoderSpecError (any other error or a trap is a finding)
// and leave the model and the optimizer bitwise as they were. An accepted file must give a step ≥ 0,
// the model's tensor shapes unchanged, every parameter finite, AdamW's state empty or one m and one
// v per tensor of its count with v ≥ 0 — and one AdamW update and one forward pass must then run
// (a trap in their release preconditions is a finding: the read let an inconsistent state through).
import Foundation

struct CheckpointFuzzViolation: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

enum CheckpointFuzz {
    typealias Tensor = (name: String, dtype: String, shape: [Int], values: [Float])

    static let config = TransformerConfig(vocabularySize: 16, contextLength: 8, modelWidth: 8, heads: 2, layers: 1)

    static func freshModel() -> DecoderOnlyModel { try! DecoderOnlyModel.seeded(config, seed: 3) }

    /// The valid checkpoint: its bytes, tensors in file order and metadata.
    static let valid: (bytes: [UInt8], tensors: [Tensor], metadata: [String: String]) = {
        var model = try! DecoderOnlyModel.seeded(config, seed: 7)
        var optimizer = try! AdamW()
        var gradient = model.zeroGradient()
        var rng = SeededRNG(seed: 11)
        gradient.setFlattenedParameters(gradient.flattenedParameters().map { _ in rng.uniform(-1, 1) })
        optimizer.update(&model, gradient: gradient, learningRate: 1e-3)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-checkpoint-\(getpid()).safetensors")
        try! TrainingCheckpoint.write(model, optimizer: optimizer, step: 1, seed: 5, to: url)
        let bytes = [UInt8](try! Data(contentsOf: url))
        try? FileManager.default.removeItem(at: url)
        let file = try! SafeTensorsFile(bytes: bytes)
        let tensors = file.names.map { name -> Tensor in
            let (shape, values) = try! file.floats(name)
            return (name, "F32", shape, values)
        }
        return (bytes, tensors, file.metadata)
    }()

    static let metadataPool = ["-1", "0", "1", "2", "", "abc", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
                               "1e3", " 1", "01", "+1", "0x10", "decoder-spec-training-checkpoint-2"]

    /// The safetensors layout with each tensor's dtype and with its data_offsets shifted by `shifts`
    /// (begin, end) — the reader's validation decides.
    static func serialize(_ tensors: [Tensor], metadata: [String: String], shifts: [String: (Int, Int)]) -> [UInt8] {
        var header: [String] = []
        if !metadata.isEmpty {
            let fields = metadata.keys.sorted().map { "\(json($0)):\(json(metadata[$0]!))" }
            header.append("\"__metadata__\":{\(fields.joined(separator: ","))}")
        }
        var data: [UInt8] = []
        for t in tensors {
            let begin = data.count
            for v in t.values {
                switch t.dtype {
                case "F64": withUnsafeBytes(of: Double(v).bitPattern.littleEndian) { data += $0 }
                case "BF16": withUnsafeBytes(of: UInt16(truncatingIfNeeded: v.bitPattern >> 16).littleEndian) { data += $0 }
                case "I32": withUnsafeBytes(of: Int32(v.isFinite ? max(min(v, 2e9), -2e9) : 0).littleEndian) { data += $0 }
                default: withUnsafeBytes(of: v.bitPattern.littleEndian) { data += $0 }
                }
            }
            let (db, de) = shifts[t.name] ?? (0, 0)
            let shape = t.shape.map(String.init).joined(separator: ",")
            header.append("\(json(t.name)):{\"dtype\":\"\(t.dtype)\",\"shape\":[\(shape)],\"data_offsets\":[\(begin + db),\(data.count + de)]}")
        }
        var h = Array(("{" + header.joined(separator: ",") + "}").utf8)
        h += [UInt8](repeating: 0x20, count: (8 - h.count % 8) % 8)
        var out: [UInt8] = []
        withUnsafeBytes(of: UInt64(h.count).littleEndian) { out += $0 }
        return out + h + data
    }

    static func json(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default: out += u.value < 0x20 ? String(format: "\\u%04x", u.value) : String(u)
            }
        }
        return out + "\""
    }

    /// The damaged file for `input`.
    static func damaged(_ input: [UInt8]) -> [UInt8] {
        guard let mode = input.first else { return valid.bytes }
        let rest = Array(input.dropFirst())
        switch mode % 3 {
        case 0:
            var tensors = valid.tensors, metadata = valid.metadata
            var shifts: [String: (Int, Int)] = [:]
            var i = 0
            while i + 3 <= rest.count, !tensors.isEmpty {
                let (op, a, b) = (rest[i], Int(rest[i + 1]), Int(rest[i + 2]))
                i += 3
                let k = a % tensors.count
                switch op % 9 {
                case 0: tensors.remove(at: k)
                case 1:
                    var s = tensors[k].shape
                    switch b % 6 {
                    case 0: if !s.isEmpty { s[b / 6 % s.count] += 1 }
                    case 1: if !s.isEmpty { s[b / 6 % s.count] = max(s[b / 6 % s.count] - 1, 0) }
                    case 2: if !s.isEmpty { s[b / 6 % s.count] = 0 }
                    case 3: s.append(1)
                    case 4: s.reverse()
                    default: s = []
                    }
                    let count = s.reduce(1, *)
                    tensors[k].shape = s
                    tensors[k].values = Array((tensors[k].values + [Float](repeating: 0.5, count: max(count - tensors[k].values.count, 0))).prefix(count))
                case 2:
                    let name = tensors[k].name
                    let renamed: String
                    switch b % 5 {
                    case 0: renamed = name.hasPrefix("param/") ? "adam.m/" + name.dropFirst(6) : "param/" + name.drop { $0 != "/" }.dropFirst()
                    case 1: renamed = name.replacingOccurrences(of: "adam.m/", with: "adam.v/")
                    case 2: renamed = name.replacingOccurrences(of: "adam.v/", with: "adam.m/")
                    case 3: renamed = name.replacingOccurrences(of: "h.0.", with: "h.1.")
                    default: renamed = name + ".extra"
                    }
                    if !tensors.contains(where: { $0.name == renamed }) { tensors[k].name = renamed }
                case 3:
                    if !tensors[k].values.isEmpty {
                        let poison: [Float] = [.nan, .infinity, -.infinity, -1, 1e30, -0.0]
                        tensors[k].values[b % tensors[k].values.count] = poison[b % poison.count]
                    }
                case 4:
                    let keys = ["step", "optimizerStep", "seed", "format"]
                    metadata[keys[a % keys.count]] = metadataPool[b % metadataPool.count]
                case 5:
                    if b % 2 == 0 { metadata.removeValue(forKey: ["step", "optimizerStep", "seed", "format"][a % 4]) }
                    else { metadata["batches"] = metadataPool[b % metadataPool.count] }
                case 6:
                    var copy = tensors[k]
                    copy.name = ["param/h.9.ln_1.weight", "adam.m/wte.weight.x", "param/", "adam.v/ln_f.bias", "other"][b % 5]
                    if !tensors.contains(where: { $0.name == copy.name }) { tensors.append(copy) }
                case 7: tensors[k].dtype = ["F64", "BF16", "I32", "F32"][b % 4]
                default:
                    let delta = (b % 16) - 8
                    let old = shifts[tensors[k].name] ?? (0, 0)
                    shifts[tensors[k].name] = b & 16 == 0 ? (old.0 + delta, old.1) : (old.0, old.1 + delta)
                }
            }
            return serialize(tensors, metadata: metadata, shifts: shifts)
        case 1:
            var bytes = valid.bytes
            var i = 0
            while i + 3 <= rest.count {
                let offset = (Int(rest[i]) | Int(rest[i + 1]) << 8) % bytes.count
                bytes[offset] = rest[i + 2]
                i += 3
            }
            return bytes
        default:
            return rest
        }
    }

    static func check(_ input: [UInt8]) throws {
        let bytes = damaged(input)
        var model = freshModel()
        var optimizer = try AdamW()
        let before = model.flattenedParameters()
        let shapes = model.parameterShapes()
        let step: Int
        do {
            let file = try SafeTensorsFile(bytes: bytes, path: "<fuzz checkpoint>")
            step = try TrainingCheckpoint.read(file, into: &model, optimizer: &optimizer)
        } catch is DecoderSpecError {
            guard model.flattenedParameters().elementsEqual(before, by: { $0.bitPattern == $1.bitPattern }) else {
                throw CheckpointFuzzViolation("a rejected checkpoint changed the model")
            }
            guard optimizer.step == 0, optimizer.m.isEmpty, optimizer.v.isEmpty else {
                throw CheckpointFuzzViolation("a rejected checkpoint changed the optimizer (step \(optimizer.step), \(optimizer.m.count) m, \(optimizer.v.count) v)")
            }
            return
        }
        guard step >= 0 else { throw CheckpointFuzzViolation("accepted with step \(step)") }
        let after = model.parameterShapes()
        guard after.count == shapes.count, zip(after, shapes).allSatisfy({ $0.name == $1.name && $0.shape == $1.shape }) else {
            throw CheckpointFuzzViolation("accepted, but the model's tensors changed shape")
        }
        let values = model.flattenedParameters()
        guard values.allSatisfy(\.isFinite) else { throw CheckpointFuzzViolation("accepted a non-finite parameter") }
        if !optimizer.m.isEmpty || !optimizer.v.isEmpty {
            var counts: [Int] = []
            model.visitParameters(prefix: "") { _, _, v in counts.append(v.count) }
            guard optimizer.m.map(\.count) == counts, optimizer.v.map(\.count) == counts else {
                throw CheckpointFuzzViolation("accepted AdamW moments of other counts than the tensors")
            }
            guard optimizer.v.allSatisfy({ $0.allSatisfy { $0 >= 0 } }) else { throw CheckpointFuzzViolation("accepted a negative or NaN second moment") }
            guard optimizer.step >= 0 else { throw CheckpointFuzzViolation("accepted an optimizer step \(optimizer.step)") }
        }
        // What the trainer does next must run: one update and one forward (their preconditions trap otherwise).
        optimizer.update(&model, gradient: model.zeroGradient(), learningRate: 1e-3)
        do { _ = try model.forward([1, 2, 3]) } catch is DecoderSpecError {}
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    do {
        try CheckpointFuzz.check(input)
    } catch let v as CheckpointFuzzViolation {
        fatalError("checkpoint invariant violated: \(v)")
    } catch {
        fatalError("\(type(of: error)) instead of DecoderSpecError: \(error)")
    }
    return 0
}
