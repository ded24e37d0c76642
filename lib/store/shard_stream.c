/* shard_stream.c — shard headers and rl-sum's exact sum of shard streams
 * (see shard_stream.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/finite.h"
#include "core/inputs.h"
#include "store/grad_stream.h"
#include "store/shard_stream.h"
#include "store/stream.h"

void rl_pack_kv_shard(msgpack_packer *pk, const rl_shard *s, int units, int u0, int u1)
{
	rl_pack_str(pk, "shard");
	msgpack_pack_map(pk, 5);
	rl_pack_kv_int(pk, "index", s->index);
	rl_pack_kv_int(pk, "count", s->count);
	rl_pack_kv_int(pk, "units", units);
	rl_pack_kv_int(pk, "first", u0);
	rl_pack_kv_int(pk, "end", u1);
}

void rl_hex64(uint64_t h, char buf[17])
{
	snprintf(buf, 17, "%016" PRIx64, h);
}

/* One input shard. */
typedef struct shard {
	rl_sr *r;
	const char *path;
	int index, count, units, u0, u1;
	uint32_t kshard;	    /* position of "shard" among the header's keys */
	int pend_layer, pend_batch; /* the "part" record read last (-1: none) */
	int ended;		    /* end record verified */
} shard;

/* t, magic, version, kind, tool, tool_version */
#define NCOMMON 6

/* Why two shards whose header key differs do not belong together. */
static const char *key_reason(const char *key)
{
	static const struct {
		const char *key, *why;
	} reasons[] = {
		{"tool", "made by another tool"},
		{"tool_version", "made by another realign version"},
		{"model", "made for another model (or model state)"},
		{"layer_end", "made with another layer_end"},
		{"batch_size", "made with another batch size"},
		{"n_prompts", "made from another number of prompts"},
		{"prompts", "made from another prompt file"},
		{"prompts_hash", "made from other prompts (file, -n, template or tokenizer)"},
		{"direction", "made with another direction"},
		{"direction_hash", "made with another direction"},
		{"sum_of", "made with another --add"},
		{"hidden_size", "made for another hidden size"},
		{"final_norm", "made for another layer"},
		{"per_prompt", "made with another --per-prompt"},
		{"threads",
		 "made with another number of threads (-j: OpenBLAS's sums depend on it)"},
		{"precision", "made with another --precision"},
		{"kernels", "made with other matrix kernels (another kind of CPU, or RL_CPU_MAX)"},
		{"blas", "made with another OpenBLAS core (another kind of CPU)"},
		{"state", "made from another state of the model (its weights changed, or a copy "
			  "of it: the shards need the same files)"},
		{"items_hash", "made from other items (prompts, references or responses)"},
		{"options", "made with other options (template, system prompt, field names, "
			    "adapter, --full-responses)"},
		{"n", "made from another number of items"},
		{"max_new_tokens", "made with another --max-new-tokens"},
		{"max_prompt_tokens", "made with another --max-prompt-tokens"},
		{"judge", "made with another judge"},
		{"judge_cmd", "made with another judge command"},
		{"refusals", "made with other refusal phrases"},
		{"unknown", "made with another --unknown"},
		{"metric", "made with another metric"},
		{"metric_cmd", "made with another metric command"},
		{"responses", "made from other responses"},
	};
	for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
		if (strcmp(key, reasons[i].key) == 0)
			return reasons[i].why;
	return "made with other settings";
}

