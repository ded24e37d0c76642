/* restore.c — selections applied and journals undone, each as one
 * transaction (see restore.h). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "method/restore.h"
#include "store/model_state.h"
#include "store/stream_model.h"

int rl_apply_selector(rl_txn *tx, const rl_selection *sel, const rl_model *src)
{
	const rl_selector *s = &sel->s;
	uint64_t *idx = rl_malloc_array(RL_SEL_MAX, sizeof *idx);
	uint8_t *nb = rl_malloc_array(RL_SEL_MAX, 8);
	int rc = idx && nb ? RL_OK : RL_ESYS;
	for (uint64_t b = 0, e; !rc && b < s->k; b = e) {
		e = rl_selector_group_end(s, b);
		const rl_tensor *wt = &sel->cur->tensors[s->topk.buf[b].tensor];
		const rl_tensor *st = rl_model_find(src, wt->name);
		size_t es = rl_dtype_size(wt->dtype);
		for (uint64_t o = b; !rc && o < e; o += RL_SEL_MAX) {
			uint64_t n = e - o < RL_SEL_MAX ? e - o : RL_SEL_MAX;
			for (uint64_t i = 0; i < n; i++) {
				idx[i] = s->topk.buf[o + i].index;
				memcpy(nb + i * es, rl_tensor_elem(st, idx[i]), es);
			}
			rc = rl_txn_patch(tx, wt, idx, n, nb, NULL);
			rl_tensor_drop_pages(wt, idx[0], n ? idx[n - 1] - idx[0] + 1 : 0);
			rl_tensor_drop_pages(st, idx[0], n ? idx[n - 1] - idx[0] + 1 : 0);
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
	if (r->n > RL_SEL_MAX || l[0] != r->n * 8 || l[1] != r->n * 4 || l[2] != r->n * es ||
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
	rc = rl_header_check_model(h, what, m, NULL, sel_state, sizeof sel_state);
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
	uint64_t *idx = rl_malloc_array(RL_SEL_MAX, sizeof *idx);
	uint8_t *nb = rl_malloc_array(RL_SEL_MAX, 8);
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
		rl_tensor_drop_pages(wt, idx[0], s.n ? idx[s.n - 1] - idx[0] + 1 : 0);
		rl_tensor_drop_pages(stt, idx[0], s.n ? idx[s.n - 1] - idx[0] + 1 : 0);
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
	uint64_t *idx = rl_malloc_array(RL_SEL_MAX, sizeof *idx);
	uint8_t *nb = rl_malloc_array(RL_SEL_MAX, 8), *eb = rl_malloc_array(RL_SEL_MAX, 8);
	if (!rc && (!idx || !nb || !eb))
		rc = RL_ESYS;
	for (uint64_t b = 0; !rc && b < ne;) {
		const rl_tensor *t = &m->tensors[e[b].tid];
		size_t es = rl_dtype_size(t->dtype);
		uint64_t c = 0;
		while (b + c < ne && c < RL_SEL_MAX && e[b + c].tid == e[b].tid) {
			idx[c] = e[b + c].idx;
			memcpy(nb + c * es, &e[b + c].oldv, es);
			memcpy(eb + c * es, &e[b + c].newv, es);
			c++;
		}
		rc = rl_txn_patch(tx, t, idx, c, nb, eb);
		rl_tensor_drop_pages(t, idx[0], c ? idx[c - 1] - idx[0] + 1 : 0);
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
