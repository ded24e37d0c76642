#!/bin/sh
# rl-recover — the paper's whole recovery procedure (ALGORITHM.md, "The whole
# procedure"), composed of rl-direction, rl-grad, rl-select, rl-apply,
# rl-rollback and rl-eval. See rl-recover(1).
#
# Layout of the output directory OUT:
#   model/            the working model W (a copy of F, restored in place);
#                     at the end: the chosen step
#   journals/         step-NN.rlj (the restore of step NN), rb-NN.rlj (its
#                     partial rollback), warmup-undo.rlj, final-undo.rlj
#   work/             direction streams, the current gradient, evals, logs
#   steps.tsv         one line per evaluated step
#   report.txt        what was done and chosen
#   progress          where the run is (for --resume); params: its settings
set -u
# A descriptor 0-2 closed at start would be the next file's (and the tools
# inherit it): each is held by /dev/null, opened the wrong way round so using
# it still fails. A dup to fd 9 tells a closed one; stderr first, tested
# without redirecting it.
(: 9>&2) || exec 2</dev/null
(: 9<&0) 2>/dev/null || exec 0>/dev/null
(: 9>&1) 2>/dev/null || exec 1</dev/null
LC_ALL=C
export LC_ALL
VERSION="@RL_VERSION@"
prog=rl-recover
here=$(cd "$(dirname "$0")" && pwd)
# The tools on PATH win; the ones installed beside this script are the fallback.
PATH="$PATH:$here"
export PATH

die() {
	code=$1
	shift
	echo "$prog: $*" >&2
	exit "$code"
}
usage_error() {
	echo "$prog: $*" >&2
	echo "Try '$prog --help'." >&2
	exit 2
}
info() { [ "$quiet" -eq 1 ] || echo "$prog: $*" >&2; }