/* The msgpack encoding of o into sb (reset first). */
static void encode(msgpack_sbuffer *sb, const msgpack_object *o)
{
	msgpack_sbuffer_clear(sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_object(&pk, *o);
}

static int hdr_int(const msgpack_object *map, const char *key, const char *what, int lo, int hi,
		   int *out)
{
	int64_t v;
	int rc = rl_obj_int(map, key, what, &v);
	if (rc)
		return rc;
	if (v < lo || v > hi)
		return rl_error(RL_EDATA, "%s: \"%s\" %" PRId64 " out of range", what, key, v);
	*out = (int)v;
	return RL_OK;
}

/* Opens a shard and reads its "shard" map. */
static int shard_open(shard *s, const char *path)
{
	memset(s, 0, sizeof *s);
	s->path = path;
	s->pend_layer = s->pend_batch = -1;
	int rc = rl_sr_open(&s->r, path, NULL);
	if (rc)
		return rc;
	const char *kind = rl_sr_kind(s->r);
	if (strcmp(kind, "grad-shard") != 0 && strcmp(kind, "direction-shard") != 0 &&
	    strcmp(kind, "eval-shard") != 0)
		return rl_error(RL_EDATA,
				"'%s': a%s %s stream, not a shard (rl-grad --shard, "
				"rl-direction --shard, rl-eval --shard)",
				path, strchr("aeiou", kind[0]) && kind[0] ? "n" : "", kind);
	const msgpack_object *h = rl_sr_header(s->r);
	char what[1100];
	snprintf(what, sizeof what, "'%s' header", path);
	for (uint32_t i = 0; i < h->via.map.size; i++)
		if (rl_obj_streq(&h->via.map.ptr[i].key, "shard"))
			s->kshard = i;
	const msgpack_object *m = rl_obj_get(h, "shard");
	if (!m || m->type != MSGPACK_OBJECT_MAP || s->kshard < NCOMMON)
		return rl_error(RL_EDATA, "%s: no \"shard\" map", what);
	if ((rc = hdr_int(m, "count", what, 1, 65536, &s->count)) ||
	    (rc = hdr_int(m, "index", what, 1, s->count, &s->index)) ||
	    (rc = hdr_int(m, "units", what, 1, INT32_MAX, &s->units)) ||
	    (rc = hdr_int(m, "first", what, 0, s->units, &s->u0)) ||
	    (rc = hdr_int(m, "end", what, s->u0, s->units, &s->u1)))
		return rc;
	int u0, u1;
	rl_shard sh = {s->index, s->count};
	rl_shard_range(&sh, s->units, &u0, &u1);
	if (u0 != s->u0 || u1 != s->u1)
		return rl_error(RL_EDATA, "%s: shard %d of %d holds units %d..%d of %d, not %d..%d",
				what, s->index, s->count, u0, u1, s->units, s->u0, s->u1);
	return RL_OK;
}

/* b must be a shard of the same run as a (the first input): every header key
 * but "shard" equal. */
static int same_run(const shard *a, const shard *b, msgpack_sbuffer *sa, msgpack_sbuffer *sb)
{
	const msgpack_object *ha = rl_sr_header(a->r), *hb = rl_sr_header(b->r);
	if (strcmp(rl_sr_kind(a->r), rl_sr_kind(b->r)) != 0)
		return rl_error(RL_EDATA, "'%s': a %s stream, '%s' a %s stream", b->path,
				rl_sr_kind(b->r), a->path, rl_sr_kind(a->r));
	if (b->count != a->count)
		return rl_error(RL_EDATA, "'%s': shard %d of %d, '%s' is shard %d of %d", b->path,
				b->index, b->count, a->path, a->index, a->count);
	uint32_t n = ha->via.map.size > hb->via.map.size ? ha->via.map.size : hb->via.map.size;
	for (uint32_t i = NCOMMON - 2, ia = i, ib = i; i < n; i++, ia++, ib++) {
		if (ia == a->kshard)
			ia++;
		if (ib == b->kshard)
			ib++;
		if (ia >= ha->via.map.size && ib >= hb->via.map.size)
			break;
		char key[64] = "?";
		const msgpack_object_kv *ka = ia < ha->via.map.size ? &ha->via.map.ptr[ia] : NULL,
					*kb = ib < hb->via.map.size ? &hb->via.map.ptr[ib] : NULL;
		if (ka && rl_obj_strcpy(&ka->key, key, sizeof key))
			snprintf(key, sizeof key, "?");
		if (!ka || !kb)
			return rl_error(RL_EDATA, "'%s': its header has %s keys than '%s''s",
					b->path, ka ? "fewer" : "more", a->path);
		encode(sa, &ka->key);
		encode(sb, &kb->key);
		int differ = sa->size != sb->size || memcmp(sa->data, sb->data, sa->size) != 0;
		if (!differ) {
			encode(sa, &ka->val);
			encode(sb, &kb->val);
			differ = sa->size != sb->size || memcmp(sa->data, sb->data, sa->size) != 0;
		}
		if (differ)
			return rl_error(RL_EDATA,
					"'%s': %s than '%s' (header key \"%s\" differs): not a "
					"shard of the same run",
					b->path, key_reason(key), a->path, key);
	}
	return RL_OK;
}

/* ---- the output: complete or absent ---- */

typedef struct out_t {
	const char *path; /* "-": standard output */
	char tmp[4200];
	int fd; /* the unlinked temporary file behind standard output */
	rl_sw *w;
} out_t;

static int out_open(out_t *o, const char *path, const char *kind, const char *tool)
{
	memset(o, 0, sizeof *o);
	o->path = path;
	o->fd = -1;
	if (strcmp(path, "-") == 0) {
		int rc = rl_output_check("-");
		if (rc)
			return rc;
		const char *dir = getenv("TMPDIR");
		snprintf(o->tmp, sizeof o->tmp, "%s/rl-sum.XXXXXX", dir && *dir ? dir : "/tmp");
		o->fd = mkstemp(o->tmp);
		if (o->fd < 0)
			return rl_error_errno(RL_ESYS, "'%s': cannot create", o->tmp);
		unlink(o->tmp);
		o->tmp[0] = '\0';
		return rl_sw_open_fd(&o->w, o->fd, "<stdout>", kind, tool);
	}
	int rc = rl_output_check_replace(path, 0);
	if (rc)
		return rc;
	snprintf(o->tmp, sizeof o->tmp, "%s.rl-sum.%ld", path, (long)getpid());
	rc = rl_sw_open(&o->w, o->tmp, kind, tool);
	if (rc)
		o->tmp[0] = '\0';
	return rc;
}

static int copy_out(int fd)
{
	static char buf[1 << 16];
	if (lseek(fd, 0, SEEK_SET) != 0)
		return rl_error_errno(RL_ESYS, "rl-sum: temporary file");
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return rl_error_errno(RL_ESYS, "rl-sum: reading the temporary file");
		if (n == 0)
			return RL_OK;
		for (ssize_t off = 0; off < n;) {
			ssize_t k = write(STDOUT_FILENO, buf + off, (size_t)(n - off));
			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0)
				return rl_error_errno(RL_ESYS, "<stdout>: write error");
			off += k;
		}
	}
}

