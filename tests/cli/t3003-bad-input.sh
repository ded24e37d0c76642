#!/bin/sh
# Bad input to rl-select / rl-apply / rl-rollback: one-line errors, the right
# exit code, nothing on stdout, and the model untouched.
. "$RL_TESTS/lib.sh"
R="$F/restore"
H="$RL_TESTBIN/test_restore"
sha() { sha256sum "$1/model.safetensors" | cut -d' ' -f1; }
cp -r "$R/finetuned" "$T/m"
sha0=$(sha "$T/m")
"$H" grad "$T/m" "$R/grad_harmful.safetensors" "$T/gh.rls"
"$H" grad "$R/other" "$R/grad_harmful.safetensors" "$T/other.rls" 2>/dev/null ||
	fail "could not write the other model's grad stream"
rl-select -q -m "$T/m" -t "$R/aligned" --count 100 "$T/gh.rls" >"$T/sel.rls"

# usage errors
must_fail 2 rl-select -m "$T/m" --rate 0.1 "$T/gh.rls"
must_fail 2 rl-select -m "$T/m" -t "$R/aligned" "$T/gh.rls"
must_fail 2 rl-select -m "$T/m" -t "$R/aligned" --rate 0.1 --count 5 "$T/gh.rls"
must_fail 2 rl-select -m "$T/m" -t "$R/aligned" --rate 1.5 "$T/gh.rls"
must_fail 2 rl-select -m "$T/m" -t "$R/aligned" --count 5 --score nope "$T/gh.rls"
must_fail 2 rl-select -m "$T/m" -t "$R/aligned" --count 5 --include '(' "$T/gh.rls"
must_fail 2 rl-select -m "$T/m" -t "$R/aligned" --count 5 --layers 3:1 "$T/gh.rls"
must_fail 2 rl-apply -m "$T/m" "$T/sel.rls"
must_fail 2 rl-rollback -m "$T/m" -f "$R/finetuned" --fraction 0.2 "$T/x.rlj"

# k larger than the eligible elements
must_fail 3 rl-select -m "$T/m" -t "$R/aligned" --count 1000000 "$T/gh.rls"
stderr_has "exceeds the"
# a grad stream (and a selection, a journal) for another model
must_fail 3 rl-select -m "$T/m" -t "$R/aligned" --count 5 "$T/other.rls"
stderr_has "made for model shape"
must_fail 3 rl-select -m "$T/m" -t "$R/other" --count 5 "$T/gh.rls"
cp -r "$R/other" "$T/other"
must_fail 3 rl-apply -m "$T/other" -s "$T/other" "$T/sel.rls"
# not a grad stream / not a select stream
must_fail 3 rl-select -m "$T/m" -t "$R/aligned" --count 5 "$T/sel.rls"
must_fail 3 rl-apply -m "$T/m" -s "$R/aligned" "$T/gh.rls"

# a truncated selection: nothing applied, nothing left behind
size=$(wc -c <"$T/sel.rls")
head -c $((size - 10)) "$T/sel.rls" >"$T/trunc.rls"
must_fail 3 rl-apply -m "$T/m" -s "$R/aligned" "$T/trunc.rls"
[ "$(sha "$T/m")" = "$sha0" ] || fail "a truncated selection changed the model"
[ ! -e "$T/m/.realign/journal" ] || fail "hot journal left"
ok "truncated selection: model unchanged"
# the source is not the selection's target
must_fail 3 rl-apply -m "$T/m" -s "$R/finetuned" "$T/sel.rls"
stderr_has "source"

# a selection for another state of the model
rl-apply -q -m "$T/m" -s "$R/aligned" "$T/sel.rls" >"$T/step.rlj"
sha1=$(sha "$T/m")
must_fail 3 rl-apply -m "$T/m" -s "$R/aligned" "$T/sel.rls"
stderr_has "state"
[ "$(sha "$T/m")" = "$sha1" ] || fail "a stale selection changed the model"
# the model changed behind realign's back: the journal no longer matches
cp -r "$R/finetuned" "$T/m2"
rl-select -q -m "$T/m2" -t "$R/aligned" --count 100 "$T/gh.rls" | rl-apply -q -m "$T/m2" -s "$R/aligned" >"$T/step2.rlj"
printf 'x' | dd of="$T/m2/model.safetensors" bs=1 seek=$(($(wc -c <"$T/m2/model.safetensors") - 1)) conv=notrunc 2>/dev/null
must_fail 3 rl-rollback -m "$T/m2" "$T/step2.rlj"
stderr_has "state"
# a journal for another model, a truncated journal
must_fail 3 rl-rollback -m "$T/other" "$T/step.rlj"
head -c 200 "$T/step.rlj" >"$T/tj.rlj"
must_fail 3 rl-rollback -m "$T/m" "$T/tj.rlj"
[ "$(sha "$T/m")" = "$sha1" ] || fail "a bad journal changed the model"
must_pass rl-rollback -m "$T/m" "$T/step.rlj"
[ "$(sha "$T/m")" = "$sha0" ] || fail "rollback not exact"

# a read-only model directory: nothing is written, clear message
cp -r "$R/finetuned" "$T/ro"
rl-select -q -m "$T/ro" -t "$R/aligned" --count 10 "$T/gh.rls" >"$T/ro.rls"
chmod 755 "$T"
chmod a+r "$T/ro.rls" "$T/ro/model.safetensors"
chmod 555 "$T/ro"
if [ "$(id -u)" -eq 0 ]; then
	# root ignores permissions: run as nobody, as a user without write access would
	as="setpriv --reuid=65534 --regid=65534 --clear-groups"
else
	as=""
fi
must_fail 4 $as rl-apply -m "$T/ro" -s "$R/aligned" "$T/ro.rls"
stderr_has "Permission denied"
[ "$(sha "$T/ro")" = "$sha0" ] || fail "read-only model changed"
chmod 755 "$T/ro"
finish