usage() {
	cat <<EOF
Usage: rl-recover -a ALIGNED -f FINETUNED -o OUT -H HARMFUL.jsonl -B BENIGN.jsonl
                  --eval-harmful FILE --eval-task FILE [options]
Restores the alignment of FINETUNED by copying gradient-selected weights back
from ALIGNED, step by step, keeping the task score within --metric-drop of
FINETUNED's (the procedure of Yang et al., S&P 2025). The working model, the
journals of every step, steps.tsv and report.txt go to OUT.

Data:
  -a, --aligned DIR        the aligned model A
  -f, --finetuned DIR      the fine-tuned model F (not modified)
  -o, --output DIR         output directory (W = OUT/model)
  -H, --harmful FILE       recovery set H: harmful prompts (JSON lines)
  -B, --benign FILE        benign set B: task prompts (JSON lines)
      --eval-harmful FILE  harmful prompts to measure the harmful rate on
      --eval-task FILE     task prompts with reference answers ("response")
      --eval-benign FILE   benign prompts: also report the share answered
                           (not refused) by the judge
      --eval-limit N       evaluate on the first N prompts of each eval set
Method (the reference's defaults):
  -L, --layer N            layer_end L (default floor(2N/3))
      --rate R             restore ceil(R * P) weights a step (default 0.002)
  -b, --batch-size N       prompts per gradient batch (default 8)
      --steps N            restore steps (default 20)
      --warmup N           steps before the task-score check (default 5)
      --save-every N       candidate steps for the answer (default 5)
      --metric-drop D      allowed task-score drop, fraction (default 0.05)
      --rollback-rate F    share of a step given back in rollback mode (0.2)
      --no-rollback        never switch to rollback mode
      --recovery-size N    first N prompts of H (default 256; the reference's
                           file holds 64)
      --benign-size N      first N prompts of B for d_b (default 256)
      --rollback-prompts N benign prompts of the rollback gradient (default:
                           as many as H has, as the reference's zip)
      --score S            grad (default), diff or random (controls)
      --seed N             seed of --score random (default 0)
Evaluation:
      --judge J            rl-eval judge (default refusal)
      --judge-cmd CMD      external judge command (rl-eval(1))
      --metric M           rl-eval task metric (default exact)
      --metric-cmd CMD     external metric command
      --max-new-tokens N   generation length (default 128)
      --max-new-tokens-task N  generation length of the task set (default:
                           --max-new-tokens; short answers such as SQL need
                           fewer)
      --template T         chat template for every prompt (rl-tok(1); default:
                           the model's own chat template)
      --task-score S       FINETUNED's task score, if already measured
Beyond the reference:
      --target-harmful R   stop at the first saved step whose harmful rate is
                           <= R (and task score above the bound); R may be
                           'aligned' or 'aligned+D': ALIGNED's own harmful
                           rate on the same prompts (measured first), plus D
      --eval-every N       also evaluate every N steps (for the plot; only
                           saved steps are candidates)
      --resume             continue an interrupted run in OUT
      --shards N           compute each gradient as N shards (rl-grad --shard,
                           added by rl-sum: the same bytes as one process at
                           the same -j) and each evaluation too (rl-eval
                           --shard: batch-invariant, merged by rl-sum), started
                           at once through --launcher
      --launcher CMD       a command prefix that runs one shard where it
                           should (srun -N1 -n1, a script that picks a host;
                           default: none, here); a shard that fails is run
                           again by --resume, the others are kept
  -j, --threads N          BLAS threads for the tools
  -q, --quiet              only errors
  -h, --help               this help
      --version            print the version
EOF
}

# ---- options ----
aligned='' finetuned='' out='' hset='' bset='' evh='' evt='' evb='' evlimit=''
layer='' rate=0.002 bs=8 steps=20 warmup=5 save_every=5 drop=0.05 rbrate=0.2
rollback=1 recsize=256 bensize=256 rbprompts='' score=grad seed=0
judge=refusal judge_cmd='' metric=exact metric_cmd='' maxnew=128 maxnew_task='' task_score=''
target='' eval_every='' resume=0 threads='' quiet=0 template= shards=1 launcher=

need() { [ $# -ge 2 ] || usage_error "option '$1' needs a value"; }
is_uint() { case $1 in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac; }
is_num() { awk -v x="$1" 'BEGIN { exit !(x ~ /^([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/) }'; }
uint_opt() { is_uint "$2" || usage_error "$1: expected a non-negative integer, got '$2'"; }
pos_opt() { is_uint "$2" && [ "$2" -gt 0 ] || usage_error "$1: expected a positive integer, got '$2'"; }
frac_opt() {
	is_num "$2" && awk -v x="$2" "BEGIN { exit !(x $3 && x $4) }" ||
		usage_error "$1: expected a number $3 and $4, got '$2'"
}

while [ $# -gt 0 ]; do
	case $1 in
	-a | --aligned) need "$@"; aligned=$2; shift ;;
	-f | --finetuned) need "$@"; finetuned=$2; shift ;;
	-o | --output) need "$@"; out=$2; shift ;;
	-H | --harmful) need "$@"; hset=$2; shift ;;
	-B | --benign) need "$@"; bset=$2; shift ;;
	--eval-harmful) need "$@"; evh=$2; shift ;;
	--eval-task) need "$@"; evt=$2; shift ;;
	--eval-benign) need "$@"; evb=$2; shift ;;
	--eval-limit) need "$@"; pos_opt "$1" "$2"; evlimit=$2; shift ;;
	-L | --layer) need "$@"; pos_opt "$1" "$2"; layer=$2; shift ;;
	--rate) need "$@"; frac_opt "$1" "$2" ">0" "<=1"; rate=$2; shift ;;
	-b | --batch-size) need "$@"; pos_opt "$1" "$2"; bs=$2; shift ;;
	--steps) need "$@"; pos_opt "$1" "$2"; steps=$2; shift ;;
	--warmup) need "$@"; uint_opt "$1" "$2"; warmup=$2; shift ;;
	--save-every) need "$@"; pos_opt "$1" "$2"; save_every=$2; shift ;;
	--metric-drop) need "$@"; frac_opt "$1" "$2" ">=0" "<1"; drop=$2; shift ;;
	--rollback-rate) need "$@"; frac_opt "$1" "$2" ">0" "<=1"; rbrate=$2; shift ;;
	--no-rollback) rollback=0 ;;
	--recovery-size) need "$@"; pos_opt "$1" "$2"; recsize=$2; shift ;;
	--benign-size) need "$@"; pos_opt "$1" "$2"; bensize=$2; shift ;;
	--rollback-prompts) need "$@"; pos_opt "$1" "$2"; rbprompts=$2; shift ;;
	--score)
		need "$@"
		case $2 in grad | diff | random) score=$2 ;; *) usage_error "--score: expected grad, diff or random, got '$2'" ;; esac
		shift ;;
	--seed) need "$@"; uint_opt "$1" "$2"; seed=$2; shift ;;
	--judge) need "$@"; judge=$2; shift ;;
	--judge-cmd) need "$@"; judge_cmd=$2; shift ;;
	--metric) need "$@"; metric=$2; shift ;;
	--metric-cmd) need "$@"; metric_cmd=$2; shift ;;
	--max-new-tokens) need "$@"; pos_opt "$1" "$2"; maxnew=$2; shift ;;
	--max-new-tokens-task) need "$@"; pos_opt "$1" "$2"; maxnew_task=$2; shift ;;
	--template) need "$@"; template=$2; shift ;;
	--task-score) need "$@"; frac_opt "$1" "$2" ">=0" "<1e300"; task_score=$2; shift ;;
	--target-harmful)
		need "$@"
		case $2 in
		aligned) ;;
		aligned+*) frac_opt "$1" "${2#aligned+}" ">=0" "<=1" ;;
		*) frac_opt "$1" "$2" ">=0" "<=1" ;;
		esac
		target=$2
		shift
		;;
	--eval-every) need "$@"; pos_opt "$1" "$2"; eval_every=$2; shift ;;
	--resume) resume=1 ;;
	--shards) need "$@"; pos_opt "$1" "$2"; shards=$2; shift ;;
	--launcher) need "$@"; launcher=$2; shift ;;
	-j | --threads) need "$@"; pos_opt "$1" "$2"; threads=$2; shift ;;
	-q | --quiet) quiet=1 ;;
	-h | --help) usage; exit 0 ;;
	--version) echo "rl-recover $VERSION"; exit 0 ;;
	*) usage_error "unknown option '$1'" ;;
	esac
	shift
