import DecoderSpec
@testable import decoder_spec
import Foundation
import GSLOracle
import SpecSupport
import Testing

@Suite("decoder-spec attention: safetensors in, safetensors (and SVG) out")
struct AttentionFileSpecs {
    func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("attnfile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test("Round trip: o and weights read back equal the library's results bitwise and match the GSL reference")
    func roundTrip() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let q = Inputs.matrix(rows: 6, cols: 8, seed: 501), k = Inputs.matrix(rows: 9, cols: 8, seed: 502)
        let v = Inputs.matrix(rows: 9, cols: 6, seed: 503)
        let input = dir.appendingPathComponent("in.safetensors"), output = dir.appendingPathComponent("out.safetensors")
        try SafeTensorsFile.write([("q", [6, 8], q.storage), ("k", [9, 8], k.storage), ("v", [9, 6], v.storage)], to: input)
        try AttentionFileJob.run(input: input, output: output, causal: true, heads: 2)
        let file = try SafeTensorsFile.read(contentsOf: output)
        let o = try file.floats("o"), w = try file.floats("weights")
        #expect(o.shape == [6, 6] && w.shape == [2, 6, 9])
        let mask = AttentionMask.causal(queryOffset: 3)
        let expected = try multiHeadAttention(q: q, k: k, v: v, heads: 2, mask: mask)
        #expect(o.values == expected.storage)
        let reference = try AttentionOracleChecks.multiHeadReference(q: q, k: k, v: v, heads: 2, mask: mask)
        let verdict = compare(o.values, reference, attentionBound(q: q, k: k, v: v, headDimension: 4).bound, "file job seed=501")
        #expect(verdict.passed, "\(verdict)")
        for h in 0..<2 {
            let wh = Array(w.values[(h * 54)..<((h + 1) * 54)])
            let ref = try AttentionOracleChecks.weightsReference(q: AttentionOracleChecks.slice(q, h * 4, 4), k: AttentionOracleChecks.slice(k, h * 4, 4), mask: mask)
            #expect(compare(wh, ref, .mixed(absolute: 1e-7, relative: 64 * unitRoundoff), "weights head \(h)").passed)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["in.safetensors", "out.safetensors"])
    }

    @Test("The SVG has one cell per weight and per head, masked cells grey, token labels, a colour bar per head, and is written atomically")
    func svg() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let x = Inputs.matrix(rows: 4, cols: 4, seed: 504)
        let w = try attentionWeights(q: x, k: x, mask: .causal())
        let url = dir.appendingPathComponent("w.svg")
        try AttentionFileJob.writeSVG(weights: [w, w], mask: .causal(), title: "t", labels: ["The", "cat", "sat", "down"], to: url)
        let text = try String(contentsOf: url, encoding: .utf8)
        // One cell per weight (each with its value as a tooltip), 6 masked above the diagonal per head, in the hidden-cell grey.
        #expect(text.components(separatedBy: "<title>").count - 1 == 2 * 16)
        #expect(text.components(separatedBy: ": masked</title>").count - 1 == 2 * 6)
        #expect(text.components(separatedBy: "fill=\"\(ColorMap.hidden.hex)\"><title>").count - 1 == 2 * 6)
        #expect(text.components(separatedBy: ">sat</text>").count - 1 == 2 * 2)   // a key and a query label per head
        #expect(text.contains("Each head is scaled to its own maximum"))
        #expect(text.components(separatedBy: "class=\"colorbar-label\"").count > 2)
        expectError(contains: ["--labels", "4 labels"]) {
            try AttentionFileJob.writeSVG(weights: [w], mask: nil, title: "t", labels: ["a"], to: dir.appendingPathComponent("x.svg"))
        }
        #expect(text.hasPrefix("<svg") && text.hasSuffix("</svg>\n"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["w.svg"])
    }

    @Test("Missing tensors, wrong ranks and missing files are typed errors; no output file is left behind")
    func errors() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("in.safetensors"), output = dir.appendingPathComponent("out.safetensors")
        try SafeTensorsFile.write([("q", [2, 4], [Float](repeating: 0.5, count: 8)), ("k", [2, 4], [Float](repeating: 0.5, count: 8))], to: input)
        expectError(contains: ["\"v\""]) { try AttentionFileJob.run(input: input, output: output, causal: false, heads: 1) }
        try SafeTensorsFile.write([("q", [2, 4], [Float](repeating: 0.5, count: 8)), ("k", [2, 4], [Float](repeating: 0.5, count: 8)),
                                   ("v", [2, 2, 2], [Float](repeating: 1, count: 8))], to: input)
        expectError(contains: ["\"v\"", "[2, 2, 2]"]) { try AttentionFileJob.run(input: input, output: output, causal: false, heads: 1) }
        expectError(contains: ["nope.safetensors"]) {
            try AttentionFileJob.run(input: dir.appendingPathComponent("nope.safetensors"), output: output, causal: false, heads: 1)
        }
        #expect(!FileManager.default.fileExists(atPath: output.path))
    }
}
