/* eval_shard.h — the eval-shard streams of one rl-eval --shard run merged
 * into the eval stream of the unsharded run (rl-sum; eval.h, rl-stream(5)).
 *
 * Each shard holds the items of ids [first, end) (rl_shard_range over the
 * run's items), judged and scored. The merge writes the unsharded header
 * (the shards' keys before "shard"), every item record as its shard wrote
 * it, in id order, and the summary computed from them as rl-eval computes it
 * (rl_eval_summarize: the same counts, the rate, the task score summed in id
 * order): with batch-invariant generation (generate.h, which --shard
 * implies) the bytes of `rl-eval --batch-invariant` over the whole set,
 * except its timing fields: gen_seconds is the shards' sum (machine time, not
 * wall time) and tokens_per_s their generated tokens over it.
 */
#ifndef RL_EVAL_SHARD_H
#define RL_EVAL_SHARD_H

#include "store/shard_stream.h"

/* Merges the eval shards of set (rl_shard_set_open: one run, each shard
 * once) into out ("-": standard output), complete or not at all. Items that
 * are not the shard's ids in order, fields that disagree with the header's
 * judge or metric, a summary record missing: RL_EDATA naming the file. */
int rl_eval_shard_merge(rl_shard_set *set, const char *out);

#endif
