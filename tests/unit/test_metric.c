/* test_metric.c — task metrics and the Porter stemmer.
 *
 * Independent truths: NLTK's PorterStemmer and Google's rouge_score (fixtures
 * from tests/gen/gen_rouge.py), plus small cases computed by hand below.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/error.h"
#include "core/jsonl.h"
#include "eval/metric.h"
#include "eval/stem.h"

static void stem_is(const char *w, const char *want)
{
	char buf[256];
	size_t n = strlen(w);
	memcpy(buf, w, n);
	n = rl_porter_stem(buf, n);
	buf[n] = '\0';
	CHECKF(strcmp(buf, want) == 0, "stem('%s') = '%s', want '%s'", w, buf, want);
}

/* Every word of the NLTK fixture stems to NLTK's answer. */
static void test_stems_fixture(void)
{
	FILE *fp = fopen(check_fixture("rouge/stems.tsv"), "r");
	REQUIRE(fp);
	char line[512];
	int n = 0, bad = 0;
	while (fgets(line, sizeof line, fp)) {
		char *tab = strchr(line, '\t'), *nl = strchr(line, '\n');
		REQUIRE(tab && nl);
		*tab = *nl = '\0';
		char buf[256];
		size_t len = strlen(line);
		memcpy(buf, line, len);
		len = rl_porter_stem(buf, len);
		buf[len] = '\0';
		if (strcmp(buf, tab + 1) != 0 && bad++ < 10)
			fprintf(stderr, "stem('%s') = '%s', NLTK says '%s'\n", line, buf, tab + 1);
		n++;
	}
	fclose(fp);
	CHECKF(bad == 0, "%d of %d stems differ from NLTK", bad, n);
	CHECK(n > 3000);
}

/* The paper's examples (Porter 1980) as NLTK's extended mode answers them. */
static void test_stems_hand(void)
{
	stem_is("caresses", "caress");
	stem_is("ponies", "poni");
	stem_is("ties", "tie"); /* NLTK: four-letter "ies" -> "ie" */
	stem_is("cats", "cat");
	stem_is("agreed", "agre");
	stem_is("plastered", "plaster");
	stem_is("motoring", "motor");
	stem_is("hopping", "hop");
	stem_is("falling", "fall");
	stem_is("filing", "file");
	stem_is("happy", "happi");
	stem_is("enjoy", "enjoy");
	stem_is("relational", "relat");
	stem_is("conditional", "condit");
	stem_is("dying", "die"); /* irregular form */
	stem_is("skies", "sky");
	stem_is("as", "as"); /* <= 2 letters untouched */
	stem_is("generalizations", "gener");
	stem_is("controlling", "control");
	stem_is("yyyy", "yyyi"); /* y c-v-c-v: the last y follows a consonant y */
}

static void test_exact_contains(void)
{
	CHECK(rl_metric_exact("SELECT 1", " SELECT 1\n"));
	CHECK(rl_metric_exact("\u3000x\u2028", "x")); /* Unicode spaces strip too */
	CHECK(rl_metric_exact("", " \t\n"));
	CHECK(!rl_metric_exact("x y", "x  y")); /* inner whitespace matters */
	CHECK(!rl_metric_exact("select 1", "SELECT 1"));
	CHECK(!rl_metric_exact("x\u200b", "x")); /* ZERO WIDTH SPACE is not isspace() */
	CHECK(rl_metric_contains("  ls -la ", "run: ls -la /tmp"));
	CHECK(!rl_metric_contains("ls -la", "ls -l"));
	CHECK(rl_metric_contains(" ", "anything")); /* empty after strip */
}

