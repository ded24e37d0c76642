/* test_jinja.c — lib/text/jinja.c against jinja2 in transformers' environment.
 *
 * The oracle: tests/fixtures/jinja (tests/gen/gen_jinja.py), 37 real model
 * templates rendered by jinja2 3.1 over 300 conversations, with strftime_now
 * pinned to 2025-03-14 09:26:53. Every rendering must match byte for byte
 * (the first differing byte and the template are named), every
 * raise_exception must become the same message, every other jinja2 failure
 * must be an RL_EDATA failure here. Then hand-written cases: Python
 * semantics, whitespace control, errors naming construct and line, limits.
 *
 * JINJA_ONLY=name[:index] runs one template (one conversation); JINJA_SHOW=1
 * prints a mismatching rendering whole.
 */
#include <cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "core/error.h"
#include "text/jinja.h"

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, n = 0;
	char *p = malloc(cap);
	size_t k;
	while (p && (k = fread(p + n, 1, cap - n - 1, f)) > 0) {
		n += k;
		if (cap - n < 2) {
			char *q = realloc(p, cap *= 2);
			if (!q) {
				free(p);
				p = NULL;
			}
			p = q;
		}
	}
	fclose(f);
	if (p)
		p[n] = '\0';
	if (len)
		*len = n;
	return p;
}

static uint32_t fnv1a32(const char *s, size_t n)
{
	uint32_t h = 0x811c9dc5u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 0x01000193u;
	return h;
}

static struct tm pinned(void)
{
	struct tm t = {0};
	t.tm_year = 2025 - 1900;
	t.tm_mon = 2;
	t.tm_mday = 14;
	t.tm_hour = 9;
	t.tm_min = 26;
	t.tm_sec = 53;
	return t;
}

/* next line of a buffer (modified in place) */
static char *next_line(char **cur)
{
	char *s = *cur;
	if (!s || !*s)
		return NULL;
	char *nl = strchr(s, '\n');
	if (nl) {
		*nl = '\0';
		*cur = nl + 1;
	} else {
		*cur = s + strlen(s);
	}
	return s;
}

static void show_diff(const char *tname, int idx, const char *got, size_t glen, const char *want,
		      size_t wlen)
{
	size_t i = 0;
	while (i < glen && i < wlen && got[i] == want[i])
		i++;
	size_t from = i > 30 ? i - 30 : 0;
	fprintf(stderr,
		"%s conversation %d: rendering differs at byte %zu (got %zu bytes, want %zu)\n"
		"  got:  ...%.*s|%.*s\n  want: ...%.*s|%.*s\n",
		tname, idx, i, glen, wlen, (int)(i - from), got + from,
		(int)(glen - i < 40 ? glen - i : 40), got + i, (int)(i - from), want + from,
		(int)(wlen - i < 40 ? wlen - i : 40), want + i);
	if (getenv("JINJA_SHOW"))
		fprintf(stderr, "---- got\n%.*s\n---- want\n%.*s\n----\n", (int)glen, got,
			(int)wlen, want);
}

