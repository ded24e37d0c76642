/* test_stream.c — record streams: round trips of every value type and of
 * tensors of every dtype across chunk boundaries; every truncation and every
 * single-byte change of small streams detected; hostile lengths refused before
 * reading; wrong magic/version/kind, bad nesting, trailing data, checksum and
 * count mismatches rejected with their messages; EPIPE and ENOSPC reported;
 * the committed fixtures: c-sample.rls (this writer, byte for byte; decoded
 * independently by tests/gen/gen_stream.py with Python's msgpack and xxhash)
 * and py-sample.rls (written by Python: an independent encoder).
 *
 *   test_stream                      run the tests
 *   test_stream --write-fixtures DIR write DIR/c-sample.rls (make fixtures)
 */
#define XXH_STATIC_LINKING_ONLY
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "check.h"
#include "core/dtype.h"
#include "core/error.h"
#include "store/model.h"
#include "store/stream.h"
#include "store/stream_model.h"

/* ---- helpers ---- */

static uint8_t *slurp_fd(int fd, size_t *n)
{
	size_t cap = 1 << 16, len = 0;
	uint8_t *b = malloc(cap);
	REQUIRE(b);
	for (;;) {
		if (len == cap) {
			cap *= 2;
			b = realloc(b, cap);
			REQUIRE(b);
		}
		ssize_t k = read(fd, b + len, cap - len);
		REQUIRE(k >= 0);
		if (k == 0)
			break;
		len += (size_t)k;
	}
	*n = len;
	return b;
}

static uint8_t *slurp(const char *path, size_t *n)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
		exit(1);
	}
	uint8_t *b = slurp_fd(fd, n);
	close(fd);
	return b;
}

typedef void (*writer_fn)(rl_sw *w);

/* Runs fn on a writer over a temporary file; returns the stream's bytes. */
static uint8_t *write_mem(writer_fn fn, const char *kind, size_t *n)
{
	FILE *f = tmpfile();
	REQUIRE(f);
	rl_sw *w;
	REQUIRE(rl_sw_open_fd(&w, fileno(f), "mem", kind, "test_stream") == 0);
	fn(w);
	REQUIRE(rl_sw_close(w) == 0);
	REQUIRE(lseek(fileno(f), 0, SEEK_SET) == 0);
	uint8_t *b = slurp_fd(fileno(f), n);
	fclose(f);
	return b;
}

/* Reads a whole stream from memory: 0 or the error code. */
static int read_all(const void *buf, size_t n, const char *want, uint64_t *nrec)
{
	rl_sr *r;
	int rc = rl_sr_open_mem(&r, buf, n, "x.rls", want);
	if (rc)
		return rc;
	const msgpack_object *rec;
	while ((rc = rl_sr_next(r, &rec)) == 0 && rec)
		;
	if (nrec)
		*nrec = rl_sr_count(r);
	rl_sr_close(r);
	return rc;
}

/* The stream must fail with code and a message containing needle. */
#define EXPECT_FAIL(buf, n, want, code, needle)                                                    \
	do {                                                                                       \
		int rc_ = read_all(buf, n, want, NULL);                                            \
		CHECKF(rc_ == (code) && strstr(rl_errmsg(), needle), "rc %d, message '%s'", rc_,   \
		       rl_errmsg());                                                               \
	} while (0)

/* Hand-made streams (an encoder independent of rl_sw). */
typedef struct craft {
	msgpack_sbuffer sb;
	msgpack_packer pk;
	uint64_t nrec;
} craft;

static void craft_init(craft *c)
{
	msgpack_sbuffer_init(&c->sb);
	msgpack_packer_init(&c->pk, &c->sb, msgpack_sbuffer_write);
	c->nrec = 0;
}

static void craft_header(craft *c, const char *magic, uint64_t version, const char *kind)
{
	msgpack_pack_map(&c->pk, 6);
	rl_pack_kv_str(&c->pk, "t", "header");
	rl_pack_kv_str(&c->pk, "magic", magic);
	rl_pack_kv_uint(&c->pk, "version", version);
	rl_pack_kv_str(&c->pk, "kind", kind);
	rl_pack_kv_str(&c->pk, "tool", "craft");
	rl_pack_kv_str(&c->pk, "tool_version", "0");
}

static void craft_end_with(craft *c, uint64_t count, uint64_t sum)
{
	msgpack_pack_map(&c->pk, 3);
	rl_pack_kv_str(&c->pk, "t", "end");
	rl_pack_kv_uint(&c->pk, "records", count);
	rl_pack_kv_uint(&c->pk, "checksum", sum);
}

static void craft_end(craft *c)
{
	craft_end_with(c, c->nrec, XXH64(c->sb.data, c->sb.size, 0));
}

static void craft_free(craft *c)
{
	msgpack_sbuffer_destroy(&c->sb);
}

/* ---- the sample stream: every value type, every dtype, chunk boundaries ---- */

static const float f32vals[10] = {0.0f,		 -0.0f, 1.0f / 3.0f, -2.5f, 1e-40f /* subnormal */,
				  3.4028235e38f, 0.1f,	0,	     0,	    7.0f};

static void sample_values(float *v)
{
	memcpy(v, f32vals, sizeof f32vals);
	v[7] = NAN;
	v[8] = -INFINITY;
}

static void pack_params(msgpack_packer *pk)
{
	static const uint8_t bin[20] = {0,  1,	2,  0xfe, 0xff, 'a', 'b', 0x80, 9,  10,
					11, 12, 13, 14,	  15,	16,  17,  18,	19, 20};
	const char *utf8 = "h\xc3\xa9llo \xe2\x98\x83 \"q\" \\ \n\t\x01\x1f\x7f";
	const char *bad = "\xff\xfe a \xe2\x82 b \xed\xa0\x80 c \xf0\x9f\x98\x80 \xc0\xaf";
	rl_pack_str(pk, "params");
	msgpack_pack_map(pk, 27);
	rl_pack_str(pk, "nil");
	msgpack_pack_nil(pk);
	rl_pack_kv_bool(pk, "true", 1);
	rl_pack_kv_bool(pk, "false", 0);
	rl_pack_kv_uint(pk, "u0", 0);
	rl_pack_kv_uint(pk, "u127", 127);
	rl_pack_kv_uint(pk, "u128", 128);
	rl_pack_kv_uint(pk, "u65535", 65535);
	rl_pack_kv_uint(pk, "u2^32", 4294967296ull);
	rl_pack_kv_uint(pk, "umax", UINT64_MAX);
	rl_pack_kv_int(pk, "i-1", -1);
	rl_pack_kv_int(pk, "i-32", -32);
	rl_pack_kv_int(pk, "i-33", -33);
	rl_pack_kv_int(pk, "imin", INT64_MIN);
	rl_pack_str(pk, "f32");
	msgpack_pack_float(pk, 0.1f);
	rl_pack_kv_f64(pk, "f64", 0.1);
	rl_pack_kv_f64(pk, "big", 1e300);
	rl_pack_kv_f64(pk, "negzero", -0.0);
	rl_pack_kv_f64(pk, "nan", NAN);
	rl_pack_kv_f64(pk, "inf", INFINITY);
	rl_pack_kv_f64(pk, "-inf", -INFINITY);
	rl_pack_kv_str(pk, "empty", "");
	rl_pack_kv_str(pk, "utf8", utf8);
	rl_pack_kv_str(pk, "bad_utf8", bad);
	rl_pack_kv_bin(pk, "bin", bin, sizeof bin);
	rl_pack_str(pk, "empty_array");
	msgpack_pack_array(pk, 0);
	rl_pack_str(pk, "nested");
	msgpack_pack_array(pk, 2);
	msgpack_pack_uint8(pk, 1);
	msgpack_pack_array(pk, 2);
	msgpack_pack_uint8(pk, 2);
	msgpack_pack_map(pk, 1);
	rl_pack_kv_str(pk, "k", "v");
	rl_pack_str(pk, "empty_map");
	msgpack_pack_map(pk, 0);
}

