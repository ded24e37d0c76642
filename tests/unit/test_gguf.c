/* test_gguf.c — the GGUF reader and dequantization against gguf-py's truth.
 *
 * Fixtures (tests/gen/gen_gguf.py, gguf-py 0.19): quant.gguf / v2.gguf / the
 * split model hold random blocks of every type realign dequantizes, next to
 * gguf.quants.dequantize's f32 output (compared bit for bit); meta*.gguf and
 * their JSON dumps (built from the values given to gguf-py's writer); types.tsv
 * (gguf-py's GGML_QUANT_SIZES); bad/ with golden one-line messages.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/error.h"
#include "store/gguf.h"

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return NULL;
	fseek(fp, 0, SEEK_END);
	long n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
	if (b && fread(b, 1, (size_t)n, fp) != (size_t)n) {
		free(b);
		b = NULL;
	}
	fclose(fp);
	*len = (size_t)n;
	return b;
}

/* Bit-exact comparison; reports the first mismatch with its block and element. */
static void check_bits(const char *what, uint32_t type, const float *got, const float *want,
		       size_t n)
{
	uint32_t bs = rl_ggml_block_size(type);
	for (size_t i = 0; i < n; i++) {
		uint32_t g, w;
		memcpy(&g, &got[i], 4);
		memcpy(&w, &want[i], 4);
		if (g != w) {
			CHECKF(0,
			       "%s (%s): block %zu element %zu (index %zu): got 0x%08" PRIx32
			       " (%g), want 0x%08" PRIx32 " (%g)",
			       what, rl_ggml_type_name(type), i / bs, i % bs, i, g, (double)got[i],
			       w, (double)want[i]);
			return;
		}
	}
	CHECK(1);
}

/* The tensor dequantized whole, by row ranges, and from an unaligned copy of
 * its blocks, each equal to the .f32 file. */
static void check_tensor(const rl_gguf_tensor *t, const char *f32path)
{
	size_t blen;
	float *want = (float *)slurp(check_fixture(f32path), &blen);
	REQUIRE(want);
	CHECKF(blen == t->numel * 4, "%s: %zu bytes for %" PRIu64 " elements", f32path, blen,
	       t->numel);
	float *got = calloc(t->numel, 4);
	REQUIRE(got);
	CHECK_EQ_INT(rl_gguf_dequant(t, got), RL_OK);
	check_bits(t->name, t->type, got, want, t->numel);

	uint64_t rows = rl_gguf_rows(t), ne0 = t->ne[0];
	if (rows >= 3) {
		memset(got, 0xFF, t->numel * 4);
		CHECK_EQ_INT(rl_gguf_dequant_rows(t, 1, 2, got), RL_OK);
		check_bits(t->name, t->type, got, want + ne0, 2 * ne0);
		uint32_t sentinel;
		memcpy(&sentinel, &got[2 * ne0], 4);
		CHECKF(sentinel == 0xFFFFFFFFu, "%s: rows 1..3 wrote past their end", t->name);
	}
	CHECK_EQ_INT(rl_gguf_dequant_rows(t, rows, 1, got), RL_USAGE);
	CHECK_EQ_INT(rl_gguf_dequant_rows(t, 0, rows + 1, got), RL_USAGE);

	uint8_t *odd = malloc(t->nbytes + 1);
	REQUIRE(odd);
	memcpy(odd + 1, t->data, t->nbytes);
	memset(got, 0, t->numel * 4);
	rl_ggml_dequant(t->type, odd + 1, got, t->numel);
	check_bits(t->name, t->type, got, want, t->numel);
	free(odd);
	free(got);
	free(want);
}

static const char *const TYPES[] = {"F32",  "F16",  "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0",
				    "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"};

