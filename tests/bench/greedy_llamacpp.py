#!/usr/bin/env python3
"""Greedy generation by llama.cpp (llama-cpp-python) on a GGUF, from the same
token ids realign feeds its imported model: for each line of IDS.jsonl
({"ids": [...]} as rl-tok writes them), argmax decoding of llama.cpp's own
logits until an end token or MAX_NEW tokens. Writes one JSON line per prompt:
{"ids": new token ids, "text": their detokenized text, "margins": at each new
token, llama.cpp's top logit minus its second (how near a tie its choice
was)}.

    greedy_llamacpp.py MODEL.gguf IDS.jsonl MAX_NEW THREADS > OUT.jsonl
"""
import json
import sys

import numpy as np
from llama_cpp import Llama


def main():
    gguf, ids_path, max_new, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    # logits_all: with False, this binding leaves scores[n_tokens - 1] unset
    llm = Llama(model_path=gguf, n_ctx=1024, n_threads=threads, n_batch=512, logits_all=True,
                verbose=False)
    stop = {llm.token_eos()}
    # end-of-turn tokens the chat template uses (Qwen: <|im_end|>, <|endoftext|>)
    for t in (b"<|im_end|>", b"<|endoftext|>", b"<|eot_id|>", b"<end_of_turn>"):
        toks = llm.tokenize(t, add_bos=False, special=True)
        if len(toks) == 1:
            stop.add(toks[0])
    for line in open(ids_path):
        ids = json.loads(line)["ids"]
        llm.reset()
        llm.eval(ids)
        out, margins = [], []
        for _ in range(max_new):
            logits = llm.scores[llm.n_tokens - 1]
            top2 = np.partition(logits, -2)[-2:]
            margins.append(round(float(abs(top2[1] - top2[0])), 4))
            tok = int(np.argmax(logits))
            if tok in stop:
                break
            out.append(tok)
            llm.eval([tok])
        text = llm.detokenize(out).decode("utf-8", errors="replace")
        print(json.dumps({"ids": out, "text": text, "margins": margins}, ensure_ascii=False),
              flush=True)


if __name__ == "__main__":
    main()
