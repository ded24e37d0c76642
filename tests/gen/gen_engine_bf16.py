#!/usr/bin/env python3
"""gen_engine_bf16.py — the engine at precision bf16 (rl-direction and rl-grad
--precision bf16), by torch, for the bf16 cases of gen_engine.py (run after
it, on the models it wrote).

What realign computes there: every linear layer of the decoder (q, k, v, o,
gate, up, down) multiplies its input ROUNDED TO BF16 (from f32, nearest even)
by the bf16 weights, summing in f32 (lib/compute/wgemm.h); everything else
stays f32; the backward is the f32 backward at those activations, with the
weight gradient taken against the unrounded input (dW = dy^T x, dx = dy W).
Here each decoder nn.Linear becomes a torch.autograd.Function doing exactly
that, run in fp64 (the input rounded via f32, as realign's is f32) and in fp32;
like gen_engine.py, the fp64 results are stored and err32 = max|fp32 - fp64|
per tensor sets the C test's tolerance.

Writes tests/fixtures/engine/<case>/ref_bf16.safetensors and meta_bf16.json
(hidden, direction, losses, the candidate gradients with the case's stored
direction). With case names as arguments, only those are rewritten.
"""
import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file

import gen_engine

NAMES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
         "qkv_proj", "gate_up_proj")


class BF16Input(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        ctx.has_bias = b is not None
        xr = x.to(torch.float32).to(torch.bfloat16).to(x.dtype)
        y = xr @ w.t()
        return y + b if b is not None else y

    @staticmethod
    def backward(ctx, dy):
        x, w = ctx.saved_tensors
        d2 = dy.reshape(-1, dy.shape[-1])
        dw = d2.t() @ x.reshape(-1, x.shape[-1])
        return dy @ w, dw, d2.sum(0) if ctx.has_bias else None


def bf16_linears(model):
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear) and name.split(".")[-1] in NAMES:
            mod.forward = (lambda m: lambda x: BF16Input.apply(x, m.weight, m.bias))(mod)


def run(case, mdir, dtype, dir_prompts, grad_prompts, direction):
    model_cls = case["cls"][1]
    orig = model_cls.from_pretrained

    def patched(*a, **kw):
        m = orig(*a, **kw)
        bf16_linears(m)
        return m

    model_cls.from_pretrained = patched
    try:
        return gen_engine.run(case, mdir, dtype, dir_prompts, grad_prompts, direction)
    finally:
        model_cls.from_pretrained = orig


def prompts(path):
    with open(path) as f:
        return [json.loads(line)["ids"] for line in f]


def main():
    only = set(sys.argv[1:])
    torch.set_num_threads(1)
    for case in gen_engine.CASES:
        if case["dtype"] != torch.bfloat16 or (only and case["name"] not in only):
            continue
        cdir = os.path.join(gen_engine.OUT, case["name"])
        mdir = os.path.join(cdir, "model")
        dir_prompts = prompts(os.path.join(cdir, "dir.jsonl"))
        grad_prompts = prompts(os.path.join(cdir, "grad.jsonl"))
        d32 = load_file(os.path.join(cdir, "ref.safetensors"))["direction"]
        r64 = run(case, mdir, torch.float64, dir_prompts, grad_prompts, d32)
        r32 = run(case, mdir, torch.float32, dir_prompts, grad_prompts, d32)
        tensors, err32 = {}, {}
        tensors["hidden"] = r64["hidden"].float().contiguous()
        err32["hidden"] = (r32["hidden"].double() - r64["hidden"]).abs().max().item()
        grads = [n for n in r64["grads"] if any(s in n for s in ("_proj.weight", "_proj.bias"))]
        for n in grads:
            tensors[n] = r64["grads"][n].float().contiguous()
            err32[n] = (r32["grads"][n].double() - r64["grads"][n]).abs().max().item()
        save_file(tensors, os.path.join(cdir, "ref_bf16.safetensors"))
        meta = {"case": case["name"], "L": case["L"], "batch_size": case["batch"],
                "losses": r64["losses"], "losses_f32": r32["losses"], "err32": err32,
                "grad_tensors": sorted(grads), "torch": torch.__version__}
        with open(os.path.join(cdir, "meta_bf16.json"), "w") as f:
            json.dump(meta, f, indent=1, sort_keys=True)
            f.write("\n")
        ref = load_file(os.path.join(cdir, "ref.safetensors"))
        shift = (tensors["hidden"] - ref["hidden"]).abs().max().item()
        print(f"{case['name']} at bf16: {len(grads)} gradient tensors, hidden moved by "
              f"{shift:.3g} from fp32 (err32 {err32['hidden']:.3g})", file=sys.stderr)


if __name__ == "__main__":
    main()
