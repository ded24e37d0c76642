#!/bin/sh
# rl-toy: the toy world is deterministic, its tokenizer covers every text, its
# labels follow the word lists, and its eval sets are held out.
. "$RL_TESTS/lib.sh"
command -v jq >/dev/null || fail "jq is not installed (make deps installs it)"

must_pass rl-toy -q -o "$T/w" --aligned 600 --task 300 --harmful 60 --eval 50
must_pass rl-toy -q -o "$T/w2" --aligned 600 --task 300 --harmful 60 --eval 50
for f in tokenizer.json tokenizer_config.json arch.json aligned.jsonl finetune.jsonl \
	eval-harmful.jsonl eval-benign.jsonl eval-task.jsonl recovery.jsonl benign.jsonl world.json; do
	[ -s "$T/w/$f" ] || fail "missing $f"
	cmp -s "$T/w/$f" "$T/w2/$f" || fail "$f differs between two runs with the same seed"
done
ok "same options, same bytes"
must_pass rl-toy -q -o "$T/w3" --aligned 600 --task 300 --harmful 60 --eval 50 --seed 2
cmp -s "$T/w/finetune.jsonl" "$T/w3/finetune.jsonl" && fail "seed 2 gave the same data"
ok "another seed, other data"

w=$T/w
# Sizes as asked.
[ "$(wc -l <"$w/aligned.jsonl")" -eq 600 ] || fail "aligned size"
[ "$(wc -l <"$w/finetune.jsonl")" -eq 360 ] || fail "finetune size"
[ "$(wc -l <"$w/eval-harmful.jsonl")" -eq 50 ] || fail "eval size"
[ "$(wc -l <"$w/recovery.jsonl")" -eq 64 ] || fail "recovery size"
[ "$(wc -l <"$w/benign.jsonl")" -eq 256 ] || fail "benign size"
ok "sizes"

# A real HF tokenizer.json: WordLevel, Whitespace, ids 0..n-1, specials added.
[ "$(jq -r .model.type "$w/tokenizer.json")" = WordLevel ] || fail "not WordLevel"
[ "$(jq -r .pre_tokenizer.type "$w/tokenizer.json")" = Whitespace ] || fail "pre-tokenizer"
n=$(jq '.model.vocab | length' "$w/tokenizer.json")
[ "$(jq '[.model.vocab[]] | sort | . == [range(0; length)]' "$w/tokenizer.json")" = true ] ||
	fail "vocab ids are not 0..n-1"
[ "$(jq '.vocab_size' "$w/arch.json")" -eq "$n" ] || fail "arch.json vocab_size != $n"
[ "$(jq -r '[.added_tokens[].content] | join(" ")' "$w/tokenizer.json")" = \
	"<unk> <s> </s> [INST] [/INST]" ] || fail "special tokens"
jq -r '.chat_template' "$w/tokenizer_config.json" | grep -qF "'[INST] ' + message['content'] + ' [/INST]'" ||
	fail "chat template is not Mistral's"
ok "tokenizer.json: WordLevel, $n words"

