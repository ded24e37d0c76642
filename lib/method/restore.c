/* restore.c — grad stream -> selection -> select stream -> transaction, and
 * the undo of journals (see restore.h). */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/error.h"
#include "method/restore.h"
#include "store/model_state.h"
#include "store/stream_model.h"

#define SEL_MAX ((uint64_t)1 << 19) /* elements per "sel" record */

/* ---- tensor filter ---- */

static pcre2_code *compile(const char *pat, int *rc)
{
	int err;
	PCRE2_SIZE off;
	pcre2_code *c = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, 0, &err, &off, NULL);
	if (!c) {
		PCRE2_UCHAR msg[256];
		pcre2_get_error_message(err, msg, sizeof msg);
		*rc = rl_error(RL_USAGE, "bad regular expression '%s' at offset %zu: %s", pat,
			       (size_t)off, (const char *)msg);
	}
	return c;
}

int rl_filter_init(rl_filter *f, int layer_lo, int layer_hi, const char *include,
		   const char *exclude)
{
	int rc = RL_OK;
	memset(f, 0, sizeof *f);
	f->layer_lo = layer_lo;
	f->layer_hi = layer_hi;
	if (include && !(f->include = compile(include, &rc)))
		return rc;
	if (exclude && !(f->exclude = compile(exclude, &rc))) {
		rl_filter_free(f);
		return rc;
	}
	f->md = pcre2_match_data_create(4, NULL);
	if (!f->md) {
		rl_filter_free(f);
		return rl_error(RL_ESYS, "out of memory");
	}
	return RL_OK;
}

void rl_filter_free(rl_filter *f)
{
	pcre2_code_free(f->include);
	pcre2_code_free(f->exclude);
	pcre2_match_data_free(f->md);
	memset(f, 0, sizeof *f);
}

static int matches(const rl_filter *f, pcre2_code *c, const char *s)
{
	return pcre2_match(c, (PCRE2_SPTR)s, PCRE2_ZERO_TERMINATED, 0, 0, f->md, NULL) >= 0;
}

int rl_filter_pass(const rl_filter *f, const rl_tensor *t)
{
	if (!rl_role_is_candidate(t->role))
		return 0;
	if (f->layer_hi >= 0 && (t->layer < f->layer_lo || t->layer >= f->layer_hi))
		return 0;
	if (f->include && !matches(f, f->include, t->name))
		return 0;
	if (f->exclude && matches(f, f->exclude, t->name))
		return 0;
	return 1;
}

/* ---- selection ---- */

/* Drops the whole pages of [p, p+n) of a read-only model map from this
 * process (the page cache keeps them): the selection reads each weight once,
 * so a 7B model's pages need not all stay resident. Advisory; errors ignored. */
static void drop_pages(const void *p, size_t n)
{
	static uintptr_t pg;
	if (!pg)
		pg = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t a = ((uintptr_t)p + pg - 1) & ~(pg - 1), b = ((uintptr_t)p + n) & ~(pg - 1);
	if (b > a)
		madvise((void *)a, b - a, MADV_DONTNEED);
}

/* The same for the pages between elements idx[0] and idx[n-1] of t, once
 * read (a step reads each page of both models once while journaling, and the
 * page cache, not this process, should keep what the writes need next). */
static void drop_range(const rl_tensor *t, const uint64_t *idx, uint64_t n)
{
	if (n)
		drop_pages(rl_tensor_elem(t, idx[0]),
			   (size_t)((idx[n - 1] - idx[0] + 1) * rl_dtype_size(t->dtype)));
}

int rl_selection_init(rl_selection *sel, const rl_model *cur, const rl_model *tgt,
		      const rl_sel_params *p)
{
	memset(sel, 0, sizeof *sel);
	sel->cur = cur;
	sel->tgt = tgt;
	sel->layer_end = -1;
	int rc = rl_model_compatible(cur, tgt);
	if (rc)
		return rc;
	if ((rc = rl_model_state(cur, sel->cur_state)) ||
	    (rc = rl_model_state(tgt, sel->tgt_state)))
		return rc;
	return rl_selector_init(&sel->s, p, cur->ntensors);
}

