/* tokenizer_buf.c — the containers the tokenizer modules share: byte buffers,
 * id arrays and string -> int32 maps (open addressing over a key arena). */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "core/error.h"
#include "text/tokenizer_int.h"

/* ---- buffers ---------------------------------------------------------------- */
int tk_buf_reserve(tk_buf *b, size_t extra)
{
	if (b->cap - b->n >= extra + 1)
		return RL_OK;
	size_t cap = b->cap ? b->cap : 64;
	while (cap - b->n < extra + 1) {
		if (cap > SIZE_MAX / 2)
			return rl_error(RL_ESYS, "buffer size overflow");
		cap *= 2;
	}
	char *p = realloc(b->p, cap);
	if (!p)
		return rl_error(RL_ESYS, "out of memory (%zu bytes)", cap);
	b->p = p;
	b->cap = cap;
	return RL_OK;
}

int tk_buf_add(tk_buf *b, const void *s, size_t n)
{
	if (tk_buf_reserve(b, n))
		return RL_ESYS;
	if (n)
		memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = 0;
	return RL_OK;
}

void tk_buf_free(tk_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

/* ---- ids ---------------------------------------------------------------------- */
int rl_ids_append(rl_ids *a, const int32_t *ids, size_t n)
{
	if (a->cap - a->n < n) {
		size_t cap = a->cap ? a->cap : 16;
		while (cap - a->n < n) {
			if (cap > SIZE_MAX / 2 / sizeof(int32_t))
				return rl_error(RL_ESYS, "id array size overflow");
			cap *= 2;
		}
		int32_t *v = rl_realloc_array(a->v, cap, sizeof *v);
		if (!v)
			return RL_ESYS;
		a->v = v;
		a->cap = cap;
	}
	if (n)
		memcpy(a->v + a->n, ids, n * sizeof *ids);
	a->n += n;
	return RL_OK;
}

int rl_ids_push(rl_ids *a, int32_t id)
{
	if (a->n < a->cap) {
		a->v[a->n++] = id;
		return RL_OK;
	}
	return rl_ids_append(a, &id, 1);
}

void rl_ids_free(rl_ids *a)
{
	free(a->v);
	memset(a, 0, sizeof *a);
}

/* ---- string maps ---------------------------------------------------------------- */
#define KEY_BITS 24

static uint64_t hash_bytes(const char *s, size_t n)
{
	return XXH3_64bits(s, n);
}

const char *tk_map_key(const tk_map *m, size_t e, size_t *len)
{
	*len = (size_t)(m->koff[e] & ((1u << KEY_BITS) - 1));
	return m->arena + (m->koff[e] >> KEY_BITS);
}

static int map_rehash(tk_map *m, size_t nslots)
{
	uint32_t *slot = rl_calloc(nslots, sizeof *slot);
	if (!slot)
		return RL_ESYS;
	size_t mask = nslots - 1;
	for (size_t e = 0; e < m->n; e++) {
		size_t len;
		const char *k = tk_map_key(m, e, &len);
		size_t h = (size_t)hash_bytes(k, len) & mask;
		while (slot[h])
			h = (h + 1) & mask;
		slot[h] = (uint32_t)(e + 1);
	}
	free(m->slot);
	m->slot = slot;
	m->mask = mask;
	return RL_OK;
}

static size_t map_find(const tk_map *m, const char *s, size_t len, uint64_t h, int *found)
{
	size_t i = (size_t)h & m->mask;
	for (;;) {
		uint32_t e = m->slot[i];
		if (!e) {
			*found = 0;
			return i;
		}
		size_t klen;
		const char *k = tk_map_key(m, e - 1, &klen);
		if (klen == len && memcmp(k, s, len) == 0) {
			*found = 1;
			return i;
		}
		i = (i + 1) & m->mask;
	}
}

int tk_map_put(tk_map *m, const char *s, size_t len, int32_t val, int overwrite)
{
	if (len >= (1u << KEY_BITS))
		return rl_error(RL_EDATA, "token of %zu bytes is too long", len);
	if (!m->slot || (m->n + 1) * 2 > m->mask + 1) {
		size_t nslots = m->slot ? (m->mask + 1) * 2 : 1024;
		if (map_rehash(m, nslots))
			return RL_ESYS;
	}
	uint64_t h = hash_bytes(s, len);
	int found;
	size_t i = map_find(m, s, len, h, &found);
	if (found) {
		if (overwrite)
			m->val[m->slot[i] - 1] = val;
		return RL_OK;
	}
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 256;
		uint64_t *koff = rl_realloc_array(m->koff, cap, sizeof *koff);
		if (!koff)
			return RL_ESYS;
		m->koff = koff;
		int32_t *v = rl_realloc_array(m->val, cap, sizeof *v);
		if (!v)
			return RL_ESYS;
		m->val = v;
		m->cap = cap;
	}
	if (m->arena_cap - m->arena_n < len + 1) {
		size_t cap = m->arena_cap ? m->arena_cap : 4096;
		while (cap - m->arena_n < len + 1)
			cap *= 2;
		if (cap >= ((uint64_t)1 << (64 - KEY_BITS)))
			return rl_error(RL_ESYS, "string table too large");
		char *a = realloc(m->arena, cap);
		if (!a)
			return rl_error(RL_ESYS, "out of memory");
		m->arena = a;
		m->arena_cap = cap;
	}
	memcpy(m->arena + m->arena_n, s, len);
	m->arena[m->arena_n + len] = 0; /* keys are NUL-terminated too */
	m->koff[m->n] = ((uint64_t)m->arena_n << KEY_BITS) | len;
	m->val[m->n] = val;
	m->arena_n += len + 1;
	m->slot[i] = (uint32_t)(++m->n);
	return RL_OK;
}

int32_t tk_map_get(const tk_map *m, const char *s, size_t len)
{
	if (!m->slot)
		return -1;
	int found;
	size_t i = map_find(m, s, len, hash_bytes(s, len), &found);
	return found ? m->val[m->slot[i] - 1] : -1;
}

void tk_map_free(tk_map *m)
{
	free(m->arena);
	free(m->koff);
	free(m->val);
	free(m->slot);
	memset(m, 0, sizeof *m);
}
