#!/bin/sh
# No error path formats the error buffer into itself: rl_errmsg() is never an
# argument of rl_error, rl_error_errno, rl_error_prefix or rl_error_suffix
# (context goes in front with rl_error_prefix, outcomes behind with
# rl_error_suffix; error.c copies through a scratch buffer all the same).
. "$RL_TESTS/lib.sh"
cd "$RL_TESTS/.."
# Strings, characters and comments blanked (their newlines kept), then each
# call's text up to the end of its statement.
scan() {
	perl -0777 -ne '
	s{("(?:\\.|[^"\\\n])*")|(\x27(?:\\.|[^\x27\\\n])*\x27)|(/\*.*?\*/|//[^\n]*)}{
		defined $1 ? "\"\"" : defined $2 ? "\x27\x27" : ($3 =~ tr/\n//c, $3 =~ s/[^\n]//gr)}gse;
	while (/\brl_error(?:_errno|_prefix|_suffix)?\s*\([^;]*?\brl_errmsg\s*\(\s*\)/gs) {
		my $line = (substr($_, 0, $-[0]) =~ tr/\n//) + 1;
		print "$ARGV:$line\n";
	}' "$@"
}
# The scan finds such a call (the one journal.c had, spread over lines, a ';'
# in its format) and nothing in a comment or a string.
cat >"$T/bad.c" <<'C'
/* rl_error(RL_EDATA, "%s", rl_errmsg()) in a comment */
static int f(int rc)
{
	puts("rl_error(rc, rl_errmsg())");
	return rl_error(
		rc,
		"%s; restoring the model failed too (%s): run 'rl-rollback -m %s'",
		msg, rl_errmsg(), m->dir);
}
C
[ "$(scan "$T/bad.c")" = "$T/bad.c:5" ] || fail "the scan missed the planted call: $(scan "$T/bad.c")"
ok "the scan finds a planted call (and only it)"
hits=$(scan lib/*/*.c lib/*/*.h tools/*.c)
[ -z "$hits" ] || fail "rl_errmsg() formatted into the error buffer at: $hits"
n=$(cat lib/*/*.c tools/*.c | grep -c 'rl_error')
ok "no rl_error* call takes rl_errmsg() ($n lines with calls looked at)"
finish