void rl_selection_free(rl_selection *sel)
{
	rl_selector_free(&sel->s);
}

static uint32_t tid_of(const rl_model *m, const rl_tensor *t)
{
	return (uint32_t)(t - m->tensors);
}

int rl_selection_within(rl_selection *sel, const char *path)
{
	rl_jr j;
	rl_jpatch p;
	char sid[17];
	int rc = rl_jr_open(&j, path);
	if (rc)
		return rc;
	rl_model_shape_id(sel->cur, sid);
	if (strcmp(j.shape_id, sid) != 0)
		rc = rl_error(RL_EDATA, "'%s': journal is for model shape %s, not %s ('%s')", path,
			      j.shape_id, sid, sel->cur->dir);
	if (!rc)
		rc = rl_selector_within_enable(&sel->s);
	uint64_t *idx = rc ? NULL : rl_malloc_array(1u << 19, sizeof *idx);
	if (!rc && !idx)
		rc = RL_ESYS;
	while (!rc && (rc = rl_jr_next(&j, &p)) == 0 && p.name[0]) {
		const rl_tensor *t = rl_model_find(sel->cur, p.name);
		if (!t || t->numel != p.numel) {
			rc = rl_error(RL_EDATA, "'%s': tensor '%s' does not match '%s'", path,
				      p.name, sel->cur->dir);
			break;
		}
		for (uint64_t i = 0; i < p.n; i++)
			idx[i] = rl_le64(p.idx, i);
		if ((rc = rl_selector_within_add(&sel->s, tid_of(sel->cur, t), idx, p.n)))
			rl_error_prefix(rc, "'%s': '%s'", path, p.name);
	}
	free(idx);
	rl_jr_close(&j);
	sel->within_path = path;
	return rc;
}

/* Checks the "model" map of a stream header against m. */
static int check_model_map(const msgpack_object *h, const char *what, const rl_model *m,
			   const char *state, char *got_state, size_t cap)
{
	const msgpack_object *mo = rl_obj_get(h, "model");
	const char *s;
	size_t len;
	char sid[17];
	if (!mo || mo->type != MSGPACK_OBJECT_MAP)
		return rl_error(RL_EDATA, "%s: header lacks the 'model' map", what);
	int rc = rl_obj_str(mo, "shape_id", what, &s, &len);
	if (rc)
		return rc;
	rl_model_shape_id(m, sid);
	if (len != 16 || memcmp(s, sid, 16) != 0)
		return rl_error(RL_EDATA, "%s: made for model shape %.*s, but '%s' is %s", what,
				(int)(len > 64 ? 64 : len), s, m->dir, sid);
	if (got_state)
		got_state[0] = 0;
	const msgpack_object *so = rl_obj_get(mo, "state");
	if (so && so->type == MSGPACK_OBJECT_STR) {
		if (state && !rl_obj_streq(so, state))
			return rl_error(RL_EDATA,
					"%s: made for state %.*s of '%s', which is now in state %s "
					"(the model changed since; make it again)",
					what, (int)(so->via.str.size > 64 ? 64 : so->via.str.size),
					so->via.str.ptr, m->dir, state);
		if (got_state && (rc = rl_obj_strcpy(so, got_state, cap)))
			return rc;
	}
	return RL_OK;
}

