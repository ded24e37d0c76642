#!/bin/sh
# Every tool has a man page, and every page formats without a groff warning at
# 80 columns (a line that troff reads as a request, a table wider than the
# terminal, an unknown macro).
. "$RL_TESTS/lib.sh"
cd "$RL_TESTS/.."
command -v groff >/dev/null && command -v tbl >/dev/null ||
	fail "groff and tbl are not installed (make deps installs groff-base)"
for t in tools/rl-*; do
	n=$(basename "$t" .c)
	n=${n%.sh}
	[ -f "man/$n.1" ] || fail "$n has no man page (man/$n.1)"
done
pages=0
for f in man/*.[1-9]; do
	tbl "$f" | groff -man -Tutf8 -ww -z -rLL=80n >"$T/out" 2>"$T/err"
	[ -s "$T/err" ] && fail "$f: $(head -n 2 "$T/err" | tr '\n' ' ')"
	pages=$((pages + 1))
done
ok "$pages man pages format cleanly at 80 columns"
finish
