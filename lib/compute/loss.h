/* loss.h — softmax cross-entropy over a vocabulary, forward and backward.
 *
 * rl-train's loss is the mean cross-entropy of the next token over the
 * response positions of a batch (prompt positions carry no loss), as
 * torch.nn.functional.cross_entropy(logits, labels, ignore_index=-100) with
 * reduction "mean" over the positions that have a label.
 */
#ifndef RL_LOSS_H
#define RL_LOSS_H

/* logits[n,V] row-major: one row per labelled position, target[n] in [0,V).
 * Returns sum_i -log softmax(logits[i])[target[i]] (double accumulation).
 * When dlogits is not NULL it receives scale * (softmax(logits[i]) - onehot)
 * ([n,V]; may equal logits, overwriting them). */
double rl_xent(float *dlogits, const float *logits, const int *target, int n, int V, float scale);
/* The loop reference (double arithmetic throughout) the tests compare with. */
double rl_xent_naive(float *dlogits, const float *logits, const int *target, int n, int V,
		     float scale);

#endif
