#!/bin/sh
# lib/README.md's rule: a lib/ folder includes only from itself and the folders
# below it (core < store < text < compute < method < eval).
. "$RL_TESTS/lib.sh"
cd "$RL_TESTS/.."
order="core store text compute method eval"
rank() {
	i=0
	for o in $order; do
		[ "$o" = "$1" ] && { echo $i; return; }
		i=$((i + 1))
	done
	echo 99
}
bad=""
n=0
for f in lib/*/*.c lib/*/*.h; do
	d=$(basename "$(dirname "$f")")
	rd=$(rank "$d")
	[ "$rd" -ne 99 ] || bad="$bad $f(folder '$d' is not a layer)"
	for t in $(sed -n 's/^#include "\([a-z]*\)\/[a-z0-9_]*\.h".*/\1/p' "$f"); do
		n=$((n + 1))
		[ "$(rank "$t")" -le "$rd" ] || bad="$bad $f->$t"
	done
	# every include of a project header names its folder
	grep -q '^#include "[a-z0-9_]*\.h"' "$f" && bad="$bad $f(include without folder)"
done
[ -z "$bad" ] || fail "includes against the layer order:$bad"
ok "layers: $n includes, none upward"
finish
