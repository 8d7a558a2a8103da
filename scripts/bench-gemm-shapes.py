#!/usr/bin/env python3
"""Times every GEMM shape of a MiniLM NER training step (written by `decoder-spec-bench training-gemm`
to .build-release/training-gemm-shapes.json) on torch.mm and numpy (OpenBLAS), one thread, the same
strides; prints ms per step per category. Run with the peers' venv (make peer-venv):
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv-peers/bin/python scripts/bench-gemm-shapes.py"""
import collections, importlib.util, json, os, sys
import numpy as np
import torch

torch.set_num_threads(1)
path = sys.argv[1] if len(sys.argv) > 1 else ".build-release/training-gemm-shapes.json"
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 4  # the suite records the training suite's 4 batches
entries = json.load(open(path))


# The peers' timer (scripts/bench-peers.py: warm-up, repetitions to ≥ min_seconds, the median).
_peers_spec = importlib.util.spec_from_file_location("bench_peers", os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench-peers.py"))
_peers = importlib.util.module_from_spec(_peers_spec)
_peers_spec.loader.exec_module(_peers)


def median_seconds(body):
    return _peers.median_seconds(body, runs=5, min_seconds=0.004)


totals = collections.defaultdict(lambda: [0, 0.0, 0.0, 0.0])
rng = np.random.default_rng(7)
for e in entries:
    g, count = e["group"], e["count"]
    m, n, k = g["m"], g["n"], g["k"]
    a_rows, a_cols = (k, m) if g["transA"] else (m, k)
    b_rows, b_cols = (n, k) if g["transB"] else (k, n)
    a_store = rng.uniform(-1, 1, (a_rows, g["lda"])).astype(np.float32)
    b_store = rng.uniform(-1, 1, (b_rows, g["ldb"])).astype(np.float32)
    a_np = a_store[:, :a_cols].T if g["transA"] else a_store[:, :a_cols]
    b_np = b_store[:, :b_cols].T if g["transB"] else b_store[:, :b_cols]
    c_np = np.zeros((m, n), np.float32)
    a_t, b_t = torch.from_numpy(a_store)[:, :a_cols], torch.from_numpy(b_store)[:, :b_cols]
    a_t = a_t.t() if g["transA"] else a_t
    b_t = b_t.t() if g["transB"] else b_t
    c_t = torch.zeros(m, n)
    if g["accumulate"]:
        t_torch = median_seconds(lambda: c_t.addmm_(a_t, b_t))
        t_np = median_seconds(lambda: np.add(c_np, a_np @ b_np, out=c_np))
    else:
        t_torch = median_seconds(lambda: torch.mm(a_t, b_t, out=c_t))
        t_np = median_seconds(lambda: np.matmul(a_np, b_np, out=c_np))
    cat = e["category"]
    totals[cat][0] += count / steps
    totals[cat][1] += 2.0 * m * n * k * count / steps
    totals[cat][2] += t_torch * count / steps
    totals[cat][3] += t_np * count / steps

print(f"per step (mean of {steps}); one thread")
print(f"{'products':40s} {'calls':>6s} {'GFLOP':>7s} {'torch ms':>9s} {'numpy ms':>9s}")
all_ = [0, 0.0, 0.0, 0.0]
for cat, (calls, flops, tt, tn) in sorted(totals.items(), key=lambda kv: -kv[1][2]):
    print(f"{cat:40s} {calls:6.0f} {flops / 1e9:7.2f} {tt * 1e3:9.1f} {tn * 1e3:9.1f}")
    all_ = [all_[0] + calls, all_[1] + flops, all_[2] + tt, all_[3] + tn]
print(f"{'all GEMM':40s} {all_[0]:6.0f} {all_[1] / 1e9:7.2f} {all_[2] * 1e3:9.1f} {all_[3] * 1e3:9.1f}")
print("numpy:", np.__version__, "torch:", torch.__version__)
