/* metric.c — exact, contains, label (F1) and ROUGE task metrics (see metric.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "eval/metric.h"
#include "eval/stem.h"

static const struct {
	const char *name;
	rl_metric_kind kind;
} metric_names[] = {
	{"exact", RL_METRIC_EXACT},   {"contains", RL_METRIC_CONTAINS},
	{"label", RL_METRIC_LABEL},   {"rouge1", RL_METRIC_ROUGE1},
	{"rouge2", RL_METRIC_ROUGE2}, {"rougeL", RL_METRIC_ROUGEL},
};

int rl_metric_parse(const char *name, rl_metric_kind *kind)
{
	for (size_t i = 0; i < sizeof metric_names / sizeof metric_names[0]; i++)
		if (strcmp(name, metric_names[i].name) == 0) {
			*kind = metric_names[i].kind;
			return RL_OK;
		}
	return rl_error(RL_USAGE,
			"'%s': unknown metric (exact, contains, label, rouge1, rouge2, rougeL)",
			name);
}

const char *rl_metric_name(rl_metric_kind kind)
{
	if (kind == RL_METRIC_CMD)
		return "cmd";
	for (size_t i = 0; i < sizeof metric_names / sizeof metric_names[0]; i++)
		if (metric_names[i].kind == kind)
			return metric_names[i].name;
	return "none";
}

/* Decodes the UTF-8 code point at s (n bytes left, n >= 1) into *cp and
 * returns its length; a byte that starts no valid sequence is taken alone. */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned c = s[0];
	size_t len;
	uint32_t v;
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if ((c & 0xE0) == 0xC0) {
		len = 2, v = c & 0x1F;
	} else if ((c & 0xF0) == 0xE0) {
		len = 3, v = c & 0x0F;
	} else if ((c & 0xF8) == 0xF0) {
		len = 4, v = c & 0x07;
	} else {
		*cp = 0xFFFD;
		return 1;
	}
	if (n < len) {
		*cp = 0xFFFD;
		return 1;
	}
	for (size_t k = 1; k < len; k++) {
		if ((s[k] & 0xC0) != 0x80) {
			*cp = 0xFFFD;
			return 1;
		}
		v = (v << 6) | (s[k] & 0x3F);
	}
	*cp = v;
	return len;
}

/* Python's str.isspace(). */
static int py_space(uint32_t c)
{
	return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
	       c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
	       c == 0x202F || c == 0x205F || c == 0x3000;
}

void rl_py_strip(const char *str, size_t n, const char **b, const char **e)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, end = 0;
	/* Leading: skip spaces. Trailing: remember the end of the last non-space. */
	while (i < n) {
		uint32_t cp;
		size_t l = utf8_next(s + i, n - i, &cp);
		if (!py_space(cp))
			break;
		i += l;
	}
	*b = str + i;
	end = i;
	while (i < n) {
		uint32_t cp;
		size_t l = utf8_next(s + i, n - i, &cp);
		i += l;
		if (!py_space(cp))
			end = i;
	}
	*e = str + end;
}

static void strip0(const char *s, const char **b, size_t *n)
{
	const char *e;
	rl_py_strip(s, strlen(s), b, &e);
	*n = (size_t)(e - *b);
}

int rl_metric_exact(const char *ref, const char *resp)
{
	const char *a, *b;
	size_t na, nb;
	strip0(ref, &a, &na);
	strip0(resp, &b, &nb);
	return na == nb && memcmp(a, b, na) == 0;
}

static int find(const char *hay, size_t nh, const char *needle, size_t nn)
{
	if (nn == 0)
		return 1;
	if (nn > nh)
		return 0;
	return memmem(hay, nh, needle, nn) != NULL;
}

int rl_metric_contains(const char *ref, const char *resp)
{
	const char *a;
	size_t na;
	strip0(ref, &a, &na);
	return find(resp, strlen(resp), a, na);
}

int rl_metric_label_hit(const char *ref, const char *resp)
{
	const char *a, *b;
	size_t na, nb;
	strip0(ref, &a, &na);
	strip0(resp, &b, &nb);
	/* response.strip()[:10]: the first 10 code points. */
	size_t i = 0;
	for (int cps = 0; cps < 10 && i < nb; cps++) {
		uint32_t cp;
		i += utf8_next((const unsigned char *)b + i, nb - i, &cp);
	}
	return find(b, i, a, na);
}

