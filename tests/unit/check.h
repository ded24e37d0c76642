/* check.h — minimal assertions for unit tests (tests/unit/test_*.c).
 *
 * A test binary runs its checks, prints the first failures with file:line and
 * exits 1 if any failed (never "prints but returns 0"). Fixture paths come from
 * $RL_FIXTURES (set by tests/run.sh; defaults to tests/fixtures).
 */
#ifndef RL_CHECK_H
#define RL_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures;
static int check_count;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		check_count++;                                                                     \
		if (!(cond)) {                                                                     \
			check_failures++;                                                          \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
		}                                                                                  \
	} while (0)

#define CHECKF(cond, ...)                                                                          \
	do {                                                                                       \
		check_count++;                                                                     \
		if (!(cond)) {                                                                     \
			check_failures++;                                                          \
			fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);   \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
		}                                                                                  \
	} while (0)

/* Fatal: a failed precondition makes the rest meaningless. */
#define REQUIRE(cond)                                                                              \
	do {                                                                                       \
		check_count++;                                                                     \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: required: %s (%s)\n", __FILE__, __LINE__, #cond,   \
				rl_check_errmsg());                                                \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
	do {                                                                                       \
		long long a_ = (long long)(a), b_ = (long long)(b);                                \
		CHECKF(a_ == b_, "%lld != %lld", a_, b_);                                          \
	} while (0)

#define CHECK_STR(a, b)                                                                            \
	do {                                                                                       \
		const char *a_ = (a), *b_ = (b);                                                   \
		CHECKF(a_ &&b_ &&strcmp(a_, b_) == 0, "'%s' != '%s'", a_ ? a_ : "(null)",          \
		       b_ ? b_ : "(null)");                                                        \
	} while (0)

/* |got - want| <= atol + rtol * |want| elementwise; reports the first mismatch,
 * the worst error and returns 1 when all match. NaN must match NaN. */
static inline int check_close(const char *what, const float *got, const float *want, size_t n,
			      double atol, double rtol)
{
	size_t bad = 0, first = 0;
	double worst = 0;
	for (size_t i = 0; i < n; i++) {
		double g = got[i], w = want[i], d = fabs(g - w);
		int ok = (isnan(g) && isnan(w)) || d <= atol + rtol * fabs(w);
		if (!ok && bad++ == 0)
			first = i;
		if (d > worst && !isnan(d))
			worst = d;
	}
	check_count++;
	if (bad) {
		check_failures++;
		fprintf(stderr,
			"%s: %zu of %zu elements differ (atol %g rtol %g); first at %zu: got %.9g "
			"want %.9g; worst abs diff %g\n",
			what, bad, n, atol, rtol, first, (double)got[first], (double)want[first],
			worst);
	}
	return bad == 0;
}

static inline const char *check_fixture(const char *rel)
{
	static char buf[4096];
	const char *dir = getenv("RL_FIXTURES");
	snprintf(buf, sizeof buf, "%s/%s", dir ? dir : "tests/fixtures", rel);
	return buf;
}

/* Defined by each test via error.h. */
const char *rl_errmsg(void);
static inline const char *rl_check_errmsg(void)
{
	return rl_errmsg();
}

static inline int check_done(const char *name)
{
	if (check_failures) {
		fprintf(stderr, "%s: %d of %d checks failed\n", name, check_failures, check_count);
		return 1;
	}
	printf("%s: %d checks passed\n", name, check_count);
	return 0;
}

/* ||got - want|| / ||want|| in double (||got - want|| when want is 0). */
static inline double check_rel_l2(const float *got, const float *want, size_t n)
{
	double d = 0, w = 0;
	for (size_t i = 0; i < n; i++) {
		d += ((double)got[i] - want[i]) * ((double)got[i] - want[i]);
		w += (double)want[i] * want[i];
	}
	return w > 0 ? sqrt(d / w) : sqrt(d);
}

#endif
