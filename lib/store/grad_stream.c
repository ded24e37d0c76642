/* grad_stream.c — reading and checking direction and grad streams (see grad_stream.h). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/finite.h"
#include "store/grad_stream.h"
#include "store/stream_model.h"

/* Optional string (NUL-terminated copy, "" when absent). */
static int opt_str(const msgpack_object *map, const char *key, const char *what, char *buf,
		   size_t cap)
{
	buf[0] = '\0';
	const msgpack_object *o = rl_obj_get(map, key);
	if (!o)
		return RL_OK;
	if (rl_obj_strcpy(o, buf, cap))
		return rl_error(RL_EDATA, "%s: \"%s\" is not a string (or too long)", what, key);
	return RL_OK;
}

static int int_in(const msgpack_object *map, const char *key, const char *what, int64_t lo,
		  int64_t hi, int *out)
{
	int64_t v;
	int rc = rl_obj_int(map, key, what, &v);
	if (rc)
		return rc;
	if (v < lo || v > hi)
		return rl_error(RL_EDATA, "%s: \"%s\" %lld out of range", what, key, (long long)v);
	*out = (int)v;
	return RL_OK;
}

int rl_direction_read(rl_direction *d, const char *path, const rl_model *m)
{
	memset(d, 0, sizeof *d);
	rl_sr *r;
	int rc = rl_sr_open(&r, path, "direction");
	if (rc)
		return rc;
	const char *where = rl_sr_path(r);
	char what[1100];
	snprintf(what, sizeof what, "'%s' header", where);
	snprintf(d->path, sizeof d->path, "%s", where);
	const msgpack_object *h = rl_sr_header(r), *mm = rl_obj_get(h, "model");
	char arch[128];
	int n_layers = 0;
	if (!mm || mm->type != MSGPACK_OBJECT_MAP) {
		rc = rl_error(RL_EDATA, "%s: no \"model\" map", what);
		goto out;
	}
	if ((rc = opt_str(mm, "arch", what, arch, sizeof arch)) ||
	    (rc = opt_str(mm, "shape_id", what, d->shape_id, sizeof d->shape_id)) ||
	    (rc = opt_str(mm, "path", what, d->model_path, sizeof d->model_path)) ||
	    (rc = opt_str(h, "prompts", what, d->prompts, sizeof d->prompts)) ||
	    (rc = int_in(mm, "n_layers", what, 1, 1 << 20, &n_layers)) ||
	    (rc = int_in(h, "layer_end", what, 1, n_layers, &d->layer_end)) ||
	    (rc = int_in(h, "n_prompts", what, 1, INT32_MAX, &d->n_prompts)) ||
	    (rc = int_in(h, "hidden_size", what, 1, 1 << 24, &d->hidden_size)))
		goto out;
	const rl_config *c = &m->cfg;
	if (strcmp(arch, c->architecture) != 0 || n_layers != c->n_layers ||
	    d->hidden_size != c->hidden_size) {
		rc = rl_error(RL_EDATA,
			      "'%s': a direction for %s with %d layers and hidden size %d (from "
			      "'%s'), not for '%s' (%s, %d layers, hidden size %d)",
			      where, arch, n_layers, d->hidden_size, d->model_path, m->dir,
			      c->architecture, c->n_layers, c->hidden_size);
		goto out;
	}
	d->v = rl_calloc((size_t)d->hidden_size, sizeof *d->v);
	if (!d->v) {
		rc = RL_ESYS;
		goto out;
	}
	uint64_t got = 0;
	const msgpack_object *rec;
	while ((rc = rl_sr_next(r, &rec)) == RL_OK && rec) {
		size_t tl;
		const char *t = rl_rec_type(rec, &tl);
		if (!t || tl != 6 || memcmp(t, "tensor", 6) != 0)
			continue;
		rl_chunk ch;
		snprintf(what, sizeof what, "'%s'", where);
		if ((rc = rl_chunk_parse(rec, what, &ch)))
			break;
		if (strcmp(ch.name, "direction") != 0)
			continue;
		if (ch.dtype != RL_DT_F32 || ch.ndim != 1 || ch.shape[0] != d->hidden_size ||
		    ch.offset != got) {
			rc = rl_error(RL_EDATA,
				      "'%s': tensor \"direction\" is not F32 [%d] in order", where,
				      d->hidden_size);
			break;
		}
		memcpy(d->v + got, ch.data, ch.count * sizeof(float));
		got += ch.count;
	}
	if (!rc && got != (uint64_t)d->hidden_size)
		rc = rl_error(RL_EDATA, "'%s': no complete \"direction\" tensor", where);
	size_t bad = rc ? 0 : rl_f32_nonfinite(d->v, (size_t)d->hidden_size);
	if (!rc && bad < (size_t)d->hidden_size)
		rc = rl_error(RL_EDATA,
			      "'%s': the direction is %g at element %zu (made from a model with "
			      "non-finite weights?)",
			      where, (double)d->v[bad], bad);
	double norm = 0;
	for (int i = 0; !rc && i < d->hidden_size; i++)
		norm += (double)d->v[i] * d->v[i];
	if (!rc && norm == 0)
		rc = rl_error(RL_EDATA, "'%s': the direction is all zeros (no cosine to it)",
			      where);
out:
	rl_sr_close(r);
	if (rc)
		rl_direction_free(d);
	return rc;
}

