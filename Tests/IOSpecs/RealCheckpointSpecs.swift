import DecoderSpec
import Foundation
import Testing

@Suite("IO: real checkpoint (all-MiniLM-L6-v2)")
struct RealCheckpointSpecs {
    @Test("model.safetensors opens and has the BERT-encoder layout",
          .enabled(if: RealData.hasMiniLM, Comment(rawValue: RealData.fetchHint)))
    func layout() throws {
        let f = try SafeTensorsFile.read(contentsOf: RealData.miniLM.appendingPathComponent("model.safetensors"))
        // The count printed by Python's safe_open(...).keys() for this checkpoint.
        #expect(f.names.count == 104)
        #expect(f.metadata["format"] == "pt")
        #expect(try f.shape("embeddings.word_embeddings.weight") == [30522, 384])
        #expect(try f.shape("encoder.layer.5.intermediate.dense.weight") == [1536, 384])  // Linear: [out, in]
        #expect(try f.dtype("embeddings.position_ids") == .i64)
        #expect(try f.integers("embeddings.position_ids").values == (0..<512).map(Int64.init))
    }

    @Test("values equal those Python's safetensors reads from the same file (bitwise)",
          .enabled(if: RealData.hasMiniLM, Comment(rawValue: RealData.fetchHint)),
          .enabled(if: PythonSafeTensors.available, Comment(rawValue: RealData.venvHint)))
    func valuesMatchPython() throws {
        let path = RealData.miniLM.appendingPathComponent("model.safetensors").path
        let out = try runPython("""
        from safetensors import safe_open
        f = safe_open("\(path)", framework="np")
        for name, row in [("embeddings.word_embeddings.weight", 1996), ("encoder.layer.3.attention.self.query.weight", 383)]:
            print(" ".join(x.hex() for x in f.get_tensor(name)[row].tolist()))
        """)
        let lines = out.split(separator: "\n").map { $0.split(separator: " ").map { Float(Double(String($0))!) } }
        let f = try SafeTensorsFile.read(contentsOf: URL(fileURLWithPath: path))
        #expect(try f.matrix("embeddings.word_embeddings.weight").row(1996) == lines[0])
        #expect(try f.matrix("encoder.layer.3.attention.self.query.weight").row(383) == lines[1])
    }
}