void rl_label_add(rl_label_counts *c, const char *ref, const char *positive, int hit)
{
	const char *a;
	size_t na;
	strip0(ref, &a, &na);
	int pos = strlen(positive) == na && memcmp(a, positive, na) == 0;
	if (pos) {
		if (hit)
			c->tp++;
		else
			c->fn++;
	} else {
		if (hit)
			c->tn++;
		else
			c->fp++;
	}
}

double rl_label_f1(const rl_label_counts *c, double *precision, double *recall)
{
	double p = c->tp + c->fp ? (double)c->tp / (double)(c->tp + c->fp) : 0;
	double r = c->tp + c->fn ? (double)c->tp / (double)(c->tp + c->fn) : 0;
	if (precision)
		*precision = p;
	if (recall)
		*recall = r;
	return (2 * p * r) / (p + r + 1e-9);
}

/* ---- ROUGE ---- */

/* Appends one byte to the token buffer, growing it. */
static int put(char **buf, size_t *len, size_t *cap, char c)
{
	if (*len + 1 >= *cap) {
		size_t nc = *cap ? *cap * 2 : 256;
		char *p = rl_realloc_array(*buf, nc, 1);
		if (!p)
			return RL_ESYS;
		*buf = p;
		*cap = nc;
	}
	(*buf)[(*len)++] = c;
	return RL_OK;
}

int rl_rouge_tokenize(const char *text, int stem, char **bufp, size_t **toksp, size_t *np)
{
	char *buf = NULL;
	size_t len = 0, cap = 0, *toks = NULL, ntok = 0, tcap = 0;
	size_t start = 0; /* start of the token being built */
	int in_tok = 0, rc = RL_OK;
	const unsigned char *s = (const unsigned char *)text;
	size_t n = strlen(text), i = 0;
	*bufp = NULL;
	*toksp = NULL;
	*np = 0;
	/* end_tok: finish the current token (stem, NUL-terminate, record). */
#define END_TOK()                                                                                  \
	do {                                                                                       \
		if (in_tok) {                                                                      \
			size_t tl = len - start;                                                   \
			if (stem && tl > 3)                                                        \
				len = start + rl_porter_stem(buf + start, tl);                     \
			if ((rc = put(&buf, &len, &cap, '\0')))                                    \
				goto fail;                                                         \
			if (ntok == tcap) {                                                        \
				size_t nc = tcap ? tcap * 2 : 64;                                  \
				size_t *p = rl_realloc_array(toks, nc, sizeof *toks);              \
				if (!p) {                                                          \
					rc = RL_ESYS;                                              \
					goto fail;                                                 \
				}                                                                  \
				toks = p;                                                          \
				tcap = nc;                                                         \
			}                                                                          \
			toks[ntok++] = start;                                                      \
			in_tok = 0;                                                                \
		}                                                                                  \
	} while (0)
	while (i < n) {
		uint32_t cp;
		size_t l = utf8_next(s + i, n - i, &cp);
		i += l;
		char c = 0;
		int sep_after = 0;
		if (cp >= 'A' && cp <= 'Z')
			c = (char)(cp - 'A' + 'a');
		else if ((cp >= 'a' && cp <= 'z') || (cp >= '0' && cp <= '9'))
			c = (char)cp;
		else if (cp == 0x212A) /* KELVIN SIGN lowers to 'k' */
			c = 'k';
		else if (cp == 0x130) /* 'İ' lowers to "i" + U+0307 (a separator) */
			c = 'i', sep_after = 1;
		if (!c) {
			END_TOK();
			continue;
		}
		if (!in_tok) {
			start = len;
			in_tok = 1;
		}
		if ((rc = put(&buf, &len, &cap, c)))
			goto fail;
		if (sep_after)
			END_TOK();
	}
	END_TOK();
#undef END_TOK
	*bufp = buf;
	*toksp = toks;
	*np = ntok;
	return RL_OK;
fail:
	free(buf);
	free(toks);
	return rc;
}

/* Two texts' tokens as small integers (equal strings, equal ids). */
struct idtoks {
	char *buf[2];
	size_t *off[2];
	size_t n[2];
	int *id[2];
};

static int cmp_tok(const void *a, const void *b, void *base)
{
	const char *s = base;
	return strcmp(s + *(const size_t *)a, s + *(const size_t *)b);
}

