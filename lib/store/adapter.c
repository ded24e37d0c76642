/* adapter.c — PEFT LoRA adapters (see adapter.h). */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/error.h"
#include "core/file.h"
#include "core/inputs.h"
#include "core/json.h"
#include "core/jsonl.h"
#include "store/adapter.h"

/* Config keys that change what the adapter's tensors mean, and that realign
 * does not implement: refused when set. */
static const char *const unsupported[] = {
	"use_dora",
	"modules_to_save",
	"lora_bias",
	"fan_in_fan_out",
	"rank_pattern",
	"alpha_pattern",
	"target_parameters",
	"layer_replication",
	"trainable_token_indices",
	"use_qalora",
	"use_bdlora",
	"arrow_config",
	"alora_invocation_tokens",
	"kasa_config",
	"monteclora_config",
	"megatron_config",
	"velora_config",
};

/* Keys that only shape training, initialisation or bookkeeping (or that the
 * tensors themselves answer): skipped, or read below. */
static const char *const harmless[] = {
	"peft_type",
	"r",
	"lora_alpha",
	"use_rslora",
	"target_modules",
	"base_model_name_or_path",
	"bias",
	"lora_dropout",
	"inference_mode",
	"init_lora_weights",
	"loftq_config",
	"eva_config",
	"corda_config",
	"lora_ga_config",
	"revision",
	"task_type",
	"megatron_core",
	"exclude_modules",
	"layers_pattern",
	"layers_to_transform",
	"qalora_group_size",
	"ensure_weight_tying",
	"auto_mapping",
	"peft_version",
};

static int in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return 1;
	return 0;
}

/* A value that sets nothing: null, false, {}, []. */
static int unset(const cJSON *v)
{
	return cJSON_IsNull(v) || cJSON_IsFalse(v) ||
	       ((cJSON_IsObject(v) || cJSON_IsArray(v)) && !v->child);
}

