/* adapter_write.c — a PEFT LoRA adapter directory written (see adapter.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "core/error.h"
#include "core/file.h"
#include "store/adapter.h"

/* The config as PEFT's LoraConfig.to_dict() would give it for these settings
 * (fields left at their defaults are left out: PEFT fills them in). */
static cJSON *config_json(const rl_adapter_meta *m)
{
	cJSON *o = cJSON_CreateObject(), *tm = NULL;
	int ok = o != NULL;
	ok = ok && cJSON_AddStringToObject(o, "peft_type", "LORA");
	ok = ok && cJSON_AddStringToObject(o, "task_type", "CAUSAL_LM");
	ok = ok && (m->base_name ? cJSON_AddStringToObject(o, "base_model_name_or_path",
							   m->base_name) != NULL
				 : cJSON_AddNullToObject(o, "base_model_name_or_path") != NULL);
	ok = ok && cJSON_AddNumberToObject(o, "r", m->r);
	ok = ok && cJSON_AddNumberToObject(o, "lora_alpha", m->alpha);
	ok = ok && cJSON_AddNumberToObject(o, "lora_dropout", m->dropout);
	ok = ok && cJSON_AddBoolToObject(o, "use_rslora", m->rslora);
	ok = ok && (tm = cJSON_AddArrayToObject(o, "target_modules"));
	for (size_t i = 0; ok && i < m->ntargets; i++)
		ok = cJSON_AddItemToArray(tm, cJSON_CreateString(m->targets[i]));
	ok = ok && cJSON_AddStringToObject(o, "bias", "none");
	ok = ok && cJSON_AddBoolToObject(o, "fan_in_fan_out", 0);
	ok = ok && cJSON_AddBoolToObject(o, "use_dora", 0);
	ok = ok && cJSON_AddBoolToObject(o, "init_lora_weights", 1);
	ok = ok && cJSON_AddBoolToObject(o, "inference_mode", 1);
	ok = ok && cJSON_AddNullToObject(o, "modules_to_save");
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

int rl_adapter_write(const char *dir, const rl_adapter_meta *m, const rl_st_wtensor *t, size_t n)
{
	size_t dl = strlen(dir);
	char *path = rl_malloc(dl + 40);
	if (!path)
		return RL_ESYS;
	cJSON *c = config_json(m);
	char *text = c ? cJSON_Print(c) : NULL;
	cJSON_Delete(c);
	int rc = text ? RL_OK : rl_error(RL_ESYS, "'%s': out of memory", dir);
	if (!rc) {
		snprintf(path, dl + 40, "%s/adapter_model.safetensors", dir);
		rc = rl_st_write(path, t, n, NULL, 0);
	}
	if (!rc) {
		snprintf(path, dl + 40, "%s/adapter_config.json", dir);
		rc = rl_write_text_file(path, text);
	}
	free(text);
	free(path);
	return rc;
}
