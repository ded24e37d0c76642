#!/usr/bin/env python3
"""Fixtures for LoRA training (rl-train --lora; tests/unit/test_lora.c).

For each architecture, a tiny random model built with transformers' own class
and saved with save_pretrained (bf16 or f32, as a user's base would be), then,
on that model loaded in float32, a PEFT LoRA adapter (get_peft_model with
LoraConfig, dropout 0: torch's dropout masks cannot be reproduced; the C tests
check dropout separately) whose A and B are drawn at random (PEFT starts B at
zero, where A would get no gradient). tests/fixtures/lora_train/<case>/ gets

  base/               the base model
  init/               the adapter before training (PeftModel.save_pretrained)
  grads.safetensors   d loss / d A and d B (PEFT's tensor names) by torch
                      autograd through transformers' and PEFT's modules: the
                      mean next-token cross-entropy over the response positions
                      of three sequences of different lengths, each run alone
  grads_bf16.safetensors  (bf16 bases) the same gradients as rl-train
                      --precision bf16 computes them (its loss: meta's
                      loss_bf16): each frozen projection's (and lm_head's)
                      input rounded to
                      bf16 before the product with the stored weight, and in
                      the backward its output gradient rounded to bf16 before
                      the product that gives the input's gradient (kept in
                      f32); sums in f32, the LoRA branches f32
  adamw.safetensors   every A and B after 5 steps of torch.optim.AdamW (weight
                      decay on all of them: they are 2-D), clip_grad_norm_ and
                      a per-step learning rate, as rl-train steps
  meta.json           the sequences, the loss before each step, the settings,
                      and the spread of A as PEFT initialises it (r 64) for the
                      initialisation test
"""
import json
import os
import shutil
import sys

import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from transformers import (Gemma2Config, Gemma2ForCausalLM, Gemma3ForCausalLM, Gemma3TextConfig,
                          GemmaConfig, GemmaForCausalLM, LlamaConfig, LlamaForCausalLM,
                          MistralConfig, MistralForCausalLM, Olmo2Config, Olmo2ForCausalLM,
                          Phi3Config, Phi3ForCausalLM, Qwen2Config, Qwen2ForCausalLM,
                          Qwen3Config, Qwen3ForCausalLM)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "lora_train")
SEVEN = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
COMMON = dict(vocab_size=40, hidden_size=24, intermediate_size=40, num_hidden_layers=2,
              num_attention_heads=4, max_position_embeddings=64, rms_norm_eps=1e-5,
              bos_token_id=1, eos_token_id=2)