static void test_types_table(void)
{
	FILE *fp = fopen(check_fixture("gguf/types.tsv"), "r");
	REQUIRE(fp);
	int known[256] = {0};
	unsigned id, bs, ts;
	char name[32];
	int n = 0;
	while (fscanf(fp, "%u\t%31s\t%u\t%u\n", &id, name, &bs, &ts) == 4) {
		REQUIRE(id < 256);
		known[id] = 1;
		n++;
		CHECKF(rl_ggml_type_known(id), "type %u (%s) unknown", id, name);
		CHECK_STR(rl_ggml_type_name(id), name);
		CHECK_EQ_INT(rl_ggml_block_size(id), bs);
		CHECK_EQ_INT(rl_ggml_type_size(id), ts);
	}
	fclose(fp);
	CHECK(n >= 30);
	for (unsigned k = 0; k < 256; k++) {
		if (!known[k]) {
			CHECKF(!rl_ggml_type_known(k), "type %u should be unknown", k);
			CHECK(rl_ggml_type_name(k) == NULL && rl_ggml_block_size(k) == 0);
		}
	}
	int can = 0;
	for (unsigned k = 0; k < 256; k++)
		can += rl_ggml_can_dequant(k);
	CHECK_EQ_INT(can, (int)(sizeof TYPES / sizeof TYPES[0]));
}

static void test_quant(void)
{
	rl_gguf g;
	REQUIRE(rl_gguf_open(&g, check_fixture("gguf/quant.gguf")) == RL_OK);
	CHECK_EQ_INT(g.nfiles, 1);
	CHECK_EQ_INT(g.files[0].version, 3);
	CHECK_EQ_INT(g.files[0].alignment, 32);
	for (size_t k = 0; k < sizeof TYPES / sizeof TYPES[0]; k++) {
		const rl_gguf_tensor *t = rl_gguf_find(&g, TYPES[k]);
		CHECKF(t != NULL, "no tensor %s", TYPES[k]);
		if (!t)
			continue;
		CHECK_STR(rl_ggml_type_name(t->type), TYPES[k]);
		CHECK(rl_ggml_can_dequant(t->type));
		char p[64];
		snprintf(p, sizeof p, "gguf/quant/%s.f32", TYPES[k]);
		check_tensor(t, p);
		rl_gguf_release(t);
	}
	/* dims in GGUF order: numpy (2, 3, 32) is ne [32, 3, 2] */
	const rl_gguf_tensor *s = rl_gguf_find(&g, "shape3");
	REQUIRE(s);
	CHECK_EQ_INT(s->ndim, 3);
	CHECK(s->ne[0] == 32 && s->ne[1] == 3 && s->ne[2] == 2 && s->ne[3] == 1);
	CHECK_EQ_INT(s->numel, 192);
	CHECK_EQ_INT(rl_gguf_rows(s), 6);
	check_tensor(s, "gguf/quant/shape3.f32");
	/* the tensor table is in file order, offsets aligned and absolute */
	CHECK_EQ_INT(g.ntensors, 14);
	CHECK_STR(g.tensors[0]->name, "F32");
	for (size_t k = 0; k < g.ntensors; k++) {
		CHECK(g.tensors[k]->offset % 32 == 0);
		CHECK(g.tensors[k]->data == g.files[0].map + g.tensors[k]->offset);
	}
	CHECK(rl_gguf_find(&g, "nope") == NULL);
	rl_gguf_close(&g);
}

static void test_v2(void)
{
	rl_gguf g;
	REQUIRE(rl_gguf_open(&g, check_fixture("gguf/v2.gguf")) == RL_OK);
	CHECK_EQ_INT(g.files[0].version, 2);
	CHECK_EQ_INT(g.files[0].alignment, 64);
	CHECK_EQ_INT(g.files[0].data_start % 64, 0);
	const char *names[] = {"Q4_K", "Q8_0", "F16"};
	for (int k = 0; k < 3; k++) {
		const rl_gguf_tensor *t = rl_gguf_find(&g, names[k]);
		REQUIRE(t);
		CHECK(t->offset % 64 == 0);
		char p[64];
		snprintf(p, sizeof p, "gguf/v2/%s.f32", names[k]);
		check_tensor(t, p);
	}
	rl_gguf_close(&g);
}