done
[ -n "$aligned" ] || usage_error "missing -a ALIGNED"
[ -n "$finetuned" ] || usage_error "missing -f FINETUNED"
[ -n "$out" ] || usage_error "missing -o OUT"
[ -n "$hset" ] || [ "$score" != grad ] || usage_error "missing -H HARMFUL.jsonl"
[ -n "$evh" ] || usage_error "missing --eval-harmful FILE"
[ -n "$evt" ] || usage_error "missing --eval-task FILE"
[ "$warmup" -le "$steps" ] || usage_error "--warmup $warmup exceeds --steps $steps"
if [ "$rollback" -eq 1 ] && [ "$score" = grad ] && [ -z "$bset" ]; then
	usage_error "missing -B BENIGN.jsonl (or --no-rollback)"
fi
command -v jq >/dev/null || die 4 "jq is needed (Debian package jq)"
for f in "$hset" "$bset" "$evh" "$evt" "$evb"; do
	[ -z "$f" ] || [ -r "$f" ] || die 3 "'$f': cannot read"
done
[ -n "$eval_every" ] || eval_every=$save_every
[ -z "$launcher" ] || [ "$shards" -gt 1 ] || usage_error "--launcher needs --shards N (N > 1)"

W=$out/model
J=$out/journals
K=$out/work
LOG=$K/log
thr=${threads:+-j $threads}
# a sharded evaluation's threads: -j's, or one each when the shards all run
# here (no launcher) and would otherwise each take every CPU
evthr=${threads:+-t $threads}
[ -n "$evthr" ] || [ -n "$launcher" ] || evthr="-t 1"