# name: (config, model class, extra config, base dtype, LoRA settings)
CASES = {
    "llama": (LlamaConfig, LlamaForCausalLM, dict(num_key_value_heads=4), torch.bfloat16,
              dict(r=4, lora_alpha=8, target_modules=SEVEN)),
    "llama3-gqa": (LlamaConfig, LlamaForCausalLM,
                   dict(num_key_value_heads=2, rope_theta=500000.0, attention_bias=True,
                        rope_scaling={"rope_type": "llama3", "factor": 8.0,
                                      "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                      "original_max_position_embeddings": 16}),
                   torch.float32, dict(r=3, lora_alpha=5, target_modules=SEVEN)),
    "mistral": (MistralConfig, MistralForCausalLM,
                dict(num_key_value_heads=2, sliding_window=4096), torch.bfloat16,
                dict(r=8, lora_alpha=16, target_modules=SEVEN)),
    "qwen2": (Qwen2Config, Qwen2ForCausalLM,
              dict(num_key_value_heads=2, tie_word_embeddings=True, use_sliding_window=False),
              torch.bfloat16,
              dict(r=4, lora_alpha=6, use_rslora=True,
                   target_modules=["q_proj", "v_proj", "down_proj"])),
    "gemma": (GemmaConfig, GemmaForCausalLM,
              dict(num_key_value_heads=1, head_dim=8, hidden_activation="gelu_pytorch_tanh",
                   tie_word_embeddings=True), torch.bfloat16,
              dict(r=4, lora_alpha=8, target_modules=SEVEN)),
    # the branches inside each layout's norms: per-head q/k norms and a window
    # shorter than the sequences (Qwen 3); the sandwich norms, both soft-caps
    # (the final one in the head) and query_pre_attn_scalar (Gemma 2, 3); norms
    # on the outputs only and whole-projection q/k norms (OLMo 2)
    "qwen3": (Qwen3Config, Qwen3ForCausalLM,
              dict(num_key_value_heads=2, head_dim=8, use_sliding_window=True,
                   sliding_window=5, max_window_layers=1), torch.float32,
              dict(r=4, lora_alpha=8, target_modules=SEVEN)),
    "gemma2": (Gemma2Config, Gemma2ForCausalLM,
               dict(num_key_value_heads=2, head_dim=8, hidden_activation="gelu_pytorch_tanh",
                    query_pre_attn_scalar=12, sliding_window=5, attn_logit_softcapping=1.5,
                    final_logit_softcapping=2.5), torch.bfloat16,
               dict(r=4, lora_alpha=8, target_modules=SEVEN)),
    "gemma3": (Gemma3TextConfig, Gemma3ForCausalLM,
               dict(num_key_value_heads=2, head_dim=8, hidden_activation="gelu_pytorch_tanh",
                    query_pre_attn_scalar=12, sliding_window=5, final_logit_softcapping=3.0,
                    sliding_window_pattern=2), torch.float32,
               dict(r=3, lora_alpha=6, target_modules=["q_proj", "o_proj", "up_proj"])),
    "olmo2": (Olmo2Config, Olmo2ForCausalLM, dict(num_key_value_heads=2), torch.bfloat16,
              dict(r=4, lora_alpha=8, target_modules=SEVEN)),
    # Phi-3: PEFT adapts the fused qkv_proj and gate_up_proj as stored (one
    # branch each, B spanning q, k, v and gate, up); partial rotary 0.75,
    # longrope (sequences of 9 or more tokens take the long factors) and a
    # window of 6, shorter than two of the sequences
    "phi3": (Phi3Config, Phi3ForCausalLM,
             dict(hidden_size=32, num_key_value_heads=2, sliding_window=6, pad_token_id=0,
                  tie_word_embeddings=False, original_max_position_embeddings=8,
                  rope_parameters={"rope_type": "longrope", "rope_theta": 10000.0,
                                   "partial_rotary_factor": 0.75,
                                   "short_factor": [1.0, 1.2, 1.7],
                                   "long_factor": [1.0, 3.0, 9.0]}),
             torch.bfloat16,
             dict(r=4, lora_alpha=8,
                  target_modules=["qkv_proj", "o_proj", "gate_up_proj", "down_proj"])),
}
# the cases whose truth runs transformers' eager attention, as gen_engine.py
# does (Gemma 2's attention soft-cap exists only there)
EAGER = {"qwen3", "gemma2", "gemma3", "olmo2", "phi3"}

# bf16 bases whose --precision bf16 gradients are checked as well
BF16 = {"llama", "gemma2", "phi3"}

SEQS = [(7, 4), (12, 5), (9, 8)]  # (length, prompt length)
LR = [1e-2, 2e-2, 5e-3, 1e-2, 3e-3]
HP = dict(beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1, clip=1.0)


def peft_names(model, attr):
    out = {}
    for n, p in model.named_parameters():
        if "lora_" in n:
            t = getattr(p, attr) if attr else p
            out[n.replace(".default", "")] = t.detach().clone().float().contiguous()
    return out


class Bf16Linear(torch.autograd.Function):
    """A frozen projection as rl-train --precision bf16 computes it: y = bf16(x)
    W^T + b and dx = bf16(dy) W (round to nearest even; products exact in
    f32, f32 sums; dx not rounded). W is frozen: no gradient."""

    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(w)
        return torch.nn.functional.linear(x.to(torch.bfloat16).float(), w, b)

    @staticmethod
    def backward(ctx, dy):
        (w,) = ctx.saved_tensors
        return dy.to(torch.bfloat16).float() @ w, None, None


def loss_of(model, seqs):
    logits, labels = [], []
    for ids, plen in seqs:
        lg = model(input_ids=torch.tensor([ids])).logits[0]
        lab = torch.tensor(ids[1:] + [-100])
        lab[:plen - 1] = -100
        logits.append(lg)
        labels.append(lab)
    return torch.nn.functional.cross_entropy(torch.cat(logits).float(), torch.cat(labels),
                                             ignore_index=-100)


def init_spread():
    """max |A| and std of A as PEFT initialises it (kaiming_uniform, a=sqrt(5))."""
    torch.manual_seed(5)
    cfg = LlamaConfig(**dict(COMMON, num_key_value_heads=4, num_hidden_layers=1))
    peft = get_peft_model(LlamaForCausalLM(cfg), LoraConfig(r=64, target_modules=["q_proj",
                                                                                   "down_proj"]))
    out = {}
    for n, p in peft.named_parameters():
        if "lora_A" in n:
            out[str(p.shape[1])] = dict(max=p.abs().max().item(), std=p.std().item())
        if "lora_B" in n:
            assert p.abs().max().item() == 0
    return out


def main(only):
    """only: the cases to (re)generate; none: all, the old fixtures removed."""
    if not only:
        shutil.rmtree(OUT, ignore_errors=True)
    spread = init_spread()
    for name, (cfg_cls, model_cls, extra, dtype, lora) in CASES.items():
        if only and name not in only:
            continue
        torch.manual_seed(4321)
        cfg = cfg_cls(**dict(COMMON, **extra))
        model = model_cls(cfg).float()
        with torch.no_grad():
            for n, p in model.named_parameters():
                if p.ndim == 1 and "norm" in n:
                    p.copy_(torch.randn_like(p) * 0.2 +
                            (0.0 if name.startswith("gemma") else 1.0))
                elif p.ndim == 1:
                    p.copy_(torch.randn_like(p) * 0.1)
                else:
                    p.copy_(torch.randn_like(p) * 0.15)
        d = os.path.join(OUT, name)
        shutil.rmtree(d, ignore_errors=True)
        model.to(dtype).save_pretrained(os.path.join(d, "base"), safe_serialization=True)

        base = model_cls.from_pretrained(os.path.join(d, "base"), dtype=torch.float32,
                                         **({"attn_implementation": "eager"}
                                            if name in EAGER else {}))
        peft = get_peft_model(base, LoraConfig(task_type="CAUSAL_LM", lora_dropout=0.0, **lora))
        with torch.no_grad():
            for n, p in peft.named_parameters():
                if "lora_A" in n or "lora_B" in n:
                    p.copy_(torch.randn_like(p) * 0.3)
        peft.save_pretrained(os.path.join(d, "init"))
        # PEFT's model card names the base by its absolute path: not shipped
        os.remove(os.path.join(d, "init", "README.md"))
        cp = os.path.join(d, "init", "adapter_config.json")
        c = json.load(open(cp))
        c["base_model_name_or_path"] = "base"  # not this machine's path
        json.dump(c, open(cp, "w"), indent=2)
        g = torch.Generator().manual_seed(77)
        seqs = [(torch.randint(3, COMMON["vocab_size"], (n,), generator=g).tolist(), plen)
                for n, plen in SEQS]

        peft.zero_grad()
        loss = loss_of(peft, seqs)
        loss.backward()
        save_file(peft_names(peft, "grad"), os.path.join(d, "grads.safetensors"))

        if name in BF16:
            # rl-train --precision bf16 (Bf16Linear): the layers' frozen
            # projections and lm_head; the branches stay f32
            saved = {}
            for n, mod in peft.named_modules():
                if (n.endswith("base_layer") and ".layers." in n) or n.endswith("lm_head"):
                    saved[n] = mod.forward
                    mod.forward = (lambda m: lambda x: Bf16Linear.apply(
                        x, m.weight, m.bias))(mod)
            peft.zero_grad()
            loss16 = loss_of(peft, seqs)
            loss16.backward()
            save_file(peft_names(peft, "grad"), os.path.join(d, "grads_bf16.safetensors"))
            for n, mod in peft.named_modules():
                if n in saved:
                    mod.forward = saved[n]
            peft.zero_grad()

        params = [p for n, p in peft.named_parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=LR[0], betas=(HP["beta1"], HP["beta2"]),
                                eps=HP["eps"], weight_decay=HP["weight_decay"], foreach=False)
        losses = []
        for lr in LR:
            for grp in opt.param_groups:
                grp["lr"] = lr
            opt.zero_grad()
            l = loss_of(peft, seqs)
            l.backward()
            torch.nn.utils.clip_grad_norm_(params, HP["clip"], foreach=False)
            opt.step()
            losses.append(l.item())
        save_file(peft_names(peft, None), os.path.join(d, "adamw.safetensors"))
        meta = {"arch": name, "seqs": [{"ids": ids, "prompt_len": plen} for ids, plen in seqs],
                "loss": loss.item(), "adamw": dict(HP, lr=LR, losses=losses),
                "lora": dict(r=lora["r"], alpha=lora["lora_alpha"],
                             rslora=bool(lora.get("use_rslora", False)),
                             targets=lora["target_modules"]),
                "peft_init": spread}
        if name in BF16:
            meta["loss_bf16"] = loss16.item()
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1)
        print(f"{name}: loss {loss.item():.6f} -> {losses[-1]:.6f}")


if __name__ == "__main__":
    main(sys.argv[1:])
