/* stream_model.c — model identity in stream headers (see stream_model.h). Kept out
 * of stream.c so the stream code links without the model code. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "store/model.h"
#include "store/stream.h"
#include "store/stream_model.h"

void rl_pack_model_id(msgpack_packer *pk, const rl_model *m, const char *state)
{
	char sid[17];
	rl_model_shape_id(m, sid);
	msgpack_pack_map(pk, state ? 5 : 4);
	rl_pack_kv_str(pk, "shape_id", sid);
	rl_pack_kv_str(pk, "arch", m->cfg.architecture);
	rl_pack_kv_int(pk, "n_layers", m->cfg.n_layers);
	rl_pack_kv_str(pk, "path", m->dir);
	if (state)
		rl_pack_kv_str(pk, "state", state);
}

void rl_pack_kv_model(msgpack_packer *pk, const char *key, const rl_model *m)
{
	rl_pack_str(pk, key);
	rl_pack_model_id(pk, m, NULL);
}

/* Copies string key of map into buf for a message ("?" when absent), with
 * control bytes and quotes shown as '?'. */
static const char *field(const msgpack_object *map, const char *key, char *buf, size_t cap)
{
	const msgpack_object *o = rl_obj_get(map, key);
	snprintf(buf, cap, "?");
	if (o && o->type == MSGPACK_OBJECT_STR) {
		size_t n = o->via.str.size < cap - 1 ? o->via.str.size : cap - 1;
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)o->via.str.ptr[i];
			buf[i] = c < 0x20 || c == 0x7f || c == '\'' ? '?' : (char)c;
		}
		buf[n] = '\0';
	} else if (o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		snprintf(buf, cap, "%" PRIu64, o->via.u64);
	}
	return buf;
}

int rl_sr_check_model(const rl_sr *r, const char *key, const rl_model *m)
{
	const msgpack_object *h = rl_sr_header(r);
	const msgpack_object *id = rl_obj_get(h, key);
	if (!id || id->type != MSGPACK_OBJECT_MAP)
		return rl_error(RL_EDATA, "'%s' header: no model identity under '%s'",
				rl_sr_path(r), key);
	const char *s;
	size_t len;
	int rc = rl_obj_str(id, "shape_id", "header model identity", &s, &len);
	if (rc)
		return rl_error_prefix(rc, "'%s'", rl_sr_path(r));
	char mine[17];
	rl_model_shape_id(m, mine);
	if (len == 16 && !memcmp(s, mine, 16))
		return RL_OK;
	char path[256], arch[80], nl[24], sid[24];
	return rl_error(RL_EDATA,
			"'%s' was made for model '%s' (%s, %s layers, shape %s), not for '%s' "
			"(%s, %d layers, shape %s)",
			rl_sr_path(r), field(id, "path", path, sizeof path),
			field(id, "arch", arch, sizeof arch), field(id, "n_layers", nl, sizeof nl),
			field(id, "shape_id", sid, sizeof sid), m->dir, m->cfg.architecture,
			m->cfg.n_layers, mine);
}

int rl_header_check_model(const msgpack_object *h, const char *what, const rl_model *m,
			  const char *state, char *got_state, size_t cap)
{
	const msgpack_object *mo = rl_obj_get(h, "model");
	const char *s;
	size_t len;
	char sid[17];
	if (!mo || mo->type != MSGPACK_OBJECT_MAP)
		return rl_error(RL_EDATA, "%s: header lacks the 'model' map", what);
	int rc = rl_obj_str(mo, "shape_id", what, &s, &len);
	if (rc)
		return rc;
	rl_model_shape_id(m, sid);
	if (len != 16 || memcmp(s, sid, 16) != 0)
		return rl_error(RL_EDATA, "%s: made for model shape %.*s, but '%s' is %s", what,
				(int)(len > 64 ? 64 : len), s, m->dir, sid);
	if (got_state)
		got_state[0] = 0;
	const msgpack_object *so = rl_obj_get(mo, "state");
	if (so && so->type == MSGPACK_OBJECT_STR) {
		if (state && !rl_obj_streq(so, state))
			return rl_error(RL_EDATA,
					"%s: made for state %.*s of '%s', which is now in state %s "
					"(the model changed since; make it again)",
					what, (int)(so->via.str.size > 64 ? 64 : so->via.str.size),
					so->via.str.ptr, m->dir, state);
		if (got_state && (rc = rl_obj_strcpy(so, got_state, cap)))
			return rc;
	}
	return RL_OK;
}
