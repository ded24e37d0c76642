#!/usr/bin/env python3
"""gen_engine.py — PyTorch/transformers oracle fixtures for the engine (issue 3).

For each case a random tiny model is built with transformers' OWN model class
(LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, GemmaForCausalLM,
Qwen3ForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM, Olmo2ForCausalLM,
Phi3ForCausalLM),
saved with save_pretrained (f32 or bf16, sometimes sharded), then loaded back
from disk the way the reference implementation loads models (in fp32 — and
here also in fp64) and run with eager attention:

  hidden      [n_dir, C]  hidden_states[L] at the last token of each direction prompt
  direction   [C]         their mean
  logits      [n_dir, V]  the full model's logits at the last token (for generation)
  <tensor>    ...         d(sum_b loss_b)/d(tensor) by torch autograd through the
                          transformers modules, loss_b = -cos(mean_{x in b} h_L(x), direction)
                          over consecutive batches of the grad prompts (the last one short)

The stored values come from the fp64 run (the most exact numbers available;
transformers still does a few steps in fp32 there: RoPE tables, RMSNorm's
variance, softmax). meta.json records, per stored tensor, err32: the largest
absolute difference between the fp32 run (what PyTorch users get, and what the
reference implementation computes) and the fp64 run. The C tests derive their
tolerances from err32 (see tests/unit/test_engine.c). bf16 models: the weights
are bf16 on disk and both runs widen them exactly, so the references are the
fp32/fp64 computation on the bf16 weights, like realign's (HF running the model
in bf16 would compute in bf16 and is not what realign or the reference do).

The gradient direction is the f32-rounded stored direction, exactly what the C
side reads. Prompts are token-id lists ({"ids": [...]}) of different lengths,
each run alone (no padding: RoPE is shift-invariant, so the reference's left
padding only changes rounding).

Run by `make fixtures` (tests/gen/all.sh); writes tests/fixtures/engine/. With
case names as arguments, only those cases are rewritten (each case's seeds
depend on its place in CASES, not on which others run).
"""
import json
import os
import shutil
import sys

import torch
import torch.nn.functional as Fn
from safetensors.torch import save_file
from transformers import (GemmaConfig, GemmaForCausalLM, LlamaConfig, LlamaForCausalLM,
                          MistralConfig, MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM,
                          Qwen3Config, Qwen3ForCausalLM, Gemma2Config, Gemma2ForCausalLM,
                          Gemma3ForCausalLM, Gemma3TextConfig, Olmo2Config, Olmo2ForCausalLM,
                          Phi3Config, Phi3ForCausalLM)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "engine")

COMMON = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, vocab_size=64,
              max_position_embeddings=64, attention_dropout=0.0)

# Phi-3 (the phi3_f32 and phi3_bf16 cases below): fused qkv_proj and
# gate_up_proj, partial rotary, longrope, a sliding window
PHI3_CFG = dict(COMMON, hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                rms_norm_eps=1e-5, tie_word_embeddings=False, sliding_window=6,
                original_max_position_embeddings=8, pad_token_id=0,
                rope_parameters={"rope_type": "longrope", "rope_theta": 10000.0,
                                 "partial_rotary_factor": 0.75,
                                 "short_factor": [1.0, 1.1, 1.3, 1.6, 2.0, 2.5],
                                 "long_factor": [1.0, 1.5, 3.0, 6.0, 12.0, 20.0]})

