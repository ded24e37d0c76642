/* stream_dump.c — stream records as JSON lines (the mapping is in stream_dump.h). */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/jsonl.h"
#include "store/stream_dump.h"

static void put_hex(FILE *fp, const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		putc(digits[p[i] >> 4], fp);
		putc(digits[p[i] & 15], fp);
	}
}

/* Length of the well-formed UTF-8 sequence at p (n bytes left), or, when it
 * is ill-formed, minus the length of its maximal subpart (Unicode 3.9, table
 * 3-7: the lead byte and the continuation bytes that were still valid). */
static int utf8_seq(const uint8_t *p, size_t n)
{
	uint8_t b = p[0];
	int len;
	uint8_t lo = 0x80, hi = 0xbf; /* range of the second byte */
	if (b < 0x80)
		return 1;
	if (b >= 0xc2 && b <= 0xdf)
		len = 2;
	else if (b >= 0xe0 && b <= 0xef) {
		len = 3;
		if (b == 0xe0)
			lo = 0xa0;
		if (b == 0xed)
			hi = 0x9f;
	} else if (b >= 0xf0 && b <= 0xf4) {
		len = 4;
		if (b == 0xf0)
			lo = 0x90;
		if (b == 0xf4)
			hi = 0x8f;
	} else
		return -1;
	for (int i = 1; i < len; i++) {
		if ((size_t)i >= n)
			return -i;
		uint8_t c = p[i];
		if (i == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xbf))
			return -i;
	}
	return len;
}

void rl_json_str(FILE *fp, const char *s, size_t n)
{
	const uint8_t *p = (const uint8_t *)s;
	putc('"', fp);
	size_t i = 0;
	while (i < n) {
		uint8_t c = p[i];
		if (c < 0x80) {
			switch (c) {
			case '"':
				fputs("\\\"", fp);
				break;
			case '\\':
				fputs("\\\\", fp);
				break;
			case '\b':
				fputs("\\b", fp);
				break;
			case '\f':
				fputs("\\f", fp);
				break;
			case '\n':
				fputs("\\n", fp);
				break;
			case '\r':
				fputs("\\r", fp);
				break;
			case '\t':
				fputs("\\t", fp);
				break;
			default:
				if (c < 0x20)
					fprintf(fp, "\\u%04x", c);
				else
					putc(c, fp);
			}
			i++;
			continue;
		}
		int k = utf8_seq(p + i, n - i);
		if (k > 0) {
			fwrite(p + i, 1, (size_t)k, fp);
			i += (size_t)k;
		} else {
			fputs("\xef\xbf\xbd", fp); /* U+FFFD */
			i += (size_t)-k;
		}
	}
	putc('"', fp);
}

/* A double that reads back exactly, as short as %.15g..%.17g allows. */
static void put_f64(FILE *fp, double v)
{
	if (isnan(v)) {
		fputs("\"NaN\"", fp);
		return;
	}
	if (isinf(v)) {
		fputs(v > 0 ? "\"Infinity\"" : "\"-Infinity\"", fp);
		return;
	}
	char buf[32];
	rl_fmt_double(buf, v);
	fputs(buf, fp);
}

/* An element or summary value in a fixed precision (non-finite as strings). */
static void put_prec(FILE *fp, double v, int prec)
{
	if (isnan(v))
		fputs("\"NaN\"", fp);
	else if (isinf(v))
		fputs(v > 0 ? "\"Infinity\"" : "\"-Infinity\"", fp);
	else
		fprintf(fp, "%.*g", prec, v);
}

static void put_bin(FILE *fp, const void *p, size_t n, int flags)
{
	fprintf(fp, "{\"bin\":%zu,\"%s\":\"", n, (flags & RL_DUMP_FULL) ? "hex" : "head");
	put_hex(fp, p, (flags & RL_DUMP_FULL) || n < 16 ? n : 16);
	fputs("\"}", fp);
}

static void put_obj(FILE *fp, const msgpack_object *o, int flags)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		fputs("null", fp);
		break;
	case MSGPACK_OBJECT_BOOLEAN:
		fputs(o->via.boolean ? "true" : "false", fp);
		break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		fprintf(fp, "%" PRIu64, o->via.u64);
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		fprintf(fp, "%" PRId64, o->via.i64);
		break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		put_f64(fp, o->via.f64);
		break;
	case MSGPACK_OBJECT_STR:
		rl_json_str(fp, o->via.str.ptr, o->via.str.size);
		break;
	case MSGPACK_OBJECT_BIN:
		put_bin(fp, o->via.bin.ptr, o->via.bin.size, flags);
		break;
	case MSGPACK_OBJECT_ARRAY:
		putc('[', fp);
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			if (i)
				putc(',', fp);
			put_obj(fp, &o->via.array.ptr[i], flags);
		}
		putc(']', fp);
		break;
	case MSGPACK_OBJECT_MAP:
		putc('{', fp);
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			const msgpack_object *k = &o->via.map.ptr[i].key;
			if (i)
				putc(',', fp);
			if (k->type == MSGPACK_OBJECT_STR)
				rl_json_str(fp, k->via.str.ptr, k->via.str.size);
			else /* never in a validated stream */
				fputs("\"?\"", fp);
			putc(':', fp);
			put_obj(fp, &o->via.map.ptr[i].val, flags);
		}
		putc('}', fp);
		break;
	default:
		fputs("null", fp);
	}
}