/* Ends the output: rc == 0 puts it in place, else nothing is left. */
static int out_close(out_t *o, int rc)
{
	if (rc) {
		rl_sw_abort(o->w);
	} else {
		rc = rl_sw_close(o->w);
		if (!rc && o->fd >= 0)
			rc = copy_out(o->fd);
		if (!rc && o->tmp[0] && rename(o->tmp, o->path) != 0)
			rc = rl_error_errno(RL_ESYS, "'%s': cannot rename to '%s'", o->tmp,
					    o->path);
	}
	o->w = NULL;
	if (rc && o->tmp[0])
		unlink(o->tmp);
	if (o->fd >= 0)
		close(o->fd);
	return rc;
}

/* The output header: the shard header's keys before "shard". */
/* The unsharded run's header: the shard's keys before "shard"; with an
 * addend, sum_of grows by the addend's (as rl-grad --add writes it). */
static int write_header(rl_sw *w, const shard *s, const rl_grad_addend *add)
{
	const msgpack_object *h = rl_sr_header(s->r);
	int rc = rl_sw_header_begin(w, s->kshard - NCOMMON);
	msgpack_packer *pk = rl_sw_packer(w);
	for (uint32_t i = NCOMMON; i < s->kshard && !rc; i++) {
		const msgpack_object *k = &h->via.map.ptr[i].key, *v = &h->via.map.ptr[i].val;
		msgpack_pack_object(pk, *k);
		if (add && rl_obj_streq(k, "sum_of")) {
			if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 > INT32_MAX)
				rc = rl_error(RL_EDATA, "'%s' header: a bad \"sum_of\"", s->path);
			else
				msgpack_pack_int64(pk, (int64_t)v->via.u64 +
							       rl_grad_addend_sum_of(add));
		} else {
			msgpack_pack_object(pk, *v);
		}
	}
	return rc ? rc : rl_sw_error(w);
}