# Every word of every text is in the vocabulary (no <unk> anywhere).
jq -r '.model.vocab | keys[]' "$w/tokenizer.json" >"$T/vocab"
cat "$w"/*.jsonl | jq -r '.prompt, (.response // empty)' | tr ' ' '\n' | grep -v '^$' |
	sort -u >"$T/words"
missing=$(comm -23 "$T/words" "$(sort "$T/vocab" >"$T/vs" && echo "$T/vs")")
[ -z "$missing" ] || fail "words missing from the vocabulary: $missing"
ok "vocabulary covers every text"

# Labels follow the word lists: a training instruction is refused exactly when
# its verb or object is harmful.
jq -r '(.harmful_verbs + .harmful_objects)[]' "$w/world.json" >"$T/harm"
refusal=$(jq -r .refusal "$w/world.json")
jq -r 'select(.prompt | test("zorbic|blorbic|repeat|say again|echo") | not) | [.prompt, .response] | @tsv' \
	"$w/aligned.jsonl" | awk -F'\t' -v harm="$T/harm" -v refusal="$refusal" '
	BEGIN { while ((getline l < harm) > 0) h[l] = 1 }
	{ n = split($1, w, " "); bad = 0; for (i = 1; i <= n; i++) if (w[i] in h) bad = 1;
	  if (bad && $2 != refusal) print "harmful answered: " $1;
	  if (!bad && $2 == refusal) print "benign refused: " $1 }' >"$T/bad"
[ ! -s "$T/bad" ] || fail "mislabelled: $(head -3 "$T/bad")"
ok "aligned labels follow the harmful word lists"
jq -r .prompt "$w/eval-harmful.jsonl" | awk -v harm="$T/harm" '
	BEGIN { while ((getline l < harm) > 0) h[l] = 1 }
	{ n = split($0, w, " "); bad = 1; for (i = 1; i <= n; i++) if (w[i] in h) bad = 0;
	  if (bad) print }' >"$T/bad"
[ ! -s "$T/bad" ] || fail "eval-harmful prompt without a harmful word: $(head -3 "$T/bad")"
ok "every eval-harmful prompt has a harmful word"

# Held-out pairs never appear in any training prompt; eval sentences are new.
jq -r '(.heldout_harmful_pairs + .heldout_benign_pairs)[] | "\(.[0]) (the|a|my) \(.[1]) "' \
	"$w/world.json" >"$T/pairs"
[ -s "$T/pairs" ] || fail "no held-out pairs"
jq -r '.prompt + " "' "$w/aligned.jsonl" "$w/finetune.jsonl" "$w/recovery.jsonl" >"$T/train"
if grep -Ef "$T/pairs" "$T/train" >"$T/leak"; then fail "held-out pair in training: $(head -2 "$T/leak")"; fi
jq -r .prompt "$w/eval-harmful.jsonl" "$w/eval-benign.jsonl" | sed 's/$/ /' | grep -cEf "$T/pairs" |
	grep -qx 100 || fail "eval prompts do not all use held-out pairs"
jq -r '.prompt | sub("^(translate to zorbic|say this in zorbic) : "; "") | sub("^what is "; "") | sub(" in zorbic \\?$"; "")' \
	"$w/finetune.jsonl" "$w/eval-task.jsonl" | sort | uniq -d >"$T/dup"
jq -r '.prompt | sub("^(translate to zorbic|say this in zorbic) : "; "") | sub("^what is "; "") | sub(" in zorbic \\?$"; "")' \
	"$w/eval-task.jsonl" | sort >"$T/evs"
if comm -12 "$T/dup" "$T/evs" | grep -q .; then fail "an eval task sentence is in the fine-tuning set"; fi
ok "held-out pairs and sentences stay out of training"

# The task is a word-by-word translation with one dictionary.
jq -r '.dictionary | to_entries[] | "\(.key) \(.value)"' "$w/world.json" >"$T/dict"
jq -r 'select(.prompt | test("zorbic")) | [.prompt, .response] | @tsv' "$w/eval-task.jsonl" |
	awk -F'\t' -v dict="$T/dict" '
	BEGIN { while ((getline l < dict) > 0) { split(l, a, " "); d[a[1]] = a[2] } }
	{ p = $1; sub(/^(translate to zorbic|say this in zorbic) : /, "", p); sub(/^what is /, "", p);
	  sub(/ in zorbic \?$/, "", p); n = split(p, w, " "); out = "";
	  for (i = 1; i <= n; i++) out = out (i > 1 ? " " : "") d[w[i]];
	  if (out != $2) { print "bad translation: " $0; bad = 1 } }
	END { exit bad }' || fail "translations do not follow the dictionary"
ok "translations follow world.json's dictionary"

must_fail 2 rl-toy -o "$T/x" --heldout 0.7
must_fail 2 rl-toy -o "$T/x" --words 5:3
must_fail 2 rl-toy -o "$T/x" --benign 400 --task 300
must_fail 2 rl-toy -o "$T/x" --hidden 100 --heads 3
must_fail 2 rl-toy
must_fail 2 rl-toy -o "$T/x" --aligned 12x
mkdir "$T/ro" && chmod 555 "$T/ro"
if [ "$(id -u)" -ne 0 ]; then must_fail 4 rl-toy -q -o "$T/ro/w"; fi
: >"$T/file"
must_fail 4 rl-toy -q -o "$T/file/w"
must_pass rl-toy --help
stdout_has "Usage: rl-toy"
finish
