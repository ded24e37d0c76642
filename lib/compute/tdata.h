/* tdata.h — training data for rl-train: examples read from JSON lines, packed,
 * and the batch sampler.
 *
 * Each non-blank line is a JSON object, either
 *   {"prompt": "...", "response": "..."}       text, turned into ids by the
 *        encode hook (the chat template's training variant: the templated
 *        prompt with the generation prompt, then the response and the
 *        end-of-turn token; without a hook such a line is an error), or
 *   {"prompt_ids": [...], "response_ids": [...]}  ids used as they are.
 * Other keys are ignored. The loss covers the response tokens only: position
 * j of an example predicts token j+1 and is labelled when j+1 falls in the
 * response. An example without response tokens, with an id outside the
 * vocabulary, or longer than the model's positions is refused, naming the file
 * and line (never truncated silently).
 *
 * Sampling: the examples are visited in epochs, each in a fresh permutation
 * drawn from the seed (splitmix64 + Fisher-Yates: the same order on every
 * machine); a batch takes the next B examples, or the next examples while
 * their tokens fit a budget (at least one), running into the next epoch when
 * the current one ends.
 */
#ifndef RL_TDATA_H
#define RL_TDATA_H

#include <stddef.h>
#include <stdint.h>

#include "compute/train.h"
#include "text/chat.h"

/* (prompt, response) text -> ids of prompt + response + end of turn; *plen is
 * the number of prompt ids. *ids is malloc'd (the caller frees it). */
typedef int (*rl_tencode_fn)(void *ctx, const char *prompt, const char *response, int32_t **ids,
			     int *n, int *plen);

typedef struct rl_tdata_opts {
	int max_examples;     /* take the first N (0: all) */
	int vocab_size;	      /* ids must be in [0, vocab_size) */
	int max_len;	      /* longer examples are refused (0: no limit) */
	rl_tencode_fn encode; /* NULL: text lines are refused */
	void *encode_ctx;
} rl_tdata_opts;

typedef struct rl_tdata {
	int n;	      /* examples */
	int64_t ntok; /* tokens of all examples */
	int max_len;
	int64_t nlabelled; /* response tokens of all examples */
	int *start;	   /* [n + 1] */
	int *plen;	   /* [n] prompt tokens of each example */
	int32_t *ids;	   /* [ntok] */
	char *path;
} rl_tdata;

/* Reads path ("-" = stdin). No example at all is RL_EDATA. */
int rl_tdata_read(rl_tdata *d, const char *path, const rl_tdata_opts *o);
void rl_tdata_free(rl_tdata *d);

typedef struct rl_sampler {
	const rl_tdata *d;
	uint64_t rng;
	int *perm;
	int next;   /* position in perm */
	long epoch; /* completed epochs */
	/* the current batch, valid until the next rl_sampler_next */
	int *start;
	int32_t *ids, *target;
	int cap_n, cap_tok;
	rl_tbatch batch;
} rl_sampler;

/* The encode hook over the model's tokenizer and chat template (tok: an
 * rl_chat, chat.h's training variant). open returns RL_NO when dir has no
 * tokenizer realign can use (text examples are then refused line by line).
 * n_fallback counts the examples whose template does not render the
 * generation prompt as a prefix of the training text (chat.h: the loss then
 * starts where the two renderings part); info says how the template was
 * chosen. */
typedef struct rl_tencode_ctx {
	void *tok;
	long n_fallback;
	rl_chat_info info;
} rl_tencode_ctx;
int rl_tencode_open(rl_tencode_ctx *c, const char *dir, const char *template_name);
int rl_tencode(void *ctx, const char *prompt, const char *response, int32_t **ids, int *n,
	       int *plen);
void rl_tencode_close(rl_tencode_ctx *c);

int rl_sampler_init(rl_sampler *s, const rl_tdata *d, uint64_t seed);
/* The next batch of B examples (packed, with next-token targets on the
 * response positions). */
int rl_sampler_next(rl_sampler *s, int B, const rl_tbatch **b);
/* The next examples while their tokens total at most max_tokens (always at
 * least one example, whatever its length). */
int rl_sampler_next_tokens(rl_sampler *s, int max_tokens, const rl_tbatch **b);
void rl_sampler_free(rl_sampler *s);

#endif