static int read_config(rl_adapter *a, const char *path)
{
	char *text;
	size_t len;
	int rc = rl_read_file(path, &text, &len);
	if (rc)
		return rc;
	cJSON *c = NULL;
	char *what = rl_malloc(strlen(path) + 3);
	if (!what) {
		rc = RL_ESYS;
		goto out;
	}
	sprintf(what, "'%s'", path);
	rc = rl_json_parse(text, len, what, &c);
	free(what);
	if (rc)
		goto out;
	if (!cJSON_IsObject(c)) {
		rc = rl_error(RL_EDATA, "'%s': not a JSON object", path);
		goto out;
	}
	for (const cJSON *k = c->child; k && !rc; k = k->next) {
		if (in_list(k->string, unsupported, sizeof unsupported / sizeof *unsupported)) {
			if (!unset(k))
				rc = rl_error(RL_EDATA,
					      "'%s': %s is set: realign merges plain LoRA only "
					      "(%s is not supported)",
					      path, k->string,
					      strcmp(k->string, "use_dora") == 0 ? "DoRA"
										 : k->string);
		} else if (!in_list(k->string, harmless, sizeof harmless / sizeof *harmless) &&
			   !unset(k)) {
			rc = rl_error(RL_EDATA,
				      "'%s': unknown setting %s: realign does not know what it "
				      "changes, so it does not merge this adapter",
				      path, k->string);
		}
	}
	if (rc)
		goto out;
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(c, "peft_type");
	const cJSON *r = cJSON_GetObjectItemCaseSensitive(c, "r");
	const cJSON *alpha = cJSON_GetObjectItemCaseSensitive(c, "lora_alpha");
	const cJSON *rs = cJSON_GetObjectItemCaseSensitive(c, "use_rslora");
	const cJSON *bias = cJSON_GetObjectItemCaseSensitive(c, "bias");
	const cJSON *tm = cJSON_GetObjectItemCaseSensitive(c, "target_modules");
	const cJSON *base = cJSON_GetObjectItemCaseSensitive(c, "base_model_name_or_path");
	if (!cJSON_IsString(type) || strcmp(type->valuestring, "LORA") != 0)
		rc = rl_error(RL_EDATA, "'%s': peft_type %s: realign merges LORA adapters only",
			      path, cJSON_IsString(type) ? type->valuestring : "missing");
	else if (!cJSON_IsNumber(r) || r->valuedouble != floor(r->valuedouble) ||
		 r->valuedouble < 1 || r->valuedouble > 65536)
		rc = rl_error(RL_EDATA, "'%s': r must be a positive integer", path);
	else if (!cJSON_IsNumber(alpha) || !isfinite(alpha->valuedouble))
		rc = rl_error(RL_EDATA, "'%s': lora_alpha must be a number", path);
	else if (rs && !cJSON_IsBool(rs) && !cJSON_IsNull(rs))
		rc = rl_error(RL_EDATA, "'%s': use_rslora must be true or false", path);
	else if (bias && !cJSON_IsNull(bias) &&
		 !(cJSON_IsString(bias) && strcmp(bias->valuestring, "none") == 0))
		rc = rl_error(RL_EDATA,
			      "'%s': bias is '%s': trained biases are not supported (only "
			      "\"none\")",
			      path, cJSON_IsString(bias) ? bias->valuestring : "?");
	if (rc)
		goto out;
	a->r = (int)r->valuedouble;
	a->alpha = alpha->valuedouble;
	a->rslora = cJSON_IsTrue(rs);
	a->scale = (float)(a->rslora ? a->alpha / sqrt((double)a->r) : a->alpha / a->r);
	if (cJSON_IsString(base) && !(a->base_name = rl_strdup(base->valuestring)))
		rc = RL_ESYS;
	if (!rc && cJSON_IsString(tm)) {
		if (!(a->target_regex = rl_strdup(tm->valuestring)))
			rc = RL_ESYS;
	} else if (!rc && cJSON_IsArray(tm)) {
		size_t n = (size_t)cJSON_GetArraySize(tm);
		if (!(a->targets = rl_calloc(n ? n : 1, sizeof *a->targets)))
			rc = RL_ESYS;
		for (const cJSON *t = tm->child; !rc && t; t = t->next) {
			if (!cJSON_IsString(t))
				rc = rl_error(RL_EDATA, "'%s': target_modules must hold names",
					      path);
			else if (!(a->targets[a->ntargets++] = rl_strdup(t->valuestring)))
				rc = RL_ESYS;
		}
	} else if (!rc) {
		rc = rl_error(RL_EDATA, "'%s': target_modules must be a list or a regex", path);
	}
out:
	cJSON_Delete(c);
	free(text);
	return rc;
}

static int cmp_lora(const void *x, const void *y)
{
	return strcmp(((const rl_lora *)x)->weight, ((const rl_lora *)y)->weight);
}

/* "base_model.model.<module>.lora_A.weight" -> which = 'A', *module, *mlen. */
static int split_name(const char *name, char *which, const char **module, size_t *mlen)
{
	static const char prefix[] = "base_model.model.";
	size_t n = strlen(name), p = sizeof prefix - 1;
	static const char *const sfx[] = {".lora_A.weight", ".lora_B.weight"};
	if (strncmp(name, prefix, p) != 0)
		return 0;
	for (int i = 0; i < 2; i++) {
		size_t s = strlen(sfx[i]);
		if (n > p + s && strcmp(name + n - s, sfx[i]) == 0) {
			*which = i ? 'B' : 'A';
			*module = name + p;
			*mlen = n - p - s;
			return 1;
		}
	}
	return 0;
}

