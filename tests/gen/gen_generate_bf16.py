#!/usr/bin/env python3
"""Fixture for generation at precision bf16 (lib/compute/wgemm.h): what
realign's bf16 kernels compute, by torch. The bf16 model of gen_generate.py
(tests/fixtures/gen/llama_bf16, run after it) in float32, every nn.Linear's
input rounded to bf16 (nearest even) first: the products of bf16 inputs and
bf16 weights, summed in f32. Everything else (norms, rope, attention,
residuals) stays f32, as in realign.

Writes tests/fixtures/gen/llama_bf16/cases_bf16.json: the prompts and stop
tokens of cases.json, and "outputs", "first_logits", "min_margin" as
gen_generate.py defines them, under that arithmetic.
"""
import json
import os

import torch
from transformers import LlamaForCausalLM

from gen_generate import greedy

D = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "gen", "llama_bf16")


def round_input(module, args):
    return (args[0].to(torch.bfloat16).to(torch.float32),) + tuple(args[1:])


def main():
    case = json.load(open(os.path.join(D, "cases.json")))
    model = LlamaForCausalLM.from_pretrained(D, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    n = 0
    for mod in model.modules():
        if isinstance(mod, torch.nn.Linear):
            mod.register_forward_pre_hook(round_input)
            n += 1
    with torch.no_grad():
        res = [greedy(model, p, case["eos"]) for p in case["prompts"]]
    out = {"max_new_tokens": case["max_new_tokens"], "eos": case["eos"],
           "prompts": case["prompts"], "outputs": [r[0] for r in res],
           "first_logits": [r[1] for r in res], "min_margin": min(r[2] for r in res)}
    json.dump(out, open(os.path.join(D, "cases_bf16.json"), "w"))
    same = sum(a == b for a, b in zip(out["outputs"], case["outputs"]))
    print("llama_bf16 at bf16: %d linear inputs rounded, %d/%d outputs as at fp32, "
          "min margin %.3g" % (n, same, len(res), out["min_margin"]))


if __name__ == "__main__":
    main()
