#!/bin/sh
# bench_apply.sh [SRC] [DIR] — rl-apply + rl-rollback of a k = 0.2% step
# (k = ceil(0.002 P), candidates of all layers) on a Llama-2-7B-shaped bf16
# model, next to writing a full copy of the model (what the reference does to
# save a step), for two selections:
#   random  uniform over the candidate elements (nearly every page gets one)
#   diff    the largest |fine-tuned - aligned| of a gradient-shaped perturbation
#           (tests/bench/perturb_model.py): clustered in rows, striped along
#           columns, as a gradient's top-k is
# SRC (default $CACHE/llama2-7b-random, from make_model.py llama2-7b) is the
# "aligned" source, only read; DIR/ft (default DIR $CACHE/restore-bench-7b;
# CACHE is ${XDG_CACHE_HOME:-$HOME/.cache}/realign/models)
# is its perturbed copy, the "fine-tuned" model changed in place and restored.
# BINS="name:dir ..." compares builds (default: this tree's bin/) on the same
# selections, in the same run. Each step is timed by tests/bench/iorun.py: wall,
# CPU, the bytes the kernel accounted to the process, the bytes the disk saw.
# Needs room for one more model in DIR's filesystem; on a shared machine run it
# under a lock its users agree on (it reads two 13.5 GB models); removes DIR/ft
# and the selections at the end unless KEEP=1.
set -eu
CACHE=${CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/realign/models}
SRC=${1:-$CACHE/llama2-7b-random}
D=${2:-$CACHE/restore-bench-7b}
here=$(cd "$(dirname "$0")" && pwd)
BINS=${BINS:-"new:$(cd "$here/../.." && pwd)/bin"}
mkdir -p "$D"
dev=$(basename "$(df --output=source "$D" | tail -1)")
need=$(($(du -sb "$SRC" | cut -f1) + (2 << 30)))
[ -d "$D/ft" ] && need=$((2 << 30))
avail=$(($(df --output=avail -B1 "$D" | tail -1)))
[ "$avail" -ge "$need" ] || { echo "bench_apply: $avail bytes free in $D, $need needed" >&2; exit 4; }
io() { python3 "$here/iorun.py" "$@"; }
# the reference: a full copy of the model (written first, then removed, so the
# bench needs room for one model only)
rm -rf "$D/copy"
sync
echo "load: $(uptime)"
io "full copy (cp -r + sync)" "$dev" sh -c "cp -r '$SRC' '$D/copy' && sync"
echo "model size: $(du -sb "$D/copy" | cut -f1) bytes"
rm -rf "$D/copy"
python3 "$here/perturb_model.py" "$SRC" "$D/ft"
sync
B0=$(echo "$BINS" | cut -d' ' -f1 | cut -d: -f2)
L=$(jq .num_hidden_layers "$SRC/config.json")
for score in random diff; do
	[ -f "$D/sel-$score.rls" ] ||
		io "rl-select --score $score" "$dev" "$B0/rl-select" -m "$D/ft" -t "$SRC" \
			--score "$score" --seed 1 -L "$L" --rate 0.002 -o "$D/sel-$score.rls"
done
for score in random diff; do
	for b in $BINS; do
		name=${b%%:*} B=${b#*:}
		sync
		echo "load: $(uptime)"
		io "$name rl-apply ($score)" "$dev" "$B/rl-apply" -m "$D/ft" -s "$SRC" \
			"$D/sel-$score.rls" >"$D/step.rlj"
		io "$name rl-rollback ($score)" "$dev" "$B/rl-rollback" -m "$D/ft" "$D/step.rlj" \
			>"$D/undo.rlj"
		echo "journal: $(wc -c <"$D/step.rlj") bytes"
	done
done
# the exact rollback left the model in the state the selections were made for
"$B0/rl-apply" -n -q -m "$D/ft" -s "$SRC" "$D/sel-diff.rls"
rm -f "$D/step.rlj" "$D/undo.rlj"
[ "${KEEP:-0}" = 1 ] || rm -rf "$D/ft" "$D"/sel-*.rls
