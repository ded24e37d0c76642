/* test_gradtool.c — PyTorch parity through the tools: rl-direction and rl-grad
 * (from $RL_BIN) on the engine fixtures (tests/gen/gen_engine.py), their
 * streams read back and compared with transformers' numbers under the same
 * tolerance rule as test_engine.c (ERR_FACTOR * err32 + FLOOR * max|ref|).
 * Also: every candidate tensor present exactly once with the model's shape,
 * batch records before tensors, --add doubling a gradient, sum_of. */
#include <cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../unit/check.h"
#include "core/error.h"
#include "core/file.h"
#include "core/jsonl.h"
#include "store/grad_stream.h"
#include "store/model.h"
#include "store/safetensors.h"
#include "store/stream.h"

#define ERR_FACTOR 8.0
#define FLOOR 1e-6

static char tmpdir[256];

static void sh(const char *fmt, const char *a, const char *b, const char *c, const char *d,
	       const char *e)
{
	char cmd[8192];
	snprintf(cmd, sizeof cmd, fmt, a, b, c, d, e);
	int rc = system(cmd);
	CHECKF(rc == 0, "'%s' failed (%d)", cmd, rc);
	REQUIRE(rc == 0);
}

typedef struct named {
	char name[256];
	float *v;
	uint64_t n, got;
	int64_t shape[RL_MAX_DIMS];
	int ndim;
} named;

/* all tensors and batch records of a stream */
typedef struct stream_data {
	named *t;
	int nt;
	double loss[64], cos[64];
	int nbatch, batch_after_tensor;
	int sum_of;
} stream_data;

static void read_stream(const char *path, const char *kind, stream_data *s)
{
	memset(s, 0, sizeof *s);
	rl_sr *r;
	REQUIRE(rl_sr_open(&r, path, kind) == RL_OK);
	const msgpack_object *so = rl_obj_get(rl_sr_header(r), "sum_of");
	s->sum_of = so ? (int)so->via.i64 : 0;
	const msgpack_object *rec;
	int rc;
	while ((rc = rl_sr_next(r, &rec)) == RL_OK && rec) {
		size_t tl;
		const char *t = rl_rec_type(rec, &tl);
		if (tl == 5 && memcmp(t, "batch", 5) == 0) {
			int64_t idx;
			REQUIRE(rl_obj_int(rec, "index", path, &idx) == RL_OK);
			REQUIRE(idx == s->nbatch && idx < 64);
			REQUIRE(rl_obj_f64(rec, "loss", path, &s->loss[idx]) == RL_OK);
			REQUIRE(rl_obj_f64(rec, "cos", path, &s->cos[idx]) == RL_OK);
			s->nbatch++;
			if (s->nt)
				s->batch_after_tensor = 1;
			continue;
		}
		rl_chunk c;
		REQUIRE(rl_chunk_parse(rec, path, &c) == RL_OK);
		REQUIRE(c.dtype == RL_DT_F32);
		named *n = s->nt ? &s->t[s->nt - 1] : NULL;
		if (!n || strcmp(n->name, c.name) != 0 || n->got == n->n) {
			s->t = realloc(s->t, (size_t)(s->nt + 1) * sizeof *s->t);
			REQUIRE(s->t);
			n = &s->t[s->nt++];
			memset(n, 0, sizeof *n);
			snprintf(n->name, sizeof n->name, "%s", c.name);
			n->n = c.numel;
			n->ndim = c.ndim;
			memcpy(n->shape, c.shape, sizeof n->shape);
			n->v = malloc(c.numel * sizeof(float) + 1);
			REQUIRE(n->v);
		}
		REQUIRE(c.offset == n->got);
		memcpy(n->v + c.offset, c.data, c.count * sizeof(float));
		n->got += c.count;
	}
	CHECKF(rc == RL_OK, "%s: %s", path, rl_errmsg());
	rl_sr_close(r);
}

static void stream_free(stream_data *s)
{
	for (int i = 0; i < s->nt; i++)
		free(s->t[i].v);
	free(s->t);
}

