#!/bin/sh
# Hostile environments lose no data (issue 12): each case a careless user or an
# attacker can set up, and what the tools must do instead of losing data,
# hanging or misleading.
. "$RL_TESTS/lib.sh"
R="$F/restore"
sha() { sha256sum "$1/model.safetensors" | cut -d' ' -f1; }
sha0=$(sha "$R/finetuned")
fresh() {
	rm -rf "$T/m" && cp -r "$R/finetuned" "$T/m"
	rl-select -q -m "$T/m" -t "$R/aligned" --score random --seed 2 -L 3 --count 30 >"$T/sel.rls"
}

# --- an error that fails its own recovery: both messages, whole ---
# (the second used to be formatted into the buffer holding the first)
fresh
run env RL_FAULT=eio:model:3+ rl-apply -q -m "$T/m" -s "$R/aligned" "$T/sel.rls"
[ "$rc" -eq 4 ] || fail "write and recovery failing: exit $rc: $(cat "$T/stderr")"
[ "$(cat "$T/stderr")" = "rl-apply: '$T/m/model.safetensors': write: Input/output error; restoring the model failed too (run 'rl-rollback -m $T/m'): recovery of '$T/m' failed (run it again): '$T/m/model.safetensors': write: Input/output error" ] ||
	fail "double failure message: $(cat "$T/stderr")"
ok "a write and its recovery failing: one message holding both"
[ -e "$T/m/.realign/journal" ] || fail "the hot journal did not stay for rl-rollback"
must_pass rl-rollback -q -m "$T/m"
[ "$(sha "$T/m")" = "$sha0" ] || fail "rl-rollback -m after a failed recovery: model not restored"
ok "rl-rollback -m restores it afterwards"

finish
