#!/usr/bin/env python3
# Same-machine peer for `make bench SUITES=attention`: causal SDPA the way PyTorch's "math" backend
# does it (materialized scores, masked softmax, two GEMMs) in NumPy on one OpenBLAS thread,
# median process CPU time of 9 runs. See docs/attention.md ("Benchmark").
import os
os.environ["OPENBLAS_NUM_THREADS"]="1"; os.environ["OMP_NUM_THREADS"]="1"
import numpy as np, time
for T in (1024, 2048):
    rng=np.random.default_rng(T)
    q,k,v=[rng.uniform(-1,1,(T,64)).astype(np.float32) for _ in range(3)]
    mask=np.triu(np.full((T,T),-np.inf,np.float32),1)
    def sdpa():
        s=q@k.T; s*=np.float32(1/8); s+=mask
        s-=s.max(1,keepdims=True); np.exp(s,out=s); s/=s.sum(1,keepdims=True)
        return s@v
    sdpa()
    ts=[]
    for _ in range(9):
        t0=time.process_time(); sdpa(); ts.append(time.process_time()-t0)
    ts.sort(); print(T, "numpy (OpenBLAS 1 thread) materialized causal SDPA: %.2f ms CPU" % (ts[4]*1e3))
