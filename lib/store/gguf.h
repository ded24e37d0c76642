/* gguf.h — read GGUF models (llama.cpp's format): validated, memory-mapped,
 * split files read as one model, tensors dequantized to f32 on demand.
 *
 * Format (little-endian): "GGUF", u32 version (2 or 3), u64 tensor count,
 * u64 metadata count; then the metadata, each a key (u64 length + UTF-8
 * bytes), a u32 value type and the value; then the tensor infos, each a name
 * (u64 length + bytes), u32 n_dims, n_dims x u64 ne (ne[0] varies fastest),
 * u32 ggml type, u64 offset (relative to the data section). The data section
 * starts at the end of the tensor infos rounded up to general.alignment (a u32
 * power of two; 32 when absent), and every tensor offset is a multiple of it.
 *
 * rl_gguf_open() validates the whole header before anything is used, at least
 * as strictly as llama.cpp's gguf reader and this suite's safetensors reader:
 * magic (a Git LFS pointer and a big-endian GGUF get their own messages),
 * version 2 or 3 (v1's 32-bit counts refused by name); every length, count and
 * array inside the file (a count larger than the remaining bytes could hold is
 * refused before anything is allocated); value types known; keys and tensor
 * names non-empty UTF-8 without NUL, unique; arrays nested at most
 * RL_GGUF_MAX_NESTING deep; general.alignment a u32 power of two; at most
 * RL_GGUF_MAX_DIMS dims, each >= 1, the element count and byte size fitting
 * 63 bits without overflow; a known ggml type whose block size divides ne[0];
 * offsets aligned and, in offset order, each tensor starting where the
 * previous one ends rounded up to the alignment (no overlaps, no gaps but
 * padding), the first at 0, the last ending inside the file, and nothing after
 * it but padding. Every failure is RL_EDATA (RL_ESYS for I/O) with a one-line
 * message naming the file and the problem. Files are mapped read-only; the
 * library never writes them.
 *
 * Split models (gguf-split's NAME-00001-of-00003.gguf): a part whose
 * split.count is N > 1 must be named PREFIX-%05d-of-%05d.gguf with the same N;
 * opening any part opens all N. Part i (1-based) must hold split.no = i - 1 and
 * split.count = N, every part the same split.tensors.count, equal to the number
 * of tensors across the parts; tensor names are unique across parts. The
 * model's metadata is part 1's (gguf-split writes it there); the other parts'
 * metadata is validated but not exposed through the rl_gguf getters.
 *
 * Memory: the headers' decoded form (kv table, tensor table, names) is held;
 * tensor bytes stay in the maps. rl_gguf_release() drops a tensor's pages after
 * use, so streaming a model tensor by tensor keeps the resident set bounded.
 */
#ifndef RL_GGUF_H
#define RL_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "store/gguf_quant.h"

#define RL_GGUF_MAX_DIMS 4	      /* ggml's GGML_MAX_DIMS */
#define RL_GGUF_MAX_NESTING 8	      /* arrays of arrays of ... (gguf-py writes them) */
#define RL_GGUF_DEFAULT_ALIGNMENT 32u /* when general.alignment is absent */

/* Metadata value types (gguf's gguf_type), numbered as in the file. */
typedef enum rl_gguf_vtype {
	RL_GGUF_U8 = 0,
	RL_GGUF_I8 = 1,
	RL_GGUF_U16 = 2,
	RL_GGUF_I16 = 3,
	RL_GGUF_U32 = 4,
	RL_GGUF_I32 = 5,
	RL_GGUF_F32 = 6,
	RL_GGUF_BOOL = 7,
	RL_GGUF_STRING = 8,
	RL_GGUF_ARRAY = 9,
	RL_GGUF_U64 = 10,
	RL_GGUF_I64 = 11,
	RL_GGUF_F64 = 12,
	RL_GGUF_VTYPE_COUNT
} rl_gguf_vtype;

/* Lowercase name of a value type for messages ("u32", "string", "array"). */
const char *rl_gguf_vtype_name(rl_gguf_vtype t);

/* A GGUF string: bytes in the map, not NUL-terminated, may hold any byte
 * (keys and tensor names are checked UTF-8 without NUL; string values are
 * passed on as stored). */
typedef struct rl_gguf_str {
	const char *s;
	uint64_t len;
} rl_gguf_str;

/* A decoded metadata value (a kv's value, or an element of an array). */
typedef struct rl_gguf_val {
	rl_gguf_vtype type;
	union {
		uint64_t u; /* U8, U16, U32, U64; BOOL as 0 or 1 */
		int64_t i;  /* I8, I16, I32, I64 */
		double f;   /* F32 (exactly), F64 */
		rl_gguf_str s;
		struct {
			rl_gguf_vtype type; /* element type (ARRAY for nested arrays) */
			uint64_t count;
			const uint8_t *elems; /* the first element's encoding in the map */
		} arr;
	} as;
} rl_gguf_val;

/* Array iteration (arrays of strings or arrays are variable-length, so they are
 * walked): start with *cursor = arr->as.arr.elems; each call decodes the next
 * element into *out and advances *cursor. The caller calls it at most
 * arr->as.arr.count times; the file was validated, so it cannot fail. */
void rl_gguf_array_next(const rl_gguf_val *arr, const uint8_t **cursor, rl_gguf_val *out);

typedef struct rl_gguf_kv {
	char *key; /* NUL-terminated copy */
	rl_gguf_val val;
} rl_gguf_kv;

