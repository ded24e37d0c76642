/* test_widen.c — every rl_widen kernel (portable C, SSE2, AVX2 where the CPU has
 * them) against the scalar references rl_bf16_to_f32 / rl_f16_to_f32, bit for
 * bit (NaN payloads included), for all 65536 16-bit patterns, from every source
 * misalignment, for every tail length up to 70, without writing past the end.
 * The scalar references themselves are checked against _Float16 in test_dtype.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/dtype.h"
#include "core/error.h"

static uint32_t fbits(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}

static void check_kernel(int level)
{
	enum { N = 65536, GUARD = 8 };
	uint8_t *src = malloc(2 * N + 16);
	float *dst = malloc((N + GUARD) * sizeof *dst);
	for (rl_dtype dt = RL_DT_F16; dt <= RL_DT_BF16; dt++) {
		for (int mis = 0; mis < 4; mis++) {
			uint8_t *s = src + mis;
			for (uint32_t i = 0; i < N; i++) {
				uint16_t h =
					(uint16_t)(i * 40503u); /* a permutation of all patterns */
				memcpy(s + 2 * i, &h, 2);
			}
			memset(dst, 0xA5, (N + GUARD) * sizeof *dst);
			rl_widen(dt, s, dst, N);
			int bad = 0;
			for (uint32_t i = 0; i < N; i++) {
				uint16_t h;
				memcpy(&h, s + 2 * i, 2);
				float want =
					dt == RL_DT_BF16 ? rl_bf16_to_f32(h) : rl_f16_to_f32(h);
				if (fbits(dst[i]) != fbits(want) && bad++ < 3)
					fprintf(stderr, "level %d %s 0x%04x: got %08x want %08x\n",
						level, rl_dtype_name(dt), h, fbits(dst[i]),
						fbits(want));
			}
			CHECKF(bad == 0, "level %d %s misalign %d: %d wrong", level,
			       rl_dtype_name(dt), mis, bad);
			for (int g = 0; g < GUARD; g++)
				CHECK(fbits(dst[N + g]) == 0xA5A5A5A5u);
		}
		/* tails: every length up to 70 from an odd address, nothing written past n */
		for (size_t n = 0; n <= 70; n++) {
			memset(dst, 0xA5, (70 + GUARD) * sizeof *dst);
			rl_widen(dt, src + 1, dst, n);
			int bad = 0;
			for (size_t i = 0; i < n; i++) {
				uint16_t h;
				memcpy(&h, src + 1 + 2 * i, 2);
				float want =
					dt == RL_DT_BF16 ? rl_bf16_to_f32(h) : rl_f16_to_f32(h);
				bad += fbits(dst[i]) != fbits(want);
			}
			for (size_t i = n; i < n + GUARD; i++)
				bad += fbits(dst[i]) != 0xA5A5A5A5u;
			CHECKF(bad == 0, "level %d %s n=%zu", level, rl_dtype_name(dt), n);
		}
	}
	free(src);
	free(dst);
}

int main(void)
{
	int best = rl_widen_impl(0);
	printf("test_widen: best kernel on this CPU: %d\n", best);
	for (int level = RL_WIDEN_C; level <= best; level++) {
		CHECK_EQ_INT(rl_widen_impl(level), level);
		check_kernel(level);
	}
	CHECK_EQ_INT(rl_widen_impl(0), best);
	check_kernel(0);
	/* F32 is a copy; other dtypes are poisoned, never guessed */
	float in[3] = {1.5f, -0.0f, 3.0f}, out[3];
	rl_widen(RL_DT_F32, in, out, 3);
	CHECK(memcmp(in, out, sizeof in) == 0);
	uint8_t i8[2] = {1, 2};
	rl_widen(RL_DT_I8, i8, out, 2);
	CHECK(isnan(out[0]) && isnan(out[1]));
	return check_done("test_widen");
}