static void test_split(void)
{
	rl_gguf g;
	/* any part opens the whole model */
	REQUIRE(rl_gguf_open(&g, check_fixture("gguf/split-00002-of-00003.gguf")) == RL_OK);
	CHECK_EQ_INT(g.nfiles, 3);
	CHECK_EQ_INT(g.ntensors, 5);
	const char *names[] = {"a.Q4_0", "b.Q6_K", "c.F32", "d.BF16", "e.Q5_1"};
	for (int k = 0; k < 5; k++) {
		CHECK_STR(g.tensors[k]->name, names[k]);
		CHECK(strstr(g.tensors[k]->path, k < 2	 ? "-00001-of-"
						 : k < 4 ? "-00002-of-"
							 : "-00003-of-"));
		char p[64];
		snprintf(p, sizeof p, "gguf/split/%s.f32", names[k]);
		check_tensor(g.tensors[k], p);
	}
	/* the metadata is part 1's */
	char *name = NULL;
	CHECK_EQ_INT(rl_gguf_get_cstr(&g, "general.name", &name), RL_OK);
	CHECK_STR(name, "split model");
	free(name);
	uint32_t blocks = 0;
	CHECK_EQ_INT(rl_gguf_get_u32(&g, "rltest.block_count", &blocks), RL_OK);
	CHECK_EQ_INT(blocks, 5);
	uint64_t no = 9;
	CHECK_EQ_INT(rl_gguf_get_u64(&g, "split.no", &no), RL_OK);
	CHECK_EQ_INT(no, 0);
	rl_gguf_close(&g);
	REQUIRE(rl_gguf_open(&g, check_fixture("gguf/split-00001-of-00003.gguf")) == RL_OK);
	CHECK_EQ_INT(g.ntensors, 5);
	rl_gguf_close(&g);
}

/* ---- metadata dump, in gen_gguf.py's format (json.dumps, ensure_ascii=False) ---- */

typedef struct out {
	char *p;
	size_t n, cap;
} out;

static void put(out *o, const char *s, size_t n)
{
	if (o->n + n + 1 > o->cap) {
		o->cap = (o->n + n + 1) * 2;
		o->p = realloc(o->p, o->cap);
		REQUIRE(o->p);
	}
	memcpy(o->p + o->n, s, n);
	o->n += n;
	o->p[o->n] = '\0';
}

