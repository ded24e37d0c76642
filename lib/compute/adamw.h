/* adamw.h — the AdamW optimizer and the learning-rate schedule of rl-train.
 *
 * AdamW exactly as torch.optim.AdamW (default, non-amsgrad, non-maximize):
 *     p <- p * (1 - lr * wd)                       (decoupled weight decay)
 *     m <- b1 * m + (1 - b1) * g
 *     v <- b2 * v + (1 - b2) * g^2
 *     p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * with t the 1-based step count. Scalars (bias corrections, step size) are
 * computed in double like torch's Python scalars; tensor arithmetic in f32.
 *
 * Schedule: linear warm-up from lr/warmup to lr over the first `warmup` steps
 * (step s in 0..warmup-1 gets lr * (s + 1) / warmup), then a decay to
 * lr * min_ratio at the last step: cosine (default) or linear; or constant.
 */
#ifndef RL_ADAMW_H
#define RL_ADAMW_H

#include <stddef.h>

typedef struct rl_adamw_hp {
	double beta1, beta2, eps;
	double weight_decay;
} rl_adamw_hp;

/* One AdamW step on n parameters p with gradient g and moment buffers m, v
 * (zero before the first step). t is the 1-based step count; decay selects
 * whether this tensor gets weight decay. */
void rl_adamw_step(float *p, const float *g, float *m, float *v, size_t n, const rl_adamw_hp *hp,
		   double lr, long t, int decay);

typedef enum rl_sched { RL_SCHED_COSINE, RL_SCHED_LINEAR, RL_SCHED_CONSTANT } rl_sched;

/* The learning rate of 0-based step s of total steps. */
double rl_sched_lr(rl_sched kind, double lr, long s, long total, long warmup, double min_ratio);

/* Parses "cosine", "linear", "constant"; -1 if unknown. */
int rl_sched_parse(const char *s, rl_sched *out);

/* Global-norm gradient clipping as torch.nn.utils.clip_grad_norm_: computes the
 * L2 norm of all ntensors gradient arrays together (in double), and when it
 * exceeds max_norm (> 0) scales every gradient by max_norm / (norm + 1e-6).
 * Returns the norm before clipping. */
double rl_clip_grad_norm(float *const *g, const size_t *n, size_t ntensors, double max_norm);

#endif