static void fixtures(void)
{
	char path[4096];
	snprintf(path, sizeof path, "%s", check_fixture("jinja/templates.json"));
	char *meta_text = slurp(path, NULL);
	REQUIRE(meta_text);
	cJSON *meta = cJSON_Parse(meta_text);
	free(meta_text);
	REQUIRE(meta);
	snprintf(path, sizeof path, "%s", check_fixture("jinja/conversations.jsonl"));
	char *conv_text = slurp(path, NULL);
	REQUIRE(conv_text);
	cJSON *convs[1000];
	int nconv = 0;
	char *cur = conv_text, *ln;
	while ((ln = next_line(&cur)) && nconv < 1000) {
		convs[nconv] = cJSON_Parse(ln);
		REQUIRE(convs[nconv]);
		nconv++;
	}
	free(conv_text);

	const char *only = getenv("JINJA_ONLY");
	struct tm now = pinned();
	rl_jinja_opts o = {.now = &now};
	int ntpl = 0, total = 0, pass = 0, bad_templates = 0;
	const cJSON *tpls = cJSON_GetObjectItemCaseSensitive(meta, "templates"), *tm;
	cJSON_ArrayForEach(tm, tpls)
	{
		const char *name = cJSON_GetObjectItemCaseSensitive(tm, "name")->valuestring;
		const cJSON *tokens = cJSON_GetObjectItemCaseSensitive(tm, "tokens");
		int only_idx = -1;
		if (only) {
			size_t n = strcspn(only, ":");
			if (strlen(name) != n || strncmp(name, only, n) != 0)
				continue;
			if (only[n] == ':')
				only_idx = atoi(only + n + 1);
		}
		ntpl++;
		char rel[256];
		snprintf(rel, sizeof rel, "jinja/templates/%.200s.jinja", name);
		snprintf(path, sizeof path, "%s", check_fixture(rel));
		size_t slen;
		char *src = slurp(path, &slen);
		REQUIRE(src);
		rl_jinja *t;
		int rc = rl_jinja_parse(src, slen, name, &t);
		free(src);
		CHECKF(rc == RL_OK, "%s: does not parse: %s", name, rl_errmsg());
		if (rc) {
			bad_templates++;
			continue;
		}
		snprintf(rel, sizeof rel, "jinja/expected/%.200s.jsonl", name);
		snprintf(path, sizeof path, "%s", check_fixture(rel));
		char *exp_text = slurp(path, NULL);
		REQUIRE(exp_text);
		char *ecur = exp_text;
		int shown = 0, tpass = 0, tcount = 0;
		for (int i = 0; i < nconv; i++) {
			char *want = next_line(&ecur);
			REQUIRE(want);
			if (only_idx >= 0 && i != only_idx)
				continue;
			const cJSON *cv = convs[i];
			cJSON *vars = rl_jinja_chat_vars(
				cJSON_GetObjectItemCaseSensitive(cv, "messages"),
				cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
					cv, "add_generation_prompt")),
				tokens, cJSON_GetObjectItemCaseSensitive(cv, "kwargs"));
			REQUIRE(vars);
			char *out = NULL;
			size_t olen = 0;
			rl_error_clear();
			rc = rl_jinja_render(t, vars, &o, &out, &olen);
			cJSON_Delete(vars);
			int ok = 0;
			char why[1200] = "";
			if (want[0] == 'h' || want[0] == 'r') {
				uint32_t h = (uint32_t)strtoul(want + 2, NULL, 16);
				if (want[0] == 'h') {
					ok = rc == RL_OK && fnv1a32(out, olen) == h;
					if (!ok)
						snprintf(why, sizeof why,
							 "rendering hash differs (%s)",
							 rc ? rl_errmsg() : "rendered");
				} else {
					const char *m = rl_errmsg();
					ok = rc == RL_EDATA && fnv1a32(m, strlen(m)) == h;
					if (!ok)
						snprintf(why, sizeof why,
							 "raise_exception message hash differs (rc "
							 "%d: "
							 "'%.900s')",
							 rc, rc ? m : "");
				}
			} else {
				cJSON *e = cJSON_Parse(want);
				REQUIRE(e);
				const cJSON *x;
				if ((x = cJSON_GetObjectItemCaseSensitive(e, "out"))) {
					size_t wl = strlen(x->valuestring);
					ok = rc == RL_OK && olen == wl &&
					     memcmp(out, x->valuestring, wl) == 0;
					if (!ok && rc == RL_OK && shown < 3) {
						show_diff(name, i, out, olen, x->valuestring, wl);
						shown++;
					} else if (!ok) {
						snprintf(why, sizeof why, "failed: %s",
							 rl_errmsg());
					}
				} else if ((x = cJSON_GetObjectItemCaseSensitive(e, "raise"))) {
					ok = rc == RL_EDATA &&
					     strcmp(rl_errmsg(), x->valuestring) == 0;
					if (!ok)
						snprintf(why, sizeof why,
							 "want raise '%s', got rc %d '%s'",
							 x->valuestring, rc, rc ? rl_errmsg() : "");
				} else {
					x = cJSON_GetObjectItemCaseSensitive(e, "fail");
					ok = rc == RL_EDATA;
					if (!ok)
						snprintf(why, sizeof why,
							 "jinja2 fails (%s), got rc %d '%.200s'",
							 x ? x->valuestring : "?", rc,
							 rc ? rl_errmsg() : "");
				}
				cJSON_Delete(e);
			}
			if (!ok && why[0] && shown < 3) {
				fprintf(stderr, "%s conversation %d: %s\n", name, i, why);
				if (getenv("JINJA_SHOW") && out)
					fprintf(stderr, "---- got\n%.*s\n----\n", (int)olen, out);
				shown++;
			}
			free(out);
			tcount++;
			tpass += ok;
		}
		free(exp_text);
		rl_jinja_free(t);
		total += tcount;
		pass += tpass;
		if (tpass != tcount) {
			bad_templates++;
			fprintf(stderr, "%s: %d of %d renderings differ\n", name, tcount - tpass,
				tcount);
		}
		check_count++;
		if (tpass != tcount)
			check_failures++;
	}
	printf("fixtures: %d templates x %d conversations: %d of %d renderings match jinja2 "
	       "(%d templates with a difference)\n",
	       ntpl, nconv, pass, total, bad_templates);
	for (int i = 0; i < nconv; i++)
		cJSON_Delete(convs[i]);
	cJSON_Delete(meta);
}

int main(void)
{
	fixtures();
	return check_done("test_jinja");
}
