#!/usr/bin/env python3
"""Fixtures for lib/store/gguf.c and gguf_quant.c, made with llama.cpp's own Python
package `gguf` (pip install gguf numpy) as the truth.

tests/fixtures/gguf/
  quant.gguf, quant/<T>.f32   GGUF v3 (gguf-py's writer) with one tensor per type realign
                              dequantizes, named after the type, filled with random block
                              bytes; the f16 scale fields of the first blocks are set to
                              extreme values (zeros, subnormals, the largest finite, inf,
                              quiet and signalling NaN), the rest stay random. <T>.f32 is
                              gguf.quants.dequantize of the same bytes, raw little-endian
                              f32: the reader must match it bit for bit. Also "shape3", an
                              F32 tensor of numpy shape (2, 3, 32): ne = [32, 3, 2].
  v2.gguf, v2/<T>.f32         the same kind of file written as GGUF v2 (v2 and v3 differ
                              only in the version field) with general.alignment = 64.
  split-0000i-of-00003.gguf,  one model written by gguf-py's writer in 3 parts
  split/<name>.f32            (split_max_tensors=2: split.no, split.count,
                              split.tensors.count), with the expected values per tensor.
  meta.gguf, meta.json        every metadata value type, arrays of each, nested arrays,
                              special floats, UTF-8 and control characters, plus two
                              tensors; meta.json is the dump test_gguf.c must produce,
                              built from the values given to the writer (not read back).
  meta-edge.gguf, .json       what gguf-py's writer will not write but the format allows
                              (empty string, empty arrays, a string holding non-UTF-8
                              bytes is left out: JSON cannot carry it), alignment 1,
                              tensor infos out of offset order, no padding after the
                              last tensor; made by the serializer below.
  types.tsv                   gguf-py's GGML_QUANT_SIZES: id, name, block size, type size.
  unsupported.gguf            a valid file with an IQ2_XXS tensor: opens, but its
                              dequantization is refused by name.
  bad/*.gguf, bad/golden.tsv  malformed files, one per rule, and truncations of a good
                              file inside every field it has; golden.tsv holds each
                              file's expected one-line message ("<file>\\t<message>").
                              The messages are written here from the file layout this
                              script built (offsets, counts), independently of gguf.c.
"""
import json
import os
import shutil
import struct
import sys
import tempfile

import numpy as np

try:
    import gguf
    from gguf import GGMLQuantizationType as Q, GGUFValueType as V
except ImportError:
    print("gen_gguf.py needs: pip install gguf numpy", file=sys.stderr)
    sys.exit(4)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(os.path.dirname(HERE), "fixtures", "gguf")

TYPES = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1",
         "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]
