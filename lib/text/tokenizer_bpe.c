/* tokenizer_bpe.c — the BPE and WordLevel models, the word cache.
 *
 * BPE follows tokenizers' models/bpe (merge_word + Word::merge_all): the piece is
 * cut into chars (with continuing_subword_prefix / end_of_word_suffix), unknown
 * chars become <0xNN> byte tokens (byte_fallback) or unk (fused when fuse_unk),
 * then the pair with the lowest merge rank (leftmost on ties) is merged until no
 * pair has a rank. A binary heap of (rank, position) entries with lazy deletion
 * and a doubly linked list of symbols make this O(n log n) in the piece length:
 * SentencePiece-style tokenizers without a pre-tokenizer hand the model whole
 * paragraphs, so a quadratic loop would not do.
 */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "text/tokenizer_int.h"

/* ---- merges: (a, b) -> (rank, new id) --------------------------------------------- */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

int tk_build_merges(rl_tokenizer *t, size_t n_merges)
{
	size_t n = 1024;
	while (n < n_merges * 2) {
		if (n > SIZE_MAX / 4 / sizeof(tk_merge_slot))
			return rl_error(RL_EDATA, "too many merges");
		n *= 2;
	}
	t->merges = rl_malloc_array(n, sizeof *t->merges);
	if (!t->merges)
		return RL_ESYS;
	for (size_t i = 0; i < n; i++)
		t->merges[i].key = UINT64_MAX;
	t->merges_mask = n - 1;
	t->n_merges = 0;
	return RL_OK;
}

/* Later duplicates overwrite earlier ones, as tokenizers' HashMap collect does. */
int tk_merge_put(rl_tokenizer *t, int32_t a, int32_t b, uint32_t rank, int32_t new_id)
{
	uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
	size_t i = (size_t)mix64(key) & t->merges_mask;
	while (t->merges[i].key != UINT64_MAX && t->merges[i].key != key)
		i = (i + 1) & t->merges_mask;
	if (t->merges[i].key == UINT64_MAX)
		t->n_merges++;
	t->merges[i].key = key;
	t->merges[i].rank = rank;
	t->merges[i].new_id = new_id;
	return RL_OK;
}

static inline const tk_merge_slot *merge_get(const rl_tokenizer *t, int32_t a, int32_t b)
{
	uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
	size_t i = (size_t)mix64(key) & t->merges_mask;
	for (;;) {
		const tk_merge_slot *s = &t->merges[i];
		if (s->key == key)
			return s;
		if (s->key == UINT64_MAX)
			return NULL;
		i = (i + 1) & t->merges_mask;
	}
}

/* ---- the BPE word ------------------------------------------------------------------- */
struct tk_heap_ent {
	uint32_t rank, pos;
	int32_t new_id;
};

static inline int heap_less(const struct tk_heap_ent *a, const struct tk_heap_ent *b)
{
	return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static int heap_push(tk_state *st, uint32_t rank, uint32_t pos, int32_t new_id)
{
	if (st->heap_n == st->heap_cap) {
		size_t cap = st->heap_cap ? st->heap_cap * 2 : 256;
		struct tk_heap_ent *h = rl_realloc_array(st->heap, cap, sizeof *h);
		if (!h)
			return RL_ESYS;
		st->heap = h;
		st->heap_cap = cap;
	}
	struct tk_heap_ent *h = st->heap, e = {rank, pos, new_id};
	size_t i = st->heap_n++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!heap_less(&e, &h[p]))
			break;
		h[i] = h[p];
		i = p;
	}
	h[i] = e;
	return RL_OK;
}

static struct tk_heap_ent heap_pop(tk_state *st)
{
	struct tk_heap_ent *h = st->heap, top = h[0], last = h[--st->heap_n];
	size_t n = st->heap_n, i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && heap_less(&h[c + 1], &h[c]))
			c++;
		if (!heap_less(&h[c], &last))
			break;
		h[i] = h[c];
		i = c;
	}
	if (n)
		h[i] = last;
	return top;
}

static int sym_reserve(tk_state *st, size_t n)
{
	if (n <= st->sym_cap)
		return RL_OK;
	size_t cap = st->sym_cap ? st->sym_cap : 64;
	while (cap < n)
		cap *= 2;
	int32_t *c = rl_realloc_array(st->sym_c, cap, sizeof *c);
	if (!c)
		return RL_ESYS;
	st->sym_c = c;
	int32_t *p = rl_realloc_array(st->sym_prev, cap, sizeof *p);
	if (!p)
		return RL_ESYS;
	st->sym_prev = p;
	int32_t *x = rl_realloc_array(st->sym_next, cap, sizeof *x);
	if (!x)
		return RL_ESYS;
	st->sym_next = x;
	uint8_t *d = realloc(st->sym_dead, cap);
	if (!d)
		return rl_error(RL_ESYS, "out of memory");
	st->sym_dead = d;
	st->sym_cap = cap;
	return RL_OK;
}