CASES = [
    # name, classes, config, dtype, max_shard_size, L, batch, all_grads, legacy_config
    dict(name="llama_f32", cls=(LlamaConfig, LlamaForCausalLM),
         cfg=dict(COMMON, num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5,
                  tie_word_embeddings=False,
                  rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
         dtype=torch.float32, shard=None, L=2, batch=3, all_grads=True, legacy=False),
    dict(name="llama3_bf16", cls=(LlamaConfig, LlamaForCausalLM),
         cfg=dict(COMMON, num_attention_heads=4, num_key_value_heads=4, rms_norm_eps=1e-5,
                  tie_word_embeddings=True, attention_bias=True, mlp_bias=True,
                  rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0,
                                   "factor": 8.0, "low_freq_factor": 1.0,
                                   "high_freq_factor": 8.0,
                                   "original_max_position_embeddings": 32}),
         dtype=torch.bfloat16, shard="24KB", L=3, batch=3, all_grads=False, legacy=True),
    dict(name="mistral_f32", cls=(MistralConfig, MistralForCausalLM),
         cfg=dict(COMMON, num_attention_heads=4, num_key_value_heads=4, head_dim=8,
                  rms_norm_eps=1e-6, sliding_window=4, tie_word_embeddings=False,
                  rope_parameters={"rope_type": "linear", "rope_theta": 10000.0,
                                   "factor": 2.0}),
         dtype=torch.float32, shard=None, L=2, batch=3, all_grads=False, legacy=True),
    dict(name="qwen2_bf16", cls=(Qwen2Config, Qwen2ForCausalLM),
         cfg=dict(COMMON, num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-6,
                  tie_word_embeddings=True, use_sliding_window=False,
                  rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
         dtype=torch.bfloat16, shard=None, L=2, batch=3, all_grads=False, legacy=False),
    dict(name="gemma_bf16", cls=(GemmaConfig, GemmaForCausalLM),
         cfg=dict(COMMON, num_attention_heads=4, num_key_value_heads=1, head_dim=16,
                  rms_norm_eps=1e-6, hidden_act="gelu", tie_word_embeddings=True,
                  rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
         dtype=torch.bfloat16, shard="40KB", L=2, batch=3, all_grads=True, legacy=True),
    # per-head q/k RMSNorm, explicit head_dim != hidden/heads, GQA, and a sliding
    # window (4) on the layers from max_window_layers (1) on, shorter than most prompts
    dict(name="qwen3_f32", cls=(Qwen3Config, Qwen3ForCausalLM),
         cfg=dict(COMMON, num_attention_heads=4, num_key_value_heads=2, head_dim=12,
                  rms_norm_eps=1e-6, tie_word_embeddings=False, use_sliding_window=True,
                  sliding_window=4, max_window_layers=1,
                  rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
         dtype=torch.float32, shard=None, L=2, batch=3, all_grads=True, legacy=True),
    # the four sandwich norms, attention and final soft-capping at caps the tiny
    # model's scores and logits reach, query_pre_attn_scalar != head_dim, the
    # default alternation of sliding (layers 0, 2: window 4) and global layers
    dict(name="gemma2_f32", cls=(Gemma2Config, Gemma2ForCausalLM),
         cfg=dict(COMMON, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                  rms_norm_eps=1e-6, hidden_activation="gelu_pytorch_tanh",
                  tie_word_embeddings=True, query_pre_attn_scalar=24, sliding_window=4,
                  attn_logit_softcapping=1.5, final_logit_softcapping=2.5,
                  rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
         dtype=torch.float32, shard=None, L=2, batch=3, all_grads=True, legacy=True),
    # Gemma 3: q/k norms (1 + w) and Gemma 2's layout; two RoPEs, the global one
    # linearly scaled; a final soft-cap; sliding (window 4) layers 0 and 2 by a
    # sliding_window_pattern of 2 in the release spelling
    dict(name="gemma3_f32", cls=(Gemma3TextConfig, Gemma3ForCausalLM),
         cfg=dict(COMMON, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                  rms_norm_eps=1e-6, hidden_activation="gelu_pytorch_tanh",
                  tie_word_embeddings=True, query_pre_attn_scalar=24, sliding_window=4,
                  final_logit_softcapping=3.0, sliding_window_pattern=2,
                  rope_parameters={"full_attention": {"rope_type": "linear", "factor": 2.0,
                                                      "rope_theta": 1000000.0},
                                   "sliding_attention": {"rope_type": "default",
                                                         "rope_theta": 10000.0}}),
         dtype=torch.float32, shard=None, L=2, batch=3, all_grads=True, legacy=True),
    # OLMo 2: norms on the outputs only, q/k norms over the whole projections,
    # GQA, bf16 weights, sharded
    dict(name="olmo2_bf16", cls=(Olmo2Config, Olmo2ForCausalLM),
         cfg=dict(COMMON, num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-6,
                  tie_word_embeddings=False,
                  rope_parameters={"rope_type": "default", "rope_theta": 500000.0}),
         dtype=torch.bfloat16, shard="30KB", L=2, batch=3, all_grads=True, legacy=True),
    # Phi-3: fused qkv_proj and gate_up_proj, partial rotary (0.75: 12 of 16 dims),
    # longrope with original_max_position_embeddings 8 (prompts of 9 or more
    # tokens take the long factors), a sliding window of 6 on every layer; the
    # release spelling with the old type name "su"
    dict(name="phi3_f32", cls=(Phi3Config, Phi3ForCausalLM),
         cfg=PHI3_CFG,
         dtype=torch.float32, shard=None, L=2, batch=3, all_grads=True, legacy=True),
    # bf16 copies of the two layouts the bf16 forward multiplies differently
    # (gen_engine_bf16.py): Phi-3's fused projections as row blocks, Gemma 2's
    # sandwich norms and soft-caps
    dict(name="phi3_bf16", cls=(Phi3Config, Phi3ForCausalLM),
         cfg=PHI3_CFG,
         dtype=torch.bfloat16, shard=None, L=2, batch=3, all_grads=True, legacy=True),
    dict(name="gemma2_bf16", cls=(Gemma2Config, Gemma2ForCausalLM),
         cfg=dict(COMMON, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                  rms_norm_eps=1e-6, hidden_activation="gelu_pytorch_tanh",
                  tie_word_embeddings=True, query_pre_attn_scalar=24, sliding_window=4,
                  attn_logit_softcapping=1.5, final_logit_softcapping=2.5,
                  rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
         dtype=torch.bfloat16, shard=None, L=2, batch=3, all_grads=True, legacy=True),
]

DIR_LENS = [5, 9, 1, 12, 7]
GRAD_LENS = [6, 11, 3, 8, 14, 2, 10]


def randomize(model, gen, gemma):
    """Every parameter random (HF's init leaves biases 0 and norms 1)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                base = 0.0 if gemma else 1.0
                p.copy_(base + 0.2 * torch.randn(p.shape, generator=gen))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * (0.2 if gemma else 1.0))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[-1] ** 0.5)


def legacy_config(path):
    """Rewrite config.json the way released checkpoints spell it (rope_theta and
    rope_scaling at the top level, torch_dtype), which transformers reads the same."""
    with open(path) as f:
        c = json.load(f)
    if c.get("model_type") == "gemma3_text":
        # Gemma 3's releases: the global RoPE's theta and scaling at the top
        # level, the local one's theta as rope_local_base_freq, the layers by
        # sliding_window_pattern
        rp = c.pop("rope_parameters")
        full, local = rp["full_attention"], rp["sliding_attention"]
        c["rope_theta"] = full.pop("rope_theta")
        if full.get("rope_type", "default") != "default":
            c["rope_scaling"] = full
        c["rope_local_base_freq"] = local["rope_theta"]
        lt = c.pop("layer_types")
        period = lt.index("full_attention") + 1
        assert lt == ["full_attention" if (i + 1) % period == 0 else "sliding_attention"
                      for i in range(len(lt))]
        c["sliding_window_pattern"] = period
        c["rope_parameters"] = {"rope_theta": 0}  # consumed just below
    rp = c.pop("rope_parameters")
    if c.get("model_type") != "gemma3_text":
        c["rope_theta"] = rp.pop("rope_theta")
    if rp.get("rope_type", "default") != "default":
        c["rope_scaling"] = rp
    if "dtype" in c:
        c["torch_dtype"] = c.pop("dtype")
    if c.get("model_type") in ("qwen2", "qwen3", "gemma2"):
        # the releases have no layer_types: max_window_layers (Qwen) or the
        # default alternation (Gemma 2) says it
        c.pop("layer_types", None)
    if c.get("model_type") == "phi3":
        # Phi-3's releases: rope_scaling with the factors, the rotary fraction
        # at the top level; Phi-3-mini-128k's old type name
        rs = c.pop("rope_scaling")
        c["partial_rotary_factor"] = rs.pop("partial_rotary_factor")
        rs.pop("original_max_position_embeddings", None)
        rs.pop("rope_type")
        c["rope_scaling"] = dict(rs, type="su")
    if c.get("model_type") == "gemma2":
        c["hidden_act"] = "gelu_pytorch_tanh"  # in the releases, unread
        c["cache_implementation"] = "hybrid"
    if c.get("model_type") == "gemma":
        # gemma-2b(-it) as released: "gelu" that means the tanh approximation
        c["hidden_act"] = "gelu"
        c.pop("hidden_activation", None)
    with open(path, "w") as f:
        json.dump(c, f, indent=2, sort_keys=True)
        f.write("\n")


def last_hidden(model, ids, L):
    out = model(input_ids=torch.tensor([ids]), output_hidden_states=True)
    return out.hidden_states[L][0, -1], out.logits[0, -1]


def run(case, mdir, dtype, dir_prompts, grad_prompts, direction):
    cfg_cls, model_cls = case["cls"]
    model = model_cls.from_pretrained(mdir, dtype=dtype, attn_implementation="eager")
    model.eval()
    L = case["L"]
    res = {}
    with torch.no_grad():
        hs, lg = zip(*[last_hidden(model, p, L) for p in dir_prompts])
    res["hidden"] = torch.stack(hs)
    res["logits"] = torch.stack(lg)
    d = res["hidden"].mean(0) if direction is None else direction.to(dtype)
    res["direction"] = d
    model.zero_grad(set_to_none=True)
    losses, coss = [], []
    bs = case["batch"]
    for b0 in range(0, len(grad_prompts), bs):
        batch = grad_prompts[b0:b0 + bs]
        m = torch.stack([last_hidden(model, p, L)[0] for p in batch]).mean(0)
        cos = Fn.cosine_similarity(m, d, dim=0)
        loss = -cos
        loss.backward()
        losses.append(loss.item())
        coss.append(cos.item())
    res["losses"], res["cos"] = losses, coss
    grads = {}
    for name, p in model.named_parameters():
        if p.grad is None:
            continue
        if name.startswith("model.layers."):
            layer = int(name.split(".")[2])
            if layer >= L:
                continue
            candidate = any(s in name for s in ("_proj.weight", "_proj.bias"))
            if not candidate and not case["all_grads"]:
                continue
        elif not case["all_grads"]:
            continue
        grads[name] = p.grad.detach().clone()
    res["grads"] = grads
    return res


def write_prompts(path, prompts):
    with open(path, "w") as f:
        for p in prompts:
            f.write(json.dumps({"ids": p}) + "\n")


def main():
    torch.set_num_threads(1)
    only = set(sys.argv[1:])
    unknown = only - {c["name"] for c in CASES}
    if unknown:
        raise SystemExit("unknown cases: %s" % " ".join(sorted(unknown)))
    if not only and os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT, exist_ok=True)
    index = [c["name"] for c in CASES]
    for ci, case in enumerate(CASES):
        name = case["name"]
        if only and name not in only:
            continue
        cdir = os.path.join(OUT, name)
        mdir = os.path.join(cdir, "model")
        shutil.rmtree(cdir, ignore_errors=True)
        os.makedirs(cdir)
        gen = torch.Generator().manual_seed(1000 + ci)
        cfg_cls, model_cls = case["cls"]
        config = cfg_cls(**case["cfg"])
        torch.manual_seed(ci)
        model = model_cls(config)
        randomize(model, gen, name.startswith("gemma"))
        model = model.to(case["dtype"])
        kw = {"max_shard_size": case["shard"]} if case["shard"] else {}
        model.save_pretrained(mdir, **kw)
        gc = os.path.join(mdir, "generation_config.json")
        if os.path.exists(gc):
            os.remove(gc)
        if case["legacy"]:
            legacy_config(os.path.join(mdir, "config.json"))
        V = config.vocab_size
        dir_prompts = [torch.randint(0, V, (n,), generator=gen).tolist() for n in DIR_LENS]
        grad_prompts = [torch.randint(0, V, (n,), generator=gen).tolist() for n in GRAD_LENS]
        write_prompts(os.path.join(cdir, "dir.jsonl"), dir_prompts)
        write_prompts(os.path.join(cdir, "grad.jsonl"), grad_prompts)

        # fp64 first: its direction (rounded to f32, as stored) drives both runs
        r64 = run(case, mdir, torch.float64, dir_prompts, grad_prompts, None)
        d32 = r64["direction"].float()
        r64 = run(case, mdir, torch.float64, dir_prompts, grad_prompts, d32)
        r32 = run(case, mdir, torch.float32, dir_prompts, grad_prompts, d32)

        tensors, err32 = {}, {}
        for key in ("hidden", "logits"):
            tensors[key] = r64[key].float().contiguous()
            err32[key] = (r32[key].double() - r64[key]).abs().max().item()
        # the direction as computed (mean of hidden states), not the one fed back
        tensors["direction"] = d32.contiguous()
        err32["direction"] = (r32["hidden"].double().mean(0) - r64["hidden"].mean(0)).abs() \
            .max().item()
        for n, g in r64["grads"].items():
            tensors[n] = g.float().contiguous()
            err32[n] = (r32["grads"][n].double() - g).abs().max().item()
        save_file(tensors, os.path.join(cdir, "ref.safetensors"))
        meta = {
            "case": name, "architecture": config.architectures[0] if config.architectures
            else model_cls.__name__, "model_dtype": str(case["dtype"]).replace("torch.", ""),
            "L": case["L"], "n_layers": config.num_hidden_layers, "batch_size": case["batch"],
            "n_dir": len(dir_prompts), "n_grad": len(grad_prompts),
            "losses": r64["losses"], "cos": r64["cos"],
            "losses_f32": r32["losses"], "err32": err32,
            "grad_tensors": sorted(r64["grads"].keys()),
            "torch": torch.__version__, "transformers": __import__("transformers").__version__,
        }
        with open(os.path.join(cdir, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1, sort_keys=True)
            f.write("\n")
        print(f"{name}: {len(r64['grads'])} gradient tensors, losses {r64['losses']}",
              file=sys.stderr)
    with open(os.path.join(OUT, "cases.txt"), "w") as f:
        f.write("\n".join(index) + "\n")


if __name__ == "__main__":
    main()
