/* safetensors.c — validated, memory-mapped safetensors reader; the official packing writer.
 *
 * NOTES ON THE DESIGN
 *
 * 1. Nothing in a header is used before the whole header has been validated.
 *    The header JSON is parsed by a small strict parser of our own, not cJSON,
 *    because cJSON (a) silently keeps the first of two equal keys, (b) reads
 *    every number as a double, so 2^53+1 and 1.0 would pass as integers. The
 *    parser follows what the official library's serde_json accepts: RFC 8259
 *    JSON, no trailing content but whitespace, nesting at most 128 deep,
 *    integers (shape, data_offsets) as plain digits without sign, fraction or
 *    exponent, fitting 64 bits; unknown fields inside a tensor entry are
 *    skipped as serde does. Stricter than the official library: duplicate keys
 *    anywhere, NUL characters in names, more than RL_MAX_DIMS dimensions and
 *    dtypes realign does not know (F4, F6_*, F8_E8M0, C64, ...) are refused.
 * 2. Sizes: numel is the product of the dims folded left to right with an
 *    overflow check at every step (as the official library does), then times
 *    the element size, again checked.
 * 3. Layout: sorted by (begin, end), the ranges must start at 0, each begin at
 *    the previous end (a larger begin is a gap, a smaller one an overlap), and
 *    the last end must be exactly the data section's length: the file holds no
 *    byte that belongs to no tensor.
 * 4. Writer: the official library's packing (dtype rank descending, then name
 *    bytewise ascending; __metadata__ first; serde_json's compact spelling and
 *    string escapes; header padded with spaces to a multiple of 8), so for the
 *    same tensors and {"format":"pt"} our bytes equal the official library's.
 *    Written to "<path>.tmp", fsync'ed, renamed, directory fsync'ed.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/file.h"
#include "core/inputs.h"
#include "core/jsonl.h"
#include "core/util.h"
#include "store/safetensors.h"

#define JSON_MAX_DEPTH 128
#define LFS_MAGIC "version https://git-lfs.github.com/spec/"

/* ---- strict JSON reading (header only) ---- */

typedef struct jp {
	const char *s; /* header text */
	size_t n;
	size_t i;
	const char *path;
	const char *tensor, *field; /* context for messages inside a tensor entry */
} jp;

static int jp_fail(const jp *p, const char *what)
{
	/* byte positions are file offsets: the header starts after the 8-byte length */
	if (p->tensor)
		return rl_error(RL_EDATA, "'%s': tensor '%s': %s: %s at byte %zu", p->path,
				p->tensor, p->field, what, p->i + 8);
	return rl_error(RL_EDATA, "'%s': header: %s at byte %zu", p->path, what, p->i + 8);
}

static void jp_ws(jp *p)
{
	while (p->i < p->n) {
		char c = p->s[p->i];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		p->i++;
	}
}

/* Consumes c after optional whitespace; 1 if it was there. */
static int jp_eat(jp *p, char c)
{
	jp_ws(p);
	if (p->i < p->n && p->s[p->i] == c) {
		p->i++;
		return 1;
	}
	return 0;
}

static int jp_hex4(jp *p, unsigned *out)
{
	if (p->n - p->i < 4)
		return jp_fail(p, "truncated \\u escape");
	unsigned v = 0;
	for (int k = 0; k < 4; k++) {
		int h = rl_hexval(p->s[p->i + k]);
		if (h < 0)
			return jp_fail(p, "bad \\u escape");
		v = v << 4 | (unsigned)h;
	}
	p->i += 4;
	*out = v;
	return RL_OK;
}

/* Parses a string at p->i (after whitespace). With out != NULL, stores the
 * decoded NUL-terminated UTF-8 (caller frees); a decoded NUL is refused. The
 * text was validated as UTF-8 before parsing, so raw bytes are copied. */
static int jp_string(jp *p, char **out)
{
	jp_ws(p);
	if (p->i >= p->n || p->s[p->i] != '"')
		return jp_fail(p, "expected a string");
	p->i++;
	size_t start = p->i;
	/* the decoded string is never longer than its source */
	char *buf = NULL;
	size_t len = 0;
	if (out) {
		size_t end = start;
		while (end < p->n && p->s[end] != '"') {
			if (p->s[end] == '\\' && end + 1 < p->n)
				end++;
			end++;
		}
		buf = rl_malloc(end - start + 1);
		if (!buf)
			return RL_ESYS;
	}
	int rc = RL_OK;
	for (;;) {
		if (p->i >= p->n) {
			rc = jp_fail(p, "unterminated string");
			break;
		}
		unsigned char c = (unsigned char)p->s[p->i];
		if (c == '"') {
			p->i++;
			break;
		}
		if (c < 0x20) {
			rc = jp_fail(p, "control character in string");
			break;
		}
		if (c != '\\') {
			if (buf)
				buf[len++] = (char)c;
			p->i++;
			continue;
		}
		p->i++;
		if (p->i >= p->n) {
			rc = jp_fail(p, "unterminated string");
			break;
		}
		char e = p->s[p->i++];
		unsigned cp = 0;
		switch (e) {
		case '"':
		case '\\':
		case '/':
			cp = (unsigned char)e;
			break;
		case 'b':
			cp = '\b';
			break;
		case 'f':
			cp = '\f';
			break;
		case 'n':
			cp = '\n';
			break;
		case 'r':
			cp = '\r';
			break;
		case 't':
			cp = '\t';
			break;
		case 'u':
			if ((rc = jp_hex4(p, &cp)))
				break;
			if (cp >= 0xDC00 && cp <= 0xDFFF) {
				rc = jp_fail(p, "lone low surrogate in \\u escape");
				break;
			}
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				unsigned lo;
				if (p->n - p->i < 2 || p->s[p->i] != '\\' ||
				    p->s[p->i + 1] != 'u') {
					rc = jp_fail(p, "lone high surrogate in \\u escape");
					break;
				}
				p->i += 2;
				if ((rc = jp_hex4(p, &lo)))
					break;
				if (lo < 0xDC00 || lo > 0xDFFF) {
					rc = jp_fail(p, "bad surrogate pair in \\u escape");
					break;
				}
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			}
			if (cp == 0) {
				rc = jp_fail(p, "NUL character in string");
				break;
			}
			break;
		default:
			p->i--;
			rc = jp_fail(p, "bad escape in string");
			break;
		}
		if (rc)
			break;
		if (buf) {
			/* an escape is at least 2 source bytes and at most 4 UTF-8 bytes
			 * per 6 (or 12 for a pair) source bytes: it always fits */
			if (cp < 0x80) {
				buf[len++] = (char)cp;
			} else if (cp < 0x800) {
				buf[len++] = (char)(0xC0 | cp >> 6);
				buf[len++] = (char)(0x80 | (cp & 0x3F));
			} else if (cp < 0x10000) {
				buf[len++] = (char)(0xE0 | cp >> 12);
				buf[len++] = (char)(0x80 | ((cp >> 6) & 0x3F));
				buf[len++] = (char)(0x80 | (cp & 0x3F));
			} else {
				buf[len++] = (char)(0xF0 | cp >> 18);
				buf[len++] = (char)(0x80 | ((cp >> 12) & 0x3F));
				buf[len++] = (char)(0x80 | ((cp >> 6) & 0x3F));
				buf[len++] = (char)(0x80 | (cp & 0x3F));
			}
		}
	}
	if (rc) {
		free(buf);
		return rc;
	}
	if (buf) {
		buf[len] = '\0'; /* no NUL inside: raw ones are control characters */
		*out = buf;
	}
	return RL_OK;
}

