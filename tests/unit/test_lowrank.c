/* test_lowrank.c — the LoRA branch's thin products against double-precision
 * loops: both kernels (AVX-512 where the CPU has it, and the portable one),
 * ranks 1 to 17 (the 8-row blocks, their remainders), widths that are not a
 * multiple of 16 (masked tails), leading dimensions wider than the rows, one
 * row; results that do not depend on the thread count (rows or columns are
 * split, never a sum).
 *
 * Tolerance: each element within 4 (n + 2) u sum |terms| (u = 2^-24), the
 * bound of a float dot product in any order (plus the alpha product and the
 * final add), so a kernel that drops or repeats a term fails.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "compute/lowrank.h"
#include "core/error.h"
#include "core/par.h"

static uint64_t seed = 7;

static float frand(void)
{
	seed = seed * 6364136223846793005ull + 1442695040888963407ull;
	return (float)((double)(seed >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static float *rnd(size_t n)
{
	float *p = malloc(n * sizeof *p);
	REQUIRE(p);
	for (size_t i = 0; i < n; i++)
		p[i] = frand();
	return p;
}

/* |got - want| <= 4 (k + 2) u mag per element. */
static void close_to(const char *what, const float *got, const float *want, const double *mag,
		     size_t n, int k)
{
	size_t bad = 0;
	for (size_t i = 0; i < n; i++)
		bad += fabs((double)got[i] - want[i]) > 4.0 * (k + 2) * ldexp(1, -24) * mag[i];
	CHECKF(bad == 0, "%s: %zu of %zu elements off", what, bad, n);
}

static void one(int T, int n, int r, int simd)
{
	char what[96];
	snprintf(what, sizeof what, "T %d n %d r %d simd %d", T, n, r, simd);
	int ldx = n + 3, ldu = r + 2;
	float *x = rnd((size_t)T * ldx), *w = rnd((size_t)r * n), *u = rnd((size_t)T * ldu);
	float alpha = 1.7f;
	/* rowdot */
	float *o = rnd((size_t)T * ldu), *ow = malloc(sizeof(float) * T * ldu);
	double *mag = calloc((size_t)T * ldu + (size_t)T * ldx + (size_t)r * n, sizeof *mag);
	REQUIRE(ow && mag);
	memcpy(ow, o, sizeof(float) * T * ldu);
	rl_lowrank_rowdot(o, ldu, alpha, x, ldx, w, T, n, r);
	rl_lowrank_naive_rowdot(ow, ldu, alpha, x, ldx, w, T, n, r);
	for (int t = 0; t < T; t++)
		for (int k = 0; k < r; k++) {
			double s = 0;
			for (int c = 0; c < n; c++)
				s += fabs((double)x[(size_t)t * ldx + c] * w[(size_t)k * n + c]);
			mag[(size_t)t * ldu + k] = alpha * s;
		}
	close_to(what, o, ow, mag, (size_t)T * ldu, n);
	/* rankr: y (ld ldx) += alpha u w */
	float *y = rnd((size_t)T * ldx), *yw = malloc(sizeof(float) * T * ldx);
	REQUIRE(yw);
	memcpy(yw, y, sizeof(float) * T * ldx);
	rl_lowrank_rankr(y, ldx, alpha, u, ldu, w, T, n, r);
	rl_lowrank_naive_rankr(yw, ldx, alpha, u, ldu, w, T, n, r);
	for (int t = 0; t < T; t++)
		for (int c = 0; c < n; c++) {
			double s = fabs(yw[(size_t)t * ldx + c]);
			for (int k = 0; k < r; k++)
				s += alpha *
				     fabs((double)u[(size_t)t * ldu + k] * w[(size_t)k * n + c]);
			mag[(size_t)t * ldx + c] = s;
		}
	close_to(what, y, yw, mag, (size_t)T * ldx, r);
	/* outer: g [r, n] += alpha u^T x */
	float *g = rnd((size_t)r * n), *gw = malloc(sizeof(float) * r * n);
	REQUIRE(gw);
	memcpy(gw, g, sizeof(float) * r * n);
	rl_lowrank_outer(g, alpha, u, ldu, x, ldx, T, n, r);
	rl_lowrank_naive_outer(gw, alpha, u, ldu, x, ldx, T, n, r);
	for (int k = 0; k < r; k++)
		for (int c = 0; c < n; c++) {
			double s = fabs(gw[(size_t)k * n + c]);
			for (int t = 0; t < T; t++)
				s += alpha *
				     fabs((double)u[(size_t)t * ldu + k] * x[(size_t)t * ldx + c]);
			mag[(size_t)k * n + c] = s;
		}
	close_to(what, g, gw, mag, (size_t)r * n, T);
	/* the thread count changes nothing */
	float *o1 = malloc(sizeof(float) * T * ldu), *ga = rnd((size_t)r * n);
	float *gb = malloc(sizeof(float) * r * n);
	REQUIRE(o1 && gb);
	memcpy(gb, ga, sizeof(float) * r * n);
	rl_par_set_threads(1);
	rl_lowrank_outer(ga, alpha, u, ldu, x, ldx, T, n, r);
	rl_lowrank_rowdot(o1, ldu, alpha, x, ldx, w, T, n, r);
	rl_par_set_threads(3);
	rl_lowrank_outer(gb, alpha, u, ldu, x, ldx, T, n, r);
	rl_lowrank_rowdot(ow, ldu, alpha, x, ldx, w, T, n, r);
	for (int t = 0; t < T; t++)
		CHECK(memcmp(o1 + (size_t)t * ldu, ow + (size_t)t * ldu, sizeof(float) * r) == 0);
	CHECK(memcmp(ga, gb, sizeof(float) * r * n) == 0);
	rl_par_set_threads(2);
	free(x), free(w), free(u), free(o), free(ow), free(mag), free(y), free(yw), free(g);
	free(gw), free(o1), free(ga), free(gb);
}

int main(void)
{
	static const int Ts[] = {1, 5, 37, 130};
	static const int ns[] = {1, 16, 23, 100, 257};
	static const int rs[] = {1, 3, 8, 9, 17};
	int kernels = rl_lowrank_simd(1) ? 2 : 1;
	if (kernels == 1)
		fprintf(stderr, "test_lowrank: no AVX-512 here: the portable kernels only\n");
	for (int s = 0; s < kernels; s++) {
		rl_lowrank_simd(s == 0 && kernels == 2);
		for (size_t a = 0; a < sizeof Ts / sizeof *Ts; a++)
			for (size_t b = 0; b < sizeof ns / sizeof *ns; b++)
				for (size_t c = 0; c < sizeof rs / sizeof *rs; c++)
					one(Ts[a], ns[b], rs[c], s == 0 && kernels == 2);
	}
	return check_done("test_lowrank");
}
