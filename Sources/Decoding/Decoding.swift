// Concept 6 — the decoder loop: greedy, sampling, beam search, KV cache. (issue 5)
