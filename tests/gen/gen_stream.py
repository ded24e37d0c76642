#!/usr/bin/env python3
"""gen_stream.py — the stream format checked by independent code (PyPI msgpack + xxhash).

1. Has the C writer write tests/fixtures/stream/c-sample.rls (build/tests/test_stream
   --write-fixtures), then decodes it with Python's msgpack and checks every envelope rule of
   rl-stream(5) itself: header first with its six keys in order, "t" first in every record,
   string keys, tensor chunks consecutive and consistent, the end record canonical with the
   right record count and an XXH64 (seed 0) equal to xxhash's over every byte before it,
   nothing after it.
2. Writes tests/fixtures/stream/py-sample.rls with msgpack.packb and xxhash alone: an
   encoder that shares no code with lib/store/stream_*.c, which test_stream reads back.
3. For both streams writes what rl-dump must print (<name>.dump.jsonl, <name>.full.jsonl,
   <name>.stats.json), rendered here from the Python decoding by the rules of rl-dump(1);
   tests/cli/t0200-rl-dump.sh compares rl-dump's output with them.

Run by `make fixtures` (tests/gen/all.sh); needs `pip install msgpack xxhash`.
"""
import math
import os
import struct
import subprocess
import sys

import msgpack
import xxhash

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "tests", "fixtures", "stream")

DTYPES = {  # name: (size, struct format or None for raw bytes, kind)
    "BOOL": (1, "B", "u"), "U8": (1, "B", "u"), "I8": (1, "b", "i"),
    "F8_E5M2": (1, None, "raw"), "F8_E4M3": (1, None, "raw"),
    "I16": (2, "h", "i"), "U16": (2, "H", "u"), "F16": (2, "e", "f"), "BF16": (2, "bf16", "f"),
    "I32": (4, "i", "i"), "U32": (4, "I", "u"), "F32": (4, "f", "f"), "F64": (8, "d", "f"),
    "I64": (8, "q", "i"), "U64": (8, "Q", "u"),
}
HEADER_KEYS = ["t", "magic", "version", "kind", "tool", "tool_version"]


def fail(msg):
    sys.exit("gen_stream.py: " + msg)


# ---------------------------------------------------------------- decoding and checking

def decode(raw, name):
    """Splits raw into (record, offset, size) triples and checks the envelope."""
    up = msgpack.Unpacker(raw=False, unicode_errors="surrogateescape", strict_map_key=True,
                          use_list=True, max_buffer_size=len(raw) + 1)
    up.feed(raw)
    recs, off = [], 0
    for obj in up:
        end = up.tell()
        recs.append((obj, off, end - off))
        off = end
    if off != len(raw):
        fail(f"{name}: {len(raw) - off} undecoded bytes")
    if len(recs) < 2:
        fail(f"{name}: fewer than two records")
    for rec, o, _ in recs:
        if not isinstance(rec, dict) or not rec or next(iter(rec)) != "t":
            fail(f"{name}: record at byte {o} is not a map starting with 't'")
    head, endrec = recs[0][0], recs[-1][0]
    if list(head)[:6] != HEADER_KEYS or head["t"] != "header" or head["magic"] != "realign" \
            or head["version"] != 1:
        fail(f"{name}: bad header {list(head)[:6]}")
    if list(endrec) != ["t", "records", "checksum"] or endrec["t"] != "end":
        fail(f"{name}: bad end record {endrec}")
    data = recs[1:-1]
    if any(r["t"] in ("header", "end") for r, _, _ in data):
        fail(f"{name}: header or end record in the middle")
    end_off = recs[-1][1]
    want = xxhash.xxh64(raw[:end_off], seed=0).intdigest()
    if endrec["checksum"] != want:
        fail(f"{name}: checksum {endrec['checksum']:016x}, xxhash says {want:016x}")
    if endrec["records"] != len(data):
        fail(f"{name}: end counts {endrec['records']}, stream has {len(data)}")
    canon = msgpack.packb({"t": "end", "records": len(data), "checksum": want})
    if raw[end_off:] != canon:
        fail(f"{name}: end record not canonical")
    # tensor chunks: consistent, consecutive, covering each tensor exactly
    cur = None
    for r, o, _ in data:
        if r["t"] != "tensor":
            if cur:
                fail(f"{name}: record at {o} inside tensor {cur[0]}")
            continue
        size = DTYPES[r["dtype"]][0]
        numel = math.prod(r["shape"])
        key = (r["name"], r["dtype"], tuple(r["shape"]))
        expect = cur[1] if cur and cur[0] == key else 0
        if cur and cur[0] != key:
            fail(f"{name}: tensor {key} starts inside {cur[0]}")
        if r["offset"] != expect or r["offset"] + r["count"] > numel or \
                len(r["data"]) != r["count"] * size or r["count"] * size > 16 << 20:
            fail(f"{name}: bad chunk at byte {o}")
        nxt = r["offset"] + r["count"]
        cur = (key, nxt) if nxt < numel else None
    if cur:
        fail(f"{name}: ends inside tensor {cur[0]}")
    return recs