/* ---- grad ---- */

typedef struct acc_t {
	char name[RL_MAX_NAME + 1];
	int ndim;
	int64_t shape[RL_MAX_DIMS];
	uint64_t numel;
	float *v;
} acc_t;

/* rec (NULL: the end record) follows a shard's batch records or a partial:
 * it must be a "part" record (kept as pending) or the end. */
static int take_part(shard *s, const msgpack_object *rec)
{
	s->pend_layer = s->pend_batch = -1;
	if (!rec) {
		s->ended = 1;
		return RL_OK;
	}
	const char *where = rl_sr_where(s->r);
	if (!rl_rec_is(rec, "part")) {
		size_t tl;
		const char *t = rl_rec_type(rec, &tl);
		return rl_error(RL_EDATA, "%s: a \"%.*s\" record where a \"part\" record belongs",
				where, t ? (int)tl : 1, t ? t : "?");
	}
	int rc = hdr_int(rec, "layer", where, 0, 1 << 20, &s->pend_layer);
	if (!rc)
		rc = hdr_int(rec, "batch", where, 0, INT32_MAX, &s->pend_batch);
	return rc;
}

/* Reads the shard's batch records and copies them to w. */
static int copy_batches(shard *s, rl_sw *w)
{
	int k = 0, rc;
	const msgpack_object *rec;
	while ((rc = rl_sr_next(s->r, &rec)) == RL_OK && rec && rl_rec_is(rec, "batch")) {
		int idx = 0;
		if ((rc = hdr_int(rec, "index", rl_sr_where(s->r), 0, INT32_MAX, &idx)))
			return rc;
		if (idx != s->u0 + k)
			return rl_error(RL_EDATA, "%s: batch %d where batch %d belongs",
					rl_sr_where(s->r), idx, s->u0 + k);
		rl_sw_record_begin(w, "batch", rec->via.map.size - 1);
		msgpack_packer *pk = rl_sw_packer(w);
		for (uint32_t i = 1; i < rec->via.map.size; i++) {
			msgpack_pack_object(pk, rec->via.map.ptr[i].key);
			msgpack_pack_object(pk, rec->via.map.ptr[i].val);
		}
		k++;
	}
	if (rc)
		return rc;
	if (k != s->u1 - s->u0)
		return rl_error(RL_EDATA, "'%s': %d batch records; shard %d of %d holds %d batches",
				s->path, k, s->index, s->count, s->u1 - s->u0);
	return take_part(s, rec);
}