void rl_direction_free(rl_direction *d)
{
	free(d->v);
	d->v = NULL;
}

struct rl_grad_addend {
	rl_sr *r;
	int sum_of;
	char path[1024];
};

/* Opens path and reads its layer_end (must be L) and sum_of; model checks
 * (m's shape_id, or shape_id) before them. */
static int addend_open(rl_grad_addend **out, const char *path, const rl_model *m,
		       const char *shape_id, const char *whose, int L)
{
	*out = NULL;
	rl_grad_addend *a = rl_calloc(1, sizeof *a);
	if (!a)
		return RL_ESYS;
	int rc = rl_sr_open(&a->r, path, "grad");
	if (rc) {
		free(a);
		return rc;
	}
	snprintf(a->path, sizeof a->path, "%s", rl_sr_path(a->r));
	char what[1100];
	snprintf(what, sizeof what, "'%s' header", a->path);
	const msgpack_object *h = rl_sr_header(a->r);
	int layer_end = 0;
	if (m) {
		rc = rl_sr_check_model(a->r, "model", m);
	} else {
		const msgpack_object *id = rl_obj_get(h, "model");
		const char *sid = NULL;
		size_t len = 0;
		rc = id && id->type == MSGPACK_OBJECT_MAP
			     ? rl_obj_str(id, "shape_id", what, &sid, &len)
			     : rl_error(RL_EDATA, "%s: no model identity", what);
		if (!rc && (len != 16 || memcmp(sid, shape_id, 16) != 0))
			rc = rl_error(RL_EDATA, "'%s' was made for model shape %.*s, %s is %.16s",
				      a->path, (int)len, sid, whose, shape_id);
	}
	if (!rc)
		rc = int_in(h, "layer_end", what, 1, 1 << 20, &layer_end);
	if (!rc && layer_end != L)
		rc = rl_error(RL_EDATA, "'%s': a gradient for layer_end %d, not %d", a->path,
			      layer_end, L);
	a->sum_of = 1;
	if (!rc && rl_obj_get(h, "sum_of"))
		rc = int_in(h, "sum_of", what, 1, INT32_MAX, &a->sum_of);
	if (rc) {
		rl_grad_addend_close(a);
		return rc;
	}
	*out = a;
	return RL_OK;
}

int rl_grad_addend_open(rl_grad_addend **out, const char *path, const rl_model *m, int L)
{
	return addend_open(out, path, m, NULL, NULL, L);
}

int rl_grad_addend_open_id(rl_grad_addend **out, const char *path, const char *shape_id,
			   const char *whose, int L)
{
	return addend_open(out, path, NULL, shape_id, whose, L);
}

int rl_grad_addend_sum_of(const rl_grad_addend *a)
{
	return a->sum_of;
}

int rl_grad_addend_next(rl_grad_addend *a, const char *name, float *dst, uint64_t numel)
{
	uint64_t got = 0;
	char what[1100];
	snprintf(what, sizeof what, "'%s'", a->path);
	while (got < numel || numel == 0) {
		const msgpack_object *rec;
		int rc = rl_sr_next(a->r, &rec);
		if (rc)
			return rc;
		if (!rec)
			return rl_error(RL_EDATA, "'%s': ends before tensor '%s'", a->path, name);
		size_t tl;
		const char *t = rl_rec_type(rec, &tl);
		if (!t || tl != 6 || memcmp(t, "tensor", 6) != 0)
			continue; /* batch records */
		rl_chunk c;
		if ((rc = rl_chunk_parse(rec, what, &c)))
			return rc;
		if (strcmp(c.name, name) != 0)
			return rl_error(RL_EDATA,
					"'%s': found tensor '%s' where rl-grad writes '%s' (--add "
					"needs a stream written by rl-grad for the same layer_end)",
					a->path, c.name, name);
		if (c.dtype != RL_DT_F32 || c.numel != numel || c.offset != got)
			return rl_error(RL_EDATA, "'%s': tensor '%s' is not F32 of %llu elements",
					a->path, name, (unsigned long long)numel);
		const float *src = c.data;
		for (uint64_t i = 0; i < c.count; i++) {
			float v;
			memcpy(&v, src + i, sizeof v);
			dst[got + i] += v;
		}
		size_t bad = rl_f32_nonfinite(dst + got, (size_t)c.count);
		if (bad < c.count)
			return rl_error(RL_EDATA,
					"'%s': tensor '%s' element %llu: the sum is %g (the stream "
					"holds a NaN or an infinity, or the sum overflows)",
					a->path, name, (unsigned long long)(got + bad),
					(double)dst[got + bad]);
		got += c.count;
		if (numel == 0)
			break;
	}
	return RL_OK;
}

int rl_grad_addend_finish(rl_grad_addend *a)
{
	const msgpack_object *rec;
	int rc = rl_sr_next(a->r, &rec);
	if (rc)
		return rc;
	if (rec) {
		size_t tl;
		const char *t = rl_rec_type(rec, &tl);
		return rl_error(RL_EDATA, "'%s': more records than rl-grad wrote (a '%.*s' record)",
				a->path, t ? (int)tl : 1, t ? t : "?");
	}
	return RL_OK;
}

void rl_grad_addend_close(rl_grad_addend *a)
{
	if (!a)
		return;
	rl_sr_close(a->r);
	free(a);
}
