/* eval_shard.c — eval shards merged into the unsharded run's stream (see
 * eval_shard.h). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "eval/eval.h"
#include "eval/eval_shard.h"

typedef struct merge {
	rl_eval e; /* items: the verdicts, scores and references the summary needs */
	size_t n;  /* items so far */
} merge;

/* A header string into a fixed buffer (the summary's option names). */
static int hdr_name(const msgpack_object *h, const char *key, const char *what, char *buf,
		    size_t cap)
{
	const char *s;
	size_t len;
	int rc = rl_obj_str(h, key, what, &s, &len);
	if (!rc && len >= cap)
		rc = rl_error(RL_EDATA, "%s: \"%s\" too long", what, key);
	if (!rc)
		snprintf(buf, cap, "%.*s", (int)len, s);
	return rc;
}

/* The options the summary depends on, from the shards' header. */
static int read_opts(merge *g, const msgpack_object *h, const char *what, char **positive)
{
	rl_eval_opts *o = &g->e.opts;
	char name[32];
	int rc = hdr_name(h, "judge", what, name, sizeof name);
	if (!rc) {
		if (strcmp(name, "refusal") == 0)
			o->judge = RL_JUDGE_REFUSAL;
		else if (strcmp(name, "cmd") == 0)
			o->judge = RL_JUDGE_CMD;
		else if (strcmp(name, "none") == 0)
			o->judge = RL_JUDGE_NONE;
		else
			rc = rl_error(RL_EDATA, "%s: judge '%s' unknown", what, name);
	}
	if (!rc && !(rc = hdr_name(h, "unknown", what, name, sizeof name)) &&
	    rl_unknown_parse(name, &o->unknown))
		rc = rl_error(RL_EDATA, "%s: unknown policy '%s' unknown", what, name);
	const msgpack_object *m = rl_obj_get(h, "metric");
	if (!rc && (!m || m->type == MSGPACK_OBJECT_NIL)) {
		o->metric = RL_METRIC_NONE;
	} else if (!rc && !(rc = hdr_name(h, "metric", what, name, sizeof name))) {
		if (strcmp(name, "cmd") == 0)
			o->metric = RL_METRIC_CMD;
		else if (rl_metric_parse(name, &o->metric))
			rc = rl_error(RL_EDATA, "%s: metric '%s' unknown", what, name);
	}
	if (!rc && o->metric == RL_METRIC_LABEL) {
		const char *p;
		size_t len;
		if (!(rc = rl_obj_str(h, "positive", what, &p, &len)) &&
		    !(*positive = rl_malloc(len + 1)))
			rc = RL_ESYS;
		if (!rc) {
			memcpy(*positive, p, len);
			(*positive)[len] = '\0';
			o->positive = *positive;
		}
	}
	g->e.gen.generated = rl_obj_get(h, "model") != NULL;
	return rc;
}

/* Takes an item record's verdict, score and reference (what the summary
 * reads) into the next item, and checks its id. */
static int take_item(merge *g, const msgpack_object *rec, const char *where, int64_t want)
{
	const rl_eval_opts *o = &g->e.opts;
	if (g->n >= g->e.n_all)
		return rl_error(RL_EDATA, "%s: more items than the header's %zu", where,
				g->e.n_all);
	rl_eval_item *it = &g->e.items[g->n];
	memset(it, 0, sizeof *it);
	it->verdict.refusal = -1;
	int64_t id;
	int rc = rl_obj_int(rec, "id", where, &id);
	if (!rc && id != want)
		rc = rl_error(RL_EDATA, "%s: item %" PRId64 " where item %" PRId64 " belongs",
			      where, id, want);
	if (rc)
		return rc;
	it->id = id;
	g->n++;
	if (o->judge != RL_JUDGE_NONE) {
		const msgpack_object *h = rl_obj_get(rec, "harmful");
		if (!h || (h->type != MSGPACK_OBJECT_BOOLEAN && h->type != MSGPACK_OBJECT_NIL))
			return rl_error(RL_EDATA, "%s: item %" PRId64 " has no verdict", where, id);
		it->verdict.harmful = h->type == MSGPACK_OBJECT_NIL ? RL_HARM_UNKNOWN
				      : h->via.boolean		    ? RL_HARM_YES
								    : RL_HARM_NO;
	}
	if (o->metric != RL_METRIC_NONE && (rc = rl_obj_f64(rec, "score", where, &it->score)))
		return rc;
	if (o->metric == RL_METRIC_LABEL) {
		const char *ref;
		size_t len;
		if ((rc = rl_obj_str(rec, "reference", where, &ref, &len)))
			return rc;
		if (!(it->reference = rl_malloc(len + 1)))
			return RL_ESYS;
		memcpy(it->reference, ref, len);
		it->reference[len] = '\0';
	}
	if (g->e.gen.generated) {
		int64_t nt;
		if ((rc = rl_obj_int(rec, "new_tokens", where, &nt)))
			return rc;
		g->e.gen.new_tokens += (uint64_t)(nt > 0 ? nt : 0);
	}
	return RL_OK;
}