static void puts_(out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void putf(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(out *o, const char *fmt, ...)
{
	char buf[64];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	puts_(o, buf);
}

static void put_json_str(out *o, const char *s, uint64_t len)
{
	puts_(o, "\"");
	for (uint64_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '"':
			puts_(o, "\\\"");
			break;
		case '\\':
			puts_(o, "\\\\");
			break;
		case '\n':
			puts_(o, "\\n");
			break;
		case '\r':
			puts_(o, "\\r");
			break;
		case '\t':
			puts_(o, "\\t");
			break;
		case '\b':
			puts_(o, "\\b");
			break;
		case '\f':
			puts_(o, "\\f");
			break;
		default:
			if (c < 0x20)
				putf(o, "\\u%04x", c);
			else
				put(o, (const char *)&c, 1);
		}
	}
	puts_(o, "\"");
}

static void put_scalar(out *o, const rl_gguf_val *v)
{
	switch (v->type) {
	case RL_GGUF_U8:
	case RL_GGUF_U16:
	case RL_GGUF_U32:
	case RL_GGUF_U64:
		putf(o, "%" PRIu64, v->as.u);
		break;
	case RL_GGUF_I8:
	case RL_GGUF_I16:
	case RL_GGUF_I32:
	case RL_GGUF_I64:
		putf(o, "%" PRId64, v->as.i);
		break;
	case RL_GGUF_BOOL:
		puts_(o, v->as.u ? "true" : "false");
		break;
	case RL_GGUF_F32: {
		float f = (float)v->as.f;
		uint32_t b;
		memcpy(&b, &f, 4);
		putf(o, "\"0x%08" PRIx32 "\"", b);
		break;
	}
	case RL_GGUF_F64: {
		uint64_t b;
		memcpy(&b, &v->as.f, 8);
		putf(o, "\"0x%016" PRIx64 "\"", b);
		break;
	}
	case RL_GGUF_STRING:
		put_json_str(o, v->as.s.s, v->as.s.len);
		break;
	default:
		CHECKF(0, "not a scalar: %d", (int)v->type);
	}
}

static void put_array_body(out *o, const rl_gguf_val *arr)
{
	putf(o, "\"elem\":\"%s\",\"value\":[", rl_gguf_vtype_name(arr->as.arr.type));
	const uint8_t *cur = arr->as.arr.elems;
	for (uint64_t k = 0; k < arr->as.arr.count; k++) {
		rl_gguf_val e;
		rl_gguf_array_next(arr, &cur, &e);
		if (k)
			puts_(o, ",");
		if (e.type == RL_GGUF_ARRAY) {
			puts_(o, "{");
			put_array_body(o, &e);
			puts_(o, "}");
		} else {
			put_scalar(o, &e);
		}
	}
	puts_(o, "]");
}

static char *dump(const rl_gguf *g)
{
	out o = {0};
	putf(&o, "{\"version\":%" PRIu32 ",\"alignment\":%" PRIu32 ",\"kv\":[", g->files[0].version,
	     g->files[0].alignment);
	for (size_t k = 0; k < g->nkv; k++) {
		const rl_gguf_kv *kv = &g->kv[k];
		puts_(&o, k ? ",{\"key\":" : "{\"key\":");
		put_json_str(&o, kv->key, strlen(kv->key));
		putf(&o, ",\"type\":\"%s\",", rl_gguf_vtype_name(kv->val.type));
		if (kv->val.type == RL_GGUF_ARRAY) {
			put_array_body(&o, &kv->val);
		} else {
			puts_(&o, "\"value\":");
			put_scalar(&o, &kv->val);
		}
		puts_(&o, "}");
	}
	puts_(&o, "],\"tensors\":[");
	for (size_t k = 0; k < g->ntensors; k++) {
		const rl_gguf_tensor *t = g->tensors[k];
		puts_(&o, k ? ",{\"name\":" : "{\"name\":");
		put_json_str(&o, t->name, strlen(t->name));
		putf(&o, ",\"type\":\"%s\",\"ne\":[", rl_ggml_type_name(t->type));
		for (int d = 0; d < t->ndim; d++)
			putf(&o, d ? ",%" PRIu64 : "%" PRIu64, t->ne[d]);
		putf(&o, "],\"offset\":%" PRIu64 "}", t->offset - g->files[0].data_start);
	}
	puts_(&o, "]}\n");
	return o.p;
}

static void check_dump(const char *gguf, const char *json)
{
	rl_gguf g;
	REQUIRE(rl_gguf_open(&g, check_fixture(gguf)) == RL_OK);
	char *got = dump(&g);
	size_t wl;
	char *want = (char *)slurp(check_fixture(json), &wl);
	REQUIRE(want);
	int same = wl == strlen(got) && memcmp(got, want, wl) == 0;
	if (!same) {
		size_t i = 0;
		while (i < wl && got[i] == want[i])
			i++;
		CHECKF(0, "%s: dump differs from %s at byte %zu:\n got: %.80s\nwant: %.80s", gguf,
		       json, i, got + i, i < wl ? want + i : "");
	} else {
		CHECK(1);
	}
	free(got);
	free(want);
	rl_gguf_close(&g);
}

static void test_getters(void)
{
	rl_gguf g;
	REQUIRE(rl_gguf_open(&g, check_fixture("gguf/meta.gguf")) == RL_OK);
	uint32_t u32;
	uint64_t u64;
	int64_t i64;
	float f;
	int b;
	CHECK_EQ_INT(rl_gguf_get_u32(&g, "u32.max", &u32), RL_OK);
	CHECK(u32 == UINT32_MAX);
	CHECK_EQ_INT(rl_gguf_get_u32(&g, "u8.max", &u32), RL_OK);
	CHECK_EQ_INT(u32, 255);
	CHECK_EQ_INT(rl_gguf_get_u64(&g, "u64.max", &u64), RL_OK);
	CHECK(u64 == UINT64_MAX);
	CHECK_EQ_INT(rl_gguf_get_i64(&g, "i64.min", &i64), RL_OK);
	CHECK(i64 == INT64_MIN);
	CHECK_EQ_INT(rl_gguf_get_i64(&g, "i8.min", &i64), RL_OK);
	CHECK_EQ_INT(i64, -128);
	CHECK_EQ_INT(rl_gguf_get_u32(&g, "u64.max", &u32), RL_EDATA);
	CHECK(strstr(rl_errmsg(), "key 'u64.max': 18446744073709551615 does not fit u32"));
	CHECK_EQ_INT(rl_gguf_get_u64(&g, "i8.min", &u64), RL_EDATA);
	CHECK(strstr(rl_errmsg(), "key 'i8.min': -128 does not fit u64"));
	CHECK_EQ_INT(rl_gguf_get_i64(&g, "u64.max", &i64), RL_EDATA);
	CHECK_EQ_INT(rl_gguf_get_u32(&g, "str.ascii", &u32), RL_EDATA);
	CHECK(strstr(rl_errmsg(), "meta.gguf': key 'str.ascii' is a string, expected u32"));
	CHECK_EQ_INT(rl_gguf_get_u32(&g, "bool.true", &u32), RL_EDATA);
	CHECK_EQ_INT(rl_gguf_get_u32(&g, "f32.half", &u32), RL_EDATA);
	CHECK_EQ_INT(rl_gguf_get_u32(&g, "no.such.key", &u32), RL_NO);
	CHECK(strstr(rl_errmsg(), "meta.gguf': no key 'no.such.key'"));
	CHECK_EQ_INT(rl_gguf_get_f32(&g, "f32.half", &f), RL_OK);
	CHECK(f == 1.5f);
	CHECK_EQ_INT(rl_gguf_get_f32(&g, "f64.pi", &f), RL_OK);
	CHECK(f == (float)3.141592653589793);
	CHECK_EQ_INT(rl_gguf_get_f32(&g, "u8.max", &f), RL_EDATA);
	CHECK_EQ_INT(rl_gguf_get_bool(&g, "bool.true", &b), RL_OK);
	CHECK_EQ_INT(b, 1);
	CHECK_EQ_INT(rl_gguf_get_bool(&g, "bool.false", &b), RL_OK);
	CHECK_EQ_INT(b, 0);
	CHECK_EQ_INT(rl_gguf_get_bool(&g, "u8.max", &b), RL_EDATA);
	CHECK(strstr(rl_errmsg(), "key 'u8.max' is a u8, expected a bool"));

	rl_gguf_str s;
	CHECK_EQ_INT(rl_gguf_get_str(&g, "str.controls", &s), RL_OK);
	CHECK(s.len == 35 && memcmp(s.s, "tab\tnl\ncr\rquote\"bs\\ nul\0 ctl", 28) == 0);
	char *c = NULL;
	CHECK_EQ_INT(rl_gguf_get_cstr(&g, "str.controls", &c), RL_EDATA);
	CHECK(strstr(rl_errmsg(), "key 'str.controls': the string holds a NUL byte"));
	CHECK_EQ_INT(rl_gguf_get_cstr(&g, "str.utf8", &c), RL_OK);
	CHECK_STR(
		c,
		"h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93 \xf0\x9f\x98\x80 \xe4\xb8\xad\xe6\x96\x87");
	free(c);
	CHECK_EQ_INT(rl_gguf_get_str(&g, "arr.u8", &s), RL_EDATA);
	CHECK(strstr(rl_errmsg(), "key 'arr.u8' is an array of u8, expected a string"));

	rl_gguf_str *toks = NULL;
	size_t n = 0;
	CHECK_EQ_INT(rl_gguf_get_str_array(&g, "tokenizer.ggml.tokens", &toks, &n), RL_OK);
	CHECK_EQ_INT(n, 8);
	if (n == 8) {
		CHECK(toks[3].len == 6 && memcmp(toks[3].s, "<0x0A>", 6) == 0);
		CHECK(toks[4].len == 7 && memcmp(toks[4].s, "\xc4\xa0hello", 7) == 0);
		CHECK(toks[7].len == 0);
	}
	free(toks);
	CHECK_EQ_INT(rl_gguf_get_str_array(&g, "arr.u32", &toks, &n), RL_EDATA);

	int64_t *ints = NULL;
	CHECK_EQ_INT(rl_gguf_get_int_array(&g, "arr.i8", &ints, &n), RL_OK);
	CHECK(n == 4 && ints[0] == -128 && ints[1] == -1 && ints[2] == 0 && ints[3] == 127);
	free(ints);
	CHECK_EQ_INT(rl_gguf_get_int_array(&g, "arr.u32", &ints, &n), RL_OK);
	CHECK(n == 3 && ints[1] == 4294967295LL && ints[2] == 7);
	free(ints);
	CHECK_EQ_INT(rl_gguf_get_int_array(&g, "arr.u64", &ints, &n), RL_EDATA);
	CHECK(strstr(rl_errmsg(),
		     "key 'arr.u64': element 1 (18446744073709551615) does not fit i64"));
	CHECK_EQ_INT(rl_gguf_get_int_array(&g, "arr.nested.int", &ints, &n), RL_EDATA);
	CHECK(strstr(rl_errmsg(),
		     "key 'arr.nested.int' is an array of array, expected an array of integers"));
	CHECK_EQ_INT(rl_gguf_get_int_array(&g, "u8.max", &ints, &n), RL_EDATA);
	CHECK(strstr(rl_errmsg(), "key 'u8.max' is a u8, expected an array of integers"));

	float *fl = NULL;
	CHECK_EQ_INT(rl_gguf_get_float_array(&g, "arr.f32", &fl, &n), RL_OK);
	CHECK(n == 7 && fl[2] == 0.1f && fl[6] == 3.4028234663852886e38f);
	free(fl);
	CHECK_EQ_INT(rl_gguf_get_float_array(&g, "arr.f64", &fl, &n), RL_OK);
	CHECK(n == 3 && fl[0] == (float)0.1 && fl[2] == (float)1e308);
	free(fl);
	CHECK_EQ_INT(rl_gguf_get_float_array(&g, "arr.i32", &fl, &n), RL_EDATA);
	rl_gguf_close(&g);

	/* empty arrays give a non-NULL pointer and n = 0 */
	REQUIRE(rl_gguf_open(&g, check_fixture("gguf/meta-edge.gguf")) == RL_OK);
	ints = NULL;
	n = 9;
	CHECK_EQ_INT(rl_gguf_get_int_array(&g, "empty.array", &ints, &n), RL_OK);
	CHECK(ints != NULL && n == 0);
	free(ints);
	CHECK_EQ_INT(rl_gguf_get_cstr(&g, "empty.string", &c), RL_OK);
	CHECK_STR(c, "");
	free(c);
	rl_gguf_close(&g);
}

static void test_unsupported(void)
{
	REQUIRE(chdir(check_fixture("gguf")) == 0);
	rl_gguf g;
	REQUIRE(rl_gguf_open(&g, "unsupported.gguf") == RL_OK);
	const rl_gguf_tensor *t = rl_gguf_find(&g, "iq");
	REQUIRE(t);
	float vals[256];
	CHECK_EQ_INT(rl_gguf_dequant(t, vals), RL_EDATA);
	CHECK_STR(rl_errmsg(), "'unsupported.gguf': tensor 'iq': type IQ2_XXS cannot be "
			       "dequantized (realign reads F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, "
			       "Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)");
	const rl_gguf_tensor *ok = rl_gguf_find(&g, "ok");
	REQUIRE(ok);
	CHECK_EQ_INT(rl_gguf_dequant(ok, vals), RL_OK);
	CHECK(vals[0] == 1.0f && vals[1] == 1.0f);
	rl_gguf_close(&g);
}

static void test_bad_golden(void)
{
	REQUIRE(chdir(check_fixture("gguf/bad")) == 0);
	FILE *fp = fopen("golden.tsv", "r");
	REQUIRE(fp);
	char line[1024];
	int n = 0;
	while (fgets(line, sizeof line, fp)) {
		char *tab = strchr(line, '\t'), *nl = strchr(line, '\n');
		REQUIRE(tab && nl);
		*tab = *nl = '\0';
		const char *name = line, *want = tab + 1;
		rl_gguf g;
		rl_error_clear();
		int rc = rl_gguf_open(&g, name);
		CHECKF(rc == RL_EDATA, "%s: rc %d (%s)", name, rc, rl_errmsg());
		CHECKF(strcmp(rl_errmsg(), want) == 0, "%s:\n got: %s\nwant: %s", name, rl_errmsg(),
		       want);
		if (rc == RL_OK)
			rl_gguf_close(&g);
		n++;
	}
	fclose(fp);
	CHECKF(n >= 80, "only %d golden cases", n);
}

/* Every prefix of a file that ends before its last tensor's data is refused as
 * truncated, from an exact-size copy (so a read past the end is an ASan error);
 * prefixes inside the final padding are accepted. */
static void check_every_cut(const char *rel, size_t stride_after_header)
{
	size_t len;
	uint8_t *img = slurp(check_fixture(rel), &len);
	REQUIRE(img);
	rl_gguf_file f;
	memset(&f, 0, sizeof f);
	f.path = "cut.gguf";
	REQUIRE(rl_gguf_parse(&f, img, len) == RL_OK);
	uint64_t last_end = f.data_start, hdr = f.data_start;
	for (size_t k = 0; k < f.ntensors; k++)
		if (f.tensors[k].offset + f.tensors[k].nbytes > last_end)
			last_end = f.tensors[k].offset + f.tensors[k].nbytes;
	rl_gguf_file_free(&f);
	int bad = 0;
	for (size_t cut = 0; cut <= len && bad < 3; cut += cut < hdr ? 1 : stride_after_header) {
		uint8_t *copy = malloc(cut ? cut : 1);
		REQUIRE(copy);
		memcpy(copy, img, cut);
		memset(&f, 0, sizeof f);
		f.path = "cut.gguf";
		int rc = rl_gguf_parse(&f, copy, cut);
		if (cut >= last_end) {
			if (rc != RL_OK) {
				bad++;
				CHECKF(0, "%s cut at %zu (data ends at %" PRIu64 "): %s", rel, cut,
				       last_end, rl_errmsg());
			}
			rl_gguf_file_free(&f);
		} else {
			const char *m = rl_errmsg();
			int ok = rc == RL_EDATA && strncmp(m, "'cut.gguf': ", 12) == 0 &&
				 (strstr(m, "truncated") ||
				  strstr(m, "more than the file can hold") ||
				  strstr(m, "past the end of the file"));
			if (!ok) {
				bad++;
				CHECKF(0, "%s cut at %zu: rc %d: %s", rel, cut, rc, m);
			}
		}
		free(copy);
	}
	CHECK(bad == 0);
	free(img);
}

static void test_truncations(void)
{
	check_every_cut("gguf/bad/good.gguf", 1);
	check_every_cut("gguf/meta.gguf", 1);
	check_every_cut("gguf/meta-edge.gguf", 1);
	check_every_cut("gguf/v2.gguf", 7);
	check_every_cut("gguf/split-00002-of-00003.gguf", 3);
	check_every_cut("gguf/quant.gguf", 61);
}

int main(void)
{
	/* absolute, so the chdir of the last tests keeps fixture paths valid */
	char abs[PATH_MAX];
	REQUIRE(realpath(check_fixture(""), abs) != NULL);
	setenv("RL_FIXTURES", abs, 1);
	test_types_table();
	test_quant();
	test_v2();
	test_split();
	check_dump("gguf/meta.gguf", "gguf/meta.json");
	check_dump("gguf/meta-edge.gguf", "gguf/meta-edge.json");
	test_getters();
	test_truncations();
	test_unsupported(); /* chdir: after every test that uses relative fixture paths */
	test_bad_golden();
	return check_done("test_gguf");
}
