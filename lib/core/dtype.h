/* dtype.h — safetensors element types and exact f32 widening / RNE narrowing.
 *
 * Compute is f32 throughout realign. F32, F16 and BF16 tensors can be widened
 * to f32 exactly; narrowing f32 -> F16/BF16 rounds to nearest, ties to even
 * (NaN stays NaN, overflow goes to infinity), matching torch's .to(dtype).
 * Other dtypes are known (listed, sized, copied byte-exactly) but refused for
 * compute.
 */
#ifndef RL_DTYPE_H
#define RL_DTYPE_H

#include <stddef.h>
#include <stdint.h>

typedef enum rl_dtype {
	RL_DT_BOOL,
	RL_DT_U8,
	RL_DT_I8,
	RL_DT_F8_E5M2,
	RL_DT_F8_E4M3,
	RL_DT_I16,
	RL_DT_U16,
	RL_DT_F16,
	RL_DT_BF16,
	RL_DT_I32,
	RL_DT_U32,
	RL_DT_F32,
	RL_DT_F64,
	RL_DT_I64,
	RL_DT_U64,
	RL_DT_COUNT
} rl_dtype;

/* Bytes per element. */
size_t rl_dtype_size(rl_dtype dt);
/* The safetensors spelling: "F32", "BF16", ... */
const char *rl_dtype_name(rl_dtype dt);
/* Parses a safetensors dtype name; returns 0 on success, -1 if unknown. */
int rl_dtype_parse(const char *name, size_t len, rl_dtype *out);
/* 1 for F32, F16, BF16: the dtypes realign computes with. */
int rl_dtype_is_compute(rl_dtype dt);

/* Scalar conversions (exact widening; RNE narrowing). */
float rl_bf16_to_f32(uint16_t h);
float rl_f16_to_f32(uint16_t h);
uint16_t rl_f32_to_bf16(float f);
uint16_t rl_f32_to_f16(float f);

/* Widens n elements of a compute dtype at src (any alignment) to f32. The
 * result is bit-identical to the scalar conversions above for every input (NaN
 * payloads included), whichever kernel runs (portable C, SSE2, AVX2 chosen at
 * run time). */
void rl_widen(rl_dtype dt, const void *src, float *dst, size_t n);

/* Test and benchmark hook: forces rl_widen's kernel (RL_WIDEN_C, _SSE2, _AVX2;
 * 0 = the best this CPU has, the default). A level the CPU lacks is ignored.
 * Returns the level now in use. Not thread-safe: call before starting threads. */
enum { RL_WIDEN_C = 1, RL_WIDEN_SSE2 = 2, RL_WIDEN_AVX2 = 3 };
int rl_widen_impl(int level);
/* Narrows n f32 values to a compute dtype at dst (any alignment). */
void rl_narrow(rl_dtype dt, const float *src, void *dst, size_t n);

#endif
