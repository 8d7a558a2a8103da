import DecoderSpec
import Foundation
import SpecSupport
import Testing

/// A fresh temporary directory per call (removed by the caller with `cleanup`).
func makeTempDirectory(_ tag: String = "io") throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("decoderspec-\(tag)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Assembles a safetensors file by hand: 8-byte little-endian length, header text, data bytes.
/// `declaredLength` overrides the length field (for lying headers).
func rawSafeTensors(header: String, data: [UInt8], declaredLength: UInt64? = nil) -> [UInt8] {
    let h = Array(header.utf8)
    let n = declaredLength ?? UInt64(h.count)
    return (0..<8).map { UInt8((n >> (8 * UInt64($0))) & 0xFF) } + h + data
}

func littleEndianBytes(_ values: [UInt16]) -> [UInt8] { values.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] } }
func littleEndianBytes(_ values: [Float]) -> [UInt8] {
    values.flatMap { v in (0..<4).map { UInt8((v.bitPattern >> (8 * UInt32($0))) & 0xFF) } }
}

/// Expects `body` to throw a `.malformedFile` whose text contains every string in `fragments`.
func expectMalformed(_ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected a malformedFile error containing \(fragments)", sourceLocation: sourceLocation)
    } catch let error as DecoderSpecError {
        guard case .malformedFile = error else {
            Issue.record("expected malformedFile, got \(error)", sourceLocation: sourceLocation)
            return
        }
        for f in fragments where !error.description.contains(f) {
            Issue.record("error \"\(error)\" does not mention \"\(f)\"", sourceLocation: sourceLocation)
        }
    } catch {
        Issue.record("expected DecoderSpecError, got \(error)", sourceLocation: sourceLocation)
    }
}

@Suite("IO: safetensors")
struct SafeTensorsSpecs {
    @Test("write then read returns the same names, shapes, values (bitwise) and metadata")
    func roundTrip() throws {
        let dir = try makeTempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = Inputs.matrix(rows: 3, cols: 5, seed: 11)
        let special: [Float] = [0, -0.0, .infinity, -.infinity, .leastNonzeroMagnitude, .greatestFiniteMagnitude, 1.0 / 3.0]
        let url = dir.appendingPathComponent("w.safetensors")
        try SafeTensorsFile.write([
            (name: "layer.weight", shape: [3, 5], values: a.storage),
            (name: "layer.bias", shape: [7], values: special),
            (name: "scalar", shape: [], values: [42]),
            (name: "empty", shape: [0, 4], values: []),
        ], metadata: ["format": "pt", "note": "quote \" and \\ and é"], to: url)
        let f = try SafeTensorsFile.read(contentsOf: url)
        #expect(f.names == ["layer.weight", "layer.bias", "scalar", "empty"])
        #expect(f.metadata == ["format": "pt", "note": "quote \" and \\ and é"])
        #expect(try f.matrix("layer.weight") == a)
        let bias = try f.floats("layer.bias")
        #expect(bias.shape == [7])
        #expect(bias.values.map(\.bitPattern) == special.map(\.bitPattern))
        #expect(try f.floats("scalar").values == [42])
        #expect(try f.shape("scalar") == [])
        #expect(try f.floats("empty").values.isEmpty)
        #expect(try f.dtype("layer.weight") == .f32)
        #expect(try f.matrix("layer.bias").shape == Shape(1, 7))
        // Header padded to a multiple of 8 so the data region is 8-byte aligned.
        #expect(f.dataStart % 8 == 0)
        // No temporary file is left beside the output.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["w.safetensors"])
    }

    @Test("the writer's bytes equal the reference layout (compact JSON, __metadata__ first, space padding)")
    func writerLayout() throws {
        // Expected bytes spelled out from the format description, independent of the writer:
        // Python's safetensors 0.8 writes exactly this header for the same input.
        let data = try SafeTensorsFile.serialize([
            (name: "a", shape: [2, 3], values: [1, 2, 3, 4, 5, 6]), (name: "b", shape: [1], values: [0.5]),
        ], metadata: ["format": "np"])
        let header = #"{"__metadata__":{"format":"np"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"F32","shape":[1],"data_offsets":[24,28]}}"#
        let padded = header + String(repeating: " ", count: (8 - header.utf8.count % 8) % 8)
        let expected = rawSafeTensors(header: padded, data: littleEndianBytes([1, 2, 3, 4, 5, 6, 0.5] as [Float]))
        #expect(Array(data) == expected)
    }

