/* finite.h — finding NaN and Inf in f32 arrays, cheaply enough to check every
 * widened weight, hidden state and gradient: a NaN weight otherwise passes
 * silently into an all-NaN direction, a NaN loss and a misleading selection.
 */
#ifndef RL_FINITE_H
#define RL_FINITE_H

#include <stddef.h>

/* The index of the first NaN or infinity among x[0..n), or n when all are
 * finite. */
size_t rl_f32_nonfinite(const float *x, size_t n);

/* The same for n bf16 values stored little-endian at x (any alignment): what
 * a forward at precision bf16 multiplies without widening them. */
size_t rl_bf16_nonfinite(const void *x, size_t n);

#endif
