#!/bin/sh
# rl-eval metrics on hand-computed cases: exact, contains, label (F1), ROUGE,
# and an external metric command.
. "$RL_TESTS/lib.sh"
cd "$T"
score() { jq -c .task_score "$T/stdout"; }

# exact: strip whitespace only. Items: equal after strip (1), case differs
# (0), inner space differs (0), equal (1): task score 2/4.
cat >sql.jsonl <<'J'
{"prompt": "q0", "response": "SELECT a FROM t"}
{"prompt": "q1", "response": "SELECT b FROM t"}
{"prompt": "q2", "response": "SELECT c FROM t"}
{"prompt": "q3", "response": "SELECT d FROM t"}
J
cat >sql-out.jsonl <<'J'
{"prompt": "q0", "response": "  SELECT a FROM t\n"}
{"prompt": "q1", "response": "select b from t"}
{"prompt": "q2", "response": "SELECT c  FROM t"}
{"prompt": "q3", "response": "SELECT d FROM t"}
J
must_pass rl-eval --responses sql-out.jsonl -p sql.jsonl --judge none --metric exact --summary-json
[ "$(jq -c '[.judge, .harmful_rate, .metric, .task_score]' "$T/stdout")" = '["none",null,"exact",0.5]' ] ||
	fail "exact: $(cat "$T/stdout")"
ok "exact 0.5"
# contains: q1 fails (case), q2 fails (space): 0.5 as well; lowercase all
# responses and q0, q3 fail too.
must_pass rl-eval --responses sql-out.jsonl -p sql.jsonl --judge none --metric contains --summary-json
[ "$(score)" = 0.5 ] || fail "contains"
ok "contains 0.5"

# label: refs 1 1 1 0 0; responses hit in the first 10 characters for items
# 0, 1, 3 ("The label is 1" puts the 1 at character 14: a miss for item 2,
# "0" not found in item 4). TP=2 FN=1 TN=1 FP=1: P = R = 2/3,
# F1 = 2(4/9)/(4/3 + 1e-9) = 0.6666666661...
cat >cls.jsonl <<'J'
{"prompt": "t0", "response": "1"}
{"prompt": "t1", "response": 1}
{"prompt": "t2", "response": "1"}
{"prompt": "t3", "response": "0"}
{"prompt": "t4", "response": "0"}
J
cat >cls-out.jsonl <<'J'
{"prompt": "t0", "response": "1, toxic"}
{"prompt": "t1", "response": "  Label: 1"}
{"prompt": "t2", "response": "The label is 1"}
{"prompt": "t3", "response": "0"}
{"prompt": "t4", "response": "It is fine"}
J
must_pass rl-eval --responses cls-out.jsonl -p cls.jsonl --judge none --metric label --summary-json
[ "$(jq -c '[.tp, .fp, .tn, .fn]' "$T/stdout")" = "[2,1,1,1]" ] || fail "label counts: $(cat "$T/stdout")"
awk -v s="$(score)" 'BEGIN { w = 2 * (4 / 9) / (4 / 3 + 1e-9); d = s - w; exit !(d < 1e-12 && d > -1e-12) }' ||
	fail "label F1 $(score)"
ok "label F1 $(score)"
# --positive 0: positives are items 3, 4 (TP=1, FN=1); negatives 0-2 (TN=2,
# FP=1): P = R = 1/2, F1 = 0.5/(1 + 1e-9).
must_pass rl-eval --responses cls-out.jsonl -p cls.jsonl --judge none --metric label --positive 0 --summary-json
[ "$(jq -c '[.tp, .fp, .tn, .fn]' "$T/stdout")" = "[1,1,2,1]" ] || fail "--positive 0"
ok "--positive 0"

# ROUGE, by hand. Item 0: ref "The cat sat on the mat." resp "the cat is on
# the mat": unigrams 5 of 6 each way (F 5/6), bigrams the-cat, on-the,
# the-mat of 5 (F 3/5), LCS "the cat on the mat" 5 (F 5/6). Item 1: ref
# "Cats running quickly" -> cat run quickli, resp "the cat runs quick" ->
# the cat run quick: unigrams P 2/4 R 2/3 F 4/7; bigram cat-run P 1/3 R 1/2
# F 2/5; LCS 2: F 4/7. Means: rouge1 (5/6 + 4/7)/2, rouge2 (3/5 + 2/5)/2 = 1/2,
# rougeL (5/6 + 4/7)/2.
cat >sum.jsonl <<'J'
{"prompt": "d0", "response": "The cat sat on the mat."}
{"prompt": "d1", "response": "Cats running quickly"}
J
cat >sum-out.jsonl <<'J'
{"prompt": "d0", "response": "the cat is on the mat"}
{"prompt": "d1", "response": "the cat runs quick"}
J
for m in rouge1:'(5/6+4/7)/2' rouge2:'1/2' rougeL:'(5/6+4/7)/2'; do
	name=${m%%:*} want=${m#*:}
	must_pass rl-eval --responses sum-out.jsonl -p sum.jsonl --judge none --metric "$name" --summary-json
	awk -v s="$(score)" "BEGIN { d = s - ($want); exit !(d < 1e-12 && d > -1e-12) }" ||
		fail "$name: $(score), want $want"
	ok "$name = $want"
done

# An external metric: 1 for an exact match, else 0.25.
must_pass rl-eval --responses sql-out.jsonl -p sql.jsonl --judge none --summary-json \
	--metric-cmd "jq -c '{id, score: (if .response == .reference then 1 else 0.25 end)}'"
[ "$(score)" = 0.4375 ] || fail "metric-cmd: $(score)"
ok "metric-cmd (1 + 3 x 0.25)/4"
must_fail 3 rl-eval --responses sql-out.jsonl -p sql.jsonl --judge none --metric-cmd "jq -c '{id}'"
stderr_has "metric 'jq -c '{id}'': answer for item 0: \"score\" must be a finite number (it is missing)"
must_fail 2 rl-eval --responses sql-out.jsonl -p sql.jsonl --metric exact --metric-cmd cat

# A metric needs every reference.
printf '{"prompt": "q0"}\n' >noref.jsonl
must_fail 3 rl-eval --responses sql-out.jsonl -p noref.jsonl -n 1 --metric exact
stderr_has "'noref.jsonl' line 1: no \"response\" (the reference answer the metric needs)"
printf '{"prompt": "q0", "response": ["x"]}\n' >badref.jsonl
must_fail 3 rl-eval --responses sql-out.jsonl -p badref.jsonl -n 1 --metric exact
stderr_has "\"response\" is neither a string nor a number"

# The man page's task example.
must_pass rl-eval --responses sql-out.jsonl -p sql.jsonl --judge none --metric exact -O sql.rls --summary-json
[ -s sql.rls ] && [ "$(score)" = 0.5 ] || fail "man page task example"
ok "man page task example"
finish
