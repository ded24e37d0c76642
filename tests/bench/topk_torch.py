#!/usr/bin/env python3
"""topk_torch.py DIR K — the reference's selection over DIR (gen_select_bench.py):
fp32 copies, sign mask, every masked |g| concatenated, torch.topk. Prints the
time, peak RSS and the k-th score (which rl-select's "threshold" must equal)."""
import resource, sys, time
import torch
from safetensors import safe_open

d, k = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(2)
t0 = time.time()
scores = []
with safe_open(f"{d}/cur/model.safetensors", "pt") as c, \
        safe_open(f"{d}/tgt/model.safetensors", "pt") as t, \
        safe_open(f"{d}/grad.safetensors", "pt") as g:
    for n in g.keys():
        w, a, gr = c.get_tensor(n).float(), t.get_tensor(n).float(), g.get_tensor(n)
        diff = w - a
        mask = ((diff > 0) & (gr > 0)) | ((diff < 0) & (gr < 0))
        scores.append((gr.abs() * mask).flatten())
flat = torch.cat(scores)
v, i = torch.topk(flat, k)
dt = time.time() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"torch.topk n={flat.numel()} k={k}: {dt:.2f} s, peak RSS {rss:.0f} MiB, k-th score {v[-1].item():.9g}")