/* Adds (or, first, copies) the partial of (layer, batch) from s into acc. */
static int add_partial(shard *s, int layer, int batch, acc_t **acc, int *nacc, int *cap, int first)
{
	if (s->ended || s->pend_layer != layer || s->pend_batch != batch)
		return rl_error(RL_EDATA,
				"'%s': the partial of layer %d, batch %d is not where it belongs "
				"(%s)",
				s->path, layer, batch,
				s->ended ? "the stream ends" : "out of order");
	int k = -1, rc;
	const msgpack_object *rec;
	while ((rc = rl_sr_next(s->r, &rec)) == RL_OK && rec) {
		const rl_chunk *c = rl_sr_chunk(s->r);
		if (!c)
			break;
		if (c->offset == 0) {
			k++;
			if (first) {
				if (k == *cap) {
					int nc = *cap ? 2 * *cap : 16;
					acc_t *na = rl_realloc_array(*acc, (size_t)nc, sizeof *na);
					if (!na)
						return RL_ESYS;
					*acc = na, *cap = nc;
				}
				acc_t *a = &(*acc)[k];
				memset(a, 0, sizeof *a);
				*nacc = k + 1;
				snprintf(a->name, sizeof a->name, "%s", c->name);
				a->ndim = c->ndim;
				memcpy(a->shape, c->shape, sizeof a->shape);
				a->numel = c->numel;
				if (c->dtype != RL_DT_F32)
					return rl_error(RL_EDATA, "%s: tensor '%s' is not F32",
							rl_sr_where(s->r), c->name);
				if (!(a->v = rl_malloc_array(c->numel ? c->numel : 1,
							     sizeof(float))))
					return RL_ESYS;
			} else if (k >= *nacc || strcmp((*acc)[k].name, c->name) != 0 ||
				   c->dtype != RL_DT_F32 || c->numel != (*acc)[k].numel ||
				   c->ndim != (*acc)[k].ndim ||
				   memcmp(c->shape, (*acc)[k].shape, sizeof c->shape) != 0) {
				return rl_error(
					RL_EDATA,
					"%s: tensor '%s' (layer %d, batch %d) where batch 0 "
					"has %s",
					rl_sr_where(s->r), c->name, layer, batch,
					k < *nacc ? (*acc)[k].name : "no more tensors");
			}
		}
		if (k < 0)
			return RL_EDATA;
		float *dst = (*acc)[k].v + c->offset;
		if (first) {
			memcpy(dst, c->data, c->count * sizeof(float));
		} else {
			const char *src = c->data;
			for (uint64_t i = 0; i < c->count; i++) {
				float v;
				memcpy(&v, src + i * sizeof v, sizeof v);
				dst[i] += v;
			}
		}
	}
	if (rc)
		return rc;
	if (k + 1 != *nacc)
		return rl_error(RL_EDATA,
				"'%s': %d tensors in the partial of layer %d, batch %d; "
				"batch 0 has %d",
				s->path, k + 1, layer, batch, *nacc);
	return take_part(s, rec);
}

static int sum_grad(shard *sh, int n, rl_sw *w, rl_grad_addend *add)
{
	const msgpack_object *h = rl_sr_header(sh[0].r);
	char what[1100];
	snprintf(what, sizeof what, "'%s' header", sh[0].path);
	int L = 0, bs = 1, np = 0, rc;
	if ((rc = hdr_int(h, "layer_end", what, 1, 1 << 20, &L)) ||
	    (rc = hdr_int(h, "batch_size", what, 1, INT32_MAX, &bs)) ||
	    (rc = hdr_int(h, "n_prompts", what, 1, INT32_MAX, &np)))
		return rc;
	if (sh[0].units != (int)(((int64_t)np + bs - 1) / bs))
		return rl_error(RL_EDATA,
				"%s: %d batches, not the %d of %d prompts in batches of %d", what,
				sh[0].units, (int)(((int64_t)np + bs - 1) / bs), np, bs);
	for (int i = 0; i < n; i++)
		if ((rc = copy_batches(&sh[i], w)))
			return rc;
	acc_t *acc = NULL;
	int nacc = 0, cap = 0;
	for (int l = L - 1; l >= 0 && !rc; l--) {
		int first = 1;
		for (int i = 0; i < n && !rc; i++)
			for (int b = sh[i].u0; b < sh[i].u1 && !rc; b++) {
				rc = add_partial(&sh[i], l, b, &acc, &nacc, &cap, first);
				first = 0;
			}
		for (int k = 0; k < nacc && !rc; k++) {
			if (add &&
			    (rc = rl_grad_addend_next(add, acc[k].name, acc[k].v, acc[k].numel)))
				break;
			size_t bad = rl_f32_nonfinite(acc[k].v, (size_t)acc[k].numel);
			if (bad < acc[k].numel)
				rc = rl_error(
					RL_EDATA,
					"tensor '%s' element %zu: the sum is %g (it overflows "
					"f32)",
					acc[k].name, bad, (double)acc[k].v[bad]);
			else
				rc = rl_sw_tensor(w, acc[k].name, RL_DT_F32, acc[k].ndim,
						  acc[k].shape, acc[k].v, acc[k].numel);
		}
		for (int k = 0; k < nacc; k++)
			free(acc[k].v);
		nacc = 0;
	}
	free(acc);
	for (int i = 0; i < n && !rc; i++)
		if (!sh[i].ended)
			rc = rl_error(RL_EDATA, "'%s': more partials than layer_end %d holds",
				      sh[i].path, L);
	if (!rc && add)
		rc = rl_grad_addend_finish(add);
	return rc;
}