static void idtoks_free(struct idtoks *t)
{
	for (int k = 0; k < 2; k++) {
		free(t->buf[k]);
		free(t->off[k]);
		free(t->id[k]);
	}
}

/* Tokenizes ref (side 0) and resp (side 1) and numbers the distinct tokens.
 * Ids come from sorting the tokens of both sides in one buffer. */
static int idtoks_make(struct idtoks *t, const char *ref, const char *resp)
{
	memset(t, 0, sizeof *t);
	const char *txt[2] = {ref, resp};
	for (int k = 0; k < 2; k++) {
		int rc = rl_rouge_tokenize(txt[k], 1, &t->buf[k], &t->off[k], &t->n[k]);
		if (rc) {
			idtoks_free(t);
			return rc;
		}
	}
	size_t total = t->n[0] + t->n[1];
	t->id[0] = rl_malloc_array(t->n[0] + 1, sizeof(int));
	t->id[1] = rl_malloc_array(t->n[1] + 1, sizeof(int));
	size_t *all = rl_malloc_array(total + 1, sizeof(size_t));
	size_t l0 = 0;
	for (size_t i = 0; i < t->n[0]; i++)
		l0 += strlen(t->buf[0] + t->off[0][i]) + 1;
	size_t l1 = 0;
	for (size_t i = 0; i < t->n[1]; i++)
		l1 += strlen(t->buf[1] + t->off[1][i]) + 1;
	char *joined = rl_malloc(l0 + l1 + 1);
	if (!t->id[0] || !t->id[1] || !all || !joined) {
		free(all);
		free(joined);
		idtoks_free(t);
		return RL_ESYS;
	}
	/* Copy both sides' tokens into one buffer; all[] holds their offsets. */
	size_t pos = 0, j = 0;
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < t->n[k]; i++) {
			const char *s = t->buf[k] + t->off[k][i];
			size_t l = strlen(s) + 1;
			memcpy(joined + pos, s, l);
			all[j++] = pos;
			pos += l;
		}
	size_t *order = rl_malloc_array(total + 1, sizeof(size_t));
	if (!order) {
		free(all);
		free(joined);
		idtoks_free(t);
		return RL_ESYS;
	}
	memcpy(order, all, total * sizeof(size_t));
	qsort_r(order, total, sizeof(size_t), cmp_tok, joined);
	/* Binary search each token's offset string in the sorted order, taking the
	 * first equal entry's rank as the id. */
	j = 0;
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < t->n[k]; i++, j++) {
			const char *s = joined + all[j];
			size_t lo = 0, hi = total;
			while (lo < hi) {
				size_t mid = lo + (hi - lo) / 2;
				if (strcmp(joined + order[mid], s) < 0)
					lo = mid + 1;
				else
					hi = mid;
			}
			t->id[k][i] = (int)lo;
		}
	free(order);
	free(all);
	free(joined);
	return RL_OK;
}

struct ngram_ctx {
	const int *ids;
	int n;
};

static int cmp_ngram(const void *a, const void *b, void *ctx)
{
	const struct ngram_ctx *g = ctx;
	const int *x = g->ids + *(const size_t *)a, *y = g->ids + *(const size_t *)b;
	for (int i = 0; i < g->n; i++)
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	return 0;
}

static double fmeasure(double p, double r)
{
	/* rouge_score.scoring.fmeasure, same operation order. */
	return p + r > 0 ? 2 * p * r / (p + r) : 0.0;
}

/* Counts clipped n-gram overlap: sum over distinct n-grams of min(count in
 * a, count in b). a and b are id arrays; n-grams are compared as int tuples. */
