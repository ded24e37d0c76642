/* attn_row.h — causal attention of one query row per head against a sequence's
 * keys and values (a decoding step over the KV cache): what
 * rl_attention_forward (ops.h) does when nq == 1, in two kernels. Internal to
 * lib/compute. Arguments as rl_attention_forward's with nq == 1; row: 3 nkv
 * floats of scratch (rl_attention_scratch(1, nkv)). */
#ifndef RL_ATTN_ROW_H
#define RL_ATTN_ROW_H

/* a . b over n floats in a fixed order: four running sums (i mod 4), then
 * (s0 + s1) + (s2 + s3). The portable kernel's and the row backward's. */
float rl_attn_dot(const float *a, const float *b, int n);

/* Plain loops: any CPU, any head_dim. */
void rl_attn_row_portable(float *out, float *lse, const float *q, const float *k, const float *v,
			  int ldk, int nkv, int nh, int nkvh, int hd, int window, float scale,
			  float cap, float *row);

/* The AVX2/FMA kernel. Returns 0, or -1 without computing anything when this
 * CPU (rl_cpu_get, so RL_CPU_MAX counts) cannot run it or hd is not a multiple
 * of 8. */
int rl_attn_row_avx2(float *out, float *lse, const float *q, const float *k, const float *v,
		     int ldk, int nkv, int nh, int nkvh, int hd, int window, float scale, float cap,
		     float *row);

#endif
