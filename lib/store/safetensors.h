/* safetensors.h — read (validated, memory-mapped) and write safetensors files.
 *
 * Format: 8-byte little-endian header length N, N bytes of UTF-8 JSON object
 * {"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, ...,
 *  "__metadata__": {"k": "v"}}, then the data section. Offsets are relative to
 * the data section.
 *
 * rl_st_open() validates the whole header before anything is used, at least as
 * strictly as the official library: header length <= 100 MB and within the
 * file; UTF-8 JSON object; __metadata__ string->string only; known dtype;
 * shape product x element size == byte range, without overflow; ranges sorted,
 * contiguous, no gaps or overlaps, covering the data section exactly to the end
 * of the file; duplicate tensor names rejected. A Git LFS pointer file gets its
 * own message. Stricter than the official library: duplicate keys anywhere in
 * the header, NUL characters in names, more than RL_MAX_DIMS dimensions and
 * dtypes outside rl_dtype (F4, F6_*, F8_E8M0, C64, ...) are refused too;
 * "__metadata__": null is accepted as no metadata, as the official library does. Every failure is RL_EDATA (RL_ESYS for I/O) with a message
 * naming the file.
 *
 * The file is mapped read-only (MAP_SHARED, so writes made with rl_st_pwrite
 * through the descriptor are visible through the map). Nothing ever truncates
 * or rewrites a mapped file: in-place changes go through pwrite.
 */
#ifndef RL_SAFETENSORS_H
#define RL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"

#define RL_ST_MAX_HEADER (100u * 1000u * 1000u)
#define RL_MAX_DIMS 8

typedef struct rl_st_tensor {
	char *name;
	rl_dtype dtype;
	int ndim;
	int64_t shape[RL_MAX_DIMS];
	uint64_t numel;
	uint64_t offset; /* absolute byte offset of the data in the file */
	uint64_t nbytes;
} rl_st_tensor;

typedef struct rl_st_file {
	char *path;
	int fd;
	int writable;
	const uint8_t *map; /* whole file, read-only */
	uint64_t size;	    /* file size */
	uint64_t data_start;
	rl_st_tensor *tensors; /* in data order (ascending offset) */
	size_t ntensors;
	char **meta_keys, **meta_vals; /* __metadata__, in file order */
	size_t nmeta;
	rl_st_tensor **by_name; /* the tensors sorted by name (strcmp), for lookups */
} rl_st_file;

enum { RL_ST_READ = 0, RL_ST_WRITE = 1 };

/* Opens, maps and validates path. mode RL_ST_WRITE opens the descriptor
 * read-write for rl_st_pwrite (the map stays read-only). */
int rl_st_open(rl_st_file *f, const char *path, int mode);
void rl_st_close(rl_st_file *f);

/* Validates a header given as bytes (the 8-byte length prefix included) for a
 * file of file_size bytes, filling f's tensors and metadata (f->path is used in
 * messages and must be set by the caller). The fuzz target's entry point. */
int rl_st_parse(rl_st_file *f, const uint8_t *buf, size_t len, uint64_t file_size);
/* Frees what rl_st_parse allocated. */
void rl_st_free(rl_st_file *f);

/* Tensor lookup by name (NULL if absent). */
const rl_st_tensor *rl_st_find(const rl_st_file *f, const char *name);

/* Writes nbytes at absolute file offset off (only in a file opened RL_ST_WRITE);
 * refuses a range outside the data section. */
int rl_st_pwrite(rl_st_file *f, uint64_t off, const void *buf, size_t nbytes);
/* Reads nbytes at absolute file offset off through the descriptor (what the
 * file holds now, without faulting pages into the map); same range check. */
int rl_st_pread(const rl_st_file *f, uint64_t off, void *buf, size_t nbytes);
/* fsync the file. */
int rl_st_sync(rl_st_file *f);

/* Writing new files. Tensors are packed the way the official library packs
 * them (by dtype alignment, largest first, then by name); the header carries
 * __metadata__ {"format": "pt"} plus any extra pairs and is padded with spaces
 * to a multiple of 8. The file is written to "<path>.tmp", fsync'ed and renamed,
 * so a crash never leaves a half-written file under the final name.
 * meta_kv holds nmeta key/value pairs as 2*nmeta strings (k0, v0, k1, v1, ...),
 * written after "format" (a "format" pair replaces the default "pt"). With no
 * extra pairs the bytes equal the official library's save_file(...,
 * metadata={"format": "pt"}) for the same tensors (it orders several metadata
 * pairs by hash, so with extras only loadability is shared). Duplicate names
 * and the name "__metadata__" are refused (RL_USAGE). */
typedef struct rl_st_wtensor {
	const char *name;
	rl_dtype dtype;
	int ndim;
	int64_t shape[RL_MAX_DIMS];
	const void *data; /* numel x dtype size bytes, in the file dtype */
} rl_st_wtensor;

int rl_st_write(const char *path, const rl_st_wtensor *t, size_t n, const char *const *meta_kv,
		size_t nmeta);

/* The same file written one tensor (or piece of one) at a time, in bounded
 * memory: rl_st_writer_open takes every tensor's declaration (data unused),
 * writes the header to "<path>.tmp" and sizes the file; rl_st_writer_put
 * appends the next nbytes of a tensor's data (pieces of one tensor in order,
 * tensors in any order); rl_st_writer_close checks that every tensor got all
 * its bytes, fsyncs and renames to path (and frees w, also on failure);
 * rl_st_writer_abort removes the temporary file. A put of more bytes than a
 * tensor has, a name not declared or a short tensor at close is RL_USAGE. */
typedef struct rl_st_writer {
	char *path, *tmp;
	int fd;
	struct rl_st_wslot *slots; /* by name */
	size_t n;
} rl_st_writer;
int rl_st_writer_open(rl_st_writer *w, const char *path, const rl_st_wtensor *t, size_t n,
		      const char *const *meta_kv, size_t nmeta);
int rl_st_writer_put(rl_st_writer *w, const char *name, const void *data, uint64_t nbytes);
int rl_st_writer_close(rl_st_writer *w);
void rl_st_writer_abort(rl_st_writer *w);

/* rl_st_write with each tensor's data produced by fill(ctx, &t[i], sink) in
 * the order of t (t[i].data unused; callers may keep their own pointer
 * there), passed on in as many rl_st_sink_write calls as it likes: a file of
 * any size written holding one piece of one tensor at a time. Exactly the
 * tensor's byte size must arrive (more or fewer is RL_USAGE); a fill error
 * stops the write and removes the temporary file. fill == NULL: rl_st_write. */
typedef struct rl_st_sink rl_st_sink;
typedef int (*rl_st_fill_fn)(void *ctx, const rl_st_wtensor *t, rl_st_sink *sink);
int rl_st_sink_write(rl_st_sink *s, const void *buf, size_t n);
int rl_st_write_fill(const char *path, const rl_st_wtensor *t, size_t n, const char *const *meta_kv,
		     size_t nmeta, rl_st_fill_fn fill, void *ctx);

/* Bytes of t's data (numel x dtype size); RL_USAGE on a negative dimension,
 * a bad dtype or rank, or overflow. */
int rl_st_wtensor_nbytes(const rl_st_wtensor *t, uint64_t *nbytes);

#endif
