/* gguf_quant.h — ggml tensor types: block sizes, names, dequantization to f32.
 *
 * A ggml tensor row of ne[0] elements is stored as ne[0] / block_size blocks
 * of type_size bytes each (F32, F16, BF16 and the integer types are "blocks"
 * of one element). Every type ggml has ever assigned an id is named and sized
 * here, so a file holding, say, IQ2_XXS tensors can be validated and its type
 * named in a refusal; only the types below can be dequantized:
 *
 *     F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K Q4_K Q5_K Q6_K
 *
 * Dequantization follows the block layouts of ggml-common.h and is bit-exact
 * against llama.cpp's Python package (gguf.quants.dequantize) for every bit
 * pattern, extreme, subnormal, infinite and NaN f16 scales included: the
 * operations are those of gguf-py, in its order, in f32, never contracted
 * into fused multiply-adds. Pure functions of their inputs, thread-safe.
 */
#ifndef RL_GGUF_QUANT_H
#define RL_GGUF_QUANT_H

#include <stddef.h>
#include <stdint.h>

/* ggml's type ids, as stored in a GGUF tensor info (ggml.h's enum ggml_type;
 * gguf-py 0.19's GGMLQuantizationType and GGML_QUANT_SIZES give the ids and sizes).
 * Gaps are ids ggml retired (Q4_2, Q4_3, the Q4_0_4_4 repacks, ...): they are
 * unknown types here, as they are in ggml now. */
typedef enum rl_ggml_type {
	RL_GGML_F32 = 0,
	RL_GGML_F16 = 1,
	RL_GGML_Q4_0 = 2,
	RL_GGML_Q4_1 = 3,
	RL_GGML_Q5_0 = 6,
	RL_GGML_Q5_1 = 7,
	RL_GGML_Q8_0 = 8,
	RL_GGML_Q8_1 = 9,
	RL_GGML_Q2_K = 10,
	RL_GGML_Q3_K = 11,
	RL_GGML_Q4_K = 12,
	RL_GGML_Q5_K = 13,
	RL_GGML_Q6_K = 14,
	RL_GGML_Q8_K = 15,
	RL_GGML_IQ2_XXS = 16,
	RL_GGML_IQ2_XS = 17,
	RL_GGML_IQ3_XXS = 18,
	RL_GGML_IQ1_S = 19,
	RL_GGML_IQ4_NL = 20,
	RL_GGML_IQ3_S = 21,
	RL_GGML_IQ2_S = 22,
	RL_GGML_IQ4_XS = 23,
	RL_GGML_I8 = 24,
	RL_GGML_I16 = 25,
	RL_GGML_I32 = 26,
	RL_GGML_I64 = 27,
	RL_GGML_F64 = 28,
	RL_GGML_IQ1_M = 29,
	RL_GGML_BF16 = 30,
	RL_GGML_TQ1_0 = 34,
	RL_GGML_TQ2_0 = 35,
	RL_GGML_MXFP4 = 39,
	RL_GGML_NVFP4 = 40,
	RL_GGML_Q1_0 = 41,
	RL_GGML_TYPE_END = 42 /* one past the largest id known here */
} rl_ggml_type;

/* 1 if type is an id ggml assigns (named and sized below), else 0. */
int rl_ggml_type_known(uint32_t type);
/* ggml's name of a known type ("Q4_K", "BF16"); NULL for an unknown id. */
const char *rl_ggml_type_name(uint32_t type);
/* Elements per block and bytes per block of a known type; 0 for an unknown id. */
uint32_t rl_ggml_block_size(uint32_t type);
uint32_t rl_ggml_type_size(uint32_t type);
/* 1 if rl_ggml_dequant handles type (the list at the top of this file). */
int rl_ggml_can_dequant(uint32_t type);

/* Dequantizes n elements of a supported type from src to dst. n must be a
 * multiple of the type's block size and src must hold n / block_size blocks;
 * src needs no alignment (blocks are read bytewise, little-endian). The caller
 * checks rl_ggml_can_dequant first: an unsupported type leaves dst untouched. */
void rl_ggml_dequant(uint32_t type, const void *src, float *dst, uint64_t n);

/* One function per block type: nblocks blocks from src to dst (F32, F16 and
 * BF16 count single elements as blocks). rl_ggml_dequant dispatches to these;
 * they are public for the tests and the benchmark. */
void rl_dequant_f32(const void *src, float *dst, uint64_t nblocks);
void rl_dequant_f16(const void *src, float *dst, uint64_t nblocks);
void rl_dequant_bf16(const void *src, float *dst, uint64_t nblocks);
void rl_dequant_q8_0(const void *src, float *dst, uint64_t nblocks);
void rl_dequant_q4_0(const void *src, float *dst, uint64_t nblocks);
void rl_dequant_q4_1(const void *src, float *dst, uint64_t nblocks);
void rl_dequant_q5_0(const void *src, float *dst, uint64_t nblocks);
void rl_dequant_q5_1(const void *src, float *dst, uint64_t nblocks);
void rl_dequant_q2_k(const void *src, float *dst, uint64_t nblocks);
void rl_dequant_q3_k(const void *src, float *dst, uint64_t nblocks);
void rl_dequant_q4_k(const void *src, float *dst, uint64_t nblocks);
void rl_dequant_q5_k(const void *src, float *dst, uint64_t nblocks);
void rl_dequant_q6_k(const void *src, float *dst, uint64_t nblocks);

#endif
