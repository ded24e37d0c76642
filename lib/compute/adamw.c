/* adamw.c — AdamW, learning-rate schedules, gradient clipping (see adamw.h). */
#include <math.h>
#include <string.h>

#include "compute/adamw.h"

void rl_adamw_step(float *p, const float *g, float *m, float *v, size_t n, const rl_adamw_hp *hp,
		   double lr, long t, int decay)
{
	double bc1 = 1.0 - pow(hp->beta1, (double)t);
	double bc2 = 1.0 - pow(hp->beta2, (double)t);
	float keep = decay ? (float)(1.0 - lr * hp->weight_decay) : 1.0f;
	float b2 = (float)hp->beta2;
	float a1 = (float)(1.0 - hp->beta1), a2 = (float)(1.0 - hp->beta2);
	float step = (float)(lr / bc1), bc2s = (float)sqrt(bc2), eps = (float)hp->eps;
	for (size_t i = 0; i < n; i++) {
		float gi = g[i];
		p[i] *= keep;
		/* torch: exp_avg.lerp_(grad, 1 - beta1) = m + (1 - b1) * (g - m) */
		m[i] += a1 * (gi - m[i]);
		v[i] = v[i] * b2 + a2 * gi * gi;
		float denom = sqrtf(v[i]) / bc2s + eps;
		p[i] -= step * (m[i] / denom);
	}
}

double rl_sched_lr(rl_sched kind, double lr, long s, long total, long warmup, double min_ratio)
{
	if (warmup > 0 && s < warmup)
		return lr * (double)(s + 1) / (double)warmup;
	if (kind == RL_SCHED_CONSTANT)
		return lr;
	long span = total - warmup - 1;
	double frac = span > 0 ? (double)(s - warmup) / (double)span : 1.0;
	if (frac > 1)
		frac = 1;
	if (frac < 0)
		frac = 0;
	double shape = kind == RL_SCHED_COSINE ? 0.5 * (1.0 + cos(M_PI * frac)) : 1.0 - frac;
	return lr * (min_ratio + (1.0 - min_ratio) * shape);
}

int rl_sched_parse(const char *s, rl_sched *out)
{
	if (strcmp(s, "cosine") == 0)
		*out = RL_SCHED_COSINE;
	else if (strcmp(s, "linear") == 0)
		*out = RL_SCHED_LINEAR;
	else if (strcmp(s, "constant") == 0)
		*out = RL_SCHED_CONSTANT;
	else
		return -1;
	return 0;
}

double rl_clip_grad_norm(float *const *g, const size_t *n, size_t ntensors, double max_norm)
{
	double ss = 0;
	for (size_t t = 0; t < ntensors; t++)
		for (size_t i = 0; i < n[t]; i++)
			ss += (double)g[t][i] * g[t][i];
	double norm = sqrt(ss);
	if (max_norm > 0 && norm > max_norm) {
		float c = (float)(max_norm / (norm + 1e-6));
		for (size_t t = 0; t < ntensors; t++)
			for (size_t i = 0; i < n[t]; i++)
				g[t][i] *= c;
	}
	return norm;
}