enum { K_FLOAT, K_SIGNED, K_UNSIGNED, K_RAW };

static int elem_kind(rl_dtype dt)
{
	switch (dt) {
	case RL_DT_F32:
	case RL_DT_F16:
	case RL_DT_BF16:
	case RL_DT_F64:
		return K_FLOAT;
	case RL_DT_I8:
	case RL_DT_I16:
	case RL_DT_I32:
	case RL_DT_I64:
		return K_SIGNED;
	case RL_DT_BOOL:
	case RL_DT_U8:
	case RL_DT_U16:
	case RL_DT_U32:
	case RL_DT_U64:
		return K_UNSIGNED;
	default:
		return K_RAW;
	}
}

/* Element i of a chunk (any alignment) as a double / an integer. */
static double elem_f(const rl_chunk *c, uint64_t i)
{
	const uint8_t *p = (const uint8_t *)c->data + i * rl_dtype_size(c->dtype);
	if (c->dtype == RL_DT_F64) {
		double d;
		memcpy(&d, p, 8);
		return d;
	}
	float f;
	rl_widen(c->dtype, p, &f, 1);
	return f;
}

static int64_t elem_i(const rl_chunk *c, uint64_t i)
{
	const uint8_t *p = (const uint8_t *)c->data + i * rl_dtype_size(c->dtype);
	switch (c->dtype) {
	case RL_DT_I8:
		return (int8_t)p[0];
	case RL_DT_I16: {
		int16_t v;
		memcpy(&v, p, 2);
		return v;
	}
	case RL_DT_I32: {
		int32_t v;
		memcpy(&v, p, 4);
		return v;
	}
	default: {
		int64_t v;
		memcpy(&v, p, 8);
		return v;
	}
	}
}

static uint64_t elem_u(const rl_chunk *c, uint64_t i)
{
	const uint8_t *p = (const uint8_t *)c->data + i * rl_dtype_size(c->dtype);
	switch (c->dtype) {
	case RL_DT_BOOL:
	case RL_DT_U8:
		return p[0];
	case RL_DT_U16: {
		uint16_t v;
		memcpy(&v, p, 2);
		return v;
	}
	case RL_DT_U32: {
		uint32_t v;
		memcpy(&v, p, 4);
		return v;
	}
	default: {
		uint64_t v;
		memcpy(&v, p, 8);
		return v;
	}
	}
}

static void put_elem(FILE *fp, const rl_chunk *c, int kind, uint64_t i)
{
	if (kind == K_FLOAT)
		put_prec(fp, elem_f(c, i), c->dtype == RL_DT_F64 ? 17 : 9);
	else if (kind == K_SIGNED)
		fprintf(fp, "%" PRId64, elem_i(c, i));
	else
		fprintf(fp, "%" PRIu64, elem_u(c, i));
}

