#!/bin/sh
# Sharded gradients and directions (issue 17): rl-grad --shard I/N and
# rl-direction --shard I/N, added by rl-sum into exactly the bytes of the
# unsharded run, for N = 1, 2, 3 and 7 (7 > the 6 batches: an empty shard),
# inputs in shuffled orders, shards with other memory budgets than the
# unsharded run (the same -j: OpenBLAS's sums depend on it); every refusal (exit 3 naming the file and
# the reason), and a failed rl-sum leaving no output.
. "$RL_TESTS/lib.sh"
cd "$T"
E="$F/engine/llama_f32"
ln -s "$E/model" work
cat "$E/dir.jsonl" "$E/grad.jsonl" >p.jsonl # 12 prompts: 6 batches of 2
rl-direction -q -m work -p "$E/dir.jsonl" -L 2 -o d.rls

# the inputs in an order of their own: a permutation seeded by N
shuffled() {
	seed=$1
	shift
	for f in "$@"; do echo "$f"; done |
		awk -v s="$seed" 'BEGIN { srand(s) } { print rand() "\t" $0 }' | sort | cut -f2
}

# grad_shards N MODEL PROMPTS B [rl-grad options...]: shards g.I.rls of N at
# -j 1, every third with activations recomputed
grad_shards() {
	N=$1 M=$2 P=$3 B=$4
	shift 4
	rm -f g.*.rls
	for I in $(seq 1 "$N"); do
		j=1
		mem=
		[ $((I % 3)) -eq 0 ] && mem="--mem-limit 1K"
		# shellcheck disable=SC2086
		rl-grad -q -j $j $mem -m "$M" -p "$P" -d d.rls -b "$B" --shard "$I/$N" -o "g.$I.rls" \
			"$@" || fail "rl-grad --shard $I/$N: exit $?"
	done
}

# the gradient: N = 1, 2, 3, 7
rl-grad -q -j 1 -m work -p p.jsonl -d d.rls -b 2 -o full.rls
for N in 1 2 3 7; do
	grad_shards "$N" work p.jsonl 2
	# shellcheck disable=SC2046
	rl-sum -q -o sum.rls $(shuffled "$N" g.*.rls) || fail "rl-sum of $N shards: exit $?"
	cmp full.rls sum.rls || fail "rl-sum of $N grad shards differs from the unsharded run"
	ok "grad: $N shards summed in the order $(shuffled "$N" g.*.rls | tr '\n' ' ')= the unsharded bytes"
done
# on standard output too, and the shards are of the grad-shard kind
# shellcheck disable=SC2046
rl-sum $(shuffled 9 g.*.rls) >sum-stdout.rls 2>/dev/null
cmp full.rls sum-stdout.rls || fail "rl-sum to stdout differs"
ok "grad: rl-sum to standard output, the same bytes"
[ "$(rl-dump --header g.1.rls | jq -r .kind)" = grad-shard ] || fail "g.1.rls: not grad-shard"
[ "$(rl-dump --header g.4.rls | jq -c .shard)" = '{"index":4,"count":7,"units":6,"first":2,"end":3}' ] ||
	fail "g.4.rls: shard map $(rl-dump --header g.4.rls | jq -c .shard)"
[ "$(rl-dump --stats g.1.rls | jq -c .tensors)" = 0 ] || fail "g.1.rls (no batch) has tensors"
[ "$(rl-dump --stats g.7.rls | jq -c '[.types.batch.records, .types.part.records]')" = '[1,2]' ] ||
	fail "g.7.rls: not 1 batch record and 2 part records (a batch, 2 layers)"