static int read_tensors(rl_adapter *a, const char *path)
{
	int rc = rl_st_open(&a->file, path, RL_ST_READ);
	if (rc)
		return rc;
	rl_st_file *f = &a->file;
	if (!(a->loras = rl_calloc(f->ntensors ? f->ntensors : 1, sizeof *a->loras)))
		return RL_ESYS;
	/* pass 1: the A matrices name the pairs */
	for (size_t i = 0; i < f->ntensors && !rc; i++) {
		const rl_st_tensor *t = &f->tensors[i];
		char which;
		const char *mod;
		size_t ml;
		if (!split_name(t->name, &which, &mod, &ml))
			rc = rl_error(RL_EDATA,
				      "'%s': tensor '%s' is not a LoRA A or B matrix (embedding "
				      "adapters and saved base weights are not supported)",
				      path, t->name);
		else if (t->ndim != 2 ||
			 (t->dtype != RL_DT_F32 && t->dtype != RL_DT_BF16 && t->dtype != RL_DT_F16))
			rc = rl_error(RL_EDATA,
				      "'%s': tensor '%s' must be a 2-D f32/bf16/f16 matrix", path,
				      t->name);
		else if (which == 'A') {
			rl_lora *l = &a->loras[a->nloras++];
			if (!(l->weight = rl_malloc(ml + sizeof ".weight")))
				return RL_ESYS;
			memcpy(l->weight, mod, ml);
			memcpy(l->weight + ml, ".weight", sizeof ".weight");
			l->a = t;
		}
	}
	if (rc)
		return rc;
	qsort(a->loras, a->nloras, sizeof *a->loras, cmp_lora);
	/* pass 2: each B to its A */
	for (size_t i = 0; i < f->ntensors && !rc; i++) {
		const rl_st_tensor *t = &f->tensors[i];
		char which, key[1024];
		const char *mod;
		size_t ml;
		split_name(t->name, &which, &mod, &ml);
		if (which != 'B')
			continue;
		if (ml + sizeof ".weight" > sizeof key)
			return rl_error(RL_EDATA, "'%s': tensor name '%s' too long", path, t->name);
		memcpy(key, mod, ml);
		memcpy(key + ml, ".weight", sizeof ".weight");
		rl_lora k = {.weight = key};
		rl_lora *l = bsearch(&k, a->loras, a->nloras, sizeof *a->loras, cmp_lora);
		if (!l)
			rc = rl_error(RL_EDATA, "'%s': '%s' has no lora_A", path, t->name);
		else
			l->b = t;
	}
	for (size_t i = 0; i < a->nloras && !rc; i++) {
		rl_lora *l = &a->loras[i];
		if (!l->b)
			rc = rl_error(RL_EDATA, "'%s': '%s' has a lora_A but no lora_B", path,
				      l->weight);
		else if (l->a->shape[0] != a->r || l->b->shape[1] != a->r)
			rc = rl_error(RL_EDATA,
				      "'%s': '%s': lora_A is [%lld, %lld] and lora_B [%lld, %lld], "
				      "not of the config's rank %d",
				      path, l->weight, (long long)l->a->shape[0],
				      (long long)l->a->shape[1], (long long)l->b->shape[0],
				      (long long)l->b->shape[1], a->r);
	}
	if (!rc && a->nloras == 0)
		rc = rl_error(RL_EDATA, "'%s': no LoRA matrices", path);
	return rc;
}

int rl_adapter_open(rl_adapter *a, const char *dir)
{
	memset(a, 0, sizeof *a);
	a->file.fd = -1;
	size_t n = strlen(dir);
	char *cfg = rl_malloc(n + 32), *st = rl_malloc(n + 32);
	int rc = (!cfg || !st || !(a->dir = rl_strdup(dir))) ? RL_ESYS : RL_OK;
	if (!rc) {
		snprintf(cfg, n + 32, "%s/adapter_config.json", dir);
		snprintf(st, n + 32, "%s/adapter_model.safetensors", dir);
		rc = read_config(a, cfg);
	}
	if (!rc)
		rc = read_tensors(a, st);
	free(cfg);
	free(st);
	if (rc)
		rl_adapter_close(a);
	else
		rl_input_dir(dir); /* inputs.h: rl-merge -o ADAPTER --force replaced it */
	return rc;
}

void rl_adapter_close(rl_adapter *a)
{
	for (size_t i = 0; i < a->nloras; i++)
		free(a->loras[i].weight);
	free(a->loras);
	for (size_t i = 0; i < a->ntargets; i++)
		free(a->targets[i]);
	free(a->targets);
	free(a->target_regex);
	free(a->base_name);
	free(a->dir);
	if (a->file.path)
		rl_st_close(&a->file);
	memset(a, 0, sizeof *a);
}

