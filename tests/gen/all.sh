#!/bin/sh
# `make fixtures`: regenerates every committed fixture with the reference Python
# stack (torch, transformers, safetensors, tokenizers, msgpack, xxhash, rouge_score,
# peft, jinja2, gguf, numpy, sentencepiece, accelerate from PyPI; gen_import.py also
# needs LLAMA_CPP, llama.cpp's converter: see its docstring). Runs each
# tests/gen/gen_*.py in name order; each writes under tests/fixtures/ (gen_unicode.py
# writes lib/text/tokenizer_unicode.c, tokenizers' Unicode data).
# `make check` never needs this: the fixtures are committed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import torch, transformers, safetensors, tokenizers, msgpack, xxhash, rouge_score, peft, jinja2, gguf, numpy, sentencepiece, accelerate' 2>/dev/null || {
	echo "make fixtures needs: pip install torch transformers safetensors tokenizers msgpack xxhash rouge_score peft jinja2 gguf numpy sentencepiece accelerate" >&2
	exit 4
}
for g in "$here"/gen_*.py; do
	[ -f "$g" ] || continue
	echo "== $(basename "$g")"
	"$PYTHON" "$g"
done
