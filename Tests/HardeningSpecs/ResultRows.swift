import DecoderSpec
import Foundation
import SpecSupport
import Testing

/// Legal but extreme inputs whose result is defined in the docs: each check compares with the
/// closed form the docs state (exact where the arithmetic is exact).
enum ResultRows {
    typealias F = Fixture

    /// nil when `observed == expected` element for element, else the first difference.
    static func exactly(_ observed: [Float], _ expected: [Float], _ what: String) -> String? {
        guard observed.count == expected.count else { return "\(what): \(observed.count) values, expected \(expected.count)" }
        for (i, (o, e)) in zip(observed, expected).enumerated() where !(o == e) {
            return "\(what)[\(i)] = \(o), expected \(e)"
        }
        return nil
    }

    static let all: [ResultRow] = [
        ResultRow("masking", "every key padded (valid length 0), both variants",
                  documented: "weights 0 and output 0 on every row (docs/masking.md)") {
            for variant in KernelPath.allCases {
                let o = try scaledDotProductAttention(q: F.m(3, 4), k: F.m(5, 4), v: F.m(5, 2), mask: .keyPadding(validLength: 0), path: variant)
                if let e = exactly(o.storage, [Float](repeating: 0, count: 6), "o (\(variant))") { return e }
            }
            let w = try attentionWeights(q: F.m(3, 4), k: F.m(5, 4), mask: .keyPadding(validLength: 0))
            return exactly(w.storage, [Float](repeating: 0, count: 15), "weights")
        },
        ResultRow("masking", "causal mask with more queries than keys (row 0 sees nothing)",
                  documented: "fully masked rows are 0; the others sum to 1") {
            // 4 queries over 2 keys ending at the same position: query i sees keys j ≤ i − 2.
            let mask = AttentionMask(isCausal: true, queryOffset: 0, keyValidLength: nil, additive: try Matrix(rows: 4, cols: 2, storage: [
                -.infinity, -.infinity, -.infinity, -.infinity, 0, -.infinity, 0, 0]))
            let w = try attentionWeights(q: F.m(4, 4), k: F.m(2, 4), mask: mask)
            if let e = exactly(Array(w.storage[0..<4]), [0, 0, 0, 0], "rows 0–1") { return e }
            return exactly([w[2, 0], w[2, 1], w[3, 0] + w[3, 1]], [1, 0, 1], "rows 2–3")
        },
        ResultRow("kernels", "softmax of [1e30, −1e30, 0], both variants", documented: "[1, 0, 0] exactly (max subtracted first)") {
            for variant in KernelPath.allCases {
                let p = try Matrix([[1e30, -1e30, 0]]).softmaxRows(path: variant)
                if let e = exactly(p.storage, [1, 0, 0], "softmax (\(variant))") { return e }
            }
            return nil
        },
        ResultRow("kernels", "softmax of [−1e30, −1e30], both variants", documented: "[½, ½] exactly") {
            for variant in KernelPath.allCases {
                let p = try Matrix([[-1e30, -1e30]]).softmaxRows(path: variant)
                if let e = exactly(p.storage, [0.5, 0.5], "softmax (\(variant))") { return e }
            }
            return nil
        },
        ResultRow("kernels", "LayerNorm of a constant row c = 7", documented: "σ² = 0, so y = β exactly") {
            for variant in KernelPath.allCases {
                let y = try Matrix(rows: 2, cols: 5, repeating: 7).layerNorm(gamma: [1, 2, 3, 4, 5], beta: [0.5, -1, 0, 2, 3], path: variant)
                if let e = exactly(y.storage, [0.5, -1, 0, 2, 3, 0.5, -1, 0, 2, 3], "LayerNorm (\(variant))") { return e }
            }
            return nil
        },
        ResultRow("decoding", "sampling distribution of logits [1e30, 0, −1e30]", documented: "all mass on token 0") {
            let p = try LogitsFilter.distribution([1e30, 0, -1e30], SamplingConfig())
            return p == [1, 0, 0] ? nil : "p = \(p)"
        },
        ResultRow("decoding", "temperature 1e-30 on logits [1, 3, 2]", documented: "the limit T → 0: all mass on the argmax") {
            let p = try LogitsFilter.distribution([1, 3, 2], SamplingConfig(temperature: 1e-30))
            return p == [0, 1, 0] ? nil : "p = \(p)"
        },
        ResultRow("decoding", "top-p 0 on a tie [2, 2, 1]", documented: "argmax: the first of the tied tokens") {
            let p = try LogitsFilter.distribution([2, 2, 1], SamplingConfig(topP: 0))
            return p == [1, 0, 0] ? nil : "p = \(p)"
        },
        ResultRow("training", "cross-entropy with logits ±1e30", documented: "finite loss: 0 for the right class, 2e30 for the wrong one") {
            let logits = try Matrix([[1e30, -1e30], [1e30, -1e30]])
            let (loss, gradient, count) = try CrossEntropyLoss()(logits: logits, targets: [0, 1])
            guard count == 2, gradient.storage.allSatisfy(\.isFinite) else { return "gradient \(gradient.storage), count \(count)" }
            // Mean over the 2 positions of (0 + 2e30) = 1e30, to Float rounding of the logits.
            return abs(loss - 1e30) <= 1e30 * 1e-6 ? nil : "loss = \(loss)"
        },
        ResultRow("training", "AdamW resumed at step Int.max (a damaged checkpoint's optimizerStep; the update trapped, found by fuzzing)",
                  documented: "the update runs and the step stays Int.max: bias corrections 1 − β^t are exactly 1, θ −= η·m/(√v + ε)") {
            var rng = SeededRNG(seed: 1)
            var model = try Linear(inputSize: 2, outputSize: 1, rng: &rng)
            var gradient = model
            gradient.weight.storage = [0.5, -1]
            gradient.bias = [2]
            let before = model.weight.storage + model.bias!
            var optimizer = try AdamW(weightDecay: 0)
            optimizer.restore(step: .max, m: [[0, 0], [0]], v: [[0, 0], [0]])
            optimizer.update(&model, gradient: gradient, learningRate: 1e-3)
            guard optimizer.step == .max else { return "step \(optimizer.step)" }
            // m = (1 − β₁)g, v = (1 − β₂)g², no bias correction: Δθ = η·0.1g/(√0.001·|g| + 1e-8), in Double.
            // Tolerance: |θ| < 1 and |Δθ| ≈ 3.2e-3, so the update's six Float roundings (m, v, √, ÷, ×, −)
            // each err by ≤ 2⁻²⁴ ≈ 6e-8 absolutely: 6 · 6e-8 < 1e-6. With step 1's bias corrections
            // instead (c₁ = 0.1, c₂ = 0.001), |Δθ| would be η = 1e-3 — 2.2e-3 away, far outside it.
            for (i, g) in [0.5, -1, 2].enumerated() {
                let expected = Double(before[i]) - 1e-3 * 0.1 * g / ((0.001 * g * g).squareRoot() + 1e-8)
                let observed = Double((model.weight.storage + model.bias!)[i])
                if abs(observed - expected) > 1e-6 { return "θ[\(i)] = \(observed), expected \(expected)" }
            }
            return nil
        },
        ResultRow("metrics", "conlleval with no entities anywhere", documented: "P = R = F1 = 0 and token accuracy 1 (conlleval.pl prints 0.00)") {
            let r = try Conlleval.evaluate(gold: [["O", "O"]], predicted: [["O", "O"]])
            return r.precision == 0 && r.recall == 0 && r.f1 == 0 && r.tokenAccuracy == 1 ? nil : "\(r.precision) \(r.recall) \(r.f1) \(r.tokenAccuracy)"
        },
        ResultRow("metrics", "BLEU of empty hypotheses", documented: "0 (no n-gram matches; brevity penalty 0)") {
            let s = try BLEU.corpus(hypotheses: ["", ""], references: [["a b c d", "e f g h"]])
            return s.score == 0 ? nil : "BLEU = \(s.score)"
        },
    ]
}
