#!/usr/bin/env python3
"""gen_select_bench.py DIR — a 2-layer Llama-2-7B-shaped model pair (bf16) and a
random f32 gradient of every candidate tensor (404M scores) under DIR, for
tests/bench/bench_select.sh. Rerunnable: skips what exists. Needs ~6 GB disk."""
import json, os, sys
import torch
from safetensors.torch import save_file

d = sys.argv[1]
os.makedirs(d, exist_ok=True)
H, I, N, V = 4096, 11008, 2, 1024
cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": H,
       "intermediate_size": I, "num_hidden_layers": N, "num_attention_heads": 32,
       "num_key_value_heads": 32, "vocab_size": V, "max_position_embeddings": 4096,
       "rms_norm_eps": 1e-5, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
       "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu"}
shapes = {"model.embed_tokens.weight": (V, H), "model.norm.weight": (H,), "lm_head.weight": (V, H)}
cands = []
for l in range(N):
    p = f"model.layers.{l}."
    shapes[p + "input_layernorm.weight"] = (H,)
    shapes[p + "post_attention_layernorm.weight"] = (H,)
    for r, s in [("self_attn.q_proj", (H, H)), ("self_attn.k_proj", (H, H)),
                 ("self_attn.v_proj", (H, H)), ("self_attn.o_proj", (H, H)),
                 ("mlp.gate_proj", (I, H)), ("mlp.up_proj", (I, H)), ("mlp.down_proj", (H, I))]:
        shapes[p + r + ".weight"] = s
        cands.append(p + r + ".weight")
g = torch.Generator().manual_seed(7)
for name in ("tgt", "cur"):
    md = os.path.join(d, name)
    if os.path.exists(os.path.join(md, "model.safetensors")):
        continue
    os.makedirs(md, exist_ok=True)
    json.dump(cfg, open(os.path.join(md, "config.json"), "w"))
    g.manual_seed(7)
    t = {n: (torch.randn(s, generator=g) * 0.02).to(torch.bfloat16) for n, s in shapes.items()}
    if name == "cur":
        g2 = torch.Generator().manual_seed(8)
        for n in t:
            t[n] = (t[n].float() + torch.randn(t[n].shape, generator=g2) * 0.002).to(torch.bfloat16)
    save_file(t, os.path.join(md, "model.safetensors"))
    del t
gp = os.path.join(d, "grad.safetensors")
if not os.path.exists(gp):
    g.manual_seed(9)
    save_file({n: torch.randn(shapes[n], generator=g) for n in cands}, gp)
print(sum(torch.Size(shapes[n]).numel() for n in cands), "candidate scores")
