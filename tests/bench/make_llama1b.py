#!/usr/bin/env python3
"""Writes a random Llama-3.2-1B-shaped model (bf16) for the benchmarks:
hidden 2048, 16 layers, 32 heads, 8 kv heads, intermediate 8192, vocab
128256, tied embeddings, Llama-3 rope scaling (factor 32, theta 500000), as
meta-llama/Llama-3.2-1B's config.json. About 2.5 GB on disk.

    python3 tests/bench/make_llama1b.py [DIR]

DIR defaults to ${XDG_CACHE_HOME:-~/.cache}/realign/models/llama3.2-1b-random; nothing is done when DIR
already holds a model. Deterministic (seed 0)."""
import os
import sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM

cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(cache, "realign/models/llama3.2-1b-random")
if os.path.exists(os.path.join(out, "config.json")):
    print("%s: already there" % out)
    sys.exit(0)
cfg = LlamaConfig(
    vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
    num_attention_heads=32, num_key_value_heads=8, head_dim=64, max_position_embeddings=131072,
    rms_norm_eps=1e-5, rope_theta=500000.0, tie_word_embeddings=True, bos_token_id=128000,
    eos_token_id=[128001, 128008, 128009],
    rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                  "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})
torch.manual_seed(0)
torch.set_default_dtype(torch.bfloat16)
model = LlamaForCausalLM(cfg)
model.save_pretrained(out + ".tmp")
os.rename(out + ".tmp", out)
print("%s: %.2f B parameters" % (out, sum(p.numel() for p in model.parameters()) / 1e9))
