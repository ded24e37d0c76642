/* loss.c — softmax cross-entropy (see loss.h). */
#include <math.h>
#include <stddef.h>

#include "compute/loss.h"

/* logits[n,V], target[n] -> sum of -log p(target); dlogits[n,V] (may alias). */
double rl_xent(float *dlogits, const float *logits, const int *target, int n, int V, float scale)
{
	double total = 0;
	for (int i = 0; i < n; i++) {
		const float *x = logits + (size_t)i * V;
		float mx = x[0];
		for (int j = 1; j < V; j++)
			mx = x[j] > mx ? x[j] : mx;
		double sum = 0;
		for (int j = 0; j < V; j++)
			sum += exp((double)(x[j] - mx));
		double lse = (double)mx + log(sum);
		total += lse - (double)x[target[i]];
		if (dlogits) {
			float *d = dlogits + (size_t)i * V;
			float inv = (float)(1.0 / sum);
			for (int j = 0; j < V; j++)
				d[j] = scale * expf(x[j] - mx) * inv;
			d[target[i]] -= scale;
		}
	}
	return total;
}

double rl_xent_naive(float *dlogits, const float *logits, const int *target, int n, int V,
		     float scale)
{
	double total = 0;
	for (int i = 0; i < n; i++) {
		double z = 0;
		for (int j = 0; j < V; j++)
			z += exp((double)logits[(size_t)i * V + j]);
		total += log(z) - (double)logits[(size_t)i * V + target[i]];
		if (dlogits)
			for (int j = 0; j < V; j++) {
				double p = exp((double)logits[(size_t)i * V + j]) / z;
				dlogits[(size_t)i * V + j] =
					(float)(scale * (p - (j == target[i] ? 1.0 : 0.0)));
			}
	}
	return total;
}
