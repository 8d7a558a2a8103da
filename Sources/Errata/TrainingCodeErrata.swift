// The source documents' training code where a defect changes a number (not merely a missing
// import): transcribed so each one's effect on an output or a metric can be run. The correct
// versions: PositionalEncoding, Layers' TransformerLayer, Masking, Metrics, Training's Seq2SeqBatch.
// docs/sources.md lists the sections; specs in Tests/ErrataSpecs/TrainingCodeErrataSpecs.swift.
import Attention
import Layers
import Masking
import PositionalEncoding
import TensorCore

public enum TrainingCodeErrata {
    // MARK: Doc 004 — the PE buffer sliced by the batch size

    /// Doc 004 (§5.2), verbatim:
    ///
    ///     pe = pe.unsqueeze(0).transpose(0, 1)          # [max_len, 1, d_model]
    ///     x = x + self.pe[:x.size(0), :]
    ///
    /// Right for sequence-first input [T, B, d] (`nn.Transformer`'s default), wrong for
    /// batch-first input [B, T, d]: `x.size(0)` is then the batch size, `pe[:B]` is [B, 1, d], and
    /// broadcasting adds PE(b) — the *sentence's index in the batch* — to every token of sentence
    /// b. Within a sentence all tokens get the same vector, so the positions are lost, and the same
    /// sentence is encoded differently depending on its slot in the batch.
    /// `batch`: B sentences [T, d] (batch-first). Returns B × [T, d].
    public static func doc004AddPositions(batchFirst batch: [Matrix], encoding: SinusoidalPositionalEncoding) throws -> [Matrix] {
        let pe = try encoding.table(count: batch.count)                   // self.pe[:x.size(0)] with x.size(0) = B
        return try batch.enumerated().map { b, x in
            guard x.cols == pe.cols else {
                throw DecoderSpecError.shapeMismatch(operation: "doc 004 x + pe[:x.size(0)]", expected: "[T, \(pe.cols)]", actual: "\(x.shape)")
            }
            var y = x
            for t in 0..<x.rows { for j in 0..<x.cols { y[t, j] += pe[b, j] } }
            return y
        }
    }

    // MARK: Doc 004 — the dropout rate passed as the feed-forward width

    /// Doc 004 (§5.2), verbatim: `nn.TransformerEncoderLayer(d_model, nhead, dropout)`.
    /// PyTorch's signature is `(d_model, nhead, dim_feedforward=2048, dropout=0.1, …)`, so the
    /// third positional argument is `dim_feedforward`: the dropout rate 0.1 becomes the FFN width
    /// (and the real dropout stays at its default). The same class's `num_encoder_layers` and
    /// `num_decoder_layers` are accepted and never used: one layer each.
    /// Returns the keyword each positional argument binds to.
    public static func doc004EncoderLayerArguments(dModel: Double, nhead: Double, dropout: Double) -> [(name: String, value: Double)] {
        let signature = ["d_model", "nhead", "dim_feedforward", "dropout"]     // torch.nn.TransformerEncoderLayer
        let bound = zip(signature, [dModel, nhead, dropout]).map { (name: $0, value: $1) }
        return bound + [(name: "dropout", value: 0.1)]                          // the default, untouched
    }

    /// The layer those arguments describe, built by the suite: width `dim_feedforward` must be a
    /// positive integer, so 0.1 is refused with a typed error (PyTorch's `nn.Linear(d_model, 0.1)`
    /// fails too). GELU, post-norm, as PyTorch's default `norm_first=False` (its default
    /// activation is ReLU; the activation does not matter for the width check).
    public static func doc004EncoderLayer(dModel: Int, nhead: Int, dropout: Double, rng: inout SeededRNG) throws -> TransformerLayer {
        let args = doc004EncoderLayerArguments(dModel: Double(dModel), nhead: Double(nhead), dropout: dropout)
        let width = args[2].value
        guard let ff = Int(exactly: width), ff > 0 else {
            throw DecoderSpecError.invalidArgument(what: "dim_feedforward = \(width)",
                                                   reason: "the feed-forward width must be a positive integer (the third positional argument of nn.TransformerEncoderLayer is dim_feedforward, not dropout)")
        }
        return try TransformerLayer.seeded(modelWidth: dModel, heads: nhead, feedForwardWidth: ff, activation: .relu,
                                           placement: .post, causal: false, crossAttention: false, rng: &rng)
    }

    // MARK: Doc 000 — a float mask where a boolean one is needed

