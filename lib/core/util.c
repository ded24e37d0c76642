/* util.c — see util.h. */
#include <errno.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "core/util.h"

double rl_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

uint64_t rl_peak_rss(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (uint64_t)ru.ru_maxrss * 1024u;
}

uint64_t rl_phys_mem(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
	if (pages <= 0 || size <= 0)
		return 0;
	return (uint64_t)pages * (uint64_t)size;
}

int rl_write_all(int fd, const void *buf, size_t n, const char *what)
{
	const char *p = buf;
	while (n > 0) {
		/* Linux writes at most about 2 GiB a call; ask for 1 GiB at a time */
		size_t chunk = n > (1u << 30) ? (1u << 30) : n;
		ssize_t w = write(fd, p, chunk);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0) /* no progress and no error: do not spin */
				errno = EIO;
			return rl_error_errno(RL_ESYS, "'%s': write error", what);
		}
		p += w;
		n -= (size_t)w;
	}
	return RL_OK;
}

int rl_pwrite_all(int fd, const void *buf, size_t n, uint64_t off, const char *what)
{
	const char *p = buf;
	while (n > 0) {
		size_t chunk = n > (1u << 30) ? (1u << 30) : n;
		ssize_t w = pwrite(fd, p, chunk, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return rl_error_errno(RL_ESYS, "'%s': write error", what);
		}
		p += w;
		off += (uint64_t)w;
		n -= (size_t)w;
	}
	return RL_OK;
}

int rl_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}
