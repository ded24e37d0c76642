"""The malformed corpus under tests/fixtures/safetensors/bad/ (called by gen_safetensors.py).

bad/files/*.safetensors   one file per header/layout rule
bad/models/<case>/        model directories: index/shard disagreements, bad config.json,
                          missing or misshapen tensors
bad/reference.tsv         what the official library (safe_open) / transformers
                          (from_pretrained) do with each case, so the man page and the
                          report can say where realign is stricter: realign rejects
                          every case (tests/cli/t0100-rl-info.sh, golden messages).
"""
import json
import os
import shutil
import struct
import tempfile

import torch
import transformers
from safetensors import safe_open

LFS = (b"version https://git-lfs.github.com/spec/v1\n"
       b"oid sha256:9ed1d3f2a0c1f9b6c0a1f0c8f6f3a1e7b7d1f2e3a4b5c6d7e8f9a0b1c2d3e4f5\n"
       b"size 13476839424\n")


def st(header, data=b"", raw=None, length=None):
    """A file image: 8-byte length (or `length`), header text, data bytes."""
    h = header.encode("utf-8") if isinstance(header, str) else header
    if raw is not None:
        return raw
    n = len(h) if length is None else length
    return struct.pack("<Q", n) + h + data


def T(name, dtype, shape, off):
    return '"%s":{"dtype":"%s","shape":%s,"data_offsets":[%d,%d]}' % (
        name, dtype, json.dumps(shape).replace(" ", ""), off[0], off[1])


GOOD = "{" + T("a", "F32", [2], (0, 8)) + "," + T("b", "F16", [2], (8, 12)) + "}"
GOOD_FILE = st(GOOD, bytes(range(12)))

FILES = {
    "empty": b"",
    "short": b"\x05\x00\x00",
    "lfs-pointer": LFS,
    "header-too-large": st("{}", b"", length=100_000_001) + b" " * 16,
    "header-past-eof": st("{}", b"", length=1000),
    "not-utf8": st(b'{"a\xff":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', b"\0" * 4),
    "not-json": st('{"a": nonsense}'),
    "not-object": st("[]"),
    "trailing-garbage": st("{} x"),
    "metadata-not-string": st('{"__metadata__":{"format":1}}'),
    "metadata-nested": st('{"__metadata__":{"format":{"x":"pt"}}}'),
    "metadata-duplicate-key": st('{"__metadata__":{"format":"pt","format":"np"}}'),
    "unknown-dtype": st("{" + T("a", "INT4", [2], (0, 1)) + "}", b"\0"),
    "missing-dtype": st('{"a":{"shape":[1],"data_offsets":[0,4]}}', b"\0" * 4),
    "entry-not-object": st('{"a":[1,2]}'),
    "shape-negative": st("{" + T("a", "F32", [-1], (0, 4)) + "}", b"\0" * 4),
    "shape-fraction": st('{"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}', b"\0" * 4),
    "shape-overflow": st("{" + T("a", "F32", [1 << 32, 1 << 32], (0, 4)) + "}", b"\0" * 4),
    "too-many-dims": st("{" + T("a", "F32", [1] * 9, (0, 4)) + "}", b"\0" * 4),
    "size-mismatch": st("{" + T("a", "F32", [2, 2], (0, 12)) + "}", b"\0" * 12),
    "offsets-reversed": st("{" + T("a", "F32", [1], (4, 0)) + "}", b"\0" * 4),
    "offsets-three": st('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}', b"\0" * 8),
    "offsets-beyond-u64": st('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,'
                             '18446744073709551620]}}', b"\0" * 4),
    "not-from-zero": st("{" + T("a", "F32", [1], (4, 8)) + "}", b"\0" * 8),
    "gap": st("{" + T("a", "F32", [1], (0, 4)) + "," + T("b", "F32", [1], (8, 12)) + "}",
              b"\0" * 12),
    "overlap": st("{" + T("a", "F32", [2], (0, 8)) + "," + T("b", "F32", [1], (4, 8)) + "}",
                  b"\0" * 8),
    "bytes-after-data": GOOD_FILE + b"\0",
    "truncated-data": GOOD_FILE[:-3],
    "truncated-header": GOOD_FILE[:20],
    "duplicate-name": st("{" + T("a", "F32", [1], (0, 4)) + "," + T("a", "F32", [1], (4, 8)) + "}",
                         b"\0" * 8),
    "duplicate-field": st('{"a":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}}',
                          b"\0" * 4),
    "nul-in-name": st('{"a\\u0000b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', b"\0" * 4),
    "lone-surrogate": st('{"a\\ud800":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}',
                         b"\0" * 4),
    "deep-nesting": st('{"a":{"x":' + "[" * 300 + "]" * 300 + ',"dtype":"F32","shape":[1],'
                       '"data_offsets":[0,4]}}', b"\0" * 4),
}