static int32_t vocab_id(const rl_tokenizer *t, const char *s, size_t n)
{
	return tk_map_get(&t->vocab, s, n);
}

/* Symbols of one piece: model ids of its chars (tokenizers' merge_word). */
static int word_symbols(tk_state *st, const char *s, size_t n, size_t *nsym)
{
	const rl_tokenizer *t = st->t;
	size_t k = 0;
	int32_t pending_unk = -1;
	int affix = t->prefix || t->suffix;
	if (sym_reserve(st, n + 1))
		return RL_ESYS;
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		int cl = tk_utf8_next(s + i, n - i, &cp);
		int first = i == 0, last = i + (size_t)cl == n;
		const char *key = s + i;
		size_t klen = (size_t)cl;
		int32_t id;
		if (!affix && cp < 2048) {
			id = t->small[cp];
		} else {
			st->word.n = 0;
			if (t->prefix && !first && tk_buf_add(&st->word, t->prefix, t->prefix_len))
				return RL_ESYS;
			if (tk_buf_add(&st->word, s + i, (size_t)cl))
				return RL_ESYS;
			if (t->suffix && last && tk_buf_add(&st->word, t->suffix, t->suffix_len))
				return RL_ESYS;
			key = st->word.p;
			klen = st->word.n;
			id = vocab_id(t, key, klen);
		}
		i += (size_t)cl;
		if (id >= 0) {
			if (pending_unk >= 0) {
				st->sym_c[k++] = pending_unk;
				pending_unk = -1;
			}
			if (sym_reserve(st, k + 1))
				return RL_ESYS;
			st->sym_c[k++] = id;
			continue;
		}
		if (t->byte_fallback) {
			size_t b;
			for (b = 0; b < klen && t->byte_id[(uint8_t)key[b]] >= 0; b++)
				;
			if (b == klen) {
				if (sym_reserve(st, k + klen + 1))
					return RL_ESYS;
				for (b = 0; b < klen; b++)
					st->sym_c[k++] = t->byte_id[(uint8_t)key[b]];
				continue; /* a pending unk stays pending, as in tokenizers */
			}
		}
		if (t->unk_str) {
			if (t->unk < 0)
				return rl_error(RL_EDATA,
						"'%s': unk token '%s' is not in the vocabulary",
						t->name, t->unk_str);
			if (pending_unk >= 0 && !t->fuse_unk) {
				if (sym_reserve(st, k + 1))
					return RL_ESYS;
				st->sym_c[k++] = pending_unk;
			}
			pending_unk = t->unk;
		}
		/* no unk token: the char is dropped, as in tokenizers */
	}
	if (pending_unk >= 0) {
		if (sym_reserve(st, k + 1))
			return RL_ESYS;
		st->sym_c[k++] = pending_unk;
	}
	*nsym = k;
	return RL_OK;
}

/* Word::merge_all: lowest rank first, leftmost on ties; stale heap entries are
 * skipped by checking the pair at their position still merges to their new id. */
static int merge_all(tk_state *st, size_t n)
{
	const rl_tokenizer *t = st->t;
	int32_t *c = st->sym_c, *prev = st->sym_prev, *next = st->sym_next;
	uint8_t *dead = st->sym_dead;
	st->heap_n = 0;
	for (size_t i = 0; i < n; i++) {
		prev[i] = (int32_t)i - 1;
		next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
		dead[i] = 0;
	}
	for (size_t i = 0; i + 1 < n; i++) {
		const tk_merge_slot *m = merge_get(t, c[i], c[i + 1]);
		if (m && heap_push(st, m->rank, (uint32_t)i, m->new_id))
			return RL_ESYS;
	}
	while (st->heap_n) {
		struct tk_heap_ent top = heap_pop(st);
		size_t pos = top.pos;
		if (dead[pos] || next[pos] < 0)
			continue;
		size_t right = (size_t)next[pos];
		const tk_merge_slot *m = merge_get(t, c[pos], c[right]);
		if (!m || m->new_id != top.new_id)
			continue;
		c[pos] = top.new_id;
		dead[right] = 1;
		next[pos] = next[right];
		if (next[right] >= 0)
			prev[next[right]] = (int32_t)pos;
		if (prev[pos] >= 0) {
			size_t p = (size_t)prev[pos];
			m = merge_get(t, c[p], c[pos]);
			if (m && heap_push(st, m->rank, (uint32_t)p, m->new_id))
				return RL_ESYS;
		}
		if (next[pos] >= 0) {
			m = merge_get(t, c[pos], c[next[pos]]);
			if (m && heap_push(st, m->rank, (uint32_t)pos, m->new_id))
				return RL_ESYS;
		}
	}
	return RL_OK;
}

