/* lora_ckpt.c — the adapter written and read as PEFT's files; checkpoints
 * (see lora_ckpt.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute/lora_ckpt.h"
#include "core/error.h"
#include "core/fault.h"
#include "core/file.h"
#include "core/inputs.h"
#include "core/json.h"
#include "core/jsonl.h"
#include "store/model_files.h"
#include "store/safetensors.h"

int rl_lmodel_save(const rl_lmodel *m, const char *dir, const char *base_name)
{
	rl_st_wtensor *t = rl_calloc(m->np, sizeof *t);
	if (!t)
		return RL_ESYS;
	for (size_t i = 0; i < m->np; i++) {
		const rl_lparam *p = &m->p[i];
		t[i] = (rl_st_wtensor){
			.name = p->name, .dtype = RL_DT_F32, .ndim = 2, .data = p->w};
		t[i].shape[0] = p->shape[0];
		t[i].shape[1] = p->shape[1];
	}
	const char *targets[RL_LORA_N];
	size_t nt = 0;
	for (int i = 0; i < RL_LORA_N; i++)
		if ((m->lc.targets >> i) & 1 && rl_lora_slot_used(i, m->d.fused))
			targets[nt++] = rl_lora_module_name((rl_lora_target)i, m->d.fused);
	rl_adapter_meta meta = {.r = m->lc.r,
				.alpha = m->lc.alpha,
				.rslora = m->lc.rslora,
				.dropout = m->lc.dropout,
				.targets = targets,
				.ntargets = nt,
				.base_name = base_name};
	int rc = rl_adapter_write(dir, &meta, t, m->np);
	free(t);
	return rc;
}

int rl_lmodel_load_adapter(rl_lmodel *m, const rl_adapter *ad)
{
	if (ad->r != m->lc.r)
		return rl_error(RL_EDATA, "'%s': rank %d, the run's is %d", ad->dir, ad->r,
				m->lc.r);
	if (ad->nloras * 2 != m->np)
		return rl_error(RL_EDATA, "'%s': %zu adapted modules, the run adapts %zu", ad->dir,
				ad->nloras, m->np / 2);
	for (size_t i = 0; i < ad->nloras; i++) {
		const rl_lora *l = &ad->loras[i];
		size_t wl = strlen(l->weight) - strlen(".weight");
		for (int ab = 0; ab < 2; ab++) {
			char name[sizeof m->p[0].name];
			snprintf(name, sizeof name, "base_model.model.%.*s.lora_%c.weight", (int)wl,
				 l->weight, ab ? 'B' : 'A');
			rl_lparam *p = rl_lmodel_find(m, name);
			const rl_st_tensor *t = ab ? l->b : l->a;
			if (!p)
				return rl_error(RL_EDATA,
						"'%s': '%s' is not among the run's modules",
						ad->dir, name);
			if (t->numel != p->numel || t->shape[0] != p->shape[0])
				return rl_error(RL_EDATA, "'%s': '%s' has another shape", ad->dir,
						name);
			rl_widen(t->dtype, ad->file.map + t->offset, p->w, t->numel);
		}
	}
	return RL_OK;
}

/* "<dir>/<file>" (malloc'd). */
static char *join(const char *dir, const char *file)
{
	size_t n = strlen(dir) + strlen(file) + 2;
	char *p = rl_malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", dir, file);
	return p;
}

static int write_moments(const rl_lmodel *m, const char *path)
{
	rl_st_wtensor *t = rl_calloc(2 * m->np, sizeof *t);
	char(*names)[sizeof m->p[0].name + 16] = rl_calloc(2 * m->np, sizeof *names);
	int rc = (!t || !names) ? RL_ESYS : RL_OK;
	for (size_t i = 0; !rc && i < 2 * m->np; i++) {
		const rl_lparam *p = &m->p[i / 2];
		snprintf(names[i], sizeof names[i], "%s.%s", p->name,
			 i % 2 ? "exp_avg_sq" : "exp_avg");
		t[i] = (rl_st_wtensor){.name = names[i],
				       .dtype = RL_DT_F32,
				       .ndim = 2,
				       .data = i % 2 ? p->v : p->m};
		t[i].shape[0] = p->shape[0];
		t[i].shape[1] = p->shape[1];
	}
	if (!rc)
		rc = rl_st_write(path, t, 2 * m->np, NULL, 0);
	free(t);
	free(names);
	return rc;
}

static int write_state(const rl_lmodel *m, const char *path, const cJSON *settings)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *s = settings ? cJSON_Duplicate(settings, 1) : cJSON_CreateObject();
	char *text = NULL;
	if (o && s && cJSON_AddNumberToObject(o, "step", (double)m->t) &&
	    cJSON_AddItemToObject(o, "settings", s))
		text = cJSON_Print(o);
	else
		cJSON_Delete(s);
	cJSON_Delete(o);
	if (!text)
		return rl_error(RL_ESYS, "'%s': out of memory", path);
	FILE *fp = fopen(path, "wb");
	int rc = fp ? RL_OK : rl_error_errno(RL_ESYS, "'%s'", path);
	if (fp) {
		int bad = fputs(text, fp) == EOF || fputc('\n', fp) == EOF;
		if (fclose(fp) != 0 || bad)
			rc = rl_error_errno(RL_ESYS, "'%s': write", path);
	}
	free(text);
	return rc;
}

