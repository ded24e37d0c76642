#!/usr/bin/env python3
"""Fixtures for rl-merge (lib/store/adapter.c, lib/method/merge.c): PEFT LoRA
adapters on tiny random models, and what PEFT's merge_and_unload makes of them.

tests/fixtures/lora/<case>/ gets
  base/       the base model as save_pretrained writes it (bf16 or f32)
  adapter/    the adapter as PeftModel.save_pretrained writes it
              (adapter_config.json, adapter_model.safetensors), its lora_A and
              lora_B drawn at random (PEFT starts B at zero: nothing to merge)
  merged/     config.json and model.safetensors with every tensor of the
              merged model: the base loaded in float32,
              PeftModel.from_pretrained(...).merge_and_unload() in float32,
              then each tensor cast to the base's dtype (the truth rl-merge
              meets bit for bit: W + scale * B @ A in f32, rounded once)
Cases: the paper's settings on a bf16 llama (r 8, alpha 16, seven targets),
rsLoRA on a bf16 llama, q and v only on an f32 qwen2 (biases, tied
embeddings). bad/ holds adapters rl-merge must refuse, each with the message
it must give (bad/expected.json).
"""
import json
import os
import shutil

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "lora")
SEVEN = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
COMMON = dict(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
              bos_token_id=1, eos_token_id=2, pad_token_id=0)


def base_model(cfg_cls, model_cls, dtype, seed, extra):
    torch.manual_seed(seed)
    cfg = cfg_cls(**COMMON, **extra)
    return model_cls(cfg).to(dtype)


def make_case(name, cfg_cls, model_cls, dtype, seed, lora_kw, extra=None):
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    base = base_model(cfg_cls, model_cls, dtype, seed, extra or {})
    base.save_pretrained(os.path.join(d, "base"), safe_serialization=True)
    torch.manual_seed(seed + 1)
    peft = get_peft_model(base_model(cfg_cls, model_cls, dtype, seed, extra or {}),
                          LoraConfig(task_type="CAUSAL_LM", **lora_kw))
    with torch.no_grad():
        for n, p in peft.named_parameters():
            if "lora_A" in n or "lora_B" in n:
                p.copy_(torch.randn_like(p, dtype=torch.float32).to(p.dtype) * 0.3)
    peft.save_pretrained(os.path.join(d, "adapter"))
    cfg = json.load(open(os.path.join(d, "adapter", "adapter_config.json")))
    # the base's directory name, as a user's copy of the hub model would be
    cfg["base_model_name_or_path"] = "base"
    json.dump(cfg, open(os.path.join(d, "adapter", "adapter_config.json"), "w"), indent=2)

    ref = model_cls.from_pretrained(os.path.join(d, "base"), torch_dtype=torch.float32)
    merged = PeftModel.from_pretrained(ref, os.path.join(d, "adapter")).merge_and_unload()
    sd = {k: v.to(dtype).contiguous() for k, v in merged.state_dict().items()}
    if getattr(merged.config, "tie_word_embeddings", False):
        sd.pop("lm_head.weight", None)
    os.makedirs(os.path.join(d, "merged"))
    shutil.copy(os.path.join(d, "base", "config.json"), os.path.join(d, "merged"))
    save_file(sd, os.path.join(d, "merged", "model.safetensors"), metadata={"format": "pt"})
    return d


def bad_cases(good):
    """Adapters rl-merge refuses: edits of a good one, with the message."""
    d = os.path.join(OUT, "bad")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    src = os.path.join(good, "adapter")
    expected = {}

    def variant(name, edit_cfg=None, edit_tensors=None, message=""):
        v = os.path.join(d, name)
        shutil.copytree(src, v)
        if edit_cfg:
            p = os.path.join(v, "adapter_config.json")
            c = json.load(open(p))
            edit_cfg(c)
            json.dump(c, open(p, "w"), indent=2)
        if edit_tensors:
            p = os.path.join(v, "adapter_model.safetensors")
            t = load_file(p)
            edit_tensors(t)
            save_file(t, p, metadata={"format": "pt"})
        expected[name] = message

    variant("dora", lambda c: c.update(use_dora=True), message="DoRA")
    variant("modules_to_save", lambda c: c.update(modules_to_save=["lm_head"]),
            message="modules_to_save")
    variant("prefix", lambda c: c.update(peft_type="PREFIX_TUNING"),
            message="PREFIX_TUNING")
    variant("bias", lambda c: c.update(bias="all"), message="bias")
    variant("fan_in_fan_out", lambda c: c.update(fan_in_fan_out=True),
            message="fan_in_fan_out")
    variant("rank_pattern", lambda c: c.update(rank_pattern={"q_proj": 4}),
            message="rank_pattern")
    variant("future_field", lambda c: c.update(use_hyperlora=True),
            message="use_hyperlora")
    variant("other_base", lambda c: c.update(base_model_name_or_path="org/Other-Model-7B"),
            message="made for 'org/Other-Model-7B'")

    def wrong_rank(t):
        k = next(k for k in t if k.endswith("q_proj.lora_A.weight"))
        t[k] = t[k][:4].contiguous()
    variant("wrong_rank", edit_tensors=wrong_rank, message="rank")

    def wrong_shape(t):
        k = next(k for k in t if k.endswith("q_proj.lora_A.weight"))
        t[k] = torch.cat([t[k], t[k]], dim=1).contiguous()
    variant("wrong_shape", edit_tensors=wrong_shape, message="does not fit")

    def lone_a(t):
        k = next(k for k in t if k.endswith("v_proj.lora_B.weight"))
        del t[k]
    variant("lone_a", edit_tensors=lone_a, message="no lora_B")

    def unknown_target(t):
        for ab in "AB":
            k = next(k for k in t if k.endswith(f"q_proj.lora_{ab}.weight"))
            t[k.replace("layers.0.self_attn.q_proj", "layers.0.self_attn.qkv_proj")] = t[k].clone()
    variant("unknown_target", edit_tensors=unknown_target, message="no tensor")

    def embedding(t):
        t["base_model.model.model.embed_tokens.lora_embedding_A"] = torch.zeros(8, 64)
    variant("embedding", edit_tensors=embedding, message="lora_embedding_A")
    json.dump(expected, open(os.path.join(d, "expected.json"), "w"), indent=1, sort_keys=True)


def main():
    paper = make_case("llama_bf16", LlamaConfig, LlamaForCausalLM, torch.bfloat16, 10,
                      dict(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=SEVEN))
    make_case("llama_rslora", LlamaConfig, LlamaForCausalLM, torch.bfloat16, 20,
              dict(r=4, lora_alpha=8, use_rslora=True, target_modules=SEVEN))
    make_case("qwen2_f32_qv", Qwen2Config, Qwen2ForCausalLM, torch.float32, 30,
              dict(r=2, lora_alpha=5, target_modules=["q_proj", "v_proj"]),
              dict(tie_word_embeddings=True))
    bad_cases(paper)


if __name__ == "__main__":
    main()