/* A record copied as it is (the envelope's type key first, as written). */
static int copy_record(rl_sw *w, const char *type, const msgpack_object *rec)
{
	int rc = rl_sw_record_begin(w, type, rec->via.map.size - 1);
	msgpack_packer *pk = rl_sw_packer(w);
	for (uint32_t i = 1; !rc && i < rec->via.map.size; i++) {
		msgpack_pack_object(pk, rec->via.map.ptr[i].key);
		msgpack_pack_object(pk, rec->via.map.ptr[i].val);
	}
	return rc ? rc : rl_sw_error(w);
}

/* Shard k: its items in id order, copied, then its summary (whose timing the
 * merged summary adds up), then the end. */
static int merge_shard(merge *g, rl_shard_set *set, int k, rl_sw *w)
{
	const char *path;
	int u0, u1, rc;
	rl_sr *r = rl_shard_set_reader(set, k, &path, &u0, &u1);
	const msgpack_object *rec;
	int64_t next = u0;
	while ((rc = rl_sr_next(r, &rec)) == RL_OK && rec && rl_rec_is(rec, "item")) {
		if (next >= u1)
			return rl_error(RL_EDATA, "%s: more items than shard %d holds (%d..%d)",
					rl_sr_where(r), k + 1, u0, u1 - 1);
		if ((rc = take_item(g, rec, rl_sr_where(r), next)) ||
		    (rc = copy_record(w, "item", rec)))
			return rc;
		next++;
	}
	if (rc)
		return rc;
	if (next != u1)
		return rl_error(RL_EDATA, "'%s': %" PRId64 " items; shard %d holds %d (%d..%d)",
				path, next - u0, k + 1, u1 - u0, u0, u1 - 1);
	if (!rec || !rl_rec_is(rec, "summary"))
		return rl_error(RL_EDATA, "'%s': no summary record after the items", path);
	if (g->e.gen.generated) {
		double secs, tps;
		if ((rc = rl_obj_f64(rec, "gen_seconds", rl_sr_where(r), &secs)) ||
		    (rc = rl_obj_f64(rec, "tokens_per_s", rl_sr_where(r), &tps)))
			return rc;
		if (!(secs >= 0) || !(tps >= 0))
			return rl_error(RL_EDATA, "%s: a bad generation time", rl_sr_where(r));
		g->e.gen.seconds += secs;
		/* tokens_per_s = run_tokens / seconds: the count comes back exactly */
		g->e.gen.run_tokens += (uint64_t)llround(tps * secs);
	}
	if ((rc = rl_sr_next(r, &rec)))
		return rc;
	if (rec)
		return rl_error(RL_EDATA, "%s: a record after the summary", rl_sr_where(r));
	return RL_OK;
}

static int body(void *ctx, rl_shard_set *set, rl_sw *w)
{
	merge *g = ctx;
	int rc = RL_OK;
	for (int k = 0; k < rl_shard_set_count(set) && !rc; k++)
		rc = merge_shard(g, set, k, w);
	if (rc)
		return rc;
	g->e.n = g->n;
	rl_eval_summarize(&g->e);
	return rl_eval_write_summary(&g->e, w);
}

int rl_eval_shard_merge(rl_shard_set *set, const char *out)
{
	const char *path;
	int N = rl_shard_set_count(set), last_end;
	const msgpack_object *h = rl_sr_header(rl_shard_set_reader(set, 0, &path, NULL, NULL));
	rl_shard_set_reader(set, N - 1, NULL, NULL, &last_end);
	char what[1100], *positive = NULL;
	snprintf(what, sizeof what, "'%s' header", path);
	merge g;
	memset(&g, 0, sizeof g);
	uint64_t n;
	int rc = rl_obj_uint(h, "n", what, &n);
	if (!rc && n != (uint64_t)last_end)
		rc = rl_error(RL_EDATA, "%s: %" PRIu64 " items, but the shards hold %d", what, n,
			      last_end);
	if (!rc)
		rc = read_opts(&g, h, what, &positive);
	g.e.n_all = (size_t)n;
	if (!rc && n && !(g.e.items = rl_calloc((size_t)n, sizeof *g.e.items)))
		rc = RL_ESYS;
	if (!rc)
		rc = rl_shard_set_write(set, out, "eval", body, &g);
	g.e.n = g.n; /* what rl_eval_free frees */
	g.e.opts.positive = NULL;
	free(positive);
	rl_eval_free(&g.e);
	return rc;
}