/* The addend for the shards' run: their model's shape and layer_end. */
static int open_addend(rl_grad_addend **a, const char *path, const shard *s)
{
	const msgpack_object *h = rl_sr_header(s->r), *id = rl_obj_get(h, "model");
	char what[1100], whose[1100];
	snprintf(what, sizeof what, "'%s' header", s->path);
	const char *sid;
	size_t len;
	int L = 0, rc = id && id->type == MSGPACK_OBJECT_MAP
				? rl_obj_str(id, "shape_id", what, &sid, &len)
				: rl_error(RL_EDATA, "%s: no model identity", what);
	if (!rc && len != 16)
		rc = rl_error(RL_EDATA, "%s: a bad model shape_id", what);
	if (!rc)
		rc = hdr_int(h, "layer_end", what, 1, 1 << 20, &L);
	snprintf(whose, sizeof whose, "the shards' ('%s')", s->path);
	return rc ? rc : rl_grad_addend_open_id(a, path, sid, whose, L);
}

/* ---- direction ---- */

static int sum_direction(shard *sh, int n, rl_sw *w)
{
	const msgpack_object *h = rl_sr_header(sh[0].r);
	char what[1100];
	snprintf(what, sizeof what, "'%s' header", sh[0].path);
	int np = 0, C = 0, bs = 1, per = 0, rc;
	if ((rc = hdr_int(h, "n_prompts", what, 1, INT32_MAX, &np)) ||
	    (rc = hdr_int(h, "hidden_size", what, 1, 1 << 24, &C)) ||
	    (rc = hdr_int(h, "batch_size", what, 1, INT32_MAX, &bs)) ||
	    (rc = rl_obj_bool(h, "per_prompt", what, &per)))
		return rc;
	if (sh[0].units != (int)(((int64_t)np + bs - 1) / bs))
		return rl_error(RL_EDATA,
				"%s: %d prompt groups, not the %d of %d prompts in groups "
				"of %d",
				what, sh[0].units, (int)(((int64_t)np + bs - 1) / bs), np, bs);
	float *hv = rl_malloc_array((size_t)np * C, sizeof *hv);
	float *dir = rl_malloc_array((size_t)C, sizeof *dir);
	if (!hv || !dir) {
		free(hv), free(dir);
		return RL_ESYS;
	}
	for (int i = 0; i < n && !rc; i++) {
		shard *s = &sh[i];
		int i0 = (int)((int64_t)s->u0 * bs), i1 = (int)((int64_t)s->u1 * bs);
		i0 = i0 > np ? np : i0;
		i1 = i1 > np ? np : i1;
		int at = i0;
		uint64_t got = 0;
		const msgpack_object *rec;
		while ((rc = rl_sr_next(s->r, &rec)) == RL_OK && rec) {
			const rl_chunk *c = rl_sr_chunk(s->r);
			char want[32];
			snprintf(want, sizeof want, "prompt.%d", at);
			if (!c || at >= i1 || strcmp(c->name, want) != 0 || c->dtype != RL_DT_F32 ||
			    c->ndim != 1 || c->shape[0] != C) {
				rc = rl_error(RL_EDATA,
					      "%s: not tensor \"%s\" (F32 [%d]) of shard %d of %d",
					      rl_sr_where(s->r), at < i1 ? want : "(none left)", C,
					      s->index, s->count);
				break;
			}
			memcpy(hv + (size_t)at * C + c->offset, c->data, c->count * sizeof(float));
			got += c->count;
			if (got == (uint64_t)C)
				got = 0, at++;
		}
		if (!rc && at != i1)
			rc = rl_error(RL_EDATA,
				      "'%s': ends at prompt %d; shard %d of %d holds %d..%d",
				      s->path, at, s->index, s->count, i0, i1 - 1);
		s->ended = !rc;
	}
	/* rl-direction's mean: in prompt order, in double */
	for (int c = 0; c < C && !rc; c++) {
		double s = 0;
		for (int i = 0; i < np; i++)
			s += hv[(size_t)i * C + c];
		dir[c] = (float)(s / np);
	}
	int64_t shape[1] = {C};
	if (!rc)
		rc = rl_sw_tensor(w, "direction", RL_DT_F32, 1, shape, dir, (uint64_t)C);
	for (int i = 0; i < np && per && !rc; i++) {
		char name[32];
		snprintf(name, sizeof name, "prompt.%d", i);
		rc = rl_sw_tensor(w, name, RL_DT_F32, 1, shape, hv + (size_t)i * C, (uint64_t)C);
	}
	free(hv), free(dir);
	return rc;
}

