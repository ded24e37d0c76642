/* test_tdata.c — rl-train's examples and sampler: labels on response tokens
 * only, every example once per epoch, the same order for the same seed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "compute/tdata.h"
#include "core/error.h"

static const char *write_tmp(const char *text)
{
	static char path[64];
	snprintf(path, sizeof path, "/tmp/rl-tdata-%d.jsonl", (int)getpid());
	FILE *f = fopen(path, "w");
	REQUIRE(f);
	fputs(text, f);
	fclose(f);
	return path;
}

int main(void)
{
	/* 5 examples: example i has prompt [i, 1] and response [2 .. 2+i] */
	char text[2048] = "";
	for (int i = 0; i < 5; i++) {
		char line[256];
		int k = snprintf(line, sizeof line, "{\"prompt_ids\": [%d, 1], \"response_ids\": [",
				 i);
		for (int j = 0; j <= i; j++)
			k += snprintf(line + k, sizeof line - (size_t)k, "%s%d", j ? ", " : "",
				      2 + j);
		snprintf(line + k, sizeof line - (size_t)k, "]}\n\n");
		strcat(text, line);
	}
	const char *path = write_tmp(text);
	rl_tdata d;
	rl_tdata_opts o = {.vocab_size = 10, .max_len = 16};
	REQUIRE(rl_tdata_read(&d, path, &o) == 0);
	CHECK_EQ_INT(d.n, 5);
	CHECK_EQ_INT(d.nlabelled, 1 + 2 + 3 + 4 + 5);
	CHECK_EQ_INT(d.max_len, 7);

	rl_sampler s, s2;
	REQUIRE(rl_sampler_init(&s, &d, 3) == 0);
	REQUIRE(rl_sampler_init(&s2, &d, 3) == 0);
	int seen[5] = {0};
	const rl_tbatch *b, *b2;
	for (int step = 0; step < 5; step++) { /* 5 batches of 3 = 3 epochs */
		REQUIRE(rl_sampler_next(&s, 3, &b) == 0);
		REQUIRE(rl_sampler_next(&s2, 3, &b2) == 0);
		CHECK_EQ_INT(b->n, 3);
		CHECK(b->start[3] == b2->start[3] &&
		      memcmp(b->ids, b2->ids, (size_t)b->start[3] * sizeof(int32_t)) == 0);
		for (int q = 0; q < b->n; q++) {
			int st = b->start[q], n = b->start[q + 1] - st, ex = b->ids[st];
			REQUIRE(ex >= 0 && ex < 5);
			seen[ex]++;
			CHECK_EQ_INT(n, 3 + ex);
			/* positions 0 (predicts the prompt's 2nd token) unlabelled;
			 * position 1 .. n-2 predict the response; the last none */
			CHECK_EQ_INT(b->target[st], -1);
			for (int j = 1; j < n - 1; j++)
				CHECK_EQ_INT(b->target[st + j], b->ids[st + j + 1]);
			CHECK_EQ_INT(b->target[st + n - 1], -1);
		}
		/* after each whole epoch every example was seen equally often */
		if ((step + 1) * 3 % 5 == 0)
			for (int e = 0; e < 5; e++)
				CHECK_EQ_INT(seen[e], (step + 1) * 3 / 5);
	}
	CHECK_EQ_INT(s.epoch, 2);
	rl_sampler_free(&s);
	rl_sampler_free(&s2);

	/* A token budget: the same examples in the same order as batches of
	 * one, cut where the next example would exceed the budget (an example
	 * longer than the budget goes alone). */
	REQUIRE(rl_sampler_init(&s, &d, 5) == 0);
	REQUIRE(rl_sampler_init(&s2, &d, 5) == 0);
	int alone = 0;
	for (int step = 0; step < 12; step++) {
		const int budget = 11;
		REQUIRE(rl_sampler_next_tokens(&s, budget, &b) == 0);
		REQUIRE(b->n >= 1);
		int T = b->start[b->n];
		CHECKF(T <= budget || b->n == 1, "%d tokens in %d examples", T, b->n);
		alone += T > budget;
		for (int q = 0; q < b->n; q++) {
			REQUIRE(rl_sampler_next(&s2, 1, &b2) == 0);
			int st = b->start[q], n = b->start[q + 1] - st;
			CHECK(n == b2->start[1] &&
			      memcmp(b->ids + st, b2->ids, (size_t)n * sizeof(int32_t)) == 0 &&
			      memcmp(b->target + st, b2->target, (size_t)n * sizeof(int32_t)) == 0);
		}
		/* the next example would not have fitted */
		int e = s.next < d.n ? s.perm[s.next] : -1;
		if (e >= 0)
			CHECK(T + (d.start[e + 1] - d.start[e]) > budget);
	}
	CHECK(alone == 0);
	REQUIRE(rl_sampler_next_tokens(&s, 2, &b) == 0); /* every example is longer */
	CHECK(b->n == 1);
	CHECK(rl_sampler_next_tokens(&s, 0, &b) == RL_USAGE);
	rl_sampler_free(&s);
	rl_sampler_free(&s2);
	rl_tdata_free(&d);

	/* -n takes the first N; errors name the line. */
	o.max_examples = 2;
	REQUIRE(rl_tdata_read(&d, path, &o) == 0);
	CHECK_EQ_INT(d.n, 2);
	rl_tdata_free(&d);
	o.max_examples = 0;
	o.max_len = 6;
	CHECK(rl_tdata_read(&d, path, &o) == RL_EDATA);
	CHECKF(strstr(rl_errmsg(), "line 9: 7 tokens") != NULL, "%s", rl_errmsg());
	path = write_tmp("{\"prompt\": \"hi\", \"response\": \"there\"}\n");
	CHECK(rl_tdata_read(&d, path, &o) == RL_EDATA);
	CHECKF(strstr(rl_errmsg(), "line 1: text examples need a tokenizer") != NULL, "%s",
	       rl_errmsg());
	unlink(path);
	return check_done("test_tdata");
}
