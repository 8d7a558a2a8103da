import DecoderSpec
import Foundation
import Testing

// The preconditions that guard unsafe loops in release builds (docs/reliability.md, "Unsafe code
// and its guards"). A precondition stops the process, so each case runs in a child process (a
// Swift Testing exit test) that must exit with a failure whose stderr names the guard — a debug
// build's own bounds checks could otherwise stop the child for another reason — and the same calls
// with consistent counts must work. Each case was an out-of-bounds read or write through a pointer
// before its guard (checked by removing the guards: the Matrix and embedding children exited 0, the
// attention child hung in corrupted memory — hence the time limit). The limit only has to end a
// hang: a child of the AddressSanitizer build, started while the kill -9 specs ran on two loaded
// cores, took more than one minute (docs/reliability.md, the whole ASan pass), so it is five.
@Suite("Unsafe loops are reached only with the counts they rely on (preconditions hold in release builds)", .timeLimit(.minutes(5)))
struct UnsafeContractSpecs {
    static func stderr(_ result: ExitTest.Result?) -> String {
        String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
    }

    @Test("A Matrix keeps rows·cols elements: in-place element writes are fine, a count change stops the program")
    func matrixStorageCount() async {
        var m = Matrix(rows: 2, cols: 3)
        m.storage[4] = 7
        m.storage = [Float](repeating: 1, count: 6)
        #expect(m.storage.count == 6 && m[1, 1] == 1)
        let removed = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            var m = Matrix(rows: 2, cols: 3)
            m.storage.removeLast()  // a later matmul would have read 6 values of a 5-value buffer
        }
        #expect(Self.stderr(removed).contains("Matrix storage changed to 5 elements for [2, 3]"), "\(Self.stderr(removed))")
        let assigned = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            var m = Matrix(rows: 2, cols: 3)
            m.storage = [1, 2]
        }
        #expect(Self.stderr(assigned).contains("Matrix storage of 2 elements for [2, 3]"), "\(Self.stderr(assigned))")
    }

    @Test("Embedding backward: an id outside the gradient table's rows stops the program (it indexed the write pointer)")
    func embeddingBackwardIDs() async throws {
        var dE = Matrix(rows: 4, cols: 2)
        EmbeddingTable.backward(ids: [0, 3], dOut: try Matrix(rows: 2, cols: 2, storage: [1, 2, 3, 4]), gradient: &dE)
        #expect(dE.storage == [1, 2, 0, 0, 0, 0, 3, 4])
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            var dE = Matrix(rows: 4, cols: 2)
            EmbeddingTable.backward(ids: [0, 4], dOut: Matrix(rows: 2, cols: 2), gradient: &dE)
        }
        #expect(Self.stderr(r).contains("embedding backward: id 4 for a table of 4 rows"), "\(Self.stderr(r))")
    }

    @Test("Linear backward: a gradient of another shape stops the program (GEMM wrote [out, in] into it)")
    func linearBackwardGradientShape() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            var rng = SeededRNG(seed: 1)
            let linear = try! Linear(inputSize: 3, outputSize: 4, rng: &rng)
            var gradient = try! Linear(inputSize: 2, outputSize: 2, rng: &rng)
            linear.backward(Matrix(rows: 5, cols: 4), input: Matrix(rows: 5, cols: 3), gradient: &gradient, path: .optimized)
        }
        #expect(Self.stderr(r).contains("Linear backward: gradient W [2, 2]"), "\(Self.stderr(r))")
    }

    @Test("Attention training forward: a segment beyond the rows stops the program (its rows were pointer offsets)")
    func attentionSegmentRange() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            var rng = SeededRNG(seed: 1)
            let attention = try! MultiHeadAttention(modelWidth: 4, heads: 2, rng: &rng)
            let x = Matrix(rows: 3, cols: 4)
            _ = attention.trainingForward(x, memory: x, segments: [.selfAttention(0..<5)], path: .optimized)
        }
        #expect(Self.stderr(r).contains("attention segment 0..<5"), "\(Self.stderr(r))")
    }

    @Test("LayerNorm backward: a cache of another shape stops the program")
    func layerNormBackwardCache() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let norm = try! LayerNorm(width: 4)
            var gradient = try! LayerNorm(width: 4)
            let (_, cache) = norm.trainingForward(Matrix(rows: 2, cols: 4))
            _ = norm.backward(Matrix(rows: 3, cols: 4), cache: cache, gradient: &gradient)
        }
        #expect(Self.stderr(r).contains("LayerNorm backward: dy [3, 4], x̂ [2, 4]"), "\(Self.stderr(r))")
    }

    @Test("Data-parallel combination: gradients of two models stop the program (the other's tensors were read through pointers for the first's counts)")
    func combineOneModel() async throws {
        var rng = SeededRNG(seed: 1)
        let a = try Linear(inputSize: 3, outputSize: 4, rng: &rng), b = try Linear(inputSize: 3, outputSize: 4, rng: &rng)
        let sum = DataParallel.combine([a, b], weights: [1, 1])
        #expect(sum.weight.storage == zip(a.weight.storage, b.weight.storage).map { Float(Double($0) + Double($1)) })
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            var rng = SeededRNG(seed: 1)
            let big = try! Linear(inputSize: 300, outputSize: 400, rng: &rng), small = try! Linear(inputSize: 3, outputSize: 4, rng: &rng)
            let sum = DataParallel.combine([big, small], weights: [0.5, 0.5])  // read 120,000 values of a 12-value buffer
            print(sum.weight.storage.reduce(0, +))
        }
        #expect(Self.stderr(r).contains("DataParallel.combine: tensor weight has 120000 values in the first gradient"), "\(Self.stderr(r))")
    }
}

