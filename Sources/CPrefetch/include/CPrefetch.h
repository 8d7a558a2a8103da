// A software prefetch for Swift, which has no prefetch of its own: the kernels that stream
// weights or a KV cache from DRAM ask for lines a few hundred bytes ahead of the loads
// (Sources/Kernels/BFloat16.swift, CachedAttention.swift; docs/kernels.md, "bf16 weights").
// A prefetch is a hint: it never faults, so an address past the end of a buffer is harmless.
#ifndef DECODERSPEC_CPREFETCH_H
#define DECODERSPEC_CPREFETCH_H

/// Asks for the cache line holding `p` (read, keep in every cache level).
static inline void decoderspec_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

#endif