int rl_select_grad(rl_selection *sel, const char *path, const rl_filter *f)
{
	rl_sr *r;
	int rc = rl_sr_open(&r, path, "grad");
	if (rc)
		return rc;
	sel->grad_path = path;
	char what[4200];
	snprintf(what, sizeof what, "'%s'", rl_sr_path(r));
	const msgpack_object *h = rl_sr_header(r);
	rc = check_model_map(h, what, sel->cur, sel->cur_state, NULL, 0);
	int64_t le;
	if (!rc && rl_obj_get(h, "layer_end") && rl_obj_int(h, "layer_end", what, &le) == 0)
		sel->layer_end = (int)le;
	float *g = rc ? NULL : rl_malloc(RL_CHUNK_BYTES);
	uint8_t *seen = rc ? NULL : rl_calloc(sel->cur->ntensors + 1, 1);
	if (!rc && (!g || !seen))
		rc = RL_ESYS;
	const msgpack_object *rec;
	while (!rc && (rc = rl_sr_next(r, &rec)) == 0 && rec) {
		size_t tl;
		const char *t = rl_rec_type(rec, &tl);
		if (!t || tl != 6 || memcmp(t, "tensor", 6) != 0)
			continue; /* "batch" and other records carry no gradient */
		rl_chunk c;
		if ((rc = rl_chunk_parse(rec, what, &c)))
			break;
		const rl_tensor *wt = rl_model_find(sel->cur, c.name);
		const rl_tensor *tt = rl_model_find(sel->tgt, c.name);
		if (!wt || !tt) {
			rc = rl_error(RL_EDATA, "%s: tensor '%s' is not in '%s'", what, c.name,
				      (!wt ? sel->cur : sel->tgt)->dir);
			break;
		}
		if (c.dtype != RL_DT_F32 || c.numel != wt->numel) {
			rc = rl_error(
				RL_EDATA,
				"%s: gradient of '%s' is %s[%llu], the tensor has %llu elements",
				what, c.name, rl_dtype_name(c.dtype), (unsigned long long)c.numel,
				(unsigned long long)wt->numel);
			break;
		}
		uint32_t tid = tid_of(sel->cur, wt);
		if (c.offset == 0) {
			if (seen[tid]) {
				rc = rl_error(RL_EDATA, "%s: tensor '%s' appears twice", what,
					      c.name);
				break;
			}
			seen[tid] = 1;
		}
		if (!rl_filter_pass(f, wt))
			continue;
		memcpy(g, c.data, (size_t)c.count * 4); /* chunk payloads are unaligned */
		rc = rl_selector_feed(&sel->s, tid, wt->name, wt->dtype,
				      rl_tensor_elem(wt, c.offset), rl_tensor_elem(tt, c.offset),
				      c.offset, c.count, g);
		size_t nb = (size_t)c.count * rl_dtype_size(wt->dtype);
		drop_pages(rl_tensor_elem(wt, c.offset), nb);
		drop_pages(rl_tensor_elem(tt, c.offset), nb);
	}
	free(g);
	free(seen);
	rl_sr_close(r);
	if (!rc)
		rc = rl_selector_finish(&sel->s);
	return rc;
}

int rl_select_models(rl_selection *sel, int layer_end, const rl_filter *f)
{
	size_t n = rl_model_candidates(sel->cur, layer_end, NULL, 0);
	const rl_tensor **ts = rl_malloc_array(n ? n : 1, sizeof *ts);
	if (!ts)
		return RL_ESYS;
	rl_model_candidates(sel->cur, layer_end, ts, n);
	sel->layer_end = layer_end;
	int rc = RL_OK;
	for (size_t i = 0; i < n && !rc; i++) {
		const rl_tensor *wt = ts[i], *tt = rl_model_find(sel->tgt, wt->name);
		if (!rl_filter_pass(f, wt))
			continue;
		for (uint64_t off = 0; off < wt->numel && !rc; off += 1u << 20) {
			uint64_t c = wt->numel - off < (1u << 20) ? wt->numel - off : (1u << 20);
			rc = rl_selector_feed(&sel->s, tid_of(sel->cur, wt), wt->name, wt->dtype,
					      rl_tensor_elem(wt, off), rl_tensor_elem(tt, off), off,
					      c, NULL);
			drop_pages(rl_tensor_elem(wt, off), (size_t)c * rl_dtype_size(wt->dtype));
			drop_pages(rl_tensor_elem(tt, off), (size_t)c * rl_dtype_size(wt->dtype));
		}
	}
	free(ts);
	if (!rc)
		rc = rl_selector_finish(&sel->s);
	return rc;
}

