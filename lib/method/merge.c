/* merge.c — LoRA merge (merge.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "method/merge.h"
#include "store/model_files.h"

/* d[j] = fma(b, a[j], d[j]): one rounding per term, as torch's sgemm adds
 * them (its B @ A is these sums, term by term in k order, bit for bit). The
 * FMA build runs where the CPU has it; glibc's fmaf gives the same bits
 * elsewhere. */
__attribute__((target("avx2,fma"))) static void axpy_fma_hw(float *d, float b, const float *a,
							    int n)
{
	for (int j = 0; j < n; j++)
		d[j] = __builtin_fmaf(b, a[j], d[j]);
}

static void axpy_fma_soft(float *d, float b, const float *a, int n)
{
	for (int j = 0; j < n; j++)
		d[j] = fmaf(b, a[j], d[j]);
}

void rl_lora_delta_add(float *w, const float *b, const float *a, int rows, int cols, int r,
		       float scale, float *d)
{
	static int hw = -1;
	if (hw < 0) { /* RL_FMA=soft: the other path, for tests */
		__builtin_cpu_init();
		const char *e = getenv("RL_FMA");
		hw = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
		     !(e && strcmp(e, "soft") == 0);
	}
	for (int i = 0; i < rows; i++) {
		for (int j = 0; j < cols; j++)
			d[j] = 0.0f;
		for (int k = 0; k < r; k++) {
			if (hw)
				axpy_fma_hw(d, b[(size_t)i * r + k], a + (size_t)k * cols, cols);
			else
				axpy_fma_soft(d, b[(size_t)i * r + k], a + (size_t)k * cols, cols);
		}
		/* then scaled, then added: two roundings, as PEFT's
		 * W + (B @ A) * scale */
		float *wi = w + (size_t)i * cols;
		for (int j = 0; j < cols; j++)
			wi[j] += d[j] * scale;
	}
}

/* A whole LoRA matrix widened to f32. */
static float *widen_all(const rl_st_tensor *t, const rl_st_file *f)
{
	float *x = rl_malloc_array((size_t)t->numel, sizeof(float));
	if (x)
		rl_widen(t->dtype, f->map + t->offset, x, (size_t)t->numel);
	return x;
}

/* The merged tensor, a block of rows at a time, into the writer. */
static int put_merged(rl_st_writer *w, const rl_tensor *t, const rl_lora *l, const rl_adapter *ad)
{
	int rows = (int)t->shape[0], cols = (int)t->shape[1], r = ad->r;
	int block = (int)((8u << 20) / (sizeof(float) * (size_t)cols));
	block = block < 1 ? 1 : block > rows ? rows : block;
	size_t es = rl_dtype_size(t->dtype);
	float *A = widen_all(l->a, &ad->file), *B = widen_all(l->b, &ad->file);
	float *x = rl_malloc_array((size_t)block * (size_t)cols, sizeof(float));
	uint8_t *out = rl_malloc_array((size_t)block * (size_t)cols, es);
	float *d = rl_malloc_array((size_t)cols, sizeof(float));
	int rc = (!A || !B || !x || !out || !d) ? RL_ESYS : RL_OK;
	for (int i0 = 0; i0 < rows && !rc; i0 += block) {
		int n = rows - i0 < block ? rows - i0 : block;
		size_t cnt = (size_t)n * (size_t)cols;
		rc = rl_tensor_read_f32(t, (uint64_t)i0 * (uint64_t)cols, cnt, x);
		if (rc)
			break;
		rl_lora_delta_add(x, B + (size_t)i0 * r, A, n, cols, r, ad->scale, d);
		rl_narrow(t->dtype, x, out, cnt);
		rc = rl_st_writer_put(w, t->name, out, cnt * es);
	}
	free(A);
	free(B);
	free(x);
	free(out);
	free(d);
	return rc;
}

/* The plain name of a path ("dir/model.safetensors" -> "model.safetensors"). */
static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

static int write_shard(const rl_model *base, int s, const rl_adapter *ad, const char *dir,
		       rl_merge_progress progress, void *ctx, size_t *done, uint64_t *bytes)
{
	const rl_st_file *f = &base->shards[s];
	char path[4096];
	if (snprintf(path, sizeof path, "%s/%s", dir, base_name(f->path)) >= (int)sizeof path)
		return rl_error(RL_USAGE, "'%s': path too long", dir);
	rl_st_wtensor *decl = rl_calloc(f->ntensors ? f->ntensors : 1, sizeof *decl);
	const char **meta = rl_calloc(2 * f->nmeta + 1, sizeof *meta);
	if (!decl || !meta) {
		free(decl);
		free(meta);
		return RL_ESYS;
	}
	size_t nmeta = 0;
	for (size_t i = 0; i < f->nmeta; i++)
		if (strcmp(f->meta_keys[i], "format") != 0) {
			meta[2 * nmeta] = f->meta_keys[i];
			meta[2 * nmeta + 1] = f->meta_vals[i];
			nmeta++;
		}
	for (size_t i = 0; i < f->ntensors; i++) {
		const rl_st_tensor *t = &f->tensors[i];
		decl[i].name = t->name;
		decl[i].dtype = t->dtype;
		decl[i].ndim = t->ndim;
		memcpy(decl[i].shape, t->shape, sizeof decl[i].shape);
	}
	rl_st_writer w;
	int rc = rl_st_writer_open(&w, path, decl, f->ntensors, meta, nmeta);
	for (size_t i = 0; i < f->ntensors && !rc; i++) {
		const rl_st_tensor *st = &f->tensors[i];
		const rl_tensor *t = rl_model_find(base, st->name);
		const rl_lora *l = t ? rl_adapter_find(ad, st->name) : NULL;
		if (l)
			rc = put_merged(&w, t, l, ad);
		else
			rc = rl_st_writer_put(&w, st->name, f->map + st->offset, st->nbytes);
		*bytes += st->nbytes;
		++*done;
		if (!rc && progress)
			progress(ctx, *done, base->ntensors, *bytes);
	}
	if (rc)
		rl_st_writer_abort(&w);
	else
		rc = rl_st_writer_close(&w);
	free(decl);
	free(meta);
	return rc;
}

int rl_merge_write(const rl_model *base, const rl_adapter *ad, const char *dir,
		   rl_merge_progress progress, void *ctx)
{
	size_t done = 0;
	uint64_t bytes = 0;
	int rc = RL_OK;
	for (int s = 0; s < base->nshards && !rc; s++)
		rc = write_shard(base, s, ad, dir, progress, ctx, &done, &bytes);
	/* config.json, the shard index and the side files, as they are */
	static const char *const own[] = {"config.json", "model.safetensors.index.json"};
	for (size_t i = 0; i < 2 && !rc; i++) {
		char a[4096], b[4096];
		if (snprintf(a, sizeof a, "%s/%s", base->dir, own[i]) >= (int)sizeof a ||
		    snprintf(b, sizeof b, "%s/%s", dir, own[i]) >= (int)sizeof b)
			return rl_error(RL_USAGE, "'%s': path too long", base->dir);
		if (i == 1 && base->nshards == 1 &&
		    strcmp(base_name(base->shards[0].path), "model.safetensors") == 0)
			continue; /* model.safetensors alone: no index to copy */
		rc = rl_copy_file(a, b);
	}
	if (!rc)
		rc = rl_model_copy_side_files(base->dir, dir);
	return rc;
}
