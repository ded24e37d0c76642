#!/bin/sh
# Every header includes what it uses: a .c file that includes only the header
# (twice: the include guard) compiles with the build's warnings as errors.
. "$RL_TESTS/lib.sh"
cd "$RL_TESTS/.."
: "${RL_HEADER_CFLAGS:?set by make check: the flags a header compiles with}"
n=0
bad=""
for h in lib/*/*.h; do
	inc=${h#lib/}
	c="$T/$(echo "$inc" | tr / _).c"
	printf '#include "%s"\n#include "%s"\n' "$inc" "$inc" >"$c"
	# shellcheck disable=SC2086 # the flags are words
	if ! ${RL_CC:-cc} $RL_HEADER_CFLAGS -fsyntax-only "$c" 2>"$T/err"; then
		bad="$bad $h"
		sed -n 1,6p "$T/err" >&2
	fi
	n=$((n + 1))
done
[ -z "$bad" ] || fail "headers that do not compile on their own:$bad"
[ "$n" -ge 30 ] || fail "only $n headers found"
ok "$n headers compile on their own"
finish
