/* shard_stream.h — the partial streams of sharded runs and their exact sum
 * (rl-grad --shard, rl-direction --shard, rl-sum; rl-stream(5)).
 *
 * A shard stream's header holds, after the six common keys, exactly the keys
 * (in the same order, with the same values) of the header the unsharded run
 * writes, then
 *   shard  {"index": I (1..N), "count": N, "units": U, "first": u0, "end": u1}:
 *          the units [u0, u1) of U (gradient batches; prompt groups of the
 *          direction) that shard I of N holds, as rl_shard_range says
 *   and keys every shard of one run must share though the unsharded header
 *   lacks them (prompts_hash, direction_hash, batch_size, per_prompt,
 *          threads: OpenBLAS's thread count, on which its sums depend, and
 *          precision: rl-grad's and rl-direction's --precision).
 *
 * grad-shard (rl-grad --shard): "batch" records of the shard's batches (their
 * global index), then for layer layer_end-1 down to 0, for each of the
 * shard's batches b, {"t":"part", "layer", "batch": b} followed by that
 * batch's PARTIAL of every candidate tensor of the layer (rl-grad's order).
 * The unsharded gradient is partial_0 + partial_1 + ... added in f32 in batch
 * order (engine.h), and so is the sum.
 *
 * direction-shard (rl-direction --shard): tensors "prompt.<i>" (global i,
 * ascending) of the shard's prompts; the sum is rl-direction's mean, taken
 * over them in prompt order in double.
 */
#ifndef RL_SHARD_STREAM_H
#define RL_SHARD_STREAM_H

#include <msgpack.h>
#include <stdint.h>

#include "core/options.h"

/* Packs the "shard" pair of a shard header: shard s (1-based) holding units
 * [u0, u1) of `units`. */
void rl_pack_kv_shard(msgpack_packer *pk, const rl_shard *s, int units, int u0, int u1);
/* 16 lowercase hex digits of h into buf[17]. */
void rl_hex64(uint64_t h, char buf[17]);

/* Sums the n shard streams at paths (any order; every shard of one run once)
 * into the stream the unsharded run writes, at out ("-": standard output).
 * Nothing reaches out unless the sum is complete: the stream is written
 * beside out and renamed into place (for standard output: into an unlinked
 * temporary file, copied out once complete). Shards of different runs
 * (model, model state, prompts, direction, settings, realign version), a
 * shard missing or twice: RL_EDATA naming the file and the reason.
 * add (NULL: none): a previous grad stream added to the sum, tensor by tensor
 * after it, as rl-grad --add adds it (its sum_of added to the header's): the
 * bytes of the unsharded rl-grad --add run. Gradient shards only. */
int rl_shard_sum(const char *const *paths, int n, const char *out, const char *add);

#endif
