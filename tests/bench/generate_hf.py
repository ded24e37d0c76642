#!/usr/bin/env python3
"""Benchmark reference: transformers' generate on the same model and prompts
as build/bench/generate: float32 (or bfloat16), KV cache, one batch
(left-padded), greedy, no stop token (exactly max_new_tokens each), the same
thread count. With "single", each prompt alone (batch 1, no padding): the
same model and dtype, so the sequences it gives against the batched run's show
how far the reference agrees with itself.

    python3 tests/bench/generate_hf.py MODEL PROMPTS.json OUT.json THREADS [fp32|bf16] [single]"""
import json
import resource
import sys
import time

import torch
from transformers import AutoModelForCausalLM

model_dir, prompts_path, out_path, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
precision = sys.argv[5] if len(sys.argv) > 5 else "fp32"
single = len(sys.argv) > 6 and sys.argv[6] == "single"
dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]
torch.set_num_threads(threads)
spec = json.load(open(prompts_path))
prompts, max_new = spec["prompts"], spec["max_new_tokens"]
model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
model.eval()
pad = 0


def generate(batch):
    width = max(len(p) for p in batch)
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in batch])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in batch])
    with torch.no_grad():
        out = model.generate(ids, attention_mask=mask, max_new_tokens=max_new,
                             min_new_tokens=max_new, do_sample=False, use_cache=True,
                             eos_token_id=None, pad_token_id=pad)
    return out[:, width:].tolist()


r0 = resource.getrusage(resource.RUSAGE_SELF)
t0 = time.monotonic()
new = [generate([p])[0] for p in prompts] if single else generate(prompts)
dt = time.monotonic() - t0
r1 = resource.getrusage(resource.RUSAGE_SELF)
cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
toks = sum(len(x) for x in new)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
json.dump({"outputs": new, "seconds": dt, "cpu_seconds": cpu, "new_tokens": toks, "tokens_per_s": toks / dt,
           "peak_rss": rss, "torch": torch.__version__, "precision": precision, "single": single,
           "threads": torch.get_num_threads()}, open(out_path, "w"))
print("transformers %s%s: %d prompts, %d new tokens in %.2f s: %.1f tokens/s, peak RSS %.2f GiB"
      % (precision, " (one prompt at a time)" if single else "", len(prompts), toks, dt, toks / dt, rss / 2**30), file=sys.stderr)
