#!/usr/bin/env python3
"""Fixtures for rl-train's gradient and AdamW parity (tests/unit/test_train.c).

For each architecture, a tiny random model built with transformers' own model
class (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM,
GemmaForCausalLM, Qwen3ForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM,
Olmo2ForCausalLM, Phi3ForCausalLM), saved with save_pretrained (f32 safetensors). Norm weights are randomised too, so
their gradients are not all alike. Then:

  grads.safetensors   the gradient of every parameter (torch autograd through
                      transformers' modules) of the mean next-token
                      cross-entropy over the response positions of three
                      sequences of different lengths (each run alone: no
                      padding), as rl-train defines its loss;
  adamw.safetensors   every parameter after 3 steps of torch.optim.AdamW on that
                      loss (weight decay on 2-D tensors only, clip_grad_norm_,
                      a per-step learning rate), as rl-train steps;
  meta.json           the sequences (ids, prompt length), the loss, the AdamW
                      hyperparameters and per-step learning rates.

Writes tests/fixtures/train/<name>/ (only the names given as arguments, if
any; each architecture has its own seed).
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import (GemmaConfig, GemmaForCausalLM, LlamaConfig, LlamaForCausalLM,
                          MistralConfig, MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM,
                          Qwen3Config, Qwen3ForCausalLM, Gemma2Config, Gemma2ForCausalLM,
                          Gemma3ForCausalLM, Gemma3TextConfig, Olmo2Config, Olmo2ForCausalLM,
                          Phi3Config, Phi3ForCausalLM)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "train")

COMMON = dict(vocab_size=40, hidden_size=24, intermediate_size=40, num_hidden_layers=2,
              num_attention_heads=4, max_position_embeddings=64, rms_norm_eps=1e-5,
              bos_token_id=1, eos_token_id=2)

ARCHS = {
    "llama": (LlamaConfig, LlamaForCausalLM, dict(num_key_value_heads=4)),
    "llama3-gqa": (LlamaConfig, LlamaForCausalLM,
                   dict(num_key_value_heads=2, rope_theta=500000.0,
                        rope_scaling={"rope_type": "llama3", "factor": 8.0,
                                      "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                      "original_max_position_embeddings": 16})),
    "mistral": (MistralConfig, MistralForCausalLM, dict(num_key_value_heads=2, sliding_window=4096)),
    "qwen2": (Qwen2Config, Qwen2ForCausalLM, dict(num_key_value_heads=2, tie_word_embeddings=True)),
    "gemma": (GemmaConfig, GemmaForCausalLM,
              dict(num_key_value_heads=1, head_dim=8, hidden_activation="gelu_pytorch_tanh",
                   tie_word_embeddings=True)),
    # q/k norms; a window of 4 on layer 1 (shorter than every sequence)
    "qwen3": (Qwen3Config, Qwen3ForCausalLM,
              dict(num_key_value_heads=2, head_dim=8, use_sliding_window=True, sliding_window=4,
                   max_window_layers=1)),
    # sandwich norms, soft-capped scores (3) and logits (4), query_pre_attn_scalar,
    # layer 0 sliding (window 4), layer 1 global
    "gemma2": (Gemma2Config, Gemma2ForCausalLM,
               dict(num_key_value_heads=2, head_dim=8, query_pre_attn_scalar=10, sliding_window=4,
                    attn_logit_softcapping=3.0, final_logit_softcapping=4.0,
                    tie_word_embeddings=True)),
    # q/k norms, two RoPEs (layer 0 local, window 4; layer 1 global, scaled), a
    # final soft-cap
    "gemma3": (Gemma3TextConfig, Gemma3ForCausalLM,
               dict(num_key_value_heads=2, head_dim=8, query_pre_attn_scalar=10, sliding_window=4,
                    final_logit_softcapping=4.0, tie_word_embeddings=True,
                    layer_types=["sliding_attention", "full_attention"],
                    rope_parameters={"full_attention": {"rope_type": "linear", "factor": 2.0,
                                                        "rope_theta": 1000000.0},
                                     "sliding_attention": {"rope_type": "default",
                                                           "rope_theta": 10000.0}})),
    # post-norms, q/k norms over the whole projections
    "olmo2": (Olmo2Config, Olmo2ForCausalLM, dict(num_key_value_heads=2)),
    # fused qkv_proj and gate_up_proj, partial rotary, a window of 5 on every
    # layer, longrope past position 8 (the 12- and 9-token sequences)
    "phi3": (Phi3Config, Phi3ForCausalLM,
             dict(hidden_size=32, num_key_value_heads=2, sliding_window=5,
                  original_max_position_embeddings=8, pad_token_id=0,
                  rope_parameters={"rope_type": "longrope", "rope_theta": 10000.0,
                                   "partial_rotary_factor": 0.5, "short_factor": [1.0, 1.3],
                                   "long_factor": [2.0, 7.0]})),
}

SEQS = [  # (length, prompt length): loss on the positions whose next token is in the response
    (7, 4), (12, 5), (9, 8),
]

LR = [1e-2, 2e-2, 5e-3]
HP = dict(beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1, clip=0.5)


def loss_of(model, seqs):
    logits, labels = [], []
    for ids, plen in seqs:
        x = torch.tensor([ids])
        lg = model(input_ids=x).logits[0]
        lab = torch.tensor(ids[1:] + [-100])
        lab[:plen - 1] = -100
        logits.append(lg)
        labels.append(lab)
    return torch.nn.functional.cross_entropy(torch.cat(logits), torch.cat(labels),
                                             ignore_index=-100)


def main():
    only = set(sys.argv[1:])
    for name, (cfg_cls, model_cls, extra) in ARCHS.items():
        if only and name not in only:
            continue
        torch.manual_seed(1234)
        cfg = cfg_cls(**{**COMMON, **extra})
        if name == "qwen2":
            cfg.use_sliding_window = False
        model = model_cls(cfg).float()
        with torch.no_grad():
            for n, p in model.named_parameters():
                if p.ndim == 1 and "norm" in n:
                    p.copy_(torch.randn_like(p) * 0.2 + (0.0 if name.startswith("gemma") else 1.0))
                elif p.ndim == 1:
                    p.copy_(torch.randn_like(p) * 0.1)
                else:
                    p.copy_(torch.randn_like(p) * 0.15)
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        model.save_pretrained(d, safe_serialization=True)
        g = torch.Generator().manual_seed(99)
        seqs = [(torch.randint(3, COMMON["vocab_size"], (n,), generator=g).tolist(), plen)
                for n, plen in SEQS]

        model.zero_grad()
        loss = loss_of(model, seqs)
        loss.backward()
        grads = {n: p.grad.detach().clone().contiguous() for n, p in model.named_parameters()}
        save_file(grads, os.path.join(d, "grads.safetensors"))

        decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
        nodecay = [p for n, p in model.named_parameters() if p.ndim < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": HP["weight_decay"]},
                                 {"params": nodecay, "weight_decay": 0.0}],
                                lr=LR[0], betas=(HP["beta1"], HP["beta2"]), eps=HP["eps"],
                                foreach=False)
        losses = []
        for lr in LR:
            for grp in opt.param_groups:
                grp["lr"] = lr
            opt.zero_grad()
            l = loss_of(model, seqs)
            l.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), HP["clip"], foreach=False)
            opt.step()
            losses.append(l.item())
        after = {n: p.detach().clone().contiguous() for n, p in model.named_parameters()}
        save_file(after, os.path.join(d, "adamw.safetensors"))
        meta = {"arch": name, "seqs": [{"ids": ids, "prompt_len": plen} for ids, plen in seqs],
                "loss": loss.item(), "adamw": dict(HP, lr=LR, losses=losses),
                "tied": bool(getattr(cfg, "tie_word_embeddings", False)),
                "params": list(grads.keys())}
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1)
        print(f"{name}: loss {loss.item():.6f}, {len(grads)} tensors")


if __name__ == "__main__":
    main()