ok "grad-shard headers name the shard and its batches"
# --add: the previous step's gradient added after the sum, as rl-grad --add
# adds it (a plain rl-recover step); the sum_of in the header counts both
rl-grad -q -j 1 -m work -p p.jsonl -d d.rls -b 2 --add full.rls -o full2.rls
grad_shards 3 work p.jsonl 2
# shellcheck disable=SC2046
rl-sum -q --add full.rls -o sum2.rls $(shuffled 5 g.*.rls) || fail "rl-sum --add: exit $?"
cmp full2.rls sum2.rls || fail "rl-sum --add differs from rl-grad --add"
[ "$(rl-dump --header sum2.rls | jq .sum_of)" = 2 ] || fail "rl-sum --add: sum_of not 2"
must_pass rl-sum -q --add full2.rls -o sum3.rls g.1.rls g.2.rls g.3.rls
[ "$(rl-dump --header sum3.rls | jq .sum_of)" = 3 ] || fail "rl-sum --add (sum_of 2): not 3"
ok "grad: rl-sum --add PREV = rl-grad --add PREV, bit for bit; sum_of counts the addend's"
# --add refusals: a gradient of another layer_end, not a gradient, another
# model's (exit 3); nothing written
rl-direction -q -m work -p "$E/dir.jsonl" -L 1 -o d1.rls
rl-grad -q -j 1 -m work -p p.jsonl -d d1.rls -b 2 -o g-L1.rls
must_fail 3 rl-sum --add g-L1.rls -o bad.rls g.1.rls g.2.rls g.3.rls
stderr_has "a gradient for layer_end 1, not 2"
must_fail 3 rl-sum --add d.rls -o bad.rls g.1.rls g.2.rls g.3.rls
stderr_has "'d.rls' is a direction stream, expected grad"
rl-grad -q -j 1 -m "$F/engine/mistral_f32/model" -p "$F/engine/mistral_f32/grad.jsonl" \
	-d "$(rl-direction -q -m "$F/engine/mistral_f32/model" -p "$F/engine/mistral_f32/dir.jsonl" -L 2 -o md.rls && echo md.rls)" -o mg.rls
must_fail 3 rl-sum --add mg.rls -o bad.rls g.1.rls g.2.rls g.3.rls
stderr_has "was made for model shape"
[ ! -e bad.rls ] || fail "a refused rl-sum --add wrote bad.rls"
ok "rl-sum --add refuses another layer_end, a non-gradient and another model's shape"

# a model with biases (Qwen2, bf16), batches of 3 (the last shorter)
Q="$F/engine/qwen2_bf16"
cat "$Q/dir.jsonl" "$Q/grad.jsonl" >q.jsonl
mv d.rls d-llama.rls
rl-direction -q -m "$Q/model" -p "$Q/dir.jsonl" -L 2 -o d.rls
rl-grad -q -j 1 -m "$Q/model" -p q.jsonl -d d.rls -b 3 -o qfull.rls
grad_shards 3 "$Q/model" q.jsonl 3
rl-sum -q -o qsum.rls g.3.rls g.1.rls g.2.rls
cmp qfull.rls qsum.rls || fail "Qwen2: rl-sum of 3 shards differs"
ok "grad, Qwen2 bf16 with biases, batches of 3: 3 shards = the unsharded bytes"
# the forward at --precision bf16 (the stored matrices, bf16-rounded inputs)
rl-grad -q -j 1 --precision bf16 -m "$Q/model" -p q.jsonl -d d.rls -b 3 -o qfull16.rls
cmp -s qfull.rls qfull16.rls && fail "--precision bf16 gave the fp32 gradient's bytes"
grad_shards 3 "$Q/model" q.jsonl 3 --precision bf16
rl-sum -q -o qsum16.rls g.2.rls g.3.rls g.1.rls
cmp qfull16.rls qsum16.rls || fail "Qwen2 --precision bf16: rl-sum of 3 shards differs"
ok "grad, Qwen2 bf16 at --precision bf16: 3 shards = the unsharded bytes"
cp g.1.rls g16.1.rls
grad_shards 3 "$Q/model" q.jsonl 3
must_fail 3 rl-sum -o qmix.rls g16.1.rls g.2.rls g.3.rls
stderr_has "made with another --precision"
[ ! -e qmix.rls ] || fail "a refused rl-sum left its output"
mv d.rls d-qwen.rls
mv d-llama.rls d.rls

