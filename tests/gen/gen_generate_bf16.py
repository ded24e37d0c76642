#!/usr/bin/env python3
"""Fixtures for generation at precision bf16 (lib/compute/wgemm.h): what
realign's bf16 kernels compute, by torch, on every architecture.

A model in float32 with every nn.Linear's input rounded to bf16 (nearest
even) first: the products of bf16 inputs and bf16 weights, summed in f32.
Everything else (norms, q/k norms, rope, attention and its soft-cap, the
final soft-cap, residuals) stays f32, as in realign.

llama_bf16 (gen_generate.py's bf16 model, run after it): writes
tests/fixtures/gen/llama_bf16/cases_bf16.json, the prompts and stop tokens of
cases.json, and "outputs", "first_logits", "min_margin" as gen_generate.py
defines them, under that arithmetic, and "first_logits_f64": the same in
float64 (see first_logits_f64).

The other architectures (gen_generate.py's f32 models): each model's weights
rounded to bf16 and saved as tests/fixtures/gen/<name>_bf16/ (config.json,
model.safetensors in bf16, generation_config.json with the f32 model's stop
tokens), with cases.json (the bf16 weights upcast, float32 arithmetic: the
fp32 path's reference; models with a sliding window checked against
recomputation as in gen_generate.py) and cases_bf16.json (inputs rounded).
With model names as arguments, only those are rewritten.
"""
import json
import os
import shutil
import sys

import torch

from gen_generate import LONG_NEW, MAX_NEW, MODELS, OUT, greedy, recompute

ARCHS = ["mistral", "qwen2", "gemma", "qwen2_window", "qwen3", "gemma2", "gemma3", "olmo2",
         "phi3"]


def round_input(module, args):
    x = args[0]
    return (x.to(torch.float32).to(torch.bfloat16).to(x.dtype),) + tuple(args[1:])


def first_logits_f64(cls, d, prompts):
    """The first-step logits with the inputs rounded as above, in float64: an
    activation within an ulp of a bf16 rounding boundary rounds one way after
    torch's f32 sums and the other after exact ones (or realign's), one bf16
    ulp apart; the C test accepts either."""
    model = cls.from_pretrained(d, dtype=torch.float64, attn_implementation="eager")
    model.eval()
    round_linears(model)
    with torch.no_grad():
        return [model(input_ids=torch.tensor([p])).logits[0, -1].tolist() for p in prompts]


def run(model, case, max_new):
    with torch.no_grad():
        res = [greedy(model, p, case["eos"], max_new) for p in case["prompts"]]
    return {"max_new_tokens": max_new, "eos": case["eos"], "prompts": case["prompts"],
            "outputs": [r[0] for r in res], "first_logits": [r[1] for r in res],
            "min_margin": min(r[2] for r in res)}


def round_linears(model):
    n = 0
    for mod in model.modules():
        if isinstance(mod, torch.nn.Linear):
            mod.register_forward_pre_hook(round_input)
            n += 1
    return n


def llama():
    d = os.path.join(OUT, "llama_bf16")
    case = json.load(open(os.path.join(d, "cases.json")))
    cls = dict((m[0], m[2]) for m in MODELS)["llama_bf16"]
    model = cls.from_pretrained(d, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    n = round_linears(model)
    out = run(model, case, case["max_new_tokens"])
    out["first_logits_f64"] = first_logits_f64(cls, d, case["prompts"])
    json.dump(out, open(os.path.join(d, "cases_bf16.json"), "w"))
    same = sum(a == b for a, b in zip(out["outputs"], case["outputs"]))
    print("llama_bf16 at bf16: %d linear inputs rounded, %d/%d outputs as at fp32, "
          "min margin %.3g" % (n, same, len(out["outputs"]), out["min_margin"]))


def arch(name):
    cls = dict((m[0], m[2]) for m in MODELS)[name]
    src = os.path.join(OUT, name)
    d = os.path.join(OUT, name + "_bf16")
    shutil.rmtree(d, ignore_errors=True)
    case = json.load(open(os.path.join(src, "cases.json")))
    max_new = case["max_new_tokens"]
    assert max_new in (MAX_NEW, LONG_NEW)
    model = cls.from_pretrained(src, dtype=torch.float32, attn_implementation="eager")
    model.to(torch.bfloat16).save_pretrained(d)
    shutil.copy(os.path.join(src, "generation_config.json"), d)
    model = cls.from_pretrained(d, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    fp32 = run(model, case, max_new)
    if model.config.to_dict().get("sliding_window"):
        with torch.no_grad():
            for p, r in zip(case["prompts"], fp32["outputs"]):
                if recompute(model, p, case["eos"], max_new) != r:
                    raise SystemExit("%s: generate() and recomputation disagree" % name)
    json.dump(fp32, open(os.path.join(d, "cases.json"), "w"))
    round_linears(model)
    b16 = run(model, case, max_new)
    b16["first_logits_f64"] = first_logits_f64(cls, d, case["prompts"])
    json.dump(b16, open(os.path.join(d, "cases_bf16.json"), "w"))
    same = sum(a == b for a, b in zip(b16["outputs"], fp32["outputs"]))
    print("%-17s %d/%d outputs at bf16 as at fp32, min margin fp32 %.3g, bf16 %.3g" % (
        name + "_bf16", same, len(b16["outputs"]), fp32["min_margin"], b16["min_margin"]))


def main():
    only = set(sys.argv[1:])
    torch.manual_seed(20250406)
    if not only or "llama_bf16" in only:
        llama()
    for name in ARCHS:
        if not only or name in only or name + "_bf16" in only:
            arch(name)


if __name__ == "__main__":
    main()