/* [*b, *e) = the items of the next tensor starting at *b. */
static void next_group(const rl_selector *s, uint64_t b, uint64_t *e)
{
	uint64_t i = b;
	while (i < s->k && s->topk.buf[i].tensor == s->topk.buf[b].tensor)
		i++;
	*e = i;
}

int rl_select_write(const rl_selection *sel, const char *out, const char *tool,
		    const rl_sel_params *p, const char *budget_mode, double budget_value)
{
	const rl_selector *s = &sel->s;
	rl_sw *w;
	int rc = rl_sw_open(&w, out, "select", tool);
	if (rc)
		return rc;
	msgpack_packer *pk = rl_sw_packer(w);
	uint64_t ngroups = 0;
	for (uint64_t b = 0, e; b < s->k; b = e, ngroups++)
		next_group(s, b, &e);
	rl_sw_header_begin(w, 13);
	rl_pack_str(pk, "model");
	rl_pack_model_id(pk, sel->cur, sel->cur_state);
	rl_pack_str(pk, "target");
	rl_pack_model_id(pk, sel->tgt, sel->tgt_state);
	rl_pack_kv_str(pk, "score", rl_score_name(p->score));
	rl_pack_kv_uint(pk, "seed", p->seed);
	rl_pack_str(pk, "budget");
	msgpack_pack_map(pk, 2);
	rl_pack_kv_str(pk, "mode", budget_mode);
	rl_pack_kv_f64(pk, "value", budget_value);
	rl_pack_kv_uint(pk, "k", s->k);
	rl_pack_kv_uint(pk, "eligible", s->eligible);
	rl_pack_kv_uint(pk, "considered", s->fed);
	rl_pack_kv_uint(pk, "nan_grad", s->nan_grad);
	rl_pack_kv_f64(pk, "threshold", (double)s->min_score);
	rl_pack_kv_int(pk, "layer_end", sel->layer_end);
	rl_pack_str(pk, "within");
	if (sel->within_path)
		rl_pack_str(pk, sel->within_path);
	else
		msgpack_pack_nil(pk);
	rl_pack_str(pk, "tensors");
	msgpack_pack_array(pk, (size_t)ngroups);
	for (uint64_t b = 0, e; b < s->k; b = e) {
		next_group(s, b, &e);
		msgpack_pack_map(pk, 2);
		rl_pack_kv_str(pk, "name", sel->cur->tensors[s->topk.buf[b].tensor].name);
		rl_pack_kv_uint(pk, "n", e - b);
	}
	uint8_t *ib = rl_malloc_array(SEL_MAX, 8), *sb = rl_malloc_array(SEL_MAX, 4);
	uint8_t *cb = rl_malloc_array(SEL_MAX, 8), *tb = rl_malloc_array(SEL_MAX, 8);
	if (!ib || !sb || !cb || !tb)
		rc = RL_ESYS;
	for (uint64_t b = 0, e; !rc && b < s->k; b = e) {
		next_group(s, b, &e);
		const rl_tensor *wt = &sel->cur->tensors[s->topk.buf[b].tensor];
		const rl_tensor *tt = rl_model_find(sel->tgt, wt->name);
		size_t es = rl_dtype_size(wt->dtype);
		for (uint64_t o = b; o < e; o += SEL_MAX) {
			uint64_t n = e - o < SEL_MAX ? e - o : SEL_MAX;
			for (uint64_t i = 0; i < n; i++) {
				const rl_topk_item *it = &s->topk.buf[o + i];
				for (int x = 0; x < 8; x++)
					ib[i * 8 + (uint64_t)x] = (uint8_t)(it->index >> (8 * x));
				float sc = rl_selector_item_score(s, it);
				memcpy(sb + i * 4, &sc, 4);
				memcpy(cb + i * es, rl_tensor_elem(wt, it->index), es);
				memcpy(tb + i * es, rl_tensor_elem(tt, it->index), es);
			}
			if (n) {
				uint64_t lo = s->topk.buf[o].index,
					 hi = s->topk.buf[o + n - 1].index;
				drop_pages(rl_tensor_elem(wt, lo), (size_t)((hi - lo + 1) * es));
				drop_pages(rl_tensor_elem(tt, lo), (size_t)((hi - lo + 1) * es));
			}
			rl_sw_record_begin(w, "sel", 8);
			rl_pack_kv_str(pk, "name", wt->name);
			rl_pack_kv_str(pk, "dtype", rl_dtype_name(wt->dtype));
			rl_pack_kv_uint(pk, "numel", wt->numel);
			rl_pack_kv_uint(pk, "n", n);
			rl_pack_kv_bin(pk, "idx", ib, (size_t)n * 8);
			rl_pack_kv_bin(pk, "score", sb, (size_t)n * 4);
			rl_pack_kv_bin(pk, "cur", cb, (size_t)n * es);
			rl_pack_kv_bin(pk, "tgt", tb, (size_t)n * es);
		}
	}
	free(ib);
	free(sb);
	free(cb);
	free(tb);
	if (rc) {
		rl_sw_abort(w);
		return rc;
	}
	return rl_sw_close(w);
}