static void write_sample(rl_sw *w)
{
	msgpack_packer *pk = rl_sw_packer(w);
	rl_sw_set_chunk_bytes(w, 12); /* 3 F32 elements per chunk */
	REQUIRE(rl_sw_header_begin(w, 3) == 0);
	rl_pack_str(pk, "model");
	msgpack_pack_map(pk, 4);
	rl_pack_kv_str(pk, "shape_id", "0123456789abcdef");
	rl_pack_kv_str(pk, "arch", "LlamaForCausalLM");
	rl_pack_kv_int(pk, "n_layers", 2);
	rl_pack_kv_str(pk, "path", "models/toy");
	rl_pack_kv_int(pk, "layer_end", 1);
	pack_params(pk);

	rl_sw_record_begin(w, "batch", 4);
	rl_pack_kv_uint(pk, "index", 0);
	rl_pack_kv_uint(pk, "n", 8);
	rl_pack_kv_f64(pk, "loss", -0.5);
	rl_pack_kv_f64(pk, "cos", 0.5);
	rl_sw_record_begin(w, "batch", 4);
	rl_pack_kv_uint(pk, "index", 1);
	rl_pack_kv_uint(pk, "n", 3);
	rl_pack_kv_f64(pk, "loss", NAN);
	rl_pack_kv_f64(pk, "cos", -1.0 / 3.0);

	float f[10];
	sample_values(f);
	int64_t s25[2] = {2, 5};
	REQUIRE(rl_sw_tensor(w, "model.layers.0.mlp.up_proj.weight", RL_DT_F32, 2, s25, f, 10) ==
		0);
	uint16_t bf[7], h[3];
	for (int i = 0; i < 7; i++)
		bf[i] = rl_f32_to_bf16((float)(i - 3) * 0.375f);
	bf[6] = 0x7fc0; /* NaN */
	for (int i = 0; i < 3; i++)
		h[i] = rl_f32_to_f16((float)i * 1000.5f);
	int64_t s7 = 7, s3 = 3, s2 = 2, s4 = 4, s5 = 5, s03[2] = {0, 3};
	REQUIRE(rl_sw_tensor(w, "bf16", RL_DT_BF16, 1, &s7, bf, 7) == 0);
	REQUIRE(rl_sw_tensor(w, "f16", RL_DT_F16, 1, &s3, h, 3) == 0);
	double d[2] = {1.0 / 3.0, -1e-300};
	REQUIRE(rl_sw_tensor(w, "f64", RL_DT_F64, 1, &s2, d, 2) == 0);
	int32_t i32[4] = {-2147483647 - 1, -1, 0, 2147483647};
	REQUIRE(rl_sw_tensor(w, "i32", RL_DT_I32, 1, &s4, i32, 4) == 0);
	int64_t i64[2] = {INT64_MIN, INT64_MAX};
	REQUIRE(rl_sw_tensor(w, "i64", RL_DT_I64, 1, &s2, i64, 2) == 0);
	uint64_t u64[2] = {0, UINT64_MAX};
	REQUIRE(rl_sw_tensor(w, "u64", RL_DT_U64, 1, &s2, u64, 2) == 0);
	uint8_t u8[5] = {0, 1, 127, 128, 255};
	REQUIRE(rl_sw_tensor(w, "u8", RL_DT_U8, 1, &s5, u8, 5) == 0);
	int8_t i8[3] = {-128, 0, 127};
	REQUIRE(rl_sw_tensor(w, "i8", RL_DT_I8, 1, &s3, i8, 3) == 0);
	uint16_t u16[2] = {0, 65535};
	REQUIRE(rl_sw_tensor(w, "u16", RL_DT_U16, 1, &s2, u16, 2) == 0);
	int16_t i16[2] = {-32768, 32767};
	REQUIRE(rl_sw_tensor(w, "i16", RL_DT_I16, 1, &s2, i16, 2) == 0);
	uint32_t u32[2] = {0, 4294967295u};
	REQUIRE(rl_sw_tensor(w, "u32", RL_DT_U32, 1, &s2, u32, 2) == 0);
	uint8_t b[3] = {1, 0, 1};
	REQUIRE(rl_sw_tensor(w, "bool", RL_DT_BOOL, 1, &s3, b, 3) == 0);
	uint8_t f8[4] = {0x00, 0x38, 0xb8, 0x7f};
	REQUIRE(rl_sw_tensor(w, "f8", RL_DT_F8_E4M3, 1, &s4, f8, 4) == 0);
	float scalar = 42.0f;
	REQUIRE(rl_sw_tensor(w, "scalar", RL_DT_F32, 0, NULL, &scalar, 1) == 0);
	REQUIRE(rl_sw_tensor(w, "empty", RL_DT_F32, 2, s03, NULL, 0) == 0);
	rl_sw_record_begin(w, "note", 1);
	rl_pack_kv_str(pk, "text", "done");
}

/* Chunks per tensor in the sample at 12 bytes a chunk. */
#define SAMPLE_RECORDS 27

/* ---- tests ---- */

