#!/usr/bin/env python3
"""make_model.py — random HuggingFace models of real shapes for the benchmarks.

    python3 tests/bench/make_model.py llama32-1b ~/.cache/realign/models/llama32-1b-random
    python3 tests/bench/make_model.py llama2-7b  ~/.cache/realign/models/llama2-7b-random
    python3 tests/bench/make_model.py qwen25-1.5b ~/.cache/realign/models/qwen25-1.5b-random
    python3 tests/bench/make_model.py --prompts 64 40 80 OUT.jsonl   # random prompts

Writes config.json (as the released checkpoints spell it) and bf16 safetensors
shards with an index, tensor by tensor from a fixed seed, so anyone rerunning it
gets the same bytes. Peak memory is about one shard (<= 5 GB). Weights: N(0, 0.02) for
linear layers and embeddings, 1 + N(0, 0.02) for norms (the values do not
matter for speed; they only need to be finite and non-degenerate).
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file

SHAPES = {
    # meta-llama/Llama-3.2-1B-Instruct's config.json
    "llama32-1b": {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
        "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 64,
        "vocab_size": 128256, "max_position_embeddings": 131072, "rms_norm_eps": 1e-5,
        "rope_theta": 500000.0,
        "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "tie_word_embeddings": True, "hidden_act": "silu", "attention_bias": False,
        "mlp_bias": False, "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009],
        "torch_dtype": "bfloat16",
    },
    # meta-llama/Llama-2-7b-chat-hf's config.json
    "llama2-7b": {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
        "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32000,
        "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "tie_word_embeddings": False, "hidden_act": "silu", "attention_bias": False,
        "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "bfloat16",
    },
    # Qwen/Qwen2.5-1.5B-Instruct's config.json (q, k, v carry biases)
    "qwen25-1.5b": {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
        "hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
        "num_attention_heads": 12, "num_key_value_heads": 2, "vocab_size": 151936,
        "max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
        "sliding_window": 32768, "use_sliding_window": False, "max_window_layers": 21,
        "tie_word_embeddings": True, "hidden_act": "silu", "bos_token_id": 151643,
        "eos_token_id": 151645, "torch_dtype": "bfloat16",
    },
}

SHARD_BYTES = 5 * 10**9


def tensors(c):
    """(name, shape) in the order the checkpoints list them."""
    C, F, V = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    hd = c.get("head_dim", C // c["num_attention_heads"])
    q, kv = c["num_attention_heads"] * hd, c["num_key_value_heads"] * hd
    out = [("model.embed_tokens.weight", (V, C))]
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        out += [(p + "input_layernorm.weight", (C,)),
                (p + "self_attn.q_proj.weight", (q, C)), (p + "self_attn.k_proj.weight", (kv, C)),
                (p + "self_attn.v_proj.weight", (kv, C)), (p + "self_attn.o_proj.weight", (C, q)),
                (p + "post_attention_layernorm.weight", (C,)),
                (p + "mlp.gate_proj.weight", (F, C)), (p + "mlp.up_proj.weight", (F, C)),
                (p + "mlp.down_proj.weight", (C, F))]
        if c["model_type"] == "qwen2":
            out += [(p + "self_attn.q_proj.bias", (q,)), (p + "self_attn.k_proj.bias", (kv,)),
                    (p + "self_attn.v_proj.bias", (kv,))]
    out.append(("model.norm.weight", (C,)))
    if not c["tie_word_embeddings"]:
        out.append(("lm_head.weight", (V, C)))
    return out


def make(shape, out):
    c = SHAPES[shape]
    os.makedirs(out, exist_ok=True)
    specs = tensors(c)
    shards, cur, size = [], [], 0
    for name, shp in specs:
        n = 2
        for s in shp:
            n *= s
        if cur and size + n > SHARD_BYTES:
            shards.append(cur)
            cur, size = [], 0
        cur.append((name, shp))
        size += n
    shards.append(cur)
    weight_map, total = {}, 0
    for si, shard in enumerate(shards):
        fname = f"model-{si + 1:05d}-of-{len(shards):05d}.safetensors"
        data = {}
        for name, shp in shard:
            g = torch.Generator().manual_seed(abs(hash_name(name)))
            t = torch.randn(shp, generator=g, dtype=torch.float32) * 0.02
            if name.endswith("norm.weight"):
                t += 1.0
            data[name] = t.to(torch.bfloat16)
            weight_map[name] = fname
            total += data[name].numel() * 2
        save_file(data, os.path.join(out, fname), metadata={"format": "pt"})
        del data
        print(f"{fname}: {len(shard)} tensors", file=sys.stderr)
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2,
                  sort_keys=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(c, f, indent=2, sort_keys=True)


def hash_name(name):
    h = 1469598103934665603
    for ch in name.encode():
        h = ((h ^ ch) * 1099511628211) % (1 << 61)
    return h


def prompts(n, lo, hi, out, vocab=32000, seed=1234):
    g = torch.Generator().manual_seed(seed)
    with open(out, "w") as f:
        for _ in range(n):
            length = int(torch.randint(lo, hi + 1, (1,), generator=g))
            ids = torch.randint(3, vocab, (length,), generator=g).tolist()
            f.write(json.dumps({"ids": ids}) + "\n")


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--prompts":
        prompts(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    elif len(sys.argv) == 3 and sys.argv[1] in SHAPES:
        make(sys.argv[1], sys.argv[2])
    else:
        sys.exit(__doc__)