/* ---- applying ---- */

int rl_apply_selector(rl_txn *tx, const rl_selection *sel, const rl_model *src)
{
	const rl_selector *s = &sel->s;
	uint64_t *idx = rl_malloc_array(SEL_MAX, sizeof *idx);
	uint8_t *nb = rl_malloc_array(SEL_MAX, 8);
	int rc = idx && nb ? RL_OK : RL_ESYS;
	for (uint64_t b = 0, e; !rc && b < s->k; b = e) {
		next_group(s, b, &e);
		const rl_tensor *wt = &sel->cur->tensors[s->topk.buf[b].tensor];
		const rl_tensor *st = rl_model_find(src, wt->name);
		size_t es = rl_dtype_size(wt->dtype);
		for (uint64_t o = b; !rc && o < e; o += SEL_MAX) {
			uint64_t n = e - o < SEL_MAX ? e - o : SEL_MAX;
			for (uint64_t i = 0; i < n; i++) {
				idx[i] = s->topk.buf[o + i].index;
				memcpy(nb + i * es, rl_tensor_elem(st, idx[i]), es);
			}
			rc = rl_txn_patch(tx, wt, idx, n, nb, NULL);
			drop_range(wt, idx, n);
			drop_range(st, idx, n);
		}
	}
	free(idx);
	free(nb);
	return rc;
}

typedef struct sel_rec {
	char name[RL_MAX_NAME + 1];
	rl_dtype dtype;
	uint64_t numel, n;
	const uint8_t *idx, *score, *cur, *tgt;
} sel_rec;

static int parse_sel(const msgpack_object *rec, const char *what, sel_rec *r)
{
	const msgpack_object *o = rl_obj_get(rec, "name");
	char dt[16];
	const void *p[4];
	size_t l[4];
	int rc;
	if (!o)
		return rl_error(RL_EDATA, "%s: 'sel' record lacks 'name'", what);
	if ((rc = rl_obj_strcpy(o, r->name, sizeof r->name)))
		return rc;
	o = rl_obj_get(rec, "dtype");
	if (!o || (rc = rl_obj_strcpy(o, dt, sizeof dt)) ||
	    rl_dtype_parse(dt, strlen(dt), &r->dtype) != 0)
		return rl_error(RL_EDATA, "%s: 'sel' record of '%s': bad dtype", what, r->name);
	if ((rc = rl_obj_uint(rec, "numel", what, &r->numel)) ||
	    (rc = rl_obj_uint(rec, "n", what, &r->n)) ||
	    (rc = rl_obj_bin(rec, "idx", what, &p[0], &l[0])) ||
	    (rc = rl_obj_bin(rec, "score", what, &p[1], &l[1])) ||
	    (rc = rl_obj_bin(rec, "cur", what, &p[2], &l[2])) ||
	    (rc = rl_obj_bin(rec, "tgt", what, &p[3], &l[3])))
		return rc;
	size_t es = rl_dtype_size(r->dtype);
	if (r->n > SEL_MAX || l[0] != r->n * 8 || l[1] != r->n * 4 || l[2] != r->n * es ||
	    l[3] != r->n * es)
		return rl_error(RL_EDATA, "%s: 'sel' record of '%s': sizes do not match n", what,
				r->name);
	r->idx = p[0];
	r->score = p[1];
	r->cur = p[2];
	r->tgt = p[3];
	return RL_OK;
}