/// The GRU baseline's parts are public vars: a part reassigned with another shape reaches the
/// unsafe step and BPTT loops (they index U as [3h, h] and the trace as [rows, h]) only through a
/// check — a typed error where the entry point throws, a precondition where it cannot.
@Suite("GRU parts reassigned with another shape: a typed error or a stop, never a read past the end", .timeLimit(.minutes(5)))  // see UnsafeContractSpecs
struct GRUPartContractSpecs {
    static func cell() throws -> GRUCell {
        var rng = SeededRNG(seed: 3)
        return try GRUCell.seeded(inputSize: 3, hiddenSize: 4, rng: &rng)
    }

    @Test("trainingForward and step throw shapeMismatch for U of [3h − 1, h] rows (they read 3h rows of it)")
    func reassignedHiddenWeight() throws {
        var cell = try Self.cell()
        let packing = try GRUPacking(lengths: [2, 1])
        _ = try cell.trainingForward(Matrix(rows: 3, cols: 3), packing: packing, path: .optimized)  // consistent: runs
        cell.hiddenWeight = Matrix(rows: 11, cols: 4)
        #expect(!cell.shapesAreConsistent)
        #expect(throws: DecoderSpecError.self) { _ = try cell.trainingForward(Matrix(rows: 3, cols: 3), packing: packing, path: .optimized) }
        #expect(throws: DecoderSpecError.self) { _ = try cell.step(input: [0, 0, 0], state: [0, 0, 0, 0]) }
    }

    @Test("backward with a gradient cell of another width stops the program (it accumulated dU [3h, h] into it)")
    func backwardGradientShape() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            var rng = SeededRNG(seed: 3)
            let cell = try! GRUCell.seeded(inputSize: 3, hiddenSize: 4, rng: &rng)
            var gradient = try! GRUCell.seeded(inputSize: 3, hiddenSize: 2, rng: &rng)
            let packing = try! GRUPacking(lengths: [2, 1])
            let trace = try! cell.trainingForward(Matrix(rows: 3, cols: 3), packing: packing, path: .optimized)
            _ = cell.backward(Matrix(rows: 3, cols: 4), trace: trace, gradient: &gradient, path: .optimized)
        }
        #expect(UnsafeContractSpecs.stderr(r).contains("GRUCell.backward: gradient W [6, 3]"), "\(UnsafeContractSpecs.stderr(r))")
    }

    @Test("GRUTranslationModel: a decoder of another state width than config's throws shapeMismatch naming the part, in training and in translation")
    func modelParts() throws {
        let config = GRUTranslationConfig(sourceVocabularySize: 8, targetVocabularySize: 9, embeddingWidth: 3, hiddenWidth: 4, contextLength: 16)
        var model = try GRUTranslationModel.seeded(config, seed: 1)
        _ = try model.encode([1, 2])  // consistent: runs
        var rng = SeededRNG(seed: 2)
        model.decoder = try GRUCell.seeded(inputSize: 3 + 5, hiddenSize: 5, rng: &rng)
        let error = #expect(throws: DecoderSpecError.self) { _ = try model.conditioned(on: [1, 2]) }
        #expect(String(describing: error).contains("decoder GRU"), "\(String(describing: error))")
        let batch = try Seq2SeqBatch(pairs: [(source: [3, 4], target: [5])], bos: 1, eos: 2)
        #expect(throws: DecoderSpecError.self) { _ = try model.lossAndGradient(batch, loss: try CrossEntropyLoss(), path: .optimized) }
    }
}
