#!/bin/sh
# tests/fuzz/run.sh [SECONDS] — builds every tests/fuzz/fuzz_*.c as a libFuzzer
# target (clang -fsanitize=fuzzer,address,undefined, against lib/*/*.c) and runs
# each for SECONDS (default 60; 0: no time limit). `make fuzz FUZZ_SECONDS=N`
# calls it; FUZZ_RUNS=N ends each target after N executions instead
# (`make fuzz FUZZ_SECONDS=0 FUZZ_RUNS=10000000`: the issue's bar);
# FUZZ_MAX_LEN=N caps an input's length (libFuzzer -max_len; by default the
# largest input of the corpus: up to 16 KB for jinja and tokenizer, slow ones).
#
# A target's source names its seed directories and dictionary in its header
# comment ("seeds: dir dir..." and "dict: file", paths from the repository
# root); its committed corpus, tests/fuzz/corpus/<target>/, seeds it too. The
# growing corpus is kept in build/fuzz/corpus/<target>/ between runs; with
# FUZZ_MERGE=1 a run without a crash merges it, minimised (libFuzzer -merge=1:
# only inputs that add coverage), into the committed one. Crashes are written
# to build/fuzz/crash-<target>-*. RL_FUZZ_ONLY=name
# runs only the targets whose name contains it. Prints one summary
# line per target (executions, corpus size, crashes) and exits 1 if any target
# crashed. Needs clang and its fuzzer runtime (Debian: clang, libclang-rt-14-dev);
# not part of make check.
set -u
secs=${1:-60}
case "$secs" in '' | *[!0-9]*) echo "run.sh: SECONDS must be a number" >&2; exit 2 ;; esac
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
CLANG=${CLANG:-clang}
command -v "$CLANG" >/dev/null || {
	echo "run.sh: clang not found (apt-get install clang libclang-rt-14-dev)" >&2
	exit 4
}
out=build/fuzz
mkdir -p "$out/corpus"
pkgs="msgpack libcjson libpcre2-8 openblas libxxhash libutf8proc"
cflags="-std=c11 -D_GNU_SOURCE -DRL_VERSION=\"fuzz\" -Ilib -g -O1 \
 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined $(pkg-config --cflags $pkgs)"
libs="$(pkg-config --libs $pkgs) -lpthread -lm"
status=0
for src in tests/fuzz/fuzz_*.c; do
	[ -f "$src" ] || continue
	name=$(basename "$src" .c)
	case $name in *"${RL_FUZZ_ONLY:-}"*) ;; *) continue ;; esac
	bin="$out/$name"
	# shellcheck disable=SC2086
	if ! $CLANG $cflags -o "$bin" "$src" lib/*/*.c $libs 2>"$out/$name.build.log"; then
		echo "run.sh: $name does not build (see $out/$name.build.log)" >&2
		status=1
		continue
	fi
	seeds=$(sed -n 's/^ \* seeds: //p' "$src" | head -n 1)
	dict=$(sed -n 's/^ \* dict: //p' "$src" | head -n 1)
	corpus="$out/corpus/$name"
	kept="tests/fuzz/corpus/$name"
	mkdir -p "$corpus"
	[ -d "$kept" ] && seeds="$seeds $kept"
	set -- -max_total_time="$secs" -artifact_prefix="$out/crash-$name-" -print_final_stats=1
	[ -n "${FUZZ_RUNS:-}" ] && set -- "$@" -runs="$FUZZ_RUNS"
	[ -n "${FUZZ_MAX_LEN:-}" ] && set -- "$@" -max_len="$FUZZ_MAX_LEN"
	[ -n "$dict" ] && set -- "$@" -dict="$dict"
	t0=$(date +%s)
	ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1" \
		"$bin" "$@" "$corpus" $seeds >"$out/$name.log" 2>&1
	rc=$?
	t1=$(date +%s)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$name.log" | tail -n 1)
	crashes=$(ls "$out"/crash-"$name"-* 2>/dev/null | wc -l)
	if [ "$rc" -eq 0 ] && [ "${FUZZ_MERGE:-0}" = 1 ]; then
		mkdir -p "$kept"
		"$bin" -merge=1 "$kept" "$corpus" >"$out/$name.merge.log" 2>&1 || rc=$?
	fi
	echo "$name: ${execs:-?} executions in $((t1 - t0))s, corpus $(ls "$corpus" | wc -l)" \
		"inputs (committed $(ls "$kept" 2>/dev/null | wc -l)), exit $rc, $crashes crash file(s)"
	if [ "$rc" -ne 0 ]; then
		status=1
		tail -n 30 "$out/$name.log" >&2
	fi
done
exit $status
