// notebooks-md/10-static-vs-contextual.md, checked: every cosine its table prints, recomputed from
// the Double reference forward (Tests/ReferenceModel, its state after layer l for row l), within the bound the reference's per-element bound implies, plus the printing's 0.0005.
import DecoderSpec
import Foundation
import ReferenceModel
import SpecSupport
import Testing

@Suite("Static vs contextual embeddings (notebook 10) against the reference forward")
struct StaticContextualSpecs {
    /// The notebook's sentences; *bank* in two senses (F1, F2 finance; R1, R2 river).
    static let sentences = [
        "She paid the cheque into her account at the bank.",
        "The bank raised its interest rates again.",
        "We had a picnic on the grassy bank of the river.",
        "The boat drifted slowly towards the muddy bank.",
    ]
    static let pairs = [(0, 1), (2, 3), (0, 2), (0, 3), (1, 2), (1, 3)]

    /// The notebook's printed table: one row of 6 cosines per layer 0…6.
    func printedTable() throws -> [[Double]] {
        let text = try String(contentsOf: projectRoot.appendingPathComponent("notebooks-md/10-static-vs-contextual.md"), encoding: .utf8)
        let lines = text.components(separatedBy: "\n")
        let start = lines.firstIndex { $0.hasPrefix("layer  F1–F2") }!
        return lines[(start + 1)...(start + 7)].map { line in
            line.split(separator: " ").dropFirst().prefix(6).map { Double($0)! }
        }
    }

    static func cosine(_ a: [Double], _ b: [Double]) -> Double {
        let ab = zip(a, b).reduce(0) { $0 + $1.0 * $1.1 }
        return ab / (a.reduce(0) { $0 + $1 * $1 }.squareRoot() * b.reduce(0) { $0 + $1 * $1 }.squareRoot())
    }

    static func norm(_ v: [Double]) -> Double { v.reduce(0) { $0 + $1 * $1 }.squareRoot() }

    /// |cos(a, c) − cos(r_a, r_c)| ≤ ‖â − r̂_a‖ + ‖ĉ − r̂_c‖ ≤ 2‖b_a‖/‖r_a‖ + 2‖b_c‖/‖r_c‖ for
    /// |a − r_a| ≤ b_a elementwise (unit vectors: ⟨â, ĉ⟩ − ⟨r̂_a, r̂_c⟩ splits in two, each ≤ the
    /// distance of the normalized vectors, which is ≤ 2‖δ‖/‖r‖).
    static func cosineBound(_ ra: [Double], _ ba: [Double], _ rc: [Double], _ bc: [Double]) -> Double {
        2 * norm(ba) / norm(ra) + 2 * norm(bc) / norm(rc)
    }

    @Test("Every printed cosine (7 layers × 6 pairs) and the library's Float value lie within the reference's bound; from layer 1 on every same-sense pair is closer than every cross-sense pair",
          .enabled(if: miniLMFetched, "MiniLM is not fetched: run scripts/fetch-data (or make fetch-data) to enable this spec"))
    func tableAgainstReference() throws {
        let model = try EncoderModel.load(directory: miniLMDirectory)
        let tokenizer = try WordPieceTokenizer.load(modelDirectory: miniLMDirectory)
        let checkpoint = try referenceCheckpoint(miniLMDirectory)
        let hyper = try referenceHyper(configAt: miniLMDirectory.appendingPathComponent("config.json"))
        let bank = tokenizer.vocabulary.id(of: "bank")!
        let ids = Self.sentences.map { tokenizer.encode($0) }
        let positions = ids.map { $0.firstIndex(of: bank)! }
        let states = try ids.map { try model.layerStates($0) }
        let printed = try printedTable()
        // Every sentence's states after the embedding and each layer, from one reference forward.
        let references = try ids.map { sentence in
            try Reference.estimate(runs: 16) { a in try Reference.bertLayerStates(a, checkpoint, hyper: hyper, ids: sentence) }
        }
        var worst = 0.0
        for layer in 0...model.layers.count {
            let reference = (0..<ids.count).map { references[$0][layer].rows(positions[$0]..<(positions[$0] + 1)) }
            for (k, (a, c)) in Self.pairs.enumerated() {
                let exact = Self.cosine(reference[a].values, reference[c].values)
                let bound = Self.cosineBound(reference[a].values, reference[a].bounds, reference[c].values, reference[c].bounds)
                let ours = Self.cosine(states[a][layer].row(positions[a]).map(Double.init), states[c][layer].row(positions[c]).map(Double.init))
                #expect(abs(ours - exact) <= bound, "layer \(layer), pair \(a)–\(c): library \(ours), reference \(exact) ± \(bound)")
                #expect(abs(printed[layer][k] - exact) <= bound + 0.0005, "layer \(layer), pair \(a)–\(c): printed \(printed[layer][k]), reference \(exact) ± \(bound)")
                worst = max(worst, bound)
            }
            if layer >= 1 {
                let cos = Self.pairs.map { Self.cosine(reference[$0.0].values, reference[$0.1].values) }
                #expect(cos[0...1].min()! > cos[2...].max()!, "layer \(layer): same sense \(cos[0...1]) vs across \(cos[2...])")
            }
        }
        print("notebook 10's cosines: largest bound from the reference \(worst)")
    }
}