int rl_apply_select_stream(rl_model *m, const rl_model *src, const char *path, const char *out,
			   int dry, const char *tool, rl_txn_stats *st, rl_apply_report *rep)
{
	rl_sr *r;
	memset(rep, 0, sizeof *rep);
	int rc = rl_model_compatible(m, src);
	if (rc)
		return rc;
	char src_state[RL_STATE_HEX + 1], sel_state[RL_STATE_HEX + 1] = "";
	char tgt_state[RL_STATE_HEX + 1] = "";
	if ((rc = rl_model_state(src, src_state)))
		return rc;
	if ((rc = rl_sr_open(&r, path, "select")))
		return rc;
	char what[4200];
	snprintf(what, sizeof what, "'%s'", rl_sr_path(r));
	const msgpack_object *h = rl_sr_header(r);
	rc = check_model_map(h, what, m, NULL, sel_state, sizeof sel_state);
	const msgpack_object *to = rl_obj_get(h, "target");
	if (!rc && (!to || to->type != MSGPACK_OBJECT_MAP))
		rc = rl_error(RL_EDATA, "%s: header lacks the 'target' map", what);
	if (!rc) {
		/* the source must be the model the selection was made against */
		const msgpack_object *so = rl_obj_get(to, "state");
		if (so && (rc = rl_obj_strcpy(so, tgt_state, sizeof tgt_state)) == 0 &&
		    strcmp(tgt_state, src_state) != 0)
			rc = rl_error(RL_EDATA,
				      "%s: selected against a target in state %s, but the source "
				      "'%s' is in state %s",
				      what, tgt_state, src->dir, src_state);
	}
	rl_txn *tx = NULL;
	if (!rc && !dry) {
		rl_txn_opts o = {.op = "apply",
				 .tool = tool,
				 .source = src,
				 .expect_state = sel_state[0] ? sel_state : NULL,
				 .recover = 0};
		rc = rl_txn_begin(&tx, m, &o);
	} else if (!rc && sel_state[0]) {
		char now[RL_STATE_HEX + 1];
		if ((rc = rl_model_state(m, now)) == 0 && strcmp(now, sel_state) != 0)
			rc = rl_error(RL_EDATA,
				      "%s: made for state %s of '%s', which is now in state %s",
				      what, sel_state, m->dir, now);
	}
	uint64_t *idx = rl_malloc_array(SEL_MAX, sizeof *idx);
	uint8_t *nb = rl_malloc_array(SEL_MAX, 8);
	if (!rc && (!idx || !nb))
		rc = RL_ESYS;
	const msgpack_object *rec;
	const char *last_name = "";
	char last_buf[RL_MAX_NAME + 1] = "";
	while (!rc && (rc = rl_sr_next(r, &rec)) == 0 && rec) {
		if (!rl_rec_is(rec, "sel")) {
			rc = rl_error(RL_EDATA, "%s: unexpected record in a select stream", what);
			break;
		}
		sel_rec s;
		if ((rc = parse_sel(rec, what, &s)))
			break;
		const rl_tensor *wt = rl_model_find(m, s.name), *stt = rl_model_find(src, s.name);
		if (!wt || !stt || wt->dtype != s.dtype || wt->numel != s.numel) {
			rc = rl_error(RL_EDATA, "%s: tensor '%s' does not match '%s'", what, s.name,
				      m->dir);
			break;
		}
		size_t es = rl_dtype_size(wt->dtype);
		for (uint64_t i = 0; i < s.n; i++) {
			idx[i] = rl_le64(s.idx, i);
			if (idx[i] >= wt->numel || (i && idx[i] <= idx[i - 1])) {
				rc = rl_error(RL_EDATA,
					      "%s: '%s': indices out of range or not ascending",
					      what, s.name);
				break;
			}
			memcpy(nb + i * es, rl_tensor_elem(stt, idx[i]), es);
		}
		if (!rc && memcmp(nb, s.tgt, (size_t)(s.n * es)) != 0)
			rc = rl_error(RL_EDATA,
				      "%s: '%s': the source '%s' holds other values than the "
				      "selection's target",
				      what, s.name, src->dir);
		if (rc)
			break;
		if (strcmp(last_name, s.name) != 0) {
			rep->tensors++;
			snprintf(last_buf, sizeof last_buf, "%s", s.name);
			last_name = last_buf;
		}
		rep->elements += s.n;
		rep->bytes += s.n * es;
		if (dry) {
			for (uint64_t i = 0; i < s.n && !rc; i++)
				if (memcmp(rl_tensor_elem(wt, idx[i]), s.cur + i * es, es) != 0)
					rc = rl_error(RL_EDATA,
						      "'%s' element %llu: the model holds other "
						      "bytes than expected (it changed since)",
						      s.name, (unsigned long long)idx[i]);
		} else {
			rc = rl_txn_patch(tx, wt, idx, s.n, nb, s.cur);
		}
		drop_range(wt, idx, s.n);
		drop_range(stt, idx, s.n);
	}
	free(idx);
	free(nb);
	rl_sr_close(r);
	if (dry || !tx)
		return rc;
	if (rc) {
		rl_txn_abort(tx);
		return rc;
	}
	return rl_txn_commit(tx, out, st);
}

