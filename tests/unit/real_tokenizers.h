/* real_tokenizers.h — the five real tokenizer files the conformance tests read
 * (tests/unit/test_tokenizer_conformance.c, test_tokenizer_unicode.c).
 *
 * Mistral v0.1, Qwen2.5 and Mistral NeMo are committed as xz copies; Llama 3.2
 * and Gemma 3 are not (their licences, tests/fixtures/tokenizer/README.md) and
 * come from shared/tokenizers. A missing file fails the test unless
 * RL_TOK_ONLY_COMMITTED waives it, loudly.
 */
#ifndef RL_REAL_TOKENIZERS_H
#define RL_REAL_TOKENIZERS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/error.h"
#include "core/file.h"
#include "core/jsonl.h"

static const char *const real_tokenizer_names[] = {"mistral_v01", "llama3_2", "qwen2_5", "gemma3",
						   "mistral_nemo"};

/* Decompresses path with xz(1); fails the test loudly if that does not work. */
static char *read_xz(const char *path, size_t *len)
{
	char cmd[13100];
	snprintf(cmd, sizeof cmd, "xz -dc '%s'", path);
	FILE *p = popen(cmd, "r");
	REQUIRE(p != NULL);
	size_t cap = 1 << 20, n = 0;
	char *buf = malloc(cap);
	REQUIRE(buf != NULL);
	for (;;) {
		if (cap - n < 65536) {
			cap *= 2;
			buf = realloc(buf, cap);
			REQUIRE(buf != NULL);
		}
		size_t got = fread(buf + n, 1, cap - n - 1, p);
		if (!got)
			break;
		n += got;
	}
	int st = pclose(p);
	if (st != 0 || n == 0) {
		fprintf(stderr, "cannot decompress '%s' (is xz installed? make deps)\n", path);
		exit(1);
	}
	buf[n] = 0;
	*len = n;
	return buf;
}

/* The committed xz copy, else the file in shared/tokenizers (Llama 3.2 and Gemma 3
 * are not committed, see tests/fixtures/tokenizer/README.md): $RL_SHARED_TOKENIZERS,
 * then shared/tokenizers beside the repository (where CI lays it). */
static char *read_tokenizer_file(const char *name, const char *file, size_t *len)
{
	char rel[160], p[13000];
	snprintf(rel, sizeof rel, "tokenizer/%s/%s.xz", name, file);
	snprintf(p, sizeof p, "%s", check_fixture(rel));
	if (access(p, R_OK) == 0)
		return read_xz(p, len);
	const char *env = getenv("RL_SHARED_TOKENIZERS");
	char dirs[2][4200];
	snprintf(dirs[0], sizeof dirs[0], "%s", env ? env : "");
	snprintf(dirs[1], sizeof dirs[1], "%s/../../../shared/tokenizers", check_fixture(""));
	for (int i = 0; i < 2; i++) {
		if (!dirs[i][0])
			continue;
		snprintf(p, sizeof p, "%s/%s/%s", dirs[i], name, file);
		char *buf;
		if (access(p, R_OK) == 0 && rl_read_file(p, &buf, len) == RL_OK)
			return buf;
	}
	return NULL;
}

/* Reads name's tokenizer.json and tokenizer_config.json; 0 when they are not
 * there, after saying so (a failed check unless RL_TOK_ONLY_COMMITTED is set). */
static int read_real_tokenizer(const char *name, char **json, size_t *len, char **cfg, size_t *clen)
{
	const char *optout = getenv("RL_TOK_ONLY_COMMITTED");
	*json = read_tokenizer_file(name, "tokenizer.json", len);
	*cfg = read_tokenizer_file(name, "tokenizer_config.json", clen);
	if (*json && *cfg)
		return 1;
	/* never a silent skip: missing is a failure unless explicitly waived */
	fprintf(stderr,
		"%s: tokenizer.json not found (not committed for its licence; put "
		"shared/tokenizers beside the repository or set RL_SHARED_TOKENIZERS)%s\n",
		name, optout ? ": NOT CHECKED (RL_TOK_ONLY_COMMITTED is set)" : "");
	CHECKF(optout != NULL, "%s: real tokenizer file not available", name);
	free(*json);
	free(*cfg);
	return 0;
}

#endif
