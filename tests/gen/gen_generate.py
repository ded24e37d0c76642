#!/usr/bin/env python3
"""Fixtures for lib/generate.c: greedy generation by transformers on random
tiny models of every architecture realign supports.

For each model, tests/fixtures/gen/<name>/ gets the model as save_pretrained
writes it (config.json, model.safetensors, generation_config.json, whose
eos_token_id lists the stop tokens) and cases.json:
  {"max_new_tokens": N, "eos": [...],
   "prompts": [[ids]...],            prompt token ids (no tokenizer involved)
   "outputs": [[ids]...],            new tokens of generate(do_sample=False),
                                     each prompt alone, up to and including
                                     the first stop token when one came
   "first_logits": [[...]...],       logits of the first new token (f32)
   "min_margin": x}                  smallest top-1 minus top-2 logit gap seen
                                     over all steps (how far from a tie argmax
                                     ever was: a C result may differ by float
                                     rounding, never by more than this)
The model runs in float32 with eager attention (the reference's fp32); a
bf16 model is upcast on load, as realign widens it. Deterministic (seeded).

Models with a sliding window generate 64 tokens from prompts some of which
are longer than the window, so every layer's window rule is exercised both in
the prompt and in decoding past it; their outputs are also checked here
against greedy decoding without generate() (the whole sequence through the
model at each step, no cache), so the fixture does not rest on transformers'
sliding-window cache alone (Phi-3 with longrope: generate() drops its cache
where a sequence passes original_max_position_embeddings, which makes it the
recomputation again). With model names as arguments, only those are
rewritten (each model has its own seed).
"""
import json
import os
import shutil
import sys
import zlib

import torch
from transformers import (GemmaConfig, GemmaForCausalLM, LlamaConfig, LlamaForCausalLM,
                          MistralConfig, MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM,
                          Qwen3Config, Qwen3ForCausalLM, Gemma2Config, Gemma2ForCausalLM,
                          Gemma3ForCausalLM, Gemma3TextConfig, Olmo2Config, Olmo2ForCausalLM,
                          Phi3Config, Phi3ForCausalLM)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "gen")
MAX_NEW = 12
PROMPT_LENS = [1, 3, 7, 12, 20, 5]
LONG_NEW = 64  # models with a sliding window: far past it

COMMON = dict(vocab_size=80, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
              num_attention_heads=4, max_position_embeddings=128, initializer_range=0.4,
              bos_token_id=1, eos_token_id=2, pad_token_id=0)

MODELS = [
    # GQA, Llama-3 rope scaling and theta
    ("llama", LlamaConfig, LlamaForCausalLM, torch.float32,
     dict(num_key_value_heads=2, rope_theta=500000.0,
          rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                        "high_freq_factor": 4.0, "original_max_position_embeddings": 32})),
    # MHA, bf16 weights on disk
    ("llama_bf16", LlamaConfig, LlamaForCausalLM, torch.bfloat16,
     dict(num_key_value_heads=4)),
    # GQA with a sliding window shorter than the longer prompts
    ("mistral", MistralConfig, MistralForCausalLM, torch.float32,
     dict(num_key_value_heads=2, sliding_window=8)),
    # q/k/v biases, tied embeddings
    ("qwen2", Qwen2Config, Qwen2ForCausalLM, torch.float32,
     dict(num_key_value_heads=2, tie_word_embeddings=True)),
    # GeGLU (tanh), RMSNorm (1 + w), embeddings * sqrt(hidden), head_dim != hidden/heads, MQA, tied
    ("gemma", GemmaConfig, GemmaForCausalLM, torch.float32,
     dict(num_key_value_heads=1, head_dim=16, hidden_activation="gelu_pytorch_tanh",
          tie_word_embeddings=True)),
    # a window of 6 on the layers from max_window_layers (1) on only, 3 layers
    ("qwen2_window", Qwen2Config, Qwen2ForCausalLM, torch.float32,
     dict(num_key_value_heads=2, num_hidden_layers=3, use_sliding_window=True,
          sliding_window=6, max_window_layers=1)),
    # per-head q/k norms, explicit head_dim, GQA; layer_types (the transformers 5
    # spelling) putting the window (5) on layers 0 and 2, not 1
    ("qwen3", Qwen3Config, Qwen3ForCausalLM, torch.float32,
     dict(num_key_value_heads=2, head_dim=16, num_hidden_layers=3, use_sliding_window=True,
          sliding_window=5, layer_types=["sliding_attention", "full_attention",
                                         "sliding_attention"])),
    # sandwich norms, soft-capped scores and logits, query_pre_attn_scalar, the
    # default alternation of sliding (window 6) and global layers
    ("gemma2", Gemma2Config, Gemma2ForCausalLM, torch.float32,
     dict(num_key_value_heads=2, head_dim=16, num_hidden_layers=3, sliding_window=6,
          query_pre_attn_scalar=12, attn_logit_softcapping=5.0,
          final_logit_softcapping=20.0, tie_word_embeddings=False)),
    # q/k norms, the local (sliding: layers 0, 2, window 5) and the global RoPE
    # (layer 1, linearly scaled), in transformers 5's nested rope_parameters
    ("gemma3", Gemma3TextConfig, Gemma3ForCausalLM, torch.float32,
     dict(num_key_value_heads=2, head_dim=16, num_hidden_layers=3, sliding_window=5,
          query_pre_attn_scalar=16, tie_word_embeddings=False,
          layer_types=["sliding_attention", "full_attention", "sliding_attention"],
          rope_parameters={"full_attention": {"rope_type": "linear", "factor": 4.0,
                                              "rope_theta": 1000000.0},
                           "sliding_attention": {"rope_type": "default",
                                                 "rope_theta": 10000.0}})),
    # OLMo 2: post-norms, q/k norms over the whole projections (no window: 12 steps)
    ("olmo2", Olmo2Config, Olmo2ForCausalLM, torch.float32,
     dict(num_key_value_heads=2)),
    # Phi-3: fused projections, partial rotary, a window of 6 on every layer, and
    # longrope switching to its long factors past position 8: prompts shorter
    # and longer than that, decoding across it
    ("phi3", Phi3Config, Phi3ForCausalLM, torch.float32,
     dict(num_key_value_heads=2, num_hidden_layers=3, sliding_window=6,
          original_max_position_embeddings=8, pad_token_id=0,
          rope_parameters={"rope_type": "longrope", "rope_theta": 10000.0,
                           "partial_rotary_factor": 0.5,
                           "short_factor": [1.0, 1.2], "long_factor": [2.0, 9.0]})),
]


