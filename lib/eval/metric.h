/* metric.h — task metrics: a response scored against a reference answer.
 *
 * Every metric scores one item in [0, 1]; the task score of a run is the mean
 * of the item scores, except for "label", whose task score is the F1 of the
 * whole run (rl_label_f1), as the reference implementation computes it.
 *
 *   exact     1 when reference and response are equal after stripping
 *             leading and trailing whitespace (Python's str.strip(): the
 *             characters str.isspace() accepts, Unicode spaces included) —
 *             the reference's SQL metric, `label.strip() == response.strip()`.
 *   contains  1 when the stripped reference occurs in the response (bytes).
 *   label     the reference's classification metric: the stripped reference
 *             label must occur within the first 10 characters (code points)
 *             of the stripped response; the item score is that hit (1/0).
 *   rouge1, rouge2, rougeL
 *             F-measure of Google's rouge_score (RougeScorer(use_stemmer=True)):
 *             tokens are maximal runs of [a-z0-9] after lowercasing (Python's
 *             str.lower(): ASCII, plus U+0130 -> "i" and U+212A KELVIN -> "k",
 *             the only non-ASCII characters that lower to ASCII letters), every
 *             other character separates; tokens longer than 3 letters are
 *             Porter-stemmed (stem.h). ROUGE-N counts clipped n-gram overlaps,
 *             P = overlap / max(#response n-grams, 1), R = overlap /
 *             max(#reference n-grams, 1); ROUGE-L uses the longest common
 *             subsequence, 0 when either side has no tokens. F = 2PR/(P+R), 0
 *             when P+R = 0. Computed in double exactly as rouge_score does.
 */
#ifndef RL_METRIC_H
#define RL_METRIC_H

#include <stddef.h>

typedef enum rl_metric_kind {
	RL_METRIC_NONE = 0,
	RL_METRIC_EXACT,
	RL_METRIC_CONTAINS,
	RL_METRIC_LABEL,
	RL_METRIC_ROUGE1,
	RL_METRIC_ROUGE2,
	RL_METRIC_ROUGEL,
	RL_METRIC_CMD, /* an external --metric-cmd; scores come from outside */
} rl_metric_kind;

/* "exact", "contains", "label", "rouge1", "rouge2", "rougeL" -> kind; returns
 * RL_OK, or RL_USAGE (with a message listing the names) when unknown. */
int rl_metric_parse(const char *name, rl_metric_kind *kind);
const char *rl_metric_name(rl_metric_kind kind);

/* Python's str.strip(): [*b, *e) is s without leading and trailing
 * whitespace (UTF-8). */
void rl_py_strip(const char *s, size_t n, const char **b, const char **e);

/* 1 when the stripped strings are equal. */
int rl_metric_exact(const char *ref, const char *resp);
/* 1 when the stripped ref occurs in resp. */
int rl_metric_contains(const char *ref, const char *resp);
/* 1 when the stripped ref occurs in the first 10 code points of the stripped
 * response. */
int rl_metric_label_hit(const char *ref, const char *resp);

/* Confusion counts of the label metric, the reference's way: an item whose
 * stripped reference equals the positive label is a positive (hit -> TP,
 * miss -> FN); any other item is a negative (hit -> TN, miss -> FP). */
typedef struct rl_label_counts {
	long tp, fp, tn, fn;
} rl_label_counts;
void rl_label_add(rl_label_counts *c, const char *ref, const char *positive, int hit);
/* F1 = 2PR / (P + R + 1e-9) with P = TP/(TP+FP), R = TP/(TP+FN) as in the
 * reference; a zero denominator (where the reference would raise) gives 0. */
double rl_label_f1(const rl_label_counts *c, double *precision, double *recall);

/* ROUGE scores. */
typedef struct rl_rouge_score {
	double precision, recall, f;
} rl_rouge_score;

/* Tokens of text as rouge_score's DefaultTokenizer(use_stemmer) produces
 * them: *toks gets n offsets into *buf (one NUL-terminated token each); the
 * caller frees *buf and *toks. Returns RL_OK or RL_ESYS. */
int rl_rouge_tokenize(const char *text, int stem, char **buf, size_t **toks, size_t *n);

/* rouge1 (n = 1), rouge2 (n = 2), ... of response against reference. */
int rl_rouge_n(const char *ref, const char *resp, int n, rl_rouge_score *out);
/* rougeL of response against reference. */
int rl_rouge_l(const char *ref, const char *resp, rl_rouge_score *out);

/* Scores one item with a built-in metric (not NONE, LABEL's hit, not CMD). */
int rl_metric_score(rl_metric_kind kind, const char *ref, const char *resp, double *score);

#endif
