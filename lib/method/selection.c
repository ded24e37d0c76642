/* selection.c — grad stream or models -> selector -> select stream (see
 * selection.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/finite.h"
#include "method/selection.h"
#include "store/journal.h"
#include "store/model_state.h"
#include "store/stream_model.h"

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
	rc = rl_header_check_model(h, what, sel->cur, sel->cur_state, NULL, 0);
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
		size_t bad = rl_f32_nonfinite(g, (size_t)c.count);
		if (bad < c.count) {
			char layer[32] = "";
			if (wt->layer >= 0)
				snprintf(layer, sizeof layer, " (layer %d)", wt->layer);
			rc = rl_error(RL_EDATA,
				      "%s: the gradient of '%s'%s is %g at element %llu (rl-grad "
				      "never writes one: the stream is damaged, or made elsewhere)",
				      what, c.name, layer, (double)g[bad],
				      (unsigned long long)(c.offset + bad));
			break;
		}
		rc = rl_selector_feed(&sel->s, tid, wt->name, wt->dtype,
				      rl_tensor_elem(wt, c.offset), rl_tensor_elem(tt, c.offset),
				      c.offset, c.count, g);
		rl_tensor_drop_pages(wt, c.offset, c.count);
		rl_tensor_drop_pages(tt, c.offset, c.count);
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
			rl_tensor_drop_pages(wt, off, c);
			rl_tensor_drop_pages(tt, off, c);
		}
	}
	free(ts);
	if (!rc)
		rc = rl_selector_finish(&sel->s);
	return rc;
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
		e = rl_selector_group_end(s, b);
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
		e = rl_selector_group_end(s, b);
		msgpack_pack_map(pk, 2);
		rl_pack_kv_str(pk, "name", sel->cur->tensors[s->topk.buf[b].tensor].name);
		rl_pack_kv_uint(pk, "n", e - b);
	}
	uint8_t *ib = rl_malloc_array(RL_SEL_MAX, 8), *sb = rl_malloc_array(RL_SEL_MAX, 4);
	uint8_t *cb = rl_malloc_array(RL_SEL_MAX, 8), *tb = rl_malloc_array(RL_SEL_MAX, 8);
	if (!ib || !sb || !cb || !tb)
		rc = RL_ESYS;
	for (uint64_t b = 0, e; !rc && b < s->k; b = e) {
		e = rl_selector_group_end(s, b);
		const rl_tensor *wt = &sel->cur->tensors[s->topk.buf[b].tensor];
		const rl_tensor *tt = rl_model_find(sel->tgt, wt->name);
		size_t es = rl_dtype_size(wt->dtype);
		for (uint64_t o = b; o < e; o += RL_SEL_MAX) {
			uint64_t n = e - o < RL_SEL_MAX ? e - o : RL_SEL_MAX;
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
				rl_tensor_drop_pages(wt, lo, hi - lo + 1);
				rl_tensor_drop_pages(tt, lo, hi - lo + 1);
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