def greedy(model, ids, eos, max_new):
    """transformers' generate for one prompt; returns new ids, first logits, margin."""
    inp = torch.tensor([ids])
    out = model.generate(inp, attention_mask=torch.ones_like(inp), max_new_tokens=max_new,
                         do_sample=False, eos_token_id=eos, pad_token_id=0,
                         return_dict_in_generate=True, output_logits=True)
    new = out.sequences[0, len(ids):].tolist()
    margin = float("inf")
    for step in out.logits:
        top = torch.topk(step[0].float(), 2).values
        margin = min(margin, float(top[0] - top[1]))
    # generate pads a finished row; alone, a row ends at its stop token
    for i, t in enumerate(new):
        if t in eos:
            new = new[:i + 1]
            break
    return new, out.logits[0][0].float().tolist(), margin


def recompute(model, ids, eos, max_new):
    """Greedy decoding by running the whole sequence at every step (no cache)."""
    seq = list(ids)
    for _ in range(max_new):
        logits = model(input_ids=torch.tensor([seq])).logits[0, -1]
        seq.append(int(torch.argmax(logits)))
        if seq[-1] in eos:
            break
    return seq[len(ids):]


def main():
    only = set(sys.argv[1:])
    torch.manual_seed(20250406)
    for name, cfg_cls, model_cls, dtype, extra in MODELS:
        windowed = "sliding_window" in extra
        if windowed:  # the later models: a seed of their own
            torch.manual_seed(zlib.crc32(name.encode()))
        if only and name not in only:
            # the earlier models draw from one stream: keep it in step
            if not windowed:
                model_cls(cfg_cls(**{**COMMON, **extra}))
            continue
        max_new = LONG_NEW if windowed else MAX_NEW
        d = os.path.join(OUT, name)
        shutil.rmtree(d, ignore_errors=True)
        cfg = cfg_cls(**{**COMMON, **extra})
        model = model_cls(cfg).to(dtype)
        model.save_pretrained(d)
        model = model_cls.from_pretrained(d, dtype=torch.float32, attn_implementation="eager")
        model.eval()
        g = torch.Generator().manual_seed(len(name))
        prompts = [torch.randint(3, cfg.vocab_size, (n,), generator=g).tolist()
                   for n in PROMPT_LENS]
        with torch.no_grad():
            # A stop token that one prompt produces midway, so rows finish early.
            free, _, _ = greedy(model, prompts[1], [], max_new)
            eos = [2, free[4]]
            res = [greedy(model, p, eos, max_new) for p in prompts]
            if windowed:
                for p, r in zip(prompts, res):
                    if recompute(model, p, eos, max_new) != r[0]:
                        raise SystemExit("%s: generate() and recomputation disagree" % name)
        gc = json.load(open(os.path.join(d, "generation_config.json")))
        gc["eos_token_id"] = eos
        json.dump(gc, open(os.path.join(d, "generation_config.json"), "w"), indent=2)
        case = {"max_new_tokens": max_new, "eos": eos, "prompts": prompts,
                "outputs": [r[0] for r in res], "first_logits": [r[1] for r in res],
                "min_margin": min(r[2] for r in res)}
        json.dump(case, open(os.path.join(d, "cases.json"), "w"))
        print("%-10s eos %s, lengths %s, min margin %.3g" % (
            name, eos, [len(r[0]) for r in res], case["min_margin"]))


if __name__ == "__main__":
    main()
