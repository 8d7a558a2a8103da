import DecoderSpec
import Foundation
import ReferenceModel
import SpecSupport
import Testing

// Checkpoints written by Hugging Face transformers itself, with the framework's own Float32 outputs
// (Tests/Fixtures/hf/, made by scripts/make-hf-fixtures). The round trips of CheckpointSpecs go
// through our own writer, whose transposes mirror the reader's; these files do not.
//
// End to end (ids → logits / last hidden states / sentence embedding), against the independent
// Double reference forward of Tests/ReferenceModel, which reads the same model.safetensors by name
// and gives every output value its bound (docs/tolerances.md, "Reference-framework fixtures"):
//   A. the framework's outputs lie within the reference's bound (the reference is right about the
//      framework: torch's Float32 kernels are taken as one more Float evaluation of the same formulas);
//   B. the library's outputs from the loaded checkpoint lie within it too, and so within 2·bound of the
//      framework's (triangle inequality): the loader is right.

let hfFixtures = projectRoot.appendingPathComponent("Tests/Fixtures/hf")

struct GPT2Fixture: Decodable {
    /// ids [T]; embeddings wte[ids] + wpe[0..<T] [T, d]; logits [T, V].
    struct Case: Decodable { let ids: [Int]; let embeddings: [[Double]]; let logits: [[Double]] }
    let cases: [Case]
}

struct BERTFixture: Decodable {
    /// ids, token_type_ids [T]; last_hidden_state [T, d].
    struct Case: Decodable { let ids: [Int]; let token_type_ids: [Int]; let last_hidden_state: [[Double]] }
    let cases: [Case]
}

struct MiniLMFixture: Decodable {
    /// The model's own tokenizer's ids [T] and sentence-transformers' embedding [384].
    struct Case: Decodable { let text: String; let ids: [Int]; let embedding: [Double] }
    let cases: [Case]
}

func readFixture<T: Decodable>(_ type: T.Type, _ relativePath: String) throws -> T {
    try JSONDecoder().decode(T.self, from: Data(contentsOf: hfFixtures.appendingPathComponent(relativePath)))
}

/// The framework's values, printed with 9 significant digits, back to the Float32 they were (exactly).
func frameworkFloats(_ rows: [[Double]]) -> [Float] { rows.flatMap { $0.map(Float.init) } }

/// The hyperparameters the weights' shapes do not tell, from a config.json read with Foundation's
/// JSON parser (not the library's reader): GPT-2's `n_head`, `layer_norm_epsilon`,
/// `activation_function` (pre-norm) or BERT's `num_attention_heads`, `layer_norm_eps`, `hidden_act` (post-norm).
func referenceHyper(configAt url: URL) throws -> ReferenceHyper {
    let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    let gpt2 = json["model_type"] as? String == "gpt2"
    let act = json[gpt2 ? "activation_function" : "hidden_act"] as! String
    let activation: ReferenceActivation
    switch act {
    case "gelu": activation = .gelu
    case "gelu_new", "gelu_pytorch_tanh": activation = .geluTanh
    case "relu": activation = .relu
    default: throw FixtureError(description: "\(url.path): activation \(act) has no reference")
    }
    return ReferenceHyper(heads: json[gpt2 ? "n_head" : "num_attention_heads"] as! Int,
                          epsilon: json[gpt2 ? "layer_norm_epsilon" : "layer_norm_eps"] as! Double,
                          activation: activation, placement: gpt2 ? .pre : .post)
}

struct FixtureError: Error, CustomStringConvertible { let description: String }

func referenceCheckpoint(_ directory: URL) throws -> Checkpoint {
    try WholeModelChecks.checkpoint(SafeTensorsFile.read(contentsOf: directory.appendingPathComponent("model.safetensors")))
}

