import DecoderSpec
import Foundation
import Testing

/// A resume that fails must not leave a half-loaded model behind (the bad-input matrix checks the
/// error; this checks what the caller still holds).
@Suite("A failed checkpoint read leaves the model and the optimizer as they were")
struct CheckpointReadSpecs {
    @Test("The last tensor mis-shaped: every parameter and the optimizer state unchanged, bitwise")
    func failedReadChangesNothing() throws {
        // The checkpoint's parameters differ from the model's everywhere (another seed), so any
        // tensor assigned before the failure would show; ln_f.bias is the last tensor visited.
        let url = try Fixture.checkpoint(of: DecoderOnlyModel.seeded(
            TransformerConfig(vocabularySize: 16, contextLength: 8, modelWidth: 8, heads: 2, layers: 1), seed: 99)) { t, _ in
            t["param/ln_f.bias"] = ([7], [Float](repeating: 0, count: 7))
        }
        var model = try Fixture.tinyDecoder()
        let before = model.flattenedParameters()
        var optimizer = try AdamW()
        #expect(throws: DecoderSpecError.self) { _ = try TrainingCheckpoint.read(from: url, into: &model, optimizer: &optimizer) }
        #expect(model.flattenedParameters() == before)
        #expect(optimizer.step == 0 && optimizer.m.isEmpty && optimizer.v.isEmpty)
    }
}
