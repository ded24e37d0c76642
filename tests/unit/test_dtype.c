/* test_dtype.c — widening and narrowing against independent truths:
 * every one of the 65536 f16 and bf16 bit patterns widened and narrowed back;
 * f16 conversions against the compiler's _Float16 (IEEE RNE in hardware or
 * libgcc); bf16 narrowing against a nearest-of-two-candidates search in double. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "core/dtype.h"
#include "core/error.h"

static uint32_t bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}

static float from_bits(uint32_t u)
{
	float f;
	memcpy(&f, &u, 4);
	return f;
}

/* xorshift: deterministic test inputs */
static uint64_t rng = 88172645463325252ull;
static uint32_t next32(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

/* Reference bf16 rounding: pick the nearer of the two bf16 neighbours of f in
 * exact double arithmetic; ties to the one with an even last bit. */
static uint16_t ref_bf16(float f)
{
	if (isnan(f))
		return 0; /* not used for NaN */
	uint32_t u = bits(f);
	uint16_t lo = (uint16_t)(u >> 16);
	uint16_t hi = (uint16_t)(lo + 1); /* next bf16 away from zero */
	double dl = fabs((double)f - (double)rl_bf16_to_f32(lo));
	double vh = (double)rl_bf16_to_f32(hi);
	if ((hi & 0x7FFF) == 0x7F80)
		vh = ldexp(1.0, 128) * (f < 0 ? -1 : 1); /* rounding past max goes to inf */
	double dh = fabs((double)f - vh);
	if ((u & 0xFFFF) == 0)
		return lo;
	if (dl < dh)
		return lo;
	if (dh < dl)
		return hi;
	return (lo & 1) ? hi : lo;
}

int main(void)
{
	/* sizes and names */
	CHECK_EQ_INT(rl_dtype_size(RL_DT_BF16), 2);
	CHECK_EQ_INT(rl_dtype_size(RL_DT_F64), 8);
	rl_dtype dt;
	CHECK(rl_dtype_parse("BF16", 4, &dt) == 0 && dt == RL_DT_BF16);
	CHECK(rl_dtype_parse("F8_E4M3", 7, &dt) == 0 && dt == RL_DT_F8_E4M3);
	CHECK(rl_dtype_parse("bf16", 4, &dt) == -1);
	CHECK(rl_dtype_parse("F3", 2, &dt) == -1);
	CHECK_STR(rl_dtype_name(RL_DT_I64), "I64");
	CHECK(rl_dtype_is_compute(RL_DT_F16) && !rl_dtype_is_compute(RL_DT_I8));

	/* every f16 pattern: widening equals _Float16's; narrowing round-trips */
	int bad_widen = 0, bad_round = 0;
	for (uint32_t h = 0; h < 65536; h++) {
		_Float16 x;
		uint16_t hb = (uint16_t)h;
		memcpy(&x, &hb, 2);
		float want = (float)x, got = rl_f16_to_f32(hb);
		if (!(isnan(want) ? isnan(got) : bits(want) == bits(got)))
			bad_widen++;
		if (!isnan(got) && rl_f32_to_f16(got) != hb)
			bad_round++;
	}
	CHECK_EQ_INT(bad_widen, 0);
	CHECK_EQ_INT(bad_round, 0);

	/* every bf16 pattern round-trips */
	bad_round = 0;
	for (uint32_t h = 0; h < 65536; h++) {
		float f = rl_bf16_to_f32((uint16_t)h);
		if (!isnan(f) && rl_f32_to_bf16(f) != h)
			bad_round++;
		if (isnan(f) && !isnan(rl_bf16_to_f32(rl_f32_to_bf16(f))))
			bad_round++;
	}
	CHECK_EQ_INT(bad_round, 0);

	/* random f32 patterns (and exact ties): narrowing against the references */
	int bad16 = 0, badbf = 0;
	for (int i = 0; i < 2000000; i++) {
		uint32_t u = next32();
		if (i % 4 == 0)
			u = (u & 0xFFFF0000u) | 0x8000u; /* bf16 tie */
		if (i % 4 == 1)
			u = (u & 0xFFFFE000u) | 0x1000u; /* f16 tie (normal range) */
		float f = from_bits(u);
		if (isnan(f))
			continue;
		_Float16 x = (_Float16)f;
		uint16_t want16;
		memcpy(&want16, &x, 2);
		if (rl_f32_to_f16(f) != want16)
			bad16++;
		if (rl_f32_to_bf16(f) != ref_bf16(f))
			badbf++;
	}
	CHECKF(bad16 == 0, "%d f16 narrowing mismatches", bad16);
	CHECKF(badbf == 0, "%d bf16 narrowing mismatches", badbf);

	/* NaN stays NaN; overflow goes to infinity */
	CHECK(isnan(rl_bf16_to_f32(rl_f32_to_bf16(NAN))));
	CHECK(isnan(rl_f16_to_f32(rl_f32_to_f16(NAN))));
	CHECK(rl_f32_to_f16(70000.0f) == 0x7C00);
	CHECK(rl_f32_to_f16(-70000.0f) == 0xFC00);
	CHECK(rl_f32_to_bf16(3.4e38f) == 0x7F80 || rl_f32_to_bf16(3.4e38f) == 0x7F7F);

	/* bulk conversions at odd alignment equal the scalar ones */
	uint8_t buf[2 * 101 + 1];
	float src[101], back[101];
	for (int i = 0; i < 101; i++)
		src[i] = (float)(i - 50) * 0.37f;
	rl_narrow(RL_DT_BF16, src, buf + 1, 101);
	rl_widen(RL_DT_BF16, buf + 1, back, 101);
	int badbulk = 0;
	for (int i = 0; i < 101; i++)
		if (bits(back[i]) != bits(rl_bf16_to_f32(rl_f32_to_bf16(src[i]))))
			badbulk++;
	rl_narrow(RL_DT_F16, src, buf + 1, 101);
	rl_widen(RL_DT_F16, buf + 1, back, 101);
	for (int i = 0; i < 101; i++)
		if (bits(back[i]) != bits(rl_f16_to_f32(rl_f32_to_f16(src[i]))))
			badbulk++;
	CHECK_EQ_INT(badbulk, 0);
	return check_done("test_dtype");
}