/// The framework's values with twice the reference's bounds: check B's |ours − theirs| ≤ 2·bound_i.
func twiceTheBound(around theirs: [Float], _ reference: Tracked) -> Tracked {
    Tracked(rows: reference.rows, cols: reference.cols, values: theirs.map(Double.init), bounds: reference.bounds.map { 2 * $0 })
}

/// Largest used fractions (error / bound) of checks A, B (library vs reference) and B (library vs framework, of 2·bound).
struct UsedFractions: CustomStringConvertible {
    var framework = 0.0, library: Double? = nil, libraryVsFramework = 0.0
    var description: String {
        String(format: "A (framework vs reference) %.3g, ", framework)
            + (library.map { String(format: "B (library vs reference) %.3g, ", $0) } ?? "")
            + String(format: "B (library vs framework, of 2·bound) %.3g", libraryVsFramework)
    }
}

/// Check A for one output: the framework's values `theirs` within the reference's bound.
func expectFrameworkAgrees(_ theirs: [Float], _ reference: Tracked, _ context: String, _ used: inout UsedFractions) {
    let a = WholeModelChecks.matches(theirs, reference, "A: the framework's outputs vs the reference, \(context)")
    #expect(a.passed, "\(a)")
    used.framework = max(used.framework, WholeModelChecks.usedFraction(theirs, reference))
}

/// Check B for one output: the library's values `ours` within the reference's bound (unless
/// `againstReference` is false) and within 2·bound of the framework's `theirs`.
func expectLoaderAgrees(_ ours: [Float], theirs: [Float], _ reference: Tracked, _ context: String, _ used: inout UsedFractions,
                        againstReference: Bool = true) {
    if againstReference {
        let b = WholeModelChecks.matches(ours, reference, "B: the library's outputs vs the reference, \(context)")
        #expect(b.passed, "\(b)")
        used.library = max(used.library ?? 0, WholeModelChecks.usedFraction(ours, reference))
    }
    let twice = twiceTheBound(around: theirs, reference)
    let c = WholeModelChecks.matches(ours, twice, "B: the library's outputs vs the framework's, within 2·bound, \(context)")
    #expect(c.passed, "\(c)")
    used.libraryVsFramework = max(used.libraryVsFramework, WholeModelChecks.usedFraction(ours, twice))
}

@Suite("Checkpoints written by Hugging Face transformers load to the framework's own outputs")
struct ReferenceFrameworkSpecs {
    @Test("tiny GPT-2 (save_pretrained): logits end to end — transformers' and the loaded model's within the reference forward's bound, every backend")
    func tinyGPT2() throws {
        let dir = hfFixtures.appendingPathComponent("tiny-gpt2")
        let fixture = try readFixture(GPT2Fixture.self, "tiny-gpt2/outputs.json")
        let checkpoint = try referenceCheckpoint(dir)
        let hyper = try referenceHyper(configAt: dir.appendingPathComponent("config.json"))
        #expect(fixture.cases.map(\.ids.count).contains(1))
        let references = try fixture.cases.map { try Reference.gpt2Logits(checkpoint, hyper: hyper, ids: $0.ids) }
        let models = try KernelPath.allCases.map { try DecoderOnlyModel.load(directory: dir, path: $0) }
        var used = UsedFractions()
        for (c, reference) in zip(fixture.cases, references) {
            let theirs = frameworkFloats(c.logits)
            expectFrameworkAgrees(theirs, reference, "logits, T = \(c.ids.count)", &used)
            for model in models {
                let tag = "\(model.path), T = \(c.ids.count)"
                // E[ids] + P: one correctly rounded Float addition on both sides, so equal bit for bit.
                let embedded = try #require(model.positions).add(to: model.tokenEmbedding.lookup(c.ids))
                #expect(embedded.storage == frameworkFloats(c.embeddings), "\(tag): wte[ids] + wpe")
                expectLoaderAgrees(try model.forward(c.ids).storage, theirs: theirs, reference, "logits, \(tag)", &used)
            }
        }
        print("tiny GPT-2 logits, used fractions of the bound: \(used)")
    }