    @Test("F16 fixtures decode to their closed forms: ±1, −2, 65504, subnormals 2^−24 and 1023·2^−24, ±∞, −0")
    func float16() throws {
        let bits: [UInt16] = [0x3C00, 0xC000, 0x7BFF, 0x0001, 0x03FF, 0x0400, 0x7C00, 0xFC00, 0x8000, 0x3555, 0xBC00]
        let expected: [Float] = [1, -2, 65504, 0x1p-24, 1023 * 0x1p-24, 0x1p-14, .infinity, -.infinity, -0.0,
                                 // 0x3555: e = 13, m = 0x155 = 341 → 2^−2 · (1 + 341/1024)
                                 0.25 * (1 + 341.0 / 1024), -1]
        let header = #"{"h":{"dtype":"F16","shape":[11],"data_offsets":[0,22]}}"#
        let f = try SafeTensorsFile(bytes: rawSafeTensors(header: header, data: littleEndianBytes(bits)))
        let got = try f.floats("h").values
        #expect(got.map(\.bitPattern) == expected.map(\.bitPattern), "F16 decode: \(got) vs \(expected)")
        // NaN stays NaN.
        #expect(NarrowFloat.f16(0x7E00).isNaN)
    }

    @Test("BF16 fixtures decode to their closed forms: 1, −2, π≈3.140625, (2−2^−7)·2^127, 2^−133")
    func bfloat16() throws {
        let bits: [UInt16] = [0x3F80, 0xC000, 0x4049, 0x7F7F, 0x0001]
        let expected: [Float] = [1, -2, 3.140625, (2 - 0x1p-7) * 0x1p127, 0x1p-133]
        let header = #"{"b":{"dtype":"BF16","shape":[5,1],"data_offsets":[0,10]}}"#
        let f = try SafeTensorsFile(bytes: rawSafeTensors(header: header, data: littleEndianBytes(bits)))
        let got = try f.floats("b")
        #expect(got.shape == [5, 1])
        #expect(got.values.map(\.bitPattern) == expected.map(\.bitPattern))
    }

    @Test("F64, I64, I32, U8, BOOL and F8 tensors convert to their values")
    func otherDTypes() throws {
        var data: [UInt8] = []
        for d in [1.5, -0.1] as [Double] { data += (0..<8).map { UInt8((d.bitPattern >> (8 * UInt64($0))) & 0xFF) } }  // 0..<16
        for i in [-3, 512] as [Int64] { data += (0..<8).map { UInt8((UInt64(bitPattern: i) >> (8 * UInt64($0))) & 0xFF) } }  // 16..<32
        data += [0xFF, 0xFF, 0xFF, 0xFF]  // I32 −1: 32..<36
        data += [200, 0, 1]  // U8: 36..<39 ; then BOOL 39..<41
        data += [0, 7]
        data += [0x38, 0x3C, 0x01]  // F8_E4M3: 1.0, 1.5, 2^−9 ; 41..<44
        let header = #"{"d":{"dtype":"F64","shape":[2],"data_offsets":[0,16]},"i":{"dtype":"I64","shape":[2],"data_offsets":[16,32]},"j":{"dtype":"I32","shape":[1],"data_offsets":[32,36]},"u":{"dtype":"U8","shape":[3],"data_offsets":[36,39]},"z":{"dtype":"BOOL","shape":[2],"data_offsets":[39,41]},"e":{"dtype":"F8_E4M3","shape":[3],"data_offsets":[41,44]}}"#
        let f = try SafeTensorsFile(bytes: rawSafeTensors(header: header, data: data))
        #expect(try f.floats("d").values == [1.5, Float(-0.1)])
        #expect(try f.integers("i").values == [-3, 512])
        #expect(try f.floats("i").values == [-3, 512])
        #expect(try f.integers("j").values == [-1])
        #expect(try f.integers("u").values == [200, 0, 1])
        #expect(try f.integers("z").values == [0, 1])
        #expect(try f.floats("e").values == [1, 1.5, 0x1p-9])
        #expect(throws: DecoderSpecError.self) { try f.integers("d") }
    }

