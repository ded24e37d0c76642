#!/bin/sh
# Ablation on the toy world: restore rate and steps, and the selection score
# (grad: the method; diff: the largest |W - A|; random), at equal budgets.
# Prints one line per (score, rate, step): harmful rate, task score, benign
# answered, weights restored. Uses the demo's cached models (runs the demo's
# world and training first if they are missing).
#
#   sh examples/ablate.sh [RATES] [SCORES]      (defaults below;
#                                               RL_ABLATE_LAYERS="1 2 3" sweeps L)
#   RL_BIN=bin RL_DEMO_OUT=out/demo sh examples/ablate.sh "0.001 0.002" "grad random"
#
# Every run uses --no-rollback and --metric-drop 0.999, so all 20 steps run
# and are evaluated: this measures the selection itself, not the procedure's
# choice of a step (rl-recover's defaults apply that on top).
set -eu
LC_ALL=C
export LC_ALL
here=$(cd "$(dirname "$0")" && pwd)
# The tools: RL_BIN, else the repository's bin/.
PATH="${RL_BIN:-$here/../bin}:$PATH"
OPENBLAS_NUM_THREADS=1 # the toy model's matrices are too small for BLAS threads
export PATH OPENBLAS_NUM_THREADS
OUT=${RL_DEMO_OUT:-out/demo}
RATES=${1:-"0.0005 0.001 0.002 0.005"}
SCORES=${2:-"grad diff random"}
STEPS=${RL_ABLATE_STEPS:-20}
LAYERS=${RL_ABLATE_LAYERS:-2} # layer_end values (the toy model has 4 layers; the default is 2)
C=$OUT/cache
W=$C/world
if [ ! -f "$C/done" ]; then
	echo "ablate: no cached toy world in $C: building it with the demo first" >&2
	sh "$here/demo.sh" >/dev/null || true
	[ -f "$C/done" ] || { echo "ablate: the demo did not build the world" >&2; exit 4; }
fi
A=$OUT/ablate
mkdir -p "$A"
P=$(rl-info --json "$C/finetuned" | jq -r .P)
out=$A/ablate.tsv
printf 'score\tL\trate\tstep\trestored\tpct_P\tharmful\ttask\tbenign\tseconds\n' >"$out"
for L in $LAYERS; do
for score in $SCORES; do
	for rate in $RATES; do
		d=$A/$score-L$L-$rate
		rm -rf "$d"
		t0=$(date +%s)
		rl-recover -q -a "$C/aligned" -f "$C/finetuned" -o "$d" \
			-H "$W/recovery.jsonl" -B "$W/benign.jsonl" \
			--eval-harmful "$W/eval-harmful.jsonl" --eval-task "$W/eval-task.jsonl" \
			--eval-benign "$W/eval-benign.jsonl" --max-new-tokens 40 -j 1 \
			--rate "$rate" --score "$score" --steps "$STEPS" --no-rollback -L "$L" \
			--metric-drop 0.999 --save-every 5 ||
			{ echo "ablate: rl-recover failed for $score $rate (see $d/work/log)" >&2; exit 4; }
		secs=$(($(date +%s) - t0))
		awk -F'\t' -v s="$score" -v L="$L" -v r="$rate" -v p="$P" -v t="$secs" \
			'NR > 1 && $1 > 0 && $5 != "-" { printf "%s\t%s\t%s\t%s\t%s\t%.2f\t%s\t%s\t%s\t%s\n", s, L, r, $1, $3, 100 * $3 / p, $5, $6, $9, t }' \
			"$d/steps.tsv" >>"$out"
		echo "ablate: $score L=$L rate $rate done in ${secs}s" >&2
	done
done
done
echo
printf '%-7s %2s %-7s %5s %9s %7s %8s %8s %8s\n' score L rate step restored "% of P" harmful task benign
awk -F'\t' 'NR > 1 { printf "%-7s %2s %-7s %5s %9s %7s %7.1f%% %7.1f%% %7.1f%%\n", $1, $2, $3, $4, $5, $6, 100 * $7, 100 * $8, 100 * $9 }' "$out"
echo
echo "table: $out"