# byte offsets of the f16 scale fields inside a block (ggml-common.h)
SCALES = {"Q8_0": [0], "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2],
          "Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208]}
SPECIAL_F16 = [0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x3C00, 0x7BFF, 0xFBFF,
               0x7C00, 0xFC00, 0x7E00, 0x7C01, 0xFFFF, 0x7DFF, 0x0200]


def random_blocks(rng, tname, rows, ne0):
    """Raw bytes of a [rows, ne0] tensor of type tname: random, special scales first."""
    qt = Q[tname]
    bs, ts = gguf.GGML_QUANT_SIZES[qt]
    nblocks = rows * ne0 // bs
    raw = rng.integers(0, 256, size=nblocks * ts, dtype=np.uint8)
    if tname == "F16" or tname == "BF16":
        # every 16-bit pattern class: put the specials at the front
        sp = np.array(SPECIAL_F16, dtype=np.uint16).view(np.uint8)
        raw[:len(sp)] = sp
    elif tname in SCALES:
        blocks = raw.reshape(nblocks, ts)
        n = len(SPECIAL_F16)
        for i in range(min(nblocks, n)):  # the rest keep random scales
            for k, off in enumerate(SCALES[tname]):
                h = SPECIAL_F16[(i + 7 * k) % n]
                blocks[i, off:off + 2] = np.array([h], dtype=np.uint16).view(np.uint8)
    return raw.reshape(rows, ne0 // bs * ts), qt


def expected_f32(raw, qt):
    out = gguf.quants.dequantize(raw, qt)
    return np.ascontiguousarray(out, dtype=np.float32)


def write_f32(path, arr):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(arr.astype("<f4").tobytes())


def gen_quant(rng):
    w = gguf.GGUFWriter(os.path.join(OUT, "quant.gguf"), "rltest")
    for t in TYPES:
        bs = gguf.GGML_QUANT_SIZES[Q[t]][0]
        rows = 32 if bs == 256 else 16
        raw, qt = random_blocks(rng, t, rows, 256)
        w.add_tensor(t, raw, raw_dtype=qt)
        write_f32(os.path.join(OUT, "quant", t + ".f32"), expected_f32(raw, qt))
    s3 = rng.standard_normal((2, 3, 32)).astype(np.float32)
    w.add_tensor("shape3", s3)
    write_f32(os.path.join(OUT, "quant", "shape3.f32"), s3)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def gen_v2(rng):
    path = os.path.join(OUT, "v2.gguf")
    w = gguf.GGUFWriter(path, "rltest")
    w.add_custom_alignment(64)
    for t, rows in (("Q4_K", 2), ("Q8_0", 3), ("F16", 1)):
        raw, qt = random_blocks(rng, t, rows, 512)
        w.add_tensor(t, raw, raw_dtype=qt)
        write_f32(os.path.join(OUT, "v2", t + ".f32"), expected_f32(raw, qt))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with open(path, "r+b") as f:  # v2 differs from v3 in the version field only
        f.seek(4)
        f.write(struct.pack("<I", 2))


def gen_split(rng):
    w = gguf.GGUFWriter(os.path.join(OUT, "split.gguf"), "rltest", split_max_tensors=2)
    w.add_string("general.name", "split model")
    w.add_uint32("rltest.block_count", 5)
    for name, t in (("a.Q4_0", "Q4_0"), ("b.Q6_K", "Q6_K"), ("c.F32", "F32"),
                    ("d.BF16", "BF16"), ("e.Q5_1", "Q5_1")):
        raw, qt = random_blocks(rng, t, 2, 256)
        w.add_tensor(name, raw, raw_dtype=qt)
        write_f32(os.path.join(OUT, "split", name + ".f32"), expected_f32(raw, qt))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ---- metadata dump (the format test_gguf.c prints) ----

TNAME = {V.UINT8: "u8", V.INT8: "i8", V.UINT16: "u16", V.INT16: "i16", V.UINT32: "u32",
         V.INT32: "i32", V.FLOAT32: "f32", V.BOOL: "bool", V.STRING: "string",
         V.ARRAY: "array", V.UINT64: "u64", V.INT64: "i64", V.FLOAT64: "f64"}


def scalar_json(vt, v):
    if vt == V.FLOAT32:
        return "0x%08x" % struct.unpack("<I", struct.pack("<f", v))[0]
    if vt == V.FLOAT64:
        return "0x%016x" % struct.unpack("<Q", struct.pack("<d", v))[0]
    if vt == V.BOOL:
        return bool(v)
    if vt == V.STRING:
        return v if isinstance(v, str) else v.decode("utf-8")
    return int(v)


def array_json(et, vals):
    """(elem type name, values) of an array whose elements have type et; nested arrays
    take their element type from their first element, as gguf-py's writer does."""
    if et == V.ARRAY:
        items = []
        for sub in vals:
            st = V.get_type(sub[0]) if sub else V.UINT8
            e, v = array_json(st, sub)
            items.append({"elem": e, "value": v})
        return "array", items
    return TNAME[et], [scalar_json(et, x) for x in vals]


def kv_json(key, vt, val, sub=None):
    if vt == V.ARRAY:
        et = sub if sub is not None else V.get_type(val[0])
        e, v = array_json(et, val)
        return {"key": key, "type": "array", "elem": e, "value": v}
    return {"key": key, "type": TNAME[vt], "value": scalar_json(vt, val)}


def dump(version, alignment, kvs, tensors):
    obj = {"version": version, "alignment": alignment, "kv": kvs, "tensors": tensors}
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"


META_KV = [
    ("general.architecture", V.STRING, "rltest", None),
    ("u8.max", V.UINT8, 255, None),
    ("i8.min", V.INT8, -128, None),
    ("u16.max", V.UINT16, 65535, None),
    ("i16.min", V.INT16, -32768, None),
    ("u32.max", V.UINT32, 4294967295, None),
    ("i32.min", V.INT32, -2147483648, None),
    ("u64.max", V.UINT64, 18446744073709551615, None),
    ("i64.min", V.INT64, -9223372036854775808, None),
    ("f32.half", V.FLOAT32, 1.5, None),
    ("f32.negzero", V.FLOAT32, -0.0, None),
    ("f32.inf", V.FLOAT32, float("inf"), None),
    ("f32.nan", V.FLOAT32, float("nan"), None),
    ("f32.subnormal", V.FLOAT32, 1e-45, None),
    ("f64.pi", V.FLOAT64, 3.141592653589793, None),
    ("f64.tiny", V.FLOAT64, 5e-324, None),
    ("bool.true", V.BOOL, True, None),
    ("bool.false", V.BOOL, False, None),
    ("str.ascii", V.STRING, "hello", None),
    ("str.utf8", V.STRING, "h\u00e9llo w\u00f6rld \u2713 \U0001F600 \u4e2d\u6587", None),
    ("str.controls", V.STRING, "tab\tnl\ncr\rquote\"bs\\ nul\x00 ctl\x01\x1f del\x7f", None),
    ("tokenizer.chat_template", V.STRING,
     "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}</s>{% endfor %}", None),
    ("arr.u8", V.ARRAY, [0, 1, 254, 255], V.UINT8),
    ("arr.i8", V.ARRAY, [-128, -1, 0, 127], V.INT8),
    ("arr.u16", V.ARRAY, [0, 65535], V.UINT16),
    ("arr.i16", V.ARRAY, [-32768, 32767], V.INT16),
    ("arr.u32", V.ARRAY, [0, 4294967295, 7], V.UINT32),
    ("arr.i32", V.ARRAY, [-2147483648, 2147483647, -1], V.INT32),
    ("arr.u64", V.ARRAY, [0, 18446744073709551615], V.UINT64),
    ("arr.i64", V.ARRAY, [-9223372036854775808, 9223372036854775807], V.INT64),
    ("arr.f32", V.ARRAY, [0.0, -0.0, 0.1, float("inf"), float("-inf"), 1e-45, 3.4028234663852886e38],
     V.FLOAT32),
    ("arr.f64", V.ARRAY, [0.1, -2.5, 1e308], V.FLOAT64),
    ("arr.bool", V.ARRAY, [True, False, True], V.BOOL),
    ("tokenizer.ggml.tokens", V.ARRAY,
     ["<unk>", "<s>", "</s>", "<0x0A>", "\u0120hello", "\u2581w\u00f6rld", "\u4e2d", ""], V.STRING),
    ("arr.nested.int", V.ARRAY, [[1, 2], [3], [-4, 5, 6]], None),
    ("arr.nested.str", V.ARRAY, [["a", "b"], ["c"]], None),
    ("arr.nested.deep", V.ARRAY, [[[1], [2, 3]], [[4]]], None),
]


def gen_meta(rng):
    path = os.path.join(OUT, "meta.gguf")
    w = gguf.GGUFWriter(path, "rltest")
    kvs = []
    for key, vt, val, sub in META_KV:
        if key != "general.architecture":
            w.add_key_value(key, val, vt, sub_type=sub)
        kvs.append(kv_json(key, vt, val, sub))
    a = rng.standard_normal((2, 3)).astype(np.float32)
    b, bq = random_blocks(rng, "Q8_0", 4, 64)
    w.add_tensor("weight.f32", a)
    w.add_tensor("weight.q8", b, raw_dtype=bq)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    tensors = [{"name": "weight.f32", "type": "F32", "ne": [3, 2], "offset": 0},
               {"name": "weight.q8", "type": "Q8_0", "ne": [64, 4], "offset": 32}]
    with open(os.path.join(OUT, "meta.json"), "w", encoding="utf-8") as f:
        f.write(dump(3, 32, kvs, tensors))


# ---- a byte-level serializer (for what the writer cannot make, and bad files) ----

class Img:
    """A GGUF image built field by field; every field's (start, size, description)
    is recorded, with the description gguf.c uses in a "truncated" message."""

    def __init__(self):
        self.b = bytearray()
        self.fields = []  # (start, size, what)
        self.checks = []  # (at, kind, args): count pre-checks gguf.c makes at byte `at`

    def put(self, data, what):
        self.fields.append((len(self.b), len(data), what))
        self.b += data

    def u32(self, v, what):
        self.put(struct.pack("<I", v), what)

    def u64(self, v, what):
        self.put(struct.pack("<Q", v), what)

    def string(self, s, len_what, what):
        s = s.encode("utf-8") if isinstance(s, str) else s
        self.u64(len(s), len_what)
        self.put(s, what)

    def value(self, key, vt, v):
        fmt = {V.UINT8: "<B", V.INT8: "<b", V.UINT16: "<H", V.INT16: "<h", V.UINT32: "<I",
               V.INT32: "<i", V.FLOAT32: "<f", V.BOOL: "<B", V.UINT64: "<Q", V.INT64: "<q",
               V.FLOAT64: "<d"}
        if vt == V.STRING:
            self.string(v, "a string length in key '%s'" % key, "a string in key '%s'" % key)
        elif vt == V.ARRAY:
            et, items = v
            self.put(struct.pack("<IQ", et, len(items)),
                     "the element type and count of key '%s'" % key)
            self.checks.append((len(self.b), "array", (key, et, len(items))))
            for it in items:
                self.value(key, et, it)
        else:
            self.put(struct.pack(fmt[vt], v), "the value of key '%s'" % key)

    def header(self, version, ntensors, nkv):
        self.put(b"GGUF", "the magic")
        self.u32(version, "the version")
        self.put(struct.pack("<QQ", ntensors, nkv), "the tensor and metadata counts")
        self.checks.append((len(self.b), "kv", nkv))
        self.ntensors = ntensors

    def kv(self, index, key, vt, v):
        self.string(key, "the length of key %d" % index, "key %d" % index)
        self.u32(vt, "the value type of key '%s'" % key)
        self.value(key, vt, v)

    def end_kvs(self):
        self.checks.append((len(self.b), "tensors", self.ntensors))

    def tensor(self, index, name, ne, ttype, offset):
        self.string(name, "the name length of tensor %d" % index, "the name of tensor %d" % index)
        self.u32(len(ne), "the dimension count of tensor '%s'" % name)
        self.put(b"".join(struct.pack("<Q", d) for d in ne), "the dimensions of tensor '%s'" % name)
        self.put(struct.pack("<IQ", ttype, offset), "the type and offset of tensor '%s'" % name)

    def pad(self, align):
        self.hdr_end = len(self.b)
        while len(self.b) % align:
            self.b += b"\0"
        self.data_start = len(self.b)

    def data(self, raw, align=None):
        self.b += raw
        if align:
            while (len(self.b) - self.data_start) % align:
                self.b += b"\0"


def f32_bytes(vals):
    return np.array(vals, dtype="<f4").tobytes()


def good_image():
    """The file the truncation corpus cuts: 3 kvs, 2 tensors, no final padding."""
    g = Img()
    g.header(3, 2, 3)
    g.kv(0, "general.architecture", V.STRING, "rltest")
    g.kv(1, "rltest.list", V.ARRAY, (V.UINT32, [1, 2, 3]))
    g.kv(2, "rltest.words", V.ARRAY, (V.STRING, ["ab", "c"]))
    g.end_kvs()
    g.tensor(0, "w", [8], Q.F32, 0)
    g.tensor(1, "q", [32], Q.Q8_0, 32)
    g.pad(32)
    g.data(f32_bytes(range(8)), align=32)
    g.data(b"\x00\x3c" + bytes(range(32)))  # Q8_0 block, d = 1.0, no padding after
    g.tensors = [("w", 0, 32), ("q", 32, 34)]
    return g


def truncation_message(name, g, cut):
    """What gguf.c must say about g cut to `cut` bytes (cut < len(g.b))."""
    p = "'%s'" % name
    # the count pre-checks come first at the point they are made
    for at, kind, args in g.checks:
        if at > cut:
            break
        left = cut - at
        if kind == "kv" and args > left // 14:
            return ("%s: metadata count %d is more than the file can hold (%d bytes remain, "
                    "a key-value pair takes at least 14)" % (p, args, left))
        if kind == "tensors" and args > left // 25:
            return ("%s: tensor count %d is more than the file can hold (%d bytes remain, "
                    "a tensor info takes at least 25)" % (p, args, left))
        if kind == "array":
            key, et, count = args
            mn = {V.STRING: 8, V.ARRAY: 12}.get(et) or struct.calcsize(
                {V.UINT32: "<I", V.UINT8: "<B"}[et])
            if count > left // mn:
                return ("%s: key '%s': array of %d %s at byte %d runs past the end of the file "
                        "(%d bytes remain)" % (p, key, count, TNAME[et], at, left))
    for start, size, what in g.fields:
        if start + size > cut:
            return "%s: truncated: %s at byte %d needs %d bytes, %d remain" % (
                p, what, start, size, cut - start)
    if cut < g.data_start:
        return "%s: truncated: the data section starts at byte %d but the file has %d" % (
            p, g.data_start, cut)
    data_len = cut - g.data_start
    for tname, off, nbytes in g.tensors:
        if off + nbytes > data_len:
            return ("%s: truncated: tensor '%s' (%d bytes at data offset %d) runs past the end "
                    "of the file (%d data bytes)" % (p, tname, nbytes, off, data_len))
    raise AssertionError("cut %d does not truncate" % cut)


def simple(version=3, kvs=(), tensors=(("w", [8], Q.F32, 0),), data=None, align=32,
           ntensors=None, nkv=None, tail=b""):
    """A small image: kvs [(key, vt, value)], tensors [(name, ne, type, offset)]."""
    g = Img()
    g.header(version, len(tensors) if ntensors is None else ntensors,
             len(kvs) if nkv is None else nkv)
    for i, (k, vt, v) in enumerate(kvs):
        g.kv(i, k, vt, v)
    for i, (n, ne, t, off) in enumerate(tensors):
        g.tensor(i, n, ne, t, off)
    g.pad(align)
    g.data(f32_bytes(range(8)) if data is None else data)
    g.b += tail
    return bytes(g.b)


LFS = (b"version https://git-lfs.github.com/spec/v1\n"
       b"oid sha256:9ed1d3f2a0c1f9b6c0a1f0c8f6f3a1e7b7d1f2e3a4b5c6d7e8f9a0b1c2d3e4f5\n"
       b"size 13476839424\n")


def nested(depth):
    v = (V.UINT8, [1])
    for _ in range(depth - 1):
        v = (V.ARRAY, [v])
    return v


def bad_cases():
    """(file name, image or None for a split set, message with {f} for the quoted name)."""
    C = []
    add = C.append
    be = b"GGUF" + struct.pack(">IQQ", 3, 0, 0)
    add(("empty.gguf", b"", "{f}: empty file"))
    add(("short.gguf", b"GGU", "{f}: truncated: the magic at byte 0 needs 4 bytes, 3 remain"))
    add(("bad-magic.gguf", b"GGML" + bytes(20),
         '{f}: not a GGUF file (magic 47 47 4d 4c, expected "GGUF")'))
    add(("lfs-pointer.gguf", LFS, "{f} is a Git LFS pointer, not the model: run git lfs pull"))
    add(("version-1.gguf", simple(version=1),
         "{f}: GGUF version 1 is not supported (only 2 and 3)"))
    add(("version-4.gguf", simple(version=4),
         "{f}: GGUF version 4 is not supported (only 2 and 3)"))
    add(("big-endian.gguf", be,
         "{f}: a big-endian GGUF file (version 3 byte-swapped); only little-endian GGUF is "
         "supported"))
    img = simple(nkv=1 << 60, kvs=())
    add(("huge-kv-count.gguf", img,
         "{f}: metadata count %d is more than the file can hold (%d bytes remain, a key-value "
         "pair takes at least 14)" % (1 << 60, len(img) - 24)))
    img = simple(ntensors=1 << 63)
    add(("huge-tensor-count.gguf", img,
         "{f}: tensor count %d is more than the file can hold (%d bytes remain, a tensor info "
         "takes at least 25)" % (1 << 63, len(img) - 24)))
    # a key whose length runs past the end: 1 kv, length 2^40
    img = b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 1 << 40) + b"general.name" + bytes(8)
    add(("key-length-past-eof.gguf", img,
         "{f}: truncated: key 0 at byte 32 needs %d bytes, %d remain" % (1 << 40, len(img) - 32)))
    img = (b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 4) + b"name" + struct.pack("<IQ", V.STRING, 1 << 62)
           + b"abc")
    add(("string-length-past-eof.gguf", img,
         "{f}: truncated: a string in key 'name' at byte 48 needs %d bytes, 3 remain" % (1 << 62)))
    img = (b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 3) + b"arr"
           + struct.pack("<IIQ", V.ARRAY, V.UINT32, 1 << 62) + bytes(16))
    add(("array-count-past-eof.gguf", img,
         "{f}: key 'arr': array of %d u32 at byte 51 runs past the end of the file (16 bytes "
         "remain)" % (1 << 62)))
    img = (b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 3) + b"arr"
           + struct.pack("<IIQ", V.ARRAY, V.STRING, 3) + struct.pack("<Q", 1) + b"a" + bytes(8))
    add(("string-array-count-past-eof.gguf", img,
         "{f}: key 'arr': array of 3 string at byte 51 runs past the end of the file (17 bytes "
         "remain)"))
    add(("unknown-value-type.gguf", b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 1) + b"k" + struct.pack("<I", 13) + bytes(16),
         "{f}: key 'k': unknown value type 13"))
    add(("unknown-array-type.gguf",
         b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 1) + b"k" + struct.pack("<IIQ", V.ARRAY, 99, 1)
         + bytes(16), "{f}: key 'k': array of unknown value type 99"))
    add(("nesting-too-deep.gguf", simple(kvs=[("deep", V.ARRAY, nested(9))]),
         "{f}: key 'deep': arrays nested more than 8 deep"))
    add(("bool-2.gguf", simple(kvs=[("flag", V.BOOL, 2)]),
         "{f}: key 'flag': bool value 2 at byte 40 (must be 0 or 1)"))
    add(("bool-array-2.gguf", simple(kvs=[("flags", V.ARRAY, (V.BOOL, [1, 0, 7]))]),
         "{f}: key 'flags': bool value 7 at byte 55 (must be 0 or 1)"))
    add(("empty-key.gguf", simple(kvs=[("", V.UINT8, 1)]), "{f}: key 0 is empty"))
    add(("nul-in-key.gguf", simple(kvs=[("ok", V.UINT8, 1), ("a\0b", V.UINT8, 1)]),
         "{f}: key 1 holds a NUL byte"))
    add(("key-not-utf8.gguf", simple(kvs=[(b"k\xff", V.UINT8, 1)]),
         "{f}: key 0 is not valid UTF-8"))
    add(("key-overlong-utf8.gguf", simple(kvs=[(b"k\xc0\xaf", V.UINT8, 1)]),
         "{f}: key 0 is not valid UTF-8"))
    add(("duplicate-key.gguf",
         simple(kvs=[("general.name", V.STRING, "a"), ("x", V.UINT8, 1),
                     ("general.name", V.STRING, "b")]),
         "{f}: duplicate key 'general.name'"))
    add(("alignment-not-power-of-2.gguf",
         simple(kvs=[("general.alignment", V.UINT32, 48)], align=48),
         "{f}: general.alignment 48 is not a power of two"))
    add(("alignment-zero.gguf", simple(kvs=[("general.alignment", V.UINT32, 0)]),
         "{f}: general.alignment 0 is not a power of two"))
    add(("alignment-u64.gguf", simple(kvs=[("general.alignment", V.UINT64, 32)]),
         "{f}: key 'general.alignment' is a u64, expected u32"))
    add(("empty-tensor-name.gguf", simple(tensors=[("", [8], Q.F32, 0)]),
         "{f}: tensor name 0 is empty"))
    add(("nul-in-tensor-name.gguf", simple(tensors=[("w\0x", [8], Q.F32, 0)]),
         "{f}: tensor name 0 holds a NUL byte"))
    add(("tensor-name-not-utf8.gguf", simple(tensors=[(b"\xe2\x82", [8], Q.F32, 0)]),
         "{f}: tensor name 0 is not valid UTF-8"))
    add(("duplicate-tensor-name.gguf",
         simple(tensors=[("w", [4], Q.F32, 0), ("w", [4], Q.F32, 32)],
                data=f32_bytes(range(4)) + bytes(16) + f32_bytes(range(4))),
         "{f}: duplicate tensor name 'w'"))
    add(("five-dims.gguf", simple(tensors=[("w", [8, 1, 1, 1, 1], Q.F32, 0)]),
         "{f}: tensor 'w': 5 dimensions (at most 4)"))
    add(("zero-dim.gguf", simple(tensors=[("w", [8, 0], Q.F32, 0)]),
         "{f}: tensor 'w': dimension 1 of [8, 0] is 0"))
    add(("dims-overflow.gguf", simple(tensors=[("w", [1 << 32, 1 << 32], Q.F32, 0)]),
         "{f}: tensor 'w': [4294967296, 4294967296] elements overflow 63 bits"))
    add(("bytes-overflow.gguf", simple(tensors=[("w", [1 << 62], Q.F32, 0)]),
         "{f}: tensor 'w': F32 [4611686018427387904]: byte size overflows 63 bits"))
    add(("unknown-ggml-type.gguf", simple(tensors=[("w", [8], 99, 0)]),
         "{f}: tensor 'w': unknown ggml type 99"))
    add(("retired-ggml-type.gguf", simple(tensors=[("w", [32], 4, 0)]),
         "{f}: tensor 'w': unknown ggml type 4"))
    add(("not-whole-blocks.gguf", simple(tensors=[("w", [32, 8], Q.Q4_K, 0)]),
         "{f}: tensor 'w': Q4_K [32, 8]: ne[0] 32 is not a multiple of the block size 256"))
    add(("misaligned-offset.gguf",
         simple(tensors=[("a", [1], Q.F32, 0), ("b", [7], Q.F32, 4)]),
         "{f}: tensor 'b': offset 4 is not a multiple of the alignment 32"))
    add(("overlap.gguf",
         simple(tensors=[("a", [16], Q.F32, 0), ("b", [8], Q.F32, 32)],
                data=f32_bytes(range(16))),
         "{f}: tensor 'b': offset 32 overlaps tensor 'a' (data bytes 0 to 64)"))
    add(("size-mismatch.gguf",
         simple(tensors=[("a", [4], Q.F32, 0), ("b", [12], Q.F32, 32)],
                data=f32_bytes(range(4)) + bytes(16) + f32_bytes(range(8))),
         "{f}: truncated: tensor 'b' (48 bytes at data offset 32) runs past the end of the "
         "file (64 data bytes)"))
    add(("gap.gguf",
         simple(tensors=[("a", [8], Q.F32, 0), ("b", [8], Q.F32, 64)],
                data=f32_bytes(range(8)) * 3),
         "{f}: tensor 'b': offset 64 leaves a gap after tensor 'a' (expected 32)"))
    add(("not-from-zero.gguf", simple(tensors=[("a", [8], Q.F32, 32)], data=bytes(64)),
         "{f}: tensor 'a': offset 32 leaves a gap at the start of the data section (the first "
         "tensor starts at 0)"))
    add(("offset-past-eof.gguf", simple(tensors=[("a", [8], Q.F32, 1 << 62)]),
         "{f}: truncated: tensor 'a' (32 bytes at data offset %d) runs past the end of the file "
         "(32 data bytes)" % (1 << 62)))
    add(("data-truncated.gguf", simple(data=f32_bytes(range(7))),
         "{f}: truncated: tensor 'w' (32 bytes at data offset 0) runs past the end of the file "
         "(28 data bytes)"))
    add(("bytes-after-data.gguf", simple(tail=bytes(40)),
         "{f}: 40 bytes after the last tensor and its padding"))
    add(("no-tensors-trailing.gguf", simple(tensors=(), data=b"", tail=bytes(5)),
         "{f}: 5 bytes after the header of a file with no tensors"))
    return C