static void test_values(const uint8_t *s, size_t n)
{
	rl_sr *r;
	REQUIRE(rl_sr_open_mem(&r, s, n, "sample.rls", "direction") == 0);
	CHECK_STR(rl_sr_kind(r), "direction");
	const msgpack_object *h = rl_sr_header(r);
	const char *str;
	size_t len;
	int64_t i;
	uint64_t u;
	double d;
	int bv;
	CHECK(rl_obj_str(h, "tool", "h", &str, &len) == 0 && len == 11 &&
	      !memcmp(str, "test_stream", 11));
	CHECK(rl_obj_str(h, "tool_version", "h", &str, &len) == 0 && len == strlen(RL_VERSION));
	CHECK(rl_obj_int(h, "layer_end", "h", &i) == 0 && i == 1);
	const msgpack_object *m = rl_obj_get(h, "model");
	CHECK(rl_obj_str(m, "shape_id", "h", &str, &len) == 0 && len == 16);
	const msgpack_object *p = rl_obj_get(h, "params");
	REQUIRE(p && p->type == MSGPACK_OBJECT_MAP && p->via.map.size == 27);
	CHECK(rl_obj_get(p, "nil")->type == MSGPACK_OBJECT_NIL);
	CHECK(rl_obj_bool(p, "true", "p", &bv) == 0 && bv == 1);
	CHECK(rl_obj_bool(p, "false", "p", &bv) == 0 && bv == 0);
	CHECK(rl_obj_uint(p, "u0", "p", &u) == 0 && u == 0);
	CHECK(rl_obj_uint(p, "u127", "p", &u) == 0 && u == 127);
	CHECK(rl_obj_uint(p, "u128", "p", &u) == 0 && u == 128);
	CHECK(rl_obj_uint(p, "u65535", "p", &u) == 0 && u == 65535);
	CHECK(rl_obj_uint(p, "u2^32", "p", &u) == 0 && u == 4294967296ull);
	CHECK(rl_obj_uint(p, "umax", "p", &u) == 0 && u == UINT64_MAX);
	CHECK(rl_obj_int(p, "umax", "p", &i) == RL_EDATA && strstr(rl_errmsg(), "out of range"));
	CHECK(rl_obj_int(p, "i-1", "p", &i) == 0 && i == -1);
	CHECK(rl_obj_int(p, "i-32", "p", &i) == 0 && i == -32);
	CHECK(rl_obj_int(p, "i-33", "p", &i) == 0 && i == -33);
	CHECK(rl_obj_int(p, "imin", "p", &i) == 0 && i == INT64_MIN);
	CHECK(rl_obj_uint(p, "imin", "p", &u) == RL_EDATA);
	CHECK_STR(rl_errmsg(), "p: 'imin' is an integer, not an unsigned integer");
	CHECK(rl_obj_f64(p, "f32", "p", &d) == 0 && d == (double)0.1f);
	CHECK(rl_obj_f64(p, "f64", "p", &d) == 0 && d == 0.1);
	CHECK(rl_obj_f64(p, "big", "p", &d) == 0 && d == 1e300);
	CHECK(rl_obj_f64(p, "negzero", "p", &d) == 0 && d == 0 && signbit(d));
	CHECK(rl_obj_f64(p, "nan", "p", &d) == 0 && isnan(d));
	CHECK(rl_obj_f64(p, "inf", "p", &d) == 0 && isinf(d) && d > 0);
	CHECK(rl_obj_f64(p, "-inf", "p", &d) == 0 && isinf(d) && d < 0);
	CHECK(rl_obj_f64(p, "i-33", "p", &d) == 0 && d == -33);
	CHECK(rl_obj_f64(p, "utf8", "p", &d) == RL_EDATA);
	CHECK_STR(rl_errmsg(), "p: 'utf8' is a string, not a number");
	CHECK(rl_obj_str(p, "empty", "p", &str, &len) == 0 && len == 0);
	CHECK(rl_obj_str(p, "bad_utf8", "p", &str, &len) == 0 && len == 23 && str[0] == '\xff');
	const void *bin;
	CHECK(rl_obj_bin(p, "bin", "p", &bin, &len) == 0 && len == 20 &&
	      ((const uint8_t *)bin)[4] == 0xff);
	CHECK(rl_obj_str(p, "missing", "p", &str, &len) == RL_EDATA);
	CHECK_STR(rl_errmsg(), "p: key 'missing' is missing");
	const msgpack_object *nest = rl_obj_get(p, "nested");
	CHECK(nest && nest->type == MSGPACK_OBJECT_ARRAY && nest->via.array.size == 2 &&
	      nest->via.array.ptr[1].via.array.ptr[1].type == MSGPACK_OBJECT_MAP);
	char buf[8];
	CHECK(rl_obj_strcpy(rl_obj_get(p, "empty"), buf, sizeof buf) == 0 && buf[0] == 0);
	CHECK(rl_obj_strcpy(rl_obj_get(p, "utf8"), buf, sizeof buf) == RL_EDATA);

	/* records and tensors, reassembled from their chunks */
	const msgpack_object *rec;
	CHECK(rl_sr_next(r, &rec) == 0 && rec && rl_rec_is(rec, "batch"));
	CHECK_STR(rl_sr_where(r), "'sample.rls' record 1 (batch)");
	CHECK(rl_obj_f64(rec, "loss", rl_sr_where(r), &d) == 0 && d == -0.5);
	CHECK(rl_sr_chunk(r) == NULL);
	CHECK(rl_sr_next(r, &rec) == 0 && rec && rl_rec_is(rec, "batch"));
	CHECK(rl_obj_f64(rec, "loss", "b", &d) == 0 && isnan(d));
	float f[10], want[10];
	sample_values(want);
	uint64_t got = 0;
	int nchunks = 0;
	while (got < 10) {
		REQUIRE(rl_sr_next(r, &rec) == 0 && rec);
		const rl_chunk *c = rl_sr_chunk(r);
		REQUIRE(c);
		CHECK_STR(c->name, "model.layers.0.mlp.up_proj.weight");
		CHECK(c->dtype == RL_DT_F32 && c->ndim == 2 && c->shape[0] == 2 &&
		      c->shape[1] == 5 && c->numel == 10 && c->offset == got && c->count <= 3);
		memcpy(f + c->offset, c->data, c->count * 4);
		got += c->count;
		nchunks++;
	}
	CHECK_EQ_INT(nchunks, 4);
	CHECK(memcmp(f, want, sizeof f) == 0);
	/* the other dtypes: payload bytes as written */
	static const struct {
		const char *name;
		rl_dtype dt;
		uint64_t numel;
	} more[] = {{"bf16", RL_DT_BF16, 7},  {"f16", RL_DT_F16, 3},	{"f64", RL_DT_F64, 2},
		    {"i32", RL_DT_I32, 4},    {"i64", RL_DT_I64, 2},	{"u64", RL_DT_U64, 2},
		    {"u8", RL_DT_U8, 5},      {"i8", RL_DT_I8, 3},	{"u16", RL_DT_U16, 2},
		    {"i16", RL_DT_I16, 2},    {"u32", RL_DT_U32, 2},	{"bool", RL_DT_BOOL, 3},
		    {"f8", RL_DT_F8_E4M3, 4}, {"scalar", RL_DT_F32, 1}, {"empty", RL_DT_F32, 0}};
	uint8_t acc[64];
	for (size_t t = 0; t < sizeof more / sizeof more[0]; t++) {
		size_t es = rl_dtype_size(more[t].dt);
		uint64_t at = 0;
		do {
			REQUIRE(rl_sr_next(r, &rec) == 0 && rec);
			const rl_chunk *c = rl_sr_chunk(r);
			REQUIRE(c);
			CHECK_STR(c->name, more[t].name);
			CHECK(c->dtype == more[t].dt && c->numel == more[t].numel &&
			      c->offset == at && c->count * es <= 12);
			memcpy(acc + at * es, c->data, c->count * es);
			at += c->count;
		} while (at < more[t].numel);
		if (!strcmp(more[t].name, "bf16")) {
			for (int k = 0; k < 6; k++)
				CHECK(rl_bf16_to_f32(
					      (uint16_t)(acc[2 * k] | acc[2 * k + 1] << 8)) ==
				      (float)(k - 3) * 0.375f);
		} else if (!strcmp(more[t].name, "i64")) {
			int64_t v[2];
			memcpy(v, acc, 16);
			CHECK(v[0] == INT64_MIN && v[1] == INT64_MAX);
		} else if (!strcmp(more[t].name, "scalar")) {
			CHECK(rl_sr_chunk(r)->ndim == 0);
			float v;
			memcpy(&v, acc, 4);
			CHECK(v == 42.0f);
		} else if (!strcmp(more[t].name, "empty")) {
			CHECK(rl_sr_chunk(r)->count == 0 && rl_sr_chunk(r)->shape[0] == 0);
		}
	}
	CHECK(rl_sr_next(r, &rec) == 0 && rec && rl_rec_is(rec, "note"));
	CHECK(rl_sr_end(r) == NULL);
	CHECK(rl_sr_next(r, &rec) == 0 && rec == NULL);
	CHECK_EQ_INT(rl_sr_count(r), SAMPLE_RECORDS);
	CHECK(rl_sr_end(r) && rl_rec_is(rl_sr_end(r), "end"));
	CHECK_EQ_INT(rl_sr_bytes(r), n);
	CHECK(rl_sr_next(r, &rec) == 0 && rec == NULL); /* idempotent at the end */
	rl_sr_close(r);
}

/* Every prefix is reported as truncated (the empty one as empty); never success. */
static void test_truncation(const uint8_t *s, size_t n)
{
	int bad = 0;
	for (size_t k = 0; k < n; k++) {
		int rc = read_all(s, k, NULL, NULL);
		const char *want = k == 0 ? "(it is empty)" : "truncated stream";
		if (rc != RL_EDATA || !strstr(rl_errmsg(), want)) {
			if (bad++ < 5)
				fprintf(stderr, "prefix of %zu bytes: rc %d: %s\n", k, rc,
					rl_errmsg());
		}
	}
	CHECKF(bad == 0, "%d of %zu prefixes not reported as truncated", bad, n);
	CHECK(read_all(s, n, NULL, NULL) == 0);
}

