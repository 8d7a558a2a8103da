import DecoderSpec
import Foundation
import SpecSupport
import Testing

/// The weight-only bf16 decode path on a trained checkpoint (docs/runs/byte-lm, the byte-level
/// language model the repo ships): the per-Linear error bound at every Linear of real decoding
/// steps, the tied head's argmax invariant, and the greedy tokens of the two paths side by side.
/// See docs/decoding.md ("bf16 weights").
@Suite("bf16 weights: per-Linear bound on a trained model, the head's argmax invariant, greedy tokens")
struct BF16DecodeSpecs {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let checkpoint = root.appendingPathComponent("docs/runs/byte-lm")
    static let prompts = ["In the beginning God created", "And the LORD spake unto Moses, saying", "Blessed are the"]

    /// Per output j of x·Wᵀ (+ b) for one row x: the derived bound on |ŷ_j − y_j| between the bf16
    /// and the Float forms (BFloat16Specs.linearBound derives it):
    /// u_b·Σ|w x| + γ_k(Σ|ŵ x| + Σ|w x|) + ε(|ŷ_j| + |y_j|), u_b = 2⁻⁸, γ_k ≤ (k + 2)·ε.
    static func bounds(w: Matrix, rounded: Matrix, x: [Float], y: [Float], yHat: [Float]) -> [Double] {
        let k = w.cols, eps = Double(Float.ulpOfOne)
        return (0..<w.rows).map { j in
            var sw = 0.0, sh = 0.0
            for p in 0..<k {
                sw += abs(Double(w.storage[j * k + p]) * Double(x[p]))
                sh += abs(Double(rounded.storage[j * k + p]) * Double(x[p]))
            }
            return 0x1p-8 * sw + Double(k + 2) * eps * (sh + sw) + eps * (abs(Double(y[j])) + abs(Double(yHat[j])))
        }
    }

    @Test("every Linear of every layer and the tied head, at every position of real prompts: |ŷ − y| within the derived bound")
    func perLinearBound() throws {
        let model = try LanguageModel.load(directory: Self.checkpoint, path: .optimized)
        let fp = model.model, bf = fp.roundingWeightsToBF16()
        #expect(bf.weightFormat == .bf16 && fp.weightFormat == .fp32)
        var checked = 0, worst = 0.0, failures: [String] = []
        func check(_ what: String, _ a: Linear, _ b: Linear, _ input: Matrix) throws {
            #expect(b.weightBF16 != nil, "\(what) is stored in bf16")
            for t in 0..<input.rows {
                let x = input.rows(t..<(t + 1))
                let y = try a(x).storage, yHat = try b(x).storage   // one row: Float GEMV vs bf16 GEMV
                let bound = Self.bounds(w: a.weight, rounded: b.weight, x: x.storage, y: y, yHat: yHat)
                for j in y.indices {
                    let d = abs(Double(yHat[j]) - Double(y[j]))
                    worst = max(worst, d / bound[j])
                    if d > bound[j] { failures.append("\(what) row \(t) out \(j): |Δ| \(d) > \(bound[j])") }
                    checked += 1
                }
            }
        }
        for prompt in Self.prompts {
            let ids = model.tokenizer.encode(prompt)
            var h = try fp.embedded(ids, startingAt: 0)
            for (l, layer) in fp.layers.enumerated() {
                let bl = bf.layers[l]
                let ln1 = try layer.selfAttentionNorm(h)
                let a = layer.selfAttention, ba = bl.selfAttention
                try check("layer \(l) W_Q", a.query, ba.query, ln1)
                try check("layer \(l) W_K", a.key, ba.key, ln1)
                try check("layer \(l) W_V", a.value, ba.value, ln1)
                let mixed = try a.attend(queries: a.query(ln1), keys: a.key(ln1), values: a.value(ln1), mask: .causal())
                try check("layer \(l) W_O", a.output, ba.output, mixed)
                let h2 = try h.adding(try a.output(mixed))
                let ln2 = try layer.feedForwardNorm(h2)
                try check("layer \(l) W_up", layer.feedForward.up, bl.feedForward.up, ln2)
                var act = try layer.feedForward.up(ln2)
                let count = act.storage.count
                act.storage.withUnsafeMutableBufferPointer { Activation.apply(layer.feedForward.activation, .optimized, $0.baseAddress!, count: count) }
                try check("layer \(l) W_down", layer.feedForward.down, bl.feedForward.down, act)
                h = try layer(h)
            }
            // The tied head: logits = LN_f(h)·Eᵀ vs LN_f(h)·Êᵀ on the same rows.
            let normed = try fp.finalNorm(h)
            for t in 0..<normed.rows {
                let x = normed.rows(t..<(t + 1))
                let y = try fp.tokenEmbedding.tiedLogits(x).storage, yHat = try bf.tokenEmbedding.tiedLogits(x).storage
                let bound = Self.bounds(w: fp.tokenEmbedding.weight, rounded: bf.tokenEmbedding.weight, x: x.storage, y: y, yHat: yHat)
                for j in y.indices {
                    let d = abs(Double(yHat[j]) - Double(y[j]))
                    worst = max(worst, d / bound[j])
                    if d > bound[j] { failures.append("head row \(t) logit \(j): |Δ| \(d) > \(bound[j])") }
                    checked += 1
                }
            }
        }
        #expect(failures.isEmpty, "\(failures.count) outputs over the bound, first \(failures.first ?? "")")
        #expect(checked > 10_000)
        print("bf16 per-Linear bound: \(checked) outputs checked; the largest |Δ| is \(String(format: "%.2f", worst)) of its bound")
    }

