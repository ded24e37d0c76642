#!/usr/bin/env python3
"""Fixtures for lib/safetensors.c and lib/model.c, written by the OFFICIAL stack.

tests/fixtures/safetensors/
  official/   files written by safetensors.torch.save_file (PyPI safetensors), the
              expected tensor bytes beside them as raw little-endian *.bin, and
              expected.txt ("file name dtype ndim dims... binfile"); same_<k> files
              were written with metadata={"format": "pt"}: our writer must
              reproduce them byte for byte (test_safetensors.c).
              ours_loaded.txt records the generation-time check that the official
              library and transformers load what OUR writer produces.
  models/     tiny models saved by transformers' save_pretrained (one of them
              sharded with a small max_shard_size) and expected.tsv, what
              transformers reports about them (test_model.c).
  bad/        one malformed file or model directory per validation rule, each
              checked here to be rejected by the official library (or transformers)
              where it is stricter-or-equal; the golden messages of rl-info live
              in tests/cli/t0100-rl-info.sh.

Deterministic: fixed seeds, fixed names. Run by `make fixtures` (tests/gen/all.sh).
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import torch
import transformers
from safetensors import safe_open
from safetensors.torch import load_file, save_file

transformers.logging.set_verbosity_error()

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "tests", "fixtures", "safetensors")
OFF = os.path.join(OUT, "official")
MOD = os.path.join(OUT, "models")
BAD = os.path.join(OUT, "bad")

ST_NAME = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL", torch.float8_e4m3fn: "F8_E4M3",
    torch.float8_e5m2: "F8_E5M2",
}


def raw_bytes(t):
    """The tensor's bytes, little-endian, row-major (as safetensors stores them)."""
    t = t.detach().contiguous().reshape(-1)
    return t.view(torch.uint8).numpy().tobytes() if t.numel() else b""


def fresh(d):
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)


def specials32():
    return torch.tensor([0.0, -0.0, 1.0, -2.5, float("inf"), float("-inf"), float("nan"),
                         1e-45, 3.4028235e38, -1.1754944e-38, 0.1, 65504.0], dtype=torch.float32)


def build_helper(tmp):
    """Compiles tests/gen/st_copy.c against the freshly built build/librealign.a."""
    lib = os.path.join(ROOT, "build", "librealign.a")
    if not os.path.exists(lib):
        sys.exit("gen_safetensors.py: build/librealign.a is missing (run make first)")
    libs = subprocess.run(["pkg-config", "--libs", "msgpack", "libcjson", "libpcre2-8", "openblas",
                           "libxxhash"], capture_output=True, text=True, check=True).stdout.split()
    cflags = subprocess.run(["pkg-config", "--cflags", "libcjson"], capture_output=True, text=True,
                            check=True).stdout.split()
    exe = os.path.join(tmp, "st_copy")
    subprocess.run(["cc", "-std=c11", "-D_GNU_SOURCE", "-O1", "-I" + os.path.join(ROOT, "lib")] +
                   cflags + ["-o", exe, os.path.join(HERE, "st_copy.c"), lib] + libs +
                   ["-lpthread", "-lm"], check=True)
    return exe


# ---------------------------------------------------------------- official files