static void test_label(void)
{
	/* response.strip()[:10] must contain the label. */
	CHECK(rl_metric_label_hit("1", "1. It is toxic"));
	CHECK(rl_metric_label_hit(" 1\n", "\n  Answer: 1")); /* "Answer: 1" is 9 chars */
	CHECK(!rl_metric_label_hit("1", "The answer is 1")); /* "The answer" */
	CHECK(rl_metric_label_hit("1", "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e91"));
	CHECK(!rl_metric_label_hit(
		"1", "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e91"));

	/* Hand-computed confusion: refs 1,1,1,0,0 with hits y,y,n,y,n:
	 * TP=2 FN=1 TN=1 FP=1 -> P=2/3 R=2/3, F1 = 2(4/9)/(4/3 + 1e-9). */
	rl_label_counts c = {0, 0, 0, 0};
	rl_label_add(&c, "1", "1", 1);
	rl_label_add(&c, " 1", "1", 1);
	rl_label_add(&c, "1", "1", 0);
	rl_label_add(&c, "0", "1", 1);
	rl_label_add(&c, "0", "1", 0);
	CHECK_EQ_INT(c.tp, 2);
	CHECK_EQ_INT(c.fn, 1);
	CHECK_EQ_INT(c.tn, 1);
	CHECK_EQ_INT(c.fp, 1);
	double p, r, f = rl_label_f1(&c, &p, &r);
	CHECK(fabs(p - 2.0 / 3) < 1e-15 && fabs(r - 2.0 / 3) < 1e-15);
	CHECK(fabs(f - (2 * (4.0 / 9)) / (4.0 / 3 + 1e-9)) < 1e-15);
	rl_label_counts z = {0, 0, 0, 0};
	CHECK(rl_label_f1(&z, NULL, NULL) == 0);
}

static void rouge_is(const char *ref, const char *resp, double f1, double f2, double fl)
{
	rl_rouge_score s1, s2, sl;
	REQUIRE(rl_rouge_n(ref, resp, 1, &s1) == RL_OK);
	REQUIRE(rl_rouge_n(ref, resp, 2, &s2) == RL_OK);
	REQUIRE(rl_rouge_l(ref, resp, &sl) == RL_OK);
	CHECKF(fabs(s1.f - f1) < 1e-12, "rouge1('%s','%s') = %.17g, want %.17g", ref, resp, s1.f,
	       f1);
	CHECKF(fabs(s2.f - f2) < 1e-12, "rouge2('%s','%s') = %.17g, want %.17g", ref, resp, s2.f,
	       f2);
	CHECKF(fabs(sl.f - fl) < 1e-12, "rougeL('%s','%s') = %.17g, want %.17g", ref, resp, sl.f,
	       fl);
}

static void test_rouge_hand(void)
{
	/* ref: the cat sat on the mat (6 tokens); resp: the cat is on the mat (6).
	 * Unigrams: the 2, cat, on, mat -> 5 of 6 each way: F = 5/6.
	 * Bigrams: the-cat, on-the, the-mat shared of 5 each: F = 3/5.
	 * LCS: the cat on the mat = 5: F = 5/6. */
	rouge_is("The cat sat on the mat.", "the cat is on the mat", 5.0 / 6, 3.0 / 5, 5.0 / 6);
	/* Stemming: "Cats running quickly" -> cat run quickli; "the cat runs quick"
	 * -> the cat run quick. Unigrams: cat, run shared: P = 2/4, R = 2/3,
	 * F = 2(1/2)(2/3)/(1/2 + 2/3) = 4/7. Bigrams: cat-run shared: P = 1/3,
	 * R = 1/2, F = 2/5. LCS: cat run = 2: F = 4/7. */
	rouge_is("Cats running quickly", "the cat runs quick", 4.0 / 7, 2.0 / 5, 4.0 / 7);
	/* Clipping: ref a a a b, resp a b b: unigrams min(3,1) + min(1,2) = 2:
	 * P = 2/3, R = 2/4, F = 4/7. Bigrams ref aa aa ab, resp ab bb: 1 shared:
	 * P = 1/2 R = 1/3 F = 2/5. LCS a b = 2: F = 4/7. */
	rouge_is("a a a b", "a b b", 4.0 / 7, 2.0 / 5, 4.0 / 7);
	/* Word order: LCS of x y z and z y x is 1: F = 1/3; no bigram shared. */
	rouge_is("x y z", "z y x", 1.0, 0.0, 1.0 / 3);
	/* Nothing to count. */
	rouge_is("", "", 0, 0, 0);
	rouge_is("!!!", "hello", 0, 0, 0);
	/* One token each side, equal: rouge2 has no bigrams: P = 0/max(0,1). */
	rouge_is("Hello!", "hello", 1, 0, 1);
}

