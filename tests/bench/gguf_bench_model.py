#!/usr/bin/env python3
"""gguf_bench_model.py — the benchmark's random model (make_model.py llama32-1b) as a
GGUF file for llama.cpp's benchmarks (llama-batched-bench, llama-bench), so
that llama.cpp runs the same weights as realign and transformers.

    python3 tests/bench/gguf_bench_model.py LLAMA_CPP_SRC MODEL_DIR OUT.gguf bf16|f16

LLAMA_CPP_SRC is llama.cpp's source tree (the one llama-cpp-python's sdist
vendors): its own converter (convert_hf_to_gguf.py, with gguf-py) writes the
tensors and hyperparameters. The random model has no tokenizer, which the
converter needs, so its vocabulary is replaced by a synthetic SentencePiece
one of the same size (<unk>, <s>, </s>, the 256 byte tokens, then dummies):
the benchmarks feed token ids, never text, so only the size matters.
"""
import sys
from pathlib import Path

src, model, out, outtype = sys.argv[1:5]
sys.path.insert(0, src)
sys.path.insert(0, str(Path(src) / "gguf-py"))
sys.argv = [sys.argv[0], model, "--outfile", out, "--outtype", outtype]

import gguf  # noqa: E402
import convert_hf_to_gguf  # noqa: E402
from conversion.llama import LlamaModel  # noqa: E402


def synthetic_vocab(self):
    n = self.hparams["vocab_size"]
    tokens, scores, types = ["<unk>", "<s>", "</s>"], [0.0, 0.0, 0.0], [2, 3, 3]
    for b in range(256):
        tokens.append("<0x%02X>" % b)
        scores.append(0.0)
        types.append(gguf.TokenType.BYTE)
    for i in range(len(tokens), n):
        tokens.append("\u2581w%d" % i)
        scores.append(-float(i))
        types.append(gguf.TokenType.NORMAL)
    w = self.gguf_writer
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)


LlamaModel.set_vocab = synthetic_vocab
convert_hf_to_gguf.main()