def gen_official(helper, tmp):
    fresh(OFF)
    g = torch.Generator().manual_seed(1234)
    lines = ["# file name dtype ndim dims... binfile (bytes as the official library stored them)"]
    nbin = [0]

    def record(fname, tensors):
        for name in sorted(tensors):
            t = tensors[name]
            b = "t%03d.bin" % nbin[0]
            nbin[0] += 1
            with open(os.path.join(OFF, b), "wb") as f:
                f.write(raw_bytes(t))
            assert " " not in name and "\t" not in name
            lines.append(" ".join([fname, name, ST_NAME[t.dtype], str(t.dim())] +
                                  [str(s) for s in t.shape] + [b]))

    f16 = torch.arange(0, 1 << 16, 997, dtype=torch.int32).to(torch.int16).view(torch.float16)
    dtypes = {
        "f32.matrix": torch.cat([specials32(), torch.randn(12, generator=g)]).reshape(4, 6),
        "bf16.vector": torch.cat([specials32(), torch.randn(5, generator=g)]).to(torch.bfloat16),
        "f16.cube": f16[:12].reshape(2, 3, 2).clone(),
        "f16.all_patterns_strided": f16.clone(),
        "f32.scalar": torch.tensor(3.25),
        "f32.empty": torch.zeros(0, 3),
        "f64.pair": torch.tensor([1.0 / 3, -1e300], dtype=torch.float64),
        "i64.v": torch.tensor([-1, 1 << 62], dtype=torch.int64),
        "i32.v": torch.tensor([-7, 7], dtype=torch.int32),
        "i16.v": torch.tensor([-300, 300], dtype=torch.int16),
        "i8.v": torch.tensor([-128, 127, 0], dtype=torch.int8),
        "u8.v": torch.tensor([0, 255, 7, 9, 11], dtype=torch.uint8),
        "bool.v": torch.tensor([True, False, True, True]),
        "f8e4m3.v": torch.tensor([0.5, -1.0, 448.0]).to(torch.float8_e4m3fn),
        "f8e5m2.v": torch.tensor([0.5, -1.0, 57344.0]).to(torch.float8_e5m2),
    }
    save_file(dtypes, os.path.join(OFF, "dtypes.safetensors"))  # no __metadata__ at all
    record("dtypes.safetensors", dtypes)
    meta = {"w": torch.randn(3, 3, generator=g)}
    # the official library orders several metadata pairs by a per-process random
    # hash: save until "format" comes first, so the committed file is stable
    for _ in range(64):
        save_file(meta, os.path.join(OFF, "with_meta.safetensors"),
                  metadata={"format": "pt", "note": "a \"quoted\" value"})
        if open(os.path.join(OFF, "with_meta.safetensors"), "rb").read()[8:34] == \
                b'{"__metadata__":{"format":':
            break
    record("with_meta.safetensors", meta)

    # byte-identity set: written with transformers' metadata {"format": "pt"}
    same = [
        {  # names that sort and escape in interesting ways, every float dtype
            "b": torch.randn(2, 3, generator=g),
            "B": torch.randn(5, generator=g).to(torch.bfloat16),
            "a.b": torch.randn(3, generator=g).to(torch.float16),
            "a_b": torch.tensor(1.5),
            "a": torch.zeros(0, 4),
            "caf\u00e9": torch.randn(1, generator=g),
            "q\"uote": torch.randn(2, generator=g).to(torch.bfloat16),
            "tab\tname": torch.randn(1, generator=g).to(torch.float16),
            "ctl\x01\x1f": torch.randn(1, generator=g),
            "back\\slash/": torch.tensor([1, 2], dtype=torch.int64),
            "u8": torch.tensor([1, 2, 3], dtype=torch.uint8),
        },
        {  # a tiny decoder layer in bf16
            "model.layers.0.self_attn.q_proj.weight": torch.randn(8, 8, generator=g),
            "model.layers.0.self_attn.k_proj.weight": torch.randn(4, 8, generator=g),
            "model.layers.0.mlp.down_proj.weight": torch.randn(8, 12, generator=g),
            "model.layers.0.input_layernorm.weight": torch.ones(8),
            "model.embed_tokens.weight": torch.randn(16, 8, generator=g),
        },
        {},  # no tensors at all
        {"x%02d" % i: torch.randn(i % 3 + 1, generator=g).to(
            [torch.float32, torch.float16, torch.bfloat16][i % 3]) for i in range(30)},
    ]
    same[1] = {k: v.to(torch.bfloat16) for k, v in same[1].items()}
    ours = []
    for k, tensors in enumerate(same):
        fn = "same_%d.safetensors" % k
        save_file(tensors, os.path.join(OFF, fn), metadata={"format": "pt"})
        record(fn, {n: t for n, t in tensors.items() if " " not in n and "\t" not in n})
        # our writer on the same tensors must give the same bytes
        mine = os.path.join(tmp, "mine_" + fn)
        subprocess.run([helper, os.path.join(OFF, fn), mine], check=True)
        a = open(os.path.join(OFF, fn), "rb").read()
        b = open(mine, "rb").read()
        if a != b:
            sys.exit("gen_safetensors.py: our writer differs from the official library on " + fn)
        got = load_file(mine)
        for n, t in tensors.items():
            assert raw_bytes(got[n]) == raw_bytes(t) and got[n].dtype == t.dtype, n
        ours.append("%s: our bytes == official bytes (%d bytes); load_file reads back %d "
                    "tensors bit-exactly" % (fn, len(a), len(tensors)))
    # a file of ours with extra metadata: not byte-identical (the official library
    # orders metadata by hash), but loadable with the metadata intact
    mine = os.path.join(tmp, "mine_meta.safetensors")
    subprocess.run([helper, os.path.join(OFF, "dtypes.safetensors"), mine], check=True)
    with safe_open(mine, framework="pt") as f:
        assert f.metadata() == {"format": "pt"}
        for n in f.keys():
            assert raw_bytes(f.get_tensor(n)) == raw_bytes(dtypes[n]), n
    ours.append("dtypes.safetensors rewritten by us (every dtype): safe_open reads every tensor "
                "bit-exactly, metadata {'format': 'pt'}")
    with open(os.path.join(OFF, "expected.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return ours


# ---------------------------------------------------------------- models

def tiny_models():
    common = dict(hidden_size=16, intermediate_size=24, num_hidden_layers=3, num_attention_heads=4,
                  num_key_value_heads=2, vocab_size=48, max_position_embeddings=64)
    return [
        ("llama-sharded", transformers.LlamaConfig(**common), torch.float32, 6000),
        ("llama-bias", transformers.LlamaConfig(attention_bias=True, mlp_bias=True, **common),
         torch.float32, None),
        ("qwen2-tied", transformers.Qwen2Config(tie_word_embeddings=True, **common),
         torch.bfloat16, None),
        ("mistral-f16", transformers.MistralConfig(sliding_window=None, **common), torch.float16,
         None),
        ("gemma-bf16", transformers.GemmaConfig(head_dim=8, hidden_act="gelu", **common),
         torch.bfloat16, 4000),
    ]


ROLE = {
    "input_layernorm.weight": "input_layernorm.weight",
    "post_attention_layernorm.weight": "post_attention_layernorm.weight",
}
for p in "qkvo":
    for s in ("weight", "bias"):
        ROLE["self_attn.%s_proj.%s" % (p, s)] = "%s_proj.%s" % (p, s)
for p in ("gate", "up", "down"):
    for s in ("weight", "bias"):
        ROLE["mlp.%s_proj.%s" % (p, s)] = "%s_proj.%s" % (p, s)
CAND = [k for k in ROLE if "layernorm" not in k]


def layer_of(name):
    if not name.startswith("model.layers."):
        return -1, None
    rest = name[len("model.layers."):]
    i, _, suffix = rest.partition(".")
    return int(i), suffix


def stored_tensors(d):
    """name -> tensor, from the files transformers wrote (index trusted)."""
    idx = os.path.join(d, "model.safetensors.index.json")
    files = sorted(set(json.load(open(idx))["weight_map"].values())) if os.path.exists(idx) \
        else ["model.safetensors"]
    out = {}
    for fn in files:
        with safe_open(os.path.join(d, fn), framework="pt") as f:
            for n in f.keys():
                out[n] = f.get_tensor(n)
    return out, len(files)


def gen_models(helper, tmp):
    fresh(MOD)
    rows = ["# model key values... (what transformers and torch report)"]
    ours = []
    for k, (name, cfg, dtype, shard) in enumerate(tiny_models()):
        torch.manual_seed(100 + k)
        model = transformers.AutoModelForCausalLM.from_config(cfg).to(dtype)
        with torch.no_grad():  # norms are ones/zeros at init: make them informative
            for n, p in model.named_parameters():
                p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(len(n) + k)))
        d = os.path.join(MOD, name)
        kw = {"max_shard_size": shard} if shard else {}
        model.save_pretrained(d, **kw)
        for junk in ("generation_config.json",):
            if os.path.exists(os.path.join(d, junk)):
                os.remove(os.path.join(d, junk))
        tens, nfiles = stored_tensors(d)
        n_layers = cfg.num_hidden_layers
        rows.append("%s\tnshards\t%d" % (name, nfiles))
        rows.append("%s\tntensors\t%d" % (name, len(tens)))
        P = sum(p.numel() for n, p in model.named_parameters() if ".layers." in n)
        rows.append("%s\tP\t%d" % (name, P))
        tied = model.get_output_embeddings().weight is model.get_input_embeddings().weight
        rows.append("%s\ttied\t%d" % (name, int(tied)))
        for L in sorted({2 * n_layers // 3, 1, n_layers}):
            cands = [n for n in tens if layer_of(n)[0] in range(L) and layer_of(n)[1] in CAND]
            rows.append("%s\tcandidates\t%d\t%d\t%d" % (name, L, len(cands),
                                                        sum(tens[c].numel() for c in cands)))
        for n in sorted(tens):
            t = tens[n]
            v = t.to(torch.float64).reshape(-1)
            rows.append("\t".join([name, "tensor", n, ST_NAME[t.dtype], str(t.dim())] +
                                  [str(s) for s in t.shape] +
                                  [repr(float(v.sum())), repr(float(v[0]))]))
            layer, suffix = layer_of(n)
            if layer >= 0 and suffix in ROLE:
                rows.append("%s\trole\t%s\t%d\t%s" % (name, n, layer, ROLE[suffix]))
        # what we write from this model loads in transformers with the same weights
        for mx in (0, 3000):
            od = os.path.join(tmp, "ours-%s-%d" % (name, mx))
            subprocess.run([helper, "--model", d, od, str(mx)], check=True)
            back = transformers.AutoModelForCausalLM.from_pretrained(od, dtype=dtype)
            sd, sd0 = back.state_dict(), model.state_dict()
            assert sd.keys() == sd0.keys(), name
            for n in sd0:
                assert sd[n].dtype == sd0[n].dtype and torch.equal(
                    sd[n].view(-1).view(torch.uint8), sd0[n].view(-1).view(torch.uint8)), (name, n)
            c0, c1 = model.config, back.config
            for attr in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                         "num_key_value_heads", "intermediate_size", "vocab_size",
                         "rms_norm_eps", "tie_word_embeddings", "hidden_act"):
                assert getattr(c0, attr, None) == getattr(c1, attr, None), (name, attr)
            hd = [getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
                  for c in (c0, c1)]
            assert hd[0] == hd[1], (name, hd)
            assert c0.rope_parameters["rope_theta"] == c1.rope_parameters["rope_theta"]
            ours.append("%s via rl_model_write (max_shard_bytes %d, %d files): transformers "
                        "from_pretrained gives the same config and a bit-identical state_dict"
                        % (name, mx, len([f for f in os.listdir(od) if f.endswith(".safetensors")])))
    with open(os.path.join(MOD, "expected.tsv"), "w") as f:
        f.write("\n".join(rows) + "\n")
    return ours


def main():
    tmp = tempfile.mkdtemp(prefix="rl-gen-st.")
    try:
        helper = build_helper(tmp)
        ours = gen_official(helper, tmp)
        ours += gen_models(helper, tmp)
        with open(os.path.join(OFF, "ours_loaded.txt"), "w") as f:
            f.write("# checked by tests/gen/gen_safetensors.py with safetensors %s, transformers "
                    "%s, torch %s\n" % (__import__("safetensors").__version__,
                                        transformers.__version__, torch.__version__.split("+")[0]))
            f.write("\n".join(ours) + "\n")
        import st_bad  # the malformed corpus

        st_bad.main(OUT, MOD)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    main()
