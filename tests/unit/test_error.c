/* test_error.c — the error channel formats its own message into itself
 * safely: rl_errmsg() given as an argument to rl_error, rl_error_errno,
 * rl_error_prefix or rl_error_suffix (the buffer is both the source and the
 * destination) comes out as if it had been copied first, at every length up to
 * the buffer's, truncated but never garbled. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "core/error.h"

/* A message of n bytes that shows any shift or overwrite: "0123456789abc...". */
static void pattern(char *buf, size_t n)
{
	static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
	for (size_t i = 0; i < n; i++)
		buf[i] = digits[i % (sizeof digits - 1)];
	buf[n] = '\0';
}

static void self_format(size_t n)
{
	char msg[1200], want[4096];
	pattern(msg, n);
	rl_error(RL_EDATA, "%s", msg);

	/* rl_error with the message in the middle, and twice */
	snprintf(want, sizeof want, "before [%s] after", msg);
	rl_error(RL_EDATA, "before [%s] after", rl_errmsg());
	CHECKF(strncmp(rl_errmsg(), want, strlen(rl_errmsg())) == 0 && rl_errmsg()[0],
	       "n=%zu rl_error: '%.60s...'", n, rl_errmsg());
	rl_error(RL_EDATA, "%s", msg);
	snprintf(want, sizeof want, "%s|%s", msg, msg);
	rl_error(RL_EDATA, "%s|%s", rl_errmsg(), rl_errmsg());
	CHECKF(strncmp(rl_errmsg(), want, strlen(rl_errmsg())) == 0, "n=%zu twice: '%.60s...'", n,
	       rl_errmsg());

	/* rl_error_errno appends strerror after its own text */
	rl_error(RL_EDATA, "%s", msg);
	errno = ENOSPC;
	snprintf(want, sizeof want, "x %s: %s", msg, strerror(ENOSPC));
	rl_error_errno(RL_ESYS, "x %s", rl_errmsg());
	CHECKF(strncmp(rl_errmsg(), want, strlen(rl_errmsg())) == 0, "n=%zu errno: '%.60s...'", n,
	       rl_errmsg());

	/* prefix and suffix given the current message as an argument too */
	rl_error(RL_EDATA, "%s", msg);
	snprintf(want, sizeof want, "<%s>: %s", msg, msg);
	rl_error_prefix(RL_EDATA, "<%s>", rl_errmsg());
	CHECKF(strncmp(rl_errmsg(), want, strlen(rl_errmsg())) == 0, "n=%zu prefix: '%.60s...'", n,
	       rl_errmsg());
	rl_error(RL_EDATA, "%s", msg);
	snprintf(want, sizeof want, "%s%s(%s)", msg, n ? " " : "", msg);
	rl_error_suffix(RL_EDATA, "(%s)", rl_errmsg());
	CHECKF(strncmp(rl_errmsg(), want, strlen(rl_errmsg())) == 0, "n=%zu suffix: '%.60s...'", n,
	       rl_errmsg());
}

int main(void)
{
	/* what the callers mean: context in front, the outcome behind */
	rl_error(RL_ESYS, "'m/.realign/journal': write: No space left on device");
	CHECK_EQ_INT(rl_error_suffix(RL_ESYS, "(the model was not changed)"), RL_ESYS);
	CHECK_STR(rl_errmsg(), "'m/.realign/journal': write: No space left on device (the model "
			       "was not changed)");
	CHECK_EQ_INT(rl_error_prefix(RL_EDATA, "cannot recover"), RL_EDATA);
	CHECK_STR(rl_errmsg(), "cannot recover: 'm/.realign/journal': write: No space left on "
			       "device (the model was not changed)");
	rl_error_clear();
	rl_error_suffix(RL_EDATA, "(alone)");
	CHECK_STR(rl_errmsg(), "(alone)");
	rl_error_clear();
	rl_error_prefix(RL_EDATA, "alone");
	CHECK_STR(rl_errmsg(), "alone");

	/* every length, the buffer's limit (1023 bytes) included */
	for (size_t n = 0; n < 1100; n += n < 40 ? 1 : 37)
		self_format(n);
	return check_done("test_error");
}
