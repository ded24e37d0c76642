#!/bin/sh
# Crash safety of rl-apply and rl-rollback (the invariants in lib/journal.c):
# SIGKILL at every durable I/O point of an apply (and of an exact rollback),
# then recover: sha256-identical to before, every time; ENOSPC / EIO injected
# on journal, model, output and state writes: clear error, model unchanged,
# nothing left behind; real ENOSPC on stdout (/dev/full); two writers at once.
. "$RL_TESTS/lib.sh"
R="$F/restore"
H="$RL_TESTBIN/test_restore"
sha() { sha256sum "$1/model.safetensors" | cut -d' ' -f1; }
sha0=$(sha "$R/finetuned")
# A fresh copy is another state of the model (new inode and times), so each
# copy gets its own selection (the same elements: the bytes are the same).
# 30 elements spread over the tensors of all layers (every run of the loops
# below is a process): the model is written in 15 spans (span.h), some one
# element, some several elements with the unchanged bytes between them.
fresh() {
	rm -rf "$T/m" && cp -r "$R/finetuned" "$T/m"
	rl-select -q -m "$T/m" -t "$R/aligned" --score random --seed 2 -L 3 --count 30 >"$T/sel.rls"
}
cp -r "$R/finetuned" "$T/m"
"$H" grad "$T/m" "$R/grad_harmful.safetensors" "$T/gh.rls"
fresh
RL_FAULT_TRACE="$T/trace" rl-apply -q -m "$T/m" -s "$R/aligned" "$T/sel.rls" >"$T/step.rlj"
npoints=$(wc -l <"$T/trace")
nrun=$(grep -c ' model pwrite$' "$T/trace") nspan=$(grep -c ' model pwrite-span$' "$T/trace")
[ "$npoints" -ge 35 ] || fail "only $npoints fault points traced"
[ "$nrun" -ge 3 ] && [ "$nspan" -ge 3 ] || fail "model writes: $nrun of one run, $nspan spans"
ok "rl-apply passes $npoints fault points ($nrun one-run writes, $nspan multi-run spans)"
sha1=$(sha "$T/m")

# --- SIGKILL at every point of rl-apply, then recover ---
i=1 committed=0 rolled=0 stale=0
while [ "$i" -le "$npoints" ]; do
	fresh
	set +e
	RL_FAULT="kill:$i" rl-apply -q -m "$T/m" -s "$R/aligned" "$T/sel.rls" >"$T/j.rlj" 2>/dev/null
	rc=$?
	set -e
	[ "$rc" -eq 137 ] || fail "kill at point $i: exit $rc, wanted death by SIGKILL"
	[ -e "$T/m/.realign/lock" ] && stale=$((stale + 1))
	if [ -e "$T/m/.realign/journal" ]; then
		# interrupted: readers and writers refuse until it is recovered
		must_fail 3 rl-apply -q -m "$T/m" -s "$R/aligned" "$T/sel.rls" >/dev/null
		must_fail 3 rl-select -q -m "$T/m" -t "$R/aligned" --count 5 "$T/gh.rls"
	fi
	rl-rollback -q -m "$T/m" || fail "recovery after kill at point $i failed"
	if [ -e "$T/m/.realign/last.rlj" ]; then
		committed=$((committed + 1))
		[ "$(sha "$T/m")" = "$sha1" ] || fail "kill at $i: committed but model is not the applied one"
		rl-rollback -q -m "$T/m" "$T/m/.realign/last.rlj" >/dev/null || fail "undo after commit (point $i)"
	else
		rolled=$((rolled + 1))
	fi
	[ "$(sha "$T/m")" = "$sha0" ] || fail "kill at point $i: model not restored bit-exactly"
	[ ! -e "$T/m/.realign/journal" ] || fail "kill at point $i: hot journal left after recovery"
	i=$((i + 1))
done
[ "$stale" -gt 0 ] || fail "no kill left a stale lock (the takeover was not exercised)"
ok "SIGKILL at each of $npoints points: $rolled rolled back, $committed committed then undone; all sha256-identical ($stale stale locks taken over)"