def official_verdict(path):
    try:
        with safe_open(path, framework="pt") as f:
            for k in f.keys():
                f.get_tensor(k)
        return "accepted"
    except Exception as e:  # noqa: BLE001 - any refusal counts
        return "rejected (%s)" % str(e).splitlines()[0][:80]


def transformers_verdict(d):
    try:
        transformers.AutoModelForCausalLM.from_pretrained(d)
        return "loads"
    except Exception as e:  # noqa: BLE001
        return "refuses (%s: %s)" % (type(e).__name__, str(e).splitlines()[0][:80])


def micro_base(tmp, sharded):
    """A micro Llama saved by transformers itself (the valid starting point)."""
    cfg = transformers.LlamaConfig(hidden_size=8, intermediate_size=8, num_hidden_layers=2,
                                   num_attention_heads=2, num_key_value_heads=1, vocab_size=16,
                                   max_position_embeddings=32)
    torch.manual_seed(7)
    m = transformers.AutoModelForCausalLM.from_config(cfg)
    d = os.path.join(tmp, "base-%d" % sharded)
    m.save_pretrained(d, **({"max_shard_size": 700} if sharded else {}))
    os.remove(os.path.join(d, "generation_config.json"))
    return d


def rewrite_st(path, drop=(), add=None):
    """Rewrites a safetensors file through the official library (dropping/adding tensors)."""
    from safetensors.torch import load_file, save_file
    t = load_file(path)
    for k in drop:
        del t[k]
    if add:
        t.update(add)
    save_file(t, path, metadata={"format": "pt"})


