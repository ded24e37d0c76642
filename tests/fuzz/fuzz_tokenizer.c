/* fuzz_tokenizer.c — libFuzzer target for tokenizer.json loading, encode, decode.
 *
 * The input is a tokenizer.json; when it loads, a few fixed strings are encoded
 * and their ids decoded, the ids must be valid token ids, and a second pass over
 * the input's own bytes (as text, when they are UTF-8) must not crash either.
 * Besides "no crash, no UB, no leak": decode(encode(s)) never fails on a loaded
 * tokenizer.
 *
 * seeds: tests/fuzz/tokenizer-seeds tests/fixtures/tokenizer/wordlevel
 * dict: tests/fuzz/tokenizer.dict
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/jsonl.h"
#include "text/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void roundtrip(const rl_tokenizer *t, const char *s, size_t n)
{
	rl_ids ids = {0};
	if (rl_tok_encode(t, s, n, 0, &ids) == 0) {
		for (size_t i = 0; i < ids.n; i++)
			if (ids.v[i] < 0 || ids.v[i] >= rl_tok_n_vocab(t))
				__builtin_trap();
		char *text;
		size_t len;
		for (int skip = 0; skip < 2; skip++) {
			if (rl_tok_decode(t, ids.v, ids.n, skip, &text, &len) != 0)
				__builtin_trap();
			if (!rl_utf8_valid(text, len))
				__builtin_trap();
			free(text);
		}
	}
	rl_ids_free(&ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	rl_tokenizer *t;
	if (rl_tokenizer_load_mem((const char *)data, size, NULL, 0, "fuzz", &t) != 0)
		return 0;
	static const char *const texts[] = {"",
					    " ",
					    "Hello world! It's 2024.",
					    "<s>[INST] hi [/INST]",
					    "  a\tb\n\nc  ",
					    "\xc3\xa9\xe4\xb8\xad\xf0\x9f\xa6\x9c e\xcc\x81",
					    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
		roundtrip(t, texts[i], strlen(texts[i]));
	if (size < 4096 && rl_utf8_valid((const char *)data, size))
		roundtrip(t, (const char *)data, size);
	rl_tokenizer_free(t);
	return 0;
}
