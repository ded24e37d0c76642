#!/bin/sh
# {"prompt": ...} lines in rl-direction and rl-grad: they go through the model's
# chat template and tokenizer.json exactly as rl-tok shows, so the streams equal
# those made from rl-tok's ids; --template/--raw/--system reach them; a model
# without tokenizer.json or chat template is refused naming the prompt line; id
# files never need a tokenizer.
. "$RL_TESTS/lib.sh"
command -v jq >/dev/null || fail "jq is not installed (make deps installs it)"
E="$F/engine/llama_f32/model"
cd "$T"
# the records of a stream, without its header and end (which name the prompt file)
body() {
	rl-dump -f "$1" | sed '1d;$d'
}
mkdir m
ln -s "$E/config.json" "$E/model.safetensors" m/
# a WordLevel tokenizer within the test model's 64 ids, Mistral's chat template
jq -n '{version: "1.0", added_tokens: ([["<unk>", 0], ["<s>", 1], ["</s>", 2], ["[INST]", 3],
	["[/INST]", 4]] | map({id: .[1], content: .[0], single_word: false, lstrip: false,
	rstrip: false, normalized: false, special: true})),
	normalizer: null, pre_tokenizer: {type: "Whitespace"}, post_processor: null, decoder: null,
	model: {type: "WordLevel", unk_token: "<unk>", vocab: ({"<unk>": 0, "<s>": 1, "</s>": 2,
	"[INST]": 3, "[/INST]": 4} + ([range(5; 64)] | map({key: "w\(.)", value: .}) | from_entries))}}' \
	>m/tokenizer.json
jq -n '{bos_token: "<s>", eos_token: "</s>", chat_template:
	"{{ bos_token }}{% for message in messages %}{% if message[\u0027role\u0027] == \u0027user\u0027 %}{{ \u0027[INST] \u0027 + message[\u0027content\u0027] + \u0027 [/INST]\u0027 }}{% endif %}{% endfor %}"}' \
	>m/tokenizer_config.json
printf '{"prompt": "w5 w6 w7"}\n{"prompt": "w63 w9 nope w10"}\n{"prompt": "w11"}\n' >text.jsonl

# rl-tok shows the ids; the tools given the text equal the tools given those ids
must_pass rl-tok -m m -p text.jsonl
jq -c '{ids}' "$T/stdout" >ids.jsonl
[ "$(head -n 1 ids.jsonl)" = '{"ids":[1,3,5,6,7,4]}' ] || fail "rl-tok: $(head -n 1 ids.jsonl)"
must_pass rl-direction -v -m m -p text.jsonl -L 2 -o text.rls
stderr_has "template: the model's own, from 'm/tokenizer_config.json'"
must_pass rl-direction -m m -p ids.jsonl -L 2 -o ids.rls
body text.rls >text.dump
body ids.rls >ids.dump
test_cmp ids.dump text.dump
must_pass rl-grad -m m -p text.jsonl -d text.rls -b 2 -o gt.rls
must_pass rl-grad -m m -p ids.jsonl -d text.rls -b 2 -o gi.rls
body gt.rls >gt.dump
body gi.rls >gi.dump
test_cmp gi.dump gt.dump
# --raw and --system reach the tokenizer
must_pass rl-tok -m m --raw -p text.jsonl
jq -c '{ids}' "$T/stdout" >raw-ids.jsonl
must_pass rl-direction -m m --raw -p text.jsonl -L 2 -o raw.rls
must_pass rl-direction -m m -p raw-ids.jsonl -L 2 -o raw-ids.rls
body raw.rls >raw.dump
body raw-ids.rls >raw-ids.dump
test_cmp raw-ids.dump raw.dump
cmp -s raw.dump text.dump && fail "--raw changed nothing"
must_pass rl-direction -m m --template mistral --system w20 -p text.jsonl -L 2 -o sys.rls
body sys.rls >sys.dump
cmp -s sys.dump text.dump && fail "--system changed nothing"
ok "--raw and --system"

# refusals: no tokenizer.json (named with the line), no chat template, bad options
mkdir bare
ln -s "$E/config.json" "$E/model.safetensors" bare/
must_fail 3 rl-direction -m bare -p text.jsonl -L 2
stderr_has "text.jsonl' line 1: 'bare/tokenizer.json': no tokenizer.json"
must_pass rl-direction -m bare -p ids.jsonl -L 2 -o bare.rls
jq 'del(.chat_template)' m/tokenizer_config.json >cfg && mkdir notmpl &&
	ln -s "$E/config.json" "$E/model.safetensors" "$T/m/tokenizer.json" notmpl/ &&
	mv cfg notmpl/tokenizer_config.json
must_fail 3 rl-grad -m notmpl -p text.jsonl -d text.rls
stderr_has "'notmpl': the model has no chat template"
must_pass rl-grad -m notmpl --template mistral -p text.jsonl -d text.rls -b 2 -o g2.rls
body g2.rls >g2.dump
test_cmp gt.dump g2.dump
must_fail 2 rl-direction -m m --raw --template chatml -p text.jsonl -L 2
must_fail 2 rl-grad -m m --template nosuch -p text.jsonl -d text.rls
stderr_has "'nosuch': neither a built-in template"
finish
