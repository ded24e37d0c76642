#!/bin/sh
# The GNU parallel recipe of rl-sum(1) and the README, as written, on local
# "hosts" (-S 2/:, parallel's login list with two job slots here): a gradient
# in 4 shards and an evaluation in 3, each merged by rl-sum into the stream of
# one process (the gradient's bytes; the evaluation's records but its
# timing). The ssh and Slurm variants need daemons: make cluster-check.
. "$RL_TESTS/lib.sh"
command -v parallel >/dev/null || fail "GNU parallel is not installed (make deps installs it)"
cd "$T"
E="$F/engine/llama_f32"
ln -s "$E/model" work
cat "$E/dir.jsonl" "$E/grad.jsonl" >p.jsonl # 12 prompts: 6 batches of 2
rl-direction -q -m work -p "$E/dir.jsonl" -L 2 -o d.rls

must_pass rl-grad -q -j 1 -m work -p p.jsonl -d d.rls -b 2 -o one.rls
must_pass parallel --will-cite -S 2/: --halt now,fail=1 \
	"$RL_BIN/rl-grad" -q -j 1 -m work -p p.jsonl -d d.rls -b 2 --shard {}/4 -o g.{}.rls \
	::: 1 2 3 4
must_pass rl-sum -o sum.rls g.1.rls g.2.rls g.3.rls g.4.rls
cmp one.rls sum.rls || fail "parallel's 4 gradient shards: not the bytes of one process"
ok "parallel -S 2/: a gradient in 4 shards = one process"

M="$F/toy/finetuned"
P="$F/toy/world/eval-harmful.jsonl"
must_pass rl-eval -q -m "$M" -p "$P" --max-new-tokens 12 --full-responses --batch-invariant \
	-O e.rls
must_pass parallel --will-cite -S 2/: --halt now,fail=1 \
	"$RL_BIN/rl-eval" -q -t 1 -m "$M" -p "$P" --max-new-tokens 12 --full-responses \
	--shard {}/3 -O e.{}.rls ::: 1 2 3
must_pass rl-sum -o es.rls e.3.rls e.1.rls e.2.rls
for f in e es; do
	rl-dump "$f.rls" | jq -c 'del(.gen_seconds, .tokens_per_s, .checksum)' >"$f.txt"
done
test_cmp e.txt es.txt
ok "parallel -S 2/: an evaluation in 3 shards = one batch-invariant process"
finish