    /// On the same final hidden row, each bf16 logit is within b_i of the Float one (the bound
    /// above), so the bf16 argmax can differ from the Float argmax i* only where
    /// y_{i*} − max_{i≠i*} y_i ≤ b_{i*} + max_{i≠i*} b_i. Where the Float margin exceeds that, the
    /// tokens must agree: a falsifiable invariant (a head that rounded wrongly, or read the wrong
    /// rows, breaks it).
    @Test("tied head: wherever the Float top-2 margin exceeds the logit-error bound, bf16 picks the same token")
    func headArgmaxInvariant() throws {
        let model = try LanguageModel.load(directory: Self.checkpoint, path: .optimized)
        let fp = model.model, bf = fp.roundingWeightsToBF16()
        var decided = 0, rows = 0
        for prompt in Self.prompts {
            let ids = model.tokenizer.encode(prompt)
            let normed = try fp.finalNorm(try fp.hiddenStates(ids))
            for t in 0..<normed.rows {
                let x = normed.rows(t..<(t + 1))
                let y = try fp.tokenEmbedding.tiedLogits(x).storage, yHat = try bf.tokenEmbedding.tiedLogits(x).storage
                let b = Self.bounds(w: fp.tokenEmbedding.weight, rounded: bf.tokenEmbedding.weight, x: x.storage, y: y, yHat: yHat)
                let top = LogitsFilter.argmax(y)
                var second = -Double.infinity, maxOther = 0.0
                for i in y.indices where i != top { second = max(second, Double(y[i])); maxOther = max(maxOther, b[i]) }
                rows += 1
                if Double(y[top]) - second > b[top] + maxOther {
                    decided += 1
                    #expect(LogitsFilter.argmax(yHat) == top, "row \(t) of \"\(prompt)\": margin \(Double(y[top]) - second) > bound \(b[top] + maxOther)")
                }
            }
        }
        #expect(decided > 0, "the invariant was never exercised (\(rows) rows)")
        print("bf16 head invariant: \(decided) of \(rows) positions had a margin above the bound, and kept their token")
    }

    /// Not a bound: what rounding every weight of the whole model does to greedy decoding, reported
    /// (docs/decoding.md records the output). The spec checks only that the bf16 path was taken
    /// (the logits moved) and that both runs produced their tokens; the divergence is printed.
    @Test("greedy decoding, Float vs bf16 weights: the first divergence and the Float margin there (reported)")
    func greedyTokens() throws {
        let model = try LanguageModel.load(directory: Self.checkpoint, path: .optimized)
        let fp = model.model, bf = fp.roundingWeightsToBF16()
        var maxLogitDiff = 0.0
        for prompt in Self.prompts {
            let ids = model.tokenizer.encode(prompt)
            let n = fp.contextLength - ids.count
            let a = try Generator.generate(fp, prompt: ids, strategy: .greedy, config: GenerationConfig(maxNewTokens: n))
            let b = try Generator.generate(bf, prompt: ids, strategy: .greedy, config: GenerationConfig(maxNewTokens: n))
            #expect(a.tokens.count == n && b.tokens.count == n)
            // The whole model's logits at the prompt's last position, measured.
            let la = try fp.logits(forSequence: ids), lb = try bf.logits(forSequence: ids)
            let d = zip(la, lb).map { abs(Double($0) - Double($1)) }.max()!
            maxLogitDiff = max(maxLogitDiff, d)
            let spread = (la.max()! - la.min()!)
            print("bf16 greedy \"\(prompt)\": \(n) tokens; max |Δlogit| at the prompt's end \(String(format: "%.2e", d)) (logit range \(String(format: "%.1f", spread))); "
                  + (try Self.divergence(fp, prompt: ids, a.tokens, b.tokens)))
            print("  fp32: \(try model.tokenizer.decode(ids + a.tokens))")
            print("  bf16: \(try model.tokenizer.decode(ids + b.tokens))")
        }
        #expect(maxLogitDiff > 0, "bf16 rounding changed no logit: the bf16 path was not taken")
    }

    /// "identical tokens", or where greedy continuation `b` first leaves the Float model's `a` and the
    /// Float top-2 margin at that position (the bf16 weights' and the bf16 cache's reports).
    static func divergence(_ fp: DecoderOnlyModel, prompt ids: [Int], _ a: [Int], _ b: [Int]) throws -> String {
        guard let i = a.indices.first(where: { a[$0] != b[$0] }) else { return "identical tokens" }
        let sorted = try fp.logits(forSequence: ids + Array(a[..<i])).sorted(by: >)
        return "first divergence at new token \(i + 1), where the Float top-2 margin is \(String(format: "%.2e", sorted[0] - sorted[1]))"
    }
}
