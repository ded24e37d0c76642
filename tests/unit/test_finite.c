/* test_finite.c — rl_f32_nonfinite against isfinite(): every position of a
 * NaN (quiet, signalling, negative), +Inf or -Inf in arrays of every length
 * up to 70 (the 16-wide steps and their tails), with the values around it
 * that must pass (-0, subnormals, FLT_MAX), and unaligned starts;
 * rl_bf16_nonfinite the same on the bf16 halves of such values, every length
 * up to 140 (its 64-element blocks), at odd byte offsets. */
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

	/* bf16: the upper halves, widened back for the reference */
	unsigned char raw[2 * 150 + 1];
	float wide[150];
	mismatches = runs = 0;
	for (size_t n = 0; n <= 140; n++)
		for (size_t at = 0; at <= n; at++) {
			unsigned char *x = raw + 1; /* odd: no alignment assumed */
			for (size_t i = 0; i < n; i++) {
				float v = at < n && i == at
						  ? bad[(n + at) % (sizeof bad / sizeof *bad)]
						  : fine[i % (sizeof fine / sizeof *fine)];
				uint32_t u;
				memcpy(&u, &v, 4);
				u &= 0xFFFF0000u;
				x[2 * i] = (unsigned char)(u >> 16);
				x[2 * i + 1] = (unsigned char)(u >> 24);
				wide[i] = from_bits(u);
			}
			runs++;
			mismatches += rl_bf16_nonfinite(x, n) != reference(wide, n);
		}
	CHECKF(mismatches == 0, "bf16: %d of %d scans disagree with isfinite()", mismatches, runs);
	return check_done("test_finite");
}