/* Every change of one byte (all 255 other values when exhaustive, else three)
 * is an error, never a silent success. */
static void test_flips(const uint8_t *s, size_t n, int exhaustive)
{
	uint8_t *c = malloc(n);
	REQUIRE(c);
	memcpy(c, s, n);
	int silent = 0;
	long tried = 0;
	static const uint8_t masks[] = {0x01, 0x80, 0xff};
	for (size_t i = 0; i < n; i++) {
		int nv = exhaustive ? 255 : 3;
		for (int v = 0; v < nv; v++) {
			c[i] = (uint8_t)(s[i] ^ (exhaustive ? v + 1 : masks[v]));
			int rc = read_all(c, n, NULL, NULL);
			tried++;
			if (rc != RL_EDATA && silent++ < 5)
				fprintf(stderr, "byte %zu set to 0x%02x: rc %d\n", i, c[i], rc);
		}
		c[i] = s[i];
	}
	CHECKF(silent == 0, "%d of %ld one-byte changes not detected", silent, tried);
	free(c);
}

static void write_small(rl_sw *w)
{
	rl_sw_set_chunk_bytes(w, 8);
	rl_sw_header_begin(w, 0);
	rl_sw_record_begin(w, "batch", 1);
	rl_pack_kv_f64(rl_sw_packer(w), "loss", -0.25);
	float v[3] = {1, 2, 3};
	int64_t s3 = 3;
	rl_sw_tensor(w, "w", RL_DT_F32, 1, &s3, v, 3);
}

