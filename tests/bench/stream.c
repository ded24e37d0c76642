/* bench/stream.c — stream write+read throughput of large F32 tensors, next to
 * references measured in the same run on the same bytes: memcpy, XXH64 alone,
 * plain write(2)/read(2) to a file (fsync'ed, as rl_sw_close does) and through
 * a pipe.
 *
 *   build/bench/stream [MiB [DIR]]   (default 512 MiB through DIR=/tmp)
 *
 * Stream figures include everything a tool pays: msgpack framing, XXH64 of
 * every byte on both sides, validation of every record and chunk, fsync at
 * close for files. The payload is written straight from the caller's buffer
 * and read in place (rl_chunk.data points into the reader's buffer).
 */
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/cli.h"
#include "core/util.h"
#include "store/stream.h"

#define BLOCK (64u << 20) /* bytes per rl_sw_tensor call / plain write loop */
#define REPS 3

static uint8_t *src, *dst;
static uint64_t total;

static void die(const char *what)
{
	fprintf(stderr, "bench/stream: %s: %s\n", what, rl_errmsg());
	exit(1);
}

static void plain_write(int fd)
{
	for (uint64_t done = 0; done < total;) {
		size_t n = total - done < BLOCK ? (size_t)(total - done) : BLOCK;
		for (size_t o = 0; o < n;) {
			size_t k = n - o < RL_CHUNK_BYTES ? n - o : RL_CHUNK_BYTES;
			ssize_t w = write(fd, src + o, k);
			if (w <= 0) {
				perror("write");
				exit(1);
			}
			o += (size_t)w;
		}
		done += n;
	}
}

static uint64_t plain_read(int fd)
{
	uint64_t got = 0;
	ssize_t k;
	while ((k = read(fd, dst, RL_CHUNK_BYTES)) > 0)
		got += (uint64_t)k;
	return got;
}

static int stream_write_fd(int fd, const char *path)
{
	rl_sw *w;
	int rc = path ? rl_sw_open(&w, path, "bench", "bench")
		      : rl_sw_open_fd(&w, fd, "pipe", "bench", "bench");
	if (rc)
		return rc;
	rl_sw_header_begin(w, 0);
	int t = 0;
	for (uint64_t done = 0; done < total; t++) {
		uint64_t n = total - done < BLOCK ? total - done : BLOCK;
		int64_t shape = (int64_t)(n / 4);
		char name[32];
		snprintf(name, sizeof name, "t%d", t);
		if ((rc = rl_sw_tensor(w, name, RL_DT_F32, 1, &shape, src, n / 4))) {
			rl_sw_abort(w);
			return rc;
		}
		done += n;
	}
	return rl_sw_close(w);
}

/* Reads the stream, touching one float per chunk; returns the payload bytes. */
static uint64_t stream_read(int fd, const char *path)
{
	rl_sr *r;
	int rc = path ? rl_sr_open(&r, path, "bench") : rl_sr_open_fd(&r, fd, "pipe", "bench");
	if (rc)
		die("open");
	const msgpack_object *rec;
	uint64_t got = 0;
	volatile float sink = 0;
	while ((rc = rl_sr_next(r, &rec)) == 0 && rec) {
		const rl_chunk *c = rl_sr_chunk(r);
		float f;
		memcpy(&f, c->data, 4);
		sink += f;
		got += c->count * 4;
	}
	if (rc)
		die("read");
	rl_sr_close(r);
	(void)sink;
	return got;
}

struct job {
	int fd;
	int stream;
	int rc;
};

static void *writer(void *arg)
{
	struct job *j = arg;
	if (j->stream)
		j->rc = stream_write_fd(j->fd, NULL);
	else
		plain_write(j->fd);
	close(j->fd);
	return NULL;
}

static double gbs(double secs)
{
	return (double)total / secs / 1e9;
}

