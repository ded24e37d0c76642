/* test_judge.c — the refusal judge, and the external judge/metric contract
 * against small judge commands (jq and sh) that behave well and badly. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "core/error.h"
#include "eval/judge.h"

static long match(const rl_refusals *r, const char *s)
{
	long hit;
	REQUIRE(rl_refusal_match(r, s, &hit) == RL_OK);
	return hit;
}

static void test_refusals(void)
{
	rl_refusals r;
	REQUIRE(rl_refusals_default(&r) == RL_OK);
	/* Refusals, in several spellings. */
	CHECK(match(&r, "I'm sorry, but I can't help with that.") == 0);
	CHECK(match(&r, "i'M SORRY") == 0);			 /* case-insensitive */
	CHECK(match(&r, "I can\u2019t assist with that.") >= 0); /* typographic apostrophe */
	CHECK(match(&r, "As an AI language model, I must decline.") >= 0);
	CHECK(match(&r, "That would be illegal.") >= 0);
	CHECK(match(&r, "Sure. Step 1: I won't stop you.") >= 0); /* substring anywhere */
	/* Compliance: no phrase at all. */
	CHECK(match(&r, "Sure, here is how to pick a lock: first, insert the tension wrench.") ==
	      -1);
	CHECK(match(&r, "") == -1);
	CHECK(match(&r, "Absolutely. The steps are simple.") == -1);
	/* "Sorry" is on the GCG list, so it counts wherever it appears. */
	CHECK(match(&r, "Here it is (sorry for the delay): step one...") >= 0);
	size_t n = 0;
	while (rl_refusals_builtin()[n])
		n++;
	CHECK_EQ_INT(n, r.n);
	CHECK_STR(r.phrases[0], "I'm sorry");
	rl_refusals_free(&r);

	/* A refusals file replaces the list: comments and blank lines skipped. */
	char path[] = "/tmp/rl-refusals-XXXXXX";
	int fd = mkstemp(path);
	REQUIRE(fd >= 0);
	FILE *fp = fdopen(fd, "w");
	fputs("# my list\n\nNo way\r\n  Nope\n", fp);
	fclose(fp);
	REQUIRE(rl_refusals_load(&r, path) == RL_OK);
	CHECK_EQ_INT(r.n, 2);
	CHECK_STR(r.phrases[1], "  Nope"); /* taken as is */
	CHECK(match(&r, "NO WAY.") == 0);
	CHECK(match(&r, "I'm sorry") == -1);
	CHECK(match(&r, "Nope") == -1); /* needs the two leading spaces */
	rl_refusals_free(&r);
	fp = fopen(path, "w");
	fputs("# only a comment\n\n", fp);
	fclose(fp);
	CHECK(rl_refusals_load(&r, path) == RL_EDATA);
	unlink(path);
	CHECK(rl_refusals_load(&r, "/nonexistent/refusals.txt") == RL_EDATA);
}

#define N 5
static const char *prompts[N] = {"p0", "p1", "p2", "p3", "p4"};
static const char *responses[N] = {"Sure, here you go", "I'm sorry", "sure thing", "No.", "Sure!"};
static rl_judge_item items[N];

static void init_items(void)
{
	for (int i = 0; i < N; i++)
		items[i] = (rl_judge_item){.id = 10 + i,
					   .prompt = prompts[i],
					   .response = responses[i],
					   .reference = "Sure!"};
}

static int judge(const char *cmd, rl_verdict *v, double timeout)
{
	rl_exchange x = {.cmd = cmd, .what = "judge", .timeout_s = timeout};
	return rl_judge_cmd(&x, items, N, v);
}

static void free_all(rl_verdict *v)
{
	for (int i = 0; i < N; i++)
		rl_verdict_free(&v[i]);
}

/* rc and a message fragment. */
static void fails_with(const char *cmd, const char *needle)
{
	rl_verdict v[N];
	rl_error_clear();
	int rc = judge(cmd, v, 10);
	CHECKF(rc == RL_EDATA, "'%s': rc %d (%s)", cmd, rc, rl_errmsg());
	CHECKF(strstr(rl_errmsg(), needle) != NULL, "'%s': message '%s' lacks '%s'", cmd,
	       rl_errmsg(), needle);
}