static int bpe_word(tk_state *st, const char *s, size_t n, rl_ids *out)
{
	size_t nsym = 0;
	int rc = word_symbols(st, s, n, &nsym);
	if (rc)
		return rc;
	if (nsym == 0)
		return RL_OK;
	if ((rc = merge_all(st, nsym)))
		return rc;
	for (int32_t i = 0; i >= 0; i = st->sym_next[i])
		if ((rc = rl_ids_push(out, st->sym_c[i])))
			return rc;
	return RL_OK;
}

#define CACHE_MAX_LEN 256     /* tokenizers' MAX_LENGTH */
#define CACHE_CAPACITY 100000 /* entries */

static int cache_get(tk_state *st, const char *s, size_t n)
{
	rl_tokenizer *t = (rl_tokenizer *)st->t; /* the cache is the only mutable part */
	if (pthread_mutex_trylock(&t->cache_lock))
		return 0;
	int32_t off = tk_map_get(&t->cache, s, n);
	int hit = 0;
	if (off >= 0) {
		int32_t k = t->cache_ids.v[off];
		hit = rl_ids_append(st->out, t->cache_ids.v + off + 1, (size_t)k) ? -1 : 1;
	}
	pthread_mutex_unlock(&t->cache_lock);
	return hit;
}

static void cache_put(tk_state *st, const char *s, size_t n, const int32_t *ids, size_t k)
{
	rl_tokenizer *t = (rl_tokenizer *)st->t;
	if (pthread_mutex_trylock(&t->cache_lock))
		return;
	if (t->cache.n < CACHE_CAPACITY && t->cache_ids.n < INT32_MAX / 2) {
		int32_t off = (int32_t)t->cache_ids.n;
		size_t mark = t->cache_ids.n;
		if (rl_ids_push(&t->cache_ids, (int32_t)k) ||
		    rl_ids_append(&t->cache_ids, ids, k) || tk_map_put(&t->cache, s, n, off, 0))
			t->cache_ids.n = mark; /* out of memory: just do not cache */
	}
	pthread_mutex_unlock(&t->cache_lock);
}

int tk_model_piece(tk_state *st, const char *s, size_t n)
{
	const rl_tokenizer *t = st->t;
	if (n == 0)
		return RL_OK;
	if (t->model == MODEL_WORDLEVEL) {
		int32_t id = vocab_id(t, s, n);
		if (id < 0)
			id = t->unk;
		if (id < 0)
			return rl_error(RL_EDATA,
					"'%s': '%.*s' is not in the vocabulary and there is no unk "
					"token",
					t->name, (int)(n > 40 ? 40 : n), s);
		return rl_ids_push(st->out, id);
	}
	if (t->ignore_merges) {
		int32_t id = vocab_id(t, s, n);
		if (id >= 0)
			return rl_ids_push(st->out, id);
	}
	if (n < CACHE_MAX_LEN) {
		int hit = cache_get(st, s, n);
		if (hit)
			return hit < 0 ? RL_ESYS : RL_OK;
		size_t mark = st->out->n;
		int rc = bpe_word(st, s, n, st->out);
		if (rc)
			return rc;
		cache_put(st, s, n, st->out->n > mark ? st->out->v + mark : NULL,
			  st->out->n - mark);
		return RL_OK;
	}
	return bpe_word(st, s, n, st->out);
}

void tk_state_free(tk_state *st)
{
	if (st->md)
		pcre2_match_data_free(st->md);
	tk_buf_free(&st->nbuf);
	tk_buf_free(&st->nbuf2);
	tk_buf_free(&st->word);
	for (size_t i = 0; i < sizeof st->stage_buf / sizeof st->stage_buf[0]; i++)
		tk_buf_free(&st->stage_buf[i]);
	for (size_t i = 0; i < sizeof st->stage_spans / sizeof st->stage_spans[0]; i++)
		free(st->stage_spans[i].v);
	free(st->tmp_spans.v);
	free(st->sym_c);
	free(st->sym_prev);
	free(st->sym_next);
	free(st->sym_dead);
	free(st->heap);
	rl_ids_free(&st->tmp_ids);
	memset(st, 0, sizeof *st);
}