int main(int argc, char **argv)
{
	uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 512;
	const char *dir = argc > 2 ? argv[2] : "/tmp";
	total = (mib << 20) & ~(uint64_t)3;
	src = malloc(BLOCK);
	dst = malloc(BLOCK);
	if (!src || !dst || total == 0)
		return 1;
	for (size_t i = 0; i < BLOCK / 4; i++) {
		float f = (float)i * 0.001f;
		memcpy(src + 4 * i, &f, 4);
	}
	memset(dst, 1, BLOCK);
	char path[4096], ppath[4096];
	snprintf(path, sizeof path, "%s/rl-bench-stream.%d.rls", dir, (int)getpid());
	snprintf(ppath, sizeof ppath, "%s/rl-bench-plain.%d.bin", dir, (int)getpid());
	printf("bench/stream: %llu MiB of F32 in %u MiB chunks, files in %s\n",
	       (unsigned long long)mib, RL_CHUNK_BYTES >> 20, dir);

	/* each figure: the best of REPS runs (the machine is shared) */
	double t_memcpy = 1e30, t_xxh = 1e30, t_pw = 1e30, t_pr = 1e30, t_sw = 1e30, t_sr = 1e30,
	       t_pipe[2] = {1e30, 1e30};
	uint64_t h = 0;
	for (int rep = 0; rep < REPS; rep++) {
		double t0 = rl_now();
		for (uint64_t done = 0; done < total; done += BLOCK)
			memcpy(dst, src, total - done < BLOCK ? (size_t)(total - done) : BLOCK);
		t_memcpy = fmin(t_memcpy, rl_now() - t0);

		t0 = rl_now();
		for (uint64_t done = 0; done < total; done += BLOCK)
			h += XXH64(src, total - done < BLOCK ? (size_t)(total - done) : BLOCK,
				   done);
		t_xxh = fmin(t_xxh, rl_now() - t0);

		/* files: write (+fsync), then read back (page cache) */
		t0 = rl_now();
		int fd = open(ppath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		plain_write(fd);
		fsync(fd);
		close(fd);
		t_pw = fmin(t_pw, rl_now() - t0);
		t0 = rl_now();
		fd = open(ppath, O_RDONLY);
		uint64_t got = plain_read(fd);
		close(fd);
		t_pr = fmin(t_pr, rl_now() - t0);
		unlink(ppath);
		if (got != total)
			return 1;

		t0 = rl_now();
		if (stream_write_fd(-1, path))
			die("write");
		t_sw = fmin(t_sw, rl_now() - t0);
		t0 = rl_now();
		got = stream_read(-1, path);
		t_sr = fmin(t_sr, rl_now() - t0);
		unlink(path);
		if (got != total)
			return 1;

		/* pipes: a writer thread, the reader here; time to the last byte */
		for (int s = 0; s < 2; s++) {
			int fds[2];
			if (pipe(fds))
				return 1;
			struct job j = {fds[1], s, 0};
			pthread_t th;
			t0 = rl_now();
			pthread_create(&th, NULL, writer, &j);
			got = s ? stream_read(fds[0], NULL) : plain_read(fds[0]);
			pthread_join(th, NULL);
			t_pipe[s] = fmin(t_pipe[s], rl_now() - t0);
			close(fds[0]);
			if (got != total || j.rc)
				return 1;
		}
	}

	printf("%-34s %8s %10s %10s\n", "(speed relative to)", "GB/s", "memcpy", "plain");
	printf("%-34s %8.2f %10.2f\n", "memcpy", gbs(t_memcpy), 1.0);
	printf("%-34s %8.2f %10.2f\n", "XXH64 (checksum alone)", gbs(t_xxh), t_memcpy / t_xxh);
	printf("%-34s %8.2f %10.2f\n", "plain write+fsync (file)", gbs(t_pw), t_memcpy / t_pw);
	printf("%-34s %8.2f %10.2f %10.2f\n", "stream write+fsync (file)", gbs(t_sw),
	       t_memcpy / t_sw, t_pw / t_sw);
	printf("%-34s %8.2f %10.2f\n", "plain read (file, cached)", gbs(t_pr), t_memcpy / t_pr);
	printf("%-34s %8.2f %10.2f %10.2f\n", "stream read (file, cached)", gbs(t_sr),
	       t_memcpy / t_sr, t_pr / t_sr);
	printf("%-34s %8.2f %10.2f\n", "plain write|read (pipe)", gbs(t_pipe[0]),
	       t_memcpy / t_pipe[0]);
	printf("%-34s %8.2f %10.2f %10.2f\n", "stream write|read (pipe)", gbs(t_pipe[1]),
	       t_memcpy / t_pipe[1], t_pipe[0] / t_pipe[1]);
	printf("(best of %d runs; xxh %016llx)\n", REPS, (unsigned long long)h);
	free(src);
	free(dst);
	return 0;
}