int rl_lmodel_checkpoint_write(const rl_lmodel *m, const char *dir, const char *base_name,
			       const cJSON *settings)
{
	rl_outdir od;
	int rc = rl_outdir_begin(&od, dir, 1);
	if (rc)
		return rc;
	char *mp = join(od.tmp, "optimizer.safetensors"), *sp = join(od.tmp, "trainer_state.json");
	rc = (!mp || !sp) ? RL_ESYS : RL_OK;
	if (!rc)
		rc = rl_lmodel_save(m, od.tmp, base_name);
	if (!rc)
		rc = write_moments(m, mp);
	if (!rc)
		rc = write_state(m, sp, settings);
	free(mp);
	free(sp);
	if (rc) {
		rl_outdir_abort(&od);
		return rc;
	}
	rc = rl_outdir_commit(&od);
	if (!rc && rl_fault("state", "checkpoint written") != 0)
		rc = rl_error_errno(RL_ESYS, "'%s'", dir);
	return rc;
}

/* The first key of want whose value differs in got (or is missing). */
static const char *first_difference(const cJSON *want, const cJSON *got)
{
	const cJSON *k;
	cJSON_ArrayForEach(k, want)
	{
		const cJSON *g = cJSON_GetObjectItemCaseSensitive(got, k->string);
		if (!g || !cJSON_Compare(k, g, 1))
			return k->string;
	}
	cJSON_ArrayForEach(
		k, got) if (!cJSON_GetObjectItemCaseSensitive(want, k->string)) return k->string;
	return NULL;
}

static int read_moments(rl_lmodel *m, const char *path)
{
	rl_st_file st;
	int rc = rl_st_open(&st, path, RL_ST_READ);
	if (rc)
		return rc;
	for (size_t i = 0; !rc && i < 2 * m->np; i++) {
		rl_lparam *p = &m->p[i / 2];
		char name[sizeof p->name + 16];
		snprintf(name, sizeof name, "%s.%s", p->name, i % 2 ? "exp_avg_sq" : "exp_avg");
		const rl_st_tensor *t = rl_st_find(&st, name);
		if (!t || t->dtype != RL_DT_F32 || t->numel != p->numel)
			rc = rl_error(RL_EDATA, "'%s': no f32 tensor '%s' of %zu elements", path,
				      name, p->numel);
		else
			memcpy(i % 2 ? p->v : p->m, st.map + t->offset, p->numel * sizeof(float));
	}
	if (!rc && st.ntensors != 2 * m->np)
		rc = rl_error(RL_EDATA, "'%s': %zu tensors, expected %zu", path, st.ntensors,
			      2 * m->np);
	rl_st_close(&st);
	return rc;
}

int rl_lmodel_checkpoint_read(rl_lmodel *m, const char *dir, const cJSON *settings)
{
	char *sp = join(dir, "trainer_state.json"), *mp = join(dir, "optimizer.safetensors");
	char *text = NULL;
	size_t len;
	cJSON *o = NULL;
	int rc = (!sp || !mp) ? RL_ESYS : rl_read_file(sp, &text, &len);
	char *what = rc ? NULL : rl_malloc(strlen(sp) + 3);
	if (!rc && !what)
		rc = RL_ESYS;
	if (!rc) {
		sprintf(what, "'%s'", sp);
		rc = rl_json_parse(text, len, what, &o);
	}
	free(what);
	const cJSON *step = o ? cJSON_GetObjectItemCaseSensitive(o, "step") : NULL;
	const cJSON *got = o ? cJSON_GetObjectItemCaseSensitive(o, "settings") : NULL;
	if (!rc && (!cJSON_IsNumber(step) || step->valuedouble < 0 || !cJSON_IsObject(got)))
		rc = rl_error(RL_EDATA, "'%s': no \"step\" and \"settings\"", sp);
	const char *diff = rc ? NULL : first_difference(settings, got);
	if (diff) {
		const cJSON *w = cJSON_GetObjectItemCaseSensitive(settings, diff);
		const cJSON *g = cJSON_GetObjectItemCaseSensitive(got, diff);
		char *ws = w ? cJSON_PrintUnformatted(w) : NULL,
		     *gs = g ? cJSON_PrintUnformatted(g) : NULL;
		rc = rl_error(RL_EDATA,
			      "'%s': a checkpoint of another run (%s is %s there, %s here)", dir,
			      diff, gs ? gs : "missing", ws ? ws : "missing");
		free(ws);
		free(gs);
	}
	if (!rc) {
		rl_adapter ad;
		if (!(rc = rl_adapter_open(&ad, dir))) {
			rc = rl_lmodel_load_adapter(m, &ad);
			rl_adapter_close(&ad);
			rl_input_forget(dir); /* this run's own, replaced at its next checkpoint */
		}
	}
	if (!rc)
		rc = read_moments(m, mp);
	if (!rc)
		m->t = (long)step->valuedouble;
	cJSON_Delete(o);
	free(text);
	free(sp);
	free(mp);
	return rc;
}