def split_part(no, count, tcount, tensors, extra=()):
    kvs = [("split.no", V.UINT16, no), ("split.count", V.UINT16, count),
           ("split.tensors.count", V.INT32, tcount)] + list(extra)
    data = b"".join(f32_bytes(range(8)) for _ in tensors)
    return simple(kvs=kvs, tensors=[(n, [8], Q.F32, 32 * i) for i, n in enumerate(tensors)],
                  data=data)


def bad_split_cases():
    """(files {name: image}, the part to open, message)."""
    S = []
    S.append(({"missing-00001-of-00002.gguf": split_part(0, 2, 2, ["a"])},
              "missing-00001-of-00002.gguf",
              "'missing-00002-of-00002.gguf': No such file or directory"))
    S.append(({"plainname.gguf": split_part(0, 2, 2, ["a"])}, "plainname.gguf",
              "'plainname.gguf': split.count is 2 but the name is not "
              "PREFIX-<part>-of-00002.gguf"))
    S.append(({"countname-00001-of-00003.gguf": split_part(0, 2, 2, ["a"])},
              "countname-00001-of-00003.gguf",
              "'countname-00001-of-00003.gguf': split.count is 2 but the name is not "
              "PREFIX-<part>-of-00002.gguf"))
    S.append(({"badno-00001-of-00002.gguf": split_part(0, 2, 2, ["a"]),
               "badno-00002-of-00002.gguf": split_part(0, 2, 2, ["b"])},
              "badno-00001-of-00002.gguf",
              "'badno-00002-of-00002.gguf': split.no is 0, expected 1 (part 2 of 2)"))
    S.append(({"badcount-00001-of-00002.gguf": split_part(0, 2, 2, ["a"]),
               "badcount-00002-of-00002.gguf": split_part(1, 3, 2, ["b"])},
              "badcount-00001-of-00002.gguf",
              "'badcount-00002-of-00002.gguf': split.count is 3, but "
              "'badcount-00001-of-00002.gguf' says 2"))
    S.append(({"badtotal-00001-of-00002.gguf": split_part(0, 2, 3, ["a"]),
               "badtotal-00002-of-00002.gguf": split_part(1, 2, 3, ["b"])},
              "badtotal-00001-of-00002.gguf",
              "'badtotal-00001-of-00002.gguf': split.tensors.count is 3, but the 2 parts hold "
              "2 tensors"))
    S.append(({"nono-00001-of-00002.gguf": split_part(0, 2, 2, ["a"]),
               "nono-00002-of-00002.gguf": simple(kvs=[("split.count", V.UINT16, 2)])},
              "nono-00001-of-00002.gguf",
              "'nono-00002-of-00002.gguf': no key 'split.no' in a split model"))
    S.append(({"dup-00001-of-00002.gguf": split_part(0, 2, 2, ["a"]),
               "dup-00002-of-00002.gguf": split_part(1, 2, 2, ["a"])},
              "dup-00001-of-00002.gguf",
              "'dup-00002-of-00002.gguf': tensor 'a' is also in 'dup-00001-of-00002.gguf'"))
    S.append(({"strcount.gguf": simple(kvs=[("split.count", V.STRING, "2")])},
              "strcount.gguf",
              "'strcount.gguf': key 'split.count' is a string, expected an unsigned integer"))
    return S


