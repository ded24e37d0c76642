#!/usr/bin/env python3
"""gen_7b.py DIR — a random Llama-2-7B-shaped bf16 model pair under DIR/aligned and
DIR/finetuned (32 layers, hidden 4096, intermediate 11008, vocab 32000), one
safetensors shard per layer plus model.safetensors.index.json. Rerunnable:
skips a model that exists. ~13.5 GB each; generated layer by layer (~1.5 GB RAM)."""
import json, os, sys
import torch
from safetensors.torch import save_file

d = sys.argv[1]
H, I, N, V = 4096, 11008, 32, 32000
cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": H,
       "intermediate_size": I, "num_hidden_layers": N, "num_attention_heads": 32,
       "num_key_value_heads": 32, "vocab_size": V, "max_position_embeddings": 4096,
       "rms_norm_eps": 1e-5, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
       "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu"}
groups = [{"model.embed_tokens.weight": (V, H), "model.norm.weight": (H,), "lm_head.weight": (V, H)}]
for l in range(N):
    p = f"model.layers.{l}."
    groups.append({p + "input_layernorm.weight": (H,), p + "post_attention_layernorm.weight": (H,),
                   p + "self_attn.q_proj.weight": (H, H), p + "self_attn.k_proj.weight": (H, H),
                   p + "self_attn.v_proj.weight": (H, H), p + "self_attn.o_proj.weight": (H, H),
                   p + "mlp.gate_proj.weight": (I, H), p + "mlp.up_proj.weight": (I, H),
                   p + "mlp.down_proj.weight": (H, I)})
for name, noise in (("aligned", 0.0), ("finetuned", 0.002)):
    md = os.path.join(d, name)
    if os.path.exists(os.path.join(md, "model.safetensors.index.json")):
        continue
    os.makedirs(md, exist_ok=True)
    wm, total = {}, 0
    for gi, grp in enumerate(groups):
        g = torch.Generator().manual_seed(100 + gi)
        t = {n: (torch.randn(s, generator=g) * 0.02).to(torch.bfloat16) for n, s in grp.items()}
        if noise:
            g2 = torch.Generator().manual_seed(1000 + gi)
            t = {n: (v.float() + torch.randn(v.shape, generator=g2) * noise).to(torch.bfloat16)
                 for n, v in t.items()}
        fn = f"model-{gi + 1:05d}-of-{len(groups):05d}.safetensors"
        save_file(t, os.path.join(md, fn), metadata={"format": "pt"})
        for n, v in t.items():
            wm[n] = fn
            total += v.numel() * 2
        del t
    json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(wm.items()))},
              open(os.path.join(md, "model.safetensors.index.json"), "w"), indent=2)
    json.dump(cfg, open(os.path.join(md, "config.json"), "w"), indent=2)
print("ok")
