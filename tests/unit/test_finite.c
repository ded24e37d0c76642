/* test_finite.c — rl_f32_nonfinite against isfinite(): every position of a
 * NaN (quiet, signalling, negative), +Inf or -Inf in arrays of every length
 * up to 70 (the 16-wide steps and their tails), with the values around it
 * that must pass (-0, subnormals, FLT_MAX), and unaligned starts. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "core/error.h"
#include "core/finite.h"

static float from_bits(uint32_t u)
{
	float f;
	memcpy(&f, &u, 4);
	return f;
}

static size_t reference(const float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(x[i]))
			return i;
	return n;
}

int main(void)
{
	const float bad[] = {NAN,      -NAN,	  from_bits(0x7F800001u) /* signalling */,
			     INFINITY, -INFINITY, from_bits(0xFFFFFFFFu)};
	const float fine[] = {0.0f,    -0.0f,	1.0f,	      -FLT_MAX,
			      FLT_MAX, FLT_MIN, from_bits(1u) /* the smallest subnormal */};
	float buf[80];
	int mismatches = 0, runs = 0;
	for (size_t off = 0; off < 3; off++) /* unaligned starts */
		for (size_t n = 0; n <= 70; n++) {
			float *x = buf + off;
			for (size_t i = 0; i < n; i++)
				x[i] = fine[i % (sizeof fine / sizeof *fine)];
			runs++;
			mismatches += rl_f32_nonfinite(x, n) != n;
			for (size_t at = 0; at < n; at++)
				for (size_t b = 0; b < sizeof bad / sizeof *bad; b++) {
					float keep = x[at];
					x[at] = bad[b];
					runs++;
					mismatches += rl_f32_nonfinite(x, n) != at;
					/* a second one later: the first is reported */
					if (at + 5 < n) {
						float keep2 = x[at + 5];
						x[at + 5] = NAN;
						mismatches +=
							rl_f32_nonfinite(x, n) != reference(x, n);
						x[at + 5] = keep2;
					}
					x[at] = keep;
				}
		}
	CHECKF(mismatches == 0, "%d of %d scans disagree with isfinite()", mismatches, runs);
	return check_done("test_finite");
}
