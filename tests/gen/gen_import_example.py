#!/usr/bin/env python3
"""A stand-in for rl-import(1)'s example file (qwen2.5-coder-1.5b-instruct-q4_k_m.gguf,
which examples/fetch-model.sh fetches: 1 GB): a one-layer Qwen2 model, hidden size 32,
with Qwen2.5's real vocabulary and chat template (copied from
tests/fixtures/import/vocab/qwen2_5.gguf.xz, the converter's --vocab-only file) and a
quantized (Q8_0) embedding. Its weights are constants: the example imports the file,
describes the model and tokenizes a prompt; nothing runs the model. Written with
gguf-py (pip install gguf), the GGUF package llama.cpp publishes.

    python3 tests/gen/gen_import_example.py   # writes tests/fixtures/import/example/
"""
import lzma
import os
import tempfile

import gguf
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VOCAB = os.path.join(ROOT, "tests", "fixtures", "import", "vocab", "qwen2_5.gguf.xz")
OUT = os.path.join(ROOT, "tests", "fixtures", "import", "example", "qwen2.5-standin-q8_0.gguf.xz")
HIDDEN, FFN, HEADS, KV_HEADS = 32, 64, 4, 2

with tempfile.TemporaryDirectory() as tmp:
    src = os.path.join(tmp, "vocab.gguf")
    with open(src, "wb") as f:
        f.write(lzma.open(VOCAB).read())
    r = gguf.GGUFReader(src)
    w = gguf.GGUFWriter(os.path.join(tmp, "model.gguf"), "qwen2")
    w.add_type("model")
    w.add_name("Qwen2.5 stand-in (realign test fixture)")
    w.add_block_count(1)
    w.add_context_length(64)
    w.add_embedding_length(HIDDEN)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    # the vocabulary and template as the converter wrote them
    for key, field in r.fields.items():
        if not key.startswith("tokenizer."):
            continue
        vt = gguf.GGUFValueType(field.types[0])
        if vt == gguf.GGUFValueType.ARRAY:
            et = gguf.GGUFValueType(field.types[1])
            vals = [field.parts[i] for i in field.data]
            if et == gguf.GGUFValueType.STRING:
                vals = [bytes(v).decode("utf-8") for v in vals]
            else:
                vals = [v.tolist()[0] for v in vals]
            w.add_array(key, vals)
        elif vt == gguf.GGUFValueType.STRING:
            w.add_string(key, bytes(field.parts[field.data[0]]).decode("utf-8"))
        elif vt == gguf.GGUFValueType.BOOL:
            w.add_bool(key, bool(field.parts[field.data[0]][0]))
        else:
            w.add_uint32(key, int(field.parts[field.data[0]][0]))
    n_vocab = len(r.fields["tokenizer.ggml.tokens"].data)
    hd = HIDDEN // HEADS

    def const(shape, v):
        return np.full(shape, v, dtype=np.float32)

    emb = const((n_vocab, HIDDEN), 0.01)
    q8 = gguf.quants.quantize(emb, gguf.GGMLQuantizationType.Q8_0)
    w.add_tensor("token_embd.weight", q8, raw_shape=q8.shape,
                 raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    for name, arr in [
            ("blk.0.attn_norm.weight", const(HIDDEN, 1.0)),
            ("blk.0.attn_q.weight", const((HIDDEN, HIDDEN), 0.01)),
            ("blk.0.attn_q.bias", const(HIDDEN, 0.0)),
            ("blk.0.attn_k.weight", const((KV_HEADS * hd, HIDDEN), 0.01)),
            ("blk.0.attn_k.bias", const(KV_HEADS * hd, 0.0)),
            ("blk.0.attn_v.weight", const((KV_HEADS * hd, HIDDEN), 0.01)),
            ("blk.0.attn_v.bias", const(KV_HEADS * hd, 0.0)),
            ("blk.0.attn_output.weight", const((HIDDEN, HIDDEN), 0.01)),
            ("blk.0.ffn_norm.weight", const(HIDDEN, 1.0)),
            ("blk.0.ffn_gate.weight", const((FFN, HIDDEN), 0.01)),
            ("blk.0.ffn_up.weight", const((FFN, HIDDEN), 0.01)),
            ("blk.0.ffn_down.weight", const((HIDDEN, FFN), 0.01)),
            ("output_norm.weight", const(HIDDEN, 1.0))]:
        w.add_tensor(name, arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(os.path.join(tmp, "model.gguf"), "rb") as f, lzma.open(OUT, "wb", preset=9) as o:
        o.write(f.read())
print(OUT, os.path.getsize(OUT), "bytes")
