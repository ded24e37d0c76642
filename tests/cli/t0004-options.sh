#!/bin/sh
# Every tool's --help and man page agree (C tools, whose --help comes from
# their option table, and the shell tool rl-recover alike):
#  - the options --help lists equal the options the man page documents, paired
#    the same way (-m with --model). The man page's truth is its tagged
#    paragraphs (.TP) whose tag starts with an option: the OPTIONS section, or
#    rl-eval's topic sections;
#  - every option the SYNOPSIS names exists;
#  - --help starts "Usage: rl-x" and exits 0; --version prints "rl-x VERSION";
#  - an unknown option is exit 2 with "Try 'rl-x --help'".
. "$RL_TESTS/lib.sh"
cd "$RL_TESTS/.."
version=$(sed -n 's/^VERSION *:= *//p' Makefile)

# "-m --model", "--raw", "-n" per line, from --help's option lines.
help_options() {
	sed -n 's/^  \(-[A-Za-z0-9]\), \(--[a-z0-9][a-z0-9-]*\).*/\1 \2/p
		s/^      \(--[a-z0-9][a-z0-9-]*\).*/\1/p
		s/^  \(-[A-Za-z0-9]\)\( .*\)\{0,1\}$/\1/p' | sort -u
}

# The same from the man page's option tags: a short name followed by a long
# one in the same tag is one option.
man_options() {
	awk '
	function words(line,    s) {
		s = line
		gsub(/\\-/, "-", s)
		gsub(/\\f[BIRP]/, " ", s)
		gsub(/[",|]/, " ", s)
		return split(s, w, /[ \t]+/)
	}
	prev == ".TP" && /^\.(B|BI|BR|IR|RB) +\\-/ {
		n = words($0)
		pend = ""
		for (i = 1; i <= n; i++) {
			if (w[i] ~ /^-[A-Za-z0-9]$/) {
				if (pend != "") print pend
				pend = w[i]
			} else if (w[i] ~ /^--[a-z0-9][a-z0-9-]*$/) {
				print (pend != "" ? pend " " : "") w[i]
				pend = ""
			}
		}
		if (pend != "") print pend
	}
	{ prev = $0 }' "$1" | sort -u
}

# Every option name the SYNOPSIS section names, one a line.
synopsis_names() {
	awk '/^\.SH/ { s = $2 } s == "SYNOPSIS" && !/^\.SH/' "$1" |
		sed 's/\\-/-/g; s/\\f[BIRP]//g' | grep -oE -- '(^|[][ (|])--?[A-Za-z0-9][a-z0-9-]*' |
		sed 's/^[^-]*//' | sort -u
}

tools=0
for src in tools/rl-*.c tools/rl-*.sh; do
	n=$(basename "$src")
	n=${n%.*}
	page=man/$n.1
	run "$n" --help
	[ "$rc" -eq 0 ] || fail "$n --help: exit $rc"
	head -n 1 "$T/stdout" | grep -q "^Usage: $n " || fail "$n --help does not start 'Usage: $n'"
	help_options <"$T/stdout" >"$T/help.$n"
	[ -s "$T/help.$n" ] || fail "$n --help lists no options"
	man_options "$page" >"$T/man.$n"
	diff -u "$T/man.$n" "$T/help.$n" >"$T/diff" ||
		fail "$n: $page documents other options than --help lists (- man, + help):
$(tail -n +3 "$T/diff")"
	tr ' ' '\n' <"$T/help.$n" | sort -u >"$T/names.$n"
	bad=$(synopsis_names "$page" | grep -vxF -f "$T/names.$n" || true)
	[ -z "$bad" ] || fail "$page: the SYNOPSIS names options $n does not take:" $bad
	ok "$n: --help and $page list the same $(wc -l <"$T/help.$n") options"
	run "$n" --version
	[ "$rc" -eq 0 ] && [ "$(cat "$T/stdout")" = "$n $version" ] ||
		fail "$n --version: exit $rc, '$(cat "$T/stdout")'"
	must_fail 2 "$n" --no-such-option
	stderr_has "Try '$n --help'"
	tools=$((tools + 1))
done
[ "$tools" -ge 12 ] || fail "only $tools tools found"
ok "$tools tools"
finish
