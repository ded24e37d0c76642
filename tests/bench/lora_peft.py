#!/usr/bin/env python3
"""lora_peft.py — the reference side of tests/bench/lora.sh: PEFT LoRA training
with torch in fp32 on the same examples, batches and settings as rl-train --lora.

    python3 lora_peft.py MODEL DATA.jsonl BATCH_TOKENS THREADS OUT.json [ADAPTER_DIR]

MODEL is loaded in float32 (transformers; bfloat16 with PEFT_DTYPE=bf16: the
frozen products in bf16 as torch runs them, the adapters in float32, PEFT's
default autocast_adapter_dtype), wrapped by get_peft_model with
LoraConfig(r 8, alpha 16, dropout 0.05, the seven projections), trained for one
epoch with torch.optim.AdamW (lr 1e-4, betas 0.9/0.999, weight decay 0, clip
1.0) over DATA's {"prompt_ids", "response_ids"} examples. Batches are cut as
rl-train --batch-tokens cuts them (the next examples while their tokens fit
BATCH_TOKENS), each padded to its longest example (the usual collator; padded
positions are masked and carry no loss; they are not counted as tokens). The
loss is transformers' own (labels -100 on the prompt). Writes one JSON object:
tokens, seconds (the training loop, model load excluded), tok_s, load_s,
peak RSS in GiB (getrusage), the losses.
"""
import json
import os
import resource
import sys
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

SEVEN = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def batches(examples, budget):
    cur, tok = [], 0
    for p, r in examples:
        n = len(p) + len(r)
        if cur and tok + n > budget:
            yield cur
            cur, tok = [], 0
        cur.append((p, r))
        tok += n
    if cur:
        yield cur


def main():
    model_dir, data, budget, threads, out = sys.argv[1:6]
    adapter = sys.argv[6] if len(sys.argv) > 6 else None
    torch.set_num_threads(int(threads))
    torch.manual_seed(1)
    examples = []
    with open(data) as f:
        for line in f:
            if line.strip():
                e = json.loads(line)
                examples.append((e["prompt_ids"], e["response_ids"]))
    t0 = time.time()
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[os.environ.get("PEFT_DTYPE", "fp32")]
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=8, lora_alpha=16,
                                             lora_dropout=0.05, target_modules=SEVEN))
    model.train()
    load_s = time.time() - t0
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), weight_decay=0.0)
    tokens, losses = 0, []
    t0 = time.time()
    for b in batches(examples, int(budget)):
        L = max(len(p) + len(r) for p, r in b)
        ids = torch.zeros((len(b), L), dtype=torch.long)
        mask = torch.zeros((len(b), L), dtype=torch.long)
        labels = torch.full((len(b), L), -100, dtype=torch.long)
        for i, (p, r) in enumerate(b):
            n = len(p) + len(r)
            ids[i, :n] = torch.tensor(p + r)
            mask[i, :n] = 1
            labels[i, len(p):n] = torch.tensor(r)
            tokens += n
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        print(f"peft: batch {len(losses)}: {len(b)} examples, loss {losses[-1]:.4f}, "
              f"{time.time() - t0:.1f} s", file=sys.stderr, flush=True)
    secs = time.time() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    if adapter:
        model.save_pretrained(adapter)
    with open(out, "w") as f:
        json.dump(dict(tokens=tokens, seconds=secs, tok_s=tokens / secs, load_s=load_s,
                       rss_gib=rss, losses=losses), f)


if __name__ == "__main__":
    main()