def differential(out, n_cases=3000):
    """Random mutations of valid files: the official library and rl-info must
    never disagree in the direction "official rejects, realign accepts"; every
    rl-info run must end in exit 0 or 3. Summary in bad/differential.txt."""
    import random
    import re
    import subprocess
    rl_bin = os.environ.get("RL_BIN") or os.path.join(os.path.dirname(out), "..", "..", "bin")
    rl_info = os.path.join(rl_bin, "rl-info")
    off = os.path.join(out, "official")
    seeds = [open(os.path.join(off, f), "rb").read() for f in sorted(os.listdir(off))
             if f.endswith(".safetensors")]
    rng = random.Random(2024)
    tmp = tempfile.mkdtemp(prefix="rl-diff.")
    counts = {"both accept": 0, "both reject": 0, "only realign rejects": 0,
              "only official rejects": 0}
    stricter = {}
    try:
        path = os.path.join(tmp, "m.safetensors")
        for i in range(n_cases):
            b = bytearray(rng.choice(seeds))
            n = struct.unpack("<Q", b[:8])[0]
            kind = rng.randrange(6)
            if kind == 0:  # flip a header byte
                k = 8 + rng.randrange(max(1, n))
                b[k] = rng.randrange(256)
            elif kind == 1:  # replace a number in the header
                hdr = b[8:8 + n].decode("utf-8", "replace")
                nums = list(re.finditer(r"\d+", hdr))
                if nums:
                    m = rng.choice(nums)
                    new = rng.choice(["0", "1", "2", "7", "8", "65535", "4294967296",
                                      "18446744073709551615", str(rng.randrange(10 ** 6))])
                    hdr = hdr[:m.start()] + new + hdr[m.end():]
                    h = hdr.encode()
                    b = bytearray(struct.pack("<Q", len(h)) + h + b[8 + n:])
            elif kind == 2:  # truncate
                b = b[:rng.randrange(len(b) + 1)]
            elif kind == 3:  # length prefix off by a little
                b[:8] = struct.pack("<Q", max(0, n + rng.choice([-9, -1, 1, 8, 100])))
            elif kind == 4:  # insert or delete a character, keeping the prefix right
                hdr = bytes(b[8:8 + n])
                k = rng.randrange(len(hdr) + 1)
                if rng.random() < 0.5 and k < len(hdr):
                    hdr = hdr[:k] + hdr[k + 1:]
                else:
                    hdr = hdr[:k] + bytes([rng.choice(b'{}[],:" 0a\\')]) + hdr[k:]
                b = bytearray(struct.pack("<Q", len(hdr)) + hdr + b[8 + n:])
            else:  # change a dtype
                hdr = b[8:8 + n].decode("utf-8", "replace")
                for a, c in [("F32", "F16"), ("BF16", "F32"), ("F16", "I64"), ("U8", "BOOL"),
                             ("I64", "F64")]:
                    if a in hdr and rng.random() < 0.5:
                        hdr = hdr.replace(a, c, 1)
                h = hdr.encode()
                b = bytearray(struct.pack("<Q", len(h)) + h + b[8 + n:])
            with open(path, "wb") as f:
                f.write(b)
            official = official_verdict(path) == "accepted"
            r = subprocess.run([rl_info, path], capture_output=True, text=True)
            if r.returncode not in (0, 3):
                raise SystemExit("differential: rl-info exit %d on case %d: %s"
                                 % (r.returncode, i, r.stderr))
            ours = r.returncode == 0
            if official and ours:
                counts["both accept"] += 1
            elif not official and not ours:
                counts["both reject"] += 1
            elif official:
                counts["only realign rejects"] += 1
                msg = re.sub(r"'[^']*'", "'X'", r.stderr.strip().split(": ", 2)[-1])
                msg = re.sub(r"\d+", "N", msg)
                stricter[msg] = stricter.get(msg, 0) + 1
            else:
                counts["only official rejects"] += 1
                keep = os.path.join(out, "bad", "differential-case-%d.safetensors" % i)
                shutil.copy(path, keep)
                raise SystemExit("differential: the official library rejects %s but rl-info "
                                 "accepts it" % keep)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    with open(os.path.join(out, "bad", "differential.txt"), "w") as f:
        f.write("# %d random mutations of the official files (seed 2024): safetensors %s vs "
                "rl-info\n" % (n_cases, __import__("safetensors").__version__))
        for k, v in counts.items():
            f.write("%s: %d\n" % (k, v))
        f.write("# where realign is stricter, by message:\n")
        for k, v in sorted(stricter.items(), key=lambda kv: -kv[1]):
            f.write("%6d  %s\n" % (v, k))