    @Test("a file written by Python's safetensors package reads back with the values it wrote",
          .enabled(if: PythonSafeTensors.available, Comment(rawValue: RealData.venvHint)))
    func pythonFixture() throws {
        let dir = try makeTempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("py.safetensors")
        // The script writes closed-form values in F32, F16, F64 and I64.
        let script = """
        import numpy as np
        from safetensors.numpy import save_file
        save_file({
          "w32": np.arange(12, dtype=np.float32).reshape(3, 4) / 8,
          "w16": np.array([1.0, -2.0, 65504.0, 2.0**-24], dtype=np.float16),
          "w64": np.array([[0.25], [-1e-3]], dtype=np.float64),
          "ids": np.array([101, 102, -1], dtype=np.int64),
        }, "\(url.path)", metadata={"format": "np"})
        """
        try PythonSafeTensors.run(script)
        let f = try SafeTensorsFile.read(contentsOf: url)
        #expect(Set(f.names) == ["w32", "w16", "w64", "ids"])
        #expect(f.metadata == ["format": "np"])
        #expect(try f.matrix("w32") == Matrix(rows: 3, cols: 4, storage: (0..<12).map { Float($0) / 8 }))
        #expect(try f.floats("w16").values == [1, -2, 65504, 0x1p-24])
        #expect(try f.floats("w64").values == [0.25, Float(-1e-3)])
        #expect(try f.integers("ids").values == [101, 102, -1])
        // And Python reads what we write.
        let ours = dir.appendingPathComponent("ours.safetensors")
        try SafeTensorsFile.write([(name: "x", shape: [2, 2], values: [1, 2, 3, 4.5])], metadata: ["k": "v"], to: ours)
        let out = try PythonSafeTensors.run("""
        from safetensors import safe_open
        with safe_open("\(ours.path)", framework="np") as f:
            print(f.metadata()["k"], f.get_tensor("x").tolist())
        """)
        #expect(out.trimmingCharacters(in: .whitespacesAndNewlines) == "v [[1.0, 2.0], [3.0, 4.5]]")
    }

    // MARK: Malformed files: each names the location; none reads out of bounds.

    @Test("a file shorter than 8 bytes, or whose header length exceeds the file, is rejected at byte 0")
    func shortAndLongHeader() {
        expectMalformed(["byte 0", "shorter than the 8-byte"]) { _ = try SafeTensorsFile(bytes: [1, 2, 3]) }
        expectMalformed(["byte 0", "runs past the end"]) {
            _ = try SafeTensorsFile(bytes: rawSafeTensors(header: "{}", data: [], declaredLength: 4096))
        }
        expectMalformed(["byte 0", "exceeds the limit of 100000000"]) {
            _ = try SafeTensorsFile(bytes: rawSafeTensors(header: "{}", data: [], declaredLength: 100_000_001))
        }
        expectMalformed(["byte 0"]) {
            _ = try SafeTensorsFile(bytes: rawSafeTensors(header: "{}", data: [], declaredLength: UInt64.max))
        }
    }