/* An unsigned integer as serde_json reads a u64: digits only, no leading zero,
 * no sign, fraction or exponent, at most 2^64-1. */
static int jp_u64(jp *p, uint64_t *out)
{
	jp_ws(p);
	size_t start = p->i;
	if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9')
		return jp_fail(p, "expected a non-negative integer");
	uint64_t v = 0;
	while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
		unsigned d = (unsigned)(p->s[p->i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return jp_fail(p, "integer out of range");
		v = v * 10 + d;
		p->i++;
	}
	if (p->s[start] == '0' && p->i - start > 1) {
		p->i = start;
		return jp_fail(p, "integer with a leading zero");
	}
	if (p->i < p->n && (p->s[p->i] == '.' || p->s[p->i] == 'e' || p->s[p->i] == 'E'))
		return jp_fail(p, "expected an integer, not a fraction");
	*out = v;
	return RL_OK;
}

static int jp_skip(jp *p, int depth);

static int jp_skip_number(jp *p)
{
	if (p->i < p->n && p->s[p->i] == '-')
		p->i++;
	if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9')
		return jp_fail(p, "bad number");
	if (p->s[p->i] == '0') {
		p->i++;
	} else {
		while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
			p->i++;
	}
	if (p->i < p->n && p->s[p->i] == '.') {
		p->i++;
		if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9')
			return jp_fail(p, "bad number");
		while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
			p->i++;
	}
	if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
		p->i++;
		if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-'))
			p->i++;
		if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9')
			return jp_fail(p, "bad number");
		while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
			p->i++;
	}
	return RL_OK;
}

static int jp_literal(jp *p, const char *lit)
{
	size_t l = strlen(lit);
	if (p->n - p->i < l || memcmp(p->s + p->i, lit, l) != 0)
		return jp_fail(p, "unexpected character");
	p->i += l;
	return RL_OK;
}

