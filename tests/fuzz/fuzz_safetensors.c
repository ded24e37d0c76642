/* fuzz_safetensors.c — libFuzzer target for the safetensors header validator.
 *
 * The input is a whole file image. Besides "no crash, no UB, no leak", every
 * accepted header must satisfy the invariants the rest of realign relies on:
 * tensors in data order, contiguous from the data start to the end of the
 * file, sizes equal to numel x element size, every name found by rl_st_find.
 * A short prefix of the same bytes must never be accepted as the same file.
 *
 * seeds: tests/fixtures/safetensors/official tests/fixtures/safetensors/bad/files
 * dict: tests/fuzz/safetensors.dict
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "store/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	rl_st_file f;
	memset(&f, 0, sizeof f);
	f.path = "fuzz";
	if (rl_st_parse(&f, data, size, size) != 0)
		return 0;
	uint64_t at = f.data_start;
	if (f.data_start < 8 || f.data_start > size)
		__builtin_trap();
	for (size_t i = 0; i < f.ntensors; i++) {
		const rl_st_tensor *t = &f.tensors[i];
		uint64_t numel = 1;
		for (int d = 0; d < t->ndim; d++)
			numel *= (uint64_t)t->shape[d];
		if (t->offset != at || t->numel != numel ||
		    t->nbytes != numel * rl_dtype_size(t->dtype) || t->ndim > RL_MAX_DIMS)
			__builtin_trap();
		if (rl_st_find(&f, t->name) != t)
			__builtin_trap();
		at += t->nbytes;
	}
	if (at != size)
		__builtin_trap();
	for (size_t i = 0; i < f.nmeta; i++)
		if (!f.meta_keys[i] || !f.meta_vals[i])
			__builtin_trap();
	rl_st_free(&f);
	/* one byte less can never still cover the data exactly */
	rl_st_file g;
	memset(&g, 0, sizeof g);
	g.path = "fuzz";
	if (rl_st_parse(&g, data, size - 1, size - 1) == 0)
		__builtin_trap();
	return 0;
}
