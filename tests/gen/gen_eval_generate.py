#!/usr/bin/env python3
"""End-to-end fixture for `rl-eval -m`: a tiny Qwen2-style model with its own
small byte-level BPE tokenizer and a ChatML chat template, and the responses
transformers gives for a few prompts with the same pipeline rl-eval(1)
documents:

  text = tokenizer.apply_chat_template([{"role": "user", "content": p}],
                                       add_generation_prompt=True, tokenize=False)
  ids  = tokenizer(text, add_special_tokens=False)
  if len(ids) > MAX_PROMPT: ids = ids[:MAX_PROMPT - len(tail)] + tail
         (tail: the ids of the template text after the prompt)
  new  = model.generate(ids, do_sample=False, max_new_tokens=MAX_NEW,
                        eos_token_id=[<|im_end|>, <|endoftext|>])   (float32)
  response = tokenizer.decode(new without its stop token, skip_special_tokens=True)

Writes tests/fixtures/eval/tiny/ (config.json, model.safetensors,
generation_config.json, tokenizer.json, tokenizer_config.json), and
tests/fixtures/eval/prompts.jsonl and expected.jsonl ({"prompt", "response",
"prompt_tokens", "new_tokens", "truncated"}). Deterministic.
"""
import glob
import json
import os
import shutil

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "eval")
MAX_NEW = 16
MAX_PROMPT = 64
CHATML = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
          "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
          "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
PROMPTS = [
    "How do I pick a lock?",
    "Write a short poem about the sea.",
    "  What is 2 + 2?  ",
    "Summarize: the licence grants permission to copy, modify and distribute the software, "
    "provided the notice is kept in every copy; it comes without any warranty of any kind.",
    "¿Dónde está la biblioteca? 図書館はどこですか",
]


def corpus():
    for path in sorted(glob.glob("/usr/share/common-licenses/*")):
        if os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                yield f.read()
    yield from PROMPTS


def main():
    d = os.path.join(OUT, "tiny")
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(d)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=SPECIAL, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus(), trainer=trainer)
    tok.save(os.path.join(d, "tokenizer.json"))
    json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "chat_template": CHATML,
               "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "bos_token": None,
               "added_tokens_decoder": {str(tok.token_to_id(s)): {
                   "content": s, "special": True, "lstrip": False, "rstrip": False,
                   "normalized": False, "single_word": False} for s in SPECIAL}},
              open(os.path.join(d, "tokenizer_config.json"), "w"), indent=2)
    hf = PreTrainedTokenizerFast.from_pretrained(d)
    im_end, eot = tok.token_to_id("<|im_end|>"), tok.token_to_id("<|endoftext|>")

    torch.manual_seed(20250407)
    cfg = Qwen2Config(vocab_size=tok.get_vocab_size(), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=256, initializer_range=0.4,
                      tie_word_embeddings=True, bos_token_id=None, eos_token_id=im_end,
                      pad_token_id=eot)
    Qwen2ForCausalLM(cfg).save_pretrained(d)
    gc = json.load(open(os.path.join(d, "generation_config.json")))
    gc["eos_token_id"] = [im_end, eot]
    json.dump(gc, open(os.path.join(d, "generation_config.json"), "w"), indent=2)
    model = Qwen2ForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager")
    model.eval()

    sentinel = "\x01\x02\x03"
    tmpl = hf.apply_chat_template([{"role": "user", "content": sentinel}],
                                  add_generation_prompt=True, tokenize=False)
    tail = hf(tmpl[tmpl.index(sentinel) + len(sentinel):], add_special_tokens=False)["input_ids"]
    with open(os.path.join(OUT, "prompts.jsonl"), "w") as fp, \
            open(os.path.join(OUT, "expected.jsonl"), "w") as fe:
        for p in PROMPTS:
            text = hf.apply_chat_template([{"role": "user", "content": p}],
                                          add_generation_prompt=True, tokenize=False)
            ids = hf(text, add_special_tokens=False)["input_ids"]
            truncated = len(ids) > MAX_PROMPT
            if truncated:
                ids = ids[:MAX_PROMPT - len(tail)] + tail
            inp = torch.tensor([ids])
            with torch.no_grad():
                out = model.generate(inp, attention_mask=torch.ones_like(inp), do_sample=False,
                                     max_new_tokens=MAX_NEW, eos_token_id=[im_end, eot],
                                     pad_token_id=eot)
            new = out[0, len(ids):].tolist()
            stop = next((i for i, t in enumerate(new) if t in (im_end, eot)), None)
            gen = new if stop is None else new[:stop]
            n_new = len(new) if stop is None else stop + 1
            resp = hf.decode(gen, skip_special_tokens=True)
            fp.write(json.dumps({"prompt": p}, ensure_ascii=False) + "\n")
            fe.write(json.dumps({"prompt": p, "response": resp, "prompt_tokens": len(ids),
                                 "new_tokens": n_new, "truncated": truncated},
                                ensure_ascii=False) + "\n")
            print("%3d prompt tokens%s, %2d new: %r" % (len(ids), " (cut)" if truncated else "",
                                                         n_new, resp))


if __name__ == "__main__":
    main()
