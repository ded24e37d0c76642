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
#include "store/stream.h"

/* Packs the "shard" pair of a shard header: shard s (1-based) holding units
 * [u0, u1) of `units`. */
void rl_pack_kv_shard(msgpack_packer *pk, const rl_shard *s, int units, int u0, int u1);
/* 16 lowercase hex digits of h into buf[17]. */
void rl_hex64(uint64_t h, char buf[17]);

/* The shard streams of one run (rl-sum's inputs), opened and checked: every
 * header key but "shard" equal (else RL_EDATA naming the file and the key's
 * meaning), every shard of the run there once (else RL_EDATA: missing,
 * twice), put in shard order; kinds grad-shard, direction-shard and
 * eval-shard. */
typedef struct rl_shard_set rl_shard_set;
int rl_shard_set_open(rl_shard_set **set, const char *const *paths, int n);
void rl_shard_set_close(rl_shard_set *set);
/* The shards' kind ("eval-shard", ...) and count N. */
const char *rl_shard_set_kind(const rl_shard_set *set);
int rl_shard_set_count(const rl_shard_set *set);
/* Shard k (0-based, shard order): its reader (after the header), path and
 * the units [u0, u1) it holds (each may be NULL). */
rl_sr *rl_shard_set_reader(const rl_shard_set *set, int k, const char **path, int *u0, int *u1);
/* Writes the unsharded run's stream of kind to out ("-": standard output),
 * complete or not at all (as below): the header (the shards' keys before
 * "shard"), then body's records. The shards must come from this realign
 * version. */
int rl_shard_set_write(rl_shard_set *set, const char *out, const char *kind,
		       int (*body)(void *ctx, rl_shard_set *set, rl_sw *w), void *ctx);

/* Sums the grad or direction shards of set into the stream the unsharded run
 * writes, at out ("-": standard output).
 * Nothing reaches out unless the sum is complete: the stream is written
 * beside out and renamed into place (for standard output: into an unlinked
 * temporary file, copied out once complete). Shards of different runs
 * (model, model state, prompts, direction, settings, realign version), a
 * shard missing or twice: RL_EDATA naming the file and the reason.
 * add (NULL: none): a previous grad stream added to the sum, tensor by tensor
 * after it, as rl-grad --add adds it (its sum_of added to the header's): the
 * bytes of the unsharded rl-grad --add run. Gradient shards only. */
int rl_shard_sum(rl_shard_set *set, const char *out, const char *add);

#endif
