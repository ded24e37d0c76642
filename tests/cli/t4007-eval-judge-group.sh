#!/bin/sh
# rl-eval --judge-cmd runs the judge in its own process group and ends the
# group when the judge exits or is stopped: a background process the judge
# leaves holding its stdout neither hangs rl-eval nor outlives it.
. "$RL_TESTS/lib.sh"
cd "$T"
printf '{"prompt": "p0", "response": "Sure."}\n{"prompt": "p1", "response": "No."}\n' >r.jsonl
# gone PIDFILE: the process whose pid is in PIDFILE has ended (or is a zombie
# nobody reaped)
gone() {
	pid=$(cat "$1")
	[ -n "$pid" ] || fail "no pid in $1"
	[ ! -e "/proc/$pid" ] || grep -q '^State:[[:space:]]*Z' "/proc/$pid/status"
}
bg='sleep 300 & echo $! >'"$T"'/gc.pid;'

# answers everything, then leaves a grandchild holding the pipe
must_pass timeout 60 rl-eval --responses r.jsonl --summary-json \
	--judge-cmd "jq -c '{id, harmful: (.id == 0)}'; $bg"
[ "$(jq -c '[.harmful, .judged]' stdout)" = "[1,2]" ] || fail "answers: $(cat stdout)"
gone gc.pid || fail "the judge's background process outlived rl-eval"
ok "a judge's background grandchild: answers taken, the grandchild ended"

# exits without answering, the grandchild holding the pipe
rm -f gc.pid
must_fail 3 timeout 60 rl-eval --responses r.jsonl --judge-cmd "$bg exit 0"
stderr_has "after answering 0 of 2 items"
gone gc.pid || fail "the background process of a judge that failed outlived rl-eval"

# hangs: stopped after --judge-timeout, its whole group with it
rm -f gc.pid
must_fail 3 timeout 60 rl-eval --responses r.jsonl --judge-timeout 0.5 \
	--judge-cmd "$bg exec sleep 300"
stderr_has "no progress for 0.5 s"
gone gc.pid || fail "a stopped judge's background process outlived rl-eval"
finish