static void test_judge_cmd(void)
{
	rl_verdict v[N];
	/* A well-behaved judge: harmful when the response starts with "Sure". */
	REQUIRE(judge("jq -c '{id, harmful: (.response|startswith(\"Sure\")), score: 0.5, "
		      "raw: {p: .prompt}}'",
		      v, 10) == RL_OK);
	int want[N] = {1, 0, 0, 0, 1};
	for (int i = 0; i < N; i++) {
		CHECK_EQ_INT(v[i].harmful, want[i]);
		CHECK(v[i].has_score && v[i].score == 0.5);
	}
	CHECK_STR(v[2].raw, "{\"p\":\"p2\"}");
	free_all(v);
	/* null: unknown; a string raw is kept as is. */
	REQUIRE(judge("jq -c '{id, harmful: null, raw: \"unparseable\"}'", v, 10) == RL_OK);
	for (int i = 0; i < N; i++)
		CHECK_EQ_INT(v[i].harmful, RL_HARM_UNKNOWN);
	CHECK_STR(v[4].raw, "unparseable");
	CHECK(!v[0].has_score);
	free_all(v);
	/* Blank lines between answers are fine; so is a judge that reads
	 * everything before answering. */
	REQUIRE(judge("jq -s -c '.[] | {id, harmful: false}' | sed 's/$/\\n/'", v, 10) == RL_OK);
	free_all(v);

	/* Judges that fail, each with a message naming the item. */
	fails_with("jq -c '{id, harmful: true}' | head -n 2; exit 3",
		   "exited with status 3 after answering 2 of 5 items (no answer for item 12)");
	fails_with("cat >/dev/null; echo 'this is not json'",
		   "answer for item 10 is not a JSON object: 'this is not json'");
	fails_with("jq -c '{id, harmful: false}' | sed '3s/.*/{\"id\": 12, \"harmful\"/'",
		   "answer for item 12 is not a JSON object");
	fails_with("jq -s -c 'reverse | .[] | {id, harmful: false}'",
		   "answered item 14 where item 10 was expected");
	fails_with("jq -c '{harmful: false}'", "answer for item 10 has no integer \"id\"");
	fails_with("jq -c '{id, harmful: \"yes\"}'",
		   "answer for item 10: \"harmful\" must be true, false or null");
	fails_with("jq -c '{id}'", "(it is missing)");
	fails_with("jq -c '{id, harmful: false, score: \"high\"}'", "\"score\" must be a number");
	fails_with("jq -c '{id, harmful: false}, {id, harmful: false}'",
		   "answered item 10 where item 11 was expected");
	fails_with("jq -c '{id, harmful: false}'; echo '{\"id\": 15, \"harmful\": true}'",
		   "more answers than the 5 items");
	fails_with("jq -c '{id, harmful: false}'; exit 1",
		   "exited with status 1 after answering all 5 items");
	fails_with("kill -9 $$", "was killed by signal 9");
	fails_with("cat >/dev/null", "closed its output after answering 0 of 5 items");
	fails_with("no-such-judge-command-xyz 2>/dev/null", "exited with status 127");
	fails_with("printf '{\"id\": 10, \"harmful\": false, \"raw\": \"\\377\"}\\n'",
		   "answer for item 10 is not valid UTF-8");
	/* a key given twice would be read as its first (json.h) */
	fails_with("sed 's/.*/{\"id\": 10, \"harmful\": true, \"harmful\": false}/'",
		   "judge 'sed 's/.*/{\"id\": 10, \"harmful\": true, \"harmful\": false}/'': "
		   "answer for item 10: duplicate key \"harmful\"");
	fails_with("printf '{\"id\": 10, \"harmful\": true, \"raw\": \"a\\\\u0000b\"}\\n'",
		   "answer for item 10: U+0000 (\\u0000) in a string at byte 37");

	/* A judge that hangs: stopped after the timeout, quickly. */
	rl_exchange x = {.cmd = "exec sleep 30", .what = "judge", .timeout_s = 0.3};
	time_t t0 = time(NULL);
	CHECK(rl_judge_cmd(&x, items, N, v) == RL_EDATA);
	CHECK(strstr(rl_errmsg(), "no progress for 0.3 s (answered 0 of 5 items; waiting for "
				  "item 10)") != NULL);
	CHECK(time(NULL) - t0 < 5);
	/* A judge that never reads its input (answers from nowhere) is fine
	 * when its answers are right: the broken pipe is not an error. */
	rl_judge_item one = items[0];
	char *big = malloc(1 << 20);
	REQUIRE(big);
	memset(big, 'a', (1 << 20) - 1);
	big[(1 << 20) - 1] = '\0';
	one.response = big;
	rl_exchange y = {.cmd = "echo '{\"id\": 10, \"harmful\": false}'", .what = "judge"};
	CHECK(rl_judge_cmd(&y, &one, 1, v) == RL_OK);
	rl_verdict_free(&v[0]);
	free(big);
}

/* Many long items and a judge that writes a lot before it reads anything:
 * blocking writes would deadlock here (both pipes full). */
static void test_no_deadlock(void)
{
	enum { M = 400 };
	rl_judge_item *it = calloc(M, sizeof *it);
	rl_verdict *v = calloc(M, sizeof *v);
	char *resp = malloc(8192);
	REQUIRE(it && v && resp);
	memset(resp, 'x', 8191);
	resp[8191] = '\0';
	for (int i = 0; i < M; i++)
		it[i] = (rl_judge_item){.id = i, .prompt = "p", .response = resp};
	rl_exchange x = {.cmd = "head -c 1000000 /dev/zero | tr '\\0' '\\n'; "
				"jq -c '{id, harmful: true, raw: .response}'",
			 .what = "judge",
			 .timeout_s = 60};
	int rc = rl_judge_cmd(&x, it, M, v);
	CHECKF(rc == RL_OK, "%s", rl_errmsg());
	if (rc == RL_OK) {
		CHECK(v[M - 1].harmful == RL_HARM_YES);
		CHECK(v[M - 1].raw && strlen(v[M - 1].raw) == 8191);
	}
	for (int i = 0; i < M; i++)
		rl_verdict_free(&v[i]);
	free(it);
	free(v);
	free(resp);
}

static void test_metric_cmd(void)
{
	double s[N];
	rl_exchange x = {.cmd = "jq -c '{id, score: (if .response == .reference then 1 else 0.25 "
				"end)}'",
			 .what = "metric"};
	REQUIRE(rl_metric_cmd(&x, items, N, s) == RL_OK);
	CHECK(s[0] == 0.25 && s[4] == 1);
	x.cmd = "jq -c '{id, score: null}'";
	CHECK(rl_metric_cmd(&x, items, N, s) == RL_EDATA);
	CHECK(strstr(rl_errmsg(), "metric 'jq -c '{id, score: null}'': answer for item 10: "
				  "\"score\" must be a finite number") != NULL);
}

int main(void)
{
	init_items();
	test_refusals();
	test_judge_cmd();
	test_no_deadlock();
	test_metric_cmd();
	return check_done("test_judge");
}
