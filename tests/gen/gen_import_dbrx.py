#!/usr/bin/env python3
"""The ids llama.cpp's own tokenizer gives on the OLMo 2 fixture GGUF (whose
tokenizer.ggml.pre is 'dbrx'), for texts that tell splitting regexes apart:
rl-import's tokenizer.json must give the same (tests/cli/t0300-rl-import.sh).
Writes tests/fixtures/import/olmo2_dbrx_ids.jsonl. Needs llama-cpp-python (built
from its PyPI sdist, as tests/bench/greedy_llamacpp.sh uses it), which make
fixtures' usual stack lacks: without it this says so and keeps the committed file.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
GGUF = os.path.join(HERE, "..", "fixtures", "import", "models", "olmo2_bf16", "model.gguf")
OUT = os.path.join(HERE, "..", "fixtures", "import", "olmo2_dbrx_ids.jsonl")
TEXTS = [
    "Hello world", "I'M sure they'LL say it's fine, we'd've gone",
    "12345 67 8.90", "tabs\tand  two  spaces   three", "line one\nline two\r\n\n\nend",
    "naïve café Ünïcode ÀÉÎ", "emoji 🙂 and 中文 text", "  leading and trailing  ",
    "x=1;y+=2 // code? (yes!) [ok]", "don't DON'T Don'T", "a\n\n  b", "   ",
    "SELECT name FROM t WHERE id = 'x';",
]


def main():
    try:
        from llama_cpp import Llama
    except ImportError:
        print("gen_import_dbrx.py: no llama_cpp here; keeping " + OUT, file=sys.stderr)
        return
    llm = Llama(model_path=GGUF, vocab_only=True, verbose=False)
    with open(OUT, "w", encoding="utf-8") as f:
        for t in TEXTS:
            ids = llm.tokenize(t.encode("utf-8"), add_bos=False, special=False)
            f.write(json.dumps({"prompt": t, "ids": ids}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
