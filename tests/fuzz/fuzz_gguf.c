/* fuzz_gguf.c — libFuzzer target for the GGUF validator and dequantization.
 *
 * The input is a whole file image. Besides "no crash, no UB, no leak", every
 * accepted file must satisfy the invariants the rest of realign relies on:
 * the data section aligned and inside the file; tensors, in offset order,
 * each where the previous one ends padded to the alignment, inside the file,
 * sizes equal to numel / block size x type size, ne[0] whole blocks, unique
 * names; every metadata array walkable inside the file. Each getter is called
 * on each key (they may refuse, never misbehave) and every tensor realign can
 * dequantize is dequantized (the first 64 KiB of it). A prefix that ends
 * before the last tensor's data must never be accepted.
 *
 * seeds: tests/fixtures/gguf tests/fixtures/gguf/bad
 * dict: tests/fuzz/gguf.dict
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *lo, *hi; /* the input's bounds, for the array walk */

static void walk(const rl_gguf_val *arr, int depth)
{
	if (depth > RL_GGUF_MAX_NESTING)
		__builtin_trap();
	const uint8_t *cur = arr->as.arr.elems;
	for (uint64_t k = 0; k < arr->as.arr.count; k++) {
		rl_gguf_val e;
		rl_gguf_array_next(arr, &cur, &e);
		if (cur < lo || cur > hi || e.type != arr->as.arr.type)
			__builtin_trap();
		if (e.type == RL_GGUF_STRING &&
		    (e.as.s.s < (const char *)lo ||
		     e.as.s.len > (uint64_t)(hi - (const uint8_t *)e.as.s.s)))
			__builtin_trap();
		if (e.type == RL_GGUF_ARRAY)
			walk(&e, depth + 1);
	}
}

static void getters(const rl_gguf *g, const char *key)
{
	rl_gguf_str s;
	char *c = NULL;
	uint32_t u32;
	uint64_t u64;
	int64_t i64;
	float f;
	int b;
	rl_gguf_str *sa = NULL;
	int64_t *ia = NULL;
	float *fa = NULL;
	size_t n;
	rl_gguf_get_str(g, key, &s);
	if (rl_gguf_get_cstr(g, key, &c) == 0)
		free(c);
	rl_gguf_get_u32(g, key, &u32);
	rl_gguf_get_u64(g, key, &u64);
	rl_gguf_get_i64(g, key, &i64);
	rl_gguf_get_f32(g, key, &f);
	rl_gguf_get_bool(g, key, &b);
	if (rl_gguf_get_str_array(g, key, &sa, &n) == 0)
		free(sa);
	if (rl_gguf_get_int_array(g, key, &ia, &n) == 0)
		free(ia);
	if (rl_gguf_get_float_array(g, key, &fa, &n) == 0)
		free(fa);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	rl_gguf_file f;
	memset(&f, 0, sizeof f);
	f.path = "fuzz";
	if (rl_gguf_parse(&f, data, size) != 0)
		return 0;
	lo = data;
	hi = data + size;
	uint64_t a = f.alignment;
	if (a == 0 || (a & (a - 1)) || f.data_start % a || f.data_start > size + a)
		__builtin_trap();
	/* tensors in offset order: contiguous up to padding, inside the file */
	uint64_t expect = f.data_start, last_end = f.data_start;
	for (size_t done = 0; done < f.ntensors; done++) {
		const rl_gguf_tensor *t = NULL;
		for (size_t k = 0; k < f.ntensors; k++)
			if (f.tensors[k].offset == expect)
				t = &f.tensors[k];
		if (!t)
			__builtin_trap();
		uint64_t bs = rl_ggml_block_size(t->type), ts = rl_ggml_type_size(t->type);
		uint64_t numel = 1;
		for (int d = 0; d < t->ndim; d++)
			numel *= t->ne[d];
		if (!bs || t->ne[0] % bs || t->numel != numel || t->nbytes != numel / bs * ts ||
		    t->offset % a || t->offset + t->nbytes > size || t->data != data + t->offset ||
		    t->ndim > RL_GGUF_MAX_DIMS)
			__builtin_trap();
		for (int d = t->ndim; d < RL_GGUF_MAX_DIMS; d++)
			if (t->ne[d] != 1)
				__builtin_trap();
		last_end = t->offset + t->nbytes;
		expect = (last_end + a - 1) / a * a;
	}
	if (f.ntensors && size > expect)
		__builtin_trap();
	for (size_t i = 0; i < f.ntensors; i++)
		for (size_t j = i + 1; j < f.ntensors; j++)
			if (strcmp(f.tensors[i].name, f.tensors[j].name) == 0)
				__builtin_trap();
	for (size_t k = 0; k < f.nkv; k++)
		if (f.kv[k].val.type == RL_GGUF_ARRAY)
			walk(&f.kv[k].val, 1);

	rl_gguf g;
	memset(&g, 0, sizeof g);
	g.files = &f;
	g.nfiles = 1;
	g.kv = f.kv;
	g.nkv = f.nkv;
	for (size_t k = 0; k < f.nkv; k++)
		getters(&g, f.kv[k].key);
	/* dequantize up to 64 KiB of f32 of each tensor, by whole rows */
	static float buf[16384];
	for (size_t k = 0; k < f.ntensors; k++) {
		const rl_gguf_tensor *t = &f.tensors[k];
		uint64_t rows = rl_gguf_rows(t), fit = t->ne[0] ? 16384 / t->ne[0] : 0;
		uint64_t n = rows < fit ? rows : fit;
		int rc = rl_gguf_dequant_rows(t, 0, n, buf);
		if ((rc == 0) != (rl_ggml_can_dequant(t->type) != 0))
			__builtin_trap();
	}
	rl_gguf_file_free(&f);
	/* a prefix that cuts the last tensor's data is refused */
	if (last_end > 0 && last_end - 1 >= f.data_start) {
		rl_gguf_file h;
		memset(&h, 0, sizeof h);
		h.path = "fuzz";
		if (rl_gguf_parse(&h, data, (size_t)last_end - 1) == 0)
			__builtin_trap();
	}
	return 0;
}
