/* util.h — small helpers several modules need, in one place: a monotonic
 * clock, the process's and machine's memory, a write that finishes, the
 * splitmix64 generator and hex digits. */
#ifndef RL_UTIL_H
#define RL_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic seconds (CLOCK_MONOTONIC): for durations, not dates. */
double rl_now(void);

/* Peak resident set size of this process in bytes (from getrusage). */
uint64_t rl_peak_rss(void);

/* Total physical memory in bytes (0 if unknown). */
uint64_t rl_phys_mem(void);

/* Writes all n bytes to fd, resuming after short writes and EINTR. On failure
 * records "'what': write error: <strerror>" and returns RL_ESYS. */
int rl_write_all(int fd, const void *buf, size_t n, const char *what);
/* The same with pwrite(2) at file offset off. */
int rl_pwrite_all(int fd, const void *buf, size_t n, uint64_t off, const char *what);

/* splitmix64 (Steele, Lea and Flood; Vigna's constants): advances *state and
 * returns the next number, the same stream on every machine. Inline: it sits
 * in shuffles and per-element loops. */
static inline uint64_t rl_splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The value of the hexadecimal digit c (either case), or -1. */
int rl_hexval(char c);

#endif