# the direction: N = 1, 2, 3, 7, with and without --per-prompt
for pp in "" --per-prompt; do
	# shellcheck disable=SC2086
	rl-direction -q -j 2 -m work -p p.jsonl -L 2 -b 2 $pp -o dfull.rls
	for N in 1 2 3 7; do
		rm -f ds.*.rls
		for I in $(seq 1 "$N"); do
			# shellcheck disable=SC2086
			rl-direction -q -j 2 -m work -p p.jsonl -L 2 -b 2 $pp \
				--shard "$I/$N" -o "ds.$I.rls" || fail "rl-direction --shard $I/$N"
		done
		# shellcheck disable=SC2046
		rl-sum -q -o dsum.rls $(shuffled "$N" ds.*.rls) || fail "rl-sum of $N direction shards"
		cmp dfull.rls dsum.rls || fail "rl-sum of $N direction shards ($pp) differs"
		ok "direction${pp:+ $pp}: $N shards = the bytes of rl-direction -b 2"
	done
done
# a direction takes no addend
must_fail 2 rl-sum --add full.rls -o bad.rls ds.*.rls
stderr_has "only a gradient takes an addend"
[ ! -e bad.rls ] || fail "rl-sum --add on direction shards wrote bad.rls"

# refusals: exit 3, the file and the reason named, no output left
grad_shards 3 work p.jsonl 2
refused() { # refused 'reason' rl-sum args...: exit 3, nothing written
	why=$1
	shift
	rm -f out.rls
	must_fail 3 "$@"
	stderr_has "$why"
	[ ! -e out.rls ] || fail "a failed rl-sum left out.rls"
	[ -z "$(ls | grep 'rl-sum\.' || true)" ] || fail "a failed rl-sum left $(ls | grep 'rl-sum\.')"
}
refused "shard 2 of 3 is missing" rl-sum -o out.rls g.1.rls g.3.rls
refused "'g.1.rls': shard 1 of 3 again (also 'g.1.rls')" rl-sum -o out.rls g.1.rls g.2.rls g.3.rls g.1.rls
refused "'g.2.rls': shard 2 of 3 again (also 'g.2.rls')" rl-sum -o out.rls g.2.rls g.3.rls g.2.rls
refused "'full.rls': a grad stream, not a shard" rl-sum -o out.rls g.1.rls full.rls g.2.rls g.3.rls
refused "'d.rls': a direction stream, not a shard" rl-sum d.rls
refused "'ds.1.rls': a direction-shard stream, 'g.1.rls' a grad-shard stream" \
	rl-sum -o out.rls g.1.rls ds.1.rls
rl-grad -q -j 1 -m work -p p.jsonl -d d.rls -b 2 --shard 2/4 -o other-n.rls
refused "'other-n.rls': shard 2 of 4, 'g.1.rls' is shard 1 of 3" rl-sum -o out.rls g.1.rls other-n.rls g.3.rls
# another model (Qwen2's shard), the same model by another path, another batch size
rl-grad -q -j 1 -m "$Q/model" -p q.jsonl -d d-qwen.rls -b 2 --shard 2/3 -o qwen.rls
refused "'qwen.rls': made for another model (or model state) than 'g.1.rls' (header key \"model\" differs)" \
	rl-sum -o out.rls g.1.rls qwen.rls g.3.rls
ln -s "$E/model" work2
rl-grad -q -j 1 -m work2 -p p.jsonl -d d.rls -b 2 --shard 2/3 -o path.rls
refused "'path.rls': made for another model (or model state)" rl-sum -o out.rls g.1.rls path.rls g.3.rls
rl-grad -q -j 1 -m work -p p.jsonl -d d.rls -b 3 --shard 2/3 -o b3.rls
refused "'b3.rls': made with another batch size" rl-sum -o out.rls g.1.rls b3.rls g.3.rls
rl-grad -q -j 2 -m work -p p.jsonl -d d.rls -b 2 --shard 2/3 -o j2.rls
refused "'j2.rls': made with another number of threads (-j: OpenBLAS's sums depend on it) than 'g.1.rls' (header key \"threads\" differs)" \
	rl-sum -o out.rls g.1.rls j2.rls g.3.rls