    @Test("tiny BERT (save_pretrained, with a pooler to ignore): last hidden states end to end, token types 0 and 1 — transformers' and the loaded model's within the reference forward's bound, every backend")
    func tinyBERT() throws {
        let dir = hfFixtures.appendingPathComponent("tiny-bert")
        let fixture = try readFixture(BERTFixture.self, "tiny-bert/outputs.json")
        let checkpoint = try referenceCheckpoint(dir)
        let hyper = try referenceHyper(configAt: dir.appendingPathComponent("config.json"))
        #expect(fixture.cases.contains { $0.token_type_ids.contains(1) })
        let models = try KernelPath.allCases.map { try EncoderModel.load(directory: dir, path: $0) }
        var used = UsedFractions()
        for c in fixture.cases {
            let reference = try Reference.bertOutputs(checkpoint, hyper: hyper, ids: c.ids, tokenTypes: c.token_type_ids).hidden
            let theirs = frameworkFloats(c.last_hidden_state)
            expectFrameworkAgrees(theirs, reference, "last hidden states, T = \(c.ids.count)", &used)
            for model in models {
                expectLoaderAgrees(try model.hiddenStates(c.ids, tokenTypes: c.token_type_ids).storage, theirs: theirs, reference,
                                   "last hidden states, \(model.path), T = \(c.ids.count)", &used)
            }
        }
        print("tiny BERT last hidden states, used fractions of the bound: \(used)")
    }

    /// The real all-MiniLM-L6-v2 end to end, for the 4 sentences of the fixture (3 to 42 tokens): the
    /// framework's sentence embeddings within the reference's bound (A); the loaded model's last hidden
    /// state at every position and its 384-wide sentence embedding within it, and within 2·bound of the
    /// framework's embedding (B), on every path.
    @Test("all-MiniLM-L6-v2: WordPiece ids equal the model's own tokenizer's; sentence-transformers' embeddings of 4 sentences within the reference forward's bound; the loaded model's hidden states and embeddings within it too, every backend",
          .enabled(if: miniLMFetched, "MiniLM is not fetched: run scripts/fetch-data (or make fetch-data) to enable this spec"))
    func miniLM() throws {
        let fixture = try readFixture(MiniLMFixture.self, "minilm-embeddings.json")
        let tokenizer = try WordPieceTokenizer.load(modelDirectory: miniLMDirectory)
        let checkpoint = try referenceCheckpoint(miniLMDirectory)
        let hyper = try referenceHyper(configAt: miniLMDirectory.appendingPathComponent("config.json"))
        let models = try KernelPath.allCases.map { try EncoderModel.load(directory: miniLMDirectory, path: $0) }
        var used = UsedFractions()
        for c in fixture.cases {
            #expect(tokenizer.encode(c.text) == c.ids, "\(c.text)")
            // 16 perturbed runs instead of 24 (its cost dominates; the bound's factor is 16.6σ̂ instead of 12.4σ̂).
            let reference = try Reference.bertOutputs(checkpoint, hyper: hyper, ids: c.ids, runs: 16)
            let theirs = c.embedding.map(Float.init)
            let context = "\(c.ids.count) tokens \"\(c.text.prefix(30))…\""
            expectFrameworkAgrees(theirs, reference.sentenceEmbedding, "sentence embedding, \(context)", &used)
            for model in models {
                let hidden = WholeModelChecks.matches(try model.hiddenStates(c.ids).storage, reference.hidden,
                                                      "B: the library's last hidden states vs the reference, \(context), \(model.path)")
                #expect(hidden.passed, "\(hidden)")
                expectLoaderAgrees(try model.sentenceEmbedding(c.ids), theirs: theirs, reference.sentenceEmbedding,
                                   "sentence embedding, \(context), \(model.path)", &used)
            }
        }
        print("MiniLM sentence embeddings, used fractions of the bound: \(used)")
    }
}
