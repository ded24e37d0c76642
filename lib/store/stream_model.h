/* stream_model.h — model identity in stream headers (rl-stream(5)).
 *
 * Every header carries the identity of the model(s) it was made from, as a map
 * {"shape_id": rl_model_shape_id(), "arch": config's architecture, "n_layers",
 * "path": the directory as given}, under "model" (and e.g. "target" for a
 * second model). shape_id is equal for a model and its fine-tunes. Kept out
 * of stream.h so the stream code links without the model code.
 */
#ifndef RL_STREAM_MODEL_H
#define RL_STREAM_MODEL_H

#include <msgpack.h>

#include "store/model.h"
#include "store/stream.h"

/* Packs the map {"shape_id","arch","n_layers","path","state"} describing m
 * (state may be NULL: omitted). */
void rl_pack_model_id(msgpack_packer *pk, const rl_model *m, const char *state);
/* Packs key then m's identity map (one header pair). */
void rl_pack_kv_model(msgpack_packer *pk, const char *key, const rl_model *m);
/* Checks that the header's identity under key names a model of m's shape_id;
 * RL_EDATA naming both models otherwise (or when the key is absent/malformed). */
int rl_sr_check_model(const rl_sr *r, const char *key, const rl_model *m);
/* Checks the "model" map of stream header h (what names the stream in
 * messages): m's shape_id, and when the map has a "state" and state is not
 * NULL, that state. got_state (cap bytes, or NULL) receives the map's state,
 * "" when it has none. RL_EDATA on a mismatch. */
int rl_header_check_model(const msgpack_object *h, const char *what, const rl_model *m,
			  const char *state, char *got_state, size_t cap);

#endif
