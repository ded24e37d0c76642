#!/bin/sh
# rl-eval --shard I/N and rl-sum's merge: the merged stream is the unsharded
# run's (rl-eval --batch-invariant), item for item and in its summary, at
# N = 1, 2, 3, 7 and any order of the inputs, on every kernel path this CPU
# can run (RL_CPU_MAX); shards of another run, missing or given twice are
# refused. Batch invariance itself: test_generate and test_wgemm, run here
# again at every lesser CPU level.
. "$RL_TESTS/lib.sh"
M="$F/toy/finetuned" # answers every prompt: long responses
P="$F/toy/world/eval-harmful.jsonl"
cd "$T"
ev() { rl-eval -q -m "$M" -p "$P" --max-new-tokens 20 --full-responses -b 5 "$@"; }
# a stream as JSON lines without its timing (the only fields a merge changes)
plain() {
	rl-dump "$1" | jq -c 'del(.gen_seconds, .tokens_per_s, .checksum)' >"$2" ||
		fail "rl-dump $1"
}

# --- the lesser CPUs' kernel paths: row invariance, batch-invariant tokens ---
levels="none avx2 avx512 avx512_bf16 amx_bf16"
for lv in $levels; do
	RL_CPU_MAX=$lv "$RL_TESTBIN/test_wgemm" >wg.log 2>&1 ||
		fail "RL_CPU_MAX=$lv test_wgemm: $(grep -v '^ok' wg.log | head -5)"
	RL_CPU_MAX=$lv "$RL_TESTBIN/test_generate" >tg.log 2>&1 ||
		fail "RL_CPU_MAX=$lv test_generate: $(grep -v '^ok' tg.log | head -5)"
done
ok "row-invariant kernels and batch-invariant generation at RL_CPU_MAX $levels"

# --- the merge equals the unsharded batch-invariant run ---
for lv in amx_bf16 avx2 none; do
	export RL_CPU_MAX=$lv
	must_pass ev --batch-invariant -O one.rls -o one.jsonl
	plain one.rls one.txt
	[ "$(jq -r 'select(.t == "header") | .batch_invariant' one.txt)" = true ] ||
		fail "the header does not say batch_invariant"
	for N in 1 2 3 7; do
		i=1
		while [ $i -le $N ]; do
			must_pass ev --shard $i/$N -O s$i.rls -o r$i.jsonl
			i=$((i + 1))
		done
		# in reverse order
		set --
		i=$N
		while [ $i -ge 1 ]; do
			set -- "$@" s$i.rls
			i=$((i - 1))
		done
		must_pass rl-sum -o m.rls "$@"
		plain m.rls m.txt
		test_cmp one.txt m.txt
		# the responses saved per shard are the whole run's, in pieces
		cat r*.jsonl | jq -s -c 'sort_by(.id) | .[]' >r.all
		jq -c . one.jsonl >one.all
		test_cmp one.all r.all
		rm -f s*.rls r*.jsonl
	done
	ok "RL_CPU_MAX=$lv: rl-sum of 1, 2, 3, 7 shards = the unsharded batch-invariant run"
done
unset RL_CPU_MAX

# A shard's header: the run's keys, then shard, precision, kernels, blas; its
# summary counts its own items.
must_pass ev --shard 2/3 -O s2.rls --summary-json
[ "$(jq -c '[.n, .new_tokens]' "$T/stdout")" = "[20,400]" ] ||
	fail "shard summary: $(cat "$T/stdout")"
must_pass rl-dump s2.rls
jq -c 'select(.t == "header") | [.kind, .n, .shard, .batch_invariant, .precision]' \
	"$T/stdout" >got
echo '["eval-shard",60,{"index":2,"count":3,"units":60,"first":20,"end":40},true,"bf16"]' >want
test_cmp want got
[ "$(jq -c 'select(.t == "item") | .id' "$T/stdout" | head -n 1)" = 20 ] ||
	fail "shard 2/3 does not start at item 20"
ok "a shard's header and items"