    @Test("invalid JSON is an error at the offending byte")
    func invalidJSON() {
        // Byte 8 is where the header starts; the bad token ',' follows "{\"a\":1" at header index 7.
        expectMalformed(["byte 15", "invalid JSON"]) { _ = try SafeTensorsFile(bytes: rawSafeTensors(header: #"{"a":1,,}"#, data: [])) }
        expectMalformed(["invalid JSON"]) { _ = try SafeTensorsFile(bytes: rawSafeTensors(header: #"{"a":{"dtype":"F32""#, data: [])) }
        expectMalformed(["byte 8", "must start with '{'"]) { _ = try SafeTensorsFile(bytes: rawSafeTensors(header: "[1,2]", data: [])) }
        expectMalformed(["invalid UTF-8"]) { _ = try SafeTensorsFile(bytes: rawSafeTensors(header: "{\"\u{FF}\":1}", data: []).map { $0 == 0xC3 ? 0xFF : $0 }) }
    }

    @Test("an unknown dtype names the tensor and the dtype")
    func unknownDType() {
        expectMalformed(["tensor \"w\"", "unknown dtype \"F33\""]) {
            _ = try SafeTensorsFile(bytes: rawSafeTensors(header: #"{"w":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]))
        }
    }

    @Test("shape product × dtype size ≠ byte range names the tensor, both sizes and the byte offset")
    func shapeVersusRange() {
        // Data region starts at 8 + header length; tensor "w" begins at data offset 0.
        let header = #"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}"#
        expectMalformed(["tensor \"w\", byte \(8 + header.utf8.count)", "6 × 4 = 24 bytes", "span 20"]) {
            _ = try SafeTensorsFile(bytes: rawSafeTensors(header: header, data: [UInt8](repeating: 0, count: 20)))
        }
        expectMalformed(["shape[1] must be a non-negative integer"]) {
            _ = try SafeTensorsFile(bytes: rawSafeTensors(header: #"{"w":{"dtype":"F32","shape":[2,-3],"data_offsets":[0,0]}}"#, data: []))
        }
        expectMalformed(["shape[0] must be a non-negative integer", "2.0"]) {
            _ = try SafeTensorsFile(bytes: rawSafeTensors(header: #"{"w":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8)))
        }
        expectMalformed(["more elements than fit"]) {
            _ = try SafeTensorsFile(bytes: rawSafeTensors(header: #"{"w":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,0]}}"#, data: []))
        }
    }

    @Test("overlapping, out-of-range and gapped offsets name the tensor")
    func offsets() {
        let overlap = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        expectMalformed(["tensor \"b\"", "overlap tensor \"a\""]) {
            _ = try SafeTensorsFile(bytes: rawSafeTensors(header: overlap, data: [UInt8](repeating: 0, count: 12)))
        }
        let outOfRange = #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#
        expectMalformed(["tensor \"a\"", "run past the end of the data region (8 bytes"]) {
            _ = try SafeTensorsFile(bytes: rawSafeTensors(header: outOfRange, data: [UInt8](repeating: 0, count: 8)))
        }
        let gap = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        expectMalformed(["tensor \"a\"", "gap of 4 bytes"]) {
            _ = try SafeTensorsFile(bytes: rawSafeTensors(header: gap, data: [UInt8](repeating: 0, count: 8)))
        }
        let reversed = #"{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}"#
        expectMalformed(["tensor \"a\"", "data_offsets"]) {
            _ = try SafeTensorsFile(bytes: rawSafeTensors(header: reversed, data: [UInt8](repeating: 0, count: 8)))
        }
        let trailing = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
        expectMalformed(["bytes after the last tensor"]) {
            _ = try SafeTensorsFile(bytes: rawSafeTensors(header: trailing, data: [UInt8](repeating: 0, count: 9)))
        }
    }

    @Test("duplicate tensor names are an error naming the name")
    func duplicates() {
        let header = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        expectMalformed(["duplicate key \"a\""]) {
            _ = try SafeTensorsFile(bytes: rawSafeTensors(header: header, data: [UInt8](repeating: 0, count: 8)))
        }
        #expect(throws: DecoderSpecError.self) {
            _ = try SafeTensorsFile.serialize([(name: "x", shape: [1], values: [1]), (name: "x", shape: [1], values: [2])])
        }
    }

    @Test("every truncation of a valid file is a typed error, never a crash or out-of-bounds read")
    func truncation() throws {
        let full = Array(try SafeTensorsFile.serialize([
            (name: "a", shape: [2, 2], values: [1, 2, 3, 4]), (name: "b", shape: [3], values: [5, 6, 7]),
        ], metadata: ["format": "pt"]))
        _ = try SafeTensorsFile(bytes: full)
        for cut in 0..<full.count {
            #expect(throws: DecoderSpecError.self, "truncated to \(cut) of \(full.count) bytes") {
                _ = try SafeTensorsFile(bytes: Array(full[0..<cut]))
            }
        }
        // Truncating inside the data names the last tensor.
        expectMalformed(["tensor \"b\"", "truncated"]) { _ = try SafeTensorsFile(bytes: Array(full.dropLast(2))) }
    }

    @Test("a missing tensor names itself and the closest names; a mis-shaped one names both shapes")
    func missingAndMisShaped() throws {
        let f = try SafeTensorsFile(data: try SafeTensorsFile.serialize([
            (name: "h.0.attn.c_attn.weight", shape: [2, 6], values: [Float](repeating: 0, count: 12)),
            (name: "wte.weight", shape: [4, 2], values: [Float](repeating: 0, count: 8)),
        ]), path: "gpt2.safetensors")
        expectMalformed(["gpt2.safetensors", "no tensor named \"transformer.h.0.attn.c_attn.weight\"", "closest: \"h.0.attn.c_attn.weight\""]) {
            _ = try f.floats("transformer.h.0.attn.c_attn.weight")
        }
        do {
            _ = try f.matrix("wte.weight", rows: 2, cols: 4)
            Issue.record("expected a shape error")
        } catch let e as DecoderSpecError {
            #expect(e.description.contains("wte.weight") && e.description.contains("[2, 4]") && e.description.contains("[4, 2]"))
        }
        #expect(throws: DecoderSpecError.self) { try SafeTensorsFile.read(contentsOf: URL(fileURLWithPath: "/nonexistent/x.safetensors")) }
    }

    @Test("writer validation: values ≠ product(shape), negative dims, reserved names; missing directory")
    func writerValidation() throws {
        #expect(throws: DecoderSpecError.self) { _ = try SafeTensorsFile.serialize([(name: "x", shape: [2, 2], values: [1, 2, 3])]) }
        #expect(throws: DecoderSpecError.self) { _ = try SafeTensorsFile.serialize([(name: "x", shape: [-1], values: [])]) }
        #expect(throws: DecoderSpecError.self) { _ = try SafeTensorsFile.serialize([(name: "__metadata__", shape: [1], values: [1])]) }
        #expect(throws: DecoderSpecError.self) {
            try SafeTensorsFile.write([(name: "x", shape: [1], values: [1])], to: URL(fileURLWithPath: "/nonexistent-dir/x.safetensors"))
        }
    }

    @Test("a failed write leaves the previous file intact (atomic replace)")
    func atomicReplace() throws {
        let dir = try makeTempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("ckpt.safetensors")
        try SafeTensorsFile.write([(name: "x", shape: [1], values: [1])], to: url)
        #expect(throws: DecoderSpecError.self) { try SafeTensorsFile.write([(name: "x", shape: [2], values: [1])], to: url) }
        #expect(try SafeTensorsFile.read(contentsOf: url).floats("x").values == [1])
        try SafeTensorsFile.write([(name: "x", shape: [1], values: [2])], to: url)
        #expect(try SafeTensorsFile.read(contentsOf: url).floats("x").values == [2])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["ckpt.safetensors"])
    }
}

/// Runs python3 snippets when python3 with safetensors and numpy is installed.
enum PythonSafeTensors {
    static let available: Bool = (try? runPython("import safetensors, numpy")) != nil

    @discardableResult
    static func run(_ script: String) throws -> String { try runPython(script) }
}

/// Runs `python3 -c script`; throws when python3 is absent or the script fails. Returns stdout.
@discardableResult
func runPython(_ script: String) throws -> String {
    let r = try Subprocess.run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", script])
    guard r.status == 0, !r.signalled else {
        throw DecoderSpecError.invalidArgument(what: "python3 script", reason: r.stderr)
    }
    return r.stdout
}
