#!/usr/bin/env python3
"""make_finetune.py — a "fine-tuned" copy of a benchmark model: every linear
weight of the decoder layers gets N(0, 1e-3) noise (a fine-tune's typical
relative change of a few percent on N(0, 0.02) weights), shard by shard, bf16.

    python3 tests/bench/make_finetune.py ~/.cache/realign/models/llama2-7b-random OUT_DIR

Same shard names and index as the source; peak memory about one shard (<= 5 GB).
"""
import json
import os
import shutil
import sys

import torch
from safetensors import safe_open
from safetensors.torch import save_file


def main():
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(src):
        if not f.endswith(".safetensors"):
            shutil.copy(os.path.join(src, f), out)
    g = torch.Generator().manual_seed(4321)
    for f in sorted(os.listdir(src)):
        if not f.endswith(".safetensors"):
            continue
        d = {}
        with safe_open(os.path.join(src, f), "pt") as st:
            meta = st.metadata()
            for name in st.keys():
                t = st.get_tensor(name)
                if ".layers." in name and name.endswith("proj.weight"):
                    noise = torch.randn(t.shape, generator=g, dtype=torch.float32) * 1e-3
                    t = (t.float() + noise).to(t.dtype)
                d[name] = t
        save_file(d, os.path.join(out, f), metadata=meta)
        del d
        print(f"{f} written", flush=True)


if __name__ == "__main__":
    main()