/* ---- undoing journals ---- */

typedef struct undo_ent {
	uint32_t tid, seq;
	uint64_t idx;
	uint64_t oldv, newv; /* stored bytes, zero-padded */
} undo_ent;

static int cmp_undo(const void *pa, const void *pb)
{
	const undo_ent *a = pa, *b = pb;
	if (a->tid != b->tid)
		return a->tid < b->tid ? -1 : 1;
	if (a->idx != b->idx)
		return a->idx < b->idx ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

int rl_rollback_journals(rl_model *m, const char *const *paths, int n, int force, const char *out,
			 const char *tool, rl_txn_stats *st)
{
	undo_ent *e = NULL;
	uint64_t ne = 0, cap = 0;
	char sid[17], first_before[RL_STATE_HEX + 1] = "", prev_after[RL_STATE_HEX + 1] = "";
	int rc = RL_OK;
	rl_model_shape_id(m, sid);
	for (int jn = 0; jn < n && !rc; jn++) {
		rl_jr j;
		rl_jpatch p;
		if ((rc = rl_jr_open(&j, paths[jn])))
			break;
		if (strcmp(j.shape_id, sid) != 0)
			rc = rl_error(RL_EDATA,
				      "'%s': journal is for model shape %s, but '%s' is %s",
				      paths[jn], j.shape_id, m->dir, sid);
		if (!rc && jn == 0)
			memcpy(first_before, j.before, sizeof first_before);
		if (!rc && jn > 0 && !force && strcmp(j.before, prev_after) != 0)
			rc = rl_error(
				RL_EDATA,
				"'%s' does not follow '%s' (it starts from state %s, not %s); "
				"give journals in the order they were made",
				paths[jn], paths[jn - 1], j.before, prev_after);
		while (!rc && (rc = rl_jr_next(&j, &p)) == 0 && p.name[0]) {
			const rl_tensor *t;
			t = rl_model_find(m, p.name);
			if (!t || t->dtype != p.dtype || t->numel != p.numel) {
				rc = rl_error(RL_EDATA, "'%s': tensor '%s' does not match '%s'",
					      paths[jn], p.name, m->dir);
				break;
			}
			size_t es = rl_dtype_size(p.dtype);
			if (es > 8) {
				rc = rl_error(RL_EDATA, "'%s': dtype too wide", paths[jn]);
				break;
			}
			if (ne + p.n > cap) {
				uint64_t nc = cap ? cap * 2 : 4096;
				while (nc < ne + p.n)
					nc *= 2;
				undo_ent *ne2 = rl_realloc_array(e, (size_t)nc, sizeof *e);
				if (!ne2) {
					rc = RL_ESYS;
					break;
				}
				e = ne2;
				cap = nc;
			}
			for (uint64_t i = 0; i < p.n; i++) {
				undo_ent *x = &e[ne++];
				x->tid = (uint32_t)(t - m->tensors);
				x->seq = (uint32_t)jn;
				x->idx = rl_le64(p.idx, i);
				x->oldv = x->newv = 0;
				memcpy(&x->oldv, p.oldb + i * es, es);
				memcpy(&x->newv, p.newb + i * es, es);
			}
		}
		if (!rc)
			memcpy(prev_after, j.after, sizeof prev_after);
		rl_jr_close(&j);
	}
	if (rc) {
		free(e);
		return rc;
	}
	/* One journal is already in order (tensors in name order, indices
	 * ascending): skip the sort and its copy of the array. */
	uint64_t sorted = 1;
	while (sorted < ne && cmp_undo(&e[sorted - 1], &e[sorted]) < 0)
		sorted++;
	if (sorted < ne)
		qsort(e, (size_t)ne, sizeof *e, cmp_undo);
	/* Collapse each element's history: expect the last journal's new bytes,
	 * restore the first journal's old bytes; consecutive journals must agree. */
	uint64_t w = 0;
	for (uint64_t i = 0; i < ne && !rc;) {
		uint64_t k = i + 1;
		while (k < ne && e[k].tid == e[i].tid && e[k].idx == e[i].idx) {
			if (e[k].seq == e[k - 1].seq)
				rc = rl_error(RL_EDATA,
					      "'%s': element %llu of '%s' journaled twice",
					      paths[e[k].seq], (unsigned long long)e[k].idx,
					      m->tensors[e[k].tid].name);
			else if (e[k].oldv != e[k - 1].newv)
				rc = rl_error(RL_EDATA,
					      "'%s' and '%s' disagree about element %llu of '%s'",
					      paths[e[k - 1].seq], paths[e[k].seq],
					      (unsigned long long)e[k].idx,
					      m->tensors[e[k].tid].name);
			k++;
		}
		undo_ent x = e[i];
		x.newv = e[k - 1].newv; /* expected now */
		e[w++] = x;		/* x.oldv: the value to restore */
		i = k;
	}
	ne = w;
	rl_txn *tx = NULL;
	if (!rc) {
		rl_txn_opts o = {.op = "rollback",
				 .tool = tool,
				 .source = NULL,
				 .expect_state = force || n == 0 ? NULL : prev_after,
				 .recover = 1};
		rc = rl_txn_begin(&tx, m, &o);
	}
	uint64_t *idx = rl_malloc_array(SEL_MAX, sizeof *idx);
	uint8_t *nb = rl_malloc_array(SEL_MAX, 8), *eb = rl_malloc_array(SEL_MAX, 8);
	if (!rc && (!idx || !nb || !eb))
		rc = RL_ESYS;
	for (uint64_t b = 0; !rc && b < ne;) {
		const rl_tensor *t = &m->tensors[e[b].tid];
		size_t es = rl_dtype_size(t->dtype);
		uint64_t c = 0;
		while (b + c < ne && c < SEL_MAX && e[b + c].tid == e[b].tid) {
			idx[c] = e[b + c].idx;
			memcpy(nb + c * es, &e[b + c].oldv, es);
			memcpy(eb + c * es, &e[b + c].newv, es);
			c++;
		}
		rc = rl_txn_patch(tx, t, idx, c, nb, eb);
		drop_range(t, idx, c);
		b += c;
	}
	free(idx);
	free(nb);
	free(eb);
	free(e);
	if (rc) {
		rl_txn_abort(tx);
		return rc;
	}
	if (!force && n > 0)
		rl_txn_set_after(tx, first_before);
	return rl_txn_commit(tx, out, st);
}