static int ngram_overlap(const int *a, size_t na, const int *b, size_t nb, int n, size_t *ov)
{
	*ov = 0;
	size_t ga = na >= (size_t)n ? na - n + 1 : 0, gb = nb >= (size_t)n ? nb - n + 1 : 0;
	if (!ga || !gb)
		return RL_OK;
	/* Put both id sequences in one array so one comparator serves both. */
	int *ids = rl_malloc_array(na + nb, sizeof(int));
	size_t *ia = rl_malloc_array(ga, sizeof(size_t)), *ib = rl_malloc_array(gb, sizeof(size_t));
	if (!ids || !ia || !ib) {
		free(ids);
		free(ia);
		free(ib);
		return RL_ESYS;
	}
	memcpy(ids, a, na * sizeof(int));
	memcpy(ids + na, b, nb * sizeof(int));
	for (size_t i = 0; i < ga; i++)
		ia[i] = i;
	for (size_t i = 0; i < gb; i++)
		ib[i] = na + i;
	struct ngram_ctx g = {ids, n};
	qsort_r(ia, ga, sizeof(size_t), cmp_ngram, &g);
	qsort_r(ib, gb, sizeof(size_t), cmp_ngram, &g);
	size_t i = 0, j = 0;
	while (i < ga && j < gb) {
		int c = cmp_ngram(&ia[i], &ib[j], &g);
		if (c < 0)
			i++;
		else if (c > 0)
			j++;
		else {
			(*ov)++;
			i++;
			j++;
		}
	}
	free(ids);
	free(ia);
	free(ib);
	return RL_OK;
}

int rl_rouge_n(const char *ref, const char *resp, int n, rl_rouge_score *out)
{
	struct idtoks t;
	int rc = idtoks_make(&t, ref, resp);
	if (rc)
		return rc;
	size_t ov;
	rc = ngram_overlap(t.id[0], t.n[0], t.id[1], t.n[1], n, &ov);
	if (!rc) {
		size_t gt = t.n[0] >= (size_t)n ? t.n[0] - n + 1 : 0;
		size_t gp = t.n[1] >= (size_t)n ? t.n[1] - n + 1 : 0;
		out->precision = (double)ov / (double)(gp > 1 ? gp : 1);
		out->recall = (double)ov / (double)(gt > 1 ? gt : 1);
		out->f = fmeasure(out->precision, out->recall);
	}
	idtoks_free(&t);
	return rc;
}

/* Length of the longest common subsequence of a and b (two-row DP). */
static int lcs_len(const int *a, size_t na, const int *b, size_t nb, size_t *len)
{
	size_t *prev = rl_calloc(nb + 1, sizeof(size_t)), *cur = rl_calloc(nb + 1, sizeof(size_t));
	if (!prev || !cur) {
		free(prev);
		free(cur);
		return RL_ESYS;
	}
	for (size_t i = 1; i <= na; i++) {
		for (size_t j = 1; j <= nb; j++)
			cur[j] = a[i - 1] == b[j - 1]	? prev[j - 1] + 1
				 : prev[j] > cur[j - 1] ? prev[j]
							: cur[j - 1];
		size_t *t = prev;
		prev = cur;
		cur = t;
	}
	*len = prev[nb];
	free(prev);
	free(cur);
	return RL_OK;
}

int rl_rouge_l(const char *ref, const char *resp, rl_rouge_score *out)
{
	struct idtoks t;
	int rc = idtoks_make(&t, ref, resp);
	if (rc)
		return rc;
	out->precision = out->recall = out->f = 0;
	if (t.n[0] && t.n[1]) {
		size_t l;
		rc = lcs_len(t.id[0], t.n[0], t.id[1], t.n[1], &l);
		if (!rc) {
			out->precision = (double)l / (double)t.n[1];
			out->recall = (double)l / (double)t.n[0];
			out->f = fmeasure(out->precision, out->recall);
		}
	}
	idtoks_free(&t);
	return rc;
}

int rl_metric_score(rl_metric_kind kind, const char *ref, const char *resp, double *score)
{
	rl_rouge_score r = {0, 0, 0};
	int rc = RL_OK;
	switch (kind) {
	case RL_METRIC_EXACT:
		*score = rl_metric_exact(ref, resp);
		break;
	case RL_METRIC_CONTAINS:
		*score = rl_metric_contains(ref, resp);
		break;
	case RL_METRIC_LABEL:
		*score = rl_metric_label_hit(ref, resp);
		break;
	case RL_METRIC_ROUGE1:
	case RL_METRIC_ROUGE2:
		rc = rl_rouge_n(ref, resp, kind == RL_METRIC_ROUGE1 ? 1 : 2, &r);
		*score = r.f;
		break;
	case RL_METRIC_ROUGEL:
		rc = rl_rouge_l(ref, resp, &r);
		*score = r.f;
		break;
	default:
		return rl_error(RL_USAGE, "metric '%s' is not built in", rl_metric_name(kind));
	}
	return rc;
}
