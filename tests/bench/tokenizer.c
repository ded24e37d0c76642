/* bench/tokenizer — encoding speed of lib/tokenizer on a text file.
 *
 *   build/bench/tokenizer MODEL_DIR TEXT_FILE [REPS]
 *
 * Encodes the file as one string ("whole") and line by line ("lines"), REPS
 * times each (default 3), and prints one JSON line per mode: tokens, best
 * seconds, tokens/s, and an FNV-1a checksum of the ids so that
 * tests/bench/tokenizer.sh can check they equal HuggingFace tokenizers' (which
 * it times in the same run).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cli.h"
#include "core/file.h"
#include "core/jsonl.h"
#include "core/util.h"
#include "text/tokenizer.h"

static uint64_t fnv(uint64_t h, const int32_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= (uint32_t)v[i];
		h *= 1099511628211ULL;
	}
	return h;
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: %s MODEL_DIR TEXT_FILE [REPS]\n", argv[0]);
		return 2;
	}
	int reps = argc == 4 ? atoi(argv[3]) : 3;
	if (reps < 1)
		reps = 1;
	double t0 = rl_now();
	rl_tokenizer *t;
	int rc = rl_tokenizer_load(argv[1], &t);
	if (rc) {
		fprintf(stderr, "%s\n", rl_errmsg());
		return rc;
	}
	double load = rl_now() - t0;
	char *text;
	size_t len;
	if ((rc = rl_read_file(argv[2], &text, &len))) {
		fprintf(stderr, "%s\n", rl_errmsg());
		return rc;
	}
	for (int mode = 0; mode < 2; mode++) {
		double best = 1e30, first = 0;
		size_t ntok = 0;
		uint64_t sum = 0;
		for (int r = 0; r < reps; r++) {
			rl_ids ids = {0};
			uint64_t h = 1469598103934665603ULL;
			size_t n = 0;
			double a = rl_now();
			if (mode == 0) {
				rc = rl_tok_encode(t, text, len, 0, &ids);
				h = fnv(h, ids.v, ids.n);
				n = ids.n;
			} else {
				for (size_t i = 0; i < len && !rc;) {
					const char *nl = memchr(text + i, '\n', len - i);
					size_t e = nl ? (size_t)(nl - text) : len;
					ids.n = 0;
					rc = rl_tok_encode(t, text + i, e - i, 0, &ids);
					h = fnv(h, ids.v, ids.n);
					n += ids.n;
					i = e + 1;
				}
			}
			double s = rl_now() - a;
			rl_ids_free(&ids);
			if (rc) {
				fprintf(stderr, "%s\n", rl_errmsg());
				return rc;
			}
			if (r == 0)
				first = s;
			if (s < best)
				best = s;
			ntok = n;
			sum = h;
		}
		printf("{\"impl\": \"realign\", \"mode\": \"%s\", \"bytes\": %zu, \"tokens\": %zu, "
		       "\"seconds\": %.4f, \"tokens_per_s\": %.0f, \"first_tokens_per_s\": %.0f, "
		       "\"load_s\": %.3f, \"checksum\": \"%016llx\"}\n",
		       mode ? "lines" : "whole", len, ntok, best, (double)ntok / best,
		       (double)ntok / first, load, (unsigned long long)sum);
	}
	free(text);
	rl_tokenizer_free(t);
	return 0;
}