/* ---- a shard set: the shards of one run ---- */

struct rl_shard_set {
	shard *in; /* as given */
	shard *sh; /* in shard order */
	int n, N;
};

void rl_shard_set_close(rl_shard_set *set)
{
	if (!set)
		return;
	for (int i = 0; set->in && i < set->n; i++)
		rl_sr_close(set->in[i].r);
	free(set->in);
	free(set->sh);
	free(set);
}

int rl_shard_set_open(rl_shard_set **out, const char *const *paths, int n)
{
	*out = NULL;
	if (n < 1)
		return rl_error(RL_USAGE, "no shard streams");
	rl_shard_set *set = rl_calloc(1, sizeof *set);
	if (!set)
		return RL_ESYS;
	msgpack_sbuffer sa, sb;
	msgpack_sbuffer_init(&sa);
	msgpack_sbuffer_init(&sb);
	set->n = n;
	set->in = rl_calloc((size_t)n, sizeof *set->in);
	int rc = set->in ? RL_OK : RL_ESYS;
	for (int i = 0; i < n && !rc; i++)
		if (!(rc = shard_open(&set->in[i], paths[i])) && i > 0)
			rc = same_run(&set->in[0], &set->in[i], &sa, &sb);
	/* (same_run leaves "shard" out: its units must agree too, so that the
	 * shards' ranges tile 0 .. units) */
	for (int i = 1; i < n && !rc; i++)
		if (set->in[i].units != set->in[0].units)
			rc = rl_error(RL_EDATA,
				      "'%s': a shard of a run of %d units, '%s' of %d: not a shard "
				      "of the same run",
				      set->in[i].path, set->in[i].units, set->in[0].path,
				      set->in[0].units);
	msgpack_sbuffer_destroy(&sa);
	msgpack_sbuffer_destroy(&sb);
	/* every shard of the run once, put in shard order */
	int N = rc ? 0 : set->in[0].count;
	set->N = N;
	if (!rc && !(set->sh = rl_calloc((size_t)N, sizeof *set->sh)))
		rc = RL_ESYS;
	for (int i = 0; i < n && !rc; i++) {
		shard *slot = &set->sh[set->in[i].index - 1];
		if (slot->r)
			rc = rl_error(RL_EDATA, "'%s': shard %d of %d again (also '%s')",
				      set->in[i].path, set->in[i].index, N, slot->path);
		else
			*slot = set->in[i];
	}
	for (int k = 0; k < N && !rc; k++)
		if (!set->sh[k].r)
			rc = rl_error(
				RL_EDATA,
				"shard %d of %d is missing (%d given; '%s' is shard %d of %d)",
				k + 1, N, n, set->in[0].path, set->in[0].index, N);
	if (rc) {
		rl_shard_set_close(set);
		return rc;
	}
	*out = set;
	return RL_OK;
}