static const named *find(const stream_data *s, const char *name)
{
	for (int i = 0; i < s->nt; i++)
		if (strcmp(s->t[i].name, name) == 0)
			return &s->t[i];
	return NULL;
}

static void compare(rl_st_file *ref, const cJSON *meta, const char *cs, const char *name,
		    const char *refname, const float *got, size_t n, size_t ref_off)
{
	const rl_st_tensor *t = rl_st_find(ref, refname);
	char what[512];
	snprintf(what, sizeof what, "%s via the tools: %s", cs, name);
	CHECKF(t != NULL, "%s: not in the fixture", what);
	if (!t)
		return;
	REQUIRE(ref_off + n <= t->numel);
	float *want = malloc(n * sizeof *want + 1);
	REQUIRE(want);
	memcpy(want, ref->map + t->offset + ref_off * sizeof(float), n * sizeof(float));
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(meta, "err32"), refname);
	REQUIRE(cJSON_IsNumber(e));
	double mx = 0;
	for (size_t i = 0; i < n; i++)
		mx = fabs(want[i]) > mx ? fabs(want[i]) : mx;
	check_close(what, got, want, n, ERR_FACTOR * e->valuedouble + FLOOR * mx, 0);
	free(want);
}

static void test_case(const char *cs)
{
	char dir[4200], path[4400], model[4400], drls[512], grls[512], g2rls[512];
	snprintf(dir, sizeof dir, "%s%s", check_fixture("engine/"), cs);
	snprintf(model, sizeof model, "%s/model", dir);
	snprintf(drls, sizeof drls, "%s/%s.dir.rls", tmpdir, cs);
	snprintf(grls, sizeof grls, "%s/%s.grad.rls", tmpdir, cs);
	snprintf(g2rls, sizeof g2rls, "%s/%s.grad2.rls", tmpdir, cs);
	char *mtext;
	size_t mlen;
	snprintf(path, sizeof path, "%s/meta.json", dir);
	REQUIRE(rl_read_file(path, &mtext, &mlen) == RL_OK);
	cJSON *meta = cJSON_Parse(mtext);
	free(mtext);
	REQUIRE(meta);
	int L = cJSON_GetObjectItemCaseSensitive(meta, "L")->valueint;
	int bs = cJSON_GetObjectItemCaseSensitive(meta, "batch_size")->valueint;
	rl_st_file ref;
	snprintf(path, sizeof path, "%s/ref.safetensors", dir);
	REQUIRE(rl_st_open(&ref, path, RL_ST_READ) == RL_OK);
	rl_model m;
	REQUIRE(rl_model_open(&m, model, RL_MODEL_READ) == RL_OK);
	int C = m.cfg.hidden_size;
	const char *bin = getenv("RL_BIN") ? getenv("RL_BIN") : "bin";
	char Ls[16], bss[16];
	snprintf(Ls, sizeof Ls, "%d", L);
	snprintf(bss, sizeof bss, "%d", bs);

	/* rl-direction --per-prompt */
	char cmd1[8192];
	snprintf(cmd1, sizeof cmd1,
		 "%s/rl-direction -q -m '%%s' -p '%%s/dir.jsonl' -L %%s --per-prompt > '%%s'%%s",
		 bin);
	sh(cmd1, model, dir, Ls, drls, "");
	stream_data sd;
	read_stream(drls, "direction", &sd);
	const named *dv = find(&sd, "direction");
	CHECK(dv && dv->n == (uint64_t)C && dv->ndim == 1);
	if (dv)
		compare(&ref, meta, cs, "direction", "direction", dv->v, (size_t)C, 0);
	int ndir = cJSON_GetObjectItemCaseSensitive(meta, "n_dir")->valueint;
	CHECK_EQ_INT(sd.nt, 1 + ndir);
	for (int i = 0; i < ndir; i++) {
		char nm[32];
		snprintf(nm, sizeof nm, "prompt.%d", i);
		const named *pv = find(&sd, nm);
		CHECKF(pv != NULL, "%s: no %s", cs, nm);
		if (pv)
			compare(&ref, meta, cs, nm, "hidden", pv->v, (size_t)C, (size_t)i * C);
	}
	rl_direction d;
	REQUIRE(rl_direction_read(&d, drls, &m) == RL_OK);
	CHECK_EQ_INT(d.layer_end, L);
	CHECK_EQ_INT(d.n_prompts, ndir);
	rl_direction_free(&d);
	stream_free(&sd);

	/* rl-grad, then rl-grad --add of its own output */
	char cmd2[8192];
	snprintf(cmd2, sizeof cmd2,
		 "%s/rl-grad -q -m '%%s' -p '%%s/grad.jsonl' -d '%%s' -b %%s %%s", bin);
	char redirect[1200];
	snprintf(redirect, sizeof redirect, "> '%s'", grls);
	sh(cmd2, model, dir, drls, bss, redirect);
	snprintf(redirect, sizeof redirect, "--add '%s' -o '%s'", grls, g2rls);
	sh(cmd2, model, dir, drls, bss, redirect);
	stream_data sg, s2;
	read_stream(grls, "grad", &sg);
	read_stream(g2rls, "grad", &s2);
	CHECK_EQ_INT(sg.sum_of, 1);
	CHECK_EQ_INT(s2.sum_of, 2);
	CHECK(!sg.batch_after_tensor);
	const cJSON *losses = cJSON_GetObjectItemCaseSensitive(meta, "losses");
	CHECK_EQ_INT(sg.nbatch, cJSON_GetArraySize(losses));
	for (int b = 0; b < sg.nbatch; b++) {
		float got = (float)sg.loss[b],
		      want = (float)cJSON_GetArrayItem(losses, b)->valuedouble;
		char what[256];
		snprintf(what, sizeof what, "%s via rl-grad: loss of batch %d", cs, b);
		check_close(what, &got, &want, 1, 1e-5, 0);
		CHECK(fabs(sg.cos[b] + sg.loss[b]) < 1e-12);
	}
	size_t nc = rl_model_candidates(&m, L, NULL, 0);
	const rl_tensor **cand = malloc(nc * sizeof *cand);
	REQUIRE(cand);
	rl_model_candidates(&m, L, cand, nc);
	CHECK_EQ_INT(sg.nt, (int)nc);
	for (size_t i = 0; i < nc; i++) {
		const named *g = find(&sg, cand[i]->name), *g2 = find(&s2, cand[i]->name);
		CHECKF(g && g2, "%s: rl-grad did not write %s", cs, cand[i]->name);
		if (!g || !g2)
			continue;
		CHECK(g->n == cand[i]->numel && g->ndim == cand[i]->ndim &&
		      memcmp(g->shape, cand[i]->shape, (size_t)g->ndim * sizeof(int64_t)) == 0);
		compare(&ref, meta, cs, g->name, g->name, g->v, g->n, 0);
		float *twice = malloc(g->n * sizeof *twice + 1);
		REQUIRE(twice);
		for (uint64_t k = 0; k < g->n; k++)
			twice[k] = 2 * g->v[k];
		char what[512];
		snprintf(what, sizeof what, "%s: --add of itself doubles %s", cs, g->name);
		check_close(what, g2->v, twice, g->n, 0, 0);
		free(twice);
	}
	free(cand);
	stream_free(&sg);
	stream_free(&s2);
	rl_model_close(&m);
	rl_st_close(&ref);
	cJSON_Delete(meta);
}

int main(void)
{
	snprintf(tmpdir, sizeof tmpdir, "%s/rl-gradtool-%d",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
	char cmd[600];
	snprintf(cmd, sizeof cmd, "mkdir -p '%s'", tmpdir);
	REQUIRE(system(cmd) == 0);
	char *list;
	size_t len;
	REQUIRE(rl_read_file(check_fixture("engine/cases.txt"), &list, &len) == RL_OK);
	for (char *save = NULL, *cs = strtok_r(list, "\n", &save); cs;
	     cs = strtok_r(NULL, "\n", &save))
		test_case(cs);
	free(list);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	return check_done("test_gradtool");
}
