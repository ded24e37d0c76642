/* prompts.h — prompt sets read from JSON lines, held packed (no padding).
 *
 * Each non-blank line is a JSON object with one of
 *   {"ids": [1, 518, 25580, ...]}   token ids, used as they are;
 *   {"prompt": "How do I ..."}      text, turned into ids by the encode hook
 *                                   (the tokenizer and chat template plug in
 *                                   there; without a hook such a line is an
 *                                   error naming the line).
 * Other keys are ignored ("ids" wins when both are present). The first
 * max_prompts prompts are taken, in file order (batches are formed in that
 * order). Every error names the file and the 1-based line:
 *   'harmful.jsonl' line 7: token id 70000 out of range (vocab 32000)
 *
 * Packed layout: prompt i's tokens are ids[start[i] .. start[i+1]-1]; its
 * positions are 0 .. len-1.
 */
#ifndef RL_PROMPTS_H
#define RL_PROMPTS_H

#include <stddef.h>
#include <stdint.h>

/* Text -> token ids for {"prompt": ...} lines. On success *ids is a malloc'd
 * array of *n ids (the caller frees it); on failure a status from error.h with
 * a message (the reader prefixes the file and line). */
typedef int (*rl_encode_fn)(void *ctx, const char *text, size_t len, int32_t **ids, int *n);

typedef struct rl_prompts_opts {
	int max_prompts;     /* take the first N (0: all) */
	int vocab_size;	     /* ids must be in [0, vocab_size) (0: unchecked) */
	int max_len;	     /* longer prompts are refused (the model's max_position; 0: none) */
	rl_encode_fn encode; /* NULL: text prompts are refused */
	void *encode_ctx;
} rl_prompts_opts;

typedef struct rl_prompts {
	int n;	      /* prompts */
	int64_t ntok; /* tokens of all prompts */
	int max_len;  /* longest prompt */
	int *start;   /* [n + 1] */
	int32_t *ids; /* [ntok] */
	long *lineno; /* [n] line of each prompt in its file */
	char *path;   /* as given ("<stdin>" for "-") */
} rl_prompts;

/* Reads path ("-" = stdin). No prompt at all is RL_EDATA ("no prompts"). */
int rl_prompts_read(rl_prompts *p, const char *path, const rl_prompts_opts *o);
/* Builds a set from in-memory id lists (tests, generation): n prompts, prompt
 * i being lens[i] ids at ids[i]. */
int rl_prompts_from_ids(rl_prompts *p, int n, const int32_t *const *ids, const int *lens);
void rl_prompts_free(rl_prompts *p);
/* dst = prompts [i0, i1) of src (0 <= i0 < i1 <= src->n), with their lines
 * and src's path. */
int rl_prompts_slice(rl_prompts *dst, const rl_prompts *src, int i0, int i1);
/* The set's identity: XXH64 (seed 0) of n, then each prompt's length and ids
 * (little-endian int32): equal for the same token ids, whatever file, template
 * or tokenizer gave them. */
uint64_t rl_prompts_hash(const rl_prompts *p);

static inline int rl_prompt_len(const rl_prompts *p, int i)
{
	return p->start[i + 1] - p->start[i];
}

#endif