const rl_lora *rl_adapter_find(const rl_adapter *a, const char *weight)
{
	rl_lora k = {.weight = (char *)weight};
	return bsearch(&k, a->loras, a->nloras, sizeof *a->loras, cmp_lora);
}

/* PEFT's rule: a module is targeted when its name equals a target or ends in
 * "." + target; a string target_modules is a regex the whole name matches. */
static int targeted(const rl_adapter *a, const char *module, size_t ml, int *bad_regex)
{
	if (a->target_regex) {
		int err;
		PCRE2_SIZE off;
		pcre2_code *re = pcre2_compile((PCRE2_SPTR)a->target_regex, PCRE2_ZERO_TERMINATED,
					       PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_UTF, &err,
					       &off, NULL);
		if (!re) {
			*bad_regex = 1;
			return 0;
		}
		pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
		int hit = md && pcre2_match(re, (PCRE2_SPTR)module, ml, 0, 0, md, NULL) >= 0;
		pcre2_match_data_free(md);
		pcre2_code_free(re);
		return hit;
	}
	for (size_t i = 0; i < a->ntargets; i++) {
		size_t tl = strlen(a->targets[i]);
		if (tl <= ml && memcmp(module + ml - tl, a->targets[i], tl) == 0 &&
		    (tl == ml || module[ml - tl - 1] == '.'))
			return 1;
	}
	return 0;
}

/* The last component of a path or hub id ("org/Model" -> "Model"). */
static const char *last_part(const char *s, size_t *len)
{
	size_t n = strlen(s);
	while (n > 1 && s[n - 1] == '/')
		n--;
	size_t b = n;
	while (b > 0 && s[b - 1] != '/')
		b--;
	*len = n - b;
	return s + b;
}

int rl_adapter_check(const rl_adapter *a, const rl_model *base, int check_name)
{
	const char *cfg_path = a->file.path;
	if (check_name && a->base_name) {
		const char *mine = base->cfg.name_or_path[0] ? base->cfg.name_or_path : base->dir;
		size_t l1, l2;
		const char *p1 = last_part(a->base_name, &l1), *p2 = last_part(mine, &l2);
		if (l1 != l2 || strncasecmp(p1, p2, l1) != 0)
			return rl_error(RL_EDATA,
					"'%s': the adapter was made for '%s', not for '%s' (give "
					"--any-base if they are the same model)",
					a->dir, a->base_name, mine);
	}
	for (size_t i = 0; i < a->nloras; i++) {
		const rl_lora *l = &a->loras[i];
		const rl_tensor *w = rl_model_find(base, l->weight);
		size_t ml = strlen(l->weight) - strlen(".weight");
		int bad_regex = 0;
		if (!w)
			return rl_error(RL_EDATA,
					"'%s': the base has no tensor '%s' for its LoRA pair",
					cfg_path, l->weight);
		if (!targeted(a, l->weight, ml, &bad_regex))
			return rl_error(RL_EDATA, "'%s': '%.*s' is not among target_modules%s",
					cfg_path, (int)ml, l->weight,
					bad_regex ? " (the target_modules regex does not compile)"
						  : "");
		if (w->ndim != 2 || w->shape[0] != l->b->shape[0] || w->shape[1] != l->a->shape[1])
			return rl_error(RL_EDATA,
					"'%s': the LoRA pair of '%s' (B [%lld, %d] x A [%d, %lld]) "
					"does not fit the base's [%lld, %lld]",
					cfg_path, l->weight, (long long)l->b->shape[0], a->r, a->r,
					(long long)l->a->shape[1], (long long)w->shape[0],
					w->ndim == 2 ? (long long)w->shape[1] : -1LL);
		if (!rl_dtype_is_compute(w->dtype))
			return rl_error(RL_EDATA, "'%s': dtype %s cannot be merged into", l->weight,
					rl_dtype_name(w->dtype));
	}
	return RL_OK;
}
