#!/bin/sh
# Runs the whole suite: every unit test binary in $RL_TESTBIN, every integration
# test binary in $RL_ITESTBIN (they drive the tools in $RL_BIN), then every CLI
# test script tests/cli/t*.sh. Prints one line per test and a summary; exits 1
# if anything failed. Called by `make check`.
#
#   RL_ONLY=pattern   run only tests whose name contains pattern
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${RL_BIN:?set RL_BIN to the tools directory}"
: "${RL_TESTBIN:?set RL_TESTBIN to the unit test directory}"
: "${RL_ITESTBIN:?set RL_ITESTBIN to the integration test directory}"
export RL_BIN RL_TESTBIN RL_ITESTBIN
RL_TESTS="$here"
RL_FIXTURES="$here/fixtures"
export RL_TESTS RL_FIXTURES
# Sanitizers: abort on the first report so a test fails loudly. OpenBLAS keeps
# per-thread buffers for the life of the process, which LeakSanitizer reports.
ASAN_OPTIONS="abort_on_error=1:detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
LSAN_OPTIONS="suppressions=$here/lsan.supp:print_suppressions=0"
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS
# Small matrices: keep OpenBLAS from spawning threads per test.
: "${OPENBLAS_NUM_THREADS:=2}"
export OPENBLAS_NUM_THREADS

pass=0 fail=0 failed=""
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rl-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

# The tests run as root on CI: a tool that replaced a device (by renaming its
# output over it) would break the machine for every later test and program.
# Each test must leave /dev/null the character device it found.
null_was_device=0
[ -c /dev/null ] && null_was_device=1
system_intact() {
	[ "$null_was_device" -eq 0 ] || [ -c /dev/null ] && return 0
	echo "$1 replaced /dev/null (now: $(ls -l /dev/null 2>&1))" >>"$tmp/out"
	if [ "$(id -u)" -eq 0 ] && rm -f /dev/null && mknod -m 666 /dev/null c 1 3; then
		echo "(/dev/null made again)" >>"$tmp/out"
	else
		null_was_device=0
	fi
	return 1
}

run_one() {
	name=$1
	shift
	case "$name" in *"${RL_ONLY:-}"*) ;; *) return ;; esac
	start=$(date +%s)
	"$@" >"$tmp/out" 2>&1
	rc=$?
	system_intact "$name" || rc=1 # (repairs /dev/null after a failed test too)
	if [ "$rc" -eq 0 ]; then
		pass=$((pass + 1))
		echo "PASS $name ($(($(date +%s) - start))s)"
	else
		fail=$((fail + 1))
		failed="$failed $name"
		echo "FAIL $name"
		sed 's/^/    /' "$tmp/out" | tail -n 40
	fi
}

# A binary whose source is gone (moved or removed since it was built) is left
# out: the build folder keeps it until make clean.
for t in "$RL_TESTBIN"/test_* "$RL_ITESTBIN"/test_*; do
	[ -x "$t" ] || continue
	n=$(basename "$t")
	case $t in "$RL_TESTBIN"/*) src=unit ;; *) src=integration ;; esac
	[ -f "$here/$src/$n.c" ] || continue
	run_one "$n" "$t"
done
for t in "$here"/cli/t*.sh; do
	[ -f "$t" ] || continue
	run_one "$(basename "$t" .sh)" sh "$t"
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] || { echo "failed:$failed"; exit 1; }