# another direction: its file and its vector
rl-direction -q -m work -p "$E/dir.jsonl" -L 2 -n 3 -o d3.rls
rl-grad -q -j 1 -m work -p p.jsonl -d d3.rls -b 2 --shard 2/3 -o dir3.rls
refused "'dir3.rls': made with another direction" rl-sum -o out.rls g.1.rls dir3.rls g.3.rls
cp d.rls d.keep
rl-direction -q -m work -p "$E/dir.jsonl" -L 2 -n 4 -o d.rls # same path, other vector
rl-grad -q -j 1 -m work -p p.jsonl -d d.rls -b 2 --shard 2/3 -o dirv.rls
mv d.keep d.rls
refused "'dirv.rls': made with another direction than 'g.1.rls' (header key \"direction" \
	rl-sum -o out.rls g.1.rls dirv.rls g.3.rls
# other prompts under the same file name and count: only the hash tells
cp p.jsonl p.keep
jq -c '.ids[0] = 1' p.keep >p.jsonl
rl-grad -q -j 1 -m work -p p.jsonl -d d.rls -b 2 --shard 2/3 -o ids.rls
mv p.keep p.jsonl
refused "'ids.rls': made from other prompts (file, -n, template or tokenizer) than 'g.1.rls' (header key \"prompts_hash\" differs)" \
	rl-sum -o out.rls g.1.rls ids.rls g.3.rls
rl-grad -q -j 1 -m work -p p.jsonl -d d.rls -b 2 -n 11 --shard 2/3 -o n11.rls
refused "'n11.rls': made from another number of prompts" rl-sum -o out.rls g.1.rls n11.rls g.3.rls
# direction shards of another -b or another --per-prompt
rm -f ds.*.rls
for I in 1 2; do rl-direction -q -m work -p p.jsonl -L 2 -b 2 --shard $I/2 -o ds.$I.rls; done
rl-direction -q -m work -p p.jsonl -L 2 -b 3 --shard 2/2 -o ds-b3.rls
refused "'ds-b3.rls': made with another batch size" rl-sum -o out.rls ds.1.rls ds-b3.rls
rl-direction -q -m work -p p.jsonl -L 2 -b 2 --per-prompt --shard 2/2 -o ds-pp.rls
refused "'ds-pp.rls': made with another --per-prompt" rl-sum -o out.rls ds.1.rls ds-pp.rls
# damaged shards: truncated, a byte flipped
head -c 3000 g.2.rls >cut.rls
refused "'cut.rls'" rl-sum -o out.rls g.1.rls cut.rls g.3.rls
cp g.3.rls flip.rls
printf 'X' | dd of=flip.rls bs=1 seek=20000 conv=notrunc 2>/dev/null
refused "'flip.rls'" rl-sum -o out.rls g.1.rls g.2.rls flip.rls
# a failed rl-sum on standard output writes nothing there
refused "shard 2 of 3 is missing" rl-sum g.1.rls g.3.rls
# an existing output is left as it was
echo keep >out2.rls
must_fail 3 rl-sum -o out2.rls g.1.rls g.3.rls
[ "$(cat out2.rls)" = keep ] || fail "a failed rl-sum changed out2.rls"
ok "a failed rl-sum leaves an existing output as it was"

# usage
must_fail 2 rl-sum
stderr_has "no shard streams"
must_fail 2 rl-sum -o g.1.rls g.1.rls g.2.rls g.3.rls
for bad in 0/2 3/2 2 /2 1/ x/y 1/0 1/65537; do
	must_fail 2 rl-grad -m work -p p.jsonl -d d.rls --shard "$bad"
done
stderr_has "--shard"
must_fail 2 rl-grad -m work -p p.jsonl -d d.rls --shard 1/2 --add full.rls
stderr_has "--add and --shard exclude each other"
must_fail 2 rl-direction -m work -p p.jsonl -L 2 --shard 1/2
stderr_has "--shard needs -b N"
must_pass rl-sum --help
stdout_has "Usage: rl-sum"
finish