# --- SIGKILL at every point of an exact rollback, then recover and finish ---
fresh
rl-apply -q -m "$T/m" -s "$R/aligned" "$T/sel.rls" >"$T/step.rlj"
rm -f "$T/trace"
RL_FAULT_TRACE="$T/trace" rl-rollback -q -m "$T/m" "$T/step.rlj" >/dev/null
nrb=$(wc -l <"$T/trace")
i=1
while [ "$i" -le "$nrb" ]; do
	fresh
	rl-apply -q -m "$T/m" -s "$R/aligned" "$T/sel.rls" >"$T/step.rlj"
	set +e
	RL_FAULT="kill:$i" rl-rollback -q -m "$T/m" "$T/step.rlj" >/dev/null 2>&1
	rc=$?
	set -e
	[ "$rc" -eq 137 ] || fail "rollback kill at point $i: exit $rc"
	rl-rollback -q -m "$T/m" || fail "recovery after rollback kill at $i"
	if [ "$(sha "$T/m")" != "$sha0" ]; then
		[ "$(sha "$T/m")" = "$sha1" ] || fail "rollback kill at $i: neither state"
		rl-rollback -q -m "$T/m" "$T/step.rlj" >/dev/null || fail "rollback again after kill at $i"
	fi
	[ "$(sha "$T/m")" = "$sha0" ] || fail "rollback kill at $i: not bit-exact"
	i=$((i + 1))
done
ok "SIGKILL at each of $nrb points of rl-rollback: recovered, sha256-identical"

# --- injected ENOSPC / EIO: clear error, model unchanged, nothing left ---
# (model points: each span's read-back, its pwrite, then the fsync, last)
grep ' model ' "$T/trace" >"$T/mtrace"
nmodel=$(wc -l <"$T/mtrace")
npread=$(grep -n ' pread$' "$T/mtrace" | sed -n 2p | cut -d: -f1)
[ -n "$npread" ] || fail "no second span read-back traced"
for f in enospc:journal:1 enospc:journal:2 eio:journal:4 eio:output:1 eio:model:1 eio:model:7 \
	eio:model:$npread eio:model:$nmodel enospc:state:1 eio:state:3; do
	fresh
	# (after the journal's copy went out, a failure leaves that copy on stdout:
	# it describes a step that is not in the model, and rl-rollback refuses it)
	run env RL_FAULT=$f rl-apply -q -m "$T/m" -s "$R/aligned" "$T/sel.rls"
	[ "$rc" -eq 4 ] || fail "$f: exit $rc, wanted 4: $(cat "$T/stderr")"
	cp "$T/stderr" "$T/err4"
	if [ -s "$T/stdout" ]; then
		cp "$T/stdout" "$T/failed.rlj"
		must_fail 3 rl-rollback -q -m "$T/m" "$T/failed.rlj"
		must_fail 3 rl-rollback -q --force -m "$T/m" "$T/failed.rlj"
		run env RL_FAULT=$f true
	fi
	grep -q -e 'No space left' -e 'Input/output error' "$T/err4" || fail "$f: unclear message: $(cat "$T/err4")"
	[ "$(sha "$T/m")" = "$sha0" ] || fail "$f: model changed"
	[ ! -e "$T/m/.realign/journal" ] || fail "$f: hot journal left"
	[ ! -e "$T/m/.realign/lock" ] || fail "$f: lock left"
	[ ! -e "$T/m/.realign/last.rlj" ] || fail "$f: reported a failure but committed"
	ok "$f: model unchanged, nothing left"
done
# a real ENOSPC on the journal output
fresh
set +e
rl-apply -q -m "$T/m" -s "$R/aligned" "$T/sel.rls" >/dev/full 2>"$T/err"
rc=$?
set -e
[ "$rc" -eq 4 ] || fail "/dev/full: exit $rc"
grep -q 'No space left' "$T/err" || fail "/dev/full: $(cat "$T/err")"
[ "$(sha "$T/m")" = "$sha0" ] || fail "/dev/full: model changed"
ok "journal to /dev/full: exit 4, model unchanged"

# --- two writers: the second is refused while the first holds the lock ---
fresh
size=$(wc -c <"$T/sel.rls")
# all but the end record, a pause (the first writer holds the lock), the rest
{ head -c $((size - 40)) "$T/sel.rls"; sleep 2; tail -c 40 "$T/sel.rls"; } |
	rl-apply -q -m "$T/m" -s "$R/aligned" >"$T/first.rlj" 2>"$T/first.err" &
pid=$!
sleep 1
must_fail 1 rl-apply -q -m "$T/m" -s "$R/aligned" "$T/sel.rls"
stderr_has "being written by another process"
wait "$pid" || fail "the first writer failed: $(cat "$T/first.err")"
[ "$(sha "$T/m")" = "$sha1" ] || fail "the first writer's step is not in the model"
ok "two concurrent rl-apply: one refused, the other applied ($size-byte selection)"
finish