static int json_tokens_equal(const cJSON *arr, const char *text)
{
	char *buf;
	size_t *toks, n;
	if (rl_rouge_tokenize(text, 1, &buf, &toks, &n))
		return 0;
	int ok = (size_t)cJSON_GetArraySize(arr) == n;
	for (size_t i = 0; ok && i < n; i++)
		ok = strcmp(cJSON_GetArrayItem(arr, (int)i)->valuestring, buf + toks[i]) == 0;
	free(buf);
	free(toks);
	return ok;
}

/* rouge_score on generated sentences: tokens equal, scores within 1e-12
 * (the same double operations in the same order: in practice bit-equal). */
static void test_rouge_fixture(void)
{
	rl_jsonl j;
	REQUIRE(rl_jsonl_open(&j, check_fixture("rouge/cases.jsonl")) == RL_OK);
	cJSON *it;
	int n = 0, bad = 0;
	while (rl_jsonl_next(&j, &it) == RL_OK && it) {
		const char *ref = cJSON_GetObjectItem(it, "ref")->valuestring;
		const char *resp = cJSON_GetObjectItem(it, "resp")->valuestring;
		if (!json_tokens_equal(cJSON_GetObjectItem(it, "tokens_ref"), ref) ||
		    !json_tokens_equal(cJSON_GetObjectItem(it, "tokens_resp"), resp)) {
			if (bad++ < 5)
				fprintf(stderr, "line %d: tokens differ from rouge_score\n", n + 1);
		}
		static const char *keys[3] = {"rouge1", "rouge2", "rougeL"};
		for (int k = 0; k < 3; k++) {
			rl_rouge_score s;
			int rc = k < 2 ? rl_rouge_n(ref, resp, k + 1, &s)
				       : rl_rouge_l(ref, resp, &s);
			const cJSON *w = cJSON_GetObjectItem(it, keys[k]);
			double want[3] = {cJSON_GetArrayItem(w, 0)->valuedouble,
					  cJSON_GetArrayItem(w, 1)->valuedouble,
					  cJSON_GetArrayItem(w, 2)->valuedouble};
			double got[3] = {s.precision, s.recall, s.f};
			for (int q = 0; q < 3; q++)
				if (rc || fabs(got[q] - want[q]) > 1e-12) {
					if (bad++ < 5)
						fprintf(stderr,
							"line %d %s[%d]: %.17g want %.17g\n", n + 1,
							keys[k], q, got[q], want[q]);
				}
		}
		cJSON_Delete(it);
		n++;
	}
	rl_jsonl_close(&j);
	CHECKF(bad == 0, "%d mismatches against rouge_score", bad);
	CHECK(n > 300);
}

static void test_parse(void)
{
	rl_metric_kind k;
	CHECK(rl_metric_parse("rougeL", &k) == RL_OK && k == RL_METRIC_ROUGEL);
	CHECK(rl_metric_parse("rougel", &k) == RL_USAGE);
	CHECK(strcmp(rl_metric_name(RL_METRIC_LABEL), "label") == 0);
	double s;
	CHECK(rl_metric_score(RL_METRIC_EXACT, "a", " a ", &s) == RL_OK && s == 1);
	CHECK(rl_metric_score(RL_METRIC_ROUGE1, "a b", "a", &s) == RL_OK &&
	      fabs(s - 2.0 / 3) < 1e-15);
}

int main(void)
{
	test_stems_hand();
	test_stems_fixture();
	test_exact_contains();
	test_label();
	test_rouge_hand();
	test_rouge_fixture();
	test_parse();
	return check_done("test_metric");
}