static void put_chunk_data(FILE *fp, const rl_chunk *c, int flags)
{
	int kind = elem_kind(c->dtype);
	size_t esize = rl_dtype_size(c->dtype);
	if (kind == K_RAW) {
		put_bin(fp, c->data, (size_t)(c->count * esize), flags);
		return;
	}
	if (flags & RL_DUMP_FULL) {
		putc('[', fp);
		for (uint64_t i = 0; i < c->count; i++) {
			if (i)
				putc(',', fp);
			put_elem(fp, c, kind, i);
		}
		putc(']', fp);
		return;
	}
	/* summary: min/max keep the first of equal values (strict comparisons) */
	int prec = c->dtype == RL_DT_F64 ? 17 : 9;
	uint64_t n = 0, nnan = 0, ninf = 0;
	double sum = 0;
	fputs("{\"min\":", fp);
	if (kind == K_FLOAT) {
		double mn = 0, mx = 0;
		for (uint64_t i = 0; i < c->count; i++) {
			double v = elem_f(c, i);
			if (isnan(v)) {
				nnan++;
				continue;
			}
			if (isinf(v)) {
				ninf++;
				continue;
			}
			if (n == 0 || v < mn)
				mn = v;
			if (n == 0 || v > mx)
				mx = v;
			sum += v;
			n++;
		}
		if (n) {
			put_prec(fp, mn, prec);
			fputs(",\"max\":", fp);
			put_prec(fp, mx, prec);
			fprintf(fp, ",\"mean\":%.9g", sum / (double)n);
		} else {
			fputs("null,\"max\":null,\"mean\":null", fp);
		}
		fprintf(fp, ",\"nan\":%" PRIu64 ",\"inf\":%" PRIu64, nnan, ninf);
	} else if (c->count == 0) {
		fputs("null,\"max\":null,\"mean\":null", fp);
	} else if (kind == K_SIGNED) {
		int64_t mn = elem_i(c, 0), mx = mn;
		for (uint64_t i = 0; i < c->count; i++) {
			int64_t v = elem_i(c, i);
			mn = v < mn ? v : mn;
			mx = v > mx ? v : mx;
			sum += (double)v;
		}
		fprintf(fp, "%" PRId64 ",\"max\":%" PRId64 ",\"mean\":%.9g", mn, mx,
			sum / (double)c->count);
	} else {
		uint64_t mn = elem_u(c, 0), mx = mn;
		for (uint64_t i = 0; i < c->count; i++) {
			uint64_t v = elem_u(c, i);
			mn = v < mn ? v : mn;
			mx = v > mx ? v : mx;
			sum += (double)v;
		}
		fprintf(fp, "%" PRIu64 ",\"max\":%" PRIu64 ",\"mean\":%.9g", mn, mx,
			sum / (double)c->count);
	}
	fputs(",\"first\":[", fp);
	for (uint64_t i = 0; i < c->count && i < 4; i++) {
		if (i)
			putc(',', fp);
		put_elem(fp, c, kind, i);
	}
	fputs("]}", fp);
}

void rl_dump_record(FILE *fp, const msgpack_object *rec, const rl_chunk *chunk, int flags)
{
	int is_end = rl_rec_is(rec, "end");
	putc('{', fp);
	for (uint32_t i = 0; i < rec->via.map.size; i++) {
		const msgpack_object *k = &rec->via.map.ptr[i].key;
		const msgpack_object *v = &rec->via.map.ptr[i].val;
		if (i)
			putc(',', fp);
		rl_json_str(fp, k->via.str.ptr, k->via.str.size);
		putc(':', fp);
		if (chunk && rl_obj_streq(k, "data"))
			put_chunk_data(fp, chunk, flags);
		else if (is_end && rl_obj_streq(k, "checksum") &&
			 v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
			fprintf(fp, "\"%016" PRIx64 "\"", v->via.u64);
		else
			put_obj(fp, v, flags);
	}
	fputs("}\n", fp);
}

int rl_dump_stats_add(rl_dump_stats *st, const msgpack_object *rec, const rl_chunk *chunk,
		      uint64_t bytes)
{
	size_t len;
	const char *t = rl_rec_type(rec, &len);
	size_t i;
	for (i = 0; i < st->ntypes; i++)
		if (st->types[i].len == len && !memcmp(st->types[i].type, t, len))
			break;
	if (i == st->ntypes) {
		rl_dump_type *nt = rl_realloc_array(st->types, st->ntypes + 1, sizeof *nt);
		if (!nt)
			return RL_ESYS;
		st->types = nt;
		char *name = rl_malloc(len + 1);
		if (!name)
			return RL_ESYS;
		memcpy(name, t, len);
		name[len] = '\0';
		nt[i] = (rl_dump_type){.type = name, .len = len};
		st->ntypes++;
	}
	st->types[i].records++;
	st->types[i].bytes += bytes;
	st->records++;
	if (chunk) {
		st->types[i].elements += chunk->count;
		st->tensors += chunk->offset == 0;
	}
	return 0;
}

void rl_dump_stats_print(FILE *fp, const rl_dump_stats *st, const char *kind, uint64_t total_bytes)
{
	fputs("{\"kind\":", fp);
	rl_json_str(fp, kind, strlen(kind));
	fprintf(fp,
		",\"records\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"tensors\":%" PRIu64
		",\"types\":{",
		st->records, total_bytes, st->tensors);
	for (size_t i = 0; i < st->ntypes; i++) {
		const rl_dump_type *t = &st->types[i];
		if (i)
			putc(',', fp);
		rl_json_str(fp, t->type, t->len);
		fprintf(fp,
			":{\"records\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"elements\":%" PRIu64 "}",
			t->records, t->bytes, t->elements);
	}
	fputs("}}\n", fp);
}

void rl_dump_stats_free(rl_dump_stats *st)
{
	for (size_t i = 0; i < st->ntypes; i++)
		free(st->types[i].type);
	free(st->types);
	memset(st, 0, sizeof *st);
}
