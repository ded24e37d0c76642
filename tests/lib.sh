# tests/lib.sh — helpers for CLI test scripts (sourced by tests/cli/t*.sh).
#
#   . "$RL_TESTS/lib.sh"
#   must_fail 3 rl-x bad-input        # exits exactly 3 (not a signal), no stdout
#   test_cmp expected actual          # diff -u on mismatch, fails the test
#   stderr_has 'needle'               # last command's stderr contains needle
#   finish                            # exit status of the whole script
#
# Every command runs with the tools first on PATH. A test file fails at the first
# failed check (set -e style) and prints what it was checking.
set -eu
PATH="$RL_BIN:$PATH"
export PATH
T=$(mktemp -d "${TMPDIR:-/tmp}/rl-cli.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM
F="$RL_FIXTURES"
ntest=0

fail() {
	echo "not ok: $*" >&2
	exit 1
}

ok() {
	ntest=$((ntest + 1))
	echo "ok $ntest - $*"
}

# run CMD...: runs, keeping stdout in $T/stdout and stderr in $T/stderr; sets $rc.
run() {
	set +e
	"$@" >"$T/stdout" 2>"$T/stderr"
	rc=$?
	set -e
}

# must_fail CODE CMD...: the command must exit with exactly CODE (a death by
# signal is >128 and fails), print nothing on stdout, and say something on stderr
# prefixed by the program name.
must_fail() {
	want=$1
	shift
	run "$@"
	if [ "$rc" -gt 128 ]; then
		fail "$* died by signal $((rc - 128)) (wanted exit $want): $(cat "$T/stderr")"
	fi
	[ "$rc" -eq "$want" ] || fail "$*: exit $rc, wanted $want; stderr: $(cat "$T/stderr")"
	[ ! -s "$T/stdout" ] || fail "$*: failed but wrote to stdout"
	[ -s "$T/stderr" ] || fail "$*: failed without a message"
	ok "exit $want: $*"
}

# must_pass CMD...: exit 0.
must_pass() {
	run "$@"
	[ "$rc" -eq 0 ] || fail "$*: exit $rc; stderr: $(cat "$T/stderr")"
	ok "$*"
}

stderr_has() {
	grep -qF -- "$1" "$T/stderr" || fail "stderr lacks '$1'; it was: $(cat "$T/stderr")"
	ok "stderr has '$1'"
}

stdout_has() {
	grep -qF -- "$1" "$T/stdout" || fail "stdout lacks '$1'; it was: $(head -c 2000 "$T/stdout")"
	ok "stdout has '$1'"
}

test_cmp() {
	diff -u "$1" "$2" >&2 || fail "test_cmp $1 $2"
	ok "same: $(basename "$1") $(basename "$2")"
}

finish() {
	echo "1..$ntest"
	exit 0
}