def main(out, models_dir):
    bad = os.path.join(out, "bad")
    shutil.rmtree(bad, ignore_errors=True)
    os.makedirs(os.path.join(bad, "files"))
    os.makedirs(os.path.join(bad, "models"))
    ref = ["# case\twhat the reference stack does with it (realign rejects all: exit 3)"]
    for name, data in sorted(FILES.items()):
        p = os.path.join(bad, "files", name + ".safetensors")
        with open(p, "wb") as f:
            f.write(data)
        ref.append("files/%s.safetensors\tsafetensors %s: %s" % (
            name, __import__("safetensors").__version__, official_verdict(p)))

    tmp = tempfile.mkdtemp(prefix="rl-bad.")
    try:
        single, sharded = micro_base(tmp, False), micro_base(tmp, True)
        idx_name = "model.safetensors.index.json"
        shards = sorted(f for f in os.listdir(sharded) if f.startswith("model-"))
        assert len(shards) >= 3, shards
        cases = {}

        def case(name, base):
            d = os.path.join(bad, "models", name)
            shutil.copytree(base, d)
            cases[name] = d
            return d

        def cfg_edit(d, fn):
            p = os.path.join(d, "config.json")
            c = json.load(open(p))
            fn(c)
            json.dump(c, open(p, "w"), indent=2)

        def idx_edit(d, fn):
            p = os.path.join(d, idx_name)
            c = json.load(open(p))
            fn(c["weight_map"])
            json.dump(c, open(p, "w"), indent=2)

        # weights
        d = case("no-weights", single)
        os.remove(os.path.join(d, "model.safetensors"))
        d = case("lfs-pointer", single)
        open(os.path.join(d, "model.safetensors"), "wb").write(LFS)
        d = case("truncated-shard", sharded)
        p = os.path.join(d, shards[1])
        data = open(p, "rb").read()
        open(p, "wb").write(data[:-5])
        d = case("missing-tensor", single)
        rewrite_st(os.path.join(d, "model.safetensors"),
                   drop=["model.layers.1.mlp.up_proj.weight"])
        d = case("wrong-shape", single)
        cfg_edit(d, lambda c: c.update(intermediate_size=12))
        d = case("extra-bias", single)
        rewrite_st(os.path.join(d, "model.safetensors"),
                   add={"model.layers.0.self_attn.q_proj.bias": torch.zeros(8)})
        d = case("layer-beyond-config", single)
        cfg_edit(d, lambda c: c.update(num_hidden_layers=1))
        d = case("untied-without-lm-head", single)
        rewrite_st(os.path.join(d, "model.safetensors"), drop=["lm_head.weight"])
        # config.json
        d = case("no-config", single)
        os.remove(os.path.join(d, "config.json"))
        d = case("config-unknown-arch", single)
        cfg_edit(d, lambda c: c.update(architectures=["GPTNeoXForCausalLM"], model_type="gpt_neox"))
        d = case("config-malformed", single)
        open(os.path.join(d, "config.json"), "w").write('{"architectures": ["LlamaForCausalLM"],')
        d = case("config-duplicate-key", single)
        t = open(os.path.join(d, "config.json")).read()
        open(os.path.join(d, "config.json"), "w").write(
            t.replace('"hidden_size": 8,', '"hidden_size": 8,\n  "hidden_size": 16,'))
        d = case("config-bad-type", single)
        cfg_edit(d, lambda c: c.update(num_hidden_layers="2"))
        d = case("config-yarn-rope", single)
        cfg_edit(d, lambda c: c.update(rope_parameters={"rope_type": "yarn", "factor": 4.0,
                                                        "rope_theta": 10000.0,
                                                        "original_max_position_embeddings": 16}))
        # index and shards
        first = {}
        for s in shards:
            with safe_open(os.path.join(sharded, s), framework="pt") as f:
                first[s] = sorted(f.keys())
        d = case("index-missing-from-shard", sharded)
        idx_edit(d, lambda w: w.update({"model.layers.9.ghost.weight": shards[0]}))
        d = case("index-not-listed", sharded)
        victim = first[shards[1]][0]
        idx_edit(d, lambda w: w.pop(victim))
        d = case("index-wrong-shard", sharded)
        victim2 = first[shards[0]][0]
        idx_edit(d, lambda w: w.update({victim2: shards[1]}))
        d = case("index-two-shards", sharded)
        dup = first[shards[0]][0]
        with safe_open(os.path.join(sharded, shards[0]), framework="pt") as f:
            tensor = f.get_tensor(dup)
        rewrite_st(os.path.join(d, shards[1]), add={dup: tensor})
        d = case("index-missing-shard-file", sharded)
        os.remove(os.path.join(d, shards[2]))
        d = case("index-duplicate-key", sharded)
        t = open(os.path.join(d, idx_name)).read()
        line = '"%s": "%s",' % (victim2, shards[0])
        assert line in t
        open(os.path.join(d, idx_name), "w").write(
            t.replace(line, line + '\n    "%s": "%s",' % (victim2, shards[1]), 1))
        d = case("index-path-escape", sharded)
        idx_edit(d, lambda w: w.update({victim2: "../" + shards[0]}))
        d = case("index-malformed", sharded)
        open(os.path.join(d, idx_name), "w").write('{"weight_map": {"a": ')
        for name in sorted(cases):
            ref.append("models/%s\ttransformers %s: %s" % (name, transformers.__version__,
                                                          transformers_verdict(cases[name])))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    with open(os.path.join(bad, "reference.tsv"), "w") as f:
        f.write("\n".join(ref).replace(bad + "/", "bad/") + "\n")
    differential(out)