    /// Doc 000 (§3.2.3), verbatim:
    ///
    ///     attn_mask = torch.triu(torch.ones(batch_size, max_len, max_len).to(device), diagonal=1)
    ///     attn_weights = attn_weights.masked_fill_(attn_mask, float('-inf'))
    ///
    /// `torch.ones` is float, and `masked_fill_` takes only a boolean mask (it raises on a float
    /// one). Passed where PyTorch does accept a float mask — `attn_mask` of
    /// `F.scaled_dot_product_attention` or `nn.MultiheadAttention` — a float mask is *added* to
    /// the scores: +1 on every future key instead of −∞. The future is not hidden, it is favoured
    /// by a factor e. [T, T], 1 above the diagonal, 0 elsewhere.
    public static func doc000FloatCausalMask(_ t: Int) -> Matrix {
        var m = Matrix(rows: t, cols: t)
        for i in 0..<t { for j in (i + 1)..<max(t, i + 1) { m[i, j] = 1 } }
        return m
    }

    /// Attention with the float mask added, as PyTorch applies a float `attn_mask`. [T, d_v].
    public static func doc000FloatMaskAttention(q: Matrix, k: Matrix, v: Matrix) throws -> Matrix {
        guard q.rows == k.rows else {
            throw DecoderSpecError.shapeMismatch(operation: "doc 000 causal mask", expected: "Tq = Tk (self-attention)", actual: "Tq \(q.rows), Tk \(k.rows)")
        }
        return try scaledDotProductAttention(q: q, k: k, v: v, mask: .additive(doc000FloatCausalMask(q.rows)), path: .naive)
    }

    // MARK: Doc 000 — padding and special tokens scored

    /// Doc 000 (§5.2), verbatim (`evaluate`):
    ///
    ///     encoding = self.tokenizer(text, target, …, max_length=self.max_len, padding='max_length', truncation=True)
    ///     …
    ///     label_tags = [id2tag[_id] for _id in label_tokens]
    ///     preds.append(pred_tags[:len(label_tokens)])
    ///     labels.append(label_tags)
    ///
    /// Every one of the `max_len` = 128 positions is scored: [CLS], [SEP] and the padding carry a
    /// label (no −100, no ignore index) and a trained model predicts that label there. A sentence of
    /// n words contributes 128 scored positions, 128 − n of them free. Transcribed on word-level
    /// tags: each sentence becomes [CLS] + words (truncated to 126) + [SEP] + padding, the added
    /// positions labelled and predicted `fill` (the doc's `id2tag[0]`; "O" as in most tag maps).
    public static func doc000ScoredSequences(gold: [[String]], predicted: [[String]], maxLength: Int = 128,
                                             fill: String = "O") throws -> (gold: [[String]], predicted: [[String]]) {
        guard gold.count == predicted.count, maxLength >= 2 else {
            throw DecoderSpecError.invalidArgument(what: "doc 000 scoring", reason: "needs one prediction per sentence and max_len ≥ 2")
        }
        func pad(_ tags: [String]) -> [String] {
            let words = Array(tags.prefix(maxLength - 2))
            return [fill] + words + [String](repeating: fill, count: maxLength - 1 - words.count)
        }
        return (gold.map(pad), predicted.map(pad))
    }

    // MARK: Doc 001 — labels from a mask token GPT-2 does not have

    /// GPT-2's vocabulary: ids 0 ..< 50257; its tokenizer defines `<|endoftext|>` (50256) as bos,
    /// eos and unk, and no mask token (`mask_token_id` is None).
    public static let gpt2VocabularySize = 50257

    /// Doc 001 (§5.2), verbatim (`TranslationDataset.__getitem__`):
    ///
    ///     labels = input_ids.clone().detach()
    ///     labels[labels<self.tokenizer.mask_token_id] = -100  # 将掩码标记为 -100
    ///     labels[labels>=self.tokenizer.mask_token_id] = 0
    ///
    /// The labels come from the *source* ids, never from `translation_ids`, so the translation
    /// cannot be learned whatever the threshold. With GPT-2, `mask_token_id` is None and the
    /// comparison raises (here: `.invalidArgument`); with a mask token added to the tokenizer it gets
    /// id 50257, above every real id, so every label becomes −100: no position is scored, the loss
    /// is a mean over nothing (NaN in PyTorch, 0 with count 0 in the suite) and the gradient is 0.
    public static func doc001Labels(inputIds: [Int], maskTokenId: Int?) throws -> [Int] {
        guard let mask = maskTokenId else {
            throw DecoderSpecError.invalidArgument(what: "mask_token_id = None",
                                                   reason: "GPT-2's tokenizer has no mask token, so `labels < mask_token_id` cannot be computed")
        }
        return inputIds.map { $0 < mask ? -100 : 0 }
    }
}
