/* txn_summary.c — rl_txn_stats as summary keys. */
#include "store/txn_summary.h"
#include "core/error.h"

int rl_txn_summary(cJSON *j, const rl_txn_stats *st)
{
	int ok = cJSON_AddNumberToObject(j, "elements", (double)st->elements) &&
		 cJSON_AddNumberToObject(j, "tensors", (double)st->tensors) &&
		 cJSON_AddNumberToObject(j, "model_bytes", (double)st->model_bytes) &&
		 cJSON_AddNumberToObject(j, "write_bytes", (double)st->write_bytes) &&
		 cJSON_AddNumberToObject(j, "writes", (double)st->model_writes) &&
		 cJSON_AddNumberToObject(j, "journal_bytes", (double)st->journal_bytes) &&
		 cJSON_AddStringToObject(j, "before", st->before) &&
		 cJSON_AddStringToObject(j, "after", st->after);
	return ok ? RL_OK : rl_error(RL_ESYS, "out of memory");
}
