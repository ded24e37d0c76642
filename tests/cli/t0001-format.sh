#!/bin/sh
# Every C source follows .clang-format (one mechanically enforced format).
. "$RL_TESTS/lib.sh"
cd "$RL_TESTS/.."
command -v clang-format >/dev/null || fail "clang-format is not installed (make deps installs it)"
files=$(ls lib/*/*.c lib/*/*.h tools/*.c tests/unit/*.c tests/unit/*.h tests/integration/*.c tests/bench/*.c tests/fuzz/*.c 2>/dev/null || true)
run clang-format --dry-run -Werror $files
[ "$rc" -eq 0 ] || fail "not formatted (run: clang-format -i <file>): $(grep -o '^[^: ]*\.[ch]:[0-9]*:' "$T/stderr" | cut -d: -f1 | sort -u | tr '\n' ' ')"
ok "clang-format clean: $(echo "$files" | wc -w) files"
finish
