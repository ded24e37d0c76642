#!/usr/bin/env python3
"""gen_restore.py — an independent PyTorch implementation of ALGORITHM.md's
restore step and partial rollback, over transformers' Llama and torch autograd,
writing the fixtures realign's restore tests compare against
(tests/fixtures/restore/):

  aligned/, finetuned/      tiny Llama pair (bf16): A, and F = A + noise
  grad_harmful.safetensors  sum over harmful batches of d(-cos(mean h_L, d_h))/dW
                            at W = F (candidate tensors, f32)
  grad_benign.safetensors   sum over benign batches of d(-cos(mean h_L, d_b))/dW at
                            W = the model after the restore step (zeroed grads)
  expected_step.txt         "name index" of the k = ceil(0.002 P) restored elements
  expected_rollback.txt     "name index" of the ceil(0.2 count) rolled-back elements
  other/                    an unrelated tiny model (other shapes)
  info.json                 k, P, counts

The same for a Phi-3 pair into tests/fixtures/restore_phi3/ (no other/): its
candidates are the fused qkv_proj and gate_up_proj as stored, scored,
selected, restored and rolled back element by element like any tensor.

The top-k here sorts every masked score (what torch.topk does); ties are
checked to be absent at the boundary so "exactly k" and the reference's
"strictly above the k-th" differ only by the documented one element.
"""
import json
import math
import os
import shutil

import torch
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM, Phi3Config, Phi3ForCausalLM

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")
N_LAYERS, L, BATCH, RATE, RB_RATE = 3, 2, 4, 0.002, 0.2
ARCHS = {  # name: (out folder, config class, model class, candidate roles, extra config)
    "llama": ("restore", LlamaConfig, LlamaForCausalLM,
              ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
               "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"], {}),
    "phi3": ("restore_phi3", Phi3Config, Phi3ForCausalLM,
             ["self_attn.qkv_proj", "self_attn.o_proj", "mlp.gate_up_proj", "mlp.down_proj"],
             dict(pad_token_id=0, partial_rotary_factor=0.5)),
}
ARCH = "llama"
OUT, CFG, MODEL, ROLES, EXTRA = ARCHS[ARCH]


def make_models():
    torch.manual_seed(1234)
    cfg = CFG(vocab_size=96, hidden_size=48, intermediate_size=96,
              num_hidden_layers=N_LAYERS, num_attention_heads=4, num_key_value_heads=2,
              max_position_embeddings=64, rms_norm_eps=1e-5, tie_word_embeddings=False,
              bos_token_id=1, eos_token_id=2, **EXTRA)
    a = MODEL(cfg).to(torch.bfloat16)
    with torch.no_grad():
        for p in a.parameters():
            p.copy_((torch.randn_like(p, dtype=torch.float32) * 0.05).to(torch.bfloat16))
    f = MODEL(cfg).to(torch.bfloat16)
    f.load_state_dict(a.state_dict())
    with torch.no_grad():
        for p in f.parameters():
            noise = torch.randn_like(p, dtype=torch.float32) * 0.01
            keep = torch.rand_like(noise) < 0.2  # some elements stay equal to A
            noise[keep] = 0
            p.copy_((p.float() + noise).to(torch.bfloat16))
    return cfg, a, f


def candidates(model):
    return [f"model.layers.{i}.{r}.weight" for i in range(L) for r in ROLES]


def h_last(model, prompts):
    """h_L at the last token of each prompt (one prompt at a time: no padding)."""
    out = []
    for ids in prompts:
        hs = model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states
        out.append(hs[L][0, -1])
    return torch.stack(out)


def grad_of(model, prompts, d):
    """Sum over batches of d(-cos(mean h_L(batch), d))/dW, grads zeroed first."""
    model.zero_grad(set_to_none=True)
    for b in range(0, len(prompts), BATCH):
        h = h_last(model, prompts[b:b + BATCH]).mean(0)
        loss = -torch.nn.functional.cosine_similarity(h, d, dim=0)
        loss.backward()
    params = dict(model.named_parameters())
    return {n: params[n].grad.detach().clone() for n in candidates(model)}


def topk_set(scores, k):
    """Exact top-k over every element of every tensor: (name, index) pairs."""
    flat = []
    for n in sorted(scores):
        s = scores[n].flatten()
        idx = torch.nonzero(s > 0).flatten()
        flat += [(float(s[i]), n, int(i)) for i in idx]
    flat.sort(key=lambda t: (-t[0], t[1], t[2]))
    if 0 < k < len(flat):
        assert flat[k - 1][0] != flat[k][0], "tie at the top-k boundary: change the seed"
    return sorted((n, i) for _, n, i in flat[:k]), len(flat)