/* Skips any JSON value (validating it); depth counts enclosing containers. */
static int jp_skip(jp *p, int depth)
{
	int rc;
	jp_ws(p);
	if (p->i >= p->n)
		return jp_fail(p, "unexpected end");
	char c = p->s[p->i];
	if (c == '{' || c == '[') {
		if (depth >= JSON_MAX_DEPTH)
			return jp_fail(p, "nesting too deep");
		char close = c == '{' ? '}' : ']';
		p->i++;
		if (jp_eat(p, close))
			return RL_OK;
		for (;;) {
			if (c == '{') {
				if ((rc = jp_string(p, NULL)))
					return rc;
				if (!jp_eat(p, ':'))
					return jp_fail(p, "expected ':'");
			}
			if ((rc = jp_skip(p, depth + 1)))
				return rc;
			if (jp_eat(p, ','))
				continue;
			if (jp_eat(p, close))
				return RL_OK;
			return jp_fail(p, c == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
		}
	}
	if (c == '"')
		return jp_string(p, NULL);
	if (c == 't')
		return jp_literal(p, "true");
	if (c == 'f')
		return jp_literal(p, "false");
	if (c == 'n')
		return jp_literal(p, "null");
	return jp_skip_number(p);
}

/* ---- header validation ---- */

static int cmp_name(const void *a, const void *b)
{
	const rl_st_tensor *x = *(rl_st_tensor *const *)a, *y = *(rl_st_tensor *const *)b;
	return strcmp(x->name, y->name);
}

static int cmp_range(const void *a, const void *b)
{
	const rl_st_tensor *x = a, *y = b;
	uint64_t xb = x->offset, yb = y->offset, xe = xb + x->nbytes, ye = yb + y->nbytes;
	if (xb != yb)
		return xb < yb ? -1 : 1;
	if (xe != ye)
		return xe < ye ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void shape_str(const rl_st_tensor *t, char *buf, size_t cap)
{
	size_t k = 0;
	k += (size_t)snprintf(buf + k, cap - k, "[");
	for (int d = 0; d < t->ndim && k < cap; d++)
		k += (size_t)snprintf(buf + k, cap - k, "%s%" PRId64, d ? ", " : "", t->shape[d]);
	if (k < cap)
		snprintf(buf + k, cap - k, "]");
}

/* Parses one tensor entry's object into t (name already set); offsets are
 * kept relative in t->offset / t->nbytes (end - begin) until layout checks. */
static int parse_tensor(jp *p, const char *path, rl_st_tensor *t, uint64_t *begin, uint64_t *end)
{
	int rc;
	int have_dtype = 0, have_shape = 0, have_offsets = 0;
	if (!jp_eat(p, '{'))
		return rl_error(RL_EDATA, "'%s': tensor '%s': entry is not a JSON object", path,
				t->name);
	if (!jp_eat(p, '}')) {
		for (;;) {
			char *key = NULL;
			if ((rc = jp_string(p, &key)))
				return rc;
			if (!jp_eat(p, ':')) {
				free(key);
				return jp_fail(p, "expected ':'");
			}
			int *seen = strcmp(key, "dtype") == 0	       ? &have_dtype
				    : strcmp(key, "shape") == 0	       ? &have_shape
				    : strcmp(key, "data_offsets") == 0 ? &have_offsets
								       : NULL;
			if (seen && *seen) {
				rc = rl_error(RL_EDATA, "'%s': tensor '%s': duplicate field '%s'",
					      path, t->name, key);
				free(key);
				return rc;
			}
			if (seen == &have_dtype) {
				char *dt = NULL;
				jp_ws(p);
				if (p->i < p->n && p->s[p->i] != '"') {
					free(key);
					return rl_error(RL_EDATA,
							"'%s': tensor '%s': dtype is not a string",
							path, t->name);
				}
				if ((rc = jp_string(p, &dt))) {
					free(key);
					return rc;
				}
				if (rl_dtype_parse(dt, strlen(dt), &t->dtype) != 0) {
					rc = rl_error(RL_EDATA,
						      "'%s': tensor '%s': unknown dtype '%s'", path,
						      t->name, dt);
					free(dt);
					free(key);
					return rc;
				}
				free(dt);
			} else if (seen == &have_shape) {
				if (!jp_eat(p, '[')) {
					free(key);
					return rl_error(RL_EDATA,
							"'%s': tensor '%s': shape is not an array",
							path, t->name);
				}
				t->ndim = 0;
				if (!jp_eat(p, ']')) {
					for (;;) {
						uint64_t d;
						p->tensor = t->name, p->field = "shape";
						rc = jp_u64(p, &d);
						p->tensor = NULL;
						if (rc) {
							free(key);
							return rc;
						}
						if (t->ndim == RL_MAX_DIMS) {
							free(key);
							return rl_error(
								RL_EDATA,
								"'%s': tensor '%s': more than %d "
								"dimensions",
								path, t->name, RL_MAX_DIMS);
						}
						if (d > (uint64_t)INT64_MAX) {
							free(key);
							return rl_error(
								RL_EDATA,
								"'%s': tensor '%s': dimension "
								"%" PRIu64 " too large",
								path, t->name, d);
						}
						t->shape[t->ndim++] = (int64_t)d;
						if (jp_eat(p, ','))
							continue;
						if (jp_eat(p, ']'))
							break;
						free(key);
						return jp_fail(p, "expected ',' or ']'");
					}
				}
			} else if (seen == &have_offsets) {
				uint64_t v[2];
				int k = 0;
				if (!jp_eat(p, '[')) {
					free(key);
					return rl_error(
						RL_EDATA,
						"'%s': tensor '%s': data_offsets is not an array",
						path, t->name);
				}
				while (!jp_eat(p, ']')) {
					if (k == 2 || (k > 0 && !jp_eat(p, ','))) {
						free(key);
						return rl_error(
							RL_EDATA,
							"'%s': tensor '%s': data_offsets must "
							"hold exactly 2 integers",
							path, t->name);
					}
					p->tensor = t->name, p->field = "data_offsets";
					rc = jp_u64(p, &v[k++]);
					p->tensor = NULL;
					if (rc) {
						free(key);
						return rc;
					}
				}
				if (k != 2) {
					free(key);
					return rl_error(RL_EDATA,
							"'%s': tensor '%s': data_offsets must hold "
							"exactly 2 integers",
							path, t->name);
				}
				*begin = v[0];
				*end = v[1];
			} else if ((rc = jp_skip(p,
						 2))) { /* unknown field: ignored, as serde does */
				free(key);
				return rc;
			}
			if (seen)
				*seen = 1;
			free(key);
			if (jp_eat(p, ','))
				continue;
			if (jp_eat(p, '}'))
				break;
			return jp_fail(p, "expected ',' or '}'");
		}
	}
	if (!have_dtype || !have_shape || !have_offsets)
		return rl_error(RL_EDATA, "'%s': tensor '%s': missing \"%s\"", path, t->name,
				!have_dtype   ? "dtype"
				: !have_shape ? "shape"
					      : "data_offsets");
	return RL_OK;
}

static int parse_metadata(jp *p, rl_st_file *f)
{
	int rc;
	jp_ws(p);
	if (p->i < p->n && p->s[p->i] == 'n') /* null: no metadata (serde's Option) */
		return jp_literal(p, "null");
	if (!jp_eat(p, '{'))
		return rl_error(RL_EDATA, "'%s': __metadata__ is not a JSON object", f->path);
	if (jp_eat(p, '}'))
		return RL_OK;
	size_t cap = 0;
	for (;;) {
		char *k = NULL, *v = NULL;
		if ((rc = jp_string(p, &k)))
			return rc;
		if (!jp_eat(p, ':')) {
			free(k);
			return jp_fail(p, "expected ':'");
		}
		jp_ws(p);
		if (p->i < p->n && p->s[p->i] != '"') {
			rc = rl_error(
				RL_EDATA,
				"'%s': __metadata__ value of '%s' is not a string (__metadata__ "
				"maps strings to strings)",
				f->path, k);
			free(k);
			return rc;
		}
		if ((rc = jp_string(p, &v))) {
			free(k);
			return rc;
		}
		if (f->nmeta == cap) {
			size_t nc = cap ? cap * 2 : 4;
			char **nk = rl_realloc_array(f->meta_keys, nc, sizeof *nk);
			if (!nk) {
				free(k), free(v);
				return RL_ESYS;
			}
			f->meta_keys = nk;
			char **nv = rl_realloc_array(f->meta_vals, nc, sizeof *nv);
			if (!nv) {
				free(k), free(v);
				return RL_ESYS;
			}
			f->meta_vals = nv;
			cap = nc;
		}
		f->meta_keys[f->nmeta] = k;
		f->meta_vals[f->nmeta] = v;
		f->nmeta++;
		if (jp_eat(p, ','))
			continue;
		if (jp_eat(p, '}'))
			break;
		return jp_fail(p, "expected ',' or '}'");
	}
	/* duplicate keys */
	char **keys = rl_malloc_array(f->nmeta, sizeof *keys);
	if (!keys)
		return RL_ESYS;
	memcpy(keys, f->meta_keys, f->nmeta * sizeof *keys);
	qsort(keys, f->nmeta, sizeof *keys, cmp_str);
	rc = RL_OK;
	for (size_t i = 1; i < f->nmeta; i++) {
		if (strcmp(keys[i - 1], keys[i]) == 0) {
			rc = rl_error(RL_EDATA, "'%s': duplicate __metadata__ key '%s'", f->path,
				      keys[i]);
			break;
		}
	}
	free(keys);
	return rc;
}

static int is_lfs_pointer(const uint8_t *buf, size_t len)
{
	size_t l = strlen(LFS_MAGIC);
	return len >= l && memcmp(buf, LFS_MAGIC, l) == 0;
}

/* Parses the top-level object; fills f->tensors with relative ranges in
 * (offset, nbytes) and returns them through begins/ends. */
static int parse_header_json(rl_st_file *f, jp *p, uint64_t **endsp)
{
	int rc;
	size_t cap = 0;
	int have_meta = 0;
	uint64_t *ends = NULL;
	*endsp = NULL;
	if (!jp_eat(p, '{')) {
		jp_ws(p);
		return rl_error(RL_EDATA, "'%s': header is not a JSON object", f->path);
	}
	if (!jp_eat(p, '}')) {
		for (;;) {
			char *name = NULL;
			if ((rc = jp_string(p, &name)))
				goto fail;
			if (!jp_eat(p, ':')) {
				free(name);
				rc = jp_fail(p, "expected ':'");
				goto fail;
			}
			if (strcmp(name, "__metadata__") == 0) {
				free(name);
				if (have_meta) {
					rc = rl_error(RL_EDATA, "'%s': duplicate __metadata__",
						      f->path);
					goto fail;
				}
				have_meta = 1;
				if ((rc = parse_metadata(p, f)))
					goto fail;
			} else {
				if (f->ntensors == cap) {
					size_t nc = cap ? cap * 2 : 64;
					rl_st_tensor *nt =
						rl_realloc_array(f->tensors, nc, sizeof *nt);
					if (!nt) {
						free(name);
						rc = RL_ESYS;
						goto fail;
					}
					f->tensors = nt;
					uint64_t *ne = rl_realloc_array(ends, nc, sizeof *ne);
					if (!ne) {
						free(name);
						rc = RL_ESYS;
						goto fail;
					}
					ends = ne;
					cap = nc;
				}
				rl_st_tensor *t = &f->tensors[f->ntensors];
				memset(t, 0, sizeof *t);
				t->name = name;
				f->ntensors++;
				uint64_t b = 0, e = 0;
				if ((rc = parse_tensor(p, f->path, t, &b, &e)))
					goto fail;
				t->offset = b;
				ends[f->ntensors - 1] = e;
			}
			if (jp_eat(p, ','))
				continue;
			if (jp_eat(p, '}'))
				break;
			rc = jp_fail(p, "expected ',' or '}'");
			goto fail;
		}
	}
	jp_ws(p);
	if (p->i != p->n) {
		rc = jp_fail(p, "trailing characters after the JSON object");
		goto fail;
	}
	*endsp = ends;
	return RL_OK;
fail:
	free(ends);
	return rc;
}

int rl_st_parse(rl_st_file *f, const uint8_t *buf, size_t len, uint64_t file_size)
{
	int rc;
	uint64_t *ends = NULL;
	rl_st_tensor **byname = NULL;
	f->tensors = NULL;
	f->ntensors = 0;
	f->meta_keys = f->meta_vals = NULL;
	f->nmeta = 0;
	f->by_name = NULL;
	f->size = file_size;
	if (len > file_size)
		len = (size_t)file_size;
	if (is_lfs_pointer(buf, len))
		return rl_error(RL_EDATA,
				"'%s' is a Git LFS pointer, not the weights: run git lfs pull",
				f->path);
	if (len < 8)
		return rl_error(RL_EDATA,
				"'%s': too small for a safetensors file (%" PRIu64
				" bytes; the header length alone takes 8)",
				f->path, file_size);
	uint64_t n = 0;
	for (int k = 7; k >= 0; k--)
		n = n << 8 | buf[k];
	if (n > RL_ST_MAX_HEADER)
		return rl_error(RL_EDATA,
				"'%s': header length %" PRIu64
				" exceeds the limit of %u bytes (not a "
				"safetensors file?)",
				f->path, n, RL_ST_MAX_HEADER);
	if (n > file_size - 8)
		return rl_error(RL_EDATA,
				"'%s': header length %" PRIu64 " exceeds the file (%" PRIu64
				" bytes): truncated or not a safetensors file",
				f->path, n, file_size);
	if (n > len - 8)
		return rl_error(RL_EDATA, "'%s': header truncated (%zu of %" PRIu64 " bytes)",
				f->path, len - 8, n);
	const char *text = (const char *)buf + 8;
	if (!rl_utf8_valid(text, (size_t)n))
		return rl_error(RL_EDATA, "'%s': header is not valid UTF-8", f->path);
	jp p = {.s = text, .n = (size_t)n, .i = 0, .path = f->path};
	if ((rc = parse_header_json(f, &p, &ends)))
		goto fail;
	f->data_start = 8 + n;
	uint64_t data_len = file_size - f->data_start;

	/* duplicate names (the by-name index is kept for lookups) */
	byname = rl_malloc_array(f->ntensors ? f->ntensors : 1, sizeof *byname);
	if (!byname) {
		rc = RL_ESYS;
		goto fail;
	}
	for (size_t i = 0; i < f->ntensors; i++)
		byname[i] = &f->tensors[i];
	qsort(byname, f->ntensors, sizeof *byname, cmp_name);
	for (size_t i = 1; i < f->ntensors; i++) {
		if (strcmp(byname[i - 1]->name, byname[i]->name) == 0) {
			rc = rl_error(RL_EDATA, "'%s': duplicate tensor name '%s'", f->path,
				      byname[i]->name);
			goto fail;
		}
	}
	free(byname);
	byname = NULL;

	/* sizes: shape x element size == end - begin, without overflow */
	for (size_t i = 0; i < f->ntensors; i++) {
		rl_st_tensor *t = &f->tensors[i];
		uint64_t b = t->offset, e = ends[i];
		char sh[256];
		if (e < b) {
			rc = rl_error(RL_EDATA,
				      "'%s': tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
				      "] end before they begin",
				      f->path, t->name, b, e);
			goto fail;
		}
		uint64_t numel = 1;
		for (int d = 0; d < t->ndim; d++) {
			uint64_t dim = (uint64_t)t->shape[d];
			if (dim != 0 && numel > UINT64_MAX / dim) {
				shape_str(t, sh, sizeof sh);
				rc = rl_error(RL_EDATA,
					      "'%s': tensor '%s': shape %s overflows 64 bits",
					      f->path, t->name, sh);
				goto fail;
			}
			numel *= dim;
		}
		uint64_t es = rl_dtype_size(t->dtype);
		if (numel > UINT64_MAX / es) {
			shape_str(t, sh, sizeof sh);
			rc = rl_error(RL_EDATA, "'%s': tensor '%s': shape %s overflows 64 bits",
				      f->path, t->name, sh);
			goto fail;
		}
		if (numel * es != e - b) {
			shape_str(t, sh, sizeof sh);
			rc = rl_error(RL_EDATA,
				      "'%s': tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
				      "] hold %" PRIu64 " bytes but %s %s needs %" PRIu64,
				      f->path, t->name, b, e, e - b, rl_dtype_name(t->dtype), sh,
				      numel * es);
			goto fail;
		}
		t->numel = numel;
		t->nbytes = e - b;
	}

	/* layout: sorted, contiguous from 0, covering the data section exactly */
	if (f->ntensors)
		qsort(f->tensors, f->ntensors, sizeof *f->tensors, cmp_range);
	uint64_t at = 0;
	for (size_t i = 0; i < f->ntensors; i++) {
		rl_st_tensor *t = &f->tensors[i];
		if (t->offset > at) {
			rc = rl_error(RL_EDATA,
				      "'%s': tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
				      "] leave a gap after byte %" PRIu64 " of the data section",
				      f->path, t->name, t->offset, t->offset + t->nbytes, at);
			goto fail;
		}
		if (t->offset < at) {
			rc = rl_error(RL_EDATA,
				      "'%s': tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
				      "] overlap '%s'",
				      f->path, t->name, t->offset, t->offset + t->nbytes,
				      f->tensors[i - 1].name);
			goto fail;
		}
		at = t->offset + t->nbytes;
	}
	if (at != data_len) {
		if (at > data_len)
			rc = rl_error(RL_EDATA,
				      "'%s': tensors need %" PRIu64
				      " bytes of data but the file has "
				      "%" PRIu64 ": truncated",
				      f->path, at, data_len);
		else
			rc = rl_error(RL_EDATA,
				      "'%s': %" PRIu64
				      " bytes after the last tensor (the data section "
				      "has %" PRIu64 ", the tensors cover %" PRIu64 ")",
				      f->path, data_len - at, data_len, at);
		goto fail;
	}
	for (size_t i = 0; i < f->ntensors; i++)
		f->tensors[i].offset += f->data_start;

	/* by-name index for lookups */
	f->by_name = rl_malloc_array(f->ntensors ? f->ntensors : 1, sizeof *f->by_name);
	if (!f->by_name) {
		rc = RL_ESYS;
		goto fail;
	}
	for (size_t i = 0; i < f->ntensors; i++)
		f->by_name[i] = &f->tensors[i];
	qsort(f->by_name, f->ntensors, sizeof *f->by_name, cmp_name);
	free(ends);
	return RL_OK;
fail:
	free(ends);
	free(byname);
	rl_st_free(f);
	return rc;
}

void rl_st_free(rl_st_file *f)
{
	for (size_t i = 0; i < f->ntensors; i++)
		free(f->tensors[i].name);
	free(f->tensors);
	for (size_t i = 0; i < f->nmeta; i++) {
		free(f->meta_keys[i]);
		free(f->meta_vals[i]);
	}
	free(f->meta_keys);
	free(f->meta_vals);
	free(f->by_name);
	f->tensors = NULL;
	f->ntensors = 0;
	f->meta_keys = f->meta_vals = NULL;
	f->nmeta = 0;
	f->by_name = NULL;
}

int rl_st_open(rl_st_file *f, const char *path, int mode)
{
	memset(f, 0, sizeof *f);
	f->fd = -1;
	f->path = rl_strdup(path);
	if (!f->path)
		return RL_ESYS;
	int rc;
	f->writable = mode == RL_ST_WRITE;
	if ((rc = rl_open_regular(path, f->writable, &f->fd)))
		goto fail;
	struct stat st;
	if (fstat(f->fd, &st) != 0) {
		rc = rl_error_errno(RL_ESYS, "'%s'", path);
		goto fail;
	}
	f->size = (uint64_t)st.st_size;
	if (f->size == 0) {
		rc = rl_error(RL_EDATA, "'%s': empty file", path);
		goto fail;
	}
	if (f->size > SIZE_MAX) {
		rc = rl_error(RL_ESYS, "'%s': too large to map", path);
		goto fail;
	}
	void *m = mmap(NULL, (size_t)f->size, PROT_READ, MAP_SHARED, f->fd, 0);
	if (m == MAP_FAILED) {
		rc = rl_error_errno(RL_ESYS, "'%s': mmap", path);
		goto fail;
	}
	f->map = m;
	if ((rc = rl_st_parse(f, f->map, (size_t)f->size, f->size)))
		goto fail;
	return RL_OK;
fail:
	rl_st_close(f);
	return rc;
}

void rl_st_close(rl_st_file *f)
{
	rl_st_free(f);
	if (f->map)
		munmap((void *)f->map, (size_t)f->size);
	if (f->fd >= 0)
		close(f->fd);
	free(f->path);
	memset(f, 0, sizeof *f);
	f->fd = -1;
}

const rl_st_tensor *rl_st_find(const rl_st_file *f, const char *name)
{
	size_t lo = 0, hi = f->ntensors;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(f->by_name[mid]->name, name);
		if (c == 0)
			return f->by_name[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int rl_st_pwrite(rl_st_file *f, uint64_t off, const void *buf, size_t nbytes)
{
	if (!f->writable)
		return rl_error(RL_ESYS, "'%s': not opened for writing", f->path);
	if (off < f->data_start || off > f->size || nbytes > f->size - off)
		return rl_error(RL_ESYS,
				"'%s': write of %zu bytes at offset %" PRIu64
				" falls outside the data section",
				f->path, nbytes, off);
	return rl_pwrite_all(f->fd, buf, nbytes, off, f->path);
}

int rl_st_pread(const rl_st_file *f, uint64_t off, void *buf, size_t nbytes)
{
	if (off < f->data_start || off > f->size || nbytes > f->size - off)
		return rl_error(RL_ESYS,
				"'%s': read of %zu bytes at offset %" PRIu64
				" falls outside the data section",
				f->path, nbytes, off);
	uint8_t *p = buf;
	while (nbytes > 0) {
		size_t chunk = nbytes > (1u << 30) ? (1u << 30) : nbytes;
		ssize_t r = pread(f->fd, p, chunk, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return rl_error_errno(RL_ESYS, "'%s': read", f->path);
		}
		if (r == 0)
			return rl_error(RL_ESYS, "'%s': unexpected end of file", f->path);
		p += r;
		off += (uint64_t)r;
		nbytes -= (size_t)r;
	}
	return RL_OK;
}

int rl_st_sync(rl_st_file *f)
{
	if (fsync(f->fd) != 0)
		return rl_error_errno(RL_ESYS, "'%s': fsync", f->path);
	return RL_OK;
}

/* ---- writer ---- */

typedef struct sbuf {
	char *p;
	size_t n, cap;
	int err;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
	if (b->err)
		return;
	if (b->cap - b->n < n + 1) {
		size_t nc = b->cap ? b->cap : 256;
		while (nc - b->n < n + 1) {
			if (nc > SIZE_MAX / 2) {
				b->err = 1;
				return;
			}
			nc *= 2;
		}
		char *q = realloc(b->p, nc);
		if (!q) {
			b->err = 1;
			return;
		}
		b->p = q;
		b->cap = nc;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static void sb_str(sbuf *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

static void sb_u64(sbuf *b, uint64_t v)
{
	char t[24];
	int k = snprintf(t, sizeof t, "%" PRIu64, v);
	sb_put(b, t, (size_t)k);
}

/* A JSON string as serde_json writes it: '"' and '\\' escaped, control
 * characters as \b \t \n \f \r or \u00xx (lowercase hex), everything else
 * (DEL and non-ASCII UTF-8 included) as is. */
static void sb_json_string(sbuf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	sb_put(b, "\"", 1);
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		char esc[7];
		switch (*c) {
		case '"':
			sb_put(b, "\\\"", 2);
			break;
		case '\\':
			sb_put(b, "\\\\", 2);
			break;
		case '\b':
			sb_put(b, "\\b", 2);
			break;
		case '\t':
			sb_put(b, "\\t", 2);
			break;
		case '\n':
			sb_put(b, "\\n", 2);
			break;
		case '\f':
			sb_put(b, "\\f", 2);
			break;
		case '\r':
			sb_put(b, "\\r", 2);
			break;
		default:
			if (*c < 0x20) {
				memcpy(esc, "\\u00", 4);
				esc[4] = hex[*c >> 4];
				esc[5] = hex[*c & 15];
				sb_put(b, esc, 6);
			} else {
				sb_put(b, (const char *)c, 1);
			}
		}
	}
	sb_put(b, "\"", 1);
}

static int cmp_wtensor(const void *a, const void *b)
{
	const rl_st_wtensor *x = *(const rl_st_wtensor *const *)a;
	const rl_st_wtensor *y = *(const rl_st_wtensor *const *)b;
	/* rl_dtype's order is the official library's Dtype order: larger first */
	if (x->dtype != y->dtype)
		return x->dtype > y->dtype ? -1 : 1;
	return strcmp(x->name, y->name);
}

int rl_st_wtensor_nbytes(const rl_st_wtensor *t, uint64_t *nbytes)
{
	if ((unsigned)t->dtype >= RL_DT_COUNT || t->ndim < 0 || t->ndim > RL_MAX_DIMS)
		return rl_error(RL_USAGE, "tensor '%s': bad dtype or rank", t->name);
	uint64_t numel = 1;
	for (int d = 0; d < t->ndim; d++) {
		if (t->shape[d] < 0)
			return rl_error(RL_USAGE, "tensor '%s': negative dimension", t->name);
		uint64_t dim = (uint64_t)t->shape[d];
		if (dim != 0 && numel > UINT64_MAX / dim)
			return rl_error(RL_USAGE, "tensor '%s': shape overflows", t->name);
		numel *= dim;
	}
	uint64_t es = rl_dtype_size(t->dtype);
	if (numel > UINT64_MAX / es)
		return rl_error(RL_USAGE, "tensor '%s': shape overflows", t->name);
	*nbytes = numel * es;
	return RL_OK;
}

/* Builds the padded header; *order gets the packing order (caller frees). */
static int build_header(const rl_st_wtensor *t, size_t n, const char *const *meta_kv, size_t nmeta,
			sbuf *hb, const rl_st_wtensor ***orderp, uint64_t *data_len)
{
	int rc;
	const rl_st_wtensor **order = rl_malloc_array(n ? n : 1, sizeof *order);
	if (!order)
		return RL_ESYS;
	for (size_t i = 0; i < n; i++) {
		if (!t[i].name || strcmp(t[i].name, "__metadata__") == 0) {
			free(order);
			return rl_error(RL_USAGE, "bad tensor name '%s'",
					t[i].name ? t[i].name : "(null)");
		}
		order[i] = &t[i];
	}
	qsort(order, n, sizeof *order, cmp_wtensor);
	/* duplicates: compare by name only (two dtypes would sort apart) */
	{
		const char **names = rl_malloc_array(n ? n : 1, sizeof *names);
		if (!names) {
			free(order);
			return RL_ESYS;
		}
		for (size_t i = 0; i < n; i++)
			names[i] = t[i].name;
		qsort(names, n, sizeof *names, cmp_str);
		for (size_t i = 1; i < n; i++) {
			if (strcmp(names[i - 1], names[i]) == 0) {
				rc = rl_error(RL_USAGE, "duplicate tensor name '%s'", names[i]);
				free(names);
				free(order);
				return rc;
			}
		}
		free(names);
	}
	sb_str(hb, "{\"__metadata__\":{");
	int have_format = 0;
	for (size_t i = 0; i < nmeta; i++)
		if (strcmp(meta_kv[2 * i], "format") == 0)
			have_format = 1;
	int first = 1;
	if (!have_format) {
		sb_str(hb, "\"format\":\"pt\"");
		first = 0;
	}
	for (size_t i = 0; i < nmeta; i++) {
		if (!first)
			sb_str(hb, ",");
		first = 0;
		sb_json_string(hb, meta_kv[2 * i]);
		sb_str(hb, ":");
		sb_json_string(hb, meta_kv[2 * i + 1]);
	}
	sb_str(hb, "}");
	uint64_t off = 0;
	for (size_t i = 0; i < n; i++) {
		const rl_st_wtensor *w = order[i];
		uint64_t nb;
		if ((rc = rl_st_wtensor_nbytes(w, &nb))) {
			free(order);
			return rc;
		}
		sb_str(hb, ",");
		sb_json_string(hb, w->name);
		sb_str(hb, ":{\"dtype\":\"");
		sb_str(hb, rl_dtype_name(w->dtype));
		sb_str(hb, "\",\"shape\":[");
		for (int d = 0; d < w->ndim; d++) {
			if (d)
				sb_str(hb, ",");
			sb_u64(hb, (uint64_t)w->shape[d]);
		}
		sb_str(hb, "],\"data_offsets\":[");
		sb_u64(hb, off);
		sb_str(hb, ",");
		if (nb > UINT64_MAX - off) {
			free(order);
			return rl_error(RL_USAGE, "tensors too large");
		}
		off += nb;
		sb_u64(hb, off);
		sb_str(hb, "]}");
	}
	sb_str(hb, "}");
	while (!hb->err && hb->n % 8)
		sb_str(hb, " ");
	if (hb->err) {
		free(order);
		return rl_error(RL_ESYS, "out of memory building a safetensors header");
	}
	if (hb->n > RL_ST_MAX_HEADER) {
		free(order);
		return rl_error(RL_USAGE, "safetensors header of %zu bytes exceeds the limit",
				hb->n);
	}
	*orderp = order;
	*data_len = off;
	return RL_OK;
}

/* fsync the directory holding path, so a rename is durable. */
static int sync_parent_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t len = !slash ? 0 : slash == path ? 1 : (size_t)(slash - path);
	char *dir = rl_malloc(len + 2);
	if (!dir)
		return RL_ESYS;
	if (len)
		memcpy(dir, path, len);
	else
		dir[len++] = '.';
	dir[len] = '\0';
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = RL_OK;
	if (fd < 0 || fsync(fd) != 0)
		rc = rl_error_errno(RL_ESYS, "'%s': fsync of the directory", dir);
	if (fd >= 0)
		close(fd);
	free(dir);
	return rc;
}

/* The writer keeps, per tensor, its name, where its bytes go and how many it
 * has been given (pieces come in order). */
struct rl_st_wslot {
	char *name;
	uint64_t off, nbytes, done;
};

static int cmp_wslot(const void *a, const void *b)
{
	return strcmp(((const struct rl_st_wslot *)a)->name, ((const struct rl_st_wslot *)b)->name);
}

void rl_st_writer_abort(rl_st_writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	if (w->tmp)
		unlink(w->tmp);
	for (size_t i = 0; i < w->n; i++)
		free(w->slots[i].name);
	free(w->slots);
	free(w->tmp);
	free(w->path);
	memset(w, 0, sizeof *w);
	w->fd = -1;
}

int rl_st_writer_open(rl_st_writer *w, const char *path, const rl_st_wtensor *t, size_t n,
		      const char *const *meta_kv, size_t nmeta)
{
	memset(w, 0, sizeof *w);
	w->fd = -1;
	sbuf hb = {0};
	const rl_st_wtensor **order = NULL;
	uint64_t data_len = 0;
	int rc = rl_output_check_replace(path, 0);
	if (rc)
		return rc;
	rc = build_header(t, n, meta_kv, nmeta, &hb, &order, &data_len);
	if (rc) {
		free(hb.p);
		return rc;
	}
	size_t plen = strlen(path);
	w->path = rl_strdup(path);
	w->tmp = rl_malloc(plen + 5);
	w->slots = rl_calloc(n ? n : 1, sizeof *w->slots);
	if (!w->path || !w->tmp || !w->slots) {
		rc = RL_ESYS;
		goto out;
	}
	memcpy(w->tmp, path, plen);
	memcpy(w->tmp + plen, ".tmp", 5);
	uint64_t off = 8 + hb.n;
	for (size_t i = 0; i < n; i++, w->n++) {
		struct rl_st_wslot *z = &w->slots[i];
		rl_st_wtensor_nbytes(order[i], &z->nbytes); /* validated by build_header */
		z->off = off;
		off += z->nbytes;
		if (!(z->name = rl_strdup(order[i]->name))) {
			rc = RL_ESYS;
			goto out;
		}
	}
	qsort(w->slots, n, sizeof *w->slots, cmp_wslot);
	w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (w->fd < 0) {
		rc = rl_error_errno(RL_ESYS, "'%s'", w->tmp);
		free(w->tmp); /* nothing to unlink */
		w->tmp = NULL;
		goto out;
	}
	uint8_t len8[8];
	for (int k = 0; k < 8; k++)
		len8[k] = (uint8_t)((uint64_t)hb.n >> (8 * k));
	if (!(rc = rl_write_all(w->fd, len8, 8, w->tmp)) &&
	    !(rc = rl_write_all(w->fd, hb.p, hb.n, w->tmp)) &&
	    ftruncate(w->fd, (off_t)(8 + hb.n + data_len)) != 0)
		rc = rl_error_errno(RL_ESYS, "'%s'", w->tmp);
out:
	free(hb.p);
	free(order);
	if (rc)
		rl_st_writer_abort(w);
	return rc;
}

int rl_st_writer_put(rl_st_writer *w, const char *name, const void *data, uint64_t nbytes)
{
	struct rl_st_wslot key = {.name = (char *)name};
	struct rl_st_wslot *z = bsearch(&key, w->slots, w->n, sizeof *w->slots, cmp_wslot);
	if (!z)
		return rl_error(RL_USAGE, "'%s': no tensor '%s' was declared", w->path, name);
	if (nbytes > z->nbytes - z->done)
		return rl_error(RL_USAGE, "'%s': tensor '%s' given %llu bytes more than its %llu",
				w->path, name, (unsigned long long)(nbytes - (z->nbytes - z->done)),
				(unsigned long long)z->nbytes);
	if (nbytes > SIZE_MAX)
		return rl_error(RL_ESYS, "'%s': %llu bytes at once", w->tmp,
				(unsigned long long)nbytes);
	int rc = rl_pwrite_all(w->fd, data, (size_t)nbytes, z->off + z->done, w->tmp);
	if (rc)
		return rc;
	z->done += nbytes;
	return RL_OK;
}

int rl_st_writer_close(rl_st_writer *w)
{
	int rc = RL_OK;
	for (size_t i = 0; i < w->n && !rc; i++)
		if (w->slots[i].done != w->slots[i].nbytes)
			rc = rl_error(RL_USAGE, "'%s': tensor '%s' has %llu of its %llu bytes",
				      w->path, w->slots[i].name,
				      (unsigned long long)w->slots[i].done,
				      (unsigned long long)w->slots[i].nbytes);
	if (!rc && fsync(w->fd) != 0)
		rc = rl_error_errno(RL_ESYS, "'%s': fsync", w->tmp);
	if (!rc) {
		int fd = w->fd;
		w->fd = -1;
		if (close(fd) != 0)
			rc = rl_error_errno(RL_ESYS, "'%s': close", w->tmp);
	}
	if (!rc && rename(w->tmp, w->path) != 0)
		rc = rl_error_errno(RL_ESYS, "'%s': rename to '%s'", w->tmp, w->path);
	if (!rc) {
		free(w->tmp); /* renamed: nothing to remove */
		w->tmp = NULL;
		rc = sync_parent_dir(w->path);
	}
	rl_st_writer_abort(w);
	return rc;
}

int rl_st_write(const char *path, const rl_st_wtensor *t, size_t n, const char *const *meta_kv,
		size_t nmeta)
{
	rl_st_writer w;
	int rc = rl_st_writer_open(&w, path, t, n, meta_kv, nmeta);
	for (size_t i = 0; i < n && !rc; i++) {
		uint64_t nb;
		rl_st_wtensor_nbytes(&t[i], &nb);
		if (nb && !t[i].data)
			rc = rl_error(RL_USAGE, "tensor '%s': no data", t[i].name);
		else
			rc = rl_st_writer_put(&w, t[i].name, t[i].data, nb);
	}
	if (rc) {
		rl_st_writer_abort(&w);
		return rc;
	}
	return rl_st_writer_close(&w);
}

/* A sink passes a fill's pieces on to the writer, under the tensor's name. */
struct rl_st_sink {
	rl_st_writer *w;
	const char *name;
};

int rl_st_sink_write(rl_st_sink *s, const void *buf, size_t n)
{
	return rl_st_writer_put(s->w, s->name, buf, n);
}

int rl_st_write_fill(const char *path, const rl_st_wtensor *t, size_t n, const char *const *meta_kv,
		     size_t nmeta, rl_st_fill_fn fill, void *ctx)
{
	if (!fill)
		return rl_st_write(path, t, n, meta_kv, nmeta);
	rl_st_writer w;
	int rc = rl_st_writer_open(&w, path, t, n, meta_kv, nmeta);
	for (size_t i = 0; i < n && !rc; i++) {
		rl_st_sink sink = {&w, t[i].name};
		rc = fill(ctx, &t[i], &sink);
	}
	if (rc) {
		rl_st_writer_abort(&w);
		return rc;
	}
	return rl_st_writer_close(&w);
}
