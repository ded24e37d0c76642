#!/usr/bin/env python3
"""grad_torch.py — the PyTorch side of tests/bench/grad: rl-grad's computation
done the way a careful PyTorch user would (the reference implementation's
method, minus its waste), to time it against rl-grad in the same run.

    grad_torch.py MODEL PROMPTS.jsonl DIR.rls BATCH THREADS [GRAD.rls]

transformers' LlamaForCausalLM loaded in fp32 from the bf16 files (as the
reference implementation loads it), truncated to the first L layers with the
final norm replaced by the identity so that last_hidden_state is
hidden_states[L] (cheaper than the reference, which runs every layer and the
head); only the candidate tensors require gradients; batches of BATCH
consecutive prompts, left-padded with an attention mask and explicit
positions; loss_b = -cos(mean h_L, d), backward per batch, gradients summed.
d and L are read from DIR.rls (rl-direction's stream), as rl-grad reads them.

Prints one JSON object: load and compute seconds, losses. With GRAD.rls (an
rl-grad stream of the same computation) it then compares every gradient
tensor: the worst max|torch - realign| / max|torch| over the tensors.
"""
import json
import sys
import time

import torch
import torch.nn.functional as Fn
from transformers import AutoModelForCausalLM


def main():
    mdir, ppath, bs, threads = sys.argv[1], sys.argv[2], int(sys.argv[4]), int(sys.argv[5])
    L, d = read_direction(sys.argv[3])
    grad_path = sys.argv[6] if len(sys.argv) > 6 else None
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(mdir, dtype=torch.float32)
    model.model.layers = model.model.layers[:L]
    model.model.norm = torch.nn.Identity()
    body = model.model
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("model.layers.") and "_proj." in name)
    t_load = time.perf_counter() - t0
    prompts = [json.loads(line)["ids"] for line in open(ppath) if line.strip()]

    def last_hidden(batch):
        n = max(len(p) for p in batch)
        ids = torch.zeros(len(batch), n, dtype=torch.long)
        mask = torch.zeros(len(batch), n, dtype=torch.long)
        for i, p in enumerate(batch):
            ids[i, n - len(p):] = torch.tensor(p)
            mask[i, n - len(p):] = 1
        pos = (mask.cumsum(1) - 1).clamp(min=0)
        out = body(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False)
        return out.last_hidden_state[:, -1]

    t1 = time.perf_counter()
    losses = []
    for i in range(0, len(prompts), bs):
        m = last_hidden(prompts[i:i + bs]).mean(0)
        loss = -Fn.cosine_similarity(m, d, dim=0)
        loss.backward()
        losses.append(loss.item())
    t_compute = time.perf_counter() - t1
    res = {"load_s": t_load, "compute_s": t_compute, "losses": losses, "threads": threads}
    if grad_path:
        res.update(compare(model, grad_path))
    print(json.dumps(res))


def read_direction(path):
    import msgpack
    with open(path, "rb") as f:
        recs = list(msgpack.Unpacker(f, raw=False))
    L = recs[0]["layer_end"]
    parts = [r for r in recs if r.get("t") == "tensor" and r["name"] == "direction"]
    d = torch.cat([torch.frombuffer(bytearray(r["data"]), dtype=torch.float32) for r in parts])
    return L, d


def compare(model, path):
    """Streams an rl-grad file (msgpack records) and compares every tensor."""
    import msgpack
    params = dict(model.named_parameters())
    worst, worst_name, n = 0.0, None, 0
    cur, buf = None, None
    with open(path, "rb") as f:
        for rec in msgpack.Unpacker(f, raw=False, max_buffer_size=1 << 30):
            if rec.get("t") != "tensor":
                continue
            name = rec["name"]
            if name != cur:
                cur, buf = name, torch.empty(int(torch.tensor(rec["shape"]).prod()))
            chunk = torch.frombuffer(bytearray(rec["data"]), dtype=torch.float32)
            buf[rec["offset"]:rec["offset"] + rec["count"]] = chunk
            if rec["offset"] + rec["count"] == buf.numel():
                g = params[name].grad.reshape(-1)
                rel = ((g - buf).abs().max() / g.abs().max()).item()
                n += 1
                if rel > worst:
                    worst, worst_name = rel, name
    return {"compared_tensors": n, "worst_rel_diff": worst, "worst_tensor": worst_name}


if __name__ == "__main__":
    main()
