/* merge.c — LoRA merge (merge.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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

float *rl_lora_widen(const rl_st_tensor *t, const rl_st_file *f)
{
	float *x = rl_malloc_array((size_t)t->numel, sizeof(float));
	if (x)
		rl_widen(t->dtype, f->map + t->offset, x, (size_t)t->numel);
	return x;
}

int rl_merge_tensor_rows(const rl_tensor *t, const float *A, const float *B, int r, float scale,
			 int i0, int n, float *x, float *d, void *out)
{
	int cols = (int)t->shape[1];
	size_t cnt = (size_t)n * (size_t)cols;
	int rc = rl_tensor_read_f32(t, (uint64_t)i0 * (uint64_t)cols, cnt, x);
	if (rc)
		return rc;
	rl_lora_delta_add(x, B + (size_t)i0 * r, A, n, cols, r, scale, d);
	rl_narrow(t->dtype, x, out, cnt);
	return RL_OK;
}

int rl_merge_rows_per_block(const rl_tensor *t)
{
	int rows = (int)t->shape[0], cols = (int)t->shape[1];
	int block = (int)((8u << 20) / (sizeof(float) * (size_t)cols));
	return block < 1 ? 1 : block > rows ? rows : block;
}

/* The merged tensor, a block of rows at a time, into the writer. */
static int put_merged(rl_st_writer *w, const rl_tensor *t, const rl_lora *l, const rl_adapter *ad)
{
	int rows = (int)t->shape[0], cols = (int)t->shape[1], r = ad->r;
	int block = rl_merge_rows_per_block(t);
	size_t es = rl_dtype_size(t->dtype);
	float *A = rl_lora_widen(l->a, &ad->file), *B = rl_lora_widen(l->b, &ad->file);
	float *x = rl_malloc_array((size_t)block * (size_t)cols, sizeof(float));
	uint8_t *out = rl_malloc_array((size_t)block * (size_t)cols, es);
	float *d = rl_malloc_array((size_t)cols, sizeof(float));
	int rc = (!A || !B || !x || !out || !d) ? RL_ESYS : RL_OK;
	for (int i0 = 0; i0 < rows && !rc; i0 += block) {
		int n = rows - i0 < block ? rows - i0 : block;
		rc = rl_merge_tensor_rows(t, A, B, r, ad->scale, i0, n, x, d, out);
		if (!rc)
			rc = rl_st_writer_put(w, t->name, out, (size_t)n * (size_t)cols * es);
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

/* ---- in memory ---- */

/* Drops the whole pages of t's bytes from the resident set (a read-only
 * file map: they stay in the page cache). */
static void drop_pages(const uint8_t *p, uint64_t n)
{
	long ps = sysconf(_SC_PAGESIZE);
	if (ps <= 0)
		return;
	uintptr_t a = ((uintptr_t)p + (uintptr_t)ps - 1) & ~((uintptr_t)ps - 1);
	uintptr_t e = ((uintptr_t)p + n) & ~((uintptr_t)ps - 1);
	if (e > a)
		madvise((void *)a, e - a, MADV_DONTNEED);
}

/* Merges t into out (t's bytes, in t's dtype). */
static int merge_one(const rl_tensor *t, const rl_lora *l, const rl_adapter *ad, uint8_t *out)
{
	int rows = (int)t->shape[0], cols = (int)t->shape[1], r = ad->r;
	int block = rl_merge_rows_per_block(t);
	size_t es = rl_dtype_size(t->dtype);
	float *A = rl_lora_widen(l->a, &ad->file), *B = rl_lora_widen(l->b, &ad->file);
	float *x = rl_malloc_array((size_t)block * (size_t)cols, sizeof(float));
	float *d = rl_malloc_array((size_t)cols, sizeof(float));
	int rc = (!A || !B || !x || !d) ? RL_ESYS : RL_OK;
	for (int i0 = 0; i0 < rows && !rc; i0 += block) {
		int n = rows - i0 < block ? rows - i0 : block;
		rc = rl_merge_tensor_rows(t, A, B, r, ad->scale, i0, n, x, d,
					  out + (size_t)i0 * (size_t)cols * es);
	}
	free(A);
	free(B);
	free(x);
	free(d);
	return rc;
}

int rl_merge_in_memory(rl_model *base, const rl_adapter *ad, rl_merged *keep)
{
	memset(keep, 0, sizeof *keep);
	for (int s = 0; s < base->nshards; s++)
		if (base->shards[s].writable)
			return rl_error(RL_USAGE, "'%s': merging in memory needs a read-only model",
					base->dir);
	keep->r = ad->r;
	keep->rslora = ad->rslora;
	keep->alpha = ad->alpha;
	keep->scale = ad->scale;
	/* Where each merged tensor goes: one shared memory file, so that the
	 * copies behave as the model's own map does (readers drop pages they
	 * have read with MADV_DONTNEED; on a shared file map that only unmaps
	 * them, where on private memory it would zero them). */
	rl_tensor **ts = rl_calloc(ad->nloras ? ad->nloras : 1, sizeof *ts);
	if (!ts)
		return RL_ESYS;
	int rc = RL_OK;
	uint64_t size = 0;
	for (size_t i = 0; i < ad->nloras && !rc; i++) {
		const rl_lora *l = &ad->loras[i];
		ts[i] = (rl_tensor *)rl_model_find(base, l->weight);
		if (!ts[i] || ts[i]->ndim != 2)
			rc = rl_error(RL_EDATA, "'%s': no matrix '%s' to merge into", base->dir,
				      l->weight);
		else
			size = ((size + 63) & ~(uint64_t)63) + ts[i]->nbytes;
		keep->params += l->a->numel + l->b->numel;
	}
	int fd = rc ? -1 : memfd_create("realign-merged", MFD_CLOEXEC);
	if (!rc && fd < 0)
		rc = rl_error_errno(RL_ESYS, "'%s': memfd_create", ad->dir);
	if (!rc && ftruncate(fd, (off_t)(size ? size : 1)) != 0)
		rc = rl_error_errno(RL_ESYS, "'%s': %llu bytes for the merged tensors", ad->dir,
				    (unsigned long long)size);
	if (!rc) {
		void *p = mmap(NULL, size ? size : 1, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			rc = rl_error_errno(RL_ESYS, "'%s': mmap", ad->dir);
		else
			keep->map = p, keep->size = size ? size : 1;
	}
	if (fd >= 0)
		close(fd);
	uint64_t off = 0;
	for (size_t i = 0; i < ad->nloras && !rc; i++) {
		rl_tensor *t = ts[i];
		off = (off + 63) & ~(uint64_t)63;
		uint8_t *out = (uint8_t *)keep->map + off;
		if ((rc = merge_one(t, &ad->loras[i], ad, out)))
			break;
		drop_pages(t->data, t->nbytes);
		t->data = out;
		off += t->nbytes;
		keep->n++;
	}
	if (!rc && mprotect(keep->map, keep->size, PROT_READ) != 0)
		rc = rl_error_errno(RL_ESYS, "mprotect");
	free(ts);
	return rc;
}

void rl_merged_free(rl_merged *k)
{
	if (k->map)
		munmap(k->map, k->size);
	memset(k, 0, sizeof *k);
}

int rl_merge_adapter_dir(rl_model *base, const char *dir, int check_name, rl_merged *keep)
{
	memset(keep, 0, sizeof *keep);
	rl_adapter ad;
	int rc = rl_adapter_open(&ad, dir);
	if (rc)
		return rc;
	rc = rl_adapter_check(&ad, base, check_name);
	if (!rc)
		rc = rl_merge_in_memory(base, &ad, keep);
	rl_adapter_close(&ad);
	return rc;
}
