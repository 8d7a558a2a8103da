// Whole-model checks: a model's outputs against the independent reference forward of
// Tests/ReferenceModel (Double, GSL, weights read by name from the checkpoint dictionary), under the
// bound the reference gives for every value. See docs/tolerances.md ("Whole-model reference forward").
import DecoderSpec
import Foundation
import GSLOracle
import ReferenceModel

public enum WholeModelChecks {
    /// `actual` [n] against the reference values: |actual_i − ref_i| ≤ bound_i for every i. On
    /// failure names the worst element (by error over bound), expected, observed, bound, and `context`.
    public static func matches(_ actual: [Float], _ reference: Tracked, _ context: @autoclosure () -> String) -> Verdict {
        guard actual.count == reference.values.count else {
            return .fail("\(actual.count) values vs \(reference.values.count) from the reference [\(reference.rows), \(reference.cols)]. \(context())")
        }
        var failures = 0, worst = 0, worstRatio = 0.0, largestError = 0.0
        for i in actual.indices {
            let error = abs(Double(actual[i]) - reference.values[i])
            largestError = max(largestError, error.isNaN ? .infinity : error)
            let allowed = reference.bounds[i]
            let ratio = error.isNaN ? .infinity : (allowed > 0 ? error / allowed : (error == 0 ? 0 : .infinity))
            if ratio > 1 { failures += 1 }
            if ratio > worstRatio { worstRatio = ratio; worst = i }
        }
        if failures == 0 { return .pass }
        let (r, c) = (worst / max(reference.cols, 1), worst % max(reference.cols, 1))
        return .fail("\(failures) of \(actual.count) values outside the reference's bound; worst at [\(r), \(c)]: expected \(reference.values[worst]), "
                     + "observed \(actual[worst]), |error| \(abs(Double(actual[worst]) - reference.values[worst])) vs bound "
                     + "\(reference.bounds[worst]) (largest error \(largestError)). \(context())")
    }

    /// The largest |actual − reference| over the bound, for reports: how much of the bound is used.
    public static func usedFraction(_ actual: [Float], _ reference: Tracked) -> Double {
        var worst = 0.0
        for i in actual.indices where reference.bounds[i] > 0 {
            worst = max(worst, abs(Double(actual[i]) - reference.values[i]) / reference.bounds[i])
        }
        return worst
    }

    // MARK: Checkpoint dictionaries

    /// Every trainable tensor of `model` under its checkpoint name (the names `visitParameters` gives
    /// and the library's savers write), widened exactly to Double.
    public static func checkpoint<P: ParameterContainer>(_ model: P) -> Checkpoint {
        var copy = model
        var out = Checkpoint()
        copy.visitParameters(prefix: "") { name, shape, values in
            out[name] = NamedTensor(shape: shape, values: values.map(Double.init))
        }
        return out
    }

    /// Every floating-point tensor of a safetensors file, by name.
    public static func checkpoint(_ file: SafeTensorsFile) throws -> Checkpoint {
        var out = Checkpoint()
        for name in file.names where file.tensors[name]!.dtype.isFloatingPoint {
            let (shape, values) = try file.floats(name)
            out[name] = NamedTensor(shape: shape, values: values.map(Double.init))
        }
        return out
    }

    /// A GPT-2 model's checkpoint as its own saver writes it (GPT-2 names, Conv1D [in, out]), read back
    /// from the file: the reference then reads exactly what a user's checkpoint would hold.
    public static func checkpoint(_ model: DecoderOnlyModel) throws -> Checkpoint {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("whole-model-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try model.save(directory: dir)
        return try checkpoint(SafeTensorsFile.read(contentsOf: dir.appendingPathComponent("model.safetensors")))
    }

    public static func activation(_ f: Activation.Function) -> ReferenceActivation {
        switch f {
        case .relu: return .relu
        case .gelu: return .gelu
        case .geluTanh: return .geluTanh
        }
    }

    // MARK: Non-trivial weights

    /// Redraws every parameter from GSL's generator so that no tensor is trivial (seeded inits have
    /// γ = 1, β = 0, zero biases and std-0.02 matrices, under which a skipped norm, a missing bias or a
    /// wrong attention scale changes little): vectors named `…weight` (norm gains) U(0.7, 1.3), other
    /// vectors U(−0.2, 0.2), matrices N(0, (1.2/√cols)²) — scores of O(1), so the softmax is far from
    /// uniform and its scale matters — and embedding tables N(0, 1).
    public static func randomize(_ values: inout [Float], name: String, shape: [Int], rng: GSLRandom) {
        if shape.count == 1 {
            let (lo, hi) = name.hasSuffix("weight") ? (0.7, 1.3) : (-0.2, 0.2)
            for i in values.indices { values[i] = Float(rng.uniform(lo, hi)) }
        } else {
            let embedding = name.contains("embed") || name.hasPrefix("wte") || name.hasPrefix("wpe")
            let sigma = embedding ? 1 : 1.2 / Double(shape[1]).squareRoot()
            for i in values.indices { values[i] = Float(rng.gaussian(sigma: sigma)) }
        }
    }

    public static func randomized<P: ParameterContainer>(_ model: P, seed: UInt) -> P {
        var m = model
        let rng = GSLRandom(seed: seed)
        m.visitParameters(prefix: "") { name, shape, values in randomize(&values, name: name, shape: shape, rng: rng) }
        return m
    }
}