def gen_bad():
    bad = os.path.join(OUT, "bad")
    os.makedirs(bad)
    golden = []
    for name, img, msg in bad_cases():
        with open(os.path.join(bad, name), "wb") as f:
            f.write(img)
        golden.append((name, msg.replace("{f}", "'%s'" % name)))
    for files, open_name, msg in bad_split_cases():
        for n, img in files.items():
            with open(os.path.join(bad, n), "wb") as f:
                f.write(img)
        golden.append((open_name, msg))
    # truncations of a good file: one cut inside every field, then inside the data
    g = good_image()
    with open(os.path.join(bad, "good.gguf"), "wb") as f:
        f.write(g.b)
    cuts = []
    for start, size, what in g.fields:
        cuts.append(start + size // 2)
    cuts += [g.hdr_end, g.data_start, g.data_start + 17, g.data_start + 32 + 33]
    seen = set()
    for cut in cuts:
        if cut in seen or cut == 0:
            continue
        seen.add(cut)
        name = "cut-%04d.gguf" % cut
        with open(os.path.join(bad, name), "wb") as f:
            f.write(g.b[:cut])
        golden.append((name, truncation_message(name, g, cut)))
    with open(os.path.join(bad, "golden.tsv"), "w", encoding="utf-8") as f:
        for name, msg in sorted(golden):
            assert "\t" not in msg and "\n" not in msg
            f.write("%s\t%s\n" % (name, msg))


def gen_edge():
    """Valid files gguf-py's writer does not make; the dump says what they hold."""
    g = Img()
    kvs = [("general.alignment", V.UINT32, 1), ("empty.string", V.STRING, ""),
           ("empty.array", V.ARRAY, (V.UINT32, [])), ("empty.nested", V.ARRAY,
                                                      (V.ARRAY, [(V.STRING, [])]))]
    g.header(2, 2, len(kvs))
    for i, (k, vt, v) in enumerate(kvs):
        g.kv(i, k, vt, v)
    # infos out of offset order; alignment 1: no padding at all
    g.tensor(0, "second", [2], Q.F16, 12)
    g.tensor(1, "first", [3], Q.F32, 0)
    g.pad(1)
    g.data(f32_bytes([1, 2, 3]) + np.array([1.0, -2.0], dtype="<f2").tobytes())
    with open(os.path.join(OUT, "meta-edge.gguf"), "wb") as f:
        f.write(g.b)
    dk = [{"key": "general.alignment", "type": "u32", "value": 1},
          {"key": "empty.string", "type": "string", "value": ""},
          {"key": "empty.array", "type": "array", "elem": "u32", "value": []},
          {"key": "empty.nested", "type": "array", "elem": "array",
           "value": [{"elem": "string", "value": []}]}]
    tensors = [{"name": "second", "type": "F16", "ne": [2], "offset": 12},
               {"name": "first", "type": "F32", "ne": [3], "offset": 0}]
    with open(os.path.join(OUT, "meta-edge.json"), "w", encoding="utf-8") as f:
        f.write(dump(2, 1, dk, tensors))


def gen_unsupported(rng):
    w = gguf.GGUFWriter(os.path.join(OUT, "unsupported.gguf"), "rltest")
    bs, ts = gguf.GGML_QUANT_SIZES[Q.IQ2_XXS]
    w.add_tensor("iq", rng.integers(0, 256, size=(1, ts), dtype=np.uint8), raw_dtype=Q.IQ2_XXS)
    w.add_tensor("ok", np.ones((2,), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def check_with_reader():
    """gguf-py's reader agrees with what was written (a sanity check of this script)."""
    r = gguf.GGUFReader(os.path.join(OUT, "quant.gguf"))
    for t in r.tensors:
        if t.name in TYPES:
            want = np.fromfile(os.path.join(OUT, "quant", t.name + ".f32"), dtype="<f4")
            got = gguf.quants.dequantize(t.data, t.tensor_type).reshape(-1)
            assert want.view(np.uint32).tolist() == got.astype(np.float32).view(
                np.uint32).tolist(), t.name


def gen_types():
    """gguf-py's type table: id, name, block size, bytes per block."""
    with open(os.path.join(OUT, "types.tsv"), "w") as f:
        for qt in sorted(gguf.GGML_QUANT_SIZES, key=int):
            bs, ts = gguf.GGML_QUANT_SIZES[qt]
            f.write("%d\t%s\t%d\t%d\n" % (int(qt), qt.name, bs, ts))


def main():
    if os.path.exists(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    rng = np.random.default_rng(20240601)
    np.seterr(all="ignore")  # NaN and inf scales are part of the point
    gen_types()
    gen_quant(rng)
    gen_v2(rng)
    gen_split(rng)
    gen_meta(rng)
    gen_edge()
    gen_unsupported(rng)
    gen_bad()
    check_with_reader()
    total = 0
    for root, _, files in os.walk(OUT):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    print("gguf fixtures: %d bytes under %s" % (total, OUT))


if __name__ == "__main__":
    main()