# --- refusals: nothing written ---
must_pass ev --shard 1/3 -O s1.rls
must_pass ev --shard 3/3 -O s3.rls
must_fail 3 rl-sum -o m2.rls s1.rls s3.rls
stderr_has "shard 2 of 3 is missing"
must_fail 3 rl-sum -o m2.rls s1.rls s2.rls s2.rls s3.rls
stderr_has "'s2.rls': shard 2 of 3 again (also 's2.rls')"
must_pass rl-eval -q -m "$M" -p "$P" --max-new-tokens 19 --full-responses -b 5 --shard 2/3 -O o2.rls
must_fail 3 rl-sum -o m2.rls s1.rls o2.rls s3.rls
stderr_has "made with another --max-new-tokens"
must_pass ev --shard 2/3 -O p2.rls --precision fp32
must_fail 3 rl-sum -o m2.rls s1.rls p2.rls s3.rls
stderr_has "made with another --precision"
must_pass env RL_CPU_MAX=none rl-eval -q -m "$M" -p "$P" --max-new-tokens 20 --full-responses \
	-b 5 --shard 2/3 -O k2.rls
if ! cmp -s s2.rls k2.rls; then
	must_fail 3 rl-sum -o m2.rls s1.rls k2.rls s3.rls
	stderr_has "made with other matrix kernels"
fi
# the model's weights changed between the shards (its state id)
cp -r "$M" mx
rl-eval -q -m mx -p "$P" --max-new-tokens 20 --full-responses -b 5 --shard 1/2 -O x1.rls ||
	fail "shard 1/2 of mx"
touch -d '2001-01-01' mx/model.safetensors
must_pass rl-eval -q -m mx -p "$P" --max-new-tokens 20 --full-responses -b 5 --shard 2/2 -O x2.rls
must_fail 3 rl-sum -o m2.rls x1.rls x2.rls
stderr_has "made from another state of the model (its weights changed, or a copy of it"
# options outside the header: another template rendering, other items
must_pass ev --shard 2/3 --raw -O w2.rls
must_fail 3 rl-sum -o m2.rls s1.rls w2.rls s3.rls
stderr_has "made with other options"
sed 's/bomb/lamp/' "$P" >pp.jsonl
cp "$P" pq.jsonl
rl-eval -q -m "$M" -p pq.jsonl --max-new-tokens 20 --full-responses -b 5 --shard 1/2 -O q1.rls ||
	fail "shard 1/2 of pq.jsonl"
cp pp.jsonl pq.jsonl
must_pass rl-eval -q -m "$M" -p pq.jsonl --max-new-tokens 20 --full-responses -b 5 --shard 2/2 \
	-O q2.rls
must_fail 3 rl-sum -o m2.rls q1.rls q2.rls
stderr_has "made from other items"
must_fail 2 rl-sum --add s1.rls -o m2.rls s1.rls s2.rls s3.rls
stderr_has "--add goes with gradient shards, not evaluations"
must_fail 3 rl-sum -o m2.rls one.rls
stderr_has "'one.rls': an eval stream, not a shard"
[ ! -e m2.rls ] || fail "a refused merge wrote its output"
must_fail 2 ev --shard 4/3 -O x.rls
must_fail 2 ev --shard 1/3 --summary-json
ok "shards of other runs, missing, twice, or a whole stream: refused"

# --resume in a shard: its log holds run-wide ids; another shard's log is refused
must_pass ev --shard 2/3 -O s2.rls -o r2.jsonl
head -n 5 r2.jsonl >rr.jsonl.partial
must_pass ev --shard 2/3 -O s2r.rls -o rr.jsonl --resume
plain s2.rls s2.txt
plain s2r.rls s2r.txt
test_cmp s2.txt s2r.txt
test_cmp r2.jsonl rr.jsonl
must_pass ev --shard 1/3 -O /dev/null -o r1.jsonl
head -n 3 r1.jsonl >rx.jsonl.partial
must_fail 3 ev --shard 2/3 -O x.rls -o rx.jsonl --resume
stderr_has "item 0 is not among this run's items 20..39 (the log belongs to another run or shard)"
ok "--resume within a shard; another shard's log refused"

# Judging alone shards too (--responses), with a metric
jq -c '{prompt: .prompt, response: .response}' one.jsonl >resp.jsonl
jq -c '{prompt: .prompt, response: "sorry"}' one.jsonl >refs.jsonl
for i in 1 2; do
	must_pass rl-eval -q --responses resp.jsonl -p refs.jsonl --metric contains --shard $i/2 \
		-O j$i.rls
done
must_pass rl-eval -q --responses resp.jsonl -p refs.jsonl --metric contains -O j.rls
must_pass rl-sum -o jm.rls j2.rls j1.rls
plain j.rls j.txt
plain jm.rls jm.txt
test_cmp j.txt jm.txt
ok "judged responses in shards: the merge is the whole run's"
finish
