#!/usr/bin/env python3
"""perturb_model.py SRC DST — DST = model SRC (bf16 safetensors shards) with every
element of every candidate tensor (q/k/v/o/gate/up/down of each layer) moved by a few
bf16 ulps, the amounts shaped like a fine-tuning update: |delta_ij| ~ a_i * b_j * |z_ij|,
a and b log-normal per row and per column (an update is a sum of outer products of
output gradients and layer inputs, whose few large rows and columns dominate), z normal
(its sign is the delta's). So, with SRC as the "aligned" model and DST as the
"fine-tuned" one:
  rl-select --score diff   picks a gradient-like set: clustered in the large rows
                           (runs of adjacent elements) and striped along the large columns;
  rl-select --score random picks a uniform set (every candidate element differs).
Other tensors are copied unchanged. Deterministic (seeded by tensor name); streams
row blocks (< 1 GB RAM); writes DST once. Rerunnable: skips when DST/.perturbed exists."""
import json, os, shutil, struct, sys, zlib
import numpy as np

src, dst = sys.argv[1], sys.argv[2]
if os.path.exists(os.path.join(dst, ".perturbed")):
    print("exists")
    sys.exit(0)
os.makedirs(dst, exist_ok=True)
CAND = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
BLOCK = 8 << 20  # elements per block


def perturb(bits, a, b, rng):
    """bits: (r, c) uint16 bf16 patterns; a (r,), b (c,) scales -> new patterns."""
    z = rng.standard_normal(bits.shape, dtype=np.float32)
    d = 1 + np.minimum(np.floor(0.5 * np.abs(z) * a[:, None] * b[None, :]), 126).astype(np.int32)
    mag = (bits & 0x7FFF).astype(np.int32)
    mag = np.clip(mag + np.where(z < 0, -d, d), 1, 0x7F7F)
    return ((bits & 0x8000) | mag).astype(np.uint16)


for fn in sorted(os.listdir(src)):
    sp, dp = os.path.join(src, fn), os.path.join(dst, fn)
    if not fn.endswith(".safetensors"):
        if os.path.isfile(sp):
            shutil.copyfile(sp, dp)
        continue
    with open(sp, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
    base = 8 + n
    m = np.memmap(sp, dtype=np.uint8, mode="r")
    ts = sorted((v["data_offsets"][0], v["data_offsets"][1], k, v) for k, v in hdr.items()
                if k != "__metadata__")
    with open(dp + ".tmp", "wb") as out:
        out.write(m[:base].tobytes())
        pos = base
        for lo, hi, name, v in ts:
            lo += base
            hi += base
            if lo > pos:
                out.write(m[pos:lo].tobytes())
            parts = name.split(".")
            if v["dtype"] == "BF16" and len(v["shape"]) == 2 and len(parts) > 3 and parts[-2] in CAND:
                rows, cols = v["shape"]
                rng = np.random.default_rng(zlib.crc32(name.encode()))
                a = rng.lognormal(0.0, 1.0, rows).astype(np.float32)
                b = rng.lognormal(0.0, 1.0, cols).astype(np.float32)
                t = m[lo:hi].view(np.uint16).reshape(rows, cols)
                step = max(1, BLOCK // cols)
                for r in range(0, rows, step):
                    out.write(perturb(t[r:r + step], a[r:r + step], b, rng).tobytes())
            else:
                for c in range(lo, hi, 1 << 26):
                    out.write(m[c:min(hi, c + (1 << 26))].tobytes())
            pos = hi
        if pos < len(m):
            out.write(m[pos:].tobytes())
    os.rename(dp + ".tmp", dp)
    print(fn, flush=True)
open(os.path.join(dst, ".perturbed"), "w").write(src + "\n")
print("ok")