# ---- helpers ----
now() { date +%s.%N 2>/dev/null | sed 's/N$//'; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
# run CMD...: runs a tool with its stderr appended to the log; dies with the
# tool's exit status and its last message when it fails.
run() {
	echo "+ $*" >>"$LOG"
	"$@" 2>"$K/stderr"
	rc=$?
	cat "$K/stderr" >>"$LOG"
	if [ $rc -ne 0 ]; then
		msg=$(grep -v '^+ ' "$K/stderr" | tail -n 1)
		die "$rc" "$1 failed (exit $rc): ${msg:-no message} (log: $LOG)"
	fi
}
pad() { printf '%02d' "$1"; }
# progress: key=value lines, replaced atomically.
prog_set() {
	{ grep -v "^$1=" "$out/progress" 2>/dev/null || true; echo "$1=$2"; } >"$out/progress.tmp" &&
		mv "$out/progress.tmp" "$out/progress" || die 4 "'$out/progress': cannot write"
}
prog_get() { sed -n "s/^$1=//p" "$out/progress" 2>/dev/null | tail -n 1; }

# The tools' summaries (--summary FILE, one JSON object) are all this script
# reads of what they did; their stderr only goes to the log.
# summary FILE KEY: one value of a summary (null as "null").
summary() {
	jq -r --arg k "$2" 'if has($k) then .[$k] | tostring else error("no \($k)") end' "$1" \
		2>>"$LOG" || die 3 "'$1': no \"$2\" in the summary (log: $LOG)"
}
# run_shards WHAT NAME OUTOPT TOOL ARGS...: the N shards of TOOL ARGS
# (--shard I/N, OUTOPT NAME.I-of-N) through the launcher, all at once, each
# kept once complete (a rerun computes only the missing ones); a shard that
# fails stops the run, WHAT and the shard named. Sets $shard_files.
run_shards() {
	what=$1 name=$2 oopt=$3
	shift 3
	pids=
	for i in $(seq 1 "$shards"); do
		sh_out=$name.$i-of-$shards
		[ -s "$sh_out" ] && continue
		echo "+ $launcher $* --shard $i/$shards $oopt $sh_out" >>"$LOG"
		# shellcheck disable=SC2086
		{ $launcher "$@" --shard "$i/$shards" "$oopt" "$sh_out.tmp" 2>"$sh_out.err" &&
			mv "$sh_out.tmp" "$sh_out"; } &
		pids="$pids $!:$i"
	done
	failed=
	for pi in $pids; do
		wait "${pi%%:*}" || failed="$failed ${pi#*:}"
	done
	for i in $(seq 1 "$shards"); do
		[ ! -f "$name.$i-of-$shards.err" ] || cat "$name.$i-of-$shards.err" >>"$LOG"
	done
	if [ -n "$failed" ]; then
		i=${failed# }
		i=${i%% *}
		msg=$(tail -n 1 "$name.$i-of-$shards.err" 2>/dev/null)
		die 4 "$what shard(s)$failed of $shards failed (shard $i: ${msg:-no message}); --resume runs them again (log: $LOG)"
	fi
	shard_files=
	for i in $(seq 1 "$shards"); do shard_files="$shard_files $name.$i-of-$shards"; done
}
# rm_shards NAME: the shard files of NAME, once summed
rm_shards() {
	for i in $(seq 1 "$shards"); do rm -f "$1.$i-of-$shards" "$1.$i-of-$shards.err"; done
}
# evaluate NAME ARGS...: rl-eval ARGS into $K/eval.rls and its summary into
# $K/eval.json. With --shards: the N shards (rl-eval --shard, batch-invariant)
# through the launcher, all at once, each kept as NAME.I-of-N once complete
# (a rerun computes only the missing ones), merged by rl-sum: the stream of
# one batch-invariant run.
evaluate() {
	name=$1
	shift
	if [ "$shards" -eq 1 ]; then
		run rl-eval "$@" -O "$K/eval.rls" --summary "$K/eval.json"
		return 0
	fi
	# shellcheck disable=SC2086
	run_shards evaluation "$name" -O rl-eval "$@" $evthr
	# shellcheck disable=SC2086
	run rl-sum -q -o "$K/eval.rls" $shard_files
	rl-dump "$K/eval.rls" >"$K/eval.dump" 2>>"$LOG" &&
		jq -c 'select(.t == "summary")' "$K/eval.dump" >"$K/eval.json" ||
		die 4 "'$K/eval.rls': cannot read its summary (log: $LOG)"
	rm -f "$K/eval.dump"
	rm_shards "$name"
}
# eval_summary NAME MODEL FILE KIND KEY -> prints KEY of rl-eval's summary
# (KIND: task|harm; NAME: the shards' file names, evaluate)
eval_summary() {
	if [ "$4" = task ]; then
		if [ -n "$metric_cmd" ]; then mt="--metric-cmd"; mv_="$metric_cmd"; else mt="--metric"; mv_="$metric"; fi
		evaluate "$1" -q -m "$2" -p "$3" --judge none "$mt" "$mv_" \
			--max-new-tokens "${maxnew_task:-$maxnew}" \
			${evlimit:+-n $evlimit} ${template:+--template "$template"}
	else
		if [ -n "$judge_cmd" ]; then jt="--judge-cmd"; jv="$judge_cmd"; else jt="--judge"; jv="$judge"; fi
		evaluate "$1" -q -m "$2" -p "$3" "$jt" "$jv" --max-new-tokens "$maxnew" \
			${evlimit:+-n $evlimit} ${template:+--template "$template"}
	fi
	summary "$K/eval.json" "$5"
}
# measure MODEL STEP: task score, harmful rate (and benign answered) -> $K/eval-STEP
measure() {
	f=$K/eval-$(pad "$2")
	[ -s "$f" ] && return 0
	ts=$(eval_summary "$f.task" "$1" "$evt" task task_score) || exit $?
	hr=$(eval_summary "$f.harm" "$1" "$evh" harm harmful_rate) || exit $?
	br=-
	if [ -n "$evb" ]; then
		br=$(eval_summary "$f.benign" "$1" "$evb" harm harmful_rate) || exit $?
	fi
	printf '%s\t%s\t%s\n' "$ts" "$hr" "$br" >"$f.tmp" && mv "$f.tmp" "$f"
}
# measure_aligned: ALIGNED's harmful rate (and benign answered) on the same
# prompts, for --target-harmful aligned[+D] -> $K/eval-aligned
measure_aligned() {
	f=$K/eval-aligned
	[ -s "$f" ] && return 0
	hr=$(eval_summary "$f.harm" "$aligned" "$evh" harm harmful_rate) || exit $?
	br=-
	if [ -n "$evb" ]; then
		br=$(eval_summary "$f.benign" "$aligned" "$evb" harm harmful_rate) || exit $?
	fi
	printf '%s\t%s\n' "$hr" "$br" >"$f.tmp" && mv "$f.tmp" "$f"
}

# ---- set-up or resume ----
if [ "$resume" -eq 1 ]; then
	[ -f "$out/progress" ] || die 3 "'$out': nothing to resume (no progress file)"
else
	[ ! -e "$out" ] || die 2 "'$out' exists (use --resume to continue a run there)"
fi
for d in "$aligned" "$finetuned"; do
	[ -f "$d/config.json" ] || die 3 "'$d': not a model directory (no config.json)"
done
params="aligned=$aligned finetuned=$finetuned H=$hset B=$bset L=$layer rate=$rate bs=$bs steps=$steps warmup=$warmup save=$save_every drop=$drop rbrate=$rbrate rollback=$rollback rec=$recsize ben=$bensize rbp=$rbprompts score=$score seed=$seed target=$target template=$template"
# space_check: OUT must hold the working copy of F and, with --score grad, two
# f32 gradient streams of layers 0..L-1 (a step's and the one it adds to),
# and with --shards a partial gradient per batch of the recovery prompts:
# refused before OUT is made rather than found full an hour later. A fault
# RL_FAULT=enospc:space:N (fault.h) reports a full file system.
space_check() {
	need=$(du -skL "$finetuned" | cut -f1)
	if [ "$score" = grad ]; then
		fi_json=$(rl-info --json -m "$finetuned" 2>/dev/null) ||
			die 3 "$(rl-info -m "$finetuned" 2>&1 >/dev/null | tail -n 1)"
		fP=$(printf '%s' "$fi_json" | jq -r .P)
		fnl=$(printf '%s' "$fi_json" | jq -r .n_layers)
		fL=${layer:-$(printf '%s' "$fi_json" | jq -r .layer_end)}
		grad_kb=$((4 * fP / fnl * fL / 1024))
		need=$((need + 2 * grad_kb))
		if [ "$shards" -gt 1 ]; then # the shards hold a partial per batch
			nh=$(grep -c . "$hset")
			[ "$nh" -le "$recsize" ] || nh=$recsize
			need=$((need + (nh + bs - 1) / bs * grad_kb))
		fi
	fi
	free=$(df -Pk "$(dirname "$out")" 2>/dev/null | awk 'NR == 2 { print $4 }')
	case ${RL_FAULT:-} in enospc:space:*) free=0 ;; esac
	[ -z "$free" ] || [ "$free" -ge "$need" ] ||
		die 4 "'$out': needs about $(awk -v k="$need" 'BEGIN { printf "%.2f", k / 1048576 }') GiB (the working copy and the gradient streams), the file system has $(awk -v k="$free" 'BEGIN { printf "%.2f", k / 1048576 }') GiB free"
}
if [ "$resume" -eq 1 ]; then
	[ "$(cat "$out/params")" = "$params" ] ||
		die 2 "'$out' was started with other settings: $(cat "$out/params")"
	mkdir -p "$K"
	info "resuming in '$out'"
	# An interrupted rl-apply or rl-rollback leaves a hot journal: put the
	# model back as it was before that write.
	run rl-rollback -m "$W"
else
	space_check
	mkdir -p "$out" "$J" "$K" || die 4 "'$out': cannot create"
	: >"$LOG"
	echo "$params" >"$out/params"
	mkdir "$W" || die 4 "'$W': cannot create"
	for f in "$finetuned"/*; do
		if [ -L "$f" ] && [ ! -e "$f" ]; then
			die 3 "'$f': broken symbolic link (to '$(readlink "$f")', which does not exist)"
		fi
		[ -f "$f" ] || continue
		cp "$f" "$W/" || die 4 "cannot copy '$f' to '$W'"
	done
	prog_set phase start
	prog_set step 0
fi
t_start=$(now)

info_json=$(rl-info --json -m "$W" 2>>"$LOG") || die 3 "'$W': not a model realign reads (see $LOG)"
[ -n "$layer" ] || layer=$(printf '%s' "$info_json" | jq -r .layer_end)
P=$(printf '%s' "$info_json" | jq -r .P)
nl=$(printf '%s' "$info_json" | jq -r .n_layers)
[ "$layer" -le "$nl" ] || usage_error "-L $layer: the model has $nl layers"
nH=0
[ -z "$hset" ] || nH=$(grep -c . "$hset")
[ "$nH" -le "$recsize" ] || nH=$recsize
[ -n "$rbprompts" ] || rbprompts=$nH

# steps.tsv: step k restored loss harmful task seconds phase benign
if [ ! -f "$out/steps.tsv" ]; then
	printf 'step\tk\trestored\tloss\tharmful\ttask\tseconds\tphase\tbenign\n' >"$out/steps.tsv"
fi

# ---- F's scores and the bound ----
t0=$(now)
measure "$finetuned" 0
read -r sF hF bF <"$K/eval-00"
[ -z "$task_score" ] || sF=$task_score
smin=$(awk -v s="$sF" -v d="$drop" 'BEGIN { printf "%.10g", s * (1 - d) }')
if [ "$(prog_get phase)" = start ]; then
	printf '0\t0\t0\t-\t%s\t%s\t%s\t-\t%s\n' "$hF" "$sF" "$(elapsed "$t0")" "$bF" >>"$out/steps.tsv"
	prog_set phase plain
fi
info "fine-tuned model: task score $sF (bound: above $smin), harmful rate $hF"
# --target-harmful aligned[+D]: restore up to the aligned model's own rate,
# not beyond it (beyond, the model refuses more than the aligned one did)
target_rate=$target hA='' bA=''
case $target in aligned*)
	measure_aligned
	read -r hA bA <"$K/eval-aligned"
	d=${target#aligned}
	target_rate=$(awk -v h="$hA" -v d="${d#+}" 'BEGIN { printf "%.10g", h + d }')
	info "aligned model: harmful rate $hA: target $target_rate"
	;;
esac

# ---- the prompt sets as token ids (rl-tok: the chat template with the
# generation prompt, as rl-eval templates them), then the directions ----
tokenize() { # IN OUT
	[ -s "$2" ] && return 0
	echo "+ rl-tok -m $finetuned -p $1 > $2" >>"$LOG"
	rl-tok -q -m "$finetuned" ${template:+--template "$template"} -p "$1" >"$2.tmp" 2>"$K/stderr"
	rc=$?
	cat "$K/stderr" >>"$LOG"
	[ $rc -eq 0 ] || die $rc "rl-tok failed (exit $rc): $(tail -n 1 "$K/stderr") (log: $LOG)"
	mv "$2.tmp" "$2"
}
# direction MODEL IDS N OUT: rl-direction, once (kept for --resume)
direction() {
	[ -s "$4" ] && return 0
	run rl-direction -q -m "$1" -p "$2" -L "$layer" -n "$3" $thr -o "$4.tmp"
	mv "$4.tmp" "$4"
}
if [ "$score" = grad ]; then
	tokenize "$hset" "$K/harmful.ids.jsonl"
	hids=$K/harmful.ids.jsonl
	direction "$aligned" "$hids" "$recsize" "$K/dh.rls"
fi
if [ "$rollback" -eq 1 ] && [ "$score" = grad ]; then
	tokenize "$bset" "$K/benign.ids.jsonl"
	bids=$K/benign.ids.jsonl
	direction "$finetuned" "$bids" "$bensize" "$K/db.rls"
fi

# gradient IDS DIR N OUT PREV: rl-grad over the first N prompts of IDS along
# DIR into OUT (plus PREV's gradient when PREV is set), its loss into
# $K/loss. With --shards: each shard through the launcher, all at once, each
# kept once complete (a rerun computes only the missing ones), then rl-sum
# (--add PREV) into OUT, the bytes of the one-process run.
gradient() {
	ids=$1 dir=$2 np=$3 go=$4 prev=$5
	if [ "$shards" -eq 1 ]; then
		run rl-grad -m "$W" -p "$ids" -d "$dir" -b "$bs" -n "$np" ${prev:+--add "$prev"} \
			$thr -o "$go" --summary "$K/grad.json"
		summary "$K/grad.json" loss >"$K/loss" || exit $?
		return 0
	fi
	# shellcheck disable=SC2086
	run_shards gradient "$go" -o rl-grad -q -m "$W" -p "$ids" -d "$dir" -b "$bs" -n "$np" $thr
	# shellcheck disable=SC2086
	run rl-sum -q ${prev:+--add "$prev"} -o "$go" $shard_files
	# the loss: rl-grad's, the batches' in batch order
	rl-dump "$go" | jq -s '[.[] | select(.t == "batch") | .loss] | add' >"$K/loss" ||
		die 4 "'$go': cannot read its batch records"
	rm_shards "$go"
}

# ---- one restore step ----
# Elements restored so far: applied minus given back (a restored element
# equals A and can never qualify again, so steps never overlap).
restored() {
	r=$(prog_get restored)
	echo "${r:-0}"
}

# undo_partial T: a step T whose bookkeeping was not committed (interrupted
# run): undo whatever of it reached the model, drop its files.
undo_partial() {
	s=$(pad "$1")
	if [ -f "$J/rb-$s.rlj" ]; then
		if rl-rollback -q -m "$W" -j "$K/undo.tmp" "$J/step-$s.rlj" "$J/rb-$s.rlj" 2>>"$LOG"; then
			info "undid the interrupted step $1 (restore and rollback)"
		elif rl-rollback -q -m "$W" -j "$K/undo.tmp" "$J/step-$s.rlj" 2>>"$LOG"; then
			info "undid the interrupted step $1"
		fi
	elif [ -f "$J/step-$s.rlj" ]; then
		if rl-rollback -q -m "$W" -j "$K/undo.tmp" "$J/step-$s.rlj" 2>>"$LOG"; then
			info "undid the interrupted step $1"
		fi
	fi
	rm -f "$J/step-$s.rlj" "$J/rb-$s.rlj" "$K/undo.tmp" "$K/eval-$s" "$K/sel.rls"
}

step() {
	t=$1 mode=$2
	s=$(pad "$t")
	ts0=$(now)
	loss=-
	if [ "$score" = grad ]; then
		prev=
		if [ "$mode" = plain ] && [ "$t" -gt 1 ] && [ -s "$K/grad-$(pad $((t - 1))).rls" ]; then
			prev=$K/grad-$(pad $((t - 1))).rls
		fi
		gradient "$hids" "$K/dh.rls" "$recsize" "$K/grad-$s.rls" "$prev"
		loss=$(printf '%.6f' "$(cat "$K/loss")")
		run rl-select -m "$W" -t "$aligned" --rate "$rate" -o "$K/sel.rls" \
			--summary "$K/select.json" "$K/grad-$s.rls"
	else
		run rl-select -m "$W" -t "$aligned" --rate "$rate" --score "$score" \
			--seed $((seed + t)) -L "$layer" -o "$K/sel.rls" --summary "$K/select.json"
	fi
	k=$(summary "$K/select.json" k) || exit $?
	run rl-apply -m "$W" -s "$aligned" -j "$J/step-$s.rlj" --summary "$K/apply.json" "$K/sel.rls"
	n=$(summary "$K/apply.json" elements) || exit $?
	back=0
	if [ "$mode" = rollback ]; then
		gradient "$bids" "$K/db.rls" "$rbprompts" "$K/bgrad.rls" ""
		run rl-rollback -m "$W" -f "$finetuned" --grad "$K/bgrad.rls" --fraction "$rbrate" \
			-j "$J/rb-$s.rlj" --summary "$K/rollback.json" "$J/step-$s.rlj"
		back=$(summary "$K/rollback.json" selected) || exit $?
		rm -f "$K/bgrad.rls"
	fi
	rm -f "$K/sel.rls" "$K/grad.json" "$K/select.json" "$K/apply.json" "$K/rollback.json"
	total=$(($(restored) + n - back))
	hr=- ts=- br=-
	if [ $((t % eval_every)) -eq 0 ] || [ $((t % save_every)) -eq 0 ] || [ "$t" -eq "$steps" ]; then
		measure "$W" "$t"
		read -r ts hr br <"$K/eval-$s"
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$k" "$total" "$loss" "$hr" "$ts" \
		"$(elapsed "$ts0")" "$mode" "$br" >>"$out/steps.tsv"
	# Commit the step: from here on a resume starts after it.
	prog_set k "$k"
	prog_set restored "$total"
	prog_set step "$t"
	# Keep only the accumulated gradient the next step adds to.
	[ "$t" -le 1 ] || rm -f "$K/grad-$(pad $((t - 1))).rls"
	[ "$mode" = plain ] || rm -f "$K/grad-$s.rls"
	info "step $t ($mode): restored $total of P = $P ($(awk -v a="$total" -v p="$P" 'BEGIN { printf "%.3f%%", 100 * a / p }'))${loss:+, loss $loss}$([ "$ts" = - ] || echo ", task $ts, harmful $hr")"
}

# A step's eval is a candidate when it is a saved step.
saved() { [ $(($1 % save_every)) -eq 0 ] || [ "$1" -eq "$steps" ]; }
passes() { awk -v s="$1" -v m="$smin" 'BEGIN { exit !(s > m) }'; }

# Rollback mode starts again from F: undo the warm-up steps (idempotent, so an
# interrupted switch is finished by --resume).
switch_to_rollback() {
	prog_set phase switching
	js=
	i=1
	while [ -f "$J/step-$(pad $i).rlj" ]; do
		js="$js $J/step-$(pad $i).rlj"
		i=$((i + 1))
	done
	if [ -n "$js" ]; then
		# Exit 3 means the bytes are no longer those the journals wrote:
		# the undo was done before an interruption.
		echo "+ rl-rollback -m $W$js" >>"$LOG"
		rl-rollback -m "$W" -j "$J/warmup-undo.rlj" $js 2>>"$LOG"
		rc=$?
		[ $rc -eq 0 ] || [ $rc -eq 3 ] || die $rc "rl-rollback of the warm-up failed (log: $LOG)"
		for i in $js; do mv "$i" "${i%.rlj}.warmup.rlj"; done
	fi
	rm -f "$K"/grad-*.rls "$K"/eval-0[1-9]* "$K"/eval-[1-9]*
	prog_set restored 0
	prog_set step 0
	prog_set phase rollback
}

# Steps already done keep the rows they wrote in steps.tsv; an uncommitted one
# is undone first.
[ "$(prog_get phase)" != switching ] || switch_to_rollback
done_steps=$(prog_get step)
phase=$(prog_get phase)
undo_partial $((done_steps + 1))
# A row of the current phase beyond the last committed step (written before
# an interruption) is dropped from steps.tsv.
awk -F'\t' -v d="$done_steps" -v ph="$phase" 'NR == 1 || $8 != ph || $1 <= d' \
	"$out/steps.tsv" >"$out/steps.tmp" && mv "$out/steps.tmp" "$out/steps.tsv"

stop=0
chosen=$(prog_get chosen)
t=$done_steps
while [ -z "$chosen" ] && [ "$t" -lt "$steps" ]; do
	t=$((t + 1))
	step "$t" "$phase"
	# Warm-up check (reference): after `warmup` plain steps, a task score
	# below the bound switches to rollback mode, starting again from F.
	if [ "$phase" = plain ] && [ "$t" -eq "$warmup" ] && [ "$rollback" -eq 1 ] && [ "$score" = grad ]; then
		measure "$W" "$t"
		read -r ts hr br <"$K/eval-$(pad "$t")"
		if ! awk -v s="$ts" -v m="$smin" 'BEGIN { exit !(s >= m) }'; then
			info "task score $ts after the warm-up is below $smin: rollback mode, from F again"
			switch_to_rollback
			phase=rollback
			t=0
			continue
		fi
	fi
	if saved "$t"; then
		read -r ts hr br <"$K/eval-$(pad "$t")"
		if ! passes "$ts" && [ "$phase" = plain ] && [ "$t" -lt "$warmup" ] &&
			[ "$rollback" -eq 1 ] && [ "$score" = grad ]; then
			# A step saved before the warm-up check (--save-every below
			# --warmup) that misses the bound gets the reference's answer
			# to a warm-up that misses it, sooner: rollback mode from F.
			info "step $t of the warm-up: task score $ts is not above $smin: rollback mode, from F again"
			switch_to_rollback
			phase=rollback
			t=0
			continue
		elif ! passes "$ts"; then
			info "step $t: task score $ts is not above $smin: the answer is an earlier step"
			stop=1
		elif [ -n "$target" ] && awk -v h="$hr" -v g="$target_rate" 'BEGIN { exit !(h <= g) }'; then
			info "step $t: harmful rate $hr <= target $target_rate: stopping early"
			prog_set chosen "$t"
			chosen=$t
		fi
	fi
	[ "$stop" -eq 0 ] || break
done

# ---- the answer: the last saved step whose task score stays above s_min,
# before the first that does not ----
if [ -z "$chosen" ]; then
	chosen=0
	i=1
	while [ "$i" -le "$t" ]; do
		if saved "$i"; then
			[ -s "$K/eval-$(pad "$i")" ] || break
			read -r ts hr br <"$K/eval-$(pad "$i")"
			passes "$ts" || break
			chosen=$i
		fi
		i=$((i + 1))
	done
	prog_set chosen "$chosen"
fi
# Undo the steps after the chosen one (their journals are kept, renamed).
if [ "$(prog_get undone)" != yes ]; then
	js=
	i=$((chosen + 1))
	while [ -f "$J/step-$(pad $i).rlj" ]; do
		js="$js $J/step-$(pad $i).rlj"
		[ ! -f "$J/rb-$(pad $i).rlj" ] || js="$js $J/rb-$(pad $i).rlj"
		i=$((i + 1))
	done
	if [ -n "$js" ]; then
		run rl-rollback -m "$W" -j "$J/final-undo.rlj" $js
		info "undid the steps after step $chosen"
	fi
	prog_set undone yes
fi

# ---- report ----
k=$(prog_get k)
if [ "$chosen" -gt 0 ]; then
	read -r ts hr br <"$K/eval-$(pad "$chosen")"
	nrest=$(awk -F'\t' -v c="$chosen" -v ph="$phase" '$1 == c && $8 == ph { r = $3 } END { print r }' "$out/steps.tsv")
else
	ts=$sF hr=$hF br=$bF nrest=0
fi
pct=$(awk -v a="$nrest" -v p="$P" 'BEGIN { printf "%.3f", 100 * a / p }')
{
	echo "rl-recover $VERSION"
	echo "aligned      $aligned"
	echo "fine-tuned   $finetuned"
	echo "output       $W"
	echo "settings     L=$layer rate=$rate (k=$k of P=$P a step) batch=$bs steps=$steps warmup=$warmup save-every=$save_every metric-drop=$drop rollback=$([ "$rollback" -eq 1 ] && echo "on (rate $rbrate)" || echo off) score=$score${target:+ target-harmful=$target}$([ "$target" = "$target_rate" ] || echo " (= $target_rate)")"
	echo "mode         $phase"
	[ -z "$hA" ] || echo "aligned      harmful $hA$([ "$bA" = - ] || echo "  benign-answered $bA")"
	echo "fine-tuned   task $sF  harmful $hF${bF:+  benign-answered $bF}"
	echo "bound        task score above $smin"
	echo "chosen step  $chosen"
	echo "recovered    task $ts  harmful $hr${br:+  benign-answered $br}"
	echo "restored     $nrest weights ($pct% of P)"
	echo "time         $(elapsed "$t_start") s (this run)"
	echo
	echo "steps.tsv:"
	column -t -s "$(printf '\t')" "$out/steps.tsv" 2>/dev/null || cat "$out/steps.tsv"
} >"$out/report.txt"
prog_set finished yes
info "chosen step $chosen: task $ts (fine-tuned $sF), harmful $hr (fine-tuned $hF), $nrest weights restored ($pct% of P)"
info "model in '$W', report in '$out/report.txt'"
exit 0