def f32_model(cfg, src):
    m = MODEL(cfg).float()
    m.load_state_dict({k: v.float() for k, v in src.state_dict().items()})
    return m


def main():
    global ARCH, OUT, CFG, MODEL, ROLES, EXTRA
    for ARCH in ARCHS:
        OUT, CFG, MODEL, ROLES, EXTRA = ARCHS[ARCH]
        OUT = os.path.join(FIXTURES, OUT)
        one()


def one():
    cfg, a, f = make_models()
    if os.path.exists(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    a.save_pretrained(os.path.join(OUT, "aligned"), safe_serialization=True)
    f.save_pretrained(os.path.join(OUT, "finetuned"), safe_serialization=True)
    for d in ("aligned", "finetuned"):
        gc = os.path.join(OUT, d, "generation_config.json")
        if os.path.exists(gc):
            os.remove(gc)

    g = torch.Generator().manual_seed(99)
    harmful = [torch.randint(3, cfg.vocab_size, (int(torch.randint(4, 11, (1,), generator=g)),),
                             generator=g).tolist() for _ in range(12)]
    benign = [torch.randint(3, cfg.vocab_size, (int(torch.randint(4, 11, (1,), generator=g)),),
                            generator=g).tolist() for _ in range(12)]

    A, F = f32_model(cfg, a), f32_model(cfg, f)
    with torch.no_grad():
        d_h = h_last(A, harmful).mean(0)
        d_b = h_last(F, benign).mean(0)

    # P: every decoder-layer parameter, norms included.
    P = sum(p.numel() for n, p in F.named_parameters() if n.startswith("model.layers."))
    k = math.ceil(RATE * P)

    # Restore step on W = F.
    W = f32_model(cfg, f)
    gh = grad_of(W, harmful, d_h)
    wp, ap = dict(W.named_parameters()), dict(A.named_parameters())
    scores = {}
    for n, gr in gh.items():
        diff = wp[n].detach() - ap[n].detach()
        mask = ((diff > 0) & (gr > 0)) | ((diff < 0) & (gr < 0))
        scores[n] = gr.abs() * mask
    step, eligible = topk_set(scores, k)
    with torch.no_grad():
        for n, i in step:
            wp[n].view(-1)[i] = ap[n].view(-1)[i]

    # Partial rollback: benign gradient at W (zeroed), among this step's elements.
    gb = grad_of(W, benign, d_b)
    fp = dict(F.named_parameters())
    restored = {}
    for n, i in step:
        restored.setdefault(n, []).append(i)
    rscores = {}
    for n, gr in gb.items():
        m = torch.zeros(gr.numel(), dtype=torch.bool)
        if n in restored:
            m[torch.tensor(restored[n])] = True
        diff = (wp[n].detach() - fp[n].detach()).flatten()
        gflat = gr.flatten()
        ok = m & (((diff > 0) & (gflat > 0)) | ((diff < 0) & (gflat < 0)))
        rscores[n] = (gflat.abs() * ok).reshape(gr.shape)
    count = sum(int((s > 0).sum()) for s in rscores.values())
    kr = math.ceil(RB_RATE * count)
    rb, _ = topk_set(rscores, kr)

    save_file({n: t.float().contiguous() for n, t in gh.items()},
              os.path.join(OUT, "grad_harmful.safetensors"))
    save_file({n: t.float().contiguous() for n, t in gb.items()},
              os.path.join(OUT, "grad_benign.safetensors"))
    with open(os.path.join(OUT, "expected_step.txt"), "w") as fp_:
        fp_.writelines(f"{n} {i}\n" for n, i in step)
    with open(os.path.join(OUT, "expected_rollback.txt"), "w") as fp_:
        fp_.writelines(f"{n} {i}\n" for n, i in rb)
    with open(os.path.join(OUT, "info.json"), "w") as fp_:
        json.dump({"P": P, "k": k, "eligible": eligible, "rollback_count": count,
                   "rollback_k": kr, "layer_end": L}, fp_, indent=1)
        fp_.write("\n")
    print(f"{ARCH}: P={P} k={k} eligible={eligible} rollback count={count} k={kr}")
    if ARCH != "llama":
        return
    # another model (other shapes), for the "made for another model" tests
    torch.manual_seed(5)
    ocfg = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                       num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32,
                       tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
    other = LlamaForCausalLM(ocfg).to(torch.bfloat16)
    other.save_pretrained(os.path.join(OUT, "other"), safe_serialization=True)
    gc = os.path.join(OUT, "other", "generation_config.json")
    if os.path.exists(gc):
        os.remove(gc)


if __name__ == "__main__":
    main()