static void test_envelope(void)
{
	craft c;
	/* wrong magic, version, kind */
	craft_init(&c);
	craft_header(&c, "realigm", 1, "grad");
	craft_end(&c);
	EXPECT_FAIL(c.sb.data, c.sb.size, NULL, RL_EDATA,
		    "'x.rls' is not a realign stream (its header lacks the magic)");
	craft_free(&c);
	craft_init(&c);
	craft_header(&c, "realign", 2, "grad");
	craft_end(&c);
	EXPECT_FAIL(
		c.sb.data, c.sb.size, NULL, RL_EDATA,
		"'x.rls': stream format version 2 is not supported (this build reads version 1)");
	craft_free(&c);
	craft_init(&c);
	craft_header(&c, "realign", 1, "select");
	craft_end(&c);
	EXPECT_FAIL(c.sb.data, c.sb.size, "grad", RL_EDATA,
		    "'x.rls' is a select stream, expected grad");
	CHECK(read_all(c.sb.data, c.sb.size, "select", NULL) == 0);
	CHECK(read_all(c.sb.data, c.sb.size, NULL, NULL) == 0);
	craft_free(&c);

	/* what a non-stream looks like */
	static const struct {
		const char *bytes;
		size_t n;
		const char *msg;
	} not [] = {
		{"{\"a\": 1}\n", 9, "(it looks like JSON)"},
		{"  [1,2]", 7, "(it looks like JSON)"},
		{"\x10\0\0\0\0\0\0\0{\"__metadata__\"", 23, "(it looks like a safetensors file)"},
		{"version https://git-lfs.github.com/spec/v1\n", 43, "(it is a Git LFS pointer"},
		{"\x1f\x8b\x08\0", 4, "(it is gzip-compressed)"},
		{"PK\x03\x04", 4, "(it is a zip archive"},
		{"hello world\n", 12, "(it looks like text)"},
		{"\x81\xa1t\xa5hello", 9, "(it is a msgpack map without a realign header)"},
		{"\x01\x02\x03", 3, "(it starts with bytes 01 02 03)"},
		{"", 0, "(it is empty)"},
	};
	for (size_t i = 0; i < sizeof not / sizeof not [0]; i++)
		EXPECT_FAIL(not [i].bytes, not [i].n, NULL, RL_EDATA, not [i].msg);

	/* header not first: a data record where the header should be */
	craft_init(&c);
	msgpack_pack_map(&c.pk, 1);
	rl_pack_kv_str(&c.pk, "t", "batch");
	EXPECT_FAIL(c.sb.data, c.sb.size, NULL, RL_EDATA,
		    "'x.rls' is not a realign stream (it is a msgpack map without");
	craft_free(&c);

	/* a header with its keys out of order */
	craft_init(&c);
	msgpack_pack_map(&c.pk, 6);
	rl_pack_kv_str(&c.pk, "t", "header");
	rl_pack_kv_str(&c.pk, "magic", "realign");
	rl_pack_kv_str(&c.pk, "kind", "grad");
	rl_pack_kv_uint(&c.pk, "version", 1);
	rl_pack_kv_str(&c.pk, "tool", "x");
	rl_pack_kv_str(&c.pk, "tool_version", "0");
	craft_end(&c);
	EXPECT_FAIL(c.sb.data, c.sb.size, NULL, RL_EDATA, "'x.rls' header: key 3 is not 'version'");
	craft_free(&c);

	/* bad nesting and records */
	struct {
		int what;
		const char *msg;
	} cases[] = {
		{0, "'x.rls' record 1 is an array, not a map"},
		{1, "'x.rls' record 1 does not start with a \"t\" key"},
		{2, "'x.rls' record 1: a map key is an integer, not a string"},
		{3, "'x.rls' record 1: duplicate key 'a'"},
		{4, "'x.rls' record 2 is a second header"},
		{5, "'x.rls': trailing data after the end record at byte"},
		{6, "checksum mismatch (the end record says 0000000000000001"},
		{7, "'x.rls': corrupt stream: the end record counts 3 records, the stream has 1"},
		{8, "'x.rls' record 1: \"t\" is an integer, not a string"},
		{9, "'x.rls' end record: key 'checksum' is missing"},
		{10, "'x.rls': corrupt stream: record 1: msgpack ext type (byte 0xd4)"},
		{11, "'x.rls': corrupt stream: record 1: invalid msgpack byte 0xc1 at byte"},
		{12, "'x.rls' record 1: duplicate key 'k19'"},
		{13, "'x.rls' record 2 does not start with a \"t\" key"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		craft_init(&c);
		craft_header(&c, "realign", 1, "grad");
		msgpack_packer *pk = &c.pk;
		int w = cases[i].what;
		if (w == 0) {
			msgpack_pack_array(pk, 1);
			rl_pack_str(pk, "t");
		} else if (w == 1) {
			msgpack_pack_map(pk, 1);
			rl_pack_kv_str(pk, "a", "b");
		} else if (w == 2) {
			msgpack_pack_map(pk, 2);
			rl_pack_kv_str(pk, "t", "x");
			msgpack_pack_uint8(pk, 1);
			msgpack_pack_uint8(pk, 2);
		} else if (w == 3) {
			msgpack_pack_map(pk, 3);
			rl_pack_kv_str(pk, "t", "x");
			rl_pack_kv_int(pk, "a", 1);
			rl_pack_kv_int(pk, "a", 2);
		} else if (w == 4) {
			msgpack_pack_map(pk, 1);
			rl_pack_kv_str(pk, "t", "x");
			craft_header(&c, "realign", 1, "grad");
		} else if (w == 8) {
			msgpack_pack_map(pk, 1);
			rl_pack_kv_int(pk, "t", 5);
		} else if (w == 10) {
			msgpack_pack_map(pk, 2);
			rl_pack_kv_str(pk, "t", "x");
			rl_pack_str(pk, "e");
			msgpack_pack_ext_with_body(pk, "abcd", 1, 1);
		} else if (w == 11) {
			msgpack_pack_map(pk, 2);
			rl_pack_kv_str(pk, "t", "x");
			rl_pack_str(pk, "e");
			msgpack_sbuffer_write(&c.sb, "\xc1", 1);
		} else if (w == 12) {
			msgpack_pack_map(pk, 21); /* over 16 keys: the sorted check */
			rl_pack_kv_str(pk, "t", "x");
			for (int k = 0; k < 20; k++) {
				char key[8];
				snprintf(key, sizeof key, "k%d", k == 7 ? 19 : k);
				rl_pack_kv_int(pk, key, k);
			}
		} else {
			msgpack_pack_map(pk, 1);
			rl_pack_kv_str(pk, "t", "x");
		}
		c.nrec = 1;
		if (w == 6)
			craft_end_with(&c, 1, 1);
		else if (w == 7)
			craft_end_with(&c, 3, XXH64(c.sb.data, c.sb.size, 0));
		else if (w == 9) {
			msgpack_pack_map(pk, 2);
			rl_pack_kv_str(pk, "t", "end");
			rl_pack_kv_uint(pk, "records", 1);
		} else if (w == 13) {
			msgpack_pack_map(pk, 3);
			rl_pack_kv_uint(pk, "records", 1);
			rl_pack_kv_str(pk, "t", "end");
			rl_pack_kv_uint(pk, "checksum", XXH64(c.sb.data, c.sb.size, 0));
		} else
			craft_end(&c);
		if (w == 5)
			msgpack_pack_nil(pk);
		EXPECT_FAIL(c.sb.data, c.sb.size, NULL, RL_EDATA, cases[i].msg);
		craft_free(&c);
	}

	/* a big end record (its bytes hashed as they arrive, like any big
	 * record's) is refused, read from a descriptor */
	craft_init(&c);
	craft_header(&c, "realign", 1, "grad");
	uint64_t hsum = XXH64(c.sb.data, c.sb.size, 0);
	msgpack_pack_map(&c.pk, 4);
	rl_pack_kv_str(&c.pk, "t", "end");
	rl_pack_kv_uint(&c.pk, "records", 0);
	rl_pack_kv_uint(&c.pk, "checksum", hsum);
	static uint8_t pad[200000];
	rl_pack_kv_bin(&c.pk, "pad", pad, sizeof pad);
	FILE *tf = tmpfile();
	REQUIRE(tf && fwrite(c.sb.data, 1, c.sb.size, tf) == c.sb.size && fflush(tf) == 0);
	REQUIRE(lseek(fileno(tf), 0, SEEK_SET) == 0);
	rl_sr *r;
	REQUIRE(rl_sr_open_fd(&r, fileno(tf), "big-end", NULL) == 0);
	const msgpack_object *rec;
	CHECK(rl_sr_next(r, &rec) == RL_EDATA);
	CHECKF(strstr(rl_errmsg(), "'big-end': corrupt stream:"), "%s", rl_errmsg());
	rl_sr_close(r);
	fclose(tf);
	EXPECT_FAIL(c.sb.data, c.sb.size, NULL, RL_EDATA, "not in its canonical encoding");
	craft_free(&c);

	/* a non-canonical end record (same values, other encoding) is refused */
	craft_init(&c);
	craft_header(&c, "realign", 1, "grad");
	uint64_t sum = XXH64(c.sb.data, c.sb.size, 0);
	msgpack_pack_map(&c.pk, 3);
	rl_pack_kv_str(&c.pk, "t", "end");
	rl_pack_str(&c.pk, "records");
	msgpack_pack_fix_uint64(&c.pk, 0);
	rl_pack_kv_uint(&c.pk, "checksum", sum);
	EXPECT_FAIL(c.sb.data, c.sb.size, NULL, RL_EDATA,
		    "'x.rls': corrupt stream: the end record is not in its canonical encoding");
	craft_free(&c);
}

static void pack_chunk(craft *c, const char *name, const char *dtype, int ndim,
		       const uint64_t *shape, uint64_t offset, uint64_t count, size_t nbytes)
{
	static const uint8_t zeros[64];
	msgpack_pack_map(&c->pk, 7);
	rl_pack_kv_str(&c->pk, "t", "tensor");
	rl_pack_kv_str(&c->pk, "name", name);
	rl_pack_kv_str(&c->pk, "dtype", dtype);
	rl_pack_str(&c->pk, "shape");
	msgpack_pack_array(&c->pk, (size_t)ndim);
	for (int i = 0; i < ndim; i++)
		msgpack_pack_uint64(&c->pk, shape[i]);
	rl_pack_kv_uint(&c->pk, "offset", offset);
	rl_pack_kv_uint(&c->pk, "count", count);
	rl_pack_kv_bin(&c->pk, "data", zeros, nbytes);
	c->nrec++;
}

static void test_chunks(void)
{
	uint64_t s4[1] = {4}, s22[2] = {2, 2}, big[3] = {1ull << 32, 1ull << 32, 1ull << 2};
	uint64_t neg[1] = {1ull << 63};
	static const struct {
		int what;
		const char *msg;
	} cases[] = {
		{0, "'x.rls' record 1 (tensor): tensor 'w': unknown dtype 'F33'"},
		{1, "'x.rls' record 1 (tensor): tensor 'w': shape [4294967296,4294967296,4] "
		    "overflows"},
		{2,
		 "'x.rls' record 1 (tensor): tensor 'w': elements [2, 2+3) go past its 4 elements"},
		{3,
		 "'x.rls' record 1 (tensor): tensor 'w': 12 payload bytes for 2 F32 elements (want "
		 "8)"},
		{4, "'x.rls' record 2 (tensor): tensor 'w' chunk at element 3, expected 2"},
		{5, "'x.rls' record 2 (tensor): tensor 'v' starts inside tensor 'w' (2 of 4 "
		    "elements)"},
		{6, "'x.rls' record 2 (batch): record inside tensor 'w' (2 of 4 elements)"},
		{7, "'x.rls': corrupt stream: it ends inside tensor 'w' (2 of 4 elements)"},
		{8, "'x.rls' record 1 (tensor): tensor 'w' starts at element 2, not 0"},
		{9, "'x.rls' record 1 (tensor): tensor 'w': empty chunk"},
		{10, "'x.rls' record 1 (tensor): tensor 'w': bad dimension 0 in 'shape'"},
		{11, "'x.rls' record 1 (tensor): key 'count' is missing"},
		{12, "'x.rls' record 1 (tensor): tensor 'w' has 9 dimensions (at most 8)"},
		/* names from the stream are escaped: messages stay one line (found by fuzzing) */
		{13, "'x.rls' record 1 (tensor): tensor 'a\\x0ab\\x1b': unknown dtype 'F33'"},
		{14, "'x.rls' record 2 (tensor): tensor 'a\\x0a' chunk at element 3, expected 2"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		craft c;
		craft_init(&c);
		craft_header(&c, "realign", 1, "grad");
		int w = cases[i].what;
		switch (w) {
		case 0:
			pack_chunk(&c, "w", "F33", 1, s4, 0, 4, 16);
			break;
		case 1:
			pack_chunk(&c, "w", "F32", 3, big, 0, 1, 4);
			break;
		case 2:
			pack_chunk(&c, "w", "F32", 1, s4, 2, 3, 12);
			break;
		case 3:
			pack_chunk(&c, "w", "F32", 2, s22, 0, 2, 12);
			break;
		case 4:
		case 5:
		case 6:
		case 7:
			pack_chunk(&c, "w", "F32", 1, s4, 0, 2, 8);
			if (w == 4)
				pack_chunk(&c, "w", "F32", 1, s4, 3, 1, 4);
			if (w == 5)
				pack_chunk(&c, "v", "F32", 1, s4, 0, 4, 16);
			if (w == 6) {
				msgpack_pack_map(&c.pk, 1);
				rl_pack_kv_str(&c.pk, "t", "batch");
				c.nrec++;
			}
			break;
		case 8:
			pack_chunk(&c, "w", "F32", 1, s4, 2, 2, 8);
			break;
		case 9:
			pack_chunk(&c, "w", "F32", 1, s4, 0, 0, 0);
			break;
		case 10:
			pack_chunk(&c, "w", "F32", 1, neg, 0, 1, 4);
			break;
		case 11:
			msgpack_pack_map(&c.pk, 6);
			rl_pack_kv_str(&c.pk, "t", "tensor");
			rl_pack_kv_str(&c.pk, "name", "w");
			rl_pack_kv_str(&c.pk, "dtype", "F32");
			rl_pack_str(&c.pk, "shape");
			msgpack_pack_array(&c.pk, 0);
			rl_pack_kv_uint(&c.pk, "offset", 0);
			rl_pack_kv_bin(&c.pk, "data", "abcd", 4);
			c.nrec++;
			break;
		case 13:
			pack_chunk(&c, "a\nb\x1b", "F33", 1, s4, 0, 4, 16);
			break;
		case 14:
			pack_chunk(&c, "a\n", "F32", 1, s4, 0, 2, 8);
			pack_chunk(&c, "a\n", "F32", 1, s4, 3, 1, 4);
			break;
		case 12: {
			uint64_t s9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
			pack_chunk(&c, "w", "F32", 9, s9, 0, 1, 4);
			break;
		}
		}
		craft_end(&c);
		EXPECT_FAIL(c.sb.data, c.sb.size, NULL, RL_EDATA, cases[i].msg);
		craft_free(&c);
	}
}

/* Declared lengths past the limits are refused from their header bytes alone:
 * the reader reads nothing more (the pipe's writer end stays open, so a reader
 * that waited for the declared bytes would hang; alarm() turns that into a
 * failure) and allocates nothing for them. */
static void test_hostile_lengths(void)
{
	static const struct {
		const char *bytes;
		size_t n;
		const char *msg;
	} cases[] = {
		{"\x82\xa1t\xa1x\xa1"
		 "d\xc6\xff\xff\xff\xff",
		 12, "record 1: a 4294967295-byte bin at byte"},
		{"\x82\xa1t\xa1x\xa1"
		 "d\xdb\x10\0\0\0",
		 12, "record 1: a 268435456-byte string at byte"},
		{"\x82\xa1t\xa1x\xa1"
		 "d\xdd\xff\xff\xff\xff",
		 12, "record 1: an array of 4294967295 elements at byte"},
		{"\x82\xa1t\xa1x\xa1"
		 "d\xdf\x7f\xff\xff\xff",
		 12, "record 1: a map of 2147483647 pairs at byte"},
		{"\x82\xa1t\xa1x\xa1"
		 "d\xc6\x04\x10\0\0",
		 12, "goes past the 68157440-byte record limit"},
	};
	signal(SIGALRM, SIG_DFL);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		craft c;
		craft_init(&c);
		craft_header(&c, "realign", 1, "grad");
		msgpack_sbuffer_write(&c.sb, cases[i].bytes, cases[i].n);
		EXPECT_FAIL(c.sb.data, c.sb.size, NULL, RL_EDATA, cases[i].msg);
		int fds[2];
		REQUIRE(pipe(fds) == 0);
		REQUIRE(write(fds[1], c.sb.data, c.sb.size) == (ssize_t)c.sb.size);
		rl_sr *r;
		alarm(10);
		REQUIRE(rl_sr_open_fd(&r, fds[0], "pipe", NULL) == 0);
		const msgpack_object *rec;
		int rc = rl_sr_next(r, &rec);
		alarm(0);
		CHECKF(rc == RL_EDATA && strstr(rl_errmsg(), cases[i].msg), "%s", rl_errmsg());
		rl_sr_close(r);
		close(fds[0]);
		close(fds[1]);
		craft_free(&c);
	}
	/* nesting depth and object count */
	craft c;
	craft_init(&c);
	craft_header(&c, "realign", 1, "grad");
	msgpack_pack_map(&c.pk, 2);
	rl_pack_kv_str(&c.pk, "t", "x");
	rl_pack_str(&c.pk, "deep");
	for (int d = 0; d < RL_MAX_DEPTH; d++)
		msgpack_pack_array(&c.pk, 1);
	msgpack_pack_nil(&c.pk);
	c.nrec = 1;
	craft_end(&c);
	EXPECT_FAIL(c.sb.data, c.sb.size, NULL, RL_EDATA, "maps and arrays nested deeper than 16");
	craft_free(&c);
	craft_init(&c);
	craft_header(&c, "realign", 1, "grad");
	msgpack_pack_map(&c.pk, 2);
	rl_pack_kv_str(&c.pk, "t", "x");
	rl_pack_str(&c.pk, "d");
	for (int d = 0; d < RL_MAX_DEPTH - 2; d++)
		msgpack_pack_array(&c.pk, 1);
	msgpack_pack_nil(&c.pk);
	c.nrec = 1;
	craft_end(&c);
	CHECK(read_all(c.sb.data, c.sb.size, NULL, NULL) == 0); /* depth 16 is allowed */
	craft_free(&c);
	craft_init(&c);
	craft_header(&c, "realign", 1, "grad");
	msgpack_pack_map(&c.pk, 2);
	rl_pack_kv_str(&c.pk, "t", "x");
	rl_pack_str(&c.pk, "many");
	msgpack_pack_array(&c.pk, RL_MAX_OBJECTS);
	for (unsigned k = 0; k < RL_MAX_OBJECTS; k++)
		msgpack_pack_nil(&c.pk);
	c.nrec = 1;
	craft_end(&c);
	EXPECT_FAIL(c.sb.data, c.sb.size, NULL, RL_EDATA,
		    "record holds more than 1048576 msgpack objects");
	craft_free(&c);
}

static void write_many_records(rl_sw *w)
{
	for (int i = 0; i < 3000; i++) {
		rl_sw_record_begin(w, "batch", 2);
		rl_pack_kv_int(rl_sw_packer(w), "index", i);
		char pad[200];
		memset(pad, 'a' + i % 26, sizeof pad);
		rl_pack_kv_bin(rl_sw_packer(w), "pad", pad, (size_t)(i % 200));
	}
}

/* Streams through a pipe from a child process: big chunks (payload written
 * straight from the caller's buffer, buffer growth on the reader) and many
 * small records (compaction across reads). */
static void test_pipe(void)
{
	const uint64_t n = (20u << 20) / 4 + 123; /* two chunks: 16 MiB + the rest */
	int fds[2];
	REQUIRE(pipe(fds) == 0);
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		float *v = malloc(n * 4);
		for (uint64_t i = 0; i < n; i++)
			v[i] = (float)i * 0.5f;
		rl_sw *w;
		int64_t shape = (int64_t)n;
		int rc = rl_sw_open_fd(&w, fds[1], "pipe", "grad", "test");
		rc = rc ? rc : rl_sw_header_begin(w, 0);
		rc = rc ? rc : rl_sw_tensor(w, "big", RL_DT_F32, 1, &shape, v, n);
		write_many_records(w);
		rc = rc ? rc : rl_sw_close(w);
		if (rc)
			fprintf(stderr, "child: %s\n", rl_errmsg());
		free(v);
		_exit(rc);
	}
	close(fds[1]);
	rl_sr *r;
	REQUIRE(rl_sr_open_fd(&r, fds[0], "pipe", "grad") == 0);
	const msgpack_object *rec;
	uint64_t got = 0, bad = 0, nrec = 0;
	int rc;
	while ((rc = rl_sr_next(r, &rec)) == 0 && rec) {
		const rl_chunk *c = rl_sr_chunk(r);
		if (c) {
			for (uint64_t i = 0; i < c->count; i++) {
				float f;
				memcpy(&f, (const uint8_t *)c->data + 4 * i, 4);
				bad += f != (float)(c->offset + i) * 0.5f;
			}
			got += c->count;
		} else {
			int64_t idx;
			const void *p;
			size_t len;
			CHECK(rl_obj_int(rec, "index", "r", &idx) == 0 && idx == (int64_t)nrec);
			CHECK(rl_obj_bin(rec, "pad", "r", &p, &len) == 0 && len == nrec % 200);
			CHECK(len == 0 || ((const char *)p)[len - 1] == (char)('a' + nrec % 26));
			nrec++;
		}
	}
	CHECKF(rc == 0, "%s", rl_errmsg());
	CHECK(got == n && bad == 0 && nrec == 3000);
	rl_sr_close(r);
	close(fds[0]);
	int st;
	REQUIRE(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* EPIPE and ENOSPC are errors naming the stream, at close for buffered
 * records and at once for a big payload; a failed writer leaves a stream that
 * reads as truncated. */
static void test_write_errors(void)
{
	signal(SIGPIPE, SIG_IGN);
	int fds[2];
	REQUIRE(pipe(fds) == 0);
	close(fds[0]);
	rl_sw *w;
	REQUIRE(rl_sw_open_fd(&w, fds[1], "<stdout>", "grad", "test") == 0);
	write_small(w);
	CHECK(rl_sw_error(w) == 0); /* still buffered */
	int rc = rl_sw_close(w);
	CHECK_EQ_INT(rc, RL_ESYS);
	CHECK_STR(rl_errmsg(), "'<stdout>': write error: Broken pipe");
	close(fds[1]);

	REQUIRE(rl_sw_open(&w, "/dev/full", "grad", "test") == 0);
	rl_sw_header_begin(w, 0);
	static float big[1 << 16];
	int64_t s = 1 << 16;
	rc = rl_sw_tensor(w, "w", RL_DT_F32, 1, &s, big, 1 << 16);
	CHECK_EQ_INT(rc, RL_ESYS);
	CHECK_STR(rl_errmsg(), "'/dev/full': write error: No space left on device");
	CHECK(rl_sw_error(w) == RL_ESYS);
	CHECK(rl_sw_record_begin(w, "batch", 0) == RL_ESYS); /* sticky */
	CHECK_EQ_INT(rl_sw_close(w), RL_ESYS);
	CHECK_STR(rl_errmsg(), "'/dev/full': write error: No space left on device");

	REQUIRE(rl_sw_open(&w, "/nonexistent/dir/x.rls", "grad", "test") == RL_ESYS);
	CHECK_STR(rl_errmsg(),
		  "'/nonexistent/dir/x.rls': cannot create: No such file or directory");

	/* abort: a truncated stream, never a complete-looking one */
	FILE *f = tmpfile();
	REQUIRE(rl_sw_open_fd(&w, fileno(f), "t", "grad", "test") == 0);
	write_small(w);
	rl_sw_abort(w);
	size_t n;
	REQUIRE(lseek(fileno(f), 0, SEEK_SET) == 0);
	uint8_t *b = slurp_fd(fileno(f), &n);
	fclose(f);
	uint64_t nrec;
	EXPECT_FAIL(b, n, NULL, RL_EDATA,
		    "'x.rls': truncated stream: no end record after 3 records");
	CHECK(read_all(b, n, NULL, &nrec) == RL_EDATA && nrec == 3);
	free(b);
	rl_sw_abort(NULL);
	rl_sr_close(NULL);

	/* misuse by a tool is an error, not a bad stream */
	f = tmpfile();
	REQUIRE(rl_sw_open_fd(&w, fileno(f), "t", "grad", "test") == 0);
	CHECK(rl_sw_record_begin(w, "batch", 0) == RL_ESYS);
	CHECK_STR(rl_errmsg(), "'t': internal error: 'batch' record before the header");
	CHECK(rl_sw_close(w) == RL_ESYS);
	REQUIRE(rl_sw_open_fd(&w, fileno(f), "t", "grad", "test") == 0);
	rl_sw_header_begin(w, 0);
	float v[4] = {0};
	int64_t s4 = 4;
	CHECK(rl_sw_tensor_chunk(w, "w", RL_DT_F32, 1, &s4, 0, v, 2) == 0);
	CHECK(rl_sw_tensor_chunk(w, "w", RL_DT_F32, 1, &s4, 3, v, 1) == RL_ESYS);
	CHECK_STR(rl_errmsg(), "'t': internal error: chunk of 'w' at 3 while tensor 'w' expects "
			       "element 2");
	CHECK(rl_sw_close(w) == RL_ESYS);
	REQUIRE(rl_sw_open_fd(&w, fileno(f), "t", "grad", "test") == 0);
	rl_sw_header_begin(w, 0);
	CHECK(rl_sw_tensor_chunk(w, "w", RL_DT_F32, 1, &s4, 0, v, 2) == 0);
	CHECK(rl_sw_close(w) == RL_ESYS);
	CHECK_STR(rl_errmsg(), "'t': internal error: stream closed inside tensor 'w' (2 of 4 "
			       "elements written)");
	REQUIRE(rl_sw_open_fd(&w, fileno(f), "t", "grad", "test") == 0);
	rl_sw_header_begin(w, 0);
	CHECK(rl_sw_record_begin(w, "tensor", 0) == RL_ESYS);
	CHECK(rl_sw_close(w) == RL_ESYS);
	/* a record packed with fewer or more pairs than declared */
	REQUIRE(rl_sw_open_fd(&w, fileno(f), "t", "grad", "test") == 0);
	rl_sw_header_begin(w, 2);
	rl_pack_kv_int(rl_sw_packer(w), "a", 1);
	CHECK(rl_sw_record_begin(w, "batch", 0) == RL_ESYS);
	CHECK_STR(rl_errmsg(), "'t': internal error: fewer values packed than the 'header' record "
			       "declared");
	CHECK(rl_sw_close(w) == RL_ESYS);
	REQUIRE(rl_sw_open_fd(&w, fileno(f), "t", "grad", "test") == 0);
	rl_sw_header_begin(w, 0);
	rl_sw_record_begin(w, "batch", 1);
	rl_pack_kv_int(rl_sw_packer(w), "a", 1);
	rl_pack_kv_bin(rl_sw_packer(w), "b", big, sizeof big); /* payload skipped, then */
	CHECK(rl_sw_error(w) == RL_ESYS);
	CHECK_STR(rl_errmsg(), "'t': internal error: more values packed than the 'batch' record "
			       "declared");
	CHECK(rl_sw_close(w) == RL_ESYS);
	REQUIRE(rl_sw_open_fd(&w, fileno(f), "t", "grad", "test") == 0);
	rl_sw_header_begin(w, 1);
	rl_pack_kv_bin(rl_sw_packer(w), "b", big, 1000);
	rl_sw_record_begin(w, "batch", 1);
	rl_pack_str(rl_sw_packer(w), "deep");
	for (int d = 0; d < RL_MAX_DEPTH; d++)
		msgpack_pack_array(rl_sw_packer(w), 1);
	CHECK_STR(rl_errmsg(), "'t': internal error: the 'batch' record nests deeper than 16");
	CHECK(rl_sw_close(w) == RL_ESYS);
	fclose(f);
}

/* The committed fixtures: this writer's bytes are those Python verified; the
 * Python-written stream reads back with the values it was built from. */
static void test_fixtures(const uint8_t *s, size_t n)
{
	size_t fn;
	uint8_t *fx = slurp(check_fixture("stream/c-sample.rls"), &fn);
	CHECKF(fn == n && memcmp(fx, s, n) == 0,
	       "the writer's output differs from tests/fixtures/stream/c-sample.rls (a format "
	       "change or a new RL_VERSION?): run make fixtures, which re-verifies it with "
	       "Python's msgpack and xxhash");
	free(fx);

	uint8_t *py = slurp(check_fixture("stream/py-sample.rls"), &fn);
	rl_sr *r;
	REQUIRE(rl_sr_open_mem(&r, py, fn, "py-sample.rls", "grad") == 0);
	const char *str;
	size_t len;
	CHECK(rl_obj_str(rl_sr_header(r), "tool", "h", &str, &len) == 0 && len == 13 &&
	      !memcmp(str, "gen_stream.py", 13));
	const msgpack_object *rec;
	uint64_t nb = 0, nt = 0, bad = 0;
	int rc;
	/* gen_stream.py: batches i=0..2 with loss -(i+1)/8; tensor "a" F32 [3,100]
	 * value k*0.25-3 in chunks of 64; tensor "b" BF16 [5] = bf16(k-2) */
	while ((rc = rl_sr_next(r, &rec)) == 0 && rec) {
		const rl_chunk *c = rl_sr_chunk(r);
		if (!c) {
			double loss;
			CHECK(rl_rec_is(rec, "batch"));
			CHECK(rl_obj_f64(rec, "loss", "b", &loss) == 0 &&
			      loss == -(double)(nb + 1) / 8);
			nb++;
			continue;
		}
		nt++;
		for (uint64_t k = 0; k < c->count; k++) {
			uint64_t e = c->offset + k;
			if (c->dtype == RL_DT_F32) {
				float f;
				memcpy(&f, (const uint8_t *)c->data + 4 * k, 4);
				bad += f != (float)e * 0.25f - 3;
			} else {
				float f;
				rl_widen(RL_DT_BF16, (const uint8_t *)c->data + 2 * k, &f, 1);
				bad += f != (float)e - 2;
			}
		}
	}
	CHECKF(rc == 0, "%s", rl_errmsg());
	CHECK(nb == 3 && nt == 6 && bad == 0);
	rl_sr_close(r);
	free(py);
}

/* Model identity in headers: packed from an rl_model, checked against the same
 * model (accepted) and another architecture (refused, naming both). */
static rl_model id_model;
static void write_model_header(rl_sw *w)
{
	rl_sw_header_begin(w, 5);
	rl_pack_kv_model(rl_sw_packer(w), "model", &id_model);
	rl_pack_kv_int(rl_sw_packer(w), "layer_end", -3);
	rl_pack_kv_f64(rl_sw_packer(w), "rate", 0.002);
	rl_pack_kv_bool(rl_sw_packer(w), "full", 1);
	rl_pack_kv_str(rl_sw_packer(w), "prompts", "h.jsonl");
}

static void test_model_identity(void)
{
	char llama[4096], qwen[4096], id[17];
	snprintf(llama, sizeof llama, "%s", check_fixture("engine/llama_f32/model"));
	snprintf(qwen, sizeof qwen, "%s", check_fixture("engine/qwen2_bf16/model"));
	REQUIRE(rl_model_open(&id_model, llama, RL_MODEL_READ) == 0);
	size_t n;
	uint8_t *s = write_mem(write_model_header, "direction", &n);
	rl_sr *r;
	REQUIRE(rl_sr_open_mem(&r, s, n, "d.rls", "direction") == 0);
	const msgpack_object *m = rl_obj_get(rl_sr_header(r), "model");
	const char *str;
	size_t len;
	int64_t iv;
	uint64_t uv;
	double dv;
	int bv;
	rl_model_shape_id(&id_model, id);
	CHECK(rl_obj_str(m, "shape_id", "m", &str, &len) == 0 && len == 16 && !memcmp(str, id, 16));
	CHECK(rl_obj_str(m, "arch", "m", &str, &len) == 0 && len == strlen("LlamaForCausalLM") &&
	      !memcmp(str, "LlamaForCausalLM", len));
	CHECK(rl_obj_int(m, "n_layers", "m", &iv) == 0 && iv == id_model.cfg.n_layers);
	CHECK(rl_obj_str(m, "path", "m", &str, &len) == 0 && len == strlen(llama) &&
	      !memcmp(str, llama, len));
	CHECK(rl_sr_check_model(r, "model", &id_model) == 0);
	CHECK(rl_sr_check_model(r, "target", &id_model) == RL_EDATA);
	CHECK_STR(rl_errmsg(), "'d.rls' header: no model identity under 'target'");
	CHECK(rl_sr_hdr_int(r, "layer_end", &iv) == 0 && iv == -3);
	CHECK(rl_sr_hdr_uint(r, "layer_end", &uv) == RL_EDATA);
	CHECK_STR(rl_errmsg(),
		  "'d.rls' header: 'layer_end' is an integer, not an unsigned integer");
	CHECK(rl_sr_hdr_f64(r, "rate", &dv) == 0 && dv == 0.002);
	CHECK(rl_sr_hdr_bool(r, "full", &bv) == 0 && bv == 1);
	CHECK(rl_sr_hdr_str(r, "prompts", &str, &len) == 0 && len == 7);
	CHECK(rl_sr_hdr_str(r, "nope", &str, &len) == RL_EDATA);
	CHECK_STR(rl_errmsg(), "'d.rls' header: key 'nope' is missing");
	rl_model other;
	REQUIRE(rl_model_open(&other, qwen, RL_MODEL_READ) == 0);
	char oid[17], want[8192];
	rl_model_shape_id(&other, oid);
	CHECK(strcmp(id, oid) != 0);
	CHECK(rl_sr_check_model(r, "model", &other) == RL_EDATA);
	snprintf(want, sizeof want,
		 "'d.rls' was made for model '%s' (LlamaForCausalLM, %d layers, shape %s), not for "
		 "'%s' (Qwen2ForCausalLM, %d layers, shape %s)",
		 llama, id_model.cfg.n_layers, id, qwen, other.cfg.n_layers, oid);
	CHECK_STR(rl_errmsg(), want);
	rl_sr_close(r);
	rl_model_close(&other);
	rl_model_close(&id_model);
	free(s);
}

static int write_fixtures(const char *dir)
{
	size_t n;
	uint8_t *s = write_mem(write_sample, "direction", &n);
	char path[4096];
	snprintf(path, sizeof path, "%s/c-sample.rls", dir);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(s, 1, n, f) != n || fclose(f) != 0) {
		fprintf(stderr, "cannot write %s\n", path);
		return 1;
	}
	free(s);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--write-fixtures"))
		return write_fixtures(argv[2]);
	size_t n, sn;
	uint8_t *s = write_mem(write_sample, "direction", &n);
	uint8_t *small = write_mem(write_small, "grad", &sn);
	test_values(s, n);
	test_truncation(s, n);
	test_truncation(small, sn);
	test_flips(small, sn, 1);
	test_flips(s, n, 0);
	test_envelope();
	test_chunks();
	test_hostile_lengths();
	test_pipe();
	test_write_errors();
	test_fixtures(s, n);
	test_model_identity();
	free(s);
	free(small);
	return check_done("test_stream");
}