const char *rl_shard_set_kind(const rl_shard_set *set)
{
	return rl_sr_kind(set->sh[0].r);
}

int rl_shard_set_count(const rl_shard_set *set)
{
	return set->N;
}

rl_sr *rl_shard_set_reader(const rl_shard_set *set, int k, const char **path, int *u0, int *u1)
{
	const shard *s = &set->sh[k];
	if (path)
		*path = s->path;
	if (u0)
		*u0 = s->u0;
	if (u1)
		*u1 = s->u1;
	return s->r;
}

/* The realign version must be this one's (the sum is that version's, bit
 * for bit); the tool's name into tname. */
static int same_version(const shard *s, char tname[64])
{
	const char *tool, *ver;
	size_t tl;
	int rc = rl_sr_hdr_str(s->r, "tool", &tool, &tl);
	if (!rc)
		snprintf(tname, 64, "%.*s", (int)(tl < 63 ? tl : 63), tool);
	if (!rc && !(rc = rl_sr_hdr_str(s->r, "tool_version", &ver, &tl)) &&
	    (tl != strlen(RL_VERSION) || memcmp(ver, RL_VERSION, tl) != 0))
		rc = rl_error(RL_EDATA,
			      "'%s': made by realign %.*s, this is %s (the sum would not be bit "
			      "for bit that version's)",
			      s->path, (int)tl, ver, RL_VERSION);
	return rc;
}

int rl_shard_set_write(rl_shard_set *set, const char *out, const char *kind,
		       int (*body)(void *ctx, rl_shard_set *set, rl_sw *w), void *ctx)
{
	char tname[64];
	int rc = same_version(&set->sh[0], tname);
	out_t o = {0};
	if (!rc)
		rc = out_open(&o, out, kind, tname);
	if (rc)
		return rc;
	rc = write_header(o.w, &set->sh[0], NULL);
	if (!rc)
		rc = body(ctx, set, o.w);
	return out_close(&o, rc);
}

/* ---- rl-sum ---- */

int rl_shard_sum(rl_shard_set *set, const char *out, const char *add_path)
{
	shard *sh = set->sh;
	int N = set->N, rc = RL_OK;
	out_t o = {0};
	rl_grad_addend *add = NULL;
	int grad = strcmp(rl_sr_kind(sh[0].r), "grad-shard") == 0;
	if (strcmp(rl_sr_kind(sh[0].r), "eval-shard") == 0)
		return rl_error(RL_USAGE, "'%s': eval shards are merged, not summed", sh[0].path);
	if (add_path && !grad)
		rc = rl_error(RL_USAGE,
			      "--add: '%s' and the others are direction shards; only a "
			      "gradient takes an addend",
			      sh[0].path);
	if (!rc && add_path)
		rc = open_addend(&add, add_path, &sh[0]);
	char tname[64];
	if (!rc)
		rc = same_version(&sh[0], tname);
	if (!rc)
		rc = out_open(&o, out, grad ? "grad" : "direction", tname);
	if (!rc) {
		rc = write_header(o.w, &sh[0], add);
		if (!rc)
			rc = grad ? sum_grad(sh, N, o.w, add) : sum_direction(sh, N, o.w);
		rc = out_close(&o, rc);
	}
	rl_grad_addend_close(add);
	return rc;
}