# ---------------------------------------------------------------- rendering (rl-dump(1))

def jstr(s):
    if isinstance(s, str):  # surrogate-escaped invalid bytes back to bytes, then U+FFFD
        s = s.encode("utf-8", "surrogateescape")
    s = s.decode("utf-8", "replace")
    out = ['"']
    for ch in s:
        c = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in "\b\f\n\r\t":
            out.append({"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
        elif c < 0x20:
            out.append("\\u%04x" % c)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def nonfinite(v):
    if math.isnan(v):
        return '"NaN"'
    return '"Infinity"' if v > 0 else '"-Infinity"'


def jfloat(v):
    if not math.isfinite(v):
        return nonfinite(v)
    for p in (15, 16, 17):
        s = "%.*g" % (p, v)
        if float(s) == v:
            return s
    return s


def jprec(v, p):
    return nonfinite(v) if not math.isfinite(v) else "%.*g" % (p, v)


def jbin(b, full):
    hexs = b.hex() if full else b[:16].hex()
    return '{"bin":%d,"%s":"%s"}' % (len(b), "hex" if full else "head", hexs)


def jval(v, full):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return jfloat(v)
    if isinstance(v, str):
        return jstr(v)
    if isinstance(v, bytes):
        return jbin(v, full)
    if isinstance(v, list):
        return "[" + ",".join(jval(x, full) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(jstr(k) + ":" + jval(x, full) for k, x in v.items()) + "}"
    fail(f"unexpected value {v!r}")


def elements(dtype, data):
    size, fmt, _ = DTYPES[dtype]
    n = len(data) // size
    if fmt == "bf16":
        return [struct.unpack("<f", struct.pack("<I", h << 16))[0]
                for h in struct.unpack("<%dH" % n, data)]
    return list(struct.unpack("<%d%s" % (n, fmt), data))


def jchunk(r, full):
    dtype = r["dtype"]
    kind = DTYPES[dtype][2]
    if kind == "raw":
        return jbin(r["data"], full)
    vals = elements(dtype, r["data"])
    p = 17 if dtype == "F64" else 9
    fmt = (lambda v: jprec(v, p)) if kind == "f" else str
    if full:
        return "[" + ",".join(fmt(v) for v in vals) + "]"
    if kind == "f":
        fin = [v for v in vals if math.isfinite(v)]
        s = 0.0
        for v in fin:
            s += v
        head = ('{"min":%s,"max":%s,"mean":%s' % (fmt(min(fin)), fmt(max(fin)),
                                                  "%.9g" % (s / len(fin)))
                if fin else '{"min":null,"max":null,"mean":null')
        head += ',"nan":%d,"inf":%d' % (sum(math.isnan(v) for v in vals),
                                         sum(math.isinf(v) for v in vals))
    else:
        s = 0.0
        for v in vals:
            s += float(v)
        head = ('{"min":%d,"max":%d,"mean":%s' % (min(vals), max(vals), "%.9g" % (s / len(vals)))
                if vals else '{"min":null,"max":null,"mean":null')
    return head + ',"first":[' + ",".join(fmt(v) for v in vals[:4]) + "]}"


def jrecord(r, full):
    parts = []
    for k, v in r.items():
        if r["t"] == "tensor" and k == "data":
            s = jchunk(r, full)
        elif r["t"] == "end" and k == "checksum":
            s = '"%016x"' % v
        else:
            s = jval(v, full)
        parts.append(jstr(k) + ":" + s)
    return "{" + ",".join(parts) + "}\n"


def jstats(recs, total):
    types, tensors = {}, 0
    for r, _, size in recs[1:-1]:
        t = types.setdefault(r["t"], [0, 0, 0])
        t[0] += 1
        t[1] += size
        if r["t"] == "tensor":
            t[2] += r["count"]
            tensors += r["offset"] == 0
    body = ",".join('%s:{"records":%d,"bytes":%d,"elements":%d}' % (jstr(k), *v)
                    for k, v in types.items())
    return '{"kind":%s,"records":%d,"bytes":%d,"tensors":%d,"types":{%s}}\n' % (
        jstr(recs[0][0]["kind"]), len(recs) - 2, total, tensors, body)


def render(name):
    path = os.path.join(OUT, name + ".rls")
    with open(path, "rb") as f:
        raw = f.read()
    recs = decode(raw, name)
    for suffix, full in ((".dump.jsonl", False), (".full.jsonl", True)):
        with open(os.path.join(OUT, name + suffix), "w", encoding="utf-8", newline="\n") as f:
            f.write("".join(jrecord(r, full) for r, _, _ in recs))
    with open(os.path.join(OUT, name + ".stats.json"), "w", encoding="utf-8") as f:
        f.write(jstats(recs, len(raw)))
    print(f"  {name}.rls: {len(raw)} bytes, {len(recs) - 2} records, checksum "
          f"{recs[-1][0]['checksum']:016x} (verified with xxhash)")


# ---------------------------------------------------------------- an independent writer

def py_sample():
    """A grad stream: 3 batch records, tensor "a" F32 [3,100] = k*0.25-3 in chunks of 64,
    tensor "b" BF16 [5] = k-2 (test_stream.c checks these values)."""
    recs = [{"t": "header", "magic": "realign", "version": 1, "kind": "grad",
             "tool": "gen_stream.py", "tool_version": "1",
             "model": {"shape_id": "fedcba9876543210", "arch": "Qwen2ForCausalLM",
                       "n_layers": 3, "path": "/models/qwen \u00e9"},
             "layer_end": 2, "batch_size": 8, "n_prompts": 24}]
    for i in range(3):
        recs.append({"t": "batch", "index": i, "n": 8, "loss": -(i + 1) / 8,
                     "cos": (i + 1) / 8})
    a = struct.pack("<300f", *[k * 0.25 - 3 for k in range(300)])
    for off in range(0, 300, 64):
        cnt = min(64, 300 - off)
        recs.append({"t": "tensor", "name": "model.layers.0.self_attn.q_proj.weight",
                     "dtype": "F32", "shape": [3, 100], "offset": off, "count": cnt,
                     "data": a[4 * off:4 * (off + cnt)]})
    b = b"".join(struct.pack("<f", k - 2.0)[2:] for k in range(5))  # exact in bf16: the high half
    recs.append({"t": "tensor", "name": "b", "dtype": "BF16", "shape": [5], "offset": 0,
                 "count": 5, "data": b})
    raw = b"".join(msgpack.packb(r, use_bin_type=True) for r in recs)
    raw += msgpack.packb({"t": "end", "records": len(recs) - 1,
                          "checksum": xxhash.xxh64(raw, seed=0).intdigest()})
    with open(os.path.join(OUT, "py-sample.rls"), "wb") as f:
        f.write(raw)


def main():
    os.makedirs(OUT, exist_ok=True)
    testbin = os.environ.get("RL_TESTBIN", os.path.join(ROOT, "build", "tests"))
    helper = os.path.join(testbin, "test_stream")
    if not os.access(helper, os.X_OK):
        fail(f"{helper} is not built (make {os.path.relpath(helper, ROOT)})")
    subprocess.run([helper, "--write-fixtures", OUT], check=True)
    py_sample()
    render("c-sample")
    render("py-sample")


if __name__ == "__main__":
    main()
