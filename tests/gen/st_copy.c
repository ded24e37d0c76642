/* st_copy.c — a fixture-generation helper (built and run by gen_safetensors.py,
 * never by make check): rewrites files and model directories through realign's
 * writer so the Python side can check the official library and transformers
 * load what we write.
 *
 *   st_copy FILE_IN FILE_OUT            safetensors file via rl_st_open + rl_st_write
 *   st_copy --model DIR_IN DIR_OUT MAX  model directory via rl_model_open +
 *                                       rl_model_write (MAX bytes per shard, 0 = one file)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "store/model.h"
#include "store/safetensors.h"

static rl_st_wtensor from_st(const rl_st_file *f, const rl_st_tensor *t)
{
	rl_st_wtensor w;
	memset(&w, 0, sizeof w);
	w.name = t->name;
	w.dtype = t->dtype;
	w.ndim = t->ndim;
	memcpy(w.shape, t->shape, sizeof w.shape);
	w.data = f->map + t->offset;
	return w;
}

int main(int argc, char **argv)
{
	int rc;
	if (argc == 3) {
		rl_st_file f;
		if ((rc = rl_st_open(&f, argv[1], RL_ST_READ)))
			goto fail;
		rl_st_wtensor *w = calloc(f.ntensors + 1, sizeof *w);
		for (size_t i = 0; i < f.ntensors; i++)
			w[i] = from_st(&f, &f.tensors[i]);
		rc = rl_st_write(argv[2], w, f.ntensors, NULL, 0);
		free(w);
		rl_st_close(&f);
		if (rc)
			goto fail;
		return 0;
	}
	if (argc == 5 && strcmp(argv[1], "--model") == 0) {
		rl_model m;
		if ((rc = rl_model_open(&m, argv[2], RL_MODEL_READ)))
			goto fail;
		rl_st_wtensor *w = calloc(m.ntensors + 1, sizeof *w);
		for (size_t i = 0; i < m.ntensors; i++) {
			const rl_tensor *t = &m.tensors[i];
			w[i].name = t->name;
			w[i].dtype = t->dtype;
			w[i].ndim = t->ndim;
			memcpy(w[i].shape, t->shape, (size_t)t->ndim * sizeof *t->shape);
			w[i].data = t->data;
		}
		rc = rl_model_write(argv[3], &m.cfg, w, m.ntensors, strtoull(argv[4], NULL, 10));
		free(w);
		rl_model_close(&m);
		if (rc)
			goto fail;
		return 0;
	}
	fprintf(stderr, "usage: st_copy IN OUT | st_copy --model DIR_IN DIR_OUT MAX\n");
	return 2;
fail:
	fprintf(stderr, "st_copy: %s\n", rl_errmsg());
	return rc;
}
