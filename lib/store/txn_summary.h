/* txn_summary.h — a transaction's statistics as summary keys (core/summary.h),
 * shared by the tools that change a model (rl-apply, rl-rollback). */
#ifndef RL_TXN_SUMMARY_H
#define RL_TXN_SUMMARY_H

#include <cJSON.h>

#include "store/journal.h"

/* Adds elements, tensors, model_bytes, write_bytes, writes, journal_bytes,
 * before and after to j; RL_ESYS when out of memory. */
int rl_txn_summary(cJSON *j, const rl_txn_stats *st);

#endif