typedef struct rl_gguf_tensor {
	char *name;		       /* NUL-terminated copy */
	const char *path;	       /* the file (split part) holding it, for messages */
	uint32_t type;		       /* ggml type id (rl_ggml_type) */
	int ndim;		       /* 0..RL_GGUF_MAX_DIMS */
	uint64_t ne[RL_GGUF_MAX_DIMS]; /* GGUF order: ne[0] varies fastest; 1 past ndim */
	uint64_t numel;
	uint64_t nbytes;     /* numel / block size x type size */
	uint64_t offset;     /* absolute byte offset in its file */
	const uint8_t *data; /* into the read-only map */
} rl_gguf_tensor;

/* One GGUF file (an unsplit model, or one part of a split one). */
typedef struct rl_gguf_file {
	char *path;
	int fd;
	const uint8_t *map; /* whole file, read-only */
	uint64_t size;
	uint32_t version;   /* 2 or 3 */
	uint32_t alignment; /* general.alignment or 32 */
	uint64_t data_start;
	rl_gguf_kv *kv; /* in file order */
	size_t nkv;
	rl_gguf_tensor *tensors; /* in tensor-info (file) order */
	size_t ntensors;
} rl_gguf_file;

/* A model: one file or all parts of a split one. */
typedef struct rl_gguf {
	rl_gguf_file *files; /* split parts in order; one for an unsplit model */
	size_t nfiles;
	const rl_gguf_kv *kv; /* the model's metadata: files[0]'s, in file order */
	size_t nkv;
	rl_gguf_tensor **tensors; /* every part's, part by part, in file order */
	size_t ntensors;
	rl_gguf_tensor **by_name; /* sorted by name (strcmp), for lookups */
} rl_gguf;

/* Opens, maps and validates path (any part of a split model opens them all).
 * On failure g is left closed (rl_gguf_close on it is harmless). */
int rl_gguf_open(rl_gguf *g, const char *path);
void rl_gguf_close(rl_gguf *g);

/* Validates one file image buf[0, len) (the whole file), filling f's kv and
 * tensor tables (f->path is used in messages and must be set by the caller;
 * tensor data pointers point into buf). No split checks: those need the other
 * parts. The fuzz target's entry point. */
int rl_gguf_parse(rl_gguf_file *f, const uint8_t *buf, size_t len);
/* Frees what rl_gguf_parse allocated (not f->path). */
void rl_gguf_file_free(rl_gguf_file *f);

/* Tensor lookup by name (NULL if absent). */
const rl_gguf_tensor *rl_gguf_find(const rl_gguf *g, const char *name);

/* Metadata lookup by key in the model's metadata (NULL if absent). */
const rl_gguf_val *rl_gguf_get(const rl_gguf *g, const char *key);

/* Typed getters. Each returns RL_OK and fills *out; RL_NO with the message
 * "'FILE': no key 'KEY'" when the key is absent (callers with a default test
 * for RL_NO); RL_EDATA naming the file, the key, the type found and the type
 * wanted for any other value. Integer getters take any integer type whose
 * value fits (so u32 accepts a u8 or an i64 of 7; not a bool or a float);
 * float getters take F32 and F64 (F64 rounded to nearest); arrays must hold
 * elements of the named kind (an array of arrays is a type error). Strings and
 * string arrays point into the map; *out arrays are malloc'ed, the caller
 * frees them (an empty array gives a non-NULL *out and *n = 0). */
int rl_gguf_get_str(const rl_gguf *g, const char *key, rl_gguf_str *out);
/* A NUL-terminated malloc'ed copy; a string holding a NUL byte is RL_EDATA. */
int rl_gguf_get_cstr(const rl_gguf *g, const char *key, char **out);
int rl_gguf_get_u32(const rl_gguf *g, const char *key, uint32_t *out);
int rl_gguf_get_u64(const rl_gguf *g, const char *key, uint64_t *out);
int rl_gguf_get_i64(const rl_gguf *g, const char *key, int64_t *out);
int rl_gguf_get_f32(const rl_gguf *g, const char *key, float *out);
int rl_gguf_get_bool(const rl_gguf *g, const char *key, int *out);
int rl_gguf_get_str_array(const rl_gguf *g, const char *key, rl_gguf_str **out, size_t *n);
int rl_gguf_get_int_array(const rl_gguf *g, const char *key, int64_t **out, size_t *n);
int rl_gguf_get_float_array(const rl_gguf *g, const char *key, float **out, size_t *n);

/* Rows of t: numel / ne[0] (a row is ne[0] elements, whole blocks). */
uint64_t rl_gguf_rows(const rl_gguf_tensor *t);

/* Dequantizes rows [row0, row0 + nrows) of t to f32 into dst (nrows x ne[0]
 * floats). RL_EDATA naming the file, the tensor and its type when the type
 * cannot be dequantized (see gguf_quant.h's list); RL_USAGE for rows outside
 * the tensor. Reads only those rows' bytes; thread-safe. */
int rl_gguf_dequant_rows(const rl_gguf_tensor *t, uint64_t row0, uint64_t nrows, float *dst);
/* The whole tensor (numel floats). */
int rl_gguf_dequant(const rl_gguf_tensor *t, float *dst);

/* Drops t's pages from this process's resident set (they are re-read from
 * the page cache or the disk if used again). */
void rl_gguf_release(const rl_gguf_tensor *t);

#endif
