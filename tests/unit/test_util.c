/* test_util.c — lib/core/util.c: splitmix64 against its published outputs,
 * rl_write_all and rl_pwrite_all on a large buffer and on a full device, hex
 * digits, the clock. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "core/error.h"
#include "core/util.h"

/* The reference implementation's outputs (Vigna, splitmix64.c): the first for
 * state 0, and the first five for state 1234567 (the xoshiro test vector). */
static void test_splitmix64(void)
{
	uint64_t s = 0;
	CHECK(rl_splitmix64(&s) == 0xe220a8397b1dcdafull);
	CHECK(s == 0x9e3779b97f4a7c15ull);
	static const uint64_t want[5] = {6457827717110365317ull, 3203168211198807973ull,
					 9817491932198370423ull, 4593380528125082431ull,
					 16408922859458223821ull};
	s = 1234567;
	for (int i = 0; i < 5; i++) {
		uint64_t v = rl_splitmix64(&s);
		CHECKF(v == want[i], "output %d: %" PRIu64 ", want %" PRIu64, i, v, want[i]);
	}
}

static void test_write_all(void)
{
	char path[] = "/tmp/rl-test-util.XXXXXX";
	int fd = mkstemp(path);
	REQUIRE(fd >= 0);
	size_t n = (size_t)3 << 20;
	unsigned char *buf = malloc(n), *back = malloc(n + 1000);
	REQUIRE(buf && back);
	for (size_t i = 0; i < n; i++)
		buf[i] = (unsigned char)(i * 131 + (i >> 13));
	CHECK_EQ_INT(rl_write_all(fd, buf, n, path), RL_OK);
	CHECK_EQ_INT(rl_write_all(fd, buf, 0, path), RL_OK);
	CHECK(lseek(fd, 0, SEEK_END) == (off_t)n);
	CHECK(pread(fd, back, n, 0) == (ssize_t)n && memcmp(buf, back, n) == 0);
	/* pwrite at an offset: the bytes before it stay, the file grows past it */
	CHECK_EQ_INT(rl_pwrite_all(fd, buf + 5, 1000, n - 10, path), RL_OK);
	CHECK(pread(fd, back, n + 990, 0) == (ssize_t)(n + 990));
	CHECK(memcmp(back, buf, n - 10) == 0 && memcmp(back + n - 10, buf + 5, 1000) == 0);
	close(fd);
	unlink(path);

	int full = open("/dev/full", O_WRONLY);
	REQUIRE(full >= 0);
	CHECK_EQ_INT(rl_write_all(full, buf, 10, "/dev/full"), RL_ESYS);
	CHECK_STR(rl_errmsg(), "'/dev/full': write error: No space left on device");
	CHECK_EQ_INT(rl_pwrite_all(full, buf, 10, 0, "/dev/full"), RL_ESYS);
	CHECK_STR(rl_errmsg(), "'/dev/full': write error: No space left on device");
	close(full);
	CHECK_EQ_INT(rl_write_all(full, buf, 10, "closed"), RL_ESYS);
	CHECK_STR(rl_errmsg(), "'closed': write error: Bad file descriptor");
	free(buf);
	free(back);
}

static void test_hexval(void)
{
	for (int c = 0; c < 256; c++) {
		char s[2] = {(char)c, 0}, *end;
		long v = strtol(s, &end, 16);
		int want = (c != 0 && *end == 0 && c != '+' && c != '-' && c != ' ') ? (int)v : -1;
		CHECKF(rl_hexval((char)c) == want, "char %d: %d, want %d", c, rl_hexval((char)c),
		       want);
	}
}

static void test_clock(void)
{
	double a = rl_now();
	usleep(20000);
	double b = rl_now();
	CHECKF(b - a >= 0.019 && b - a < 5, "20 ms measured as %g s", b - a);
	CHECK(rl_peak_rss() > 0);
	CHECK(rl_phys_mem() > rl_peak_rss());
}

int main(void)
{
	test_splitmix64();
	test_write_all();
	test_hexval();
	test_clock();
	return check_done("test_util");
}
